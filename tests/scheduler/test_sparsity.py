"""The data-dependent cost model of a sparsity-aware array (scheduler/sparsity.py, profile.py):
the per-tile timing agrees with the dense one when nothing is skipped, fewer stream ticks never
cost more cycles, and a profile's table bounds every input it holds."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.golden import case_from_params, make_case
from voltflow.cosim.operands import case_operands
from voltflow.cosim.profile import measure_profile, random_inputs
from voltflow.scheduler.chip import DOMAINS, load_chip
from voltflow.scheduler.cost import build_cost_table
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.network import load_network
from voltflow.scheduler.profile import (
    DeadlineOn,
    load_profile,
    parse_deadline_on,
    profile_json,
    profile_table,
)
from voltflow.scheduler.sparsity import SKIP_MODES, OpOperands, operand_pairs, with_operands

SKIP = load_chip("powerflow_ref_skip")
GATE = load_chip("powerflow_ref_gate")
DENSE = load_chip()


def _increments(chip, volts):  # type: ignore[no-untyped-def]
    return [np.array([chip.divider_increment(d, v) for v in volts]) for d in DOMAINS]


@pytest.mark.parametrize("name", ["ds_cnn", "resnet8", "mobilevit_xxs"])
def test_streaming_everything_is_the_dense_timing(name: str) -> None:
    """Tile streams of K_pad ticks each (nothing skipped) give the dense cycles in every state,
    through the per-tile path (OpWork.tile_streams)."""
    network = load_network(name)
    volts = [0.9, 1.0, 1.1, 1.3]
    for op in network.ops:
        work = op_work(op, SKIP, network)
        if work.mode not in SKIP_MODES:
            continue
        full = tuple((work.reduction,) * work.tiles for _ in range(work.groups))
        ops = OpOperands(0, full, full, op.macs)
        skipped = with_operands([work], SKIP, {op.name: ops})[0]
        assert skipped.tile_streams is not None
        dense = op_work(op, DENSE, network)
        for inc_s, inc_r, inc_f in zip(*_increments(SKIP, volts), strict=True):
            assert int(skipped.ref_cycles(SKIP, inc_s, inc_r, inc_f)) == int(
                dense.ref_cycles(DENSE, inc_s, inc_r, inc_f)
            ), op.name
        act = skipped.activity
        assert (act.sys_ticks, act.wbuf_reads, act.macs, act.skipped_steps) == (
            dense.activity.sys_ticks,
            dense.activity.wbuf_reads,
            dense.activity.macs,
            0,
        )


def test_fewer_stream_ticks_never_cost_more_cycles() -> None:
    rng = np.random.default_rng(5)
    network = load_network("ds_cnn")
    op = network.ops[2]  # a 1x1 conv
    work = op_work(op, SKIP, network)
    blocks = work.reduction // SKIP.lanes_per_word
    incs = _increments(SKIP, [0.9, 1.1, 1.3])
    for _ in range(20):
        streamed = rng.integers(0, work.reduction + 1, size=(work.groups, work.tiles))
        ticks = np.minimum(streamed + blocks, np.maximum(streamed, blocks))
        fewer = np.maximum(ticks - rng.integers(0, 3, size=ticks.shape), blocks)
        fewer = np.maximum(fewer, streamed - 3)
        streamed_fewer = np.minimum(streamed, fewer)

        def cycles(t, n):  # type: ignore[no-untyped-def]
            table = tuple(tuple(int(v) for v in row) for row in t)
            count = tuple(tuple(int(v) for v in row) for row in n)
            w = with_operands([work], SKIP, {op.name: OpOperands(0, table, count, 0)})[0]
            return [int(w.ref_cycles(SKIP, *inc)) for inc in zip(*incs, strict=True)]

        assert all(
            a <= b
            for a, b in zip(cycles(fewer, streamed_fewer), cycles(ticks, streamed), strict=True)
        )


def test_gated_macs_are_the_pairs_with_a_zero_operand() -> None:
    network = load_network("ds_cnn")
    works = [op_work(op, GATE, network) for op in network.ops]
    case = make_case(network, seed=3)
    ops = case_operands(case, GATE, works)
    gated = with_operands(works, GATE, ops)
    for work, new in zip(works, gated, strict=True):
        if work.op.name in ops:
            total = operand_pairs(work, GATE)
            assert new.activity.gated_macs == total - ops[work.op.name].active_pairs
            assert new.activity.sys_ticks == work.activity.sys_ticks
    with pytest.raises(ValueError, match=r"^no operand counts for array op 'conv2d'$"):
        with_operands(works, GATE, {})
    bad = dict(ops, conv2d=OpOperands(operand_pairs(works[0], GATE) + 1))
    with pytest.raises(ValueError, match=r"^op 'conv2d': \d+ non-zero operand pairs, but"):
        with_operands(works, GATE, bad)
    assert with_operands(works, DENSE, {}) == tuple(works)


def test_a_profile_bounds_its_inputs_and_averages_their_energy(tmp_path: Path) -> None:
    network = load_network("ds_cnn")
    base = make_case(network, seed=0)
    inputs = random_inputs(network, 5, seed=1)
    # One input with many zeros: the streams differ between inputs.
    name, image = inputs[0]
    inputs[0] = (name, np.where(np.arange(image.size).reshape(image.shape) % 3, image, 0))
    inputs[0] = (name, inputs[0][1].astype(np.int8))
    profile = measure_profile(network, SKIP, base, inputs)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile_json(profile)))
    loaded = load_profile(path, network, SKIP)
    assert loaded.operands == profile.operands
    tables = [build_cost_table(network, SKIP, operands=o) for o in loaded.operands]
    worst = profile_table(network, SKIP, loaded, DeadlineOn.WORST)
    dense = profile_table(network, SKIP, loaded, DeadlineOn.DENSE)
    median = profile_table(network, SKIP, loaded, *parse_deadline_on("p50"))
    plain = build_cost_table(network, SKIP)
    for k, layer in enumerate(worst.layers):
        for t in tables:
            assert (layer.ref_cycles >= t.layers[k].ref_cycles).all(), layer.name
        assert (median.layers[k].ref_cycles <= layer.ref_cycles).all()
        assert (dense.layers[k].ref_cycles == plain.layers[k].ref_cycles).all()
        mean = np.mean([t.layers[k].dynamic_total_j for t in tables], axis=0)
        assert np.allclose(layer.dynamic_total_j, mean, rtol=1e-12)
    assert sum(int(x.ref_cycles.max()) for x in worst.layers) < sum(
        int(x.ref_cycles.max()) for x in plain.layers
    )


def test_the_exact_operands_of_an_input_match_a_brute_force_count() -> None:
    """Active pairs of a small conv, counted by looping over every product of the convolution."""
    from tests.cosim.random_layers import layer_network

    network = layer_network(
        "bf",
        (
            "[5, 5, 4]",
            "- {name: c, op: conv, input: x, out_channels: 6, kernel: 3, stride: 2, "
            "padding: [1, 0, 1, 1]}",
        ),
    )
    base = make_case(network, seed=2, sparsity=0.4)
    rng = np.random.default_rng(0)
    x = base.input.copy()
    x[rng.random(x.shape) < 0.5] = 0
    case = case_from_params(network, x, base.params)
    w = case.params["c"].weight
    op = network.ops[0]
    pad = np.pad(x, ((0, 0), (1, 1), (0, 1)))
    count = 0
    for oy in range(op.out.height):
        for ox in range(op.out.width):
            window = pad[:, 2 * oy : 2 * oy + 3, 2 * ox : 2 * ox + 3]
            count += int(((window != 0)[None] & (w != 0)).sum())
    works = [op_work(op, GATE, network)]
    assert case_operands(case, GATE, works)["c"].active_pairs == count
    assert replace(case_operands(case, SKIP, works)["c"], ticks=(), streamed=(), macs=-1) == (
        OpOperands(count)
    )
