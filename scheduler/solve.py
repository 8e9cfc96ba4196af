"""One front door to every solver: ``solve(problem, period_s, rails, method) -> Result``.

Every answer is re-checked by :func:`scheduler.evaluate.evaluate`, whoever produced it.
"""

import enum
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from . import baselines
from .dp import min_period, solve_dp
from .evaluate import Evaluation, evaluate
from .instance import Problem, restrict_to_levels

if TYPE_CHECKING:
    from .ilp import IlpBackend

__all__ = ["InfeasibleError", "Method", "NoSolutionError", "Result", "Status", "solve"]


class Method(enum.Enum):
    """Solvers and baselines; the values are the command-line spellings."""

    DP = "dp"
    ILP = "ilp"
    NOMINAL = "nominal"
    GATING = "gating"
    GREEDY = "greedy"
    GATING_GREEDY = "gating-greedy"
    EVEN_RAILS = "even-rails"
    SUPERBLOCK = "superblock"  # SparseDVFS: sparsity classes, merged super-blocks


class Status(enum.Enum):
    """What is known about a result's optimality."""

    PROVEN_OPTIMAL = "proven-optimal"
    FEASIBLE_WITH_GAP = "feasible-with-gap"  # a limit was hit; lower_bound_j and gap say how far
    HEURISTIC = "heuristic"  # a baseline policy: feasible, no optimality claim


class InfeasibleError(ValueError):
    """No schedule of the method meets the period.

    Attributes
    ----------
    period_s : float
        The period asked for.
    min_period_s : float
        The shortest period the method can meet (``inf`` if none at all).
    max_rate_fps : float
        ``1 / min_period_s``.
    """

    def __init__(self, method: Method, period_s: float, rails: int, min_period_s: float) -> None:
        self.method = method
        self.period_s = period_s
        self.rails = rails
        self.min_period_s = min_period_s
        self.max_rate_fps = 0.0 if math.isinf(min_period_s) else 1.0 / min_period_s
        if math.isinf(min_period_s):
            tail = f"no schedule of {method.value} uses at most {rails} rails"
        else:
            tail = (
                f"the shortest achievable latency is {min_period_s * 1e3:.6g} ms (switch "
                f"latencies and the time after the last layer included), so the highest feasible "
                f"rate is {self.max_rate_fps:.6g} FPS"
            )
        super().__init__(
            f"{method.value}: no schedule meets the period of {period_s * 1e3:.6g} ms "
            f"({1.0 / period_s:.6g} FPS) with at most {rails} rails: {tail}"
        )


class NoSolutionError(RuntimeError):
    """The solver stopped (time limit) before it found any schedule."""


@dataclass(frozen=True, slots=True)
class Result:
    """A schedule and what is known about it.

    Attributes
    ----------
    method : Method
        Who produced it.
    status : Status
        Proven optimal, feasible with a gap, or a heuristic baseline.
    states : tuple of int
        One state index per layer.
    evaluation : Evaluation
        The independent check (energy split, latency, slack mode, rails used).
    lower_bound_j : float or None
        Proven lower bound on the optimum (None for baselines).
    gap : float or None
        ``(energy - lower_bound) / energy`` (None for baselines).
    solve_time_s : float
        Wall time of the solve.
    stats : dict
        Solver counters.
    """

    method: Method
    status: Status
    states: tuple[int, ...]
    evaluation: Evaluation
    lower_bound_j: float | None
    gap: float | None
    solve_time_s: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def energy_j(self) -> float:
        """Energy per period of the schedule, as evaluated."""
        return self.evaluation.energy_j


def _levels(problem: Problem, voltages: Sequence[float] | None) -> tuple[int, ...] | None:
    return None if voltages is None else tuple(problem.level_of(v) for v in voltages)


class _Outcome(NamedTuple):
    states: tuple[int, ...] | None  # None: the method cannot meet the period
    status: Status
    lower_bound_j: float | None
    stats: dict[str, Any]
    min_period_s: float  # the method's shortest period (for the infeasibility message)


def _from_baseline(base: baselines.BaselineSchedule) -> _Outcome:
    return _Outcome(base.states, Status.HEURISTIC, None, dict(base.stats), base.min_period_s)


def _exact(
    problem: Problem,
    period_s: float,
    rails: int,
    method: Method,
    levels: tuple[int, ...] | None,
    time_limit_s: float | None,
    ilp_backend: "IlpBackend | str | None",
) -> _Outcome:
    """The DP or the ILP, on the grid restricted to ``levels`` if given."""
    restriction = None if levels is None else restrict_to_levels(problem, levels)
    target = problem if restriction is None else restriction.problem
    if method is Method.DP:
        found = solve_dp(target, period_s, rails, time_limit_s=time_limit_s)
        local, lower, stats = found.states, found.lower_bound_j, dict(found.stats)
        status = Status.PROVEN_OPTIMAL if found.proven else Status.FEASIBLE_WITH_GAP
    else:
        from .ilp import IlpStatus, solve_ilp  # PuLP is imported only when the ILP is used

        oracle = solve_ilp(target, period_s, rails, time_limit_s=time_limit_s, backend=ilp_backend)
        stats = dict(oracle.stats, ilp_status=oracle.status.value)
        if oracle.status is IlpStatus.TIMED_OUT_NO_SOLUTION:
            raise NoSolutionError(
                f"ilp: {oracle.stats['backend']} stopped after {oracle.solve_time_s:.3g} s "
                f"without a schedule (time limit {time_limit_s} s)"
            )
        local, lower = oracle.states, oracle.lower_bound_j
        proven = oracle.status is IlpStatus.PROVEN_OPTIMAL
        status = Status.PROVEN_OPTIMAL if proven else Status.FEASIBLE_WITH_GAP
    if local is None:
        return _Outcome(None, status, lower, stats, min_period(target, rails)[0])
    states = tuple(local) if restriction is None else restriction.to_original(local)
    return _Outcome(states, status, lower, stats, 0.0)


def solve(
    problem: Problem,
    period_s: float,
    rails: int = 3,
    method: Method | str = Method.DP,
    *,
    time_limit_s: float | None = 60.0,
    levels: Sequence[float] | None = None,
    nominal_v: float | None = None,
    ilp_backend: "IlpBackend | str | None" = None,
) -> Result:
    """Schedule ``problem`` for one period under a rail limit.

    Parameters
    ----------
    problem : Problem
        The instance. The policy decides which instance to pass: the no-gating one for
        ``nominal``, the gated one for ``gating`` and ``gating-greedy``.
    period_s : float
        Period T = 1 / rate.
    rails : int
        At most this many distinct voltages over all domains and layers.
    method : Method or str
        ``dp`` (exact), ``ilp`` (CBC or HiGHS oracle), ``nominal``/``gating`` (every domain at
        ``nominal_v``, race to sleep), ``greedy``/``gating-greedy``, ``even-rails``,
        ``superblock`` (SparseDVFS: per sparsity class one uniform state, merged blocks).
    time_limit_s : float or None
        Limit for ``dp``, ``ilp`` and ``even-rails``; the result then carries a gap.
    levels : sequence of float, optional
        Voltages the method may use: for ``dp``/``ilp`` a restriction of the grid, for ``greedy``
        its level set (default lowest/middle/highest), for ``even-rails`` the fixed rails
        (default evenly spaced). Ignored by ``nominal``/``gating``.
    nominal_v : float, optional
        The chip's nominal voltage; required by ``nominal`` and ``gating``.
    ilp_backend : IlpBackend or str, optional
        ``cbc`` or ``highs`` for ``ilp`` (default: :func:`scheduler.ilp.default_backend`);
        ignored by the other methods.

    Raises
    ------
    InfeasibleError
        No schedule of the method meets the period; the message gives the shortest latency and
        the highest feasible rate.
    NoSolutionError
        The time limit stopped the ILP before it found a schedule.
    ValueError
        Bad arguments (unknown method, voltage not on the grid, missing ``nominal_v``).
    """
    try:
        method = Method(method)
    except ValueError:
        allowed = ", ".join(m.value for m in Method)
        raise ValueError(f"method must be one of {allowed}, not {method!r}") from None
    if not period_s > 0 or not math.isfinite(period_s):
        raise ValueError(f"period must be a positive finite number of seconds, not {period_s!r}")
    if isinstance(rails, bool) or not isinstance(rails, int) or rails < 1:
        raise ValueError(f"rails must be a positive integer, not {rails!r}")
    chosen = _levels(problem, levels)
    started = time.perf_counter()
    if method in (Method.NOMINAL, Method.GATING):
        if nominal_v is None:
            raise ValueError(f"method {method.value} needs nominal_v, the chip's nominal voltage")
        outcome = _from_baseline(baselines.nominal(problem, period_s, rails, nominal_v=nominal_v))
    elif method in (Method.GREEDY, Method.GATING_GREEDY):
        outcome = _from_baseline(baselines.greedy(problem, period_s, rails, levels=chosen))
    elif method is Method.SUPERBLOCK:
        outcome = _from_baseline(baselines.superblock(problem, period_s, rails))
    elif method is Method.EVEN_RAILS:
        outcome = _from_baseline(
            baselines.even_rails(problem, period_s, rails, levels=chosen, time_limit_s=time_limit_s)
        )
    else:
        outcome = _exact(problem, period_s, rails, method, chosen, time_limit_s, ilp_backend)
    states, status, lower, stats, fastest = outcome
    elapsed = time.perf_counter() - started
    if states is None:
        raise InfeasibleError(method, period_s, rails, fastest)
    evaluation = evaluate(problem, states, period_s, rails)
    if not evaluation.feasible:
        # A solver claimed a schedule the independent checker rejects: a bug (or, for the ILP,
        # CBC's tolerances), never a result to hand on.
        raise RuntimeError(
            f"{method.value} returned a schedule that fails evaluation: "
            + "; ".join(evaluation.reasons)
        )
    gap = None
    if status is Status.PROVEN_OPTIMAL:
        # The solver's bound equals its own objective; evaluate() may differ by rounding only.
        lower, gap = evaluation.energy_j, 0.0
    elif lower is not None:
        energy = evaluation.energy_j
        lower = min(lower, energy)
        gap = (energy - lower) / energy if energy > 0 else 0.0
    return Result(method, status, states, evaluation, lower, gap, elapsed, stats)
