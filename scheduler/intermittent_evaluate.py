"""The independent checker of intermittent schedules: walks power cycle by power cycle.

``evaluate_intermittent(problem, harvest, states, checkpoint_after)`` judges any schedule, whoever
produced it, in plain Python: it shares no code with the solver (``intermittent_dp``), not even
the recharge computation (its own walk over the harvest's pieces).
"""

import dataclasses
import math
from dataclasses import dataclass

from .intermittent import IntermittentProblem, Objective
from .supply import Harvest

__all__ = ["BUDGET_TOLERANCE", "IntermittentEvaluation", "PowerCycle", "evaluate_intermittent"]

#: A power cycle may need up to charge x (1 + BUDGET_TOLERANCE): solvers sum in another order.
BUDGET_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class PowerCycle:
    """One power cycle: boot, restore (not the first), layers ``first..last``, checkpoint (after
    the last layer: the output commit, if any); then the recharge back to V_on.

    Times are absolute (the harvest's clock); energies are drawn from the capacitor.
    """

    index: int
    first_layer: int
    last_layer: int
    start_s: float
    on_time_s: float
    recharged_s: float
    boot_j: float  # boot and the bank wake-ups after it
    restore_j: float
    compute_j: float  # the layers
    switch_j: float  # voltage switches between its layers
    checkpoint_j: float
    leakage_j: float  # the capacitor's own leakage during the on-time
    switches: int
    restored_bits: int
    checkpoint_bits: int

    @property
    def energy_j(self) -> float:
        return (
            self.boot_j
            + self.restore_j
            + self.compute_j
            + self.switch_j
            + self.checkpoint_j
            + self.leakage_j
        )

    @property
    def end_on_s(self) -> float:
        return self.start_s + self.on_time_s

    @property
    def recharge_s(self) -> float:
        return self.recharged_s - self.end_on_s


@dataclass(frozen=True, slots=True)
class IntermittentEvaluation:
    """The verdict on one intermittent schedule.

    ``latency_s`` runs from the first boot (capacitor at V_on) to the capacitor back at V_on after
    the last power cycle: the time per inference when inferences follow each other.
    ``output_s`` runs to the output's commit (the end of the last on-time).
    """

    feasible: bool
    reasons: tuple[str, ...]
    cycles: tuple[PowerCycle, ...]
    rails_used_v: tuple[float, ...]

    @property
    def latency_s(self) -> float:
        return self.cycles[-1].recharged_s - self.cycles[0].start_s

    @property
    def output_s(self) -> float:
        return self.cycles[-1].end_on_s - self.cycles[0].start_s

    @property
    def on_time_s(self) -> float:
        return sum(c.on_time_s for c in self.cycles)

    @property
    def recharge_s(self) -> float:
        return sum(c.recharge_s for c in self.cycles)

    @property
    def energy_j(self) -> float:
        return sum(c.energy_j for c in self.cycles)

    def total(self, part: str) -> float:
        """Sum of one energy part over the cycles: ``boot_j``, ``restore_j``, ``compute_j``,
        ``switch_j``, ``checkpoint_j`` or ``leakage_j``."""
        return sum(getattr(c, part) for c in self.cycles)

    def objective(self, objective: Objective) -> float:
        return self.latency_s if objective is Objective.LATENCY else self.energy_j


def _recharged(harvest: Harvest, leakage_w: float, start_s: float, energy_j: float) -> float:
    """When the capacitor, ``energy_j`` below V_on at ``start_s``, is back at V_on."""
    deficit = energy_j
    if deficit <= 0:
        return start_s
    times = [float(t) for t in harvest.times_s]
    powers = [float(p) for p in harvest.power_w]
    now = start_s
    for k, power in enumerate(powers):
        end = times[k + 1] if k + 1 < len(times) else math.inf
        if end <= now:
            continue
        net = power - leakage_w
        if net > 0 and now + deficit / net <= end:
            return now + deficit / net
        if end == math.inf:
            return math.inf
        deficit -= net * (end - now)
        now = end
    return math.inf


def evaluate_intermittent(
    problem: IntermittentProblem,
    harvest: Harvest,
    states: tuple[int, ...] | list[int],
    checkpoint_after: tuple[bool, ...] | list[bool],
) -> IntermittentEvaluation:
    """Judge a schedule: one state per layer, and a checkpoint after layer i (i < N - 1) or not.

    It is feasible when every power cycle fits in one charge (within :data:`BUDGET_TOLERANCE`),
    at most ``problem.rails`` distinct voltages occur, and the capacitor recharges.
    """
    n = problem.num_layers
    if len(states) != n or any(not 0 <= int(s) < problem.num_states for s in states):
        raise ValueError(f"a schedule has one state in 0..{problem.num_states - 1} per layer")
    if len(checkpoint_after) != n - 1:
        raise ValueError(f"checkpoint_after has one flag per boundary inside the network ({n - 1})")
    leak = problem.leakage_w
    volts = problem.voltage_v
    reasons: list[str] = []
    used = sorted({float(v) for s in states for v in volts[int(s)]})
    if len(used) > problem.rails:
        reasons.append(f"{len(used)} distinct voltages {used} exceed {problem.rails} rails")
    ends = [i + 1 for i, flag in enumerate(checkpoint_after) if flag] + [n]
    cycles: list[PowerCycle] = []
    now = harvest.start_s
    first = 0
    for index, end in enumerate(ends):
        compute = sum(float(problem.energy_j[i][states[i]]) for i in range(first, end))
        layer_time = sum(float(problem.time_s[i][states[i]]) for i in range(first, end))
        switches = 0
        for i in range(first + 1, end):
            a, b = volts[int(states[i - 1])], volts[int(states[i])]
            switches += sum(1 for x, y in zip(a, b, strict=True) if x != y)
        restore_j = float(problem.restore_energy_j[first, int(states[first])]) if first else 0.0
        restore_s = problem.restore_time_s[first] if first else 0.0
        on_time = (
            problem.boot_time_s
            + restore_s
            + layer_time
            + switches * problem.transition_latency_s
            + problem.checkpoint_time_s[end]
        )
        cycle = PowerCycle(
            index=index,
            first_layer=first,
            last_layer=end - 1,
            start_s=now,
            on_time_s=on_time,
            recharged_s=math.nan,
            boot_j=problem.boot_energy_j + problem.wake_energy_j[first],
            restore_j=restore_j,
            compute_j=compute,
            switch_j=switches * problem.transition_energy_j,
            checkpoint_j=float(problem.checkpoint_energy_j[end, int(states[end - 1])]),
            leakage_j=leak * on_time,
            switches=switches,
            restored_bits=problem.checkpoint_bits[first] if first else 0,
            checkpoint_bits=problem.checkpoint_bits[end],
        )
        if cycle.energy_j > problem.charge_j * (1 + BUDGET_TOLERANCE):
            reasons.append(
                f"power cycle {index} (layers {first}..{end - 1}) needs "
                f"{cycle.energy_j * 1e6:.6g} uJ, more than one charge "
                f"({problem.charge_j * 1e6:.6g} uJ)"
            )
        recharged = _recharged(harvest, leak, cycle.end_on_s, cycle.energy_j)
        if math.isinf(recharged):
            reasons.append(f"the capacitor never recharges after power cycle {index}")
        cycles.append(dataclasses.replace(cycle, recharged_s=recharged))
        now = recharged
        first = end
    return IntermittentEvaluation(not reasons, tuple(reasons), tuple(cycles), tuple(used))
