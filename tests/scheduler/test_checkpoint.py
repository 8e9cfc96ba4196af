"""What a checkpoint holds and costs, against the network graph and the chip file's numbers."""

import dataclasses
import math

import numpy as np
import pytest
from voltflow.scheduler.checkpoint import plan_checkpoints, transfer_idle_power_w
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.cost import build_cost_table, schedule_layers
from voltflow.scheduler.network import load_network


def _stored_words(shape, lanes: int) -> int:
    return math.ceil(shape.channels / lanes) * shape.height * shape.width


@pytest.mark.parametrize("name", ["resnet8", "ds_cnn", "vww"])
def test_live_tensors_follow_the_graph(name: str) -> None:
    """Without concatenations no tensors share storage: a checkpoint is the sum of the tensors
    produced before the boundary and read after it, plus the marker; weights never appear."""
    chip = load_chip()
    network = load_network(name)
    table = build_cost_table(network, chip)
    spec = chip.intermittent
    assert spec is not None
    groups = schedule_layers(network)
    index = {op.name: i for i, op in enumerate(network.ops)}
    for checkpoint in plan_checkpoints(table, spec):
        k = checkpoint.boundary
        last = groups[k - 1][-1]
        if k < len(groups):
            expected = {
                t
                for t in [network.input_name, *index]
                if (index.get(t, -1) <= last)
                and any(index[op.name] > last for op in network.consumers(t))
            }
        else:
            expected = {network.ops[-1].name}
        assert set(checkpoint.tensors) == expected
        words = sum(_stored_words(network.shape(t), chip.lanes_per_word) for t in expected)
        assert checkpoint.data_words == words
        assert checkpoint.bits == words * chip.word_bits + spec.checkpoint.marker_bits


def test_residual_blocks_keep_their_skip_tensor() -> None:
    """Inside a ResNet block the block's input waits for the add: two tensors are saved."""
    chip = load_chip()
    network = load_network("resnet8")
    spec = chip.intermittent
    assert spec is not None
    checkpoints = plan_checkpoints(build_cost_table(network, chip), spec)
    assert max(len(c.tensors) for c in checkpoints) == 2


def test_concatenation_views_are_saved_once() -> None:
    """SqueezeNet's fire module: after expand1x1 the squeeze output and the half-built concat
    buffer are live; after expand3x3 only the concat (its inputs are views inside it)."""
    chip = load_chip()
    network = load_network("squeezenet")
    spec = chip.intermittent
    assert spec is not None
    checkpoints = plan_checkpoints(build_cost_table(network, chip), spec)
    marker = spec.checkpoint.marker_bits
    squeeze = 2 * 55 * 55  # 16 channels, 55x55, 8 channels per word
    expand = 8 * 55 * 55  # 64 channels
    by_layer = {c.boundary: c for c in checkpoints}
    assert by_layer[2].bits == squeeze * 64 + marker  # after features.3.squeeze
    assert by_layer[3].bits == (squeeze + expand) * 64 + marker  # after expand1x1
    assert by_layer[4].bits == 2 * expand * 64 + marker  # after expand3x3 and the concat
    assert by_layer[4].tensors == ("features.3",)
    assert by_layer[26].tensors == ("classifier.3",)  # the output, committed
    assert by_layer[26].bits == 125 * 64 + marker  # 1000 classes


def test_transfer_costs_come_from_the_chip_file() -> None:
    chip = load_chip()
    spec = chip.intermittent
    assert spec is not None
    store = spec.checkpoint
    table = build_cost_table(load_network("ds_cnn"), chip)
    for c in plan_checkpoints(table, spec):
        words = math.ceil(c.bits / store.word_bits)
        assert c.write_time_s == pytest.approx(words * store.write_ns_per_word * 1e-9)
        assert c.read_time_s == pytest.approx(words * store.read_ns_per_word * 1e-9)
        idle = (c.write_energy_j - c.bits * store.write_pj_per_bit * 1e-12) - (
            c.data_words * chip.energy.spad_read_pj * 1e-12
        )
        # The rest is idle power over the transfer: domains, always-on, banks (tens of uW).
        assert 1e-6 < idle / c.write_time_s < 1e-4
        read_idle = c.read_energy_j - c.bits * store.read_pj_per_bit * 1e-12
        read_idle -= c.data_words * chip.energy.spad_write_pj * 1e-12
        assert read_idle / c.read_time_s == pytest.approx(idle / c.write_time_s)


def test_transfer_idle_power_sums_the_chip_files_leakages() -> None:
    chip = load_chip()
    table = build_cost_table(load_network("ds_cnn"), chip)
    none = np.zeros(table.memory.total, dtype=bool)
    base = 2.32 + 6.452 + 5.71 + 1.62  # domains' idle power and the always-on supply, uW
    assert transfer_idle_power_w(chip, none, table) == pytest.approx(base * 1e-6)
    one = none.copy()
    one[0] = True  # an ifmap bank: 20 uW
    assert transfer_idle_power_w(chip, one, table) == pytest.approx((base + 20) * 1e-6)


def test_without_an_output_commit_the_last_boundary_saves_nothing() -> None:
    chip = load_chip()
    spec = chip.intermittent
    assert spec is not None
    quiet = dataclasses.replace(
        spec, checkpoint=dataclasses.replace(spec.checkpoint, commit_output=False)
    )
    last = plan_checkpoints(build_cost_table(load_network("ds_cnn"), chip), quiet)[-1]
    assert (last.tensors, last.bits, last.write_energy_j, last.write_time_s) == ((), 0, 0.0, 0.0)
