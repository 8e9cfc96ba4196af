"""The exact intermittent scheduler: a DP over layer boundaries, Pareto labels inside a power cycle.

Method (docs/intermittent.md has the argument for exactness):

1. f(k) = the best way to have committed boundary k with the capacitor back at V_on. For each
   power-cycle start b (in increasing order, so f(b) is final), the cycle is extended layer by
   layer. Its partial schedules are labels (energy E, time t, last state); a label is dropped if
   it does not fit one charge, or if another label is no worse in E and in c = t + E / P, P the
   largest net charging power (the same state: exactly; another state: by a margin of D voltage
   switches, D the number of domains). Any label kept at a boundary may end the cycle there:
   f(e) = min over b and labels of recharge_end(f(b) + t, E), or the energy sum. Recharge is
   non-decreasing in the start time and in E (the net charging power is never negative), so the
   earliest arrival at a boundary is the best one and the DP is exact.
2. A capped search (a few labels per step) gives a schedule; the exact search then drops labels
   whose optimistic completion (each later layer at its least energy and least c) is worse.
3. The rail limit (at most R distinct voltages over the schedule) is first relaxed; if the optimum
   uses more, the subsets of R grid levels are searched in the order of a lower bound (the same DP
   over virtual states no real state beats) until the bound reaches the best schedule found.
4. When no schedule fits, the smallest charge that would make one fit is the bottleneck of the
   same DP with the budget removed: min over partitions of the largest cycle's least energy.
"""

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .intermittent import Checkpointing, IntermittentProblem, Objective
from .intermittent_evaluate import (
    BUDGET_TOLERANCE,
    IntermittentEvaluation,
    evaluate_intermittent,
)
from .solve import Status
from .supply import Harvest, HarvestError, NetCharging

__all__ = [
    "IntermittentInfeasibleError",
    "IntermittentResult",
    "min_charge",
    "solve_intermittent",
]

#: Labels per step of the capped search that gives the exact one its first upper bound.
_HEURISTIC_LABELS = 16
#: Virtual states per layer in the finer bound on a rail subset.
_BOUND_POINTS = 8


class IntermittentInfeasibleError(ValueError):
    """No schedule of the checkpointing policy fits one charge of the capacitor.

    Attributes
    ----------
    checkpointing : Checkpointing
        The policy that failed.
    needed_j : float
        The smallest charge with which a schedule fits (``inf`` if none at any charge).
    capacitance_f : float
        The capacitance whose one charge, in the chip's voltage window, holds ``needed_j``.
    first_layer, last_layer : int
        The power cycle that needs it (the bottleneck): layers ``first..last``.
    """

    def __init__(
        self,
        problem: IntermittentProblem,
        checkpointing: Checkpointing,
        needed_j: float,
        first_layer: int,
        last_layer: int,
    ) -> None:
        self.checkpointing = checkpointing
        self.needed_j = needed_j
        self.capacitance_f = problem.capacitor.capacitance_for(needed_j)
        self.first_layer = first_layer
        self.last_layer = last_layer
        cap = problem.capacitor
        names = problem.layer_names
        if first_layer == last_layer:
            cycle = f"layer {names[first_layer]} alone"
        elif first_layer == 0 and last_layer == len(names) - 1:
            cycle = "the whole inference"
        else:
            cycle = f"the power cycle of layers {names[first_layer]}..{names[last_layer]}"
        needed = f"{needed_j * 1e6:.6g} uJ"
        if checkpointing is Checkpointing.OPTIMAL:
            what = "no schedule"
            why = (
                f"whichever way the network is split, a power cycle needs at least {needed} "
                f"(boot, restore and checkpoint included; at best {cycle})"
            )
        else:
            what = {
                Checkpointing.EVERY_LAYER: "no schedule with a checkpoint after every layer",
                Checkpointing.NONE: "no schedule without checkpoints",
            }[checkpointing]
            why = (
                f"{cycle} needs at least {needed} in one power cycle (boot, restore and "
                "checkpoint included)"
            )
        super().__init__(
            f"{what} fits one charge of the capacitor ({cap.capacitance_uf:g} uF from "
            f"{cap.on_v:g} V to {cap.off_v:g} V: {problem.charge_j * 1e6:.6g} uJ): {why}; a "
            f"capacitance of at least {self.capacitance_f * 1e6:.6g} uF "
            "(intermittent.capacitor.capacitance_uf) would make it feasible"
        )


@dataclass(frozen=True, slots=True)
class IntermittentResult:
    """An intermittent schedule and its evaluation.

    Attributes
    ----------
    objective : Objective
        What was minimised.
    checkpointing : Checkpointing
        The solver's choice, or a baseline's fixed rule.
    status : Status
        ``PROVEN_OPTIMAL``: the best schedule under the checkpointing rule.
    states : tuple of int
        One state index per layer.
    checkpoint_after : tuple of bool
        For layers 0..N-2: a checkpoint (and the end of a power cycle) after it.
    evaluation : IntermittentEvaluation
        The independent check: cycles, times, energy split.
    solve_time_s : float
        Wall time.
    stats : dict
        Labels, states after pruning, rail subsets.
    """

    objective: Objective
    checkpointing: Checkpointing
    status: Status
    states: tuple[int, ...]
    checkpoint_after: tuple[bool, ...]
    evaluation: IntermittentEvaluation
    solve_time_s: float
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        """The objective's value, as evaluated."""
        return self.evaluation.objective(self.objective)


# --- The problem in the solver's arithmetic -------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Model:
    """Per-layer costs with the capacitor's leakage folded into every energy."""

    n: int
    levels: np.ndarray  # (S, D) level index of each domain's voltage
    energy: tuple[np.ndarray, ...]  # (S,) per layer
    time: tuple[np.ndarray, ...]
    start_e: np.ndarray  # (N, S) boot + wake + restore of a cycle starting at layer k in state s
    start_t: np.ndarray  # (N,)
    end_e: np.ndarray  # (N + 1, S) the checkpoint (N: output commit) ending a cycle at boundary
    # k whose last layer runs in state s
    end_t: np.ndarray  # (N + 1,)
    switch_e: float  # per domain switch
    switch_t: float
    charge_j: float
    charging: NetCharging
    start_s: float

    @classmethod
    def of(cls, problem: IntermittentProblem, charging: NetCharging, start_s: float) -> "_Model":
        leak = problem.leakage_w
        restore_t = np.array(problem.restore_time_s[:-1])
        start_t = problem.boot_time_s + restore_t
        start_e = (
            problem.boot_energy_j
            + np.array(problem.wake_energy_j)[:, None]
            + problem.restore_energy_j[:-1]
            + (leak * start_t)[:, None]
        )
        end_t = np.array(problem.checkpoint_time_s)
        return cls(
            n=problem.num_layers,
            levels=problem.levels(),
            energy=tuple(
                e + leak * t for e, t in zip(problem.energy_j, problem.time_s, strict=True)
            ),
            time=problem.time_s,
            start_e=start_e,
            start_t=start_t,
            end_e=problem.checkpoint_energy_j + (leak * end_t)[:, None],
            end_t=end_t,
            switch_e=problem.transition_energy_j + leak * problem.transition_latency_s,
            switch_t=problem.transition_latency_s,
            # The evaluator's tolerance, so that both agree on what fits.
            charge_j=problem.charge_j * (1 + BUDGET_TOLERANCE),
            charging=charging,
            start_s=start_s,
        )

    @property
    def domains(self) -> int:
        return int(self.levels.shape[1])

    def c_of(self, energy: np.ndarray | float, time_s: np.ndarray | float) -> Any:
        """The pruning metric t + E / P (P: the largest net charging power)."""
        return time_s + energy / self.charging.max_net_w


@dataclass(frozen=True, slots=True, eq=False)
class _Layers:
    """The states a search may use, per layer, after pruning."""

    states: tuple[np.ndarray, ...]  # global state ids
    energy: tuple[np.ndarray, ...]
    time: tuple[np.ndarray, ...]
    switches: tuple[np.ndarray, ...]  # [i]: (n_{i-1}, n_i) domains that change (i = 0: empty)
    start: tuple[np.ndarray, ...]  # [i]: energy of starting a cycle at layer i, per state
    end: tuple[np.ndarray, ...]  # [i]: energy of ending a cycle after layer i, per state


def _dominated_with_margin(
    energy: np.ndarray,
    metric: np.ndarray,
    margin_e: float,
    margin_c: float,
    energy_hi: np.ndarray | None = None,
    metric_hi: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of entries for which another one is better by at least the margins in both.

    With ``energy_hi``/``metric_hi`` (each entry at its worst, never below ``energy``/``metric``)
    entry A beats entry B when A's worst is better than B's best by the margins."""
    if energy_hi is None or metric_hi is None:
        energy_hi, metric_hi = energy, metric
        if margin_e == 0 and margin_c == 0:
            order = np.lexsort((metric, energy))
            best = np.minimum.accumulate(metric[order])
            keep_sorted = metric[order] < np.concatenate([[np.inf], best[:-1]])
            out = np.ones(len(energy), dtype=bool)
            out[order[keep_sorted]] = False
            return out
    elif margin_e == 0 and margin_c == 0:
        # Pairwise; two entries that beat each other are equal: the lower index stays.
        beats = (energy_hi[:, None] <= energy[None, :]) & (metric_hi[:, None] <= metric[None, :])
        np.fill_diagonal(beats, False)
        index = np.arange(len(energy))
        beats &= ~(beats & beats.T & (index[:, None] > index[None, :]))
        return np.asarray(beats.any(axis=0))
    order = np.argsort(energy_hi, kind="stable")
    prefix = np.minimum.accumulate(metric_hi[order])
    reach = np.searchsorted(energy_hi[order], energy - margin_e, side="right")
    better = prefix[np.maximum(reach - 1, 0)]
    return (reach > 0) & (better <= metric - margin_c)


def _prepare(
    model: _Model, allowed: np.ndarray, metric: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> _Layers | None:
    """Allowed states of every layer, without those another state replaces in every schedule
    (better by two switches' margin: one switch in, one out, per domain; and at its worst by as
    much as the state's own cycle start and end may cost more than the cheapest state's, against
    the other at its best). None if a layer has no allowed state."""
    ids = np.flatnonzero(allowed)
    if not len(ids):
        return None
    d = model.domains
    states, energy, times, starts, ends = [], [], [], [], []
    for i in range(model.n):
        e, t = model.energy[i][ids], model.time[i][ids]
        start, end = model.start_e[i][ids], model.end_e[i + 1][ids]
        extra = (start - start.min()) + (end - end.min())
        margin_e = 2 * d * model.switch_e
        margin_c = float(metric(np.asarray(margin_e), np.asarray(2 * d * model.switch_t)))
        drop = _dominated_with_margin(
            e, metric(e, t), margin_e, margin_c, e + extra, metric(e + extra, t)
        )
        states.append(ids[~drop])
        energy.append(e[~drop])
        times.append(t[~drop])
        starts.append(start[~drop])
        ends.append(end[~drop])
    switches = [np.zeros((0, len(states[0])), dtype=np.int64)]
    for i in range(1, model.n):
        a, b = model.levels[states[i - 1]], model.levels[states[i]]
        switches.append(np.sum(a[:, None, :] != b[None, :, :], axis=2))
    return _Layers(
        tuple(states), tuple(energy), tuple(times), tuple(switches), tuple(starts), tuple(ends)
    )


def _ends(checkpointing: Checkpointing, n: int, start: int) -> tuple[bool, Callable[[int], bool]]:
    """Whether a cycle starting at ``start`` may exist, and at which boundaries it may end."""
    if checkpointing is Checkpointing.EVERY_LAYER:
        return True, lambda end: end == start + 1
    if checkpointing is Checkpointing.NONE:
        return start == 0, lambda end: end == n
    return True, lambda end: True


@dataclass(frozen=True, slots=True)
class _Found:
    key: tuple[float, float]  # (objective, the other measure)
    states: tuple[int, ...]
    checkpoint_after: tuple[bool, ...]


def _prune_labels(
    model: _Model, energy: np.ndarray, metric: np.ndarray, state: np.ndarray
) -> np.ndarray:
    """Indices of the labels to keep: Pareto per state, then across states by a D-switch margin."""
    order = np.lexsort((metric, energy, state))
    # Ranks of the metric (ties ranked apart: a tie then keeps both labels, never loses one).
    rank = np.empty(len(metric), dtype=np.int64)
    rank[np.argsort(metric, kind="stable")] = np.arange(len(metric))
    grouped = rank[order] - state[order] * (len(metric) + 1)
    best = np.minimum.accumulate(grouped)
    keep = order[grouped < np.concatenate([[np.iinfo(np.int64).max], best[:-1]])]
    # Across states: the next switch from one state costs at most D switches more than from
    # another (with free switches, plain Pareto: the state then does not matter).
    margin_e = model.domains * model.switch_e
    margin_c = model.domains * model.switch_t + margin_e / model.charging.max_net_w
    drop = _dominated_with_margin(energy[keep], metric[keep], margin_e, margin_c)
    return keep[~drop]


def _search(
    model: _Model,
    layers: _Layers,
    objective: Objective,
    checkpointing: Checkpointing,
    stats: dict[str, Any],
    *,
    to_go: np.ndarray | None = None,
    upper: float = math.inf,
    label_cap: int | None = None,
) -> _Found | None:
    """The best schedule using ``layers``' states (None: none fits, or none beats ``upper``).

    ``to_go`` (per layer: a lower bound on the objective still to come after it, from
    :func:`_cost_to_go`) and ``upper`` (the objective of a known schedule) drop labels that cannot
    beat it; labels whose bound equals it are kept, so a search with the known schedule's own
    bound still finds a schedule as good. ``label_cap`` (a heuristic, for that known schedule):
    keep at most this many labels per step, the least c ones and every state's least-energy one.
    """
    n, cap = model.n, model.charge_j
    inf = math.inf
    arrive_time = [inf] * (n + 1)
    arrive_energy = [inf] * (n + 1)
    key = [(inf, inf)] * (n + 1)
    back: list[tuple[int, tuple[int, ...]] | None] = [None] * (n + 1)
    arrive_time[0], arrive_energy[0] = model.start_s, 0.0
    reached = [False] * (n + 1)
    reached[0] = True
    latency = objective is Objective.LATENCY
    slack = upper + 1e-12 * abs(upper) if math.isfinite(upper) else inf
    for b in range(n):
        may_start, may_end = _ends(checkpointing, n, b)
        if not (reached[b] and may_start):
            continue
        base = arrive_time[b] if latency else arrive_energy[b]
        le = layers.start[b] + layers.energy[b]
        lt = model.start_t[b] + layers.time[b]
        ls = np.arange(len(le))
        lp = np.full(len(le), -1)
        fits = le <= cap
        le, lt, ls, lp = le[fits], lt[fits], ls[fits], lp[fits]
        history: list[tuple[np.ndarray, np.ndarray]] = []
        for j in range(b, n):
            if not len(le):
                break
            # Ending the cycle here is tried on every label before pruning: the checkpoint's
            # cost depends on the label's state, which the pruning across states ignores.
            end = j + 1
            ended = -1
            metric = model.c_of(le, lt)
            within = np.ones(len(le), dtype=bool)
            if to_go is not None:  # the labels the bound keeps (below) may end here
                within = base + (metric if latency else le) + to_go[j] <= slack
            if may_end(end):
                ee = le + layers.end[j][ls]
                te = lt + model.end_t[end]
                ok = np.flatnonzero((ee <= cap) & within)
                if len(ok):
                    done = model.charging.recharge_end(arrive_time[b] + te[ok], ee[ok])
                    spent = arrive_energy[b] + ee[ok]
                    first, second = (done, spent) if latency else (spent, done)
                    pick = int(np.lexsort((second, first))[0])
                    cand = (float(first[pick]), float(second[pick]))
                    if not math.isinf(cand[0]) and cand < key[end]:
                        key[end] = cand
                        arrive_time[end] = float(done[pick])
                        arrive_energy[end] = float(spent[pick])
                        reached[end] = True
                        ended = int(ok[pick])
            kept = _prune_labels(model, le, metric, ls)
            kept = kept[within[kept]]
            if label_cap is not None and len(kept) > label_cap:
                kept = _cap_labels(le, metric, ls, kept, label_cap)
            if ended >= 0 and not np.any(kept == ended):
                kept = np.append(kept, ended)
            le, lt, ls, lp = le[kept], lt[kept], ls[kept], lp[kept]
            stats["labels_kept"] += len(le)
            stats["max_labels"] = max(stats["max_labels"], len(le))
            history.append((ls, lp))
            if ended >= 0:
                at = int(np.flatnonzero(kept == ended)[0])
                back[end] = (b, _trace_back(layers, history, b, at))
            if end == n or checkpointing is Checkpointing.EVERY_LAYER or not len(le):
                break
            step = layers.switches[j + 1][ls]
            ne = (le[:, None] + step * model.switch_e + layers.energy[j + 1][None, :]).ravel()
            nt = (lt[:, None] + step * model.switch_t + layers.time[j + 1][None, :]).ravel()
            width = len(layers.energy[j + 1])
            ns = np.tile(np.arange(width), len(le))
            np_ = np.repeat(np.arange(len(le)), width)
            stats["labels_created"] += len(ne)
            fits = ne <= cap
            le, lt, ls, lp = ne[fits], nt[fits], ns[fits], np_[fits]
    if back[n] is None:
        return None
    segments = []
    end = n
    while end > 0:
        entry = back[end]
        assert entry is not None
        start, states = entry
        segments.append((start, end, states))
        end = start
    segments.reverse()
    states_all: list[int] = []
    cuts = set()
    for _, end, states in segments:
        states_all.extend(states)
        if end < n:
            cuts.add(end - 1)
    return _Found(key[n], tuple(states_all), tuple(i in cuts for i in range(n - 1)))


def _cap_labels(
    energy: np.ndarray, metric: np.ndarray, state: np.ndarray, kept: np.ndarray, cap: int
) -> np.ndarray:
    """At most ``cap`` of the ``kept`` labels (plus one per state): the least-metric ones and, so
    that every schedule that fits keeps a way through, each state's least-energy one."""
    by_metric = kept[np.argsort(metric[kept], kind="stable")[:cap]]
    order = kept[np.lexsort((energy[kept], state[kept]))]
    firsts = order[np.concatenate([[True], state[order][1:] != state[order][:-1]])]
    return np.union1d(by_metric, firsts)


def _cost_to_go(
    model: _Model, virtual: _Layers, objective: Objective, checkpointing: Checkpointing
) -> np.ndarray:
    """Per layer j, a lower bound on the objective still to come after a label at layer j:
    the rest of its cycle and the later cycles, each layer at its least energy and least time
    (``virtual``), recharges at the largest net power, the budget kept only between cycles."""
    n = model.n

    def measure(energy: float, time_s: float) -> float:
        return float(model.c_of(energy, time_s)) if objective is Objective.LATENCY else energy

    per_layer = [
        measure(float(e[0]), float(t[0])) for e, t in zip(virtual.energy, virtual.time, strict=True)
    ]
    prefix = np.concatenate([[0.0], np.cumsum(per_layer)])  # prefix[k] = sum over layers < k
    energy_prefix = np.concatenate([[0.0], np.cumsum([float(e[0]) for e in virtual.energy])])
    end_e = [0.0, *(float(virtual.end[e - 1][0]) for e in range(1, n + 1))]
    ends = [measure(end_e[e], float(model.end_t[e])) for e in range(n + 1)]
    # h[k]: from boundary k, the capacitor at V_on, to the end.
    h = [math.inf] * (n + 1)
    h[n] = 0.0
    for k in range(n - 1, -1, -1):
        may_start, may_end = _ends(checkpointing, n, k)
        if not may_start:
            continue
        start_e = float(virtual.start[k][0])
        start = measure(start_e, float(model.start_t[k]))
        for e in range(k + 1, n + 1):
            energy = start_e + energy_prefix[e] - energy_prefix[k] + end_e[e]
            if energy > model.charge_j:
                if energy - end_e[e] > model.charge_j:
                    break
                continue
            if may_end(e):
                h[k] = min(h[k], start + prefix[e] - prefix[k] + ends[e] + h[e])
    to_go = np.full(n, math.inf)
    for j in range(n):
        # The cycle holding layer j started at some b <= j; the rule on its ends depends on b
        # only for EVERY_LAYER (end = j + 1) and NONE (end = n).
        if checkpointing is Checkpointing.EVERY_LAYER:
            candidates: range | list[int] = [j + 1]
        elif checkpointing is Checkpointing.NONE:
            candidates = [n]
        else:
            candidates = range(j + 1, n + 1)
        for e in candidates:
            to_go[j] = min(to_go[j], prefix[e] - prefix[j + 1] + ends[e] + h[e])
    return to_go


def _trace_back(
    layers: _Layers, history: list[tuple[np.ndarray, np.ndarray]], start: int, index: int
) -> tuple[int, ...]:
    """The global states of the cycle from ``start`` that ends in label ``index`` of the last
    step of ``history``."""
    states = []
    for step in range(len(history) - 1, -1, -1):
        ls, lp = history[step]
        states.append(int(layers.states[start + step][ls[index]]))
        index = int(lp[index])
    return tuple(reversed(states))


def _optimistic_layers(model: _Model, allowed: np.ndarray, points: int = 1) -> _Layers | None:
    """At most ``points`` virtual states per layer, switches free, such that every allowed state
    is matched by one no worse in energy and in c = t + E / P: the allowed states' (E, c) Pareto
    front cut into ``points`` runs, each replaced by its corner (least E, least c of the run).
    A search over them bounds every schedule within ``allowed`` from below, with the budget and
    the checkpoints in the bound: a cycle's recharge cannot end earlier when its energy grows by
    P times the time it loses (docs/intermittent.md)."""
    ids = np.flatnonzero(allowed)
    if not len(ids):
        return None
    power = model.charging.max_net_w
    states, energy, times = [], [], []
    for e, t in zip(model.energy, model.time, strict=True):
        ea = e[ids]
        ca = model.c_of(ea, t[ids])
        order = np.lexsort((ca, ea))
        front = order[ca[order] < np.concatenate([[np.inf], np.minimum.accumulate(ca[order])[:-1]])]
        runs = np.array_split(front, min(points, len(front)))
        corner_e = np.array([float(ea[run[0]]) for run in runs])
        corner_c = np.array([float(ca[run[-1]]) for run in runs])
        states.append(ids[[run[0] for run in runs]])
        energy.append(corner_e)
        times.append(corner_c - corner_e / power)
    switches = [
        np.zeros((len(states[i - 1]) if i else 0, len(states[i])), dtype=np.int64)
        for i in range(model.n)
    ]
    # Every virtual state starts and ends a cycle at the allowed states' least cost.
    starts = tuple(np.full(len(states[i]), model.start_e[i][ids].min()) for i in range(model.n))
    ends = tuple(np.full(len(states[i]), model.end_e[i + 1][ids].min()) for i in range(model.n))
    return _Layers(tuple(states), tuple(energy), tuple(times), tuple(switches), starts, ends)


def _rail_subsets(problem: IntermittentProblem) -> list[np.ndarray]:
    """Per subset of ``rails`` grid levels, the mask of states that use only those levels."""
    levels = problem.levels()
    grid = len(np.unique(problem.voltage_v))
    masks = []
    for subset in itertools.combinations(range(grid), min(problem.rails, grid)):
        masks.append(np.all(np.isin(levels, subset), axis=1))
    return masks


def _rails_used(problem: IntermittentProblem, states: tuple[int, ...]) -> int:
    return len(np.unique(problem.voltage_v[list(states)]))


def _exact(
    model: _Model,
    layers: _Layers,
    to_go: np.ndarray,
    objective: Objective,
    checkpointing: Checkpointing,
    stats: dict[str, Any],
    upper: float,
) -> _Found | None:
    """The best schedule within ``layers`` whose objective is at most ``upper`` (None if none).
    Without an upper bound, a capped search first finds a schedule whose value gives one."""
    if math.isinf(upper):
        quick = _search(model, layers, objective, checkpointing, stats, label_cap=_HEURISTIC_LABELS)
        if quick is None:
            return None  # the capped search keeps every state's least-energy label: none fits
        upper = quick.key[0]
    return _search(model, layers, objective, checkpointing, stats, to_go=to_go, upper=upper)


def _to_go(
    model: _Model, allowed: np.ndarray, objective: Objective, checkpointing: Checkpointing
) -> np.ndarray:
    virtual = _optimistic_layers(model, allowed)
    assert virtual is not None
    return _cost_to_go(model, virtual, objective, checkpointing)


def _least_bound(
    model: _Model, allowed: np.ndarray, objective: Objective, checkpointing: Checkpointing
) -> tuple[float, float] | None:
    """The optimum over :func:`_optimistic_layers` with one virtual state per layer (in plain
    floats: it runs once per rail subset): a lower bound on every schedule within ``allowed``."""
    virtual = _optimistic_layers(model, allowed)
    if virtual is None:
        return None
    n, cap = model.n, model.charge_j
    energy = [float(e[0]) for e in virtual.energy]
    times = [float(t[0]) for t in virtual.time]
    constant = len(model.charging.times_s) == 1
    net = float(model.charging.net_w[0])

    def recharge(start: float, spent: float) -> float:
        if constant:
            return start + spent / net
        return float(model.charging.recharge_end(start, spent))

    inf = math.inf
    key: list[tuple[float, float]] = [(inf, inf)] * (n + 1)
    at_time = [inf] * (n + 1)
    at_energy = [inf] * (n + 1)
    at_time[0], at_energy[0], key[0] = model.start_s, 0.0, (0.0, 0.0)
    latency = objective is Objective.LATENCY
    for b in range(n):
        may_start, may_end = _ends(checkpointing, n, b)
        if math.isinf(key[b][0]) or not may_start:
            continue
        e = float(virtual.start[b][0])
        t = float(model.start_t[b])
        for j in range(b, n):
            e += energy[j]
            t += times[j]
            if e > cap:
                break
            end = j + 1
            if may_end(end):
                ee = e + float(virtual.end[j][0])
                if ee <= cap:
                    done = recharge(at_time[b] + t + float(model.end_t[end]), ee)
                    spent = at_energy[b] + ee
                    cand = (done, spent) if latency else (spent, done)
                    if not math.isinf(cand[0]) and cand < key[end]:
                        key[end], at_time[end], at_energy[end] = cand, done, spent
            if checkpointing is Checkpointing.EVERY_LAYER:
                break
    return None if math.isinf(key[n][0]) else key[n]


def _search_rail_subsets(
    problem: IntermittentProblem,
    model: _Model,
    objective: Objective,
    checkpointing: Checkpointing,
    stats: dict[str, Any],
) -> _Found | None:
    """The best schedule over the subsets of R grid levels, searched in the order of a bound
    (each layer's least energy and least c); a subset is searched only if a finer bound
    (:data:`_BOUND_POINTS` virtual states per layer) does not exceed the best schedule so far."""
    bounded = []
    for i, mask in enumerate(_rail_subsets(problem)):
        bound = _least_bound(model, mask, objective, checkpointing)
        if bound is not None:
            bounded.append((bound, i, mask))
    best: _Found | None = None
    for bound_key, _, mask in sorted(bounded, key=lambda item: (item[0], item[1])):
        if best is not None and bound_key >= best.key:
            stats["rail_subsets_skipped_by_bound"] += 1
            continue
        to_go = _to_go(model, mask, objective, checkpointing)
        upper = best.key[0] if best is not None else math.inf
        if best is not None:
            finer = _optimistic_layers(model, mask, _BOUND_POINTS)
            assert finer is not None
            if (
                _search(model, finer, objective, checkpointing, stats, to_go=to_go, upper=upper)
                is None
            ):
                stats["rail_subsets_skipped_by_bound"] += 1
                continue
        sub = _prepare(model, mask, model.c_of)
        if sub is None:
            continue
        stats["rail_subsets_searched"] += 1
        candidate = _exact(model, sub, to_go, objective, checkpointing, stats, upper)
        if candidate is not None and (best is None or candidate.key < best.key):
            best = candidate
    return best


def solve_intermittent(
    problem: IntermittentProblem,
    harvest: Harvest,
    objective: Objective | str = Objective.LATENCY,
    checkpointing: Checkpointing | str = Checkpointing.OPTIMAL,
) -> IntermittentResult:
    """The best intermittent schedule (exact), judged by :func:`evaluate_intermittent`.

    Parameters
    ----------
    problem : IntermittentProblem
        The instance (:func:`scheduler.intermittent.intermittent_problem`).
    harvest : Harvest
        Constant or trace; the inference starts at its first time with the capacitor at V_on.
    objective : Objective or str
        ``latency`` (inference to inference, recharges included) or ``energy``.
    checkpointing : Checkpointing or str
        ``optimal`` (the solver chooses), or the baselines ``every-layer`` and ``battery``.

    Raises
    ------
    IntermittentInfeasibleError
        No schedule fits one charge; the message gives the smallest charge and capacitance that
        would fit, and the power cycle that needs it.
    HarvestError
        The harvest cannot recharge the capacitor (below its leakage, or a trace that ends before
        the inference's last recharge).
    """
    objective = Objective(objective)
    checkpointing = Checkpointing(checkpointing)
    started = time.perf_counter()
    charging = NetCharging.of(harvest, problem.leakage_w)
    model = _Model.of(problem, charging, harvest.start_s)
    metric = model.c_of
    stats: dict[str, Any] = {
        "labels_created": 0,
        "labels_kept": 0,
        "max_labels": 0,
        "rail_subsets_searched": 0,
        "rail_subsets_skipped_by_bound": 0,
    }
    everything = np.ones(problem.num_states, dtype=bool)
    layers = _prepare(model, everything, metric)
    assert layers is not None
    stats["states_total"] = problem.num_states
    stats["states_per_layer_after_pruning"] = float(np.mean([len(s) for s in layers.states]))
    found = _exact(
        model,
        layers,
        _to_go(model, everything, objective, checkpointing),
        objective,
        checkpointing,
        stats,
        math.inf,
    )
    grid = len(np.unique(problem.voltage_v))
    if (
        found is not None
        and problem.rails < grid
        and _rails_used(problem, found.states) > problem.rails
    ):
        found = _search_rail_subsets(problem, model, objective, checkpointing, stats)
    if found is None:
        needed, first, last = min_charge(problem, checkpointing)
        if needed <= model.charge_j:
            raise HarvestError(
                f"{harvest.source}: the harvest ends (at {harvest.times_s[-1]:g} s, "
                f"{harvest.power_w[-1]:g} W) before the capacitor can recharge after the "
                "inference's power cycles; extend the trace"
            )
        raise IntermittentInfeasibleError(problem, checkpointing, needed, first, last)
    elapsed = time.perf_counter() - started
    evaluation = evaluate_intermittent(problem, harvest, found.states, found.checkpoint_after)
    if not evaluation.feasible:
        raise RuntimeError(
            "the intermittent solver returned a schedule that fails evaluation: "
            + "; ".join(evaluation.reasons)
        )
    if math.isinf(evaluation.latency_s):
        raise HarvestError(
            f"{harvest.source}: the harvest ends (at {harvest.times_s[-1]:g} s, "
            f"{harvest.power_w[-1]:g} W) before the capacitor recharges after the last power "
            "cycle; extend the trace"
        )
    return IntermittentResult(
        objective,
        checkpointing,
        Status.PROVEN_OPTIMAL,
        found.states,
        found.checkpoint_after,
        evaluation,
        elapsed,
        stats,
    )


def min_charge(
    problem: IntermittentProblem, checkpointing: Checkpointing | str = Checkpointing.OPTIMAL
) -> tuple[float, int, int]:
    """The smallest charge with which a schedule fits, and the power cycle (first and last
    layer) that needs it: min over partitions of the largest cycle's least energy, the rail limit
    included (exact; ``inf`` if the rails allow no state at all)."""
    checkpointing = Checkpointing(checkpointing)
    charging = NetCharging(np.zeros(1), np.ones(1), np.zeros(1), 1.0)  # only energies matter
    model = _Model.of(problem, charging, 0.0)

    def energy_only(e: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.zeros_like(e)

    grid = len(np.unique(problem.voltage_v))
    masks = (
        [np.ones(problem.num_states, dtype=bool)]
        if problem.rails >= grid
        else _rail_subsets(problem)
    )
    best = (math.inf, 0, problem.num_layers - 1)
    for mask in masks:
        layers = _prepare(model, mask, energy_only)
        if layers is not None:
            best = min(best, _bottleneck(model, layers, checkpointing, best[0]))
    return best


def _bottleneck(
    model: _Model, layers: _Layers, checkpointing: Checkpointing, cutoff: float
) -> tuple[float, int, int]:
    """Min over partitions of the largest cycle's least energy, and that cycle; cycles whose
    least energy reaches ``cutoff`` (a known answer) are not extended."""
    n = model.n
    value = [math.inf] * (n + 1)
    worst: list[tuple[int, int]] = [(0, n - 1)] * (n + 1)
    value[0] = 0.0
    for b in range(n):
        may_start, may_end = _ends(checkpointing, n, b)
        if math.isinf(value[b]) or not may_start or value[b] >= cutoff:
            continue
        least = layers.start[b] + layers.energy[b]
        for j in range(b, n):
            end = j + 1
            if may_end(end):
                cycle = float((least + layers.end[j]).min())
                total = max(value[b], cycle)
                if total < value[end]:
                    value[end] = total
                    worst[end] = (b, j) if cycle >= value[b] else worst[b]
            if end == n or checkpointing is Checkpointing.EVERY_LAYER or least.min() >= cutoff:
                break
            step = layers.switches[j + 1] * model.switch_e
            least = (least[:, None] + step).min(axis=0) + layers.energy[j + 1]
    return value[n], worst[n][0], worst[n][1]
