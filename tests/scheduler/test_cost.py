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
            load = _divider_cycles(q * work.load_ticks, inc_feeder, bits)
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


# ---- attention (docs/attention.md) ----------------------------------------------------------

ATTENTION = """\
format: voltflow-network/1
name: attn
title: attn
source: test
input: {name: x, shape: [24, 6, 4]}
ops:
  - {name: qkv, op: conv, input: x, out_channels: 76, kernel: 1}
  - {name: qk, op: matmul, inputs: [qkv, qkv], attention: scores, heads: 2, head_channels: 12,
     patch: [2, 1], a_channel: 4, b_channel: 28}
  - {name: sm, op: softmax, input: qk}
  - {name: av, op: matmul, inputs: [sm, qkv], attention: context, heads: 2, head_channels: 12,
     patch: [2, 1], b_channel: 48}
  - {name: proj, op: conv, input: av, out_channels: 24, kernel: 1}
  - {name: gen, op: matmul, inputs: [proj, proj], batch: 3, m: 10, k: 12, n: 9,
     out_shape: [27, 2, 5]}
"""


@pytest.fixture(scope="module")
def attn(tmp_path_factory):
    path = tmp_path_factory.mktemp("attn") / "attn.yaml"
    path.write_text(ATTENTION)
    return load_network(path)


def _brute_force_attention(op, lanes: int, rows: int, cols: int) -> dict[str, int]:
    """The counts of docs/attention.md ("Mapping", "Activity per op") by walking every pass,
    tile, row, column and reduction index of the spec one by one."""
    att = op.attention
    n = att.tokens(op.attention_map.height, op.attention_map.width)
    dh, scores = att.head_channels, att.kind.value == "scores"
    first = att.a_channel if scores else att.b_channel
    counts = dict.fromkeys(("a_reads", "b_reads", "writes", "macs", "passes"), 0)
    for b in range(att.batch):
        h = b % att.heads
        lo = (first + h * dh) % lanes
        in_head = [0 <= k - lo < dh for k in range(4 * lanes)]
        kb = -(-(lo + dh) // lanes) if scores else -(-n // lanes)
        per_batch = -(-n // cols) if scores else -(-(lo + dh) // lanes)
        for nb in range(per_batch):
            counts["passes"] += 1
            # B load: SCORES reads K's word of each block at token j = nb C + c < N; CONTEXT
            # reads V's word at each token k < N.
            counts["b_reads"] += kb * sum(nb * cols + c < n for c in range(cols)) if scores else n
            for t in range(-(-n // rows)):
                for r in range(rows):
                    i = t * rows + r
                    if i >= n:
                        continue
                    counts["a_reads"] += kb
                    counts["writes"] += 1
                    for c in range(cols):
                        real_col = nb * cols + c < n if scores else in_head[nb * lanes + c]
                        for k in range(kb * lanes):
                            real_k = in_head[k] if scores else k < n
                            counts["macs"] += real_col and real_k
    return counts


def test_attention_activity_against_brute_force(attn, chip) -> None:
    """Misaligned heads (dh = 12 from channel 4: lanes 4..15 and 0..11 of two blocks each), 12
    tokens per position, patch 2x1: the counts equal a walk through the spec's mapping."""
    for name, mode in (("qk", Mode.SCORES), ("av", Mode.CONTEXT)):
        op = attn.op(name)
        work = op_work(op, chip, attn)
        act = work.activity
        counts = _brute_force_attention(op, chip.lanes_per_word, chip.rows, chip.cols)
        assert work.mode is mode and not work.load_from_rram
        assert work.passes == counts["passes"] and work.epoch_passes == (1,) * work.passes
        assert act.spad_reads == counts["a_reads"] + counts["b_reads"], name
        assert act.spad_writes == counts["writes"]
        assert act.macs == counts["macs"] == op.macs
        assert sum(work.b_reads) * op.attention.batch == counts["b_reads"]
        j, t, k_pad = work.passes, work.tiles, work.reduction
        assert act.wbuf_writes == j * k_pad and act.wbuf_reads == j * t * k_pad
        assert act.rram_reads == act.dma_beats == act.rram_ticks == 0
        assert act.epochs == 2 * j and act.steps == j * (t + 3)
        assert act.lane_bits == 2 * j * t * work.gather_ticks * 64
    qk, av = op_work(attn.op("qk"), chip, attn), op_work(attn.op("av"), chip, attn)
    # SCORES: KB = 2 blocks of head features, NB = 2 passes of 8 tokens, transposing loads.
    assert (qk.reduction_blocks, qk.group_passes, qk.passes, qk.tiles) == (2, 2, 8, 2)
    assert qk.load_ticks == 2 * (8 + 8) and qk.load_beats == qk.reduction == 16
    assert qk.b_reads == (2 * 8, 2 * 4)
    # CONTEXT: KB = ceil(12 / 8) = 2 key blocks, OB = 2 output blocks per head.
    assert (av.reduction_blocks, av.group_passes, av.passes) == (2, 2, 8)
    assert av.load_ticks == av.load_beats == 16 and av.b_reads == (12, 12)


def test_attention_cycles_equal_the_simulation(attn, chip) -> None:
    """Load phase r_feeder(load_ticks) + sync, compute phase compute(1) + sync, per pass; the
    softmax a VECTOR op of G n (3 NB + 18) + 1 ticks."""
    table = build_cost_table(attn, chip)
    sm = table.works[[op.name for op in attn.ops].index("sm")]
    assert sm.mode is Mode.VECTOR and sm.vector_ticks == 4 * 12 * (3 * 2 + 18) + 1
    assert (sm.activity.spad_reads, sm.activity.spad_writes) == (3 * 2 * 48, 2 * 48)
    for state in [(1.1, 1.1, 1.1), (0.9, 1.3, 1.05), (1.3, 0.9, 0.95)]:
        s = table.state_index(state)
        inc = {d: int(chip.divider_increment(d, v)) for d, v in zip(DOMAINS, state, strict=True)}
        for layer, group in zip(table.layers, schedule_layers(attn), strict=True):
            expected = sum(
                _simulate_op(
                    table.works[i], chip, inc[Domain.SYS], inc[Domain.RRAM], inc[Domain.FEEDER]
                )
                for i in group
            )
            assert int(layer.ref_cycles[s]) == expected, layer.name


def test_generic_matmul_keeps_its_numbers(attn, chip) -> None:
    """The layout-free matmul (cost model only): J = batch ceil(n / C) passes of K_pad words
    loaded by the feeder, A gathered once per pass (docs/timing-model.md)."""
    work = op_work(attn.op("gen"), chip, attn)
    assert work.mode is Mode.GEMM and (work.passes, work.tiles, work.reduction) == (6, 2, 16)
    assert work.load_ticks == work.load_beats == 16 and work.b_reads == (16, 16)
    act = work.activity
    assert act.spad_reads == 6 * (2 * 10 + 16) and act.spad_writes == 6 * 10
    steps = 2 * 16 + 2 * 8  # per pass: gather G = 16 twice, write W = 8 twice
    assert act.feeder_ticks == 6 * (steps + 16)


@pytest.mark.parametrize(
    ("keys", "rule"),
    [
        ("attention: scores, heads: 2, head_channels: 8, a_channel: 0, b_channel: 4",
         r"a_channel 0 and b_channel 4 must be equal modulo 8 so that Q's and K's lanes line up "
         r"\(docs/attention.md, Lanes of a head\), not 0 and 4"),
        ("attention: scores, heads: 2, head_channels: 4, a_channel: 6, b_channel: 14",
         r"every head must touch the same number of 8-channel blocks \(docs/attention.md, Lanes "
         r"of a head\), but heads of 4 channels from channel 6 touch 2, 1"),
    ],
)  # fmt: skip
def test_attention_lane_rules_are_enforced(tmp_path, chip, keys, rule) -> None:
    path = tmp_path / "lanes.yaml"
    path.write_text(
        "format: voltflow-network/1\nname: lanes\ntitle: t\nsource: s\n"
        "input: {name: x, shape: [24, 4, 4]}\nops:\n"
        f"  - {{name: m, op: matmul, inputs: [x, x], {keys}}}\n"
    )
    net = load_network(path)
    with pytest.raises(
        UnsupportedOpError, match=r"^network 'lanes' on chip 'powerflow_ref': op m: " + rule + "$"
    ):
        op_work(net.op("m"), chip, net)


def test_context_needs_v_on_a_block_boundary_and_the_chip_eight_lanes(attn, chip, tmp_path) -> None:
    path = tmp_path / "ctx.yaml"
    path.write_text(ATTENTION.replace("b_channel: 48", "b_channel: 44"))
    net = load_network(path)
    with pytest.raises(
        UnsupportedOpError,
        match=r"op av: b_channel 44 must be a multiple of 8 so that V's lanes are the output's "
        r"lanes \(docs/attention.md, Lanes of a head\)$",
    ):
        op_work(net.op("av"), chip, net)
    narrow = replace(chip, operand_bits=16, cols=4)
    for name in ("qk", "sm", "av"):
        with pytest.raises(
            UnsupportedOpError,
            match=rf"op {name}: the scores tensor packs 8 keys per word \(docs/attention.md\); "
            r"this chip has 4 lanes per word$",
        ):
            op_work(attn.op(name), narrow, attn)
    with pytest.raises(UnsupportedOpError, match=r"op qk: .*cols \(4\) must equal the lanes"):
        op_work(attn.op("qk"), replace(chip, cols=4), attn)
