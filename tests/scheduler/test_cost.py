"""The cost model against independent references: a cycle-level simulation of the step/epoch
protocol of docs/timing-model.md, brute-force access counts, scaling laws and bank liveness."""

from pathlib import Path

import numpy as np
import pytest

from scheduler.chip import DOMAINS, BankKind, Domain, GatingPolicy, load_chip
from scheduler.cost import Component, LeakageSource, build_cost_table, schedule_layers
from scheduler.dataflow import Mode, op_work
from scheduler.network import OpKind, load_network

TINY = Path(__file__).parent / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def chip():
    return load_chip()


@pytest.fixture(scope="module")
def tiny():
    return load_network(TINY)


def _divider_cycles(ticks: int, inc: int, bits: int) -> int:
    """Reference cycles for `ticks` enables of a restarted divider, simulated cycle by cycle."""
    acc, cycle, seen = 0, 0, 0
    while seen < ticks:
        cycle += 1
        acc += inc
        if acc >> bits:
            acc -= 1 << bits
            seen += 1
    return cycle


def _simulate_op(work, chip, inc_sys: int, inc_rram: int, inc_feeder: int) -> int:
    """Reference cycles of one op, stepping through every step and epoch of the spec one by one."""
    t, bits = chip.timing, chip.divider_phase_bits
    if work.mode is Mode.ALIAS:
        return 0
    if work.mode is Mode.VECTOR:
        return (
            t.op_setup_ref_cycles
            + _divider_cycles(work.vector_ticks, inc_feeder, bits)
            + t.epoch_sync_ref_cycles
        )
    n_tiles = work.tiles
    compute = 0
    for s in range(n_tiles + 3):
        gather = work.gather_ticks if s <= n_tiles - 1 else 0
        write = work.write_words if 3 <= s <= n_tiles + 2 else 0
        sys = (work.stream_ticks if 1 <= s <= n_tiles else 0) + (
            chip.rows + chip.cols if s == n_tiles + 1 else 0
        )
        feeder = max(gather, write)
        compute += max(
            _divider_cycles(feeder, inc_feeder, bits), _divider_cycles(sys, inc_sys, bits)
        )
        compute += t.step_sync_ref_cycles
    total = t.op_setup_ref_cycles
    if work.load_from_rram:
        dma = _divider_cycles(work.load_beats, inc_rram, bits)
        total += dma + t.epoch_sync_ref_cycles
        for _ in range(work.passes - 1):
            total += max(compute, dma) + t.epoch_sync_ref_cycles
        total += compute + t.epoch_sync_ref_cycles
    else:
        load = _divider_cycles(work.load_beats, inc_feeder, bits)
        total += work.passes * (load + compute + 2 * t.epoch_sync_ref_cycles)
    return total


@pytest.mark.parametrize("state", [(1.1, 1.1, 1.1), (0.9, 1.3, 1.05), (1.3, 0.9, 0.95)])
def test_cycles_equal_a_cycle_level_simulation(chip, tiny, state) -> None:
    table = build_cost_table(tiny, chip, GatingPolicy.RRAM_PG)
    s = table.state_index(state)
    inc = {d: int(chip.divider_increment(d, v)) for d, v in zip(DOMAINS, state, strict=True)}
    for layer, group in zip(table.layers, schedule_layers(tiny), strict=True):
        expected = sum(
            _simulate_op(
                table.works[i], chip, inc[Domain.SYS], inc[Domain.RRAM], inc[Domain.FEEDER]
            )
            for i in group
        )
        assert int(layer.ref_cycles[s]) == expected, layer.name


def test_every_op_kind_is_mapped(tiny, chip) -> None:
    modes = {op.kind: op_work(op, chip, tiny).mode for op in tiny.ops}
    assert modes[OpKind.CONCAT] is Mode.ALIAS
    assert modes[OpKind.MAXPOOL] is Mode.VECTOR and modes[OpKind.ADD] is Mode.VECTOR
    assert op_work(tiny.op("dw"), chip, tiny).mode is Mode.DEPTHWISE
    assert op_work(tiny.op("fc"), chip, tiny).mode is Mode.GEMM


def test_activity_counts_against_brute_force(tiny, chip) -> None:
    table = build_cost_table(tiny, chip)
    assert sum(layer.activity.macs for layer in table.layers) == tiny.macs
    # conv1: 3x3, pad 1 on a 12x12 map, 3 input channels (one channel block), 16 outputs (2 passes)
    op = tiny.op("conv1")
    work = op_work(op, chip, tiny)
    inside = 0
    for y in range(12):
        for x in range(12):
            for ky in range(3):
                for kx in range(3):
                    inside += 0 <= y + ky - 1 < 12 and 0 <= x + kx - 1 < 12
    assert work.activity.spad_reads == 2 * inside
    assert work.activity.spad_writes == 2 * 144
    assert work.reduction == 9 * 8 and work.tiles == 18 and work.passes == 2
    assert work.activity.dma_beats == 2 * (72 + 4)
    assert work.activity.sys_ticks == 2 * (18 * 72 + 16)
    # The global average pool reads every word of its input once.
    gap = op_work(tiny.op("gap"), chip, tiny)
    assert gap.activity.spad_reads == 2 * 6 * 6 and gap.activity.spad_writes == 2


def test_dynamic_energy_follows_the_scaling_law(tiny, chip) -> None:
    table = build_cost_table(tiny, chip)
    lo, hi = table.state_index([0.9, 0.9, 0.9]), table.state_index([1.3, 1.1, 1.1])
    layer = table.layers[0]
    assert layer.dynamic_j[Component.PE][hi] / layer.dynamic_j[Component.PE][lo] == pytest.approx(
        (1.3 / 0.9) ** 2
    )
    # The scratchpad is in the feeder domain: 0.9 V -> 1.1 V.
    assert layer.dynamic_j[Component.SPAD][hi] / layer.dynamic_j[Component.SPAD][
        lo
    ] == pytest.approx((1.1 / 0.9) ** 2)
    leak = layer.leakage_w[LeakageSource.SYS]
    assert leak[hi] / leak[lo] == pytest.approx(1.3 / 0.9)
    # A faster state is never slower.
    assert np.all(layer.time_s[table.state_index([1.3, 1.3, 1.3])] <= layer.time_s)


def test_gating_policies_order_bank_counts_and_keep_live_tensors(tiny, chip) -> None:
    tables = {p: build_cost_table(tiny, chip, p) for p in GatingPolicy}
    for a, b in zip(
        tables[GatingPolicy.RRAM_PG].layers, tables[GatingPolicy.LAYER_PG].layers, strict=True
    ):
        assert (
            a.banks_on.sum()
            <= b.banks_on.sum()
            <= tables[GatingPolicy.NO_PG].layers[0].banks_on.sum()
        )
        assert np.all(a.banks_on <= b.banks_on)
    # pool1's output is read again by the residual add: its bank must stay on through dw and pw.
    table = tables[GatingPolicy.RRAM_PG]
    place = next(p for p in table.memory.placements if p.tensor == "pool1")
    assert place.first_op <= [op.name for op in tiny.ops].index("add") <= place.last_op
    for layer in table.layers:
        if layer.name in ("dw", "pw"):
            assert layer.banks_needed[table.memory.first_bank(BankKind.IFMAP)]
    # rram_pg: only the running layer's (and next layer's) weight banks are on.
    rram0 = table.memory.first_bank(BankKind.RRAM)
    assert all(layer.banks_on[rram0:].sum() <= 2 for layer in table.layers)


def test_cost_table_is_vectorised_over_all_729_states(tiny, chip) -> None:
    table = build_cost_table(tiny, chip)
    assert table.n_states == 729
    assert table.voltages_v.shape == (729, 3)
    for layer in table.layers:
        assert layer.time_s.shape == (729,) and np.all(layer.time_s > 0)
        assert np.all(np.isfinite(layer.energy_j)) and np.all(layer.energy_j > 0)


def test_bad_state_and_policy_messages(tiny, chip) -> None:
    table = build_cost_table(tiny, chip)
    with pytest.raises(
        ValueError, match=r"^state \[1\.12, 1\.1, 1\.1\] is not on the voltage grid 0\.9, "
    ):
        table.state_index([1.12, 1.1, 1.1])
    with pytest.raises(ValueError, match=r"^voltage level 0\.8 V is not on chip 'powerflow_ref'"):
        build_cost_table(tiny, chip, levels_v=[0.8, 1.1])
