"""The exact solver: rail subsets, Lagrangian bounds and a bounded Pareto-label DP.

Method (docs/solvers.md has the derivation):

1. A schedule with at most R rails uses levels inside some subset of exactly min(R, L) grid levels,
   so the rail limit is handled exactly by enumerating those subsets; inside one, every state whose
   voltages all lie in the subset is allowed and the rail constraint disappears.
2. Inside a subset, states that can replace another one in *every* schedule without costing energy
   or time (switch costs with the neighbours and the slack included) are pruned.
3. Every subset gets a Lagrangian lower bound (deadline dualised with multiplier theta, slack power
   folded in, maximised by LARAC steps). Its paths give incumbents. Subsets are searched in order
   of bound; a subset whose bound is not below the incumbent is skipped.
4. The search inside a subset is a label-setting DP over (time, energy) labels per state: a label
   is dropped if it cannot meet the deadline, if its Lagrangian completion bound is not below the
   incumbent, or if another label at the same state dominates it.

The answer comes with a lower bound: equal to it when every subset was closed, otherwise (time or
label limit) the smallest bound of what was left open.
"""

import functools
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .evaluate import DEADLINE_TOLERANCE
from .instance import Problem

__all__ = ["DPResult", "min_period", "solve_dp"]

#: LARAC stops when the new path improves the Lagrangian bound by less than this (relative).
_LARAC_TOLERANCE = 1e-13
_LARAC_MAX_STEPS = 60
#: The search inside a subset first caps the energy at bound * (1 + _FIRST_GUESS), then raises the
#: cap by _GUESS_GROWTH until a schedule is found or the cap reaches the incumbent.
_FIRST_GUESS = 1e-5
_GUESS_GROWTH = 2.0
#: Batched passes over rail subsets keep each per-layer array below this many elements.
_BATCH_ELEMENTS = 2_000_000


@dataclass(frozen=True, slots=True)
class DPResult:
    """Outcome of :func:`solve_dp`.

    Attributes
    ----------
    states : tuple of int or None
        Best schedule found (original state indices), None if no schedule meets the period.
    energy_j : float
        Its energy in the solver's own arithmetic (``inf`` if none).
    lower_bound_j : float
        Proven lower bound on the optimum (``inf`` if proven infeasible).
    proven : bool
        True if ``lower_bound_j == energy_j``: every subset was searched to the end.
    stats : dict
        Counters: states before and after pruning, subsets searched and skipped, labels.
    """

    states: tuple[int, ...] | None
    energy_j: float
    lower_bound_j: float
    proven: bool
    stats: dict[str, Any] = field(default_factory=dict)


# --- Preparation: independent of the period, cached per (problem, rails) -----------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Subset:
    """One rail subset after state pruning (arrays indexed by subset-local state)."""

    levels: tuple[int, ...]
    states_before: int  # states of the subset (all layers) before pruning
    states: tuple[np.ndarray, ...]  # original indices per layer, after pruning
    time: tuple[np.ndarray, ...]
    energy: tuple[np.ndarray, ...]
    leak_last: np.ndarray
    hamming: tuple[np.ndarray, ...]  # [i] for i >= 1: (S_{i-1}, S_i) switches between layers
    wrap: np.ndarray  # (S_N, S_1) switches of the wrap-around edge (zeros if not paid)
    first_pattern: np.ndarray  # (S_1,) id of the first state's voltage pattern
    min_period_s: float  # shortest period this subset can meet
    min_period_states: tuple[int, ...]  # subset-local path achieving it
    tail_time: tuple[np.ndarray, ...]  # [i][s]: least time still needed after layer i in state s
    p_low: float  # least slack power (W) any schedule of the subset can have
    p_high: float  # greatest slack power


@dataclass(frozen=True, slots=True, eq=False)
class _Prepared:
    subsets: tuple[_Subset, ...]
    states_total: int
    states_kept: int  # summed over subsets and layers
    states_in_subsets: int  # the same before pruning


def _edges_touching(problem: Problem, i: int) -> int:
    """How many switch-carrying edges (in the chain or wrap-around) touch layer i."""
    n = problem.num_layers
    if n == 1:
        return 0  # the only edge is the wrap-around self-loop, which never switches
    left = i > 0 or problem.wraparound
    right = i < n - 1 or problem.wraparound
    return int(left) + int(right)


def _undominated(problem: Problem, i: int, candidates: np.ndarray, p_high: float) -> np.ndarray:
    """The states among ``candidates`` of layer i that no other candidate can always replace.

    The candidates are the states of one rail subset, so each is allowed in every schedule.

    State a replaces b in any schedule if, for every change Δ of the switches on the edges touching
    the layer (|Δ| <= edges * hamming(a, b)) and every slack power p in [0, p_high]:
    t_a - t_b + l_tr Δ <= 0 (the deadline still holds) and
    E_a - E_b + (e_tr - p l_tr) Δ - p (t_a - t_b) <= 0 (the energy, slack included, does not grow).
    In the last layer a must also leak no more than b. Both conditions are convex in p, so p = 0
    and p = p_high suffice. Identical states keep the lowest index.
    """
    layer = problem.layers[i]
    levels = problem.level_index[i][candidates]
    t = layer.time_s[candidates]
    e = layer.energy_j[candidates]
    e_tr = problem.transition_energy_j
    l_tr = problem.transition_latency_s
    swing = (levels[:, None, :] != levels[None, :, :]).sum(axis=2) * _edges_touching(problem, i)
    dt = t[:, None] - t[None, :]  # [a, b] = t_a - t_b
    de = e[:, None] - e[None, :]
    replaces = dt + l_tr * swing <= 0
    replaces &= de + e_tr * swing <= 0
    replaces &= de + abs(e_tr - p_high * l_tr) * swing - p_high * dt <= 0
    if i == problem.num_layers - 1:
        leak = layer.leakage_w[candidates]
        replaces &= leak[:, None] <= leak[None, :]
    np.fill_diagonal(replaces, False)
    order = np.arange(candidates.size)
    # b is pruned by a if a replaces b, unless b also replaces a and b comes first.
    pruned = (replaces & (~replaces.T | (order[:, None] < order[None, :]))).any(axis=0)
    return candidates[~pruned]


def _pairwise_switches(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, None, :] != b[None, :, :]).sum(axis=2).astype(np.int8)


def _fastest(
    problem: Problem,
    time_: tuple[np.ndarray, ...],
    ham: tuple[np.ndarray, ...],
    wrap: np.ndarray,
) -> tuple[float, tuple[int, ...], list[np.ndarray]]:
    """Shortest period a subset can meet (exactly, wrap-around included), a path achieving it,
    and per layer the least time still needed after each state (a lower bound, slack excluded).

    ``time_``, ``ham`` and ``wrap`` are the subset's layer times, switch matrices and wrap-around
    switch matrix.
    """
    n = problem.num_layers
    l_tr = problem.transition_latency_s
    entry_time = l_tr * problem.sleep_entry_switches
    # Tail: least busy time after layer i (layers i+1.., their switches), no reserve.
    tail = [np.zeros(0)] * n
    tail[n - 1] = np.zeros(time_[n - 1].size)
    for i in range(n - 1, 0, -1):
        tail[i - 1] = (l_tr * ham[i] + (time_[i] + tail[i])[None, :]).min(axis=1)
    if not problem.wraparound:
        # Staying on needs nothing after the last layer, and sleeping needs no less.
        total = time_[0] + tail[0]
        s = int(np.argmin(total))
        path = [s]
        for i in range(1, n):
            s = int(np.argmin(l_tr * ham[i][s] + time_[i] + tail[i]))
            path.append(s)
        return float(total[path[0]]), tuple(path), tail
    # With wrap-around the reserve after the last layer depends on the first state: carry it.
    first = time_[0].size
    # [f, s]: least busy time from first state f to state s of the current layer.
    best = np.where(np.eye(first, dtype=bool), time_[0][None, :], np.inf)
    back = []
    for i in range(1, n):
        cand = best[:, :, None] + l_tr * ham[i][None, :, :] + time_[i][None, None, :]
        back.append(cand.argmin(axis=1))
        best = cand.min(axis=1)
    reserve = np.minimum(l_tr * wrap.T, entry_time)  # [f, s_N]
    total = best + reserve
    f, s = (int(k) for k in np.unravel_index(int(np.argmin(total)), total.shape))
    path = [s]
    for i in range(n - 1, 0, -1):
        s = int(back[i - 1][f, s])
        path.append(s)
    path.reverse()
    return float(total[f, path[-1]]), tuple(path), tail


def _build_subset(
    problem: Problem, levels: tuple[int, ...], p_sleep: float, prune: bool = True
) -> _Subset | None:
    """The states of the rail subset ``levels`` after pruning; None if a layer has none."""
    n = problem.num_layers
    mask = np.zeros(problem.num_levels, dtype=bool)
    mask[list(levels)] = True
    within = [np.flatnonzero(mask[index].all(axis=1)) for index in problem.level_index]
    if any(states.size == 0 for states in within):
        return None
    leak_all = problem.layers[-1].leakage_w[within[-1]]
    # The slack power is the sleep power or the last state's leakage (any state of the subset).
    p_high = max(p_sleep, float(leak_all.max()))
    kept = tuple(
        _undominated(problem, i, within[i], p_high) if prune else within[i] for i in range(n)
    )
    patterns = [problem.level_index[i][kept[i]] for i in range(n)]
    hamming = [np.zeros((0, 0), dtype=np.int8)] + [
        _pairwise_switches(patterns[i - 1], patterns[i]) for i in range(1, n)
    ]
    if problem.wraparound and n > 1:
        wrap = _pairwise_switches(patterns[-1], patterns[0])
    else:
        wrap = np.zeros((kept[-1].size, kept[0].size), dtype=np.int8)
    _, first_pattern = np.unique(patterns[0], axis=0, return_inverse=True)
    times = tuple(problem.layers[i].time_s[kept[i]] for i in range(n))
    period, path, tail = _fastest(problem, times, tuple(hamming), wrap)
    leak = problem.layers[-1].leakage_w[kept[-1]]
    return _Subset(
        levels=levels,
        states_before=sum(states.size for states in within),
        states=kept,
        time=times,
        energy=tuple(problem.layers[i].energy_j[kept[i]] for i in range(n)),
        leak_last=leak,
        hamming=tuple(hamming),
        wrap=wrap,
        first_pattern=first_pattern.reshape(-1).astype(np.intp),
        min_period_s=period,
        min_period_states=path,
        tail_time=tuple(tail),
        p_low=min(p_sleep, float(leak.min())),
        p_high=max(p_sleep, float(leak.max())),
    )


@functools.lru_cache(maxsize=8)
def _prepare(problem: Problem, rails: int, prune: bool = True) -> _Prepared:
    """Rail subsets with their pruned states and fastest schedules (independent of the period).

    ``prune=False`` keeps dominated states (for measuring what the pruning buys)."""
    size = min(rails, problem.num_levels)
    subsets = []
    for levels in itertools.combinations(range(problem.num_levels), size):
        built = _build_subset(problem, levels, problem.sleep_power_w, prune)
        if built is not None:
            subsets.append(built)
    return _Prepared(
        subsets=tuple(subsets),
        states_total=sum(layer.num_states for layer in problem.layers),
        states_kept=sum(sum(s.size for s in sub.states) for sub in subsets),
        states_in_subsets=sum(sub.states_before for sub in subsets),
    )


def _check_args(problem: Problem, rails: int) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem, not {type(problem).__name__}")
    if isinstance(rails, bool) or not isinstance(rails, int) or rails < 1:
        raise ValueError(f"rails must be a positive integer, not {rails!r}")


def min_period(problem: Problem, rails: int) -> tuple[float, tuple[int, ...] | None]:
    """The shortest period any schedule with at most ``rails`` voltages can meet.

    Layer times, switch latencies and the time needed after the last layer (wrap-around switches
    when staying on, or sleep entry) are all counted.

    Returns
    -------
    period_s : float
        ``inf`` if no schedule fits the rail limit at all.
    states : tuple of int or None
        A schedule achieving it (original state indices).
    """
    _check_args(problem, rails)
    prepared = _prepare(problem, rails)
    if not prepared.subsets:
        return math.inf, None
    best = min(prepared.subsets, key=lambda sub: sub.min_period_s)
    states = tuple(int(best.states[i][s]) for i, s in enumerate(best.min_period_states))
    return best.min_period_s, states


# --- Lagrangian bounds, batched over subsets ----------------------------------------------------


@dataclass(slots=True)
class _Batch:
    """Subsets padded to common per-layer sizes, for one vectorised pass over all of them."""

    members: list[int]
    energy: list[np.ndarray]  # (K, S_i), +inf in padding
    time: list[np.ndarray]  # (K, S_i), 0 in padding
    hamming: list[np.ndarray]  # (K, S_{i-1}, S_i)
    wrap: np.ndarray  # (K, S_N, S_1)
    wrap_valid: np.ndarray  # (K, S_N, S_1) both ends real states
    leak: np.ndarray  # (K, S_N)


def _make_batch(problem: Problem, subsets: list[_Subset], members: list[int]) -> _Batch:
    n = problem.num_layers
    k = len(members)
    sizes = [max(subsets[m].states[i].size for m in members) for i in range(n)]
    energy = [np.full((k, sizes[i]), np.inf) for i in range(n)]
    time_ = [np.zeros((k, sizes[i])) for i in range(n)]
    hamming = [np.zeros((k, 0, 0), dtype=np.int8)] + [
        np.zeros((k, sizes[i - 1], sizes[i]), dtype=np.int8) for i in range(1, n)
    ]
    wrap = np.zeros((k, sizes[-1], sizes[0]), dtype=np.int8)
    wrap_valid = np.zeros((k, sizes[-1], sizes[0]), dtype=bool)
    leak = np.full((k, sizes[-1]), np.inf)
    for row, m in enumerate(members):
        sub = subsets[m]
        for i in range(n):
            size = sub.states[i].size
            energy[i][row, :size] = sub.energy[i]
            time_[i][row, :size] = sub.time[i]
            if i:
                hamming[i][row, : sub.states[i - 1].size, :size] = sub.hamming[i]
        wrap[row, : sub.states[-1].size, : sub.states[0].size] = sub.wrap
        wrap_valid[row, : sub.states[-1].size, : sub.states[0].size] = True
        leak[row, : sub.states[-1].size] = sub.leak_last
    return _Batch(members, energy, time_, hamming, wrap, wrap_valid, leak)


@dataclass(slots=True)
class _Pass:
    """One backward Lagrangian pass at multipliers theta (one per batch row)."""

    bound: np.ndarray  # (K,) L(theta)
    a: np.ndarray  # (K,) energy-like cost of the minimising (path, slack option)
    b: np.ndarray  # (K,) time it needs (busy + reserve)
    exact: np.ndarray  # (K,) true energy of the minimising path if it meets T, else inf
    paths: np.ndarray  # (N, K) subset-local states
    tails: list[np.ndarray] | None  # h[i] (K, S_i) if kept


def _lagrangian_pass(
    problem: Problem, batch: _Batch, theta: np.ndarray, period_s: float, keep_tails: bool = False
) -> _Pass:
    """min over paths and slack options of a + theta (b - T), with the wrap-around relaxed to its
    cheapest first state; also the true energy of the minimising path."""
    n = problem.num_layers
    k = theta.shape[0]
    e_tr = problem.transition_energy_j
    l_tr = problem.transition_latency_s
    entry = problem.sleep_entry_switches
    rows = np.arange(k)
    coef = e_tr + theta * l_tr  # (K,) Lagrangian cost of one switch
    # Terminal: the cheaper of staying on (wrap switches relaxed) and sleeping.
    if problem.wraparound:
        wrap_cost = np.where(batch.wrap_valid, coef[:, None, None] * batch.wrap, np.inf)
        stay = wrap_cost.min(axis=2)  # (K, S_N)
        stay_wrap = np.take_along_axis(batch.wrap, wrap_cost.argmin(axis=2)[:, :, None], 2)[..., 0]
    else:
        stay = np.zeros((k, batch.energy[-1].shape[1]))
        stay_wrap = np.zeros(stay.shape, dtype=np.int8)
    sleep = (coef * entry)[:, None]
    sleeps = sleep < stay
    tail = np.minimum(stay, sleep)
    tails = [tail]
    choices = []
    for i in range(n - 1, 0, -1):
        node = batch.energy[i] + theta[:, None] * batch.time[i] + tail  # (K, S_i)
        cand = coef[:, None, None] * batch.hamming[i] + node[:, None, :]
        choice = cand.argmin(axis=2)
        choices.append(choice)
        tail = np.take_along_axis(cand, choice[:, :, None], 2)[..., 0]
        if keep_tails:
            tails.append(tail)
    choices.reverse()
    tails.reverse()
    root = batch.energy[0] + theta[:, None] * batch.time[0] + tail
    s = root.argmin(axis=1)
    bound = root[rows, s] - theta * period_s
    # Walk the minimising path: its cost a, its time b (relaxed terminal) and its true energy.
    paths = np.empty((n, k), dtype=np.intp)
    paths[0] = s
    energy = batch.energy[0][rows, s].copy()
    busy = batch.time[0][rows, s].copy()
    for i in range(1, n):
        nxt = choices[i - 1][rows, s]
        switches = batch.hamming[i][rows, s, nxt]
        energy += batch.energy[i][rows, nxt] + e_tr * switches
        busy += batch.time[i][rows, nxt] + l_tr * switches
        s = nxt
        paths[i] = s
    last_sleeps = sleeps[rows, s]
    relaxed_wrap = stay_wrap[rows, s]
    a = energy + np.where(last_sleeps, e_tr * entry, e_tr * relaxed_wrap)
    b = busy + np.where(last_sleeps, l_tr * entry, l_tr * relaxed_wrap)
    wrap = batch.wrap[rows, paths[-1], paths[0]] if problem.wraparound else np.zeros(k)
    exact = _final_energy(problem, energy, busy, batch.leak[rows, paths[-1]], wrap, period_s)
    return _Pass(bound, a, b, exact, paths, tails if keep_tails else None)


def _final_energy(
    problem: Problem,
    energy: np.ndarray,
    busy: np.ndarray,
    leak: np.ndarray,
    wrap: np.ndarray,
    period_s: float,
) -> np.ndarray:
    """Energy of whole schedules from their layer-and-switch ``energy`` and ``busy`` time, the
    last state's ``leak`` and the ``wrap``-around switches, with the cheaper slack option that
    fits the period; ``inf`` where none fits."""
    e_tr = problem.transition_energy_j
    l_tr = problem.transition_latency_s
    entry = problem.sleep_entry_switches
    stay_idle = period_s - busy - l_tr * wrap
    stay = np.where(stay_idle >= 0, energy + e_tr * wrap + leak * stay_idle, np.inf)
    sleep_idle = period_s - busy - l_tr * entry
    sleep = np.where(
        sleep_idle >= 0, energy + e_tr * entry + problem.sleep_power_w * sleep_idle, np.inf
    )
    return np.minimum(stay, sleep)


def _lagrangian_bounds(
    problem: Problem, subsets: list[_Subset], members: list[int], period_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """LARAC on every member subset at once.

    Returns per member: best bound, its theta, best true energy of the paths met, that path
    (N, K), and the number of passes made.
    """
    batch = _make_batch(problem, subsets, members)
    k = len(members)
    p_low = np.array([subsets[m].p_low for m in members])
    theta = -p_low
    first = _lagrangian_pass(problem, batch, theta, period_s)
    passes = 1
    best_bound = first.bound.copy()
    best_theta = theta.copy()
    best_exact = first.exact.copy()
    best_paths = first.paths.copy()
    done = first.b <= period_s  # the unconstrained optimum already meets the deadline
    lo_a, lo_b = first.a.copy(), first.b.copy()
    # The fastest path of each subset meets the deadline (members are feasible subsets).
    hi_a = np.empty(k)
    hi_b = np.empty(k)
    for row, m in enumerate(members):
        sub = subsets[m]
        path = sub.min_period_states
        energy, busy, wrap = _walk(problem, sub, path)
        # LARAC's upper line uses its least-time slack option.
        reserve = min(wrap, problem.sleep_entry_switches)
        hi_a[row] = energy + problem.transition_energy_j * reserve
        hi_b[row] = busy + problem.transition_latency_s * reserve
        exact = float(
            _final_energy(
                problem,
                np.array(energy),
                np.array(busy),
                sub.leak_last[path[-1]],
                np.array(wrap),
                period_s,
            )
        )
        if exact < best_exact[row]:
            best_exact[row] = exact
            best_paths[:, row] = path
    for _ in range(_LARAC_MAX_STEPS):
        active = np.flatnonzero(~done)
        if active.size == 0:
            break
        gap = lo_b[active] - hi_b[active]
        theta_new = np.where(gap > 0, (hi_a[active] - lo_a[active]) / np.where(gap > 0, gap, 1), 0)
        theta_new = np.maximum(theta_new, -p_low[active])
        sub_batch = _select(batch, active)
        step = _lagrangian_pass(problem, sub_batch, theta_new, period_s)
        passes += 1
        line = lo_a[active] + theta_new * (lo_b[active] - period_s)
        better = step.bound > best_bound[active]
        best_bound[active[better]] = step.bound[better]
        best_theta[active[better]] = theta_new[better]
        improved = step.exact < best_exact[active]
        best_exact[active[improved]] = step.exact[improved]
        best_paths[:, active[improved]] = step.paths[:, improved]
        finished = step.bound >= line - _LARAC_TOLERANCE * np.abs(line)
        done[active[finished | (gap <= 0)]] = True
        moving = ~finished & (gap > 0)
        to_lo = moving & (step.b > period_s)
        to_hi = moving & (step.b <= period_s)
        lo_a[active[to_lo]] = step.a[to_lo]
        lo_b[active[to_lo]] = step.b[to_lo]
        hi_a[active[to_hi]] = step.a[to_hi]
        hi_b[active[to_hi]] = step.b[to_hi]
    return best_bound, best_theta, best_exact, best_paths, passes


def _select(batch: _Batch, rows: np.ndarray) -> _Batch:
    return _Batch(
        [batch.members[r] for r in rows],
        [x[rows] for x in batch.energy],
        [x[rows] for x in batch.time],
        [x[rows] for x in batch.hamming],
        batch.wrap[rows],
        batch.wrap_valid[rows],
        batch.leak[rows],
    )


def _walk(problem: Problem, sub: _Subset, path: tuple[int, ...]) -> tuple[float, float, int]:
    """Layer-and-switch energy, busy time and wrap-around switches of a subset-local path."""
    e_tr = problem.transition_energy_j
    l_tr = problem.transition_latency_s
    energy = float(sub.energy[0][path[0]])
    busy = float(sub.time[0][path[0]])
    for i in range(1, len(path)):
        switches = int(sub.hamming[i][path[i - 1], path[i]])
        energy += float(sub.energy[i][path[i]]) + e_tr * switches
        busy += float(sub.time[i][path[i]]) + l_tr * switches
    wrap = int(sub.wrap[path[-1], path[0]]) if problem.wraparound else 0
    return energy, busy, wrap


# --- The label search inside one subset ---------------------------------------------------------


class _LimitReached(Exception):
    pass


def _completion_bounds(
    problem: Problem, sub: _Subset, thetas: np.ndarray, period_s: float
) -> list[np.ndarray]:
    """h[i][k, s]: Lagrangian lower bound, at multiplier ``thetas[k]``, of what follows layer i
    in state s (see :func:`_lagrangian_pass`)."""
    batch = _make_batch(problem, [sub] * thetas.size, [0] * thetas.size)
    tails = _lagrangian_pass(problem, batch, thetas, period_s, keep_tails=True).tails
    assert tails is not None
    return [tail[:, : sub.states[i].size] for i, tail in enumerate(tails)]


def _search_subset(
    problem: Problem,
    sub: _Subset,
    thetas: np.ndarray,
    h: list[np.ndarray],
    period_s: float,
    incumbent: float,
    max_labels: int,
    deadline: float,
    counters: dict[str, int],
) -> tuple[float, tuple[int, ...] | None]:
    """Best schedule of the subset strictly cheaper than ``incumbent`` (or ``inf``, None).

    Every multiplier ``thetas[k]`` gives completion bounds ``h[i][k]``; a label is dropped when
    the best of them is not below the incumbent.

    Raises ``_LimitReached`` if the label or time budget runs out.
    """
    n = problem.num_layers
    e_tr = problem.transition_energy_j
    l_tr = problem.transition_latency_s
    slope = sub.p_high  # dominance: a label with less time must also beat the extra slack energy
    wrap_groups = int(sub.first_pattern.max()) + 1 if problem.wraparound else 1

    def lower_bound(t: np.ndarray, e: np.ndarray, s: np.ndarray, i: int) -> np.ndarray:
        bound = thetas[0] * (t - period_s) + h[i][0, s]
        for k in range(1, thetas.size):
            np.maximum(bound, thetas[k] * (t - period_s) + h[i][k, s], out=bound)
        bound += e
        return np.where(t + sub.tail_time[i][s] <= period_s, bound, np.inf)

    def pareto(group: np.ndarray, t: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Indices of the labels no other label of the same group dominates."""
        if t.size <= 1:
            return np.arange(t.size)
        reduced = e - slope * t
        _, rank = np.unique(reduced, return_inverse=True)
        order = np.lexsort((reduced, t, group))
        key = rank[order].astype(np.int64) - group[order].astype(np.int64) * (t.size + 1)
        running = np.minimum.accumulate(key)
        keep = np.empty(t.size, dtype=bool)
        keep[0] = True
        keep[1:] = key[1:] < running[:-1]
        return order[keep]

    size0 = sub.states[0].size
    state = np.arange(size0)
    t = sub.time[0].copy()
    e = sub.energy[0].copy()
    first = sub.first_pattern if problem.wraparound else np.zeros(size0, dtype=np.intp)
    origin = np.arange(size0)  # first-layer state of each label (for the wrap-around edge)
    ok = np.flatnonzero(lower_bound(t, e, state, 0) < incumbent)
    state, t, e, first, origin = state[ok], t[ok], e[ok], first[ok], origin[ok]
    counters["labels_created"] += size0
    history: list[tuple[np.ndarray, np.ndarray]] = [(state, np.full(state.size, -1))]
    for i in range(1, n):
        if state.size == 0:
            return math.inf, None
        size = sub.states[i].size
        switches = sub.hamming[i][state]  # (labels, S_i)
        new_t = (t[:, None] + l_tr * switches + sub.time[i][None, :]).ravel()
        new_e = (e[:, None] + e_tr * switches + sub.energy[i][None, :]).ravel()
        new_state = np.tile(np.arange(size), state.size)
        counters["labels_created"] += new_t.size
        if counters["labels_created"] > max_labels:
            raise _LimitReached("labels")
        if time.perf_counter() > deadline:
            raise _LimitReached("time")
        bound = lower_bound(new_t, new_e, new_state, i)
        ok = np.flatnonzero(bound < incumbent)
        parent = ok // size
        new_state, new_t, new_e = new_state[ok], new_t[ok], new_e[ok]
        group = new_state * wrap_groups + first[parent]
        keep = pareto(group, new_t, new_e)
        parent = parent[keep]
        state, t, e = new_state[keep], new_t[keep], new_e[keep]
        first, origin = first[parent], origin[parent]
        history.append((state, parent))
        counters["labels_kept"] += state.size
    if state.size == 0:
        return math.inf, None
    # Exact slack for every surviving label.
    wrap = sub.wrap[state, origin] if problem.wraparound else np.zeros(state.size)
    final = _final_energy(problem, e, t, sub.leak_last[state], wrap, period_s)
    best = int(np.argmin(final))
    if not final[best] < incumbent:
        return math.inf, None
    path = []
    index = best
    for i in range(n - 1, -1, -1):
        states_i, parents_i = history[i]
        path.append(int(states_i[index]))
        index = int(parents_i[index])
    path.reverse()
    return float(final[best]), tuple(path)


# --- The driver ---------------------------------------------------------------------------------


def solve_dp(
    problem: Problem,
    period_s: float,
    rails: int,
    *,
    time_limit_s: float | None = None,
    max_labels: int = 20_000_000,
    prune: bool = True,
) -> DPResult:
    """Energy-optimal schedule for one period and rail limit, with a proof.

    Parameters
    ----------
    problem : Problem
        The instance.
    period_s : float
        Period T = 1 / rate.
    rails : int
        At most this many distinct voltages over all domains and layers.
    time_limit_s : float, optional
        Stop searching after this long; the answer then carries a lower bound and a gap.
    max_labels : int
        Stop searching after creating this many labels (same consequence).
    prune : bool
        Dominance pruning of states (default); False keeps every state, same answer, slower.

    Returns
    -------
    DPResult
        ``states is None`` if no schedule meets the period under the rail limit (then
        ``lower_bound_j`` is ``inf`` and ``proven`` is True).
    """
    _check_args(problem, rails)
    if not period_s > 0 or not math.isfinite(period_s):
        raise ValueError(f"period must be a positive finite number of seconds, not {period_s!r}")
    # Decide feasibility with half of evaluate()'s tolerance: a schedule whose time sums to the
    # period exactly (in another summation order) is found, and whatever is found passes evaluate().
    period_s *= 1.0 + DEADLINE_TOLERANCE / 2
    started = time.perf_counter()
    deadline = math.inf if time_limit_s is None else started + time_limit_s
    prepared = _prepare(problem, rails, prune)
    subsets = list(prepared.subsets)
    feasible = [m for m, sub in enumerate(subsets) if sub.min_period_s <= period_s]
    counters = {"labels_created": 0, "labels_kept": 0}
    stats: dict[str, Any] = {
        "states_total": prepared.states_total,
        "rail_subsets": len(subsets),
        "rail_subsets_feasible": len(feasible),
        "states_per_subset": prepared.states_in_subsets / max(1, len(subsets)),
        "states_per_subset_after_pruning": prepared.states_kept / max(1, len(subsets)),
    }
    if not feasible:
        stats.update(counters, subsets_searched=0, subsets_skipped_by_bound=0, lagrangian_passes=0)
        return DPResult(None, math.inf, math.inf, True, stats)

    bounds = np.empty(len(feasible))
    thetas = np.empty(len(feasible))
    energies = np.empty(len(feasible))
    paths = np.empty((problem.num_layers, len(feasible)), dtype=np.intp)
    passes = 0
    widest = max(
        max(sub.states[i - 1].size * sub.states[i].size for i in range(1, problem.num_layers))
        if problem.num_layers > 1
        else 1
        for sub in subsets
    )
    chunk = max(1, _BATCH_ELEMENTS // widest)
    for start in range(0, len(feasible), chunk):
        members = feasible[start : start + chunk]
        part = slice(start, start + len(members))
        bounds[part], thetas[part], energies[part], paths[:, part], count = _lagrangian_bounds(
            problem, subsets, members, period_s
        )
        passes += count

    best = int(np.argmin(energies))
    incumbent = float(energies[best])
    sub = subsets[feasible[best]]
    best_states = tuple(int(sub.states[i][paths[i, best]]) for i in range(problem.num_layers))

    searched = skipped = rounds = 0
    open_bounds: list[float] = []
    stopped = None
    for row in np.argsort(bounds, kind="stable"):
        if bounds[row] >= incumbent:
            skipped += 1
            continue
        if stopped is not None or time.perf_counter() > deadline:
            stopped = stopped or "time"
            open_bounds.append(float(bounds[row]))
            continue
        sub = subsets[feasible[row]]
        theta = float(thetas[row])
        label_thetas = np.array([theta, theta / 2, theta * 2]) if theta > 0 else np.array([theta])
        h = _completion_bounds(problem, sub, label_thetas, period_s)
        # Search under a guessed cap just above the subset's bound, raised until the cap is the
        # incumbent: a cheap search proves the optimum when the guess was right.
        proven_floor = float(bounds[row])
        gap = _FIRST_GUESS
        while True:
            cap = min(incumbent, float(bounds[row]) + abs(float(bounds[row])) * gap)
            rounds += 1
            try:
                energy, local = _search_subset(
                    problem, sub, label_thetas, h, period_s, cap, max_labels, deadline, counters
                )
            except _LimitReached as limit:
                stopped = str(limit)
                open_bounds.append(proven_floor)
                break
            if local is not None:
                incumbent = energy
                best_states = tuple(int(sub.states[i][s]) for i, s in enumerate(local))
                searched += 1
                break
            if cap >= incumbent:
                searched += 1
                break
            proven_floor = cap  # nothing in this subset is cheaper than cap
            gap *= _GUESS_GROWTH
    lower = min([incumbent, *open_bounds])
    stats.update(
        counters,
        subsets_searched=searched,
        subsets_skipped_by_bound=skipped,
        subsets_left_open=len(open_bounds),
        search_rounds=rounds,
        lagrangian_passes=passes,
        stopped_by=stopped,
    )
    return DPResult(best_states, incumbent, lower, not open_bounds, stats)
