"""Solvers against independent answers: brute force on tiny instances, the ILP, hand-computed costs.

Brute force enumerates every schedule and judges each with evaluate(), which shares no code with
the solvers. The artifact instances (../shared) give DP == proven ILP optimum on real tables.
"""

import enum
import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voltflow.scheduler import baselines
from voltflow.scheduler.chip import DOMAINS
from voltflow.scheduler.dp import min_period, solve_dp
from voltflow.scheduler.evaluate import SlackMode, evaluate, required_period
from voltflow.scheduler.ilp import (
    IlpBackend,
    IlpStatus,
    available_backends,
    default_backend,
    solve_ilp,
)
from voltflow.scheduler.instance import LayerTable, Problem, load_instance, save_instance
from voltflow.scheduler.schedule import ScheduleError, load_schedule, save_schedule
from voltflow.scheduler.solve import InfeasibleError, Method, Status, solve

INSTANCES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "instances"
GRID = (0.8, 0.9, 1.0, 1.1, 1.2)


#: Every ILP test runs on every back-end this installation has, so all must agree.
every_backend = pytest.mark.parametrize(
    "backend", available_backends(), ids=[b.value for b in available_backends()]
)


def _artifact(levels: int) -> Problem:
    path = INSTANCES / f"squeezenet-pfdnn-{levels}lv.json"
    if not path.exists():
        pytest.skip(f"artifact instances not found at {INSTANCES} (they live in ../shared)")
    return load_instance(path)


def _brute_force(problem: Problem, period_s: float, rails: int) -> tuple[float, tuple | None]:
    best: tuple[float, tuple | None] = (math.inf, None)
    for states in itertools.product(*(range(layer.num_states) for layer in problem.layers)):
        judged = evaluate(problem, states, period_s, rails)
        if judged.feasible and judged.energy_j < best[0]:
            best = (judged.energy_j, states)
    return best


@st.composite
def tiny_problems(draw: st.DrawFn) -> tuple[Problem, float, int]:
    """2-4 layers, 1-3 domains, 2-3 levels, full or sparse state tables, small integer costs
    (so ties are common), any transition cost, wrap-around and sleep either way; a rail limit
    and a period from below the fastest schedule to above the slowest."""
    layers_count = draw(st.integers(2, 4))
    domains = draw(st.integers(1, 3))
    grid = sorted(draw(st.lists(st.sampled_from(GRID), min_size=2, max_size=3, unique=True)))
    rows = list(itertools.product(grid, repeat=domains))
    budget = int(3000 ** (1 / layers_count))  # keep brute force to a few thousand schedules
    full = draw(st.booleans()) and len(rows) <= budget
    layers = []
    for i in range(layers_count):
        if full:
            chosen = rows
        else:
            most = min(len(rows), budget)
            chosen = draw(
                st.lists(
                    st.sampled_from(rows), min_size=(most + 1) // 2, max_size=most, unique=True
                )
            )
        count = len(chosen)
        layers.append(
            LayerTable(
                name=f"l{i}",
                voltage_v=chosen,
                energy_j=np.array(
                    draw(st.lists(st.integers(1, 30), min_size=count, max_size=count))
                )
                * 1e-7,
                time_s=np.array(draw(st.lists(st.integers(1, 30), min_size=count, max_size=count)))
                * 1e-4,
                leakage_w=np.array(
                    draw(st.lists(st.integers(0, 9), min_size=count, max_size=count))
                )
                * 1e-5,
            )
        )
    latency = draw(st.sampled_from([0.0, 5e-5, 2e-4]))
    problem = Problem(
        name="tiny",
        domains=tuple(f"d{k}" for k in range(domains)),
        transition_energy_j=draw(st.sampled_from([0.0, 1e-8, 1e-7])),
        transition_latency_s=latency,
        sleep_power_w=draw(st.sampled_from([0.0, 2e-5, 1e-3])),
        sleep_entry_switches=draw(st.integers(0, 6)),
        wraparound=draw(st.booleans()),
        layers=tuple(layers),
    )
    fastest = sum(float(layer.time_s.min()) for layer in layers)
    slowest = sum(float(layer.time_s.max()) for layer in layers) + latency * domains * 12
    period = 0.95 * fastest + draw(st.sampled_from([k / 20 for k in range(21)])) * (
        1.2 * slowest - 0.95 * fastest
    )
    return problem, period, draw(st.sampled_from([2, 3, 1]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems())
def test_dp_equals_brute_force(case: tuple[Problem, float, int]) -> None:
    problem, period, rails = case
    best, _ = _brute_force(problem, period, rails)
    result = solve_dp(problem, period, rails)
    assert result.proven
    if math.isinf(best):
        assert result.states is None
        assert result.lower_bound_j == math.inf
        return
    assert result.states is not None
    judged = evaluate(problem, result.states, period, rails)
    assert judged.feasible, judged.reasons
    assert judged.energy_j == pytest.approx(best, rel=1e-9)
    assert result.lower_bound_j == pytest.approx(best, rel=1e-9)


def _physical_problem(seed: int) -> tuple[Problem, float, int]:
    """A random tiny instance with a physical flavour (time ~ 1/V, energy ~ V^2): few states
    dominate others, so the search itself is exercised."""
    rng = np.random.default_rng(seed)
    layers_count = int(rng.integers(2, 5))
    domains = int(rng.integers(1, 4))
    grid = sorted(rng.choice(GRID, size=int(rng.integers(2, 4)), replace=False).tolist())
    rows = np.array(list(itertools.product(grid, repeat=domains)))
    budget = int(4000 ** (1 / layers_count))
    layers = []
    for i in range(layers_count):
        count = int(rng.integers(max(1, min(len(rows), budget) // 2), min(len(rows), budget) + 1))
        volts = rows[np.sort(rng.choice(len(rows), size=count, replace=False))]
        work = rng.uniform(1, 3, size=domains)
        layers.append(
            LayerTable(
                name=f"l{i}",
                voltage_v=volts,
                time_s=(work / volts).max(axis=1) * rng.uniform(0.9, 1.1, count) * 1e-3,
                energy_j=(work * volts**2).sum(axis=1) * rng.uniform(0.9, 1.1, count) * 1e-6,
                leakage_w=volts.sum(axis=1) * rng.uniform(0.5, 1.5, count) * 1e-5,
            )
        )
    problem = Problem(
        name=f"physical-{seed}",
        domains=tuple(f"d{k}" for k in range(domains)),
        transition_energy_j=float(rng.choice([0.0, 5e-8, 5e-7])),
        transition_latency_s=float(rng.choice([0.0, 5e-5, 3e-4])),
        sleep_power_w=float(rng.choice([0.0, 1e-5, 1e-3])),
        sleep_entry_switches=int(rng.integers(0, 5)),
        wraparound=bool(rng.integers(0, 2)),
        layers=tuple(layers),
    )
    fastest = sum(float(layer.time_s.min()) for layer in layers)
    slowest = sum(float(layer.time_s.max()) for layer in layers)
    return problem, float(rng.uniform(fastest, 1.2 * slowest)), int(rng.integers(1, 4))


@pytest.mark.parametrize("seed", range(40))
def test_dp_equals_brute_force_on_physical_instances(seed: int) -> None:
    problem, period, rails = _physical_problem(seed)
    best, _ = _brute_force(problem, period, rails)
    result = solve_dp(problem, period, rails)
    assert result.proven
    if math.isinf(best):
        assert result.states is None
        return
    assert result.states is not None
    assert evaluate(problem, result.states, period, rails).energy_j == pytest.approx(best, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(tiny_problems())
def test_min_period_equals_brute_force(case: tuple[Problem, float, int]) -> None:
    problem, _, rails = case
    fastest = math.inf
    for states in itertools.product(*(range(layer.num_states) for layer in problem.layers)):
        if len(evaluate(problem, states, 1.0, rails).rails_used_v) <= rails:
            fastest = min(fastest, required_period(problem, states))
    period, states = min_period(problem, rails)
    assert period == pytest.approx(fastest, rel=1e-12)
    if states is not None:
        assert required_period(problem, states) == pytest.approx(fastest, rel=1e-12)


@every_backend
@settings(max_examples=25, deadline=None)
@given(tiny_problems())
def test_ilp_equals_dp_on_tiny_instances(
    backend: IlpBackend, case: tuple[Problem, float, int]
) -> None:
    problem, period, rails = case
    dp = solve_dp(problem, period, rails)
    ilp = solve_ilp(problem, period, rails, time_limit_s=60, backend=backend)
    if dp.states is None:
        assert ilp.status is IlpStatus.INFEASIBLE
        return
    assert ilp.status is IlpStatus.PROVEN_OPTIMAL
    assert ilp.states is not None
    judged = evaluate(problem, ilp.states, period, rails)
    assert judged.feasible
    assert judged.energy_j == pytest.approx(dp.energy_j, rel=1e-7)
    assert ilp.objective_j == pytest.approx(dp.energy_j, rel=1e-7)


def _two_layer_problem(wraparound: bool, sleep_power_w: float = 0.0) -> Problem:
    """Two layers, one domain, levels 1.0 / 1.2 V; numbers chosen for hand computation."""
    return Problem(
        name="hand",
        domains=("core",),
        transition_energy_j=1.0,
        transition_latency_s=0.5,
        sleep_power_w=sleep_power_w,
        sleep_entry_switches=2,
        wraparound=wraparound,
        layers=(
            LayerTable(
                name="a",
                voltage_v=[[1.0], [1.2]],
                energy_j=[10.0, 14.0],
                time_s=[4.0, 2.0],
                leakage_w=[0.5, 0.5],
            ),
            LayerTable(
                name="b",
                voltage_v=[[1.0], [1.2]],
                energy_j=[20.0, 26.0],
                time_s=[6.0, 3.0],
                leakage_w=[1.0, 2.0],
            ),
        ),
    )


def test_evaluate_by_hand_stay_on_sleep_and_wraparound() -> None:
    # (slow a, fast b): 10 + 26 J, one switch (1 J, 0.5 s); busy 4 + 3 + 0.5 = 7.5 s.
    problem = _two_layer_problem(wraparound=False)
    judged = evaluate(problem, (0, 1), 10.0, 2)
    # Stay on: 2 W * 2.5 s = 5 J. Sleep: 2 switches (2 J, 1 s) then 0 W: 2 J. Sleep wins.
    assert judged.slack_mode is SlackMode.SLEEP
    assert judged.energy_j == pytest.approx(10 + 26 + 1 + 2)
    assert (judged.switches, judged.latency_s, judged.idle_s) == (1, 7.5, 2.5)
    assert judged.rails_used_v == (1.0, 1.2)
    # With wrap-around, staying on also pays the switch back (1 J, 0.5 s): 1 + 2 W * 2 s = 5 J.
    wrapped = evaluate(_two_layer_problem(wraparound=True), (0, 1), 10.0, 2)
    assert wrapped.slack_mode is SlackMode.SLEEP
    assert wrapped.energy_j == pytest.approx(39)
    # With sleep power 3 W, sleep costs 2 + 3 * 1.5 = 6.5 J; stay-on (5 J incl. wrap) wins.
    costly = evaluate(_two_layer_problem(wraparound=True, sleep_power_w=3.0), (0, 1), 10.0, 2)
    assert costly.slack_mode is SlackMode.STAY_ON
    assert (costly.switches, costly.wrap_switches, costly.latency_s) == (2, 1, 8.0)
    assert costly.energy_j == pytest.approx(10 + 26 + 1 + 1 + 2 * 2.0)
    assert costly.transition_energy_j == 2.0 and costly.slack_energy_j == pytest.approx(4.0)
    # Period 8: sleep needs 7.5 + 1 s (no), staying on needs 7.5 + 0.5 s (just fits, idle 0).
    tight = evaluate(_two_layer_problem(wraparound=True), (0, 1), 8.0, 2)
    assert tight.feasible and tight.slack_mode is SlackMode.STAY_ON and tight.idle_s == 0
    # Period 7.9: neither fits; the reason names the shortfall.
    late = evaluate(_two_layer_problem(wraparound=True), (0, 1), 7.9, 1)
    assert not late.feasible
    assert re.fullmatch(
        r"deadline missed by 0\.1 s: the schedule needs 8 s \(layers 7 s \+ 2 switches x 0\.5 s\), "
        r"the period is 7\.9 s",
        late.reasons[0],
    )
    assert late.reasons[1] == "uses 2 voltages (1, 1.2 V), more than the 1 rails"
    assert required_period(_two_layer_problem(wraparound=True), (0, 1)) == 8.0


def test_dominance_keeps_a_dearer_state_when_switching_costs_more() -> None:
    """The middle layer's state at 1.2 V is faster and cheaper than its 1.0 V state, but using it
    costs two switches (2 x 1 J, 2 x 0.5 s) around neighbours at 1.0 V; it must not prune the
    1.0 V state, which is optimal."""
    slow = {"voltage_v": [[1.0]], "energy_j": [5.0], "time_s": [2.0], "leakage_w": [0.0]}
    problem = Problem(
        name="dominance",
        domains=("core",),
        transition_energy_j=1.0,
        transition_latency_s=0.5,
        sleep_power_w=0.0,
        sleep_entry_switches=0,
        wraparound=False,
        layers=(
            LayerTable(name="a", **slow),
            LayerTable(
                name="b",
                voltage_v=[[1.0], [1.2]],
                energy_j=[5.0, 4.5],
                time_s=[2.0, 1.9],
                leakage_w=[0.0, 0.0],
            ),
            LayerTable(name="c", **slow),
        ),
    )
    result = solve_dp(problem, 10.0, 2)
    assert result.states == (0, 0, 0)
    assert result.energy_j == pytest.approx(15.0)
    assert result.stats["states_per_subset_after_pruning"] == 4  # nothing pruned
    # Without switch costs the 1.2 V state does replace the 1.0 V one.
    free = Problem(
        name="free",
        domains=("core",),
        transition_energy_j=0.0,
        transition_latency_s=0.0,
        sleep_power_w=0.0,
        sleep_entry_switches=0,
        wraparound=False,
        layers=problem.layers,
    )
    result = solve_dp(free, 10.0, 2)
    assert result.states == (0, 1, 0)
    assert result.stats["states_per_subset_after_pruning"] == 3


def test_dp_with_a_label_limit_reports_an_honest_bound() -> None:
    rng = np.random.default_rng(7)
    layers = []
    for i in range(12):
        volts = list(itertools.product((0.9, 1.0, 1.1), repeat=2))
        speed = np.array([sum(v) for v in volts])
        layers.append(
            LayerTable(
                name=f"l{i}",
                voltage_v=volts,
                time_s=(1 + rng.random()) / speed * (1 + 0.1 * rng.random(len(volts))),
                energy_j=(1 + rng.random()) * speed**2 * (1 + 0.1 * rng.random(len(volts))),
                leakage_w=np.full(len(volts), 0.01),
            )
        )
    problem = Problem(
        name="limit",
        domains=("a", "b"),
        transition_energy_j=0.01,
        transition_latency_s=0.01,
        sleep_power_w=0.0,
        sleep_entry_switches=2,
        wraparound=False,
        layers=tuple(layers),
    )
    fastest, _ = min_period(problem, 2)
    period = fastest * 1.15
    exact = solve_dp(problem, period, 2)
    assert exact.proven
    limited = solve_dp(problem, period, 2, max_labels=50)
    assert not limited.proven
    assert limited.stats["stopped_by"] == "labels"
    assert limited.lower_bound_j <= exact.energy_j * (1 + 1e-12)
    assert limited.energy_j >= exact.energy_j * (1 - 1e-12)
    result = solve(problem, period, 2, Method.DP, time_limit_s=None)
    assert result.status is Status.PROVEN_OPTIMAL and result.gap == 0.0


def test_infeasible_rate_names_the_shortest_latency_and_highest_rate() -> None:
    problem = _two_layer_problem(wraparound=False)
    # Fastest: (1.2, 1.2): 2 + 3 s, no switch: 5 s, so at most 0.2 FPS.
    with pytest.raises(
        InfeasibleError,
        match=r"^dp: no schedule meets the period of 4000 ms \(0\.25 FPS\) with at most 2 rails: "
        r"the shortest achievable latency is 5000 ms \(switch latencies and the time after the "
        r"last layer included\), so the highest feasible rate is 0\.2 FPS$",
    ) as error:
        solve(problem, 4.0, 2, "dp")
    assert error.value.max_rate_fps == pytest.approx(0.2)
    # One rail at 1.0 V (the fastest single rail is 1.2 V: same 5 s); fixed nominal at 1.0 V: 10 s.
    with pytest.raises(InfeasibleError, match=r"shortest achievable latency is 10000 ms"):
        solve(problem, 6.0, 1, "nominal", nominal_v=1.0)


def test_nominal_needs_the_chips_nominal_voltage() -> None:
    problem = _two_layer_problem(wraparound=False)
    with pytest.raises(ValueError, match=r"^method nominal needs nominal_v, the chip's nominal "):
        solve(problem, 20.0, 1, "nominal")
    with pytest.raises(ValueError, match=r"^voltage must be one of the grid's levels"):
        solve(problem, 20.0, 1, Method.GATING, nominal_v=1.1)


def test_greedy_follows_the_papers_rule() -> None:
    """Start slow; speed up the layer with the best time per energy until the deadline holds."""
    problem = Problem(
        name="greedy",
        domains=("core",),
        transition_energy_j=0.0,
        transition_latency_s=0.0,
        sleep_power_w=0.0,
        sleep_entry_switches=0,
        wraparound=False,
        layers=(
            # a: 1.0 -> 1.2 V gains 4 s for 4 J (1 s/J); b: gains 3 s for 1 J (3 s/J).
            LayerTable(
                name="a",
                voltage_v=[[1.0], [1.2]],
                energy_j=[1.0, 5.0],
                time_s=[8.0, 4.0],
                leakage_w=[0.0, 0.0],
            ),
            LayerTable(
                name="b",
                voltage_v=[[1.0], [1.2]],
                energy_j=[1.0, 2.0],
                time_s=[6.0, 3.0],
                leakage_w=[0.0, 0.0],
            ),
        ),
    )
    levels = (0, 1)
    assert baselines.greedy(problem, 14.0, 2, levels=levels).states == (0, 0)
    assert baselines.greedy(problem, 12.0, 2, levels=levels).states == (0, 1)  # b first
    assert baselines.greedy(problem, 10.0, 2, levels=levels).states == (1, 1)
    assert baselines.greedy(problem, 6.0, 2, levels=levels).states is None
    # With one rail, speeding up b alone would need two voltages: greedy is stuck.
    assert baselines.greedy(problem, 12.0, 1, levels=levels).states is None


def test_even_rail_levels() -> None:
    volts = [0.9 + 0.05 * k for k in range(9)]
    problem = Problem(
        name="grid",
        domains=("core",),
        transition_energy_j=0.0,
        transition_latency_s=0.0,
        sleep_power_w=0.0,
        sleep_entry_switches=0,
        wraparound=False,
        layers=(
            LayerTable(
                name="a",
                voltage_v=[[v] for v in volts],
                energy_j=np.ones(9),
                time_s=np.ones(9),
                leakage_w=np.zeros(9),
            ),
        ),
    )

    def rails_v(count: int) -> list[float]:
        return [float(problem.levels_v[k]) for k in baselines.even_rail_levels(problem, count)]

    assert rails_v(3) == [0.9, 1.1, 1.3]
    assert rails_v(2) == [0.9, 1.3]
    assert rails_v(5) == [0.9, 1.0, 1.1, 1.2, 1.3]
    assert rails_v(1) == [1.3]
    assert rails_v(12) == pytest.approx(volts)
    assert [float(problem.levels_v[k]) for k in baselines.greedy_levels(problem)] == [0.9, 1.1, 1.3]


@pytest.fixture(scope="module")
def mid_problem() -> Problem:
    """20 layers, 3 domains on 5 levels, wrap-around, sleep power: bigger than brute force."""
    rng = np.random.default_rng(11)
    grid = (0.9, 1.0, 1.1, 1.2, 1.3)
    volts = np.array(list(itertools.product(grid, repeat=3)))
    layers = []
    for i in range(20):
        work = rng.uniform(0.5, 2.0, size=3)
        time_s = (work[None, :] / volts).max(axis=1) * 1e-3
        energy = (work[None, :] * volts**2).sum(axis=1) * 1e-6 * rng.uniform(0.95, 1.05, len(volts))
        layers.append(
            LayerTable(
                name=f"l{i}",
                voltage_v=volts,
                energy_j=energy,
                time_s=time_s,
                leakage_w=volts.sum(axis=1) * 1e-4,
            )
        )
    return Problem(
        name="mid",
        domains=tuple(d.value for d in DOMAINS),
        transition_energy_j=1e-9,
        transition_latency_s=2e-8,
        sleep_power_w=2e-6,
        sleep_entry_switches=6,
        wraparound=True,
        layers=tuple(layers),
    )


@pytest.mark.parametrize(
    ("method", "backend"),
    [(m, None) for m in Method if m is not Method.ILP]
    + [(Method.ILP, b) for b in available_backends()],
    ids=lambda x: x.value if isinstance(x, enum.Enum) else "",
)
def test_every_method_meets_its_deadline(
    mid_problem: Problem, method: Method, backend: IlpBackend | None
) -> None:
    fastest, _ = min_period(mid_problem, 3)
    nominal_latency = required_period(
        mid_problem, baselines.nominal(mid_problem, 1.0, 3, nominal_v=1.1).states or ()
    )
    period = max(1.4 * fastest, 1.05 * nominal_latency)
    result = solve(
        mid_problem, period, 3, method, nominal_v=1.1, time_limit_s=60, ilp_backend=backend
    )
    assert result.evaluation.feasible
    assert result.evaluation.latency_s <= period
    assert len(result.evaluation.rails_used_v) <= 3
    assert result.method is method
    best = solve(mid_problem, period, 3, Method.DP)
    assert result.energy_j >= best.energy_j * (1 - 1e-9)  # nobody beats the exact solver
    if method in (Method.DP, Method.ILP):
        assert result.status is Status.PROVEN_OPTIMAL
        assert result.energy_j == pytest.approx(best.energy_j, rel=1e-7)


def test_schedule_file_round_trip(tmp_path: Path, mid_problem: Problem) -> None:
    fastest, _ = min_period(mid_problem, 3)
    result = solve(mid_problem, 1.2 * fastest, 3)
    path = tmp_path / "schedule.json"
    save_schedule(result, mid_problem, path)
    read = load_schedule(path)
    assert read.method is Method.DP and read.status is Status.PROVEN_OPTIMAL
    assert [layer.state for layer in read.layers] == list(result.states)
    assert read.energy_j == result.energy_j
    assert read.slack_mode is result.evaluation.slack_mode
    assert read.rails_used_v == result.evaluation.rails_used_v
    for i, layer in enumerate(read.layers):
        index = mid_problem.level_index[i][result.states[i]]
        assert layer.voltage_v == tuple(float(mid_problem.levels_v[k]) for k in index)
    assert sum(layer.switches_in for layer in read.layers) + read.wrap_switches == read.switches


@every_backend
def test_ilp_status_is_honest_under_a_tiny_time_limit(
    mid_problem: Problem, backend: IlpBackend
) -> None:
    """PuLP says "Optimal" when the solver stops at its time limit with a solution; we must not."""
    fastest, _ = min_period(mid_problem, 2)
    result = solve_ilp(mid_problem, 1.3 * fastest, 2, time_limit_s=0.3, backend=backend)
    assert result.status in (IlpStatus.FEASIBLE_WITH_GAP, IlpStatus.TIMED_OUT_NO_SOLUTION)
    if result.status is IlpStatus.FEASIBLE_WITH_GAP:
        assert result.gap > 0
        assert result.lower_bound_j < result.objective_j


@every_backend
def test_ilp_reports_infeasible(backend: IlpBackend) -> None:
    result = solve_ilp(
        _two_layer_problem(wraparound=True), 4.0, 2, time_limit_s=30, backend=backend
    )
    assert result.status is IlpStatus.INFEASIBLE and result.states is None


@every_backend
@pytest.mark.parametrize(("levels", "fps"), [(3, 80), (3, 100), (5, 50), (5, 100)])
def test_dp_equals_proven_ilp_on_artifact(levels: int, fps: float, backend: IlpBackend) -> None:
    problem = _artifact(levels)
    ilp = solve_ilp(problem, 1 / fps, 3, time_limit_s=120, backend=backend)
    assert ilp.status is IlpStatus.PROVEN_OPTIMAL
    dp = solve_dp(problem, 1 / fps, 3)
    assert dp.proven
    assert ilp.objective_j == pytest.approx(dp.energy_j, rel=1e-9)
    assert evaluate(problem, ilp.states or (), 1 / fps, 3).energy_j == pytest.approx(
        dp.energy_j, rel=1e-9
    )


@pytest.mark.slow
@every_backend
@pytest.mark.parametrize(("levels", "fps"), [(3, 50), (5, 80), (9, 50)])
def test_dp_equals_proven_ilp_on_artifact_slow(
    levels: int, fps: float, backend: IlpBackend
) -> None:
    test_dp_equals_proven_ilp_on_artifact(levels, fps, backend)


def test_artifact_optimum_at_50_fps_beats_every_baseline() -> None:
    problem = _artifact(9)
    period = 1 / 50
    best = solve(problem, period, 3, Method.DP)
    assert best.status is Status.PROVEN_OPTIMAL
    assert len(best.evaluation.rails_used_v) <= 3
    for method in (Method.NOMINAL, Method.GREEDY, Method.EVEN_RAILS):
        other = solve(problem, period, 3, method, nominal_v=1.1)
        assert other.energy_j >= best.energy_j


def test_levels_restrict_the_exact_solvers(mid_problem: Problem) -> None:
    fastest, _ = min_period(mid_problem, 3)
    period = 1.5 * fastest
    fixed = solve(mid_problem, period, 3, Method.DP, levels=(0.9, 1.1, 1.3))
    assert set(fixed.evaluation.rails_used_v) <= {0.9, 1.1, 1.3}
    even = solve(mid_problem, period, 3, Method.EVEN_RAILS)
    assert even.stats["rails_v"] == [0.9, 1.1, 1.3]
    assert even.energy_j == pytest.approx(fixed.energy_j, rel=1e-12)
    free = solve(mid_problem, period, 3, Method.DP)
    assert free.energy_j <= fixed.energy_j


def test_unknown_method_is_named() -> None:
    with pytest.raises(
        ValueError,
        match=r"^method must be one of dp, ilp, nominal, gating, greedy, gating-greedy, "
        r"even-rails, superblock, not 'fast'$",
    ):
        solve(_two_layer_problem(wraparound=False), 20.0, 2, "fast")


def test_bad_schedule_files_are_named(tmp_path: Path, mid_problem: Problem) -> None:
    fastest, _ = min_period(mid_problem, 3)
    path = tmp_path / "s.json"
    save_schedule(solve(mid_problem, 1.5 * fastest, 3), mid_problem, path)
    data = json.loads(path.read_text())
    data["slack"]["mode"] = "doze"
    path.write_text(json.dumps(data))
    with pytest.raises(
        ScheduleError, match="^" + re.escape(str(path)) + r": 'doze' is not a valid SlackMode$"
    ):
        load_schedule(path)
    data["slack"]["mode"] = "sleep"
    data["layers"][3]["time_s"] = "fast"
    path.write_text(json.dumps(data))
    with pytest.raises(
        ScheduleError,
        match="^"
        + re.escape(str(path))
        + r": layers\[3\]\.time_s must be a finite number, not 'fast'$",
    ):
        load_schedule(path)
    data["format"] = "voltflow-schedule/2"
    path.write_text(json.dumps(data))
    with pytest.raises(ScheduleError, match=r": format must be 'voltflow-schedule/1', not "):
        load_schedule(path)


def test_dominance_pruning_does_not_change_the_optimum() -> None:
    from voltflow.scheduler.chip import load_chip
    from voltflow.scheduler.dp import solve_dp
    from voltflow.scheduler.network import load_network
    from voltflow.scheduler.problem import ProblemOptions, build_problem

    problem, _ = build_problem(
        load_network("ds_cnn"), load_chip(), ProblemOptions(levels_v=(0.9, 1.0, 1.1, 1.2, 1.3))
    )
    for fps in (1500.0, 2500.0, 3500.0):
        pruned = solve_dp(problem, 1 / fps, 3)
        full = solve_dp(problem, 1 / fps, 3, prune=False)
        assert pruned.proven and full.proven
        assert pruned.energy_j == pytest.approx(full.energy_j, rel=1e-12)
        key = "states_per_subset_after_pruning"
        assert pruned.stats[key] < full.stats[key]


def test_default_backend_is_the_faster_proven_one() -> None:
    """HiGHS where available (bench: proves every instance, less time in total), else CBC."""
    available = available_backends()
    assert available, "PuLP must find CBC or HiGHS"
    expected = IlpBackend.HIGHS if IlpBackend.HIGHS in available else IlpBackend.CBC
    assert default_backend() is expected


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^backend must be one of cbc, highs, not 'gurobi'$"):
        solve_ilp(_two_layer_problem(wraparound=True), 4.0, 2, backend="gurobi")


@pytest.mark.skipif(IlpBackend.HIGHS not in available_backends(), reason="highspy not installed")
def test_highs_prints_nothing_on_stdout(tmp_path: Path) -> None:
    """HiGHS's banner (written by C++ on fd 1) must not reach stdout, where --json goes."""
    path = tmp_path / "two.json"
    save_instance(_two_layer_problem(wraparound=True), path)
    script = (
        "from voltflow.scheduler.ilp import solve_ilp\n"
        "from voltflow.scheduler.instance import load_instance\n"
        f"r = solve_ilp(load_instance({str(path)!r}), 4.0, 2, backend='highs')\n"
        "print(r.status.value)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout == "infeasible\n"
