"""The numpy golden model: bit-exact int8 reference outputs of a network, per docs/arithmetic.md.

`make_case` draws a seeded random int8 network instance (weights, biases, input), picks each op's
requantisation parameters (per output channel for a ``per_channel`` op) from the model's own run
and records every op's output. The array-level functions (`conv_accumulate`, `requantize`,
`requantize_channels`, `maxpool`, `scores_accumulate`, `softmax`, ...) are the reference for
single ops; the attention ops follow docs/attention.md.

Products of int8 values are at most 2^14 in magnitude, so every partial sum of a reduction shorter
than 2^38 is an integer below 2^53: the reductions run as float64 matrix products (BLAS) and are
exact whatever the summation order.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from voltflow.hw.widths import CHANNEL_M_BITS, CHANNEL_S_BITS
from voltflow.scheduler.network import (
    Attention,
    AttentionKind,
    Network,
    Op,
    OpKind,
    padded_keys,
)
from voltflow.scheduler.softmax import (
    EXP_FRACTION_BITS,
    EXP_TABLE,
    EXP_TABLE_BITS,
    PROB_MAX,
    PROB_ROUND_SHIFT,
    RECIPROCAL_SHIFT,
)
from voltflow.scheduler.windows import im2col, windows

__all__ = [
    "ACC_MAX",
    "ACC_MIN",
    "BIAS_LIMIT",
    "CHANNEL_M_MAX",
    "CHANNEL_S_MAX",
    "M_MAX",
    "S_MAX",
    "TARGET_STD",
    "Case",
    "OpParams",
    "add_multipliers",
    "avgpool_accumulate",
    "case_from_params",
    "channel_scales",
    "context_accumulate",
    "conv_accumulate",
    "fc_accumulate",
    "forward",
    "head_tokens",
    "make_case",
    "maxpool",
    "pick_channel_multiplier",
    "pick_multiplier",
    "pick_softmax_multiplier",
    "requantize",
    "requantize_channels",
    "residual_add",
    "run_op",
    "scores_accumulate",
    "scores_tensor",
    "scores_values",
    "softmax",
]

ACC_MIN = -(1 << 31)
"""Smallest int32 accumulator value."""
ACC_MAX = (1 << 31) - 1
"""Largest int32 accumulator value."""
M_MAX = (1 << 16) - 1
"""Largest requantisation multiplier (unsigned 16 bit; the smallest is 1)."""
S_MAX = 47
"""Largest requantisation shift."""
CHANNEL_M_MAX = (1 << CHANNEL_M_BITS) - 1
"""Largest per-channel multiplier (unsigned 24 bit, a float32 significand; the smallest is 1)."""
CHANNEL_S_MAX = (1 << CHANNEL_S_BITS) - 1
"""Largest per-channel shift (63)."""
BIAS_LIMIT = 1 << 12
"""Random biases of `make_case` are drawn from (-BIAS_LIMIT, BIAS_LIMIT)."""
TARGET_STD = 32.0
"""`make_case` scales each accumulator so that its standard deviation becomes this many LSBs."""

_EXACT_TERMS = 1 << 38  # reductions up to this length are exact in float64 (see module docstring)
#: Significand bits of a float32 (with the implicit one): a per-channel multiplier holds them all.
_FLOAT32_SIGNIFICAND_BITS = np.finfo(np.float32).nmant + 1

Pair = tuple[int, int]
Padding = tuple[int, int, int, int]


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


def _check_int8(name: str, array: object, ndim: int) -> np.ndarray:
    if not isinstance(array, np.ndarray) or array.dtype != np.int8 or array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d int8 numpy array, not {_describe(array)}")
    return array


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.ndim}-d {value.dtype} array of shape {value.shape}"
    return repr(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


# ---- parameters and cases ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class OpParams:
    """The parameters of one requantised op (conv, fc, avgpool, add, attention matmul, softmax);
    arrays are read-only.

    Parameters
    ----------
    weight : numpy.ndarray of int8 or None
        conv: (C_out, C_in / groups, kh, kw); fc: (N, C, H, W) over its (C, H, W) input;
        None for the other ops.
    bias : numpy.ndarray of int32 or None
        (C_out,) for conv and fc; None for the other ops.
    m : int
        Requantisation multiplier, 1 .. `M_MAX` (``m_a`` of an add, ``m_e`` of a softmax); unused
        when ``channel_m`` is given (`make_case` then sets 1).
    s : int
        Requantisation shift, 0 .. `S_MAX` (``s_e`` of a softmax); unused when ``channel_s`` is
        given (`make_case`: 0).
    m_b : int or None
        The add's multiplier of its second input; None for every other op.
    channel_m : numpy.ndarray of integers or None
        A per-channel conv's or fc's multipliers, (C_out,), each 1 .. `CHANNEL_M_MAX`; given
        together with ``channel_s`` and a weight, for exactly the ops with ``per_channel``.
        Stored as int64.
    channel_s : numpy.ndarray of integers or None
        Its shifts, (C_out,), each 0 .. `CHANNEL_S_MAX`; stored as int64.
    """

    weight: np.ndarray | None
    bias: np.ndarray | None
    m: int
    s: int
    m_b: int | None = None
    channel_m: np.ndarray | None = None
    channel_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.weight is not None:
            weight = self.weight
            if not isinstance(weight, np.ndarray) or weight.dtype != np.int8 or weight.ndim != 4:
                raise ValueError(
                    f"OpParams.weight must be a 4-d int8 array or None, not {_describe(weight)}"
                )
            object.__setattr__(self, "weight", _frozen(weight))
        if self.bias is not None:
            bias = self.bias
            if not isinstance(bias, np.ndarray) or bias.dtype != np.int32 or bias.ndim != 1:
                raise ValueError(
                    f"OpParams.bias must be a 1-d int32 array or None, not {_describe(bias)}"
                )
            if self.weight is None or bias.shape[0] != self.weight.shape[0]:
                raise ValueError(
                    "OpParams.bias must come with a weight and hold one value per output "
                    f"channel, not {_describe(bias)}"
                )
            object.__setattr__(self, "bias", _frozen(bias))
        if not _is_int(self.m) or not 1 <= self.m <= M_MAX:
            raise ValueError(f"OpParams.m must be an int in 1..{M_MAX}, not {self.m!r}")
        if not _is_int(self.s) or not 0 <= self.s <= S_MAX:
            raise ValueError(f"OpParams.s must be an int in 0..{S_MAX}, not {self.s!r}")
        if self.m_b is not None and (not _is_int(self.m_b) or not 1 <= self.m_b <= M_MAX):
            raise ValueError(f"OpParams.m_b must be None or an int in 1..{M_MAX}, not {self.m_b!r}")
        object.__setattr__(self, "m", int(self.m))
        object.__setattr__(self, "s", int(self.s))
        if self.m_b is not None:
            object.__setattr__(self, "m_b", int(self.m_b))
        if (self.channel_m is None) != (self.channel_s is None):
            given = "channel_m" if self.channel_s is None else "channel_s"
            raise ValueError(
                f"OpParams.channel_m and channel_s must be given together, not {given} alone"
            )
        if self.channel_m is not None:
            if self.weight is None:
                raise ValueError(
                    "OpParams.channel_m and channel_s must come with a weight (a conv or fc)"
                )
            channels = self.weight.shape[0]
            for name, lo, hi in (("channel_m", 1, CHANNEL_M_MAX), ("channel_s", 0, CHANNEL_S_MAX)):
                values = _check_channel_values(
                    f"OpParams.{name}", getattr(self, name), channels, lo, hi
                )
                object.__setattr__(self, name, _frozen(values))


@dataclass(frozen=True, slots=True, eq=False)
class Case:
    """A seeded random instance of a network and its golden outputs; arrays are read-only.

    Parameters
    ----------
    network : Network
        The network.
    seed : int
        The seed everything random was drawn from.
    sparsity : Mapping[str, float]
        Fraction of zeroed weights per conv/fc op name (every conv and fc op is listed).
    input : numpy.ndarray of int8
        The network input, (C, H, W).
    params : Mapping[str, OpParams]
        Per op name, for every conv, fc, avgpool, add, attention matmul and softmax op.
    outputs : Mapping[str, numpy.ndarray]
        Every op's int8 output tensor (C, H, W) by op name; an fc's is (N, 1, 1).
    """

    network: Network
    seed: int
    sparsity: Mapping[str, float]
    input: np.ndarray
    params: Mapping[str, OpParams]
    outputs: Mapping[str, np.ndarray]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # The read-only mappings do not pickle; a case crosses to an executor's worker as dicts.
        return (
            _case,
            (
                self.network,
                self.seed,
                dict(self.sparsity),
                self.input,
                dict(self.params),
                dict(self.outputs),
            ),
        )

    def tensor(self, name: str) -> np.ndarray:
        """The int8 tensor called ``name``: the network input or an op's output."""
        if name == self.network.input_name:
            return self.input
        if name not in self.outputs:
            raise KeyError(f"network {self.network.name!r} has no tensor {name!r}")
        return self.outputs[name]


def _case(
    network: Network,
    seed: int,
    sparsity: dict[str, float],
    input: np.ndarray,
    params: dict[str, OpParams],
    outputs: dict[str, np.ndarray],
) -> Case:
    """A pickled :class:`Case` (its read-only mappings again)."""
    return Case(
        network,
        seed,
        MappingProxyType(sparsity),
        _frozen(input.copy()),
        MappingProxyType(params),
        MappingProxyType({k: _frozen(v.copy()) for k, v in outputs.items()}),
    )


# ---- arithmetic ----------------------------------------------------------------------------------


def _shift_round(value: np.ndarray, s: int) -> np.ndarray:
    """``(value + 2^(s-1)) >> s`` (arithmetic shift, round half up); ``value`` when s is 0."""
    if s == 0:
        return value
    return (value + (1 << (s - 1))) >> s


def _clamp8(value: np.ndarray, relu: bool) -> np.ndarray:
    return np.clip(value, 0 if relu else -128, 127).astype(np.int8)


def _check_acc(acc: object) -> np.ndarray:
    """``acc`` as int64, checked to be integers within int32."""
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise ValueError(f"acc must be an integer array, not {_describe(acc)}")
    acc = acc.astype(np.int64)
    if acc.size and (acc.min() < ACC_MIN or acc.max() > ACC_MAX):
        raise ValueError(f"acc must lie within int32, not [{int(acc.min())}, {int(acc.max())}]")
    return acc


def _check_channel_values(name: str, values: object, channels: int, lo: int, hi: int) -> np.ndarray:
    """``values`` as int64, checked to be a (channels,) integer array within lo .. hi."""
    if (
        not isinstance(values, np.ndarray)
        or values.dtype.kind not in "iu"
        or values.shape != (channels,)
    ):
        raise ValueError(
            f"{name} must be an integer array of shape ({channels},), not {_describe(values)}"
        )
    bad = np.flatnonzero((values < lo) | (values > hi))
    if bad.size:
        raise ValueError(
            f"{name} must hold ints in {lo}..{hi}, not {int(values[bad[0]])} (channel {bad[0]})"
        )
    return values.astype(np.int64)


def requantize(acc: np.ndarray, m: int, s: int, *, relu: bool = False) -> np.ndarray:
    """Requantise int32 accumulators to int8: ``clamp((acc * m + round) >> s)``, then relu.

    Parameters
    ----------
    acc : numpy.ndarray of integers
        Accumulators, each within int32.
    m, s : int
        Multiplier (1 .. `M_MAX`) and shift (0 .. `S_MAX`).
    relu : bool
        Clamp negative results to 0.

    Returns
    -------
    numpy.ndarray of int8
        Same shape as ``acc``.
    """
    if not _is_int(m) or not 1 <= m <= M_MAX:
        raise ValueError(f"m must be an int in 1..{M_MAX}, not {m!r}")
    if not _is_int(s) or not 0 <= s <= S_MAX:
        raise ValueError(f"s must be an int in 0..{S_MAX}, not {s!r}")
    acc = _check_acc(acc)
    # |acc * m| < 2^47 and the rounding term is below 2^46: int64 holds every intermediate.
    return _clamp8(_shift_round(acc * int(m), int(s)), relu)


def requantize_channels(
    acc: np.ndarray, m: np.ndarray, s: np.ndarray, *, relu: bool = False
) -> np.ndarray:
    """Requantise per output channel: ``clamp((acc[c] * m[c] + round_c) >> s[c])``, then relu.

    The rule of `requantize` (round half up; no rounding term where ``s[c]`` is 0) with channel
    c's own multiplier and shift (docs/arithmetic.md, "Per-channel requantisation").

    Parameters
    ----------
    acc : numpy.ndarray of integers, (C, ...)
        Accumulators, each within int32; axis 0 is the output channel.
    m : numpy.ndarray of integers, (C,)
        Multipliers, each 1 .. `CHANNEL_M_MAX`.
    s : numpy.ndarray of integers, (C,)
        Shifts, each 0 .. `CHANNEL_S_MAX`.
    relu : bool
        Clamp negative results to 0.

    Returns
    -------
    numpy.ndarray of int8
        Same shape as ``acc``.
    """
    acc = _check_acc(acc)
    if acc.ndim < 1:
        raise ValueError(f"acc must have an output-channel axis 0, not {_describe(acc)}")
    channels = acc.shape[0]
    m = _check_channel_values("m", m, channels, 1, CHANNEL_M_MAX)
    s = _check_channel_values("s", s, channels, 0, CHANNEL_S_MAX)
    along = (channels,) + (1,) * (acc.ndim - 1)
    m, s = m.reshape(along), s.reshape(along)
    # |acc * m| < 2^31 * 2^24 = 2^55 and the rounding term is at most 2^62: their sum stays
    # below 2^63, so int64 holds every intermediate even at s = 63.
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), np.int64(0))
    return _clamp8((acc * m + half) >> s, relu)


def pick_multiplier(scale: float) -> tuple[int, int]:
    """The (m, s) whose ``m / 2^s`` is nearest ``scale`` with m in 2^14 .. 2^15.

    Exact and platform independent (``math.frexp``). Where no such s lies in 0 .. `S_MAX`, s is
    clamped and m rounded into 1 .. `M_MAX`.
    """
    if not isinstance(scale, float | int) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, not {scale!r}")
    fraction, exponent = math.frexp(float(scale))  # scale = fraction * 2^exponent, 0.5 <= f < 1
    s = 15 - exponent
    if 0 <= s <= S_MAX:
        return math.floor(math.ldexp(fraction, 15) + 0.5), s  # 2^14 .. 2^15 inclusive
    s = min(max(s, 0), S_MAX)
    return _round_multiplier(math.ldexp(float(scale), s)), s


def pick_channel_multiplier(scale32: np.float32) -> tuple[int, int]:
    """The (m, s) with ``m / 2^s`` exactly equal to the float32 ``scale32``.

    A float32 is ``M * 2^-k`` with M its 24-bit significand, so ``m`` is that significand
    (``2^23 <= m < 2^24`` for a normal float32) and ``s = k``, unless ``s`` would exceed
    `CHANNEL_S_MAX`: then ``m`` loses trailing zero bits (and ``s`` as many) while it has any
    (docs/arithmetic.md, "Per-channel requantisation"). Exact and platform independent
    (``math.frexp`` of the float32's exact float64 value).

    Raises
    ------
    ValueError
        If ``scale32`` is not a positive finite numpy float32, or no ``m`` in
        1 .. `CHANNEL_M_MAX` and ``s`` in 0 .. `CHANNEL_S_MAX` give it exactly (a scale of 2^24
        or more, or one below 2^-40 with too few trailing zero bits).
    """
    if not isinstance(scale32, np.float32) or not np.isfinite(scale32) or scale32 <= 0:
        raise ValueError(f"scale32 must be a positive finite numpy float32, not {scale32!r}")
    fraction, exponent = math.frexp(float(scale32))  # scale = fraction * 2^exponent, 0.5 <= f < 1
    m = math.ldexp(fraction, _FLOAT32_SIGNIFICAND_BITS)
    assert m == int(m), "a float32 has at most 24 significand bits"
    m, s = int(m), _FLOAT32_SIGNIFICAND_BITS - exponent
    while s > CHANNEL_S_MAX and m % 2 == 0:
        m, s = m >> 1, s - 1
    if not (1 <= m <= CHANNEL_M_MAX and 0 <= s <= CHANNEL_S_MAX):
        raise ValueError(
            f"scale32 {float(scale32)!r} = {m} * 2^{-s} has no exact per-channel form: m must be "
            f"in 1..{CHANNEL_M_MAX} and s in 0..{CHANNEL_S_MAX}"
        )
    return m, s


def add_multipliers(scale_a: float, scale_b: float) -> tuple[int, int, int]:
    """``(m_a, m_b, s)`` of an add: ``s`` and the larger ratio's multiplier from
    `pick_multiplier`, the other multiplier ``round(scale * 2^s)`` with the same shift, clamped
    into 1 .. `M_MAX` (docs/arithmetic.md, "Choosing m and s")."""
    m_big, s = pick_multiplier(max(scale_a, scale_b))
    m_a, m_b = (
        m_big if scale == max(scale_a, scale_b) else _round_multiplier(math.ldexp(scale, s))
        for scale in (scale_a, scale_b)
    )
    return m_a, m_b, s


def _check_acc_range(acc: np.ndarray, what: str) -> np.ndarray:
    if acc.size and (acc.min() < ACC_MIN or acc.max() > ACC_MAX):
        raise OverflowError(
            f"{what}: the accumulator leaves int32: [{int(acc.min())}, {int(acc.max())}]"
        )
    return acc


def _exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix product of int8-valued operands through float64 BLAS (exact, see above)."""
    if a.shape[-1] >= _EXACT_TERMS:
        raise ValueError(f"reduction of {a.shape[-1]} terms is too long for an exact product")
    return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)


def conv_accumulate(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: Pair = (1, 1),
    padding: Padding = (0, 0, 0, 0),
    groups: int = 1,
) -> np.ndarray:
    """Int32 accumulators of a zero-padded, grouped 2-d convolution (no requantisation).

    Parameters
    ----------
    x : numpy.ndarray of int8, (C_in, H, W)
    weight : numpy.ndarray of int8, (C_out, C_in / groups, kh, kw)
    bias : numpy.ndarray of int32, (C_out,), or None
    stride : (sh, sw)
    padding : (top, left, bottom, right)
    groups : int
        Divides C_in and C_out; C_in for a depthwise convolution.

    Returns
    -------
    numpy.ndarray of int64, (C_out, OH, OW)
        ``bias[c] + sum over window and input channels of the group``, every value within int32.
    """
    _check_int8("x", x, 3)
    _check_int8("weight", weight, 4)
    c_in = x.shape[0]
    c_out, c_in_g, kh, kw = weight.shape
    if not _is_int(groups) or groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(
            f"groups must be a positive int dividing C_in {c_in} and C_out {c_out}, not {groups!r}"
        )
    if c_in_g * groups != c_in:
        raise ValueError(
            f"weight must hold C_in / groups = {c_in // groups} input channels, not {c_in_g}"
        )
    win = windows(x, (kh, kw), stride, padding, 0)  # (C_in, OH, OW, kh, kw)
    _, oh, ow, _, _ = win.shape
    cols = im2col(win, groups)
    w = weight.reshape(groups, c_out // groups, c_in_g * kh * kw)
    acc = _exact_matmul(w, cols).reshape(c_out, oh, ow)
    if bias is not None:
        acc += _check_bias(bias, c_out)[:, None, None]
    return _check_acc_range(acc, "conv")


def _check_bias(bias: object, channels: int) -> np.ndarray:
    if not isinstance(bias, np.ndarray) or bias.dtype != np.int32 or bias.shape != (channels,):
        raise ValueError(
            f"bias must be an int32 array of shape ({channels},), not {_describe(bias)}"
        )
    return bias.astype(np.int64)


def fc_accumulate(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Int32 accumulators of a fully connected layer on a (C, H, W) input: (N, 1, 1).

    ``acc[n] = bias[n] + sum over c, y, x of weight[n, c, y, x] * x[c, y, x]``.
    """
    _check_int8("x", x, 3)
    _check_int8("weight", weight, 4)
    if weight.shape[1:] != x.shape:
        raise ValueError(
            f"weight must have shape (N, {', '.join(map(str, x.shape))}) for the input, "
            f"not {weight.shape}"
        )
    n = weight.shape[0]
    acc = _exact_matmul(weight.reshape(n, -1), x.reshape(-1, 1)).reshape(n, 1, 1)
    if bias is not None:
        acc += _check_bias(bias, n)[:, None, None]
    return _check_acc_range(acc, "fc")


def maxpool(
    x: np.ndarray, *, kernel: Pair, stride: Pair, padding: Padding = (0, 0, 0, 0)
) -> np.ndarray:
    """Max pool: the maximum of each window's in-bound positions (padding is ignored), int8."""
    _check_int8("x", x, 3)
    sentinel = np.iinfo(np.int16).min  # below every int8 value
    win = windows(x.astype(np.int16), kernel, stride, padding, sentinel)
    out = win.max(axis=(3, 4))
    if out.size and out.min() == sentinel:
        raise ValueError(f"a window of kernel {kernel} lies entirely in the padding {padding}")
    return out.astype(np.int8)


def avgpool_accumulate(
    x: np.ndarray, *, kernel: Pair, stride: Pair, padding: Padding = (0, 0, 0, 0)
) -> np.ndarray:
    """Average pool accumulators: the sum of each window's in-bound positions, int64 (C, OH, OW).

    The division is the requantisation with the op's ``m, s`` (about ``1 / (kh * kw)``).
    """
    _check_int8("x", x, 3)
    win = windows(x.astype(np.int64), kernel, stride, padding, 0)
    return win.sum(axis=(3, 4))


def residual_add(
    a: np.ndarray, b: np.ndarray, *, m_a: int, m_b: int, s: int, relu: bool = False
) -> np.ndarray:
    """Residual add: ``clamp((a * m_a + b * m_b + round) >> s, -128, 127)``, then relu; int8."""
    _check_int8("a", a, 3)
    _check_int8("b", b, 3)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have equal shapes, not {a.shape} and {b.shape}")
    for name, value in (("m_a", m_a), ("m_b", m_b)):
        if not _is_int(value) or not 1 <= value <= M_MAX:
            raise ValueError(f"{name} must be an int in 1..{M_MAX}, not {value!r}")
    if not _is_int(s) or not 0 <= s <= S_MAX:
        raise ValueError(f"s must be an int in 0..{S_MAX}, not {s!r}")
    total = a.astype(np.int64) * int(m_a) + b.astype(np.int64) * int(m_b)
    return _clamp8(_shift_round(total, int(s)), relu)


# ---- attention (docs/attention.md) ---------------------------------------------------------------


def _check_map(name: str, x: object, attention: Attention, first: int) -> np.ndarray:
    """``x`` checked to be an int8 (C, H, W) map that the heads from channel ``first`` and the
    patch fit."""
    _check_int8(name, x, 3)
    assert isinstance(x, np.ndarray)
    channels, height, width = x.shape
    ph, pw = attention.patch
    span = attention.heads * attention.head_channels
    if height % ph or width % pw or first + span > channels:
        raise ValueError(
            f"{name} must be a map whose height and width are multiples of the patch "
            f"{list(attention.patch)} with channels {first} .. {first + span - 1}, not "
            f"{_describe(x)}"
        )
    return x


def head_tokens(x: np.ndarray, attention: Attention, first: int) -> np.ndarray:
    """(batch, N, dh) of a map: ``[b, i, f]`` is channel ``first + h dh + f`` of token i's pixel
    ``(ty ph + py, tx pw + px)``, ``b = (py pw + px) heads + h``, ``i = ty tw + tx``."""
    heads, dh = attention.heads, attention.head_channels
    ph, pw = attention.patch
    _, height, width = x.shape
    th, tw = height // ph, width // pw
    head_channels = x[first : first + heads * dh].reshape(heads, dh, th, ph, tw, pw)
    # (h, f, ty, py, tx, px) -> (py, px, h, ty, tx, f)
    return head_channels.transpose(3, 5, 0, 2, 4, 1).reshape(attention.batch, th * tw, dh)


def _untokens(values: np.ndarray, attention: Attention, height: int, width: int) -> np.ndarray:
    """The inverse of `head_tokens` for a whole (heads * dh, H, W) map: (batch, N, dh) -> map."""
    heads, dh = attention.heads, attention.head_channels
    ph, pw = attention.patch
    th, tw = height // ph, width // pw
    grid = values.reshape(ph, pw, heads, th, tw, dh)
    # (py, px, h, ty, tx, f) -> (h, f, ty, py, tx, px)
    return grid.transpose(2, 5, 3, 0, 4, 1).reshape(heads * dh, height, width)


def scores_tensor(values: np.ndarray) -> np.ndarray:
    """The scores-tensor layout of ``values[b, i, j]`` (batch, N, N): a (batch * N8, 1, N) array
    whose channel ``b * N8 + j`` of pixel (0, i) is ``values[b, i, j]``, 0 for ``j >= N``."""
    batch, n, keys = values.shape
    if keys != n:
        raise ValueError(f"values must be (batch, N, N), not of shape {values.shape}")
    n8 = padded_keys(n)
    out = np.zeros((batch, n8, n), dtype=values.dtype)
    out[:, :n, :] = values.transpose(0, 2, 1)
    return out.reshape(batch * n8, 1, n)


def scores_values(a: np.ndarray, batch: int, n: int) -> np.ndarray:
    """``A[b, i, j]`` (batch, N, N) held by a scores tensor (the inverse of `scores_tensor`)."""
    return a.reshape(batch, padded_keys(n), n)[:, :n, :].transpose(0, 2, 1)


def scores_accumulate(a: np.ndarray, b: np.ndarray, attention: Attention) -> np.ndarray:
    """Accumulators of Q K^T, int64 (batch, N, N): ``[b, i, j] = sum_f Q[b, i, f] K[b, j, f]``.

    ``a`` holds Q from channel ``attention.a_channel``, ``b`` holds K from
    ``attention.b_channel``; both are int8 (C, H, W) maps of the same H x W.
    """
    if attention.kind is not AttentionKind.SCORES:
        raise ValueError(f"attention must be a scores layout, not {attention.kind.value}")
    _check_map("a", a, attention, attention.a_channel)
    _check_map("b", b, attention, attention.b_channel)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"a and b must have equal height and width, not {a.shape} and {b.shape}")
    q = head_tokens(a, attention, attention.a_channel)
    k = head_tokens(b, attention, attention.b_channel)
    return _check_acc_range(_exact_matmul(q, k.transpose(0, 2, 1)), "scores")


def context_accumulate(a: np.ndarray, b: np.ndarray, attention: Attention) -> np.ndarray:
    """Accumulators of A V, int64 (batch, N, dh): ``[b, i, f] = sum_j A[b, i, j] V[b, j, f]``.

    ``a`` is the scores tensor (batch * N8, 1, N) holding A; ``b`` the int8 (C, H, W) map holding
    V from channel ``attention.b_channel``.
    """
    if attention.kind is not AttentionKind.CONTEXT:
        raise ValueError(f"attention must be a context layout, not {attention.kind.value}")
    _check_map("b", b, attention, attention.b_channel)
    n = attention.tokens(b.shape[1], b.shape[2])
    expected = (attention.batch * padded_keys(n), 1, n)
    _check_int8("a", a, 3)
    if a.shape != expected:
        raise ValueError(f"a must be the scores tensor of shape {expected}, not {a.shape}")
    v = head_tokens(b, attention, attention.b_channel)
    return _check_acc_range(_exact_matmul(scores_values(a, attention.batch, n), v), "context")


def pick_softmax_multiplier(scale: float) -> tuple[int, int]:
    """``(m_e, s_e)`` of a softmax over scores of the given scale: `pick_multiplier` of
    ``log2(e) * scale`` (docs/arithmetic.md, "Softmax"); ``s_e`` must be at least the table's
    `EXP_FRACTION_BITS`."""
    m_e, s_e = pick_multiplier(math.log2(math.e) * scale)
    if s_e < EXP_FRACTION_BITS:
        raise ValueError(
            f"scale {scale!r} needs the shift {s_e}; a softmax needs s_e >= {EXP_FRACTION_BITS} "
            "(a scores scale below about 2^10)"
        )
    return m_e, s_e


def softmax(x: np.ndarray, *, m_e: int, s_e: int) -> np.ndarray:
    """The integer softmax of a scores tensor (docs/arithmetic.md, "Softmax"), int8 of scale 1/128.

    ``x`` is (G * n8, 1, n), ``n8 = ceil(n / 8) * 8``: for each group g and pixel i the keys are
    channels ``g * n8 .. g * n8 + n - 1``; the padding channels of the output are 0.
    ``m_e / 2^s_e`` approximates ``log2(e)`` times the scores' scale.
    """
    _check_int8("x", x, 3)
    channels, height, n = x.shape
    n8 = padded_keys(n)
    if height != 1 or channels % n8:
        raise ValueError(
            f"x must be a scores tensor (G * {n8}, 1, {n}) for its {n} keys, not {_describe(x)}"
        )
    if not _is_int(m_e) or not 1 <= m_e <= M_MAX:
        raise ValueError(f"m_e must be an int in 1..{M_MAX}, not {m_e!r}")
    if not _is_int(s_e) or not EXP_FRACTION_BITS <= s_e <= S_MAX:
        raise ValueError(f"s_e must be an int in {EXP_FRACTION_BITS}..{S_MAX}, not {s_e!r}")
    groups = channels // n8
    keys = x.reshape(groups, n8, n)[:, :n, :].astype(np.int64)  # [g, j, i]
    t = (keys.max(axis=1, keepdims=True) - keys) * int(m_e)  # unsigned, below 2^24
    q = t >> int(s_e)
    r = (t >> (int(s_e) - EXP_FRACTION_BITS)) & ((1 << EXP_FRACTION_BITS) - 1)
    table = np.array(EXP_TABLE, dtype=np.int64)
    e = np.where(q < EXP_TABLE_BITS, table[r] >> np.minimum(q, EXP_TABLE_BITS), 0)
    rcp = (1 << RECIPROCAL_SHIFT) // e.sum(axis=1, keepdims=True)  # the max key's e is 2^15
    p = np.minimum(PROB_MAX, (e * rcp + (1 << (PROB_ROUND_SHIFT - 1))) >> PROB_ROUND_SHIFT)
    out = np.zeros((groups, n8, n), dtype=np.int8)
    out[:, :n, :] = p
    return out.reshape(channels, 1, n)


# ---- ops and networks ----------------------------------------------------------------------------


def _weighted_acc(
    op: Op, x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None
) -> np.ndarray:
    if weight is None:
        raise ValueError(f"op {op.name!r}: its OpParams need a weight")
    if op.kind is OpKind.FC:
        return fc_accumulate(x, weight, bias)
    kh, kw = op.kernel
    expected = (op.out.channels, op.in_shapes[0].channels // op.groups, kh, kw)
    if weight.shape != expected:
        raise ValueError(f"op {op.name!r}: weight must have shape {expected}, not {weight.shape}")
    return conv_accumulate(x, weight, bias, stride=op.stride, padding=op.padding, groups=op.groups)


def _avgpool_acc(op: Op, x: np.ndarray) -> np.ndarray:
    return avgpool_accumulate(x, kernel=op.kernel, stride=op.stride, padding=op.padding)


def _attention_acc(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The accumulators of an attention matmul: (batch, N, N) scores or (batch, N, dh) context."""
    assert op.attention is not None
    if op.attention.kind is AttentionKind.SCORES:
        return scores_accumulate(a, b, op.attention)
    return context_accumulate(a, b, op.attention)


def _attention_out(op: Op, values: np.ndarray) -> np.ndarray:
    """Requantised (batch, ...) values of an attention matmul in its output tensor's layout."""
    assert op.attention is not None
    if op.attention.kind is AttentionKind.SCORES:
        return scores_tensor(values)
    return _untokens(values, op.attention, op.out.height, op.out.width)


def run_op(op: Op, inputs: Sequence[np.ndarray], params: OpParams | None = None) -> np.ndarray:
    """The int8 output of one op, given its int8 inputs (in ``op.inputs`` order) and parameters.

    ``params`` is required for conv, fc, avgpool, add, attention matmul and softmax (its ``m``,
    ``s`` are ``m_e``, ``s_e``), and ignored otherwise. It holds per-channel parameters
    (``channel_m``, ``channel_s``) exactly when ``op.per_channel``.

    Raises
    ------
    NotImplementedError
        For a generic matmul (without ``attention``): the layout of its operands is open.
    """
    if len(inputs) != len(op.inputs):
        raise ValueError(f"op {op.name!r} takes {len(op.inputs)} input(s), not {len(inputs)}")
    for tensor, shape, name in zip(inputs, op.in_shapes, op.inputs, strict=True):
        _check_int8(f"input {name!r} of op {op.name!r}", tensor, 3)
        if tensor.shape != (shape.channels, shape.height, shape.width):
            raise ValueError(
                f"input {name!r} of op {op.name!r} must have shape {shape}, not {tensor.shape}"
            )
    if op.kind is OpKind.MATMUL and op.attention is None:
        raise NotImplementedError(_MATMUL_MESSAGE.format(where=f"op {op.name!r}"))
    if op.kind is OpKind.MAXPOOL:
        return maxpool(inputs[0], kernel=op.kernel, stride=op.stride, padding=op.padding)
    if op.kind is OpKind.CONCAT:
        return np.concatenate(inputs, axis=0)
    if params is None:
        raise ValueError(f"op {op.name!r} ({op.kind.value}) needs OpParams")
    if op.per_channel and params.channel_m is None:
        raise ValueError(
            f"op {op.name!r} is per_channel: its OpParams need channel_m and channel_s"
        )
    if not op.per_channel and params.channel_m is not None:
        raise ValueError(
            f"op {op.name!r} is not per_channel: its OpParams must not have channel_m and channel_s"
        )
    if op.kind in (OpKind.CONV, OpKind.FC):
        acc = _weighted_acc(op, inputs[0], params.weight, params.bias)
        if params.channel_m is not None:
            assert params.channel_s is not None
            return requantize_channels(acc, params.channel_m, params.channel_s, relu=op.relu)
        return requantize(acc, params.m, params.s, relu=op.relu)
    if op.kind is OpKind.AVGPOOL:
        return requantize(_avgpool_acc(op, inputs[0]), params.m, params.s)
    if op.kind is OpKind.MATMUL:
        acc = _attention_acc(op, inputs[0], inputs[1])
        return _attention_out(op, requantize(acc, params.m, params.s))
    if op.kind is OpKind.SOFTMAX:
        return softmax(inputs[0], m_e=params.m, s_e=params.s)
    # ADD
    if params.m_b is None:
        raise ValueError(f"op {op.name!r}: an add's OpParams need m_b")
    a, b = inputs
    return residual_add(a, b, m_a=params.m, m_b=params.m_b, s=params.s, relu=op.relu)


_MATMUL_MESSAGE = (
    "{where}: a generic matmul has no golden model: the layout of its activation operands is "
    "open; give it 'attention: scores' or 'attention: context' (docs/attention.md)"
)


def forward(
    network: Network, input: np.ndarray, params: Mapping[str, OpParams]
) -> Mapping[str, np.ndarray]:
    """Every op's int8 output for the given input and parameters, by op name (read-only)."""
    shape = network.input
    _check_int8("input", input, 3)
    if input.shape != (shape.channels, shape.height, shape.width):
        raise ValueError(f"input must have shape {shape}, not {input.shape}")
    tensors: dict[str, np.ndarray] = {network.input_name: input}
    outputs: dict[str, np.ndarray] = {}
    for op in network.ops:
        out = run_op(op, [tensors[name] for name in op.inputs], params.get(op.name))
        tensors[op.name] = outputs[op.name] = _frozen(out)
    return MappingProxyType(outputs)


# ---- random cases --------------------------------------------------------------------------------


def _std(values: np.ndarray) -> float:
    return max(float(np.std(values.astype(np.float64))), 1.0)


def channel_scales(acc: np.ndarray) -> np.ndarray:
    """Per output channel c, the float32 scale ``TARGET_STD / std(acc[c])`` (`make_case`).

    ``std`` is the population standard deviation of the channel's accumulators (axis 0 is the
    channel), floored at 1 as for one scale per op. A channel of a single value (an fc's, or a
    1x1 output map) has no spread of its own: every channel then takes the whole tensor's std.
    """
    per_channel = acc.reshape(acc.shape[0], -1)
    if per_channel.shape[1] > 1:
        stds = [_std(values) for values in per_channel]
    else:
        stds = [_std(acc)] * acc.shape[0]
    return np.array([TARGET_STD / std for std in stds], dtype=np.float32)


def _round_multiplier(value: float) -> int:
    """Round half up and clamp into 1 .. M_MAX."""
    return min(max(math.floor(value + 0.5), 1), M_MAX)


def _resolve_sparsity(network: Network, sparsity: object) -> dict[str, float]:
    weighted = [op.name for op in network.ops if op.kind in (OpKind.CONV, OpKind.FC)]

    def fraction(value: object, what: str) -> float:
        if not isinstance(value, float | int) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{what} must be a number in 0..1, not {value!r}")
        return float(value)

    if isinstance(sparsity, Mapping):
        unknown = [name for name in sparsity if name not in weighted]
        if unknown:
            raise ValueError(
                f"sparsity keys must be conv or fc op names of {network.name!r}, not {unknown[0]!r}"
            )
        return {name: fraction(sparsity.get(name, 0.0), f"sparsity[{name!r}]") for name in weighted}
    value = fraction(sparsity, "sparsity")
    return dict.fromkeys(weighted, value)


def make_case(network: Network, seed: int = 0, sparsity: float | Mapping[str, float] = 0.0) -> Case:
    """A seeded random int8 instance of ``network`` and every op's golden output.

    Draws uniform int8 weights and input (-128 .. 127) and int32 biases (|b| < `BIAS_LIMIT`) from
    one independent stream per op (seeded by ``(seed, op index + 1)``; the input uses index 0), so
    an op's values depend only on the seed and its position. Sparsity then zeroes a randomly
    chosen ``round(fraction * weights)`` of an op's weights (values already 0 stay 0). Running the
    network op by op, each op's requantisation is picked from its own accumulators
    (docs/arithmetic.md, "Choosing m and s"): conv and fc ``m / 2^s ~= TARGET_STD / std(acc)``,
    avgpool ``1 / (kh * kw)``, add ``m_x / 2^s ~= TARGET_STD / (sqrt 2 * std(x))`` per input. A
    ``per_channel`` conv or fc gets per output channel c the exact form
    (`pick_channel_multiplier`) of the float32 ``TARGET_STD / std(acc[c])`` (`channel_scales`).
    An attention matmul is requantised like a conv (``std`` over its batch x N x N or
    batch x N x dh accumulators, not the scores tensor's padding); a softmax takes its scores'
    scale as ``1 / TARGET_STD``: ``m_e / 2^s_e ~= log2(e) / TARGET_STD``
    (`pick_softmax_multiplier`).

    Parameters
    ----------
    network : Network
        Any network without generic matmul ops.
    seed : int
        Non-negative.
    sparsity : float or Mapping[str, float]
        Fraction of weights to zero, for every conv/fc op or per op name (missing names: 0).

    Raises
    ------
    NotImplementedError
        If the network has a generic matmul op (without ``attention``).
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a Network, not {network!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, not {seed!r}")
    matmuls = [op.name for op in network.ops if op.kind is OpKind.MATMUL and op.attention is None]
    if matmuls:
        where = (
            f"network {network.name!r} ({len(matmuls)} generic matmul op(s), the first "
            f"{matmuls[0]!r})"
        )
        raise NotImplementedError(_MATMUL_MESSAGE.format(where=where))
    fractions = _resolve_sparsity(network, sparsity)
    seed = int(seed)

    shape = network.input
    rng = np.random.default_rng([seed, 0])
    image = rng.integers(-128, 128, size=(shape.channels, shape.height, shape.width), dtype=np.int8)
    tensors: dict[str, np.ndarray] = {network.input_name: _frozen(image)}
    params: dict[str, OpParams] = {}
    outputs: dict[str, np.ndarray] = {}
    for index, op in enumerate(network.ops, start=1):
        xs = [tensors[name] for name in op.inputs]
        if op.kind in (OpKind.CONV, OpKind.FC):
            rng = np.random.default_rng([seed, index])
            weight, bias = _random_weights(op, rng, fractions[op.name])
            acc = _weighted_acc(op, xs[0], weight, bias)
            if op.per_channel:
                picked = [pick_channel_multiplier(scale) for scale in channel_scales(acc)]
                channel_m = np.array([m for m, _ in picked], dtype=np.int64)
                channel_s = np.array([s for _, s in picked], dtype=np.int64)
                params[op.name] = OpParams(
                    weight, bias, 1, 0, channel_m=channel_m, channel_s=channel_s
                )
                out = requantize_channels(acc, channel_m, channel_s, relu=op.relu)
            else:
                m, s = pick_multiplier(TARGET_STD / _std(acc))
                params[op.name] = OpParams(weight, bias, m, s)
                out = requantize(acc, m, s, relu=op.relu)
        elif op.kind is OpKind.AVGPOOL:
            kh, kw = op.kernel
            m, s = pick_multiplier(1.0 / (kh * kw))
            params[op.name] = OpParams(None, None, m, s)
            out = requantize(_avgpool_acc(op, xs[0]), m, s)
        elif op.kind is OpKind.MATMUL:
            acc = _attention_acc(op, xs[0], xs[1])
            m, s = pick_multiplier(TARGET_STD / _std(acc))
            params[op.name] = OpParams(None, None, m, s)
            out = _attention_out(op, requantize(acc, m, s))
        elif op.kind is OpKind.SOFTMAX:
            m_e, s_e = pick_softmax_multiplier(1.0 / TARGET_STD)
            params[op.name] = OpParams(None, None, m_e, s_e)
            out = softmax(xs[0], m_e=m_e, s_e=s_e)
        elif op.kind is OpKind.ADD:
            scale_a, scale_b = (TARGET_STD / (math.sqrt(2.0) * _std(x)) for x in xs)
            m_a, m_b, s = add_multipliers(scale_a, scale_b)
            params[op.name] = OpParams(None, None, m_a, s, m_b)
            out = run_op(op, xs, params[op.name])
        else:
            out = run_op(op, xs)
        tensors[op.name] = outputs[op.name] = _frozen(out)
    return Case(
        network=network,
        seed=seed,
        sparsity=MappingProxyType(fractions),
        input=tensors[network.input_name],
        params=MappingProxyType(params),
        outputs=MappingProxyType(outputs),
    )


def _random_weights(
    op: Op, rng: np.random.Generator, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    src = op.in_shapes[0]
    if op.kind is OpKind.FC:
        shape = (op.out.channels, src.channels, src.height, src.width)
    else:
        kh, kw = op.kernel
        shape = (op.out.channels, src.channels // op.groups, kh, kw)
    weight = rng.integers(-128, 128, size=shape, dtype=np.int8)
    bias = rng.integers(1 - BIAS_LIMIT, BIAS_LIMIT, size=op.out.channels, dtype=np.int32)
    zeros = round(fraction * weight.size)
    if zeros:
        weight.reshape(-1)[rng.permutation(weight.size)[:zeros]] = 0
    return weight, bias


def case_from_params(
    network: Network, input: np.ndarray, params: Mapping[str, OpParams], *, seed: int = 0
) -> Case:
    """The golden case of given parameters and input (a model's own weights; no sparsity drawn).

    ``params`` must hold every conv, fc, avgpool, add, attention matmul and softmax op;
    ``seed`` is recorded only.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a Network, not {network!r}")
    image = _frozen(_check_int8("input", input, 3))
    outputs = forward(network, image, params)
    weighted = {op.name: 0.0 for op in network.ops if op.kind in (OpKind.CONV, OpKind.FC)}
    return Case(
        network=network,
        seed=int(seed),
        sparsity=MappingProxyType(weighted),
        input=image,
        params=MappingProxyType(dict(params)),
        outputs=outputs,
    )
