"""What a checkpoint holds and costs, against the network graph and the chip file's numbers."""

import dataclasses
import math

import numpy as np
import pytest
from voltflow.scheduler.checkpoint import idle_power_w, plan_checkpoints, transfer_costs
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
    """A checkpoint writes its words and the marker twice, W whole reference cycles each, plus a
    tick per SAVE and the COMMIT; a restore reads its words, R cycles each, after a tick per
    RESTORE and the banks' wake-up. Bits at the store's prices, scratchpad words at the chip's,
    and the idle power (in the state given) over the copy."""
    chip = load_chip()
    spec = chip.intermittent
    assert spec is not None
    store = spec.checkpoint
    table = build_cost_table(load_network("ds_cnn"), chip)
    checkpoints = plan_checkpoints(table, spec)
    costs = transfer_costs(table, spec, checkpoints)
    write = math.ceil(store.write_ns_per_word * chip.reference_mhz / 1000)
    read = math.ceil(store.read_ns_per_word * chip.reference_mhz / 1000)
    assert (write, read) == (119, 119)  # 148.1 ns at 800 MHz: 148.75 ns, whole cycles
    f = chip.reference_mhz * 1e6
    wake = 16  # 20 ns at 800 MHz
    n = len(checkpoints)
    for c in checkpoints:
        k = c.boundary
        idle = idle_power_w(table, c.banks)
        cycles = len(c.spans) + 1 + (c.data_words + 2) * write
        assert costs.checkpoint_time_s[k] == pytest.approx(cycles / f)
        pj = (c.data_words + 2) * 64 * store.write_pj_per_bit + c.data_words * 35.0
        assert costs.checkpoint_energy_j[k] == pytest.approx(pj * 1e-12 + idle * cycles / f)
        if k < n:
            cycles = 1 + wake + len(c.spans) + c.data_words * read
            assert costs.restore_time_s[k] == pytest.approx(cycles / f)
            pj = c.data_words * (64 * store.read_pj_per_bit + 31.0)
            assert costs.restore_energy_j[k] == pytest.approx(pj * 1e-12 + idle * cycles / f)
    assert not costs.restore_energy_j[n].any() and not costs.checkpoint_energy_j[0].any()
    # The costs differ by state through the idle power only: higher voltages leak more.
    low = table.state_index([0.9, 0.9, 0.9])
    high = table.state_index([1.3, 1.3, 1.3])
    assert np.all(costs.checkpoint_energy_j[1:, high] > costs.checkpoint_energy_j[1:, low])


def test_idle_power_sums_the_chip_files_leakages_at_the_states_voltages() -> None:
    chip = load_chip()
    table = build_cost_table(load_network("ds_cnn"), chip)
    none = np.zeros(table.memory.total, dtype=bool)
    ref = table.state_index([1.1, 1.1, 1.1])
    low = table.state_index([0.9, 1.1, 1.1])
    base = 2.32 + 6.452 + 5.71 + 1.62  # domains' idle power and the always-on supply, uW
    assert idle_power_w(table, none)[ref] == pytest.approx(base * 1e-6)
    # Linear leakage law: the sys domain at 0.9 V leaks 0.9 / 1.1 of its reference power.
    assert idle_power_w(table, none)[low] == pytest.approx((base - 2.32 * 0.2 / 1.1) * 1e-6)
    one = none.copy()
    one[0] = True  # an ifmap bank: 20 uW, in the feeder domain
    assert idle_power_w(table, one)[ref] == pytest.approx((base + 20) * 1e-6)
    feeder_low = table.state_index([1.1, 1.1, 0.9])
    expected = base - 5.71 * 0.2 / 1.1 + 20 * 0.9 / 1.1
    assert idle_power_w(table, one)[feeder_low] == pytest.approx(expected * 1e-6)


def test_without_an_output_commit_the_last_boundary_saves_nothing() -> None:
    chip = load_chip()
    spec = chip.intermittent
    assert spec is not None
    quiet = dataclasses.replace(
        spec, checkpoint=dataclasses.replace(spec.checkpoint, commit_output=False)
    )
    table = build_cost_table(load_network("ds_cnn"), chip)
    checkpoints = plan_checkpoints(table, quiet)
    last = checkpoints[-1]
    costs = transfer_costs(table, quiet, checkpoints)
    assert (last.tensors, last.bits, last.written_words) == ((), 0, 0)
    assert costs.checkpoint_time_s[-1] == 0 and not costs.checkpoint_energy_j[-1].any()
