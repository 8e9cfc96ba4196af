"""The cost model against independent references: a cycle-level simulation of the step/epoch
protocol of docs/timing-model.md, brute-force access counts, scaling laws and bank liveness."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from voltflow.scheduler.chip import DOMAINS, BankKind, Domain, GatingPolicy, load_chip
from voltflow.scheduler.cost import Component, LeakageSource, build_cost_table, schedule_layers
from voltflow.scheduler.dataflow import Mode, UnsupportedOpError, op_work
from voltflow.scheduler.memory import plan_memory
from voltflow.scheduler.network import OpKind, load_network

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

    def compute(q: int) -> int:
        cycles = 0
        for s in range(n_tiles + 3):
            gather = work.gather_ticks if s <= n_tiles - 1 else 0
            write = q * work.write_words if 3 <= s <= n_tiles + 2 else 0
            # The step's last sub-tile lasts until the previous tile has drained (R + C ticks).
            stream = (q - 1) * work.stream_ticks + max(work.stream_ticks, chip.rows + chip.cols)
            sys = (stream if 1 <= s <= n_tiles else 0) + (
                chip.rows + chip.cols if s == n_tiles + 1 else 0
            )
            cycles += max(
                _divider_cycles(max(gather, write), inc_feeder, bits),
                _divider_cycles(sys, inc_sys, bits),
            )
            cycles += t.step_sync_ref_cycles
        return cycles

    epochs = work.epoch_passes
    assert sum(epochs) == work.passes
    total = t.op_setup_ref_cycles
    if work.load_from_rram:
        total += (
            _divider_cycles(epochs[0] * work.load_beats, inc_rram, bits) + t.epoch_sync_ref_cycles
        )
        for e in range(1, len(epochs)):
            dma = _divider_cycles(epochs[e] * work.load_beats, inc_rram, bits)
            total += max(compute(epochs[e - 1]), dma) + t.epoch_sync_ref_cycles
        total += compute(epochs[-1]) + t.epoch_sync_ref_cycles
    else:
        for q in epochs:
            load = _divider_cycles(q * work.load_beats, inc_feeder, bits)
            total += load + compute(q) + 2 * t.epoch_sync_ref_cycles
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
    dw = op_work(tiny.op("dw"), chip, tiny)  # 3x3 depthwise on 6x6: 36 one-pixel tiles, 2 passes
    assert (dw.stream_ticks, dw.drain_ticks, dw.tiles, dw.passes) == (9, 7, 36, 2)
    assert dw.activity.sys_ticks == 2 * (36 * (9 + 7) + 16)
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
    assert work.activity.spad_writes == 2 * 144
    assert work.reduction == 9 * 8 and work.tiles == 18 and work.passes == 2
    assert work.epoch_passes == (2,)  # both 8-channel passes fit in the weight buffer together
    assert work.activity.spad_reads == inside  # so the input is gathered once
    assert work.activity.dma_beats == 2 * (72 + 4)
    assert work.activity.sys_ticks == 18 * 2 * 72 + 16
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


def test_mixed_epochs_equal_the_simulation(tmp_path, chip) -> None:
    """A small weight buffer splits passes into epochs of 2, 2 and 1 (a remainder epoch)."""
    (tmp_path / "mixed.yaml").write_text(
        "format: voltflow-network/1\nname: mixed\ntitle: mixed\nsource: test\n"
        "input: {name: x, shape: [48, 7, 6]}\n"
        "ops:\n"
        "  - {name: pw, op: conv, input: x, out_channels: 40, kernel: 1}\n"
        "  - {name: down, op: conv, input: pw, out_channels: 8, kernel: [1, 3], stride: 2,"
        " padding: [0, 1]}\n"
    )
    net = load_network(tmp_path / "mixed.yaml")
    small = replace(chip, weight_buffer_half_kib=1)
    work = op_work(net.op("pw"), small, net)
    assert work.load_beats == 48 + 4 and work.epoch_passes == (2, 2, 1)
    table = build_cost_table(net, small)
    for state in [(1.1, 1.1, 1.1), (1.3, 0.9, 0.9), (0.9, 0.9, 1.3)]:
        s = table.state_index(state)
        inc = {d: int(small.divider_increment(d, v)) for d, v in zip(DOMAINS, state, strict=True)}
        for layer, work in zip(table.layers, table.works, strict=True):
            expected = _simulate_op(
                work, small, inc[Domain.SYS], inc[Domain.RRAM], inc[Domain.FEEDER]
            )
            assert int(layer.ref_cycles[s]) == expected


def test_a_pass_larger_than_the_weight_buffer_is_rejected(chip, tiny) -> None:
    small = replace(chip, weight_buffer_half_kib=1)
    from voltflow.scheduler.dataflow import UnsupportedOpError

    with pytest.raises(
        UnsupportedOpError,
        match=r"^network .* on chip .*: op e3: one pass needs 148 words of the weight buffer, "
        r"but half of it holds 128; set buffers\.weight_buffer_half_kib >= 2$",
    ):
        op_work(tiny.op("e3"), small, tiny)


# ---- per-channel requantisation -------------------------------------------------------------

SMALL_CHIP = Path(__file__).parents[1] / "data" / "chip_small.yaml"


def _twins(tmp_path, shape: str, op: str):
    """The one-op network ``op`` with one multiplier per op and with ``per_channel: true``."""
    nets = []
    for per_channel in (False, True):
        path = tmp_path / f"pc_{per_channel}.yaml"
        path.write_text(
            "format: voltflow-network/1\nname: pc\ntitle: pc\nsource: test\n"
            f"input: {{name: x, shape: {shape}}}\n"
            f"ops:\n  - {{name: c, {op}, per_channel: {str(per_channel).lower()}}}\n"
        )
        nets.append(load_network(path))
    return nets


@pytest.mark.parametrize(
    ("shape", "op"),
    [
        ("[8, 6, 6]", "op: conv, input: x, out_channels: 16, kernel: 3, padding: 1"),
        ("[12, 7, 6]", "op: conv, input: x, out_channels: 12, kernel: 3, stride: 2, groups: 12"),
        ("[13, 3, 2]", "op: fc, input: x, out_features: 19"),
    ],
)
def test_a_per_channel_pass_loads_and_reads_four_more_words(chip, tmp_path, shape, op) -> None:
    """K_pad weight words, 4 bias words, then 4 requantisation words (C * 32 / 64) per pass:
    4 more DMA beats, RRAM reads and weight-buffer writes and reads per pass, nothing else."""
    per_tensor, per_channel = (
        op_work(net.op("c"), chip, net) for net in _twins(tmp_path, shape, op)
    )
    assert per_tensor.load_beats == per_tensor.reduction + 4
    assert per_channel.load_beats == per_channel.reduction + 4 + 4
    assert per_channel.epoch_passes == per_tensor.epoch_passes
    extra = 4 * per_channel.passes
    a, b = per_tensor.activity, per_channel.activity
    assert (
        replace(
            b,
            rram_ticks=b.rram_ticks - extra,
            dma_beats=b.dma_beats - extra,
            rram_reads=b.rram_reads - extra,
            wbuf_writes=b.wbuf_writes - extra,
            wbuf_reads=b.wbuf_reads - extra,
        )
        == a
    )
    # The reads counted against the RTL's definition: every weight row per tile and pass, and
    # the bias and requantisation words once per pass.
    t, k = per_channel.tiles, per_channel.reduction
    assert b.wbuf_reads == per_channel.passes * (t * k + 8)
    assert b.dma_beats == per_channel.passes * (k + 8)


def test_per_channel_passes_fill_the_weight_buffer_and_rram_sooner(tmp_path) -> None:
    """The small chip's 1024-word buffer half holds 13 passes of 72 + 4 words but only 12 of
    72 + 8: two epochs instead of one, each cycle count still that of the step simulation; the 13
    passes' RRAM words need a second 1024-word bank."""
    small = load_chip(SMALL_CHIP)
    nets = _twins(
        tmp_path, "[8, 6, 6]", "op: conv, input: x, out_channels: 100, kernel: 3, padding: 1"
    )
    works = [op_work(net.op("c"), small, net) for net in nets]
    assert [w.epoch_passes for w in works] == [(13,), (12, 1)]
    assert [w.activity.epochs for w in works] == [2, 3]
    banks = [
        plan_memory(net, small, (w,)).weight_banks[0] for net, w in zip(nets, works, strict=True)
    ]
    assert [hi - lo for lo, hi in banks] == [1, 2]  # 988 and 1040 words
    for state in [(1.1, 1.1, 1.1), (0.9, 1.3, 1.0), (1.3, 0.9, 1.2)]:
        inc = {d: int(small.divider_increment(d, v)) for d, v in zip(DOMAINS, state, strict=True)}
        args = [np.array(inc[d]) for d in (Domain.SYS, Domain.RRAM, Domain.FEEDER)]
        # Not necessarily slower: the 13th pass's load now overlaps the first epoch's compute.
        assert int(works[1].ref_cycles(small, *args)) == _simulate_op(
            works[1], small, inc[Domain.SYS], inc[Domain.RRAM], inc[Domain.FEEDER]
        )


def test_a_per_channel_pass_must_fit_half_the_weight_buffer(chip, tmp_path) -> None:
    """An 11x11 depthwise pass is 121 + 4 words, or 121 + 8 per channel: 129 > 128 words."""
    small = replace(chip, weight_buffer_half_kib=1)
    per_tensor, per_channel = _twins(
        tmp_path, "[8, 12, 12]", "op: conv, input: x, out_channels: 8, kernel: 11, groups: 8"
    )
    assert op_work(per_tensor.op("c"), small, per_tensor).load_beats == 125
    with pytest.raises(
        UnsupportedOpError,
        match=r"^network .* on chip .*: op c: one pass needs 129 words of the weight buffer, "
        r"but half of it holds 128; "
        r"set buffers\.weight_buffer_half_kib >= 2$",
    ):
        op_work(per_channel.op("c"), small, per_channel)
