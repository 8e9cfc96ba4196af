"""The ILP oracle: a compact mixed-integer model of the scheduling problem, solved by CBC via PuLP.

This is the only module that imports PuLP. The model (docs/solvers.md lists it in full):
one binary per layer and state; per-domain level indicators; per-domain switch variables bounded on
both sides so they equal the true switch count; rail binaries; the slack as stay-on (idle time
split by last state, so no product of variables appears) or sleep, chosen by one binary.
CBC's own verdict and bound are read from its log: PuLP alone reports "Optimal" even when CBC
stopped at its time limit.
"""

import enum
import math
import re
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

__all__ = ["IlpResult", "IlpStatus", "solve_ilp"]

# Scaled units keep CBC's absolute tolerances (1e-7 .. 1e-9) meaningful: times in µs and energies
# in nJ put periods near 1e4 and energies near 1e5 instead of 1e-2 and 1e-4.
_TIME_SCALE = 1e6  # s -> µs
_ENERGY_SCALE = 1e9  # J -> nJ
_POWER_SCALE = _ENERGY_SCALE / _TIME_SCALE  # W -> nJ/µs


class IlpStatus(enum.Enum):
    """What CBC actually established."""

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
        CBC's verdict, read from its log.
    states : tuple of int or None
        The schedule CBC returned (None unless a solution exists).
    objective_j : float
        CBC's objective value (``inf`` without a solution).
    lower_bound_j : float
        CBC's proven lower bound (``inf`` if infeasible, ``-inf`` if unknown).
    gap : float
        ``(objective - bound) / objective``; 0 when proven optimal, ``inf`` without a solution.
    solve_time_s : float
        Wall time of the CBC run (model building excluded).
    stats : dict
        Model size and CBC's result line.
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


def solve_ilp(
    problem: Problem, period_s: float, rails: int, *, time_limit_s: float | None = 300.0
) -> IlpResult:
    """Solve the instance with CBC and report what CBC really proved.

    Parameters
    ----------
    problem : Problem
        The instance.
    period_s : float
        Period T = 1 / rate.
    rails : int
        At most this many distinct voltages over all domains and layers.
    time_limit_s : float or None
        CBC's wall-clock limit (None: no limit).

    Returns
    -------
    IlpResult
        Status PROVEN_OPTIMAL only if CBC's log says the search completed.
    """
    if not period_s > 0 or not math.isfinite(period_s):
        raise ValueError(f"period must be a positive finite number of seconds, not {period_s!r}")
    if isinstance(rails, bool) or not isinstance(rails, int) or rails < 1:
        raise ValueError(f"rails must be a positive integer, not {rails!r}")
    model, x = _build(problem, period_s, rails)
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
    result_line = (_RESULT.findall(log) or ["(no result line)"])[-1].strip()
    stats: dict[str, Any] = {
        "variables": len(model.variables()),
        "constraints": model.numConstraints(),
        "cbc_result": result_line,
        "pulp_status": pulp.LpStatus[model.status],
    }

    has_solution = model.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    if model.status == pulp.LpStatusInfeasible or result_line.startswith(
        "Problem proven infeasible"
    ):
        return IlpResult(IlpStatus.INFEASIBLE, None, math.inf, math.inf, math.inf, elapsed, stats)
    if not has_solution:
        return IlpResult(
            IlpStatus.TIMED_OUT_NO_SOLUTION, None, math.inf, -math.inf, math.inf, elapsed, stats
        )
    states = tuple(int(np.argmax([var.value() or 0.0 for var in row])) for row in x)
    objective = float(pulp.value(model.objective)) / _ENERGY_SCALE
    proven = result_line.startswith("Optimal solution found") and (
        model.sol_status == pulp.LpSolutionOptimal
    )
    if proven:
        return IlpResult(
            IlpStatus.PROVEN_OPTIMAL, states, objective, objective, 0.0, elapsed, stats
        )
    bound_match = _BOUND.findall(log)
    bound = float(bound_match[-1]) / _ENERGY_SCALE if bound_match else -math.inf
    if objective > 0:
        gap = (objective - bound) / objective
    else:
        gap = 0.0 if bound >= objective else math.inf
    return IlpResult(
        IlpStatus.FEASIBLE_WITH_GAP, states, objective, bound, max(gap, 0.0), elapsed, stats
    )
