"""The golden model against independent loop implementations, and the properties of make_case."""

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from voltflow.cosim.golden import (
    ACC_MAX,
    ACC_MIN,
    CHANNEL_M_MAX,
    CHANNEL_S_MAX,
    M_MAX,
    TARGET_STD,
    Case,
    OpParams,
    avgpool_accumulate,
    channel_scales,
    context_accumulate,
    conv_accumulate,
    fc_accumulate,
    forward,
    make_case,
    maxpool,
    pick_channel_multiplier,
    pick_multiplier,
    pick_softmax_multiplier,
    requantize,
    requantize_channels,
    residual_add,
    run_op,
    scores_accumulate,
    scores_tensor,
    softmax,
)
from voltflow.scheduler.network import (
    Attention,
    AttentionKind,
    Network,
    OpKind,
    load_network,
)
from voltflow.scheduler.softmax import EXP_TABLE

from tests.cosim.attention_nets import ATTENTION_BLOCKS, attention_block, generic_matmul_network

TINY = Path(__file__).parents[1] / "scheduler" / "data" / "tiny.yaml"


# ---- independent references: direct loops, explicit bounds checks, Python ints ----------------


def naive_conv(x, w, bias, stride, padding, groups):
    """Direct convolution: loop over output pixels and taps, skip out-of-bound taps."""
    _, height, width = x.shape
    c_out, c_in_g, kh, kw = w.shape
    sh, sw = stride
    top, left, bottom, right = padding
    oh = (height + top + bottom - kh) // sh + 1
    ow = (width + left + right - kw) // sw + 1
    c_out_g = c_out // groups
    acc = np.zeros((c_out, oh, ow), dtype=np.int64)
    if bias is not None:
        acc += bias.astype(np.int64)[:, None, None]
    x64, w64 = x.astype(np.int64), w.astype(np.int64)
    for g in range(groups):
        outs = slice(g * c_out_g, (g + 1) * c_out_g)
        ins = slice(g * c_in_g, (g + 1) * c_in_g)
        for oy in range(oh):
            for ox in range(ow):
                for ky in range(kh):
                    iy = oy * sh - top + ky
                    if not 0 <= iy < height:
                        continue
                    for kx in range(kw):
                        ix = ox * sw - left + kx
                        if 0 <= ix < width:
                            acc[outs, oy, ox] += w64[outs, :, ky, kx] @ x64[ins, iy, ix]
    return acc


def naive_pool(x, kernel, stride, padding, reduce):
    """Apply ``reduce`` to the list of in-bound values of every window."""
    channels, height, width = x.shape
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, stride, padding
    oh = (height + top + bottom - kh) // sh + 1
    ow = (width + left + right - kw) // sw + 1
    out = np.zeros((channels, oh, ow), dtype=np.int64)
    for c in range(channels):
        for oy in range(oh):
            for ox in range(ow):
                values = [
                    int(x[c, oy * sh - top + ky, ox * sw - left + kx])
                    for ky in range(kh)
                    for kx in range(kw)
                    if 0 <= oy * sh - top + ky < height and 0 <= ox * sw - left + kx < width
                ]
                out[c, oy, ox] = reduce(values)
    return out


def naive_requant(acc, m, s, relu=False):
    """docs/arithmetic.md with Python's unbounded ints (>> is an arithmetic shift)."""

    def one(value):
        prod = int(value) * m
        y = (prod + (1 << (s - 1))) >> s if s > 0 else prod
        y = min(max(y, -128), 127)
        return max(y, 0) if relu else y

    return np.vectorize(one, otypes=[np.int64])(acc).astype(np.int8)


def naive_requant_channels(acc, m, s, relu=False):
    """Channel c (axis 0) through `naive_requant` with its own m[c] and s[c]."""
    return np.stack(
        [naive_requant(acc[c], int(m[c]), int(s[c]), relu) for c in range(acc.shape[0])]
    )


def naive_add(a, b, m_a, m_b, s, relu=False):
    def one(x, y):
        total = int(x) * m_a + int(y) * m_b
        out = (total + (1 << (s - 1))) >> s if s > 0 else total
        out = min(max(out, -128), 127)
        return max(out, 0) if relu else out

    return np.vectorize(one, otypes=[np.int64])(a, b).astype(np.int8)


def int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


# ---- conv ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("c_in", "c_out", "size", "kernel", "stride", "padding", "groups"),
    [
        (3, 16, (12, 12), (3, 3), (1, 1), (1, 1, 1, 1), 1),
        (5, 4, (9, 7), (5, 5), (2, 2), (2, 1, 2, 0), 1),
        (4, 6, (11, 10), (3, 1), (2, 1), (1, 0, 0, 0), 2),  # non-square kernel, grouped
        (1, 3, (10, 4), (10, 4), (2, 2), (4, 1, 5, 2), 1),  # ds_cnn's first layer, 'same'
        (8, 8, (7, 7), (3, 3), (2, 2), (0, 0, 1, 1), 8),  # depthwise, stride 2, bottom-right pad
        (16, 16, (5, 6), (5, 3), (1, 1), (2, 1, 2, 1), 16),  # depthwise, non-square
        (9, 17, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1),
    ],
)
def test_conv_matches_direct_loops(c_in, c_out, size, kernel, stride, padding, groups):
    rng = np.random.default_rng(sum(size) + c_in * c_out + groups)
    x = int8(rng, (c_in, *size))
    w = int8(rng, (c_out, c_in // groups, *kernel))
    bias = rng.integers(-4000, 4000, size=c_out, dtype=np.int32)
    got = conv_accumulate(x, w, bias, stride=stride, padding=padding, groups=groups)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, naive_conv(x, w, bias, stride, padding, groups))


@st.composite
def conv_problems(draw):
    groups = draw(st.sampled_from([1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 2, 3, 5]))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
    height = draw(st.integers(max(1, kh - padding[0] - padding[2]), 8))
    width = draw(st.integers(max(1, kw - padding[1] - padding[3]), 8))
    seed = draw(st.integers(0, 2**32 - 1))
    return c_in, c_out, (height, width), (kh, kw), stride, padding, groups, seed


@settings(max_examples=40, deadline=None)
@given(conv_problems())
def test_conv_property(problem):
    c_in, c_out, size, kernel, stride, padding, groups, seed = problem
    rng = np.random.default_rng(seed)
    x = int8(rng, (c_in, *size))
    w = int8(rng, (c_out, c_in // groups, *kernel))
    got = conv_accumulate(x, w, None, stride=stride, padding=padding, groups=groups)
    np.testing.assert_array_equal(got, naive_conv(x, w, None, stride, padding, groups))


def test_conv_extreme_operands_are_exact():
    # The zoo's longest reduction (3x3x512) with every product at +2^14: 75 497 472.
    x = np.full((512, 3, 3), -128, dtype=np.int8)
    w = np.full((2, 512, 3, 3), -128, dtype=np.int8)
    w[1] = 127
    bias = np.array([ACC_MAX - 4608 * 16384, 7], dtype=np.int32)
    got = conv_accumulate(x, w, bias)
    assert got[:, 0, 0].tolist() == [ACC_MAX, 7 - 4608 * 128 * 127]


def test_conv_accumulator_overflow_is_an_error():
    x = np.full((1 << 17, 1, 1), -128, dtype=np.int8)  # 2^17 products of 2^14: 2^31
    w = np.full((1, 1 << 17, 1, 1), -128, dtype=np.int8)
    with pytest.raises(OverflowError, match=r"^conv: the accumulator leaves int32: "):
        conv_accumulate(x, w)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 2}, r"^groups must be a positive int dividing C_in 3 and C_out 4, not 2$"),
        ({"padding": (0, 0, 0, -1)}, r"^kernel and stride must be positive"),
    ],
)
def test_conv_rejects_bad_arguments(kwargs, message):
    x = np.zeros((3, 4, 4), dtype=np.int8)
    w = np.zeros((4, 3, 3, 3), dtype=np.int8)
    with pytest.raises(ValueError, match=message):
        conv_accumulate(x, w, **kwargs)


def test_conv_rejects_non_int8():
    with pytest.raises(ValueError, match=r"^x must be a 3-d int8 numpy array, not a 3-d int16"):
        conv_accumulate(np.zeros((1, 2, 2), np.int16), np.zeros((1, 1, 1, 1), np.int8))


def test_fc_is_a_dot_product_over_c_h_w():
    rng = np.random.default_rng(3)
    x = int8(rng, (5, 3, 2))
    w = int8(rng, (7, 5, 3, 2))
    bias = rng.integers(-4000, 4000, size=7, dtype=np.int32)
    expected = [
        int(bias[n])
        + sum(
            int(w[n, c, y, i]) * int(x[c, y, i])
            for c in range(5)
            for y in range(3)
            for i in range(2)
        )
        for n in range(7)
    ]
    got = fc_accumulate(x, w, bias)
    assert got.shape == (7, 1, 1)
    assert got.ravel().tolist() == expected


# ---- requantisation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acc", "m", "s", "relu", "expected"),
    [
        (5, 1, 1, False, 3),  # 2.5 rounds up
        (-5, 1, 1, False, -2),  # -2.5 rounds up too (toward +infinity)
        (-7, 1, 1, False, -3),
        (-6, 1, 2, False, -1),  # -1.5 -> -1
        (-10, 1, 2, False, -2),  # -2.5 -> -2
        (3, 2, 0, False, 6),  # s = 0: no rounding term
        (-100, 2, 0, False, -128),  # saturation
        (100, 2, 0, False, 127),
        (-100, 2, 0, True, 0),
        (1000, 1, 0, True, 127),
        (ACC_MAX, M_MAX, 47, False, 1),  # the largest product, the largest shift
        (ACC_MIN, M_MAX, 47, False, -1),
        (ACC_MIN, M_MAX, 0, False, -128),
        (-(1 << 30), 1, 31, False, 0),  # -0.5 -> 0
        (-(1 << 30) - 1, 1, 31, False, -1),
    ],
)
def test_requantize_edge_cases(acc, m, s, relu, expected):
    got = requantize(np.array([acc], dtype=np.int64), m, s, relu=relu)
    assert got.dtype == np.int8
    assert got.tolist() == [expected]
    assert naive_requant(np.array([acc]), m, s, relu).tolist() == [expected]


def test_requantize_matches_python_ints_on_random_values():
    rng = np.random.default_rng(11)
    acc = rng.integers(ACC_MIN, ACC_MAX, size=400, endpoint=True)
    for m, s in [(1, 0), (M_MAX, 47), (20000, 20), (16384, 14), (12345, 30)]:
        for relu in (False, True):
            np.testing.assert_array_equal(
                requantize(acc, m, s, relu=relu), naive_requant(acc, m, s, relu)
            )


@pytest.mark.parametrize(
    ("acc", "m", "s", "message"),
    [
        (0, 0, 1, r"^m must be an int in 1\.\.65535, not 0$"),
        (0, 1, 48, r"^s must be an int in 0\.\.47, not 48$"),
        (ACC_MAX + 1, 1, 1, r"^acc must lie within int32, not \[2147483648, 2147483648\]$"),
    ],
)
def test_requantize_rejects_out_of_range(acc, m, s, message):
    with pytest.raises(ValueError, match=message):
        requantize(np.array([acc], dtype=np.int64), m, s)


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (1 / 64, (1 << 14, 20)),
        (1.0, (1 << 14, 14)),
        (1 / 120, (17476, 21)),
        (1e6, (M_MAX, 0)),  # would need a negative shift
        (1e-20, (1, 47)),  # would need a shift beyond 47
    ],
)
def test_pick_multiplier(scale, expected):
    assert pick_multiplier(scale) == expected


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=2**-32, max_value=2**14))
def test_pick_multiplier_is_close(scale):
    m, s = pick_multiplier(scale)
    assert 1 << 14 <= m <= 1 << 15
    assert math.isclose(m / 2**s, scale, rel_tol=2**-15)


# ---- per-channel requantisation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("acc", "m", "s", "relu", "expected"),
    [
        (5, 1, 1, False, 3),  # 2.5 rounds up
        (-5, 1, 1, False, -2),  # -2.5 rounds up too
        (3, 2, 0, False, 6),  # s = 0: no rounding term
        (-3, 2, 0, True, 0),
        (1 << 30, 1 << 23, 47, False, 64),  # 2^53 / 2^47
        (ACC_MAX, CHANNEL_M_MAX, 63, False, 0),  # the largest product, the largest shift
        (ACC_MIN, CHANNEL_M_MAX, 55, False, -1),  # -1 + 2^-24 (+ 1/2, floor)
        (ACC_MIN, CHANNEL_M_MAX, 0, False, -128),
        (ACC_MAX, CHANNEL_M_MAX, 54, False, 2),  # 2 - 2^-23 - 2^-30 + 2^-54
        (-(1 << 30), 1 << 23, 54, False, 0),  # -0.5 -> 0
        (-(1 << 30) - 1, 1 << 23, 54, False, -1),  # just below -0.5
        (1 << 30, 1 << 23, 54, True, 1),  # +0.5 -> 1
    ],
)
def test_requantize_channels_edge_cases(acc, m, s, relu, expected):
    got = requantize_channels(np.array([acc]), np.array([m]), np.array([s]), relu=relu)
    assert got.dtype == np.int8
    assert got.tolist() == [expected]
    assert naive_requant(np.array([acc]), m, s, relu).tolist() == [expected]


def test_requantize_channels_matches_python_ints_on_random_values():
    rng = np.random.default_rng(12)
    acc = rng.integers(ACC_MIN, ACC_MAX, size=(7, 5, 6), endpoint=True)
    m = np.array([1, CHANNEL_M_MAX, 1 << 23, *rng.integers(1, CHANNEL_M_MAX, size=4)])
    s = np.array([0, CHANNEL_S_MAX, 1, 62, *rng.integers(0, CHANNEL_S_MAX, size=3)])
    for relu in (False, True):
        got = requantize_channels(acc, m, s, relu=relu)
        assert got.shape == acc.shape
        np.testing.assert_array_equal(got, naive_requant_channels(acc, m, s, relu))
    # Scales near 32 / std(acc), as make_case picks them: outputs neither saturate nor vanish.
    small = rng.integers(-3000, 3000, size=(3, 40))
    m, s = np.array([11_000_000, 9_000_000, 16_000_000]), np.array([28, 29, 30])
    np.testing.assert_array_equal(
        requantize_channels(small, m, s), naive_requant_channels(small, m, s)
    )
    # One channel's parameters equal to a per-tensor (m, s): the per-tensor rule.
    np.testing.assert_array_equal(
        requantize_channels(acc[:1], np.array([20000]), np.array([20])),
        requantize(acc[:1], 20000, 20),
    )


@pytest.mark.parametrize(
    ("m", "s", "message"),
    [
        ([0, 1], [0, 0], r"^m must hold ints in 1\.\.16777215, not 0 \(channel 0\)$"),
        ([1, 1 << 24], [0, 0], r"^m must hold ints in 1\.\.16777215, not 16777216 \(channel 1\)$"),
        ([1, 1], [0, 64], r"^s must hold ints in 0\.\.63, not 64 \(channel 1\)$"),
        ([1], [0, 0], r"^m must be an integer array of shape \(2,\), not a 1-d int64 array"),
        ([1.0, 1.0], [0, 0], r"^m must be an integer array of shape \(2,\), not a 1-d float64"),
    ],
)
def test_requantize_channels_rejects_bad_parameters(m, s, message):
    with pytest.raises(ValueError, match=message):
        requantize_channels(np.zeros((2, 3), np.int32), np.array(m), np.array(s))


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (1.0, (1 << 23, 23)),
        (0.5, (1 << 23, 24)),
        (0.1, (13421773, 27)),  # float32(0.1) = 0x3dcccccd: significand 0xcccccd
        (float(2**24 - 1), (2**24 - 1, 0)),  # the largest scale
        (2.0**-40, (1 << 23, 63)),  # the smallest with a full significand
        (2.0**-41, (1 << 22, 63)),  # below: trailing zero bits go, s stays at 63
        (3 * 2.0**-62, (6, 63)),  # only until s is 63
        (2.0**-63, (1, 63)),  # the smallest scale
    ],
)
def test_pick_channel_multiplier(scale, expected):
    scale32 = np.float32(scale)
    assert float(scale32) == scale or scale == 0.1
    assert pick_channel_multiplier(scale32) == expected
    m, s = expected
    assert Fraction(m, 1 << s) == Fraction(float(scale32))


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (
            np.float32(2**24),
            r"^scale32 16777216\.0 = 8388608 \* 2\^1 has no exact per-channel form",
        ),
        (np.float32(2.0**-64), r"^scale32 5\.421010862427522e-20 = 1 \* 2\^-64 has no exact"),
        (np.float32(3 * 2.0**-64), r"= 3 \* 2\^-64 has no exact per-channel form: m must be in "),
        (np.float32(1e-45), r"has no exact per-channel form"),  # subnormal
        (np.float32(0.0), r"^scale32 must be a positive finite numpy float32, not "),
        (np.float32(-1.0), r"^scale32 must be a positive finite numpy float32, not "),
        (np.float32("inf"), r"^scale32 must be a positive finite numpy float32, not "),
        (np.float32("nan"), r"^scale32 must be a positive finite numpy float32, not "),
        (0.5, r"^scale32 must be a positive finite numpy float32, not 0\.5$"),
        (np.float64(0.5), r"^scale32 must be a positive finite numpy float32, not "),
    ],
)
def test_pick_channel_multiplier_rejects(scale, message):
    with pytest.raises(ValueError, match=message):
        pick_channel_multiplier(scale)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-40, max_value=2.0**24, exclude_max=True, width=32))
def test_pick_channel_multiplier_is_exact(scale):
    """Every float32 scale in 2^-40 .. 2^24: m / 2^s is it exactly, m its full significand."""
    scale32 = np.float32(scale)
    m, s = pick_channel_multiplier(scale32)
    assert Fraction(m, 1 << s) == Fraction(float(scale32))
    assert 1 << 23 <= m <= CHANNEL_M_MAX and 0 <= s <= CHANNEL_S_MAX


def test_pick_channel_multiplier_is_exact_on_random_float32_bit_patterns():
    """Any positive finite float32: exact (m, s), or a ValueError exactly where none exists."""
    rng = np.random.default_rng(13)
    bits = rng.integers(1, 0x7F800000, size=3000, dtype=np.uint32)  # positive, finite
    for scale32 in bits.view(np.float32):
        exact = Fraction(float(scale32))
        shift = exact.denominator.bit_length() - 1  # the least s with an integer m
        representable = shift <= CHANNEL_S_MAX and exact * (1 << shift) <= CHANNEL_M_MAX
        if representable:
            m, s = pick_channel_multiplier(scale32)
            assert Fraction(m, 1 << s) == exact
        else:
            with pytest.raises(ValueError, match="has no exact per-channel form"):
                pick_channel_multiplier(scale32)


def test_channel_scales_follow_each_channels_std():
    rng = np.random.default_rng(14)
    acc = np.stack([rng.normal(0, std, size=(6, 6)).round() for std in (10, 1000, 0.1)])
    scales = channel_scales(acc.astype(np.int64))
    assert scales.dtype == np.float32
    expected = [TARGET_STD / max(float(np.std(acc[c])), 1.0) for c in range(3)]
    assert scales.tolist() == [float(np.float32(e)) for e in expected]
    # A channel of one value (an fc's): the whole tensor's spread for every channel.
    fc = np.array([[[5]], [[-300]], [[1000]]])
    assert set(channel_scales(fc).tolist()) == {float(np.float32(TARGET_STD / np.std(fc)))}


# ---- pools and add -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding"),
    [
        ((3, 13, 13), (3, 3), (2, 2), (0, 0, 1, 1)),  # ceil_mode: the last windows overhang
        ((2, 8, 7), (3, 3), (2, 2), (1, 1, 1, 1)),  # resnet18's padded max pool
        ((4, 5, 6), (2, 2), (1, 1), (1, 1, 1, 1)),  # mobilevit's padded avg pool
        ((5, 6, 6), (6, 6), (6, 6), (0, 0, 0, 0)),  # global
        ((1, 25, 5), (24, 5), (24, 5), (0, 0, 0, 0)),  # ds_cnn's pool: the last row is dropped
    ],
)
def test_pools_match_loops(shape, kernel, stride, padding):
    x = int8(np.random.default_rng(sum(shape)), shape)
    got = maxpool(x, kernel=kernel, stride=stride, padding=padding)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, naive_pool(x, kernel, stride, padding, max))
    got_sum = avgpool_accumulate(x, kernel=kernel, stride=stride, padding=padding)
    np.testing.assert_array_equal(got_sum, naive_pool(x, kernel, stride, padding, sum))


def test_maxpool_of_all_minimum_values_ignores_padding():
    x = np.full((1, 3, 3), -128, dtype=np.int8)
    got = maxpool(x, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))
    assert (got == -128).all()


@pytest.mark.parametrize(("m_a", "m_b", "s", "relu"), [(16384, 9000, 15, False), (3, 1, 0, True)])
def test_residual_add_matches_python_ints(m_a, m_b, s, relu):
    rng = np.random.default_rng(m_a)
    a, b = int8(rng, (3, 4, 5)), int8(rng, (3, 4, 5))
    got = residual_add(a, b, m_a=m_a, m_b=m_b, s=s, relu=relu)
    np.testing.assert_array_equal(got, naive_add(a, b, m_a, m_b, s, relu))


def test_residual_add_rounds_half_up():
    a = np.array([[[-3, 3, -1]]], dtype=np.int8)
    b = np.zeros_like(a)
    assert residual_add(a, b, m_a=1, m_b=1, s=1).ravel().tolist() == [-1, 2, 0]


# ---- networks ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> Network:
    return load_network(TINY)


def independent_op(op, inputs, params):
    """One op through the loop references of this file."""
    if op.kind in (OpKind.CONV, OpKind.FC):
        if op.kind is OpKind.CONV:
            acc = naive_conv(
                inputs[0], params.weight, params.bias, op.stride, op.padding, op.groups
            )
        else:
            w = params.weight.reshape(params.weight.shape[0], -1).astype(np.int64)
            acc = (w @ inputs[0].reshape(-1).astype(np.int64) + params.bias).reshape(-1, 1, 1)
        if op.per_channel:
            return naive_requant_channels(acc, params.channel_m, params.channel_s, op.relu)
        return naive_requant(acc, params.m, params.s, op.relu)
    if op.kind is OpKind.MAXPOOL:
        return naive_pool(inputs[0], op.kernel, op.stride, op.padding, max).astype(np.int8)
    if op.kind is OpKind.AVGPOOL:
        acc = naive_pool(inputs[0], op.kernel, op.stride, op.padding, sum)
        return naive_requant(acc, params.m, params.s)
    if op.kind is OpKind.ADD:
        return naive_add(*inputs, params.m, params.m_b, params.s, op.relu)
    assert op.kind is OpKind.CONCAT
    return np.concatenate(inputs)


def test_tiny_case_matches_the_loop_references(tiny):
    case = make_case(tiny, seed=5, sparsity={"conv1": 0.3})
    tensors = {tiny.input_name: case.input, **case.outputs}
    for op in tiny.ops:
        expected = independent_op(op, [tensors[n] for n in op.inputs], case.params.get(op.name))
        np.testing.assert_array_equal(case.outputs[op.name], expected, err_msg=op.name)


def test_case_shapes_types_and_parameters(tiny):
    case = make_case(tiny)
    assert case.input.shape == (3, 12, 12)
    assert set(case.outputs) == {op.name for op in tiny.ops}
    for op in tiny.ops:
        out = case.outputs[op.name]
        assert out.dtype == np.int8
        assert out.shape == (op.out.channels, op.out.height, op.out.width)
        assert not out.flags.writeable
    assert set(case.params) == {"conv1", "dw", "pw", "add", "e1", "e3", "gap", "fc"}
    assert case.params["dw"].weight.shape == (16, 1, 3, 3)
    assert case.params["fc"].weight.shape == (10, 16, 1, 1)
    assert case.params["gap"].weight is None
    assert (case.params["gap"].m, case.params["gap"].s) == pick_multiplier(1 / 36)
    assert case.params["add"].m_b is not None
    assert case.params["conv1"].m_b is None
    for params in case.params.values():
        if params.bias is not None:
            assert np.abs(params.bias).max() < 1 << 12
    assert case.tensor("input") is case.input
    assert case.tensor("cat") is case.outputs["cat"]
    with pytest.raises(KeyError, match="no tensor 'nope'"):
        case.tensor("nope")


def test_make_case_is_deterministic(tiny):
    a, b, c = make_case(tiny, seed=7), make_case(tiny, seed=7), make_case(tiny, seed=8)
    np.testing.assert_array_equal(a.input, b.input)
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name])
    for name, params in a.params.items():
        assert (params.m, params.s, params.m_b) == (
            b.params[name].m,
            b.params[name].s,
            b.params[name].m_b,
        )
        if params.weight is not None:
            np.testing.assert_array_equal(params.weight, b.params[name].weight)
            np.testing.assert_array_equal(params.bias, b.params[name].bias)
    assert not np.array_equal(a.input, c.input)


def test_forward_reproduces_the_case(tiny):
    case = make_case(tiny, seed=2)
    outputs = forward(tiny, case.input, case.params)
    for name, out in case.outputs.items():
        np.testing.assert_array_equal(outputs[name], out)


def test_sparsity_only_zeroes_weights(tiny):
    dense = make_case(tiny, seed=4)
    sparse = make_case(tiny, seed=4, sparsity={"pw": 0.75, "fc": 1.0})
    assert sparse.sparsity["pw"] == 0.75 and sparse.sparsity["conv1"] == 0.0
    w_dense, w_sparse = dense.params["pw"].weight, sparse.params["pw"].weight
    assert np.count_nonzero(w_sparse == 0) >= round(0.75 * w_sparse.size)
    kept = w_sparse != 0
    np.testing.assert_array_equal(w_sparse[kept], w_dense[kept])
    np.testing.assert_array_equal(sparse.params["conv1"].weight, dense.params["conv1"].weight)
    assert not sparse.params["fc"].weight.any()
    uniform = make_case(tiny, seed=4, sparsity=0.5)
    assert set(uniform.sparsity.values()) == {0.5}


@pytest.mark.parametrize(
    ("sparsity", "message"),
    [
        ({"gap": 0.5}, r"^sparsity keys must be conv or fc op names of 'tiny', not 'gap'$"),
        ({"pw": 1.5}, r"^sparsity\['pw'\] must be a number in 0\.\.1, not 1\.5$"),
        (-0.1, r"^sparsity must be a number in 0\.\.1, not -0\.1$"),
    ],
)
def test_make_case_rejects_bad_sparsity(tiny, sparsity, message):
    with pytest.raises(ValueError, match=message):
        make_case(tiny, sparsity=sparsity)


def test_make_case_rejects_bad_seed(tiny):
    with pytest.raises(ValueError, match=r"^seed must be a non-negative int, not -1$"):
        make_case(tiny, seed=-1)


def test_generic_matmul_has_no_golden_model():
    network = generic_matmul_network()
    with pytest.raises(
        NotImplementedError,
        match=r"^network 'generic' \(1 generic matmul op\(s\), the first 'm'\): a generic matmul "
        r"has no golden model: the layout of its activation operands is open; give it "
        r"'attention: scores' or 'attention: context' \(docs/attention.md\)$",
    ):
        make_case(network)
    x = np.zeros((8, 4, 4), dtype=np.int8)
    with pytest.raises(NotImplementedError, match=r"^op 'm': a generic matmul has no golden"):
        run_op(network.op("m"), [x, x])


def test_case_is_read_only(tiny):
    case = make_case(tiny)
    with pytest.raises(ValueError, match="read-only"):
        case.input[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        case.params["conv1"].weight[0, 0, 0, 0] = 1
    with pytest.raises(TypeError):
        case.outputs["fc"] = case.outputs["fc"]  # type: ignore[index]
    assert isinstance(case, Case)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 0}, r"^OpParams\.m must be an int in 1\.\.65535, not 0$"),
        ({"s": 48}, r"^OpParams\.s must be an int in 0\.\.47, not 48$"),
        ({"m_b": 70000}, r"^OpParams\.m_b must be None or an int in 1\.\.65535, not 70000$"),
        ({"weight": np.zeros((1, 1, 1), np.int8)}, r"^OpParams\.weight must be a 4-d int8"),
        ({"bias": np.zeros(1, np.int32)}, r"^OpParams\.bias must come with a weight"),
    ],
)
def test_op_params_validation(kwargs, message):
    args = {"weight": None, "bias": None, "m": 1, "s": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        OpParams(**args)


PER_CHANNEL_NET = """\
format: voltflow-network/1
name: per_channel
title: per-channel requantisation
source: tests
input: {name: x, shape: [8, 9, 9]}
ops:
  - {name: c, op: conv, input: x, out_channels: 12, kernel: 3, padding: 1, relu: true,
     per_channel: true}
  - {name: d, op: conv, input: c, out_channels: 12, kernel: 3, stride: 2, groups: 12,
     per_channel: true}
  - {name: p, op: conv, input: d, out_channels: 16, kernel: 1}
  - {name: f, op: fc, input: p, out_features: 10, per_channel: true}
"""


@pytest.fixture(scope="module")
def per_channel_net(tmp_path_factory) -> Network:
    path = tmp_path_factory.mktemp("net") / "per_channel.yaml"
    path.write_text(PER_CHANNEL_NET)
    return load_network(path)


def test_per_channel_case_matches_the_loop_references(per_channel_net):
    case = make_case(per_channel_net, seed=3)
    tensors = {per_channel_net.input_name: case.input, **case.outputs}
    for op in per_channel_net.ops:
        params = case.params[op.name]
        assert (params.channel_m is not None) == op.per_channel, op.name
        expected = independent_op(op, [tensors[n] for n in op.inputs], params)
        np.testing.assert_array_equal(case.outputs[op.name], expected, err_msg=op.name)
        out = case.outputs[op.name]
        assert np.count_nonzero((out == 127) | (out == -128)) / out.size < 0.2, op.name
    # Each channel's (m, s) is the exact form of its own float32 scale.
    conv = per_channel_net.op("c")
    acc = conv_accumulate(
        case.input, case.params["c"].weight, case.params["c"].bias, padding=conv.padding
    )
    params = case.params["c"]
    assert [pick_channel_multiplier(x) for x in channel_scales(acc)] == list(
        zip(params.channel_m.tolist(), params.channel_s.tolist(), strict=True)
    )
    assert np.unique(params.channel_m).size == 12
    assert (params.m, params.s) == (1, 0)
    outputs = forward(per_channel_net, case.input, case.params)
    for name, out in case.outputs.items():
        np.testing.assert_array_equal(outputs[name], out)


def test_run_op_wants_channel_parameters_exactly_for_per_channel_ops(per_channel_net, tiny):
    case = make_case(per_channel_net, seed=3)
    conv, x = per_channel_net.op("c"), case.input
    weight, bias = case.params["c"].weight, case.params["c"].bias
    with pytest.raises(
        ValueError, match=r"^op 'c' is per_channel: its OpParams need channel_m and channel_s$"
    ):
        run_op(conv, [x], OpParams(weight, bias, 1, 0))
    plain = tiny.op("conv1")
    tiny_case = make_case(tiny)
    params = tiny_case.params["conv1"]
    ones = np.ones(16, np.int64)
    with pytest.raises(
        ValueError,
        match=r"^op 'conv1' is not per_channel: its OpParams must not have channel_m and "
        r"channel_s$",
    ):
        run_op(
            plain, [tiny_case.input], OpParams(params.weight, params.bias, 1, 0, None, ones, ones)
        )


def test_op_params_validates_channel_parameters():
    weight, bias = np.zeros((3, 2, 1, 1), np.int8), np.zeros(3, np.int32)
    good = OpParams(
        weight, bias, 1, 0, channel_m=np.array([1, 2, 3]), channel_s=np.array([0, 63, 5])
    )
    assert good.channel_m.dtype == np.int64 and not good.channel_m.flags.writeable
    cases = [
        (
            {"channel_m": np.ones(3, int)},
            r"^OpParams\.channel_m and channel_s must be given together, not channel_m alone$",
        ),
        (
            {"channel_s": np.ones(3, int)},
            r"^OpParams\.channel_m and channel_s must be given together, not channel_s alone$",
        ),
        (
            {"channel_m": np.ones(2, int), "channel_s": np.ones(3, int)},
            r"^OpParams\.channel_m must be an integer array of shape \(3,\), not ",
        ),
        (
            {"channel_m": np.array([1, 0, 1]), "channel_s": np.ones(3, int)},
            r"^OpParams\.channel_m must hold ints in 1\.\.16777215, not 0 \(channel 1\)$",
        ),
        (
            {"channel_m": np.ones(3, int), "channel_s": np.array([0, 0, 64])},
            r"^OpParams\.channel_s must hold ints in 0\.\.63, not 64 \(channel 2\)$",
        ),
        (
            {"channel_m": [1, 1, 1], "channel_s": np.ones(3, int)},
            r"^OpParams\.channel_m must be an integer array of shape \(3,\), not \[1, 1, 1\]$",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            OpParams(weight, bias, 1, 0, **kwargs)
    with pytest.raises(
        ValueError, match=r"^OpParams\.channel_m and channel_s must come with a weight"
    ):
        OpParams(None, None, 1, 0, channel_m=np.ones(3, int), channel_s=np.ones(3, int))


def test_run_op_checks_its_inputs(tiny):
    op = tiny.op("conv1")
    with pytest.raises(ValueError, match=r"^input 'input' of op 'conv1' must have shape 3x12x12"):
        run_op(op, [np.zeros((3, 12, 11), np.int8)], None)
    with pytest.raises(ValueError, match=r"^op 'conv1' \(conv\) needs OpParams$"):
        run_op(op, [np.zeros((3, 12, 12), np.int8)], None)


@pytest.mark.parametrize("name", ["ds_cnn", "resnet8", "squeezenet"])
def test_zoo_outputs_neither_saturate_nor_vanish(name):
    network = load_network(name)
    case = make_case(network, seed=0)
    for op in network.ops:
        out = case.outputs[op.name]
        saturated = np.count_nonzero((out == 127) | (out == -128)) / out.size
        assert saturated < 0.2, (op.name, saturated)
        assert out.any(), op.name
        assert np.unique(out).size > min(8, out.size // 2), op.name


# ---- attention (docs/attention.md, docs/arithmetic.md "Softmax") -------------------------------


def naive_tokens(x, heads, dh, patch, first):
    """Q, K or V per batch b = p * heads + h, token i, feature f, straight from the spec."""
    _, height, width = x.shape
    ph, pw = patch
    tw, n = width // pw, (height // ph) * (width // pw)
    out = np.zeros((ph * pw * heads, n, dh), dtype=np.int64)
    for py in range(ph):
        for px in range(pw):
            for h in range(heads):
                b = (py * pw + px) * heads + h
                for i in range(n):
                    ty, tx = divmod(i, tw)
                    for f in range(dh):
                        out[b, i, f] = int(x[first + h * dh + f, ty * ph + py, tx * pw + px])
    return out


def naive_softmax_row(keys, m_e, s_e):
    """One row of docs/arithmetic.md's integer softmax, in Python ints."""
    mx = max(keys)
    es = []
    for x in keys:
        t = (mx - x) * m_e
        q, r = t >> s_e, (t >> (s_e - 4)) & 15
        es.append(EXP_TABLE[r] >> q if q < 16 else 0)
    rcp = (1 << 31) // sum(es)
    return [min(127, (e * rcp + (1 << 23)) >> 24) for e in es]


LAYOUTS = [
    (1, 8, (1, 1), 0, 8, (16, 4, 4)),
    (2, 12, (2, 2), 4, 28, (52, 6, 4)),
    (2, 5, (2, 1), 3, 13, (24, 4, 6)),
    (3, 4, (1, 3), 1, 13, (25, 2, 9)),
]


@pytest.mark.parametrize(("heads", "dh", "patch", "a0", "b0", "shape"), LAYOUTS)
def test_scores_and_context_match_direct_loops(heads, dh, patch, a0, b0, shape):
    rng = np.random.default_rng(heads * 100 + dh)
    a = rng.integers(-128, 128, size=shape, dtype=np.int8)
    b = rng.integers(-128, 128, size=shape, dtype=np.int8)
    layout = Attention(AttentionKind.SCORES, heads, dh, patch, a0, b0)
    q, k = naive_tokens(a, heads, dh, patch, a0), naive_tokens(b, heads, dh, patch, b0)
    batch, n, _ = q.shape
    expected = np.zeros((batch, n, n), dtype=np.int64)
    for bb in range(batch):
        for i in range(n):
            for j in range(n):
                expected[bb, i, j] = sum(int(q[bb, i, f]) * int(k[bb, j, f]) for f in range(dh))
    np.testing.assert_array_equal(scores_accumulate(a, b, layout), expected)
    # The scores tensor: channel b * N8 + j of pixel (0, i), 0 for j >= N.
    n8 = -(-n // 8) * 8
    tensor = scores_tensor(expected)
    assert tensor.shape == (batch * n8, 1, n)
    for bb in range(batch):
        for j in range(n8):
            for i in range(n):
                value = expected[bb, i, j] if j < n else 0
                assert tensor[bb * n8 + j, 0, i] == value
    # Context over a random scores tensor and V from b0 of b.
    probs = rng.integers(-128, 128, size=(batch * n8, 1, n), dtype=np.int8)
    context = Attention(AttentionKind.CONTEXT, heads, dh, patch, 0, b0)
    v = naive_tokens(b, heads, dh, patch, b0)
    expected = np.zeros((batch, n, dh), dtype=np.int64)
    for bb in range(batch):
        for i in range(n):
            for f in range(dh):
                expected[bb, i, f] = sum(
                    int(probs[bb * n8 + j, 0, i]) * int(v[bb, j, f]) for j in range(n)
                )
    np.testing.assert_array_equal(context_accumulate(probs, b, context), expected)


@pytest.mark.parametrize("n", [1, 3, 8, 13, 24])
def test_softmax_matches_the_rule_in_python_ints(n):
    """Every row against docs/arithmetic.md's rule; padding channels (j >= n) are 0 whatever
    the input holds there."""
    rng = np.random.default_rng(n)
    n8, groups = -(-n // 8) * 8, 3
    x = rng.integers(-128, 128, size=(groups * n8, 1, n), dtype=np.int8)
    m_e, s_e = pick_softmax_multiplier(1 / TARGET_STD)
    out = softmax(x, m_e=m_e, s_e=s_e)
    assert out.shape == x.shape and out.dtype == np.int8
    for g in range(groups):
        for i in range(n):
            keys = [int(x[g * n8 + j, 0, i]) for j in range(n)]
            row = [int(out[g * n8 + j, 0, i]) for j in range(n)]
            assert row == naive_softmax_row(keys, m_e, s_e), (g, i)
            assert not out[g * n8 + n : (g + 1) * n8, 0, i].any()


def test_softmax_is_close_to_the_float_softmax():
    """Scores of std 32 at scale 1/32: p / 128 is within 2.6 / 128 of the exact softmax (the
    table's 4.4 % steps and the 1/128 output step, docs/arithmetic.md)."""
    rng = np.random.default_rng(5)
    m_e, s_e = pick_softmax_multiplier(1 / TARGET_STD)
    assert (m_e, s_e) == pick_multiplier(math.log2(math.e) / 32) == (23637, 19)
    for n in (2, 5, 8, 13, 49, 64):
        n8, groups = -(-n // 8) * 8, 16
        keys = np.clip(np.round(rng.normal(0, 32, size=(groups, n, n))), -128, 127)
        x = np.zeros((groups, n8, n), dtype=np.int8)
        x[:, :n] = keys
        p = softmax(x.reshape(groups * n8, 1, n), m_e=m_e, s_e=s_e).reshape(groups, n8, n)
        exact = np.exp((keys - keys.max(axis=1, keepdims=True)) / 32)
        exact /= exact.sum(axis=1, keepdims=True)
        assert np.abs(p[:, :n] / 128 - exact).max() < 2.6 / 128, n


def test_softmax_edge_cases():
    m_e, s_e = pick_softmax_multiplier(1 / TARGET_STD)
    # One key: e = 2^15, rcp = 2^16, p = min(127, 128).
    one = softmax(np.array([[[-7]]] + [[[99]]] * 7, dtype=np.int8), m_e=m_e, s_e=s_e)
    assert one.reshape(-1).tolist() == [127, 0, 0, 0, 0, 0, 0, 0]
    # All equal: each key 2^15, rcp = floor(2^16 / n), p = round(2^15 rcp / 2^24).
    for n in (2, 5, 8, 12):
        n8 = -(-n // 8) * 8
        x = np.full((2 * n8, 1, n), 17, dtype=np.int8)
        out = softmax(x, m_e=m_e, s_e=s_e).reshape(2, n8, n)
        expected = ((1 << 15) * ((1 << 16) // n) + (1 << 23)) >> 24
        assert (out[:, :n] == expected).all() and not out[:, n:].any(), n
    # 3 keys, one 255 below the max: q = 255 m_e >> s_e = 11, e = EXP_TABLE[r] >> 11 = 11 (r =
    # 7), a share below half an output step; the two at the max split the rest.
    x = np.zeros((8, 1, 3), dtype=np.int8)
    x[:3, 0, 0] = [127, -128, 127]
    out = softmax(x, m_e=m_e, s_e=s_e)
    assert out[:3, 0, 0].tolist() == [64, 0, 64] and out[:3, 0, 1].tolist() == [43, 43, 43]
    assert not out[3:].any()


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [
        (np.zeros((8, 2, 3), np.int8), {}, r"^x must be a scores tensor \(G \* 8, 1, 3\)"),
        (np.zeros((12, 1, 3), np.int8), {}, r"^x must be a scores tensor"),
        (np.zeros((8, 1, 3), np.int8), {"s_e": 3}, r"^s_e must be an int in 4\.\.47, not 3$"),
        (np.zeros((8, 1, 3), np.int8), {"m_e": 0}, r"^m_e must be an int in 1\.\.65535, not 0$"),
    ],
)
def test_softmax_rejects_bad_arguments(x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        softmax(x, **{"m_e": 100, "s_e": 10, **kwargs})


def test_pick_softmax_multiplier_needs_four_fraction_bits():
    assert pick_softmax_multiplier(1 / 8)[1] == 17
    with pytest.raises(ValueError, match=r"needs the shift 3; a softmax needs s_e >= 4"):
        pick_softmax_multiplier(2.0**11)


@pytest.mark.parametrize("name", sorted(ATTENTION_BLOCKS))
def test_attention_block_case_matches_the_loop_references(name):
    """make_case on an attention block: scores and context requantised like a conv (std of the
    accumulators), the softmax with log2(e) / 32; forward reproduces every output."""
    network = attention_block(ATTENTION_BLOCKS[name], name)
    case = make_case(network, seed=3)
    qkv = case.outputs["qkv"]
    qk, av = network.op("qk"), network.op("av")
    acc = scores_accumulate(qkv, qkv, qk.attention)
    m, s = pick_multiplier(TARGET_STD / max(float(np.std(acc.astype(np.float64))), 1.0))
    assert (case.params["qk"].m, case.params["qk"].s) == (m, s)
    np.testing.assert_array_equal(case.outputs["qk"], scores_tensor(naive_requant(acc, m, s)))
    sm = case.params["softmax"]
    assert (sm.m, sm.s) == (23637, 19) and sm.weight is None
    np.testing.assert_array_equal(
        case.outputs["softmax"], softmax(case.outputs["qk"], m_e=sm.m, s_e=sm.s)
    )
    acc = context_accumulate(case.outputs["softmax"], qkv, av.attention)
    m, s = case.params["av"].m, case.params["av"].s
    assert (m, s) == pick_multiplier(TARGET_STD / max(float(np.std(acc.astype(np.float64))), 1.0))
    expected = naive_requant(acc, m, s)  # (batch, N, dh) back onto the (heads * dh, H, W) map
    out = case.outputs["av"]
    heads, dh = av.attention.heads, av.attention.head_channels
    ph, pw = av.attention.patch
    tw = out.shape[2] // pw
    for b in range(av.attention.batch):
        p, h = divmod(b, heads)
        py, px = divmod(p, pw)
        for i in range(expected.shape[1]):
            ty, tx = divmod(i, tw)
            for f in range(dh):
                assert out[h * dh + f, ty * ph + py, tx * pw + px] == expected[b, i, f]
    assert all((o.std() > 4) for k, o in case.outputs.items() if k != "softmax")
    forwarded = forward(network, case.input, case.params)
    for key, value in case.outputs.items():
        np.testing.assert_array_equal(forwarded[key], value)
