"""Memory images: channel-blocked words, RRAM weight passes and $readmemh files, decoded by hand."""

import dataclasses
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
from voltflow.cosim.golden import Case, OpParams, make_case
from voltflow.cosim.images import (
    DescriptorQuant,
    descriptor_quant,
    from_words,
    read_readmemh,
    read_tensor,
    rram_image,
    rram_words,
    scratchpad_image,
    scratchpad_words,
    to_words,
    weight_passes,
    write_readmemh,
    write_tensor,
)
from voltflow.scheduler.chip import BankKind, load_chip
from voltflow.scheduler.dataflow import Mode, op_work
from voltflow.scheduler.memory import plan_memory
from voltflow.scheduler.network import OpKind, load_network

from tests.cosim.attention_nets import ATTENTION_BLOCKS, attention_block

TINY = Path(__file__).parents[1] / "scheduler" / "data" / "tiny.yaml"

# fc on a spatial input (kernel = the whole 3x3 input), channel counts that are not multiples of 8
ODD = """\
format: voltflow-network/1
name: odd
title: Odd channel counts
source: voltflow test fixture
input: {name: input, shape: [5, 7, 6]}
ops:
  - {name: conv, op: conv, input: input, out_channels: 11, kernel: [3, 2], stride: 2,
     padding: [1, 0, 1, 1], relu: true}
  - {name: dw, op: conv, input: conv, out_channels: 11, kernel: [1, 3], padding: [0, 1], groups: 11}
  - {name: fc, op: fc, input: dw, out_features: 13}
"""
# The same with requantisation parameters per output channel, and a per-tensor op between.
PER_CHANNEL = """\
format: voltflow-network/1
name: per_channel
title: Odd channel counts, per-channel requantisation
source: voltflow test fixture
input: {name: input, shape: [5, 7, 6]}
ops:
  - {name: conv, op: conv, input: input, out_channels: 11, kernel: [3, 2], stride: 2,
     padding: [1, 0, 1, 1], relu: true, per_channel: true}
  - {name: dw, op: conv, input: conv, out_channels: 11, kernel: [1, 3], padding: [0, 1], groups: 11,
     per_channel: true}
  - {name: pw, op: conv, input: dw, out_channels: 9, kernel: 1}
  - {name: fc, op: fc, input: pw, out_features: 13, per_channel: true}
"""


def lanes_of(word):
    """The 8 int8 lanes of a word, lane 0 = least significant byte."""
    return [
        ((int(word) >> (8 * lane)) & 0xFF) - (256 if (int(word) >> (8 * lane + 7)) & 1 else 0)
        for lane in range(8)
    ]


def int32_halves(word):
    def signed(value):
        return value - (1 << 32) if value >> 31 else value

    return signed(int(word) & 0xFFFFFFFF), signed(int(word) >> 32)


@pytest.fixture(scope="module")
def chip():
    return load_chip()


def setup(network, chip, seed=0):
    works = tuple(op_work(op, chip, network) for op in network.ops)
    return make_case(network, seed=seed), works, plan_memory(network, chip, works)


@pytest.fixture(scope="module", params=["tiny", "odd", "per_channel"])
def network(request, tmp_path_factory):
    if request.param == "tiny":
        return load_network(TINY)
    path = tmp_path_factory.mktemp("net") / f"{request.param}.yaml"
    path.write_text(ODD if request.param == "odd" else PER_CHANNEL)
    return load_network(path)


# ---- activations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5), (8, 2, 3), (9, 3, 2), (17, 1, 4)])
def test_words_round_trip_and_layout(shape):
    tensor = np.random.default_rng(sum(shape)).integers(-128, 128, size=shape, dtype=np.int8)
    words = to_words(tensor)
    channels, height, width = shape
    blocks = -(-channels // 8)
    assert words.dtype == np.uint64 and words.shape == (blocks * height * width,)
    for cb in range(blocks):
        for y in range(height):
            for x in range(width):
                lanes = lanes_of(words[(cb * height + y) * width + x])
                for lane in range(8):
                    c = cb * 8 + lane
                    assert lanes[lane] == (int(tensor[c, y, x]) if c < channels else 0)
    np.testing.assert_array_equal(from_words(words, shape, check_padding=True), tensor)


def test_word_lanes_are_little_endian_bytes():
    tensor = np.arange(1, 9, dtype=np.int8).reshape(8, 1, 1)
    tensor[7] = -1
    assert to_words(tensor).tolist() == [0xFF07060504030201]


def test_from_words_ignores_or_rejects_pad_lanes():
    words = np.array([0xAB00000000000001], dtype=np.uint64)
    assert from_words(words, (1, 1, 1)).tolist() == [[[1]]]
    with pytest.raises(ValueError, match=r"^pad lane of channel 7 at pixel \(0, 0\) must be 0, "):
        from_words(words, (1, 1, 1), check_padding=True)


def test_from_words_checks_the_length():
    with pytest.raises(ValueError, match=r"^words must be a 1-d uint64 array of 6 words for a "):
        from_words(np.zeros(5, np.uint64), (9, 1, 3))


# ---- scratchpad ----------------------------------------------------------------------------------


def test_scratchpad_image_holds_the_input_only(network, chip):
    case, _, layout = setup(network, chip)
    image = scratchpad_image(case, chip, layout)
    counts = dict(layout.counts)
    assert (
        image.size
        == scratchpad_words(chip, layout)
        == (counts[BankKind.IFMAP] * 4096 + counts[BankKind.OFMAP] * 8192)
    )
    (placement,) = [p for p in layout.placements if p.tensor == network.input_name]
    span = slice(placement.base_word, placement.base_word + placement.words)
    np.testing.assert_array_equal(image[span], to_words(case.input))
    rest = np.delete(image, np.arange(span.start, span.stop))
    assert not rest.any()
    got = read_tensor(image, layout, network.input_name, network.input, check_padding=True)
    np.testing.assert_array_equal(got, case.input)


def test_concat_inputs_are_views_of_its_buffer(chip):
    network = load_network(TINY)
    case, _, layout = setup(network, chip)
    image = np.zeros(scratchpad_words(chip, layout), dtype=np.uint64)
    write_tensor(image, layout, "e1", case.outputs["e1"])
    write_tensor(image, layout, "e3", case.outputs["e3"])
    np.testing.assert_array_equal(
        read_tensor(image, layout, "cat", network.shape("cat")), case.outputs["cat"]
    )


def test_read_tensor_checks_the_shape(chip):
    network = load_network(TINY)
    case, _, layout = setup(network, chip)
    image = scratchpad_image(case, chip, layout)
    with pytest.raises(ValueError, match=r"^tensor 'input' is placed as 144 words, but a 9x12x12"):
        read_tensor(image, layout, "input", (9, 12, 12))
    with pytest.raises(KeyError, match="places no tensor 'nope'"):
        read_tensor(image, layout, "nope", (1, 1, 1))


# ---- RRAM ----------------------------------------------------------------------------------------


def decode_gemm(rows, op, weight_shape):
    """Rebuild a (C_out, C_in/groups, kh, kw) weight and the biases from GEMM pass words."""
    c_out, c_in_g, kh, kw = weight_shape
    groups = op.groups
    c_out_g = c_out // groups
    blocks_in, blocks_out = -(-c_in_g // 8), -(-c_out_g // 8)
    k_pad = kh * kw * blocks_in * 8
    weight = np.zeros(weight_shape, dtype=np.int64)
    bias = np.zeros(c_out, dtype=np.int64)
    for g in range(groups):
        for p in range(blocks_out):
            row = rows[g * blocks_out + p]
            for ky in range(kh):
                for kx in range(kw):
                    for cb in range(blocks_in):
                        for i in range(8):
                            k = ((ky * kw) + kx) * 8 * blocks_in + cb * 8 + i
                            for j, value in enumerate(lanes_of(row[k])):
                                co, ci = p * 8 + j, cb * 8 + i
                                if co < c_out_g and ci < c_in_g:
                                    weight[g * c_out_g + co, ci, ky, kx] = value
                                else:
                                    assert value == 0
            for b in range(4):
                for half, value in enumerate(int32_halves(row[k_pad + b])):
                    co = p * 8 + 2 * b + half
                    if co < c_out_g:
                        bias[g * c_out_g + co] = value
                    else:
                        assert value == 0
    return weight, bias


def decode_depthwise(rows, weight_shape):
    channels, _, kh, kw = weight_shape
    weight = np.zeros(weight_shape, dtype=np.int64)
    bias = np.zeros(channels, dtype=np.int64)
    for p, row in enumerate(rows):
        for tap in range(kh * kw):
            for j, value in enumerate(lanes_of(row[tap])):
                if p * 8 + j < channels:
                    weight[p * 8 + j, 0, tap // kw, tap % kw] = value
                else:
                    assert value == 0
        for b in range(4):
            for half, value in enumerate(int32_halves(row[kh * kw + b])):
                if p * 8 + 2 * b + half < channels:
                    bias[p * 8 + 2 * b + half] = value
    return weight, bias


def decode_requant(rows, offset, groups, c_out):
    """Per output channel (m_c, s_c) from the 4 requantisation words at ``offset`` of each pass:
    word b holds channel 2b in bits 0..31 and 2b+1 in bits 32..63, m in bits 0..23 of an entry,
    s in bits 24..29, bits 30..31 zero, and 0 for a channel that does not exist."""
    c_out_g = c_out // groups
    blocks = -(-c_out_g // 8)
    m = np.zeros(c_out, dtype=np.int64)
    s = np.zeros(c_out, dtype=np.int64)
    for g in range(groups):
        for p in range(blocks):
            row = rows[g * blocks + p]
            for b in range(4):
                for half in range(2):
                    entry = (int(row[offset + b]) >> (32 * half)) & 0xFFFFFFFF
                    co = p * 8 + 2 * b + half
                    if co < c_out_g:
                        assert entry >> 30 == 0
                        m[g * c_out_g + co], s[g * c_out_g + co] = entry & 0xFFFFFF, entry >> 24
                    else:
                        assert entry == 0
    return m, s


def test_rram_image_decodes_to_the_weights(network, chip):
    case, works, layout = setup(network, chip)
    image = rram_image(case, chip, layout, works)
    bank_words = chip.bank(BankKind.RRAM).words(chip.word_bits)
    assert image.size == rram_words(chip, layout) == dict(layout.counts)[BankKind.RRAM] * bank_words
    first = layout.first_bank(BankKind.RRAM)
    used = np.zeros(image.size, dtype=bool)
    for op, work, (lo, _) in zip(network.ops, works, layout.weight_banks, strict=True):
        if op.kind not in (OpKind.CONV, OpKind.FC):
            continue
        params = case.params[op.name]
        base = (lo - first) * bank_words
        size = work.passes * work.load_beats
        rows = image[base : base + size].reshape(work.passes, work.load_beats)
        used[base : base + size] = True
        shape = params.weight.shape
        if op.kind is OpKind.FC:  # decode as the conv whose kernel is the whole input
            src = op.in_shapes[0]
            assert shape == (op.out.channels, src.channels, src.height, src.width)
        if work.mode is Mode.DEPTHWISE:
            weight, bias = decode_depthwise(rows, shape)
        else:
            weight, bias = decode_gemm(rows, op, shape)
        np.testing.assert_array_equal(weight, params.weight, err_msg=op.name)
        np.testing.assert_array_equal(bias, params.bias, err_msg=op.name)
        if op.per_channel:
            assert work.load_beats == work.reduction + 4 + 4
            groups = 1 if work.mode is Mode.DEPTHWISE else op.groups
            m, s = decode_requant(rows, work.reduction + 4, groups, op.out.channels)
            np.testing.assert_array_equal(m, params.channel_m, err_msg=op.name)
            np.testing.assert_array_equal(s, params.channel_s, err_msg=op.name)
        else:
            assert work.load_beats == work.reduction + 4
    assert not image[~used].any()


def test_weight_passes_of_a_fc_follow_the_reduction_order(chip):
    # fc over a (16, 1, 1) input: K_pad = 16, k = cb * 8 + i; output channel 9 is lane 1 of pass 1.
    network = load_network(TINY)
    case, works, _ = setup(network, chip)
    index = [op.name for op in network.ops].index("fc")
    rows = weight_passes(case, "fc", works[index], chip)
    assert rows.shape == (2, 16 + 4)
    w = case.params["fc"].weight
    assert lanes_of(rows[1, 10])[1] == w[9, 10, 0, 0]
    assert lanes_of(rows[0, 3])[7] == w[7, 3, 0, 0]
    assert lanes_of(rows[1, 0])[2:] == [0] * 6  # channels 10 .. 15 do not exist


def test_negative_biases_are_packed_in_twos_complement(chip):
    network = load_network(TINY)
    case, works, _ = setup(network, chip)
    bias = np.array([-1, -(2**31), 2**31 - 1, 0, -2, 5, -4095, 1] * 2, dtype=np.int32)
    params = dict(case.params)
    params["pw"] = OpParams(case.params["pw"].weight, bias, 1, 0)
    patched = dataclasses.replace(case, params=MappingProxyType(params))
    index = [op.name for op in network.ops].index("pw")
    rows = weight_passes(patched, "pw", works[index], chip)
    k_pad = works[index].reduction
    assert rows[0, k_pad:].tolist() == [
        0x80000000_FFFFFFFF,
        0x00000000_7FFFFFFF,
        0x00000005_FFFFFFFE,
        0x00000001_FFFFF001,
    ]


def test_requant_entries_are_packed_as_specified(chip, tmp_path):
    """Hand-chosen parameters at the ends of their ranges land in the documented bits."""
    path = tmp_path / "pc.yaml"
    path.write_text(PER_CHANNEL)
    network = load_network(path)
    case, works, _ = setup(network, chip)
    index = [op.name for op in network.ops].index("fc")
    m = np.array([1, 2**24 - 1, 0x123456, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    s = np.array([0, 63, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    params = dict(case.params)
    fc = case.params["fc"]
    params["fc"] = OpParams(fc.weight, fc.bias, 1, 0, channel_m=m, channel_s=s)
    patched = dataclasses.replace(case, params=MappingProxyType(params))
    rows = weight_passes(patched, "fc", works[index], chip)
    k_pad = works[index].reduction
    assert rows.shape == (2, k_pad + 8)
    assert rows[0, k_pad + 4 :].tolist() == [
        0x3FFFFFFF_00000001,  # channel 1 (m 2^24 - 1, s 63) above channel 0 (m 1, s 0)
        0x01000005_11123456,
        0x03000007_02000006,
        0x05000009_04000008,
    ]
    # Pass 1 holds channels 8 .. 12; 13 .. 15 do not exist.
    assert rows[1, k_pad + 4 :].tolist() == [
        0x0700000B_0600000A,
        0x0900000D_0800000C,
        0x00000000_0A00000E,
        0,
    ]


def test_weight_passes_checks_the_op(chip):
    network = load_network(TINY)
    case, works, _ = setup(network, chip)
    with pytest.raises(ValueError, match=r"^op 'gap' \(avgpool\) loads no weights from RRAM"):
        weight_passes(case, "gap", works[[op.name for op in network.ops].index("gap")], chip)
    with pytest.raises(ValueError, match=r"^work must be the OpWork of op 'pw', not of 'conv1'$"):
        weight_passes(case, "pw", works[0], chip)


def test_images_reject_another_word_format(chip):
    network = load_network(TINY)
    case, _, layout = setup(network, chip)
    wide = dataclasses.replace(chip, word_bits=128)
    with pytest.raises(ValueError, match=r"^the memory images need word_bits, operand_bits"):
        scratchpad_image(case, wide, layout)


# ---- descriptors ---------------------------------------------------------------------------------


def test_descriptor_quant(chip):
    case = make_case(load_network(TINY))
    conv = case.params["conv1"]
    assert descriptor_quant(case, "conv1") == DescriptorQuant(conv.m, conv.s, 0, True)
    add = case.params["add"]
    assert descriptor_quant(case, "add") == DescriptorQuant(add.m, add.s, add.m_b, True)
    assert descriptor_quant(case, "e1").relu is False
    assert descriptor_quant(case, "pool1") == DescriptorQuant(1, 0, 0, False)
    assert isinstance(case, Case)


def test_attention_ops_have_no_rram_words_and_their_tensors_follow_the_spec(chip):
    """Attention matmuls and softmax load nothing from RRAM (no weight banks, no image words, no
    weights); their descriptors take m, s (m_e, s_e) from the case; the scores tensor's word
    ``(b * NB + nb) * N + i`` holds out[b, i, nb * 8 + c] in lane c (docs/attention.md)."""
    block = ATTENTION_BLOCKS["h2_d12_p2_6x4_q4"]
    network = attention_block(block)
    case, works, layout = setup(network, chip)
    names = [op.name for op in network.ops]
    image = rram_image(case, chip, layout, works)
    stored = sum(w.passes * w.load_beats for w in works if w.load_from_rram)
    assert stored == sum(w.passes * w.load_beats for w in works if w.op.name in ("qkv", "proj"))
    bank_words = chip.bank(BankKind.RRAM).words(chip.word_bits)
    first = layout.first_bank(BankKind.RRAM)
    for name in ("qkv", "proj"):
        lo, _ = layout.weight_banks[names.index(name)]
        work = works[names.index(name)]
        start = (lo - first) * bank_words
        rows = image[start : start + work.passes * work.load_beats]
        np.testing.assert_array_equal(rows, weight_passes(case, name, work, chip).reshape(-1))
    for name in ("qk", "softmax", "av"):
        lo, hi = layout.weight_banks[names.index(name)]
        assert lo == hi
        with pytest.raises(ValueError, match=r"loads no weights from RRAM; only conv and fc do"):
            weight_passes(case, name, works[names.index(name)], chip)
        params = case.params[name]
        assert descriptor_quant(case, name) == DescriptorQuant(params.m, params.s, 0, False)
    # The scores tensor in words: N = 6 tokens, batch 8, NB = 1 block of keys per batch.
    qk = case.outputs["qk"]
    n, n8, batch = block.tokens, 8, 8
    words = to_words(qk)
    assert words.size == batch * n and layout_words(layout, "qk") == batch * n
    values = qk.reshape(batch, n8, n)  # [b, j, i]
    for b in range(batch):
        for i in range(n):
            assert lanes_of(words[b * n + i]) == [int(values[b, c, i]) for c in range(8)]
            assert lanes_of(words[b * n + i])[n:] == [0] * (8 - n)


def layout_words(layout, tensor):
    return next(p.words for p in layout.placements if p.tensor == tensor)


# ---- hex files -----------------------------------------------------------------------------------


def test_readmemh_round_trip(tmp_path):
    words = np.array([0, 1, 0x0123456789ABCDEF, 2**64 - 1, 2**63], dtype=np.uint64)
    path = tmp_path / "words.hex"
    write_readmemh(path, words)
    assert path.read_text().splitlines() == [
        "0000000000000000",
        "0000000000000001",
        "0123456789abcdef",
        "ffffffffffffffff",
        "8000000000000000",
    ]
    np.testing.assert_array_equal(read_readmemh(path), words)
    write_readmemh(path, np.zeros(0, dtype=np.uint64))
    assert path.read_bytes() == b""
    assert read_readmemh(path).size == 0


def test_readmemh_reader_is_general(tmp_path):
    path = tmp_path / "words.hex"
    path.write_text("// header\n\nff 10_00\n  DEADBEEF // tail\n")
    assert read_readmemh(path).tolist() == [0xFF, 0x1000, 0xDEADBEEF]
    path.write_text("@10\n00\n")
    with pytest.raises(
        ValueError, match=r"words\.hex:1: address records \(@10\) are not supported"
    ):
        read_readmemh(path)
    path.write_text("0x12\n")
    with pytest.raises(ValueError, match=r"words\.hex:1: '0x12' is not a hex number$"):
        read_readmemh(path)
    path.write_text("1" + "0" * 16 + "\n")
    with pytest.raises(ValueError, match=r"does not fit in 64 bits$"):
        read_readmemh(path)


def test_write_readmemh_wants_uint64(tmp_path):
    with pytest.raises(ValueError, match=r"^words must be a 1-d uint64 array, not int64"):
        write_readmemh(tmp_path / "x.hex", np.zeros(3, dtype=np.int64))
