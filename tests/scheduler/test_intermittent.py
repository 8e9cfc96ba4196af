"""The intermittent scheduler against independent answers: brute force over every state and
checkpoint choice on tiny instances, judged by the evaluator (which shares no code with the
solver); the smallest charge against a brute-force bottleneck; the reference chip's numbers."""

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from voltflow.scheduler.chip import CapacitorSpec, load_chip
from voltflow.scheduler.cost import build_cost_table
from voltflow.scheduler.intermittent import (
    Checkpointing,
    IntermittentProblem,
    Objective,
    intermittent_problem,
)
from voltflow.scheduler.intermittent_dp import (
    IntermittentInfeasibleError,
    min_charge,
    solve_intermittent,
)
from voltflow.scheduler.intermittent_evaluate import evaluate_intermittent
from voltflow.scheduler.network import load_network
from voltflow.scheduler.solve import Status
from voltflow.scheduler.supply import Harvest, HarvestError

GRID = (0.9, 1.0, 1.1)


def _capacitor(charge_j: float, leakage_w: float = 0.0) -> CapacitorSpec:
    """A 1 V^2 window: capacitance 2 x charge."""
    on, off = math.sqrt(1.5), math.sqrt(0.5)
    return CapacitorSpec(2 * charge_j * 1e6, on, off, leakage_w * 1e6)


@st.composite
def tiny_cases(draw: st.DrawFn) -> tuple[IntermittentProblem, Harvest, Objective, Checkpointing]:
    """1-4 layers, 1-2 domains, 2-4 states from a 3-level grid, small integer costs (ties are
    common), checkpoint and restore costs the same in every state or per state, any switch
    cost, rails 1-3, a charge from below the hardest layer to above the whole network, capacitor
    leakage or none, a constant or a piecewise harvest."""
    n = draw(st.integers(1, 4))
    domains = draw(st.integers(1, 2))
    rows = list(itertools.product(GRID, repeat=domains))
    states = draw(st.lists(st.sampled_from(rows), min_size=2, max_size=4, unique=True))
    s = len(states)

    def costs(low: int, high: int, scale: float) -> np.ndarray:
        return np.array(draw(st.lists(st.integers(low, high), min_size=s, max_size=s))) * scale

    energy = tuple(costs(1, 20, 1e-6) for _ in range(n))
    time_s = tuple(costs(1, 20, 1e-3) for _ in range(n))

    def boundary(low: int, high: int, scale: float) -> tuple[float, ...]:
        values = draw(st.lists(st.integers(low, high), min_size=n + 1, max_size=n + 1))
        return tuple(v * scale for v in values)

    ck_t = (0.0, *boundary(0, 5, 1e-3)[1:])
    rs_t = (0.0, *boundary(0, 5, 1e-3)[1:n], 0.0)
    if draw(st.booleans()):
        ck_e: object = (0.0, *boundary(0, 15, 1e-6)[1:])
        rs_e: object = (0.0, *boundary(0, 15, 1e-6)[1:n], 0.0)
    else:
        # Per state: a checkpoint costs what the cycle's last layer's state makes it cost, a
        # restore what its first layer's does (the copies' idle power).
        ck_e = np.array([[0.0] * s, *(costs(0, 15, 1e-6) for _ in range(n))])
        rs_e = np.array([[0.0] * s, *(costs(0, 15, 1e-6) for _ in range(n - 1)), [0.0] * s])
    bits = (0, *boundary(0, 100, 1)[1:])
    total = sum(float(e.max()) for e in energy) + 40e-6
    charge = draw(st.sampled_from([k / 10 for k in range(1, 11)])) * total + 2e-6
    leakage = draw(st.sampled_from([0.0, 0.0, 1e-4]))
    problem = IntermittentProblem(
        name="tiny",
        layer_names=tuple(f"l{i}" for i in range(n)),
        voltage_v=np.array(states),
        energy_j=energy,
        time_s=time_s,
        transition_energy_j=draw(st.sampled_from([0.0, 1e-7, 2e-6])),
        transition_latency_s=draw(st.sampled_from([0.0, 1e-3])),
        rails=draw(st.integers(1, 3)),
        capacitor=_capacitor(charge, leakage),
        boot_energy_j=draw(st.sampled_from([0.0, 1e-6])),
        boot_time_s=draw(st.sampled_from([0.0, 2e-3])),
        wake_energy_j=tuple(draw(st.sampled_from([0.0, 5e-7])) for _ in range(n)),
        checkpoint_bits=bits,
        checkpoint_energy_j=ck_e,
        checkpoint_time_s=ck_t,
        restore_energy_j=rs_e,
        restore_time_s=rs_t,
    )
    if draw(st.booleans()):
        harvest = Harvest.constant(draw(st.sampled_from([2e-4, 1e-3, 5e-2])))
    else:
        pieces = draw(st.integers(2, 4))
        gaps = st.lists(
            st.sampled_from([0.01, 0.05, 0.2]), min_size=pieces - 1, max_size=pieces - 1
        )
        times = np.cumsum([0.0, *draw(gaps)])
        power = draw(
            st.lists(st.sampled_from([leakage, 5e-4, 2e-3, 3e-2]), min_size=pieces, max_size=pieces)
        )
        power[-1] = max(power[-1], 1e-3)
        harvest = Harvest(times, np.array(power), "trace")
    return (
        problem,
        harvest,
        draw(st.sampled_from(list(Objective))),
        draw(st.sampled_from(list(Checkpointing))),
    )


def _schedules(problem: IntermittentProblem, checkpointing: Checkpointing):
    n = problem.num_layers
    if checkpointing is Checkpointing.EVERY_LAYER:
        cuts = [(True,) * (n - 1)]
    elif checkpointing is Checkpointing.NONE:
        cuts = [(False,) * (n - 1)]
    else:
        cuts = list(itertools.product((False, True), repeat=n - 1))
    for states in itertools.product(range(problem.num_states), repeat=n):
        for cut in cuts:
            yield states, cut


def _brute_force(problem, harvest, objective, checkpointing) -> float:
    best = math.inf
    for states, cut in _schedules(problem, checkpointing):
        judged = evaluate_intermittent(problem, harvest, states, cut)
        if judged.feasible:
            best = min(best, judged.objective(objective))
    return best


def _brute_force_charge(problem, checkpointing) -> float:
    """Min over schedules (rails respected) of the largest power cycle's energy."""
    huge = IntermittentProblem(
        **{
            f: getattr(problem, f)
            for f in IntermittentProblem.__dataclass_fields__
            if f != "capacitor"
        },
        capacitor=_capacitor(1e9, problem.leakage_w),
    )
    best = math.inf
    harvest = Harvest.constant(1.0)
    for states, cut in _schedules(problem, checkpointing):
        judged = evaluate_intermittent(huge, harvest, states, cut)
        if judged.feasible:
            best = min(best, max(c.energy_j for c in judged.cycles))
    return best


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_cases())
def test_solver_equals_brute_force(case) -> None:
    problem, harvest, objective, checkpointing = case
    best = _brute_force(problem, harvest, objective, checkpointing)
    if math.isinf(best):
        with pytest.raises((IntermittentInfeasibleError, HarvestError)):
            solve_intermittent(problem, harvest, objective, checkpointing)
        return
    result = solve_intermittent(problem, harvest, objective, checkpointing)
    assert result.status is Status.PROVEN_OPTIMAL
    judged = evaluate_intermittent(problem, harvest, result.states, result.checkpoint_after)
    assert judged.feasible, judged.reasons
    assert result.value == pytest.approx(best, rel=1e-9)
    assert judged.objective(objective) == pytest.approx(best, rel=1e-9)
    if checkpointing is Checkpointing.EVERY_LAYER:
        assert all(result.checkpoint_after)
    if checkpointing is Checkpointing.NONE:
        assert not any(result.checkpoint_after)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_cases())
def test_min_charge_equals_brute_force_bottleneck(case) -> None:
    problem, _, _, checkpointing = case
    needed, first, last = min_charge(problem, checkpointing)
    assert needed == pytest.approx(_brute_force_charge(problem, checkpointing), rel=1e-9)
    if math.isfinite(needed) and needed > problem.charge_j * (1 + 1e-9):
        with pytest.raises(IntermittentInfeasibleError) as err:
            solve_intermittent(problem, Harvest.constant(1.0), Objective.ENERGY, checkpointing)
        assert err.value.needed_j == pytest.approx(needed, rel=1e-12)
        assert (err.value.first_layer, err.value.last_layer) == (first, last)
        assert 0 <= first <= last < problem.num_layers


def test_rail_limit_is_exact_where_the_relaxation_breaks_it() -> None:
    """Each layer is cheapest at its own voltage, so the unconstrained optimum uses three rails;
    with one rail the solver must pick the best common voltage (brute force agrees)."""
    volts = np.array([[0.9], [1.0], [1.1]])
    energy = tuple(np.roll(np.array([1.0, 2.0, 3.0]), i) * 1e-6 for i in range(3))
    problem = IntermittentProblem(
        name="rails",
        layer_names=("a", "b", "c"),
        voltage_v=volts,
        energy_j=energy,
        time_s=tuple(np.full(3, 1e-3) for _ in range(3)),
        transition_energy_j=0.0,
        transition_latency_s=0.0,
        rails=1,
        capacitor=_capacitor(1e-3),
        boot_energy_j=0.0,
        boot_time_s=0.0,
        wake_energy_j=(0.0,) * 3,
        checkpoint_bits=(0,) * 4,
        checkpoint_energy_j=(0.0,) * 4,
        checkpoint_time_s=(0.0,) * 4,
        restore_energy_j=(0.0,) * 4,
        restore_time_s=(0.0,) * 4,
    )
    harvest = Harvest.constant(1e-3)
    result = solve_intermittent(problem, harvest, Objective.ENERGY)
    assert len(set(result.states)) == 1
    assert result.value == pytest.approx(6e-6)
    assert result.stats["rail_subsets_searched"] >= 1
    assert result.value == pytest.approx(
        _brute_force(problem, harvest, Objective.ENERGY, Checkpointing.OPTIMAL)
    )


# -- the reference chip -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def squeezenet():
    chip = load_chip()
    return intermittent_problem(build_cost_table(load_network("squeezenet"), chip))


def test_squeezenet_needs_several_cycles_and_every_layer_does_not_fit(squeezenet) -> None:
    harvest = Harvest.constant(1e-3)
    result = solve_intermittent(squeezenet, harvest)
    cycles = result.evaluation.cycles
    assert len(cycles) >= 3
    assert all(c.energy_j <= squeezenet.charge_j for c in cycles)
    assert sum(result.checkpoint_after) == len(cycles) - 1
    # Latency = on-times + recharges; with a constant harvest, recharge = energy / power.
    evaluation = result.evaluation
    assert evaluation.recharge_s == pytest.approx(evaluation.energy_j / 1e-3, rel=1e-9)
    with pytest.raises(
        IntermittentInfeasibleError, match=r"with a checkpoint after every layer"
    ) as err:
        solve_intermittent(squeezenet, harvest, checkpointing=Checkpointing.EVERY_LAYER)
    # The capacitance it names is enough.
    needed = err.value.capacitance_f
    assert needed > 100e-6
    cap = squeezenet.capacitor
    bigger = CapacitorSpec(needed * 1e6 * (1 + 1e-9), cap.on_v, cap.off_v, cap.leakage_uw)
    roomy = dataclasses.replace(squeezenet, capacitor=bigger)
    every = solve_intermittent(roomy, harvest, checkpointing=Checkpointing.EVERY_LAYER)
    assert len(every.evaluation.cycles) == squeezenet.num_layers
    assert solve_intermittent(roomy, harvest).value <= every.value
    with pytest.raises(IntermittentInfeasibleError, match=r"the whole inference needs at least"):
        solve_intermittent(squeezenet, harvest, checkpointing=Checkpointing.NONE)


def test_ds_cnn_runs_in_one_charge() -> None:
    problem = intermittent_problem(build_cost_table(load_network("ds_cnn"), load_chip()))
    for objective in Objective:
        result = solve_intermittent(problem, Harvest.constant(1e-4), objective)
        assert len(result.evaluation.cycles) == 1
        assert not any(result.checkpoint_after)
        battery = solve_intermittent(problem, Harvest.constant(1e-4), objective, Checkpointing.NONE)
        assert battery.value == pytest.approx(result.value, rel=1e-12)


def test_energy_objective_is_no_worse_in_energy_and_latency_no_worse_in_latency(
    squeezenet,
) -> None:
    harvest = Harvest.constant(1e-2)
    fast = solve_intermittent(squeezenet, harvest, Objective.LATENCY)
    frugal = solve_intermittent(squeezenet, harvest, Objective.ENERGY)
    assert fast.evaluation.latency_s <= frugal.evaluation.latency_s * (1 + 1e-12)
    assert frugal.evaluation.energy_j <= fast.evaluation.energy_j * (1 + 1e-12)


def test_a_chip_without_the_section_is_refused() -> None:
    chip = load_chip(Path(__file__).parents[1] / "data" / "chip_small.yaml")
    assert chip.intermittent is None
    table = build_cost_table(load_network("ds_cnn"), chip)
    with pytest.raises(ValueError, match=r"has no intermittent section"):
        intermittent_problem(table)


def _physical_case(seed: int) -> tuple[IntermittentProblem, Harvest, Objective]:
    """Five layers whose states trade time for energy (t ~ 1/V, E ~ V^2), a harvest strong
    enough that time matters, boundaries of random cost: long Pareto fronts inside a cycle."""
    rng = np.random.default_rng(seed)
    n = 5
    volts = np.array(list(itertools.product(GRID, repeat=2)))[rng.choice(9, size=3, replace=False)]
    work = rng.uniform(1, 3, size=(n, 2))
    energy = tuple((w * volts**2).sum(axis=1) * rng.uniform(0.9, 1.1, 3) * 1e-6 for w in work)
    time_s = tuple((w / volts).max(axis=1) * rng.uniform(0.9, 1.1, 3) * 1e-3 for w in work)
    ck = tuple(float(x) for x in rng.uniform(0, 3e-6, n + 1))
    ck_t = tuple(float(x) for x in rng.uniform(0, 5e-4, n + 1))
    total = sum(float(e.max()) for e in energy)
    scale = volts.mean(axis=1) if seed % 2 else np.ones(len(volts))
    problem = IntermittentProblem(
        name=f"physical-{seed}",
        layer_names=tuple(f"l{i}" for i in range(n)),
        voltage_v=volts,
        energy_j=energy,
        time_s=time_s,
        transition_energy_j=float(rng.choice([0.0, 1e-7])),
        transition_latency_s=float(rng.choice([0.0, 1e-4])),
        rails=int(rng.integers(2, 4)),
        capacitor=_capacitor(float(rng.uniform(0.3, 1.1)) * total, float(rng.choice([0.0, 1e-4]))),
        boot_energy_j=5e-7,
        boot_time_s=1e-4,
        wake_energy_j=(0.0,) * n,
        checkpoint_bits=(0,) * (n + 1),
        # The copies' idle power grows with the state's voltages (odd seeds: per state).
        checkpoint_energy_j=np.outer((0.0, *ck[1:]), scale),
        checkpoint_time_s=(0.0, *ck_t[1:]),
        restore_energy_j=np.outer((0.0, *ck[1:n], 0.0), scale),
        restore_time_s=(0.0, *ck_t[1:n], 0.0),
    )
    harvest = Harvest.constant(float(rng.choice([5e-3, 2e-2, 1e-1])))
    return problem, harvest, Objective(rng.choice(["latency", "energy"]))


@pytest.mark.parametrize("seed", range(25))
def test_solver_equals_brute_force_on_physical_instances(seed: int) -> None:
    problem, harvest, objective = _physical_case(seed)
    best = _brute_force(problem, harvest, objective, Checkpointing.OPTIMAL)
    if math.isinf(best):
        with pytest.raises(IntermittentInfeasibleError):
            solve_intermittent(problem, harvest, objective)
        return
    result = solve_intermittent(problem, harvest, objective)
    assert result.value == pytest.approx(best, rel=1e-9)
