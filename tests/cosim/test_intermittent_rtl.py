"""Intermittent inference on the chip's RTL (Verilator, the build with the checkpoint store).

A small seeded network runs as a compiled intermittent program: a power cycle per layer (a
checkpoint after every layer) or a few longer ones, each ending with HALT_POWER_OFF, after which
the wrapper cuts the power (scrambling every volatile bank) and boots the chip again; the PMU
RESUMEs from the newest committed checkpoint. With power failures injected at random cycles
(inside layers, checkpoints, restores and boots), every op's output must still equal the golden
model's, every LAUNCH of every power cycle must run in the cycles the PMU model predicts for
those failure points, and the store must end with the output committed.
"""

from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.intermittent_analysis import ENERGY_TOLERANCE, analyse_power_ups
from voltflow.cosim.pmu_run import run_program
from voltflow.cosim.sim_top import sim_bank_counts
from voltflow.pmu.intermittent_compiler import compile_intermittent
from voltflow.pmu.isa import HALT_POWER_OFF, ErrorCode
from voltflow.pmu.store import newest
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.cost import build_cost_table
from voltflow.scheduler.intermittent import intermittent_problem
from voltflow.scheduler.intermittent_evaluate import evaluate_intermittent
from voltflow.scheduler.network import Network, load_network
from voltflow.scheduler.supply import Harvest

pytestmark = pytest.mark.cosim

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"
#: chip_small with a checkpoint store whose words take a few reference cycles (800 MHz).
STORE = """
intermittent:
  capacitor: {capacitance_uf: 100.0, on_v: 2.8, off_v: 2.4}
  boot: {energy_uj: 1.0, latency_us: 100.0}
  checkpoint:
    word_bits: 64
    write_pj_per_bit: 62.5
    read_pj_per_bit: 32.4
    write_ns_per_word: 5.0
    read_ns_per_word: 2.5
    marker_bits: 64
    commit_output: true
"""
NETWORK = """format: voltflow-network/1
name: tiny_intermittent
title: tiny_intermittent
source: test
input: {name: x, shape: [8, 8, 8]}
ops:
  - {name: c1, op: conv, input: x, out_channels: 8, kernel: 3, padding: 1, relu: true}
  - {name: c2, op: conv, input: c1, out_channels: 16, kernel: 1, relu: true}
  - {name: d3, op: conv, input: c2, out_channels: 16, kernel: 3, padding: 1, groups: 16}
  - {name: p4, op: avgpool, input: d3, global: true}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("intermittent")
    chip_file = folder / "chip_small_store.yaml"
    chip_file.write_text(SMALL_CHIP.read_text() + STORE)
    chip = load_chip(chip_file)
    network_file = folder / "tiny_intermittent.yaml"
    network_file.write_text(NETWORK)
    network: Network = load_network(str(network_file))
    table = build_cost_table(network, chip)
    return chip, network, table


def _run(setup, rule, failures):  # type: ignore[no-untyped-def]
    """``rule``: ``every`` layer ends a power cycle, or only the ``first``."""
    chip, network, table = setup
    n = len(table.layers)
    cuts = [True] * (n - 1) if rule == "every" else [True] + [False] * (n - 2)
    # The states differ from layer to layer, so that every power cycle switches supplies.
    states = [i % len(table.voltages_v) for i in range(n)]
    program = compile_intermittent(table, states, cuts, sim_bank_counts(chip, table.memory))
    return program, run_program(
        network, chip, program.program.words, intermittent=True, failures=failures, seed=3
    )


def _check(program, result) -> None:  # type: ignore[no-untyped-def]
    assert result.error is ErrorCode.NONE and result.halt_code == 0
    assert result.timing_exact, [x for x in result.launches if not x.exact]
    assert result.bit_exact
    # Every power cycle but the last ended with HALT_POWER_OFF or a failure, as the model said.
    for cycle in result.power_cycles[:-1]:
        assert cycle.failed_at is not None or cycle.halt_code == HALT_POWER_OFF
    # The store ends with the output committed: the newest valid marker names the last boundary.
    committed = newest(result.store[:2])
    assert committed is not None and committed[1].boundary == program.cycles[-1].last


@pytest.mark.parametrize("rule", ["every", "first"])
def test_an_intermittent_program_runs_through_its_power_cycles(setup, rule) -> None:  # type: ignore[no-untyped-def]
    """Each power cycle's energy, priced from the counters by the co-simulation's energy model,
    equals the schedule's prediction for it (the intermittent cost model: boot, restore in the
    first layer's state, layers, switches, checkpoint in the last layer's state)."""
    program, result = _run(setup, rule, [])
    _check(program, result)
    assert len(result.power_cycles) == len(program.cycles)
    chip, _, table = setup
    ups = analyse_power_ups(result, chip, table, program)
    n = len(table.layers)
    cuts = [True] * (n - 1) if rule == "every" else [True] + [False] * (n - 2)
    states = [i % len(table.voltages_v) for i in range(n)]
    judged = evaluate_intermittent(
        intermittent_problem(table), Harvest.constant(1e-3), states, cuts
    )
    assert [up.cycle for up in ups] == list(range(len(program.cycles)))
    assert [up.end for up in ups] == ["off"] * (len(ups) - 1) + ["done"]
    for up, cycle in zip(ups, judged.cycles, strict=True):
        assert up.exact, (up.cycles, up.predicted_cycles)
        predicted = cycle.energy_j - cycle.leakage_j  # the capacitor's own leakage aside
        assert up.measured.total_j == pytest.approx(predicted, rel=ENERGY_TOLERANCE / 10)
        assert up.measured.checkpoint_j > 0 and up.measured.restore_j > 0 and up.measured.boot_j > 0


def test_random_power_failures_never_change_the_output(setup) -> None:  # type: ignore[no-untyped-def]
    program, clean = _run(setup, "every", [])
    length = max(c.end_cycle for c in clean.power_cycles)
    rng = np.random.default_rng(7)
    failures = [int(f) for f in rng.integers(0, length, size=12)]
    program, result = _run(setup, "every", failures)
    _check(program, result)
    assert sum(c.failed_at is not None for c in result.power_cycles) >= 6
    # The chip's power-ups end where the model says: at the same failure cycles, and the work
    # redone (the cycles of the failed power-ups) is what the model predicts for them.
    chip, _, table = setup
    ups = analyse_power_ups(result, chip, table, program)
    assert [up.failed_at for up in ups] == [c.failed_at for c in result.power_cycles]
    assert all(up.exact for up in ups)
