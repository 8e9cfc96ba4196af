"""The papers' baseline policies: nominal race-to-sleep, greedy speed-up, evenly spaced rails
(PowerFlow-DNN), and SparseDVFS's sparsity-class super-blocks.

Each takes a :class:`Problem` (the caller picks the instance: the no-gating one for ``nominal``,
the gated one for ``gating`` and ``gating-greedy``) and returns a :class:`BaselineSchedule`.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dp import min_period, solve_dp
from .evaluate import evaluate, required_period
from .instance import Problem, restrict_to_levels

__all__ = [
    "AMORTISE_SWITCHES",
    "DENSITY_CLASSES",
    "BaselineSchedule",
    "even_rail_levels",
    "even_rails",
    "greedy",
    "greedy_levels",
    "nominal",
    "superblock",
]


@dataclass(frozen=True, slots=True)
class BaselineSchedule:
    """A baseline's answer.

    Attributes
    ----------
    states : tuple of int or None
        The schedule (state indices of the problem passed in), None if the policy cannot meet the
        period.
    min_period_s : float
        The shortest period this policy can meet (for the infeasibility message).
    stats : dict
        Policy-specific counters.
    """

    states: tuple[int, ...] | None
    min_period_s: float
    stats: dict[str, Any] = field(default_factory=dict)


def nominal(problem: Problem, period_s: float, rails: int, *, nominal_v: float) -> BaselineSchedule:
    """Every domain at ``nominal_v`` in every layer, then the cheaper of staying on and sleeping.

    Raises
    ------
    ValueError
        If some layer has no state with every domain at ``nominal_v``.
    """
    level = problem.level_of(nominal_v)
    states = []
    for i, index in enumerate(problem.level_index):
        match = np.flatnonzero((index == level).all(axis=1))
        if match.size == 0:
            raise ValueError(
                f"layer {i} ({problem.layers[i].name!r}) has no state with every domain at "
                f"{nominal_v} V"
            )
        states.append(int(match[0]))
    schedule = tuple(states)
    needed = required_period(problem, schedule)
    feasible = evaluate(problem, schedule, period_s, rails).feasible
    return BaselineSchedule(schedule if feasible else None, needed, {"nominal_v": nominal_v})


def even_rail_levels(problem: Problem, rails: int) -> tuple[int, ...]:
    """Grid indices of ``rails`` voltages evenly spaced from the lowest to the highest level.

    Each target voltage takes the nearest level not taken yet. One rail is the highest level
    (the only single rail that keeps every rate the grid allows).
    """
    count = min(rails, problem.num_levels)
    low, high = float(problem.levels_v[0]), float(problem.levels_v[-1])
    targets = [high] if count == 1 else np.linspace(low, high, count).tolist()
    chosen: list[int] = []
    for target in targets:
        free = [k for k in range(problem.num_levels) if k not in chosen]
        chosen.append(min(free, key=lambda k: (abs(float(problem.levels_v[k]) - target), k)))
    return tuple(sorted(chosen))


def greedy_levels(problem: Problem) -> tuple[int, ...]:
    """The greedy baseline's default levels: lowest, middle and highest of the grid.

    On the paper's 0.90..1.30 V grid this is {0.9, 1.1, 1.3}.
    """
    return (
        even_rail_levels(problem, 3)
        if problem.num_levels >= 3
        else tuple(range(problem.num_levels))
    )


def greedy(
    problem: Problem, period_s: float, rails: int, *, levels: Sequence[int] | None = None
) -> BaselineSchedule:
    """Start slow, then speed up the layer that buys the most time per joule until the deadline
    holds.

    Only states whose voltages lie in ``levels`` (grid indices; default :func:`greedy_levels`)
    are used. Every layer starts in its lowest state (lowest voltages, then least energy). Each
    step applies the single-layer state change with the largest time gained per energy spent,
    switch latencies and energies with the neighbours included, among changes that gain time
    and keep at most ``rails`` voltages; a change that gains time for no energy goes first.
    """
    chosen = tuple(greedy_levels(problem) if levels is None else levels)
    restriction = restrict_to_levels(problem, chosen)
    sub = restriction.problem
    n = sub.num_layers
    e_tr = sub.transition_energy_j
    l_tr = sub.transition_latency_s
    index = sub.level_index

    states = [
        int(np.lexsort((layer.energy_j, index[i].sum(axis=1), index[i].max(axis=1)))[0])
        for i, layer in enumerate(sub.layers)
    ]
    steps = 0
    while not evaluate(sub, states, period_s, rails).feasible:
        usage = np.zeros(sub.num_levels, dtype=np.int64)  # layer-domain slots per level
        for i, s in enumerate(states):
            np.add.at(usage, index[i][s], 1)
        best: tuple[float, float, int, int] | None = None  # (ratio, gain, -layer, state)
        for i, layer in enumerate(sub.layers):
            s = states[i]
            gain = layer.time_s[s] - layer.time_s  # time gained by each candidate state
            spent = layer.energy_j - layer.energy_j[s]
            for j in (i - 1, i + 1):
                if 0 <= j < n:
                    other = index[j][states[j]]
                    before = int((index[i][s] != other).sum())
                    after = (index[i] != other[None, :]).sum(axis=1)
                    gain = gain - l_tr * (after - before)
                    spent = spent + e_tr * (after - before)
            others = usage.copy()
            np.subtract.at(others, index[i][s], 1)
            in_use = others > 0
            rails_used = (in_use[None, :] | _level_masks(index[i], sub.num_levels)).sum(axis=1)
            ok = (gain > 0) & (rails_used <= rails)
            ok[s] = False
            for candidate in np.flatnonzero(ok):
                g, e = float(gain[candidate]), float(spent[candidate])
                ratio = math.inf if e <= 0 else g / e
                key = (ratio, g, -i, -int(candidate))
                if best is None or key > best:
                    best = key
        if best is None:
            fastest, _ = min_period(sub, rails)
            stats = {"steps": steps, "levels_v": [float(v) for v in sub.levels_v]}
            return BaselineSchedule(None, fastest, stats)
        _, _, minus_layer, minus_state = best
        states[-minus_layer] = -minus_state
        steps += 1
    fastest, _ = min_period(sub, rails)
    stats = {"steps": steps, "levels_v": [float(v) for v in sub.levels_v]}
    return BaselineSchedule(restriction.to_original(states), fastest, stats)


#: SparseDVFS's sparsity classes by activation density: dense (>= 0.6), medium, sparse (< 0.3).
#: voltflow assumption: the paper classifies operators by sparsity without published thresholds.
DENSITY_CLASSES = (0.6, 0.3)
#: The latency-amortisation rule: a super-block lasts at least this many switch latencies
#: (T_block >= N x T_switch).
AMORTISE_SWITCHES = 10


def superblock(
    problem: Problem, period_s: float, rails: int, *, amortise: int = AMORTISE_SWITCHES
) -> BaselineSchedule:
    """SparseDVFS's method: one frequency set per sparsity class, blocks merged greedily.

    Each layer's class comes from its expected activation density (``LayerTable.density``; a
    layer without one is dense, so an instance without a profile is one class). Every class
    gets one uniform state (all domains at one voltage, as the offline modeller maps a class to
    one frequency triplet); going through the layers, a block keeps growing, each layer taking
    the block's state, until it lasts ``amortise`` switch latencies, and a new block starts at
    the next class change; a last block shorter than that joins the one before. Of all class ->
    voltage choices the cheapest feasible schedule wins.
    """
    volts = problem.layers[0].voltage_v
    uniform = [s for s in range(len(volts)) if np.all(volts[s] == volts[s][0])]
    dense, sparse = DENSITY_CLASSES
    classes = [
        0 if layer.density is None or layer.density >= dense else 1 if layer.density >= sparse
        else 2
        for layer in problem.layers
    ]  # fmt: skip
    present = sorted(set(classes))
    least = amortise * problem.transition_latency_s
    best: tuple[float, list[int]] | None = None
    fastest = math.inf
    tried = 0
    for choice in itertools.product(uniform, repeat=len(present)):
        state_of = dict(zip(present, choice, strict=True))
        states = _superblocks(problem, [state_of[c] for c in classes], least)
        judged = evaluate(problem, states, period_s, rails)
        tried += 1
        fastest = min(fastest, required_period(problem, states))
        if judged.feasible and (best is None or judged.energy_j < best[0]):
            best = (judged.energy_j, states)
    stats = {"classes": [classes.count(c) for c in range(3)], "choices": tried}
    return BaselineSchedule(None if best is None else tuple(best[1]), fastest, stats)


def _superblocks(problem: Problem, states: list[int], least_s: float) -> list[int]:
    """Merge consecutive layers into blocks that last at least ``least_s`` (see superblock)."""
    out = list(states)
    start, block_s = 0, 0.0
    for i, layer in enumerate(problem.layers):
        if i > 0 and states[i] != out[i - 1] and block_s >= least_s:
            start, block_s = i, 0.0
        elif i > 0:
            out[i] = out[i - 1]
        block_s += float(layer.time_s[out[i]])
    if start > 0 and block_s < least_s:  # a short last block joins the one before
        for i in range(start, len(out)):
            out[i] = out[start - 1]
    return out


def _level_masks(index: np.ndarray, num_levels: int) -> np.ndarray:
    masks = np.zeros((index.shape[0], num_levels), dtype=bool)
    masks[np.arange(index.shape[0])[:, None], index] = True
    return masks


def even_rails(
    problem: Problem,
    period_s: float,
    rails: int,
    *,
    levels: Sequence[int] | None = None,
    time_limit_s: float | None = None,
) -> BaselineSchedule:
    """The exact solver restricted to fixed rails: ``levels`` (grid indices), by default
    :func:`even_rail_levels`."""
    chosen = tuple(even_rail_levels(problem, rails) if levels is None else levels)
    if len(set(chosen)) > rails:
        raise ValueError(f"{len(set(chosen))} fixed rail levels exceed the rail limit {rails}")
    restriction = restrict_to_levels(problem, chosen)
    sub = restriction.problem
    result = solve_dp(sub, period_s, rails, time_limit_s=time_limit_s)
    fastest, _ = min_period(sub, rails)
    stats = dict(result.stats, rails_v=[float(v) for v in sub.levels_v], proven=result.proven)
    states = None if result.states is None else restriction.to_original(result.states)
    return BaselineSchedule(states, fastest, stats)
