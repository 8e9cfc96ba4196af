"""The layer program: encoder/decoder round trip, field checks, the compiler's rejections."""

from dataclasses import replace

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


def test_matmul_is_rejected_at_compile_time() -> None:
    chip = load_chip()
    network = load_network("mobilevit_xxs")
    works = tuple(op_work(op, chip, network) for op in network.ops)
    layout = plan_memory(network, chip, works)
    quant = {
        op.name: type("Q", (), {"m": 1, "s": 0, "m_b": 0, "relu": False})() for op in network.ops
    }
    with pytest.raises(UnsupportedOpError, match=r"matmul ops are not supported by the RTL yet"):
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
