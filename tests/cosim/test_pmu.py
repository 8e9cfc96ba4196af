"""The chip (accelerator + PMU) on Verilator: the monitors fire when they must (an early
frequency raise, a gated live activation) and compiled schedules run bit-exact, without a
violation, every LAUNCH at exactly the cycle pmu.timing predicts."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voltflow.cosim.accel_run import accelerator_build
from voltflow.cosim.build import VerilatorBuild
from voltflow.cosim.pmu_run import PmuRunResult, run_program
from voltflow.pmu.compiler import compile_schedule
from voltflow.pmu.config import ns_to_cycles
from voltflow.pmu.isa import DomainCode, ErrorCode, Opcode, decode, encode
from voltflow.pmu.timing import TRANSITION_KINDS
from voltflow.scheduler.chip import DOMAINS, BankKind, Chip, load_chip
from voltflow.scheduler.cost import CostTable
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.evaluate import SlackMode
from voltflow.scheduler.network import Network, load_network
from voltflow.scheduler.problem import build_problem
from voltflow.scheduler.schedule import ScheduledLayer, ScheduleFile
from voltflow.scheduler.solve import Method, Status

from tests.cosim import rtl_reference

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"
TINY = Path(__file__).resolve().parents[1] / "scheduler" / "data" / "tiny.yaml"


@pytest.fixture(scope="module")
def chip() -> Chip:
    return load_chip(SMALL_CHIP)


@pytest.fixture(scope="module")
def tiny() -> Network:
    return load_network(TINY)


@pytest.fixture(scope="module")
def table(chip: Chip, tiny: Network) -> CostTable:
    return build_problem(tiny, chip)[1]


@pytest.fixture(scope="module")
def spec_build(chip: Chip) -> VerilatorBuild:
    return accelerator_build(chip)


def _schedule(table: CostTable, states: list[int], mode: SlackMode) -> ScheduleFile:
    volts = [tuple(float(v) for v in table.voltages_v[s]) for s in states]
    latency = sum(float(layer.time_s[s]) for layer, s in zip(table.layers, states, strict=True))
    layers = tuple(
        ScheduledLayer(layer.name, s, v, float(layer.time_s[s]), float(layer.energy_j[s]), 0)
        for layer, s, v in zip(table.layers, states, volts, strict=True)
    )
    return ScheduleFile(
        instance="tiny", domains=tuple(d.value for d in DOMAINS), period_s=2 * latency + 5e-6,
        rails=3, method=Method.DP, status=Status.PROVEN_OPTIMAL, lower_bound_j=None, gap=None,
        rails_used_v=tuple(sorted({v for vs in volts for v in vs})), layers=layers, energy_j=0.0,
        layer_energy_j=0.0, transition_energy_j=0.0, slack_energy_j=0.0, latency_s=0.0,
        idle_s=0.0, switches=0, slack_mode=mode, wrap_switches=0, sleep_entry_switches=0,
    )  # fmt: skip


def _assert_as_predicted(result: PmuRunResult) -> None:
    p = result.predicted
    assert result.error is p.error and result.halt_code == (p.halt_code or 0)
    assert result.timing_exact, [x for x in result.launches if not x.exact]
    for i, d in enumerate(("sys", "rram", "feeder")):
        for k, cycles in enumerate(p.level_cycles[i]):
            assert result.counters[f"cycles_{d}_{k}"] == cycles, (d, k)
    for kind in TRANSITION_KINDS:
        assert result.counters[kind] == p.transitions[kind], kind
    for name in ("asleep_cycles", "idle_cycles", "frames", "overruns", "overclock_count"):
        assert result.counters[name] == getattr(p, name), name
    for name, value in p.counter_values().items():
        assert result.counters[name] == value, name
    assert list(result.bank_on_cycles) == p.bank_on_cycles


def _check_reference(key: str, result: PmuRunResult) -> None:
    """The run equals the recorded one (tests/cosim/rtl_reference.py)."""
    rtl_reference.check(
        f"pmu/{key}",
        {
            "status": [result.error.name, result.halt_code, result.end_cycle],
            "counters": result.counters,
            "bank_on_cycles": list(result.bank_on_cycles),
            "launches": [[x.first, x.count, x.exec_cycle, x.done_cycle] for x in result.launches],
            "snapshots": rtl_reference.recorded_snapshots(result.snapshots),
            "op_stats": rtl_reference.dense_columns(result.op_stats.tolist()),
            "outputs": rtl_reference.digest(result.outputs),
        },
    )


@pytest.mark.cosim
def test_raising_a_clock_before_its_rail_settles_is_an_overclock_at_that_cycle(
    chip: Chip, tiny: Network, spec_build: VerilatorBuild
) -> None:
    lo, hi = 0, len(chip.levels_v) - 1
    inc = {d: [int(chip.divider_increment(d, v)) for v in chip.levels_v] for d in DOMAINS}
    words = [encode(Opcode.SET_RAIL, rail=0, level=lo), encode(Opcode.WAIT_RAILS)]
    for d, code in zip(DOMAINS, DomainCode, strict=True):
        words += [
            encode(Opcode.CONNECT, domain=code, rail=0),
            encode(Opcode.SET_FREQ, domain=code, increment=inc[d][lo]),
        ]
    launch = encode(Opcode.LAUNCH, first=0, count=9, lead=0)
    words += [
        launch,
        encode(Opcode.SET_RAIL, rail=0, level=hi),
        encode(Opcode.SET_FREQ, domain=DomainCode.SYS, increment=inc[DOMAINS[0]][hi]),  # early
        encode(Opcode.WAIT_RAILS),
        launch,
        encode(Opcode.HALT, code=0),
    ]
    result = run_program(tiny, chip, words, seed=5, verilator_build=spec_build)
    # By hand: SET_RAIL at 0 settles at 1 + settle; WAIT_RAILS continues there; each CONNECT
    # waits 1 + transition cycles, SET_FREQ takes 1; LAUNCH at t continues at t + 3 + C; the
    # early SET_FREQ executes one cycle after the second SET_RAIL and takes effect a cycle later.
    settle = ns_to_cycles(chip.rail_settle_ns, chip.reference_mhz)
    switch = ns_to_cycles(chip.transition_latency_ns, chip.reference_mhz)
    launch_at = 1 + settle + 3 * (1 + switch + 1)
    works = [op_work(op, chip, tiny) for op in tiny.ops]
    slow = [np.array(inc[d][lo]) for d in DOMAINS]
    c = sum(int(w.ref_cycles(chip, *slow)) for w in works)
    expected = launch_at + 3 + c + 2
    assert result.counters["overclock_count"] == 1
    assert result.counters["overclock_first"] == expected
    assert result.predicted.overclock_first == expected
    assert result.access_violations == 0 and result.bit_exact
    _assert_as_predicted(result)
    _check_reference("early_overclock", result)


def _bank_of(table: CostTable, chip: Chip, tensor: str) -> int:
    place = next(p for p in table.memory.placements if p.tensor == tensor)
    edges = [0]
    for kind, n in table.memory.counts:
        if kind is not BankKind.RRAM:
            edges += [edges[-1] + chip.bank(kind).words(chip.word_bits)] * n
    edges = sorted(set(edges))
    return int(np.searchsorted(edges, place.base_word, side="right")) - 1


@pytest.mark.cosim
def test_gating_a_bank_with_a_live_activation_breaks_the_output(
    chip: Chip, tiny: Network, table: CostTable, spec_build: VerilatorBuild
) -> None:
    state = table.state_index((1.1, 1.1, 1.1))
    program = compile_schedule(
        _schedule(table, [state] * len(table.layers), SlackMode.STAY_ON), table
    )
    good = run_program(tiny, chip, program.words, seed=2, verilator_build=spec_build)
    assert good.bit_exact and good.violations == 0
    _assert_as_predicted(good)
    _check_reference("tiny_nominal", good)
    # pool1's output waits in its bank for the residual add of layer 2 (pw, add): gate that bank
    # just before layer 2 is launched.
    bank = _bank_of(table, chip, "pool1")
    launches = [i for i, w in enumerate(program.words) if decode(w).opcode is Opcode.LAUNCH]
    at = launches[2]
    words = [
        *program.words[:at],
        encode(Opcode.GATE, group=bank // 32, mask=1 << bank % 32),
        *program.words[at:],
    ]
    bad = run_program(tiny, chip, words, seed=2, verilator_build=spec_build)
    assert bad.error is ErrorCode.NONE
    assert not bad.bit_exact
    assert bad.access_violations > 0
    assert bad.counters["access_first"] > bad.launches[2].exec_cycle
    assert bad.counters["access_first"] < bad.launches[2].done_cycle
    _check_reference("tiny_gated_live_bank", bad)


@pytest.mark.cosim
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), mode=st.sampled_from(list(SlackMode)))
def test_compiled_random_schedules_run_exact_without_violations(
    chip: Chip, tiny: Network, table: CostTable, spec_build: VerilatorBuild, data, mode
) -> None:
    rails = data.draw(
        st.lists(st.sampled_from(table.levels_v), min_size=1, max_size=3, unique=True)
    )
    allowed = [
        s
        for s in range(table.n_states)
        if all(any(abs(v - r) < 1e-9 for r in rails) for v in table.voltages_v[s])
    ]
    n = len(table.layers)
    states = data.draw(st.lists(st.sampled_from(allowed), min_size=n, max_size=n))
    program = compile_schedule(_schedule(table, states, mode), table, frames=2)
    result = run_program(tiny, chip, program.words, seed=4, verilator_build=spec_build)
    assert result.error is ErrorCode.NONE and result.halt_code == 0
    assert result.violations == 0, result.counters
    assert result.frame_exact == (True, True)
    assert [x.cycles for x in result.launches] == [x.predicted_cycles for x in result.launches]
    _assert_as_predicted(result)
