"""The ILP oracle: a compact mixed-integer model of the scheduling problem, solved via PuLP by
CBC or HiGHS (:class:`IlpBackend`).

This is the only module that imports PuLP (and, through PuLP, highspy). The model
(docs/solvers.md lists it in full): one binary per layer and state; per-domain level indicators;
per-domain switch variables bounded on both sides so they equal the true switch count; rail
binaries; the slack as stay-on (idle time split by last state, so no product of variables
appears) or sleep, chosen by one binary. Each back-end's own verdict and bound are read from the
solver (CBC's log, HiGHS's model status and info): PuLP alone reports "Optimal" even when the
solver stopped at its time limit.
"""

import enum
import functools
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# PuLP 3.3 deprecates LpVariable(...) and PULP_CBC_CMD in favour of 4.x APIs: this module uses
# prob.add_variable and COIN_CMD on the bundled CBC binary, which emit no warnings.
import pulp
from pulp.apis.coin_api import pulp_cbc_path

from .instance import Problem

__all__ = [
    "IlpBackend",
    "IlpResult",
    "IlpStatus",
    "available_backends",
    "default_backend",
    "solve_ilp",
]

# Scaled units keep CBC's absolute tolerances (1e-7 .. 1e-9) meaningful: times in µs and energies
# in nJ put periods near 1e4 and energies near 1e5 instead of 1e-2 and 1e-4.
_TIME_SCALE = 1e6  # s -> µs
_ENERGY_SCALE = 1e9  # J -> nJ
_POWER_SCALE = _ENERGY_SCALE / _TIME_SCALE  # W -> nJ/µs


class IlpBackend(enum.Enum):
    """The MILP solver behind the model."""

    CBC = "cbc"  # the CBC binary bundled with PuLP 3.3
    HIGHS = "highs"  # HiGHS through highspy (PuLP's HiGHS API)


#: Default back-end, first available wins. HiGHS proves every bench instance optimal within the
#: 300 s limit and needs less time in total; CBC is faster on 5 of the 8 but cannot prove the
#: 3-level 50 FPS instance in 300 s (HiGHS: 11 s). Measured by `make bench`, section solvers
#: (docs/solvers.md, "CBC vs HiGHS").
_PREFERENCE = (IlpBackend.HIGHS, IlpBackend.CBC)


@functools.cache
def available_backends() -> tuple[IlpBackend, ...]:
    """The back-ends this installation can run, in order of preference."""
    found = set(pulp.listSolvers(onlyAvailable=True))
    names = {IlpBackend.CBC: "PULP_CBC_CMD", IlpBackend.HIGHS: "HiGHS"}
    return tuple(b for b in _PREFERENCE if names[b] in found)


def default_backend() -> IlpBackend:
    """The preferred available back-end.

    Raises
    ------
    RuntimeError
        Neither CBC nor HiGHS is available.
    """
    available = available_backends()
    if not available:
        raise RuntimeError(
            "no ILP back-end: PuLP finds neither its bundled CBC nor highspy (pip install highspy)"
        )
    return available[0]


class IlpStatus(enum.Enum):
    """What the solver actually established."""

    PROVEN_OPTIMAL = "proven-optimal"
    FEASIBLE_WITH_GAP = "feasible-with-gap"
    INFEASIBLE = "infeasible"
    TIMED_OUT_NO_SOLUTION = "timed-out-no-solution"


@dataclass(frozen=True, slots=True)
class IlpResult:
    """Outcome of :func:`solve_ilp`.

    Attributes
    ----------
    status : IlpStatus
        The solver's verdict (CBC's log, HiGHS's model status).
    states : tuple of int or None
        The schedule the solver returned (None unless a solution exists).
    objective_j : float
        The solver's objective value (``inf`` without a solution).
    lower_bound_j : float
        The solver's proven lower bound (``inf`` if infeasible, ``-inf`` if unknown).
    gap : float
        ``(objective - bound) / objective``; 0 when proven optimal, ``inf`` without a solution.
    solve_time_s : float
        Wall time of the solver run (model building excluded).
    stats : dict
        Model size, the back-end and its own result line.
    """

    status: IlpStatus
    states: tuple[int, ...] | None
    objective_j: float
    lower_bound_j: float
    gap: float
    solve_time_s: float
    stats: dict[str, Any] = field(default_factory=dict)


def _exact_switch(
    model: pulp.LpProblem,
    name: str,
    here: dict[int, pulp.LpVariable],
    there: dict[int, pulp.LpVariable],
) -> pulp.LpVariable:
    """A variable equal to 1 if the one-hot level indicators ``here`` and ``there`` differ.

    Bounded below (it must count a change) and above (it must not count one that did not happen:
    a spare switch would shorten the idle time and could look cheaper when staying on).
    """
    switch = model.add_variable(name, 0, 1)
    for level in here.keys() | there.keys():
        a = here.get(level, 0)
        b = there.get(level, 0)
        model += switch >= a - b
        model += switch >= b - a
        if level in here and level in there:
            model += switch <= 2 - a - b
    return switch


def _build(
    problem: Problem, period_s: float, rails: int
) -> tuple[pulp.LpProblem, list[list[pulp.LpVariable]]]:
    """The model and its state binaries x[i][s]."""
    n = problem.num_layers
    domains = range(problem.num_domains)
    period = period_s * _TIME_SCALE
    e_tr = problem.transition_energy_j * _ENERGY_SCALE
    l_tr = problem.transition_latency_s * _TIME_SCALE
    entry = problem.sleep_entry_switches
    sleep_power = problem.sleep_power_w * _POWER_SCALE
    model = pulp.LpProblem("voltflow_schedule", pulp.LpMinimize)

    # x[i][s]: layer i runs in state s.
    x = [
        [model.add_variable(f"x_{i}_{s}", 0, 1, pulp.LpBinary) for s in range(layer.num_states)]
        for i, layer in enumerate(problem.layers)
    ]
    for i in range(n):
        model += pulp.lpSum(x[i]) == 1, f"one_state_{i}"

    # level[i][d][l]: domain d of layer i is at grid level l (an equality-defined indicator).
    level: list[list[dict[int, pulp.LpVariable]]] = []
    for i in range(n):
        index = problem.level_index[i]
        per_domain = []
        for d in domains:
            indicators = {}
            for lv in np.unique(index[:, d]).tolist():
                var = model.add_variable(f"lv_{i}_{d}_{lv}", 0, 1)
                members = np.flatnonzero(index[:, d] == lv).tolist()
                model += var == pulp.lpSum(x[i][s] for s in members), f"level_{i}_{d}_{lv}"
                indicators[lv] = var
            per_domain.append(indicators)
        level.append(per_domain)

    switches = [
        _exact_switch(model, f"sw_{i}_{d}", level[i][d], level[i - 1][d])
        for i in range(1, n)
        for d in domains
    ]

    if rails < problem.num_levels:
        rail = [
            model.add_variable(f"rail_{lv}", 0, 1, pulp.LpBinary)
            for lv in range(problem.num_levels)
        ]
        model += pulp.lpSum(rail) <= rails, "rail_limit"
        for i in range(n):
            for d in domains:
                for lv, var in level[i][d].items():
                    model += var <= rail[lv]

    # Slack: sleep (z = 1) or stay on (z = 0, idle time attributed to the last state).
    z = model.add_variable("sleep", 0, 1, pulp.LpBinary)
    last = problem.layers[-1]
    idle_on = [model.add_variable(f"idle_on_{s}", 0, period) for s in range(last.num_states)]
    for s, var in enumerate(idle_on):
        model += var <= period * x[n - 1][s]
    model += pulp.lpSum(idle_on) <= period * (1 - z), "idle_on_only_awake"
    idle_sleep = model.add_variable("idle_sleep", 0, period)
    model += idle_sleep <= period * z, "idle_sleep_only_asleep"
    model += idle_sleep >= entry * l_tr * z, "sleep_entry_fits"
    paid_wrap = []
    if problem.wraparound and n > 1:
        for d in domains:
            wrap = _exact_switch(model, f"wrap_{d}", level[0][d], level[n - 1][d])
            paid = model.add_variable(f"wrap_paid_{d}", 0, 1)
            model += paid >= wrap - z
            model += paid <= wrap
            model += paid <= 1 - z
            paid_wrap.append(paid)

    layer_time = pulp.lpSum(
        float(layer.time_s[s]) * _TIME_SCALE * x[i][s]
        for i, layer in enumerate(problem.layers)
        for s in range(layer.num_states)
    )
    layer_energy = pulp.lpSum(
        float(layer.energy_j[s]) * _ENERGY_SCALE * x[i][s]
        for i, layer in enumerate(problem.layers)
        for s in range(layer.num_states)
    )
    model += (
        layer_time
        + l_tr * pulp.lpSum(switches)
        + l_tr * pulp.lpSum(paid_wrap)
        + pulp.lpSum(idle_on)
        + idle_sleep
        == period,
        "period",
    )
    model += (
        layer_energy
        + e_tr * pulp.lpSum(switches)
        + e_tr * pulp.lpSum(paid_wrap)
        + pulp.lpSum(
            float(last.leakage_w[s]) * _POWER_SCALE * idle_on[s] for s in range(last.num_states)
        )
        + (entry * e_tr - sleep_power * entry * l_tr) * z
        + sleep_power * idle_sleep
    )
    return model, x


_RESULT = re.compile(r"^Result - (.*)$", re.MULTILINE)
_BOUND = re.compile(r"^Lower bound:\s+(\S+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one back-end run established, in the model's scaled units."""

    infeasible: bool
    proven: bool  # the search completed: the solution is optimal
    bound: float  # proven lower bound of the scaled objective (-inf: unknown)
    result: str  # the solver's own words, for the stats
    elapsed_s: float


def _run_cbc(model: pulp.LpProblem, time_limit_s: float | None) -> _Verdict:
    """CBC's verdict and bound, read from its log (PuLP's status alone is not honest)."""
    with tempfile.TemporaryDirectory(prefix="voltflow-cbc-") as tmp:
        log_path = Path(tmp) / "cbc.log"
        solver = pulp.COIN_CMD(
            path=pulp_cbc_path,
            msg=False,
            timeLimit=time_limit_s,
            gapRel=0.0,
            gapAbs=0.0,
            logPath=str(log_path),
        )
        started = time.perf_counter()
        model.solve(solver)
        elapsed = time.perf_counter() - started
        log = log_path.read_text(errors="replace")
    result = (_RESULT.findall(log) or ["(no result line)"])[-1].strip()
    infeasible = model.status == pulp.LpStatusInfeasible or result.startswith(
        "Problem proven infeasible"
    )
    proven = result.startswith("Optimal solution found") and (
        model.sol_status == pulp.LpSolutionOptimal
    )
    bounds = _BOUND.findall(log)
    bound = float(bounds[-1]) if bounds else -math.inf
    return _Verdict(infeasible, proven, bound, result, elapsed)


@functools.cache
def _silence_highs_banner() -> None:
    """Let HiGHS print its once-per-process banner into /dev/null, not into our stdout.

    HiGHS writes it from C++ on file descriptor 1 when the first ``Highs`` object is made, before
    any option can switch output off; it would corrupt ``--json`` output.
    """
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _run_highs(model: pulp.LpProblem, time_limit_s: float | None) -> _Verdict:
    """HiGHS's verdict and bound, read from its model status and info (PuLP maps a time-limit
    stop with a solution to "Optimal")."""
    import highspy

    _silence_highs_banner()
    solver = pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=0.0, gapAbs=0.0)
    started = time.perf_counter()
    model.solve(solver)
    elapsed = time.perf_counter() - started
    highs = model.solverModel
    status = highs.getModelStatus()
    info = highs.getInfo()
    infeasible = status in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    )
    proven = status == highspy.HighsModelStatus.kOptimal
    bound = float(info.mip_dual_bound)
    if not math.isfinite(bound):
        bound = -math.inf
    return _Verdict(infeasible, proven, bound, highs.modelStatusToString(status), elapsed)


def _chosen(backend: IlpBackend | str | None) -> IlpBackend:
    if backend is None:
        return default_backend()
    try:
        chosen = IlpBackend(backend)
    except ValueError:
        allowed = ", ".join(b.value for b in IlpBackend)
        raise ValueError(f"backend must be one of {allowed}, not {backend!r}") from None
    if chosen not in available_backends():
        available = ", ".join(b.value for b in available_backends()) or "none"
        raise ValueError(
            f"backend must be an available ILP back-end ({available}), not {chosen.value!r}"
        )
    return chosen


def solve_ilp(
    problem: Problem,
    period_s: float,
    rails: int,
    *,
    time_limit_s: float | None = 300.0,
    backend: IlpBackend | str | None = None,
) -> IlpResult:
    """Solve the instance with an ILP back-end and report what the solver really proved.

    Parameters
    ----------
    problem : Problem
        The instance.
    period_s : float
        Period T = 1 / rate.
    rails : int
        At most this many distinct voltages over all domains and layers.
    time_limit_s : float or None
        The solver's wall-clock limit (None: no limit).
    backend : IlpBackend or str or None
        ``cbc`` or ``highs``; None: :func:`default_backend`.

    Returns
    -------
    IlpResult
        Status PROVEN_OPTIMAL only if the solver says its search completed.
    """
    if not period_s > 0 or not math.isfinite(period_s):
        raise ValueError(f"period must be a positive finite number of seconds, not {period_s!r}")
    if isinstance(rails, bool) or not isinstance(rails, int) or rails < 1:
        raise ValueError(f"rails must be a positive integer, not {rails!r}")
    chosen = _chosen(backend)
    model, x = _build(problem, period_s, rails)
    run = _run_cbc if chosen is IlpBackend.CBC else _run_highs
    verdict = run(model, time_limit_s)
    elapsed = verdict.elapsed_s
    stats: dict[str, Any] = {
        "variables": len(model.variables()),
        "constraints": model.numConstraints(),
        "backend": chosen.value,
        f"{chosen.value}_result": verdict.result,
        "pulp_status": pulp.LpStatus[model.status],
    }

    has_solution = model.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if verdict.infeasible:
        return IlpResult(IlpStatus.INFEASIBLE, None, math.inf, math.inf, math.inf, elapsed, stats)
    if not has_solution:
        return IlpResult(
            IlpStatus.TIMED_OUT_NO_SOLUTION, None, math.inf, -math.inf, math.inf, elapsed, stats
        )
    states = tuple(int(np.argmax([var.value() or 0.0 for var in row])) for row in x)
    objective = float(pulp.value(model.objective)) / _ENERGY_SCALE
    if verdict.proven:
        return IlpResult(
            IlpStatus.PROVEN_OPTIMAL, states, objective, objective, 0.0, elapsed, stats
        )
    bound = verdict.bound / _ENERGY_SCALE
    if objective > 0:
        gap = (objective - bound) / objective
    else:
        gap = 0.0 if bound >= objective else math.inf
    return IlpResult(
        IlpStatus.FEASIBLE_WITH_GAP, states, objective, bound, max(gap, 0.0), elapsed, stats
    )
