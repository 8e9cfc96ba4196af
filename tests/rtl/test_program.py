"""The layer program: encoder/decoder round trip, field checks, the compiler's rejections."""

import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.golden import make_case
from voltflow.cosim.images import descriptor_quant
from voltflow.rtl.program import (
    DESCRIPTOR_BITS,
    Descriptor,
    OpDescriptor,
    OpMode,
    compile_program,
    decode,
    encode,
)
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.dataflow import Mode, UnsupportedOpError, op_work
from voltflow.scheduler.memory import plan_memory
from voltflow.scheduler.network import load_network

from tests.cosim.attention_nets import (
    ATTENTION_BLOCKS,
    AttentionBlock,
    attention_block,
    generic_matmul_network,
    random_attention_block,
)

SMALL_CHIP = Path(__file__).parents[1] / "data" / "chip_small.yaml"


def _program(name: str):
    chip = load_chip()
    network = load_network(name)
    works = tuple(op_work(op, chip, network) for op in network.ops)
    layout = plan_memory(network, chip, works)
    case = make_case(network, 0)
    quant = {op.name: descriptor_quant(case, op.name) for op in network.ops}
    return network, works, compile_program(network, chip, layout, works, quant)


@pytest.mark.parametrize("name", ["ds_cnn", "resnet8", "squeezenet"])
def test_every_descriptor_round_trips(name: str) -> None:
    _, works, program = _program(name)
    for descriptor, word in zip(program.descriptors, program.words(), strict=True):
        assert 0 <= word < 1 << DESCRIPTOR_BITS
        assert decode(word) == descriptor
    # One descriptor per op but concatenations; only the last is marked last.
    assert len(program.descriptors) == sum(w.mode is not Mode.ALIAS for w in works)
    assert [d.last for d in program.descriptors] == [0] * (len(program.descriptors) - 1) + [1]


def test_modes_follow_the_dataflow() -> None:
    _, works, program = _program("resnet8")
    pairs = zip(program.descriptors, program.op_index, strict=True)
    modes = {works[i].op.kind.value: d.mode for d, i in pairs}
    assert modes["conv"] is OpMode.GEMM and modes["add"] is OpMode.ADD
    assert modes["fc"] is OpMode.GEMM and modes["avgpool"] is OpMode.AVGPOOL


def test_a_field_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^descriptor field sh must be an int in 0\.\.4095, not "):
        OpDescriptor(mode=OpMode.MAXPOOL, sh=4096)


def test_decode_rejects_a_word_too_wide() -> None:
    with pytest.raises(ValueError, match=r"^word must be an int of \d+ bits, not "):
        decode(1 << DESCRIPTOR_BITS)


def test_generic_matmul_is_rejected_at_compile_time() -> None:
    chip = load_chip()
    network = generic_matmul_network()
    works = tuple(op_work(op, chip, network) for op in network.ops)
    layout = plan_memory(network, chip, works)
    quant = {
        op.name: type("Q", (), {"m": 1, "s": 0, "m_b": 0, "relu": False})() for op in network.ops
    }
    with pytest.raises(
        UnsupportedOpError,
        match=r"^m: a generic matmul has no operand layout the RTL could follow; give it "
        r"'attention: scores' or 'attention: context' \(docs/attention.md\), or use the cost "
        r"model only$",
    ):
        compile_program(network, chip, layout, works, quant)


def test_per_channel_bit_round_trips_and_is_set_for_per_channel_array_ops(tmp_path) -> None:
    """compile_program sets ``per_channel`` from the op (GEMM and DEPTHWISE only); the bit
    survives encode/decode and no other field moves with it."""
    path = tmp_path / "pc.yaml"
    path.write_text(
        "format: voltflow-network/1\nname: pc\ntitle: pc\nsource: test\n"
        "input: {name: x, shape: [8, 6, 6]}\nops:\n"
        "  - {name: a, op: conv, input: x, out_channels: 8, kernel: 3, padding: 1, "
        "per_channel: true}\n"
        "  - {name: d, op: conv, input: a, out_channels: 8, kernel: 3, groups: 8, "
        "per_channel: true}\n"
        "  - {name: p, op: maxpool, input: d, kernel: 2}\n"
        "  - {name: f, op: fc, input: p, out_features: 4, per_channel: true}\n"
        "  - {name: g, op: fc, input: f, out_features: 4}\n"
    )
    chip = load_chip()
    network = load_network(path)
    works = tuple(op_work(op, chip, network) for op in network.ops)
    layout = plan_memory(network, chip, works)
    case = make_case(network, 0)
    quant = {op.name: descriptor_quant(case, op.name) for op in network.ops}
    program = compile_program(network, chip, layout, works, quant)
    modes = [d.mode for d in program.descriptors]
    assert modes == [OpMode.GEMM, OpMode.DEPTHWISE, OpMode.MAXPOOL, OpMode.GEMM, OpMode.GEMM]
    assert [d.per_channel for d in program.descriptors] == [1, 1, 0, 1, 0]
    for descriptor, word in zip(program.descriptors, program.words(), strict=True):
        assert decode(word) == descriptor
        flipped = replace(descriptor, per_channel=1 - descriptor.per_channel)
        assert decode(encode(flipped)) == flipped
        assert encode(flipped) ^ word == 1 << Descriptor.as_shape()["per_channel"].offset
    with pytest.raises(ValueError, match=r"^descriptor field per_channel must be an int in 0\.\.1"):
        OpDescriptor(mode=OpMode.GEMM, per_channel=2)


# ---- attention (docs/attention.md) -------------------------------------------------------------


def _attention_program(block: AttentionBlock, name: str = "attention"):
    chip = load_chip(SMALL_CHIP)
    network = attention_block(block, name)
    works = tuple(op_work(op, chip, network) for op in network.ops)
    layout = plan_memory(network, chip, works)
    case = make_case(network, 0)
    quant = {op.name: descriptor_quant(case, op.name) for op in network.ops}
    program = compile_program(network, chip, layout, works, quant)
    base = {p.tensor: p.base_word for p in layout.placements}
    by_op = {
        network.ops[i].name: d for d, i in zip(program.descriptors, program.op_index, strict=True)
    }
    return network, case, layout, base, by_op, program


def _attention_fields(block: AttentionBlock) -> dict[str, dict[str, int]]:
    """The SCORES, CONTEXT and SOFTMAX fields docs/attention.md gives a block, from its
    parameters alone."""
    (ph, pw), h, w, dh = block.patch, block.height, block.width, block.head_channels
    n, tw, batch = block.tokens, w // pw, ph * pw * block.heads
    spans = {
        first: {math.ceil(((first + k * dh) % 8 + dh) / 8) for k in range(block.heads)}
        for first in (block.q_channel, block.v_channel)
    }
    (kb,), (ob,) = spans[block.q_channel], spans[block.v_channel]
    keys = math.ceil(n / 8)
    shared = {
        "tiles": math.ceil(n / 8), "groups": batch, "resident": 1, "heads": block.heads,
        "head_ch": dh, "map_w": w, "map_plane": h * w, "tok_w": tw, "tok_step": ph * w,
        "ph": ph, "pw": pw, "relu": 0, "per_channel": 0, "rram_base": 0, "pad_t": 0, "pad_l": 0,
        "kh": 1, "kw": 1, "m_b": 0,
    }  # fmt: skip
    return {
        "qk": {
            **shared, "in_h": h, "in_w": w, "out_w": tw, "pixels": n, "sh": ph, "sw": pw,
            "cb": kb, "cin": dh, "cout": n, "group_passes": keys, "k_pad": kb * 8,
            "a_ch": block.q_channel, "b_ch": block.k_channel,
        },
        "av": {
            **shared, "in_h": 1, "in_w": n, "out_w": n, "pixels": n, "sh": 1, "sw": 1,
            "cb": keys, "cin": n, "cout": dh, "group_passes": ob, "k_pad": keys * 8,
            "a_ch": 0, "b_ch": block.v_channel,
        },
        "softmax": {
            "in_h": 1, "in_w": n, "out_w": n, "pixels": n, "cb": keys, "cin": n, "groups": batch,
            "relu": 0, "m_b": 0,
        },
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(ATTENTION_BLOCKS))
def test_attention_descriptors_carry_the_specified_fields(name: str) -> None:
    block = ATTENTION_BLOCKS[name]
    _, case, _, base, by_op, program = _attention_program(block, name)
    modes = {"qk": OpMode.SCORES, "softmax": OpMode.SOFTMAX, "av": OpMode.CONTEXT}
    inputs = {"qk": ("qkv", "qkv"), "softmax": ("qk", None), "av": ("softmax", "qkv")}
    for op_name, fields in _attention_fields(block).items():
        d = by_op[op_name]
        assert d.mode is modes[op_name]
        assert {key: asdict(d)[key] for key in fields} == fields, op_name
        first, second = inputs[op_name]
        assert (d.in_base, d.out_base) == (base[first], base[op_name])
        if second is not None:
            assert d.in2_base == base[second]
        params = case.params[op_name]
        assert (d.m, d.s) == (params.m, params.s)
    assert (by_op["softmax"].m, by_op["softmax"].s) == (23637, 19)  # m_e, s_e of log2(e) / 32
    for descriptor, word in zip(program.descriptors, program.words(), strict=True):
        assert decode(word) == descriptor


def test_one_attention_block_pinned() -> None:
    """Two heads of 12 channels from channel 4 (the second head starts mid-block), patch 2 over
    a 6x4 map: N = 6 tokens, 8 batches; Q, K, V at channels 4, 28, 56 of the 80-channel qkv."""
    block = ATTENTION_BLOCKS["h2_d12_p2_6x4_q4"]
    assert (block.k_channel, block.v_channel, block.qkv_channels) == (28, 56, 80)
    _, _, _, _, by_op, _ = _attention_program(block)
    qk, av, sm = by_op["qk"], by_op["av"], by_op["softmax"]
    assert (qk.cb, qk.group_passes, qk.groups, qk.tiles, qk.k_pad) == (2, 1, 8, 1, 16)
    assert (qk.in_h, qk.in_w, qk.out_w, qk.pixels, qk.sh, qk.sw) == (6, 4, 2, 6, 2, 2)
    assert (qk.tok_step, qk.map_plane, qk.a_ch, qk.b_ch) == (8, 24, 4, 28)
    assert (av.cb, av.group_passes, av.cin, av.cout, av.b_ch, av.k_pad) == (1, 2, 6, 12, 56, 8)
    assert (sm.cb, sm.groups, sm.in_w, sm.pixels) == (1, 8, 6, 6)


@pytest.mark.parametrize("seed", range(12))
def test_random_attention_blocks_compile(seed: int) -> None:
    block = random_attention_block(np.random.default_rng(seed))
    _, _, layout, _, by_op, program = _attention_program(block, f"random{seed}")
    assert [d.mode for d in program.descriptors][:4] == [
        OpMode.GEMM, OpMode.SCORES, OpMode.SOFTMAX, OpMode.CONTEXT
    ]  # fmt: skip
    assert {key: asdict(by_op["av"])[key] for key in _attention_fields(block)["av"]} == (
        _attention_fields(block)["av"]
    )
    # Attention ops have no RRAM weights: an empty bank range.
    assert all(lo == hi for lo, hi in layout.weight_banks[1:4])


def test_attention_descriptor_round_trips_every_field() -> None:
    """Each attention field at its largest value survives encode/decode and moves only its bits."""
    layout = Descriptor.as_shape()
    base = OpDescriptor(mode=OpMode.CONTEXT)
    for name in ("heads", "head_ch", "a_ch", "b_ch", "map_w", "map_plane", "tok_w", "tok_step",
                 "ph", "pw"):  # fmt: skip
        top = (1 << layout[name].width) - 1
        d = replace(base, **{name: top})
        assert decode(encode(d)) == d
        assert encode(d) ^ encode(base) == (top ^ getattr(base, name)) << layout[name].offset
    for mode in (OpMode.SCORES, OpMode.CONTEXT, OpMode.SOFTMAX):
        assert decode(encode(OpDescriptor(mode=mode))).mode is mode
