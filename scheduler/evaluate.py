"""The independent checker: energy, latency, rails and feasibility of any schedule.

Every solver's answer is judged here. This module shares no code with the solvers' inner loops:
it walks the schedule layer by layer in plain Python, straight from the problem's definition.
"""

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .instance import Problem

__all__ = ["DEADLINE_TOLERANCE", "Evaluation", "SlackMode", "evaluate", "required_period"]

#: A schedule meets its deadline if it needs at most ``period * (1 + DEADLINE_TOLERANCE)``: the
#: solvers decide feasibility in their own floating-point arithmetic (sums in another order, the
#: ILP's tolerances), and 1e-9 of a period (20 ps at 50 FPS) is far below anything physical.
DEADLINE_TOLERANCE = 1e-9


class SlackMode(enum.Enum):
    """What the chip does between the end of the last layer and the end of the period."""

    STAY_ON = "stay-on"
    SLEEP = "sleep"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Costs and feasibility of one schedule.

    Attributes
    ----------
    states : tuple of int
        The schedule: one state index per layer.
    period_s : float
        The period T the schedule was judged against.
    rails : int
        The rail limit R it was judged against.
    feasible : bool
        True if the deadline holds and at most ``rails`` voltages are used.
    reasons : tuple of str
        Why it is infeasible (empty when feasible).
    energy_j : float
        Total energy per period: ``layer_energy_j + transition_energy_j + slack_energy_j``.
    layer_energy_j : float
        Sum of the layers' energies in their states.
    transition_energy_j : float
        Energy of the domain switches between layers, plus the wrap-around switches if paid.
    slack_energy_j : float
        Energy of the slack: leakage when staying on, or sleep entry plus sleep power.
    slack_mode : SlackMode or None
        The cheaper slack option that fits; None if neither fits the period.
    switches : int
        Domain switches paid (between layers, plus wrap-around ones when staying on).
    wrap_switches : int
        The wrap-around switches among ``switches`` (0 unless staying on with wraparound).
    latency_s : float
        Layer times plus the latency of the paid switches.
    idle_s : float
        ``period_s - latency_s`` (sleep entry, when sleeping, is spent in this time).
    rails_used_v : tuple of float
        The distinct voltages the schedule uses, ascending.
    """

    states: tuple[int, ...]
    period_s: float
    rails: int
    feasible: bool
    reasons: tuple[str, ...]
    energy_j: float
    layer_energy_j: float
    transition_energy_j: float
    slack_energy_j: float
    slack_mode: SlackMode | None
    switches: int
    wrap_switches: int
    latency_s: float
    idle_s: float
    rails_used_v: tuple[float, ...]


def _check_states(problem: Problem, states: Sequence[int]) -> tuple[int, ...]:
    if len(states) != problem.num_layers:
        raise ValueError(
            f"schedule must have one state per layer ({problem.num_layers}), not {len(states)}"
        )
    checked = []
    for i, state in enumerate(states):
        count = problem.layers[i].num_states
        if isinstance(state, bool) or not 0 <= int(state) < count or int(state) != state:
            raise ValueError(
                f"state of layer {i} must be an integer in [0, {count}), not {state!r}"
            )
        checked.append(int(state))
    return tuple(checked)


def _switches_between(problem: Problem, i: int, s: int, j: int, r: int) -> int:
    """Domains whose voltage level differs between state s of layer i and state r of layer j."""
    a = problem.level_index[i][s]
    b = problem.level_index[j][r]
    return sum(1 for d in range(problem.num_domains) if int(a[d]) != int(b[d]))


def evaluate(problem: Problem, states: Sequence[int], period_s: float, rails: int) -> Evaluation:
    """Judge a schedule against a period and a rail limit.

    Parameters
    ----------
    problem : Problem
        The instance.
    states : sequence of int
        One state index per layer.
    period_s : float
        Period T (1 / rate).
    rails : int
        At most this many distinct voltages over all domains and layers.

    Returns
    -------
    Evaluation
        Costs, the cheaper slack option that fits, and feasibility with reasons.

    Raises
    ------
    ValueError
        If the schedule has the wrong length or a state index out of range, or the period or
        the rail limit is not positive.
    """
    if not period_s > 0 or period_s == float("inf"):
        raise ValueError(f"period must be a positive finite number of seconds, not {period_s!r}")
    if isinstance(rails, bool) or not isinstance(rails, int) or rails < 1:
        raise ValueError(f"rails must be a positive integer, not {rails!r}")
    states = _check_states(problem, states)
    period_s = float(period_s)
    n = problem.num_layers
    e_tr = problem.transition_energy_j
    l_tr = problem.transition_latency_s

    layer_energy = 0.0
    layer_time = 0.0
    for i, s in enumerate(states):
        layer_energy += float(problem.layers[i].energy_j[s])
        layer_time += float(problem.layers[i].time_s[s])
    inner_switches = sum(
        _switches_between(problem, i - 1, states[i - 1], i, states[i]) for i in range(1, n)
    )
    busy = layer_time + l_tr * inner_switches
    limit = period_s * (1.0 + DEADLINE_TOLERANCE)

    # The two slack options, each with the time it needs after the last layer.
    # (energy after the last layer incl. wrap switches, slack energy, mode, wrap switches, latency)
    options: list[tuple[float, float, SlackMode, int, float]] = []
    wrap = _switches_between(problem, n - 1, states[-1], 0, states[0]) if problem.wraparound else 0
    stay_latency = busy + l_tr * wrap
    if stay_latency <= limit:
        idle = max(0.0, period_s - stay_latency)
        leakage = float(problem.layers[-1].leakage_w[states[-1]])
        slack = leakage * idle
        options.append((e_tr * wrap + slack, slack, SlackMode.STAY_ON, wrap, stay_latency))
    entry = problem.sleep_entry_switches
    sleep_needs = busy + l_tr * entry
    if sleep_needs <= limit:
        asleep = max(0.0, period_s - sleep_needs)
        slack = e_tr * entry + problem.sleep_power_w * asleep
        options.append((slack, slack, SlackMode.SLEEP, 0, busy))

    reasons = []
    if options:
        _, slack_energy, mode, paid_wrap, latency = min(options, key=lambda option: option[0])
    else:
        slack_energy, mode, paid_wrap, latency = 0.0, None, 0, busy
        if stay_latency <= sleep_needs:
            needed, paid = stay_latency, inner_switches + wrap
        else:
            needed, paid = sleep_needs, inner_switches + entry
        reasons.append(
            f"deadline missed by {needed - period_s:.6g} s: the schedule needs {needed:.9g} s "
            f"(layers {layer_time:.9g} s + {paid} switches x {l_tr:g} s), "
            f"the period is {period_s:.9g} s"
        )

    used = sorted({int(k) for i, s in enumerate(states) for k in problem.level_index[i][s]})
    rails_used = tuple(float(problem.levels_v[k]) for k in used)
    if len(used) > rails:
        volts = ", ".join(f"{v:g}" for v in rails_used)
        reasons.append(f"uses {len(used)} voltages ({volts} V), more than the {rails} rails")

    transition_energy = e_tr * (inner_switches + paid_wrap)
    return Evaluation(
        states=states,
        period_s=float(period_s),
        rails=rails,
        feasible=not reasons,
        reasons=tuple(reasons),
        energy_j=layer_energy + transition_energy + slack_energy,
        layer_energy_j=layer_energy,
        transition_energy_j=transition_energy,
        slack_energy_j=slack_energy,
        slack_mode=mode,
        switches=inner_switches + paid_wrap,
        wrap_switches=paid_wrap,
        latency_s=latency,
        idle_s=period_s - latency,
        rails_used_v=rails_used,
    )


def required_period(problem: Problem, states: Sequence[int]) -> float:
    """The shortest period at which ``states`` meets its deadline (rails not considered).

    Layer times and switch latencies, plus the cheaper in time of what must follow the last
    layer: the wrap-around switches (staying on, with wraparound) or the sleep entry.
    """
    states = _check_states(problem, states)
    n = problem.num_layers
    l_tr = problem.transition_latency_s
    busy = sum(float(problem.layers[i].time_s[s]) for i, s in enumerate(states))
    busy += l_tr * sum(
        _switches_between(problem, i - 1, states[i - 1], i, states[i]) for i in range(1, n)
    )
    wrap = _switches_between(problem, n - 1, states[-1], 0, states[0]) if problem.wraparound else 0
    return busy + l_tr * min(wrap, problem.sleep_entry_switches)
