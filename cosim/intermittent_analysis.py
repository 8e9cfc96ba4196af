"""An intermittent run on the RTL, power-up by power-up, against the schedule and pmu.timing.

The chip's counters restart at every power-up (a power failure or HALT_POWER_OFF resets the
whole chip), so every power-up is one window: the PMU's power counters at its end (the wrapper's
``P``/``O`` snapshot, or the run's final counters for the last one) priced by
:mod:`voltflow.cosim.energy`, the accelerator's activity of each LAUNCH (between its ``S`` and
``D`` snapshots, from the op rows of that power-up), and the analog boot energy of the chip file.
None of it reads the scheduler's prediction; the comparison is made afterwards, power cycle by
power cycle (docs/intermittent.md, "Co-simulation").
"""

from dataclasses import dataclass, field

import numpy as np
from voltflow.cosim.energy import Energy, boot_energy, dynamic_energy, launch_levels, window_energy
from voltflow.cosim.pmu_run import PmuRunResult
from voltflow.pmu.intermittent_compiler import IntermittentProgram
from voltflow.pmu.isa import Opcode, decode
from voltflow.pmu.timing import Outcome
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.scheduler.chip import Chip, GatingPolicy
from voltflow.scheduler.cost import CostTable

__all__ = ["ENERGY_TOLERANCE", "PowerUp", "analyse_power_ups"]

#: A power cycle's measured energy must equal the prediction to this relative difference.
ENERGY_TOLERANCE = 1e-3


@dataclass(slots=True)
class PowerUp:
    """One power-up of the chip: a boot, then (unless it fails first) one power cycle of the
    schedule, ending with HALT_POWER_OFF (``off``), the final HALT (``done``) or a supply
    failure (``failed``, at PMU cycle ``failed_at``)."""

    index: int
    cycle: int | None  # the schedule's power cycle it ran (None: failed before RESUME chose)
    end: str  # "off", "done" or "failed"
    failed_at: int | None
    cycles: int  # reference cycles from power-up to its end (measured)
    predicted_cycles: int  # pmu.timing's
    launches: int
    measured: Energy = field(default_factory=Energy)
    #: (PMU cycle, energy drawn since power-up) at the power-up and at every LAUNCH's start
    #: and end: the capacitor timeline's points.
    points: list[tuple[int, float]] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.cycles == self.predicted_cycles


def _cycle_of(outcome: Outcome, program: IntermittentProgram) -> int | None:
    """The schedule's power cycle a power-up ran: where RESUME sent it (or the first cycle)."""
    starts = {c.start: i for i, c in enumerate(program.cycles)}
    words = program.program.words
    for (pc, _), (nxt, _) in zip(outcome.command_cycles, outcome.command_cycles[1:], strict=False):
        if decode(words[pc]).opcode is Opcode.RESUME:
            return starts.get(nxt)
    return None


def analyse_power_ups(
    run: PmuRunResult, chip: Chip, table: CostTable, program: IntermittentProgram
) -> list[PowerUp]:
    """Every power-up of ``run`` (an intermittent :func:`~voltflow.cosim.pmu_run.run_program`),
    with its measured energy and cycles next to pmu.timing's cycles."""
    gating = table.policy is not GatingPolicy.NO_PG
    names = [name for name, _ in COUNTERS]
    # Op rows, split at the power-downs (op index -1): each power-up's counters start at 0.
    rows: list[list[np.ndarray]] = [[]]
    for row in run.op_stats:
        if row[0] < 0:
            rows.append([])
        else:
            rows[-1].append(row[1:])
    predicted = run.power_cycles
    out: list[PowerUp] = []
    power_up = 0
    row_at = 0
    launch_start: dict[str, int] | None = None
    launch = 0

    def open_power_up() -> PowerUp:
        model = predicted[power_up] if power_up < len(predicted) else Outcome()
        up = PowerUp(
            index=power_up,
            cycle=_cycle_of(model, program),
            end="done",
            failed_at=None,
            cycles=0,
            predicted_cycles=model.end_cycle + 1,
            launches=0,
            measured=boot_energy(chip),
        )
        up.points.append((0, 0.0))
        return up

    current = open_power_up()

    def add_ops(last: int, counters: dict[str, int]) -> None:
        """The accelerator's activity of this power-up's op rows ``row_at .. last`` (one
        LAUNCH's), at the levels the PMU held since ``launch_start``."""
        mine = rows[power_up]
        base = mine[row_at - 1] if row_at else 0
        activity = dict(zip(names, (int(x) for x in mine[last] - base), strict=True))
        levels = launch_levels(chip, counters, launch_start)
        current.measured = current.measured + dynamic_energy(chip, activity, levels, gating=gating)

    def energy_at(counters: dict[str, int], now: int) -> float:
        window = window_energy(chip, counters, None, now + 1)
        return current.measured.total_j + window.total_j

    for snap in run.snapshots:
        if snap.event == "S":
            launch_start = snap.counters
            current.points.append((snap.now, energy_at(snap.counters, snap.now)))
        elif snap.event == "D":
            last = row_at + run.launches[launch].count - 1
            add_ops(last, snap.counters)
            row_at = last + 1
            current.launches += 1
            launch += 1
            current.points.append((snap.now, energy_at(snap.counters, snap.now)))
        elif snap.event in "PO":
            current.end = "failed" if snap.event == "P" else "off"
            if snap.event == "P":
                current.failed_at = snap.now
                if launch_start is not None and len(rows[power_up]) > row_at:
                    # The ops of the interrupted LAUNCH that finished (the one in progress
                    # reported nothing: its partial activity is not counted).
                    add_ops(len(rows[power_up]) - 1, snap.counters)
            # HALT_POWER_OFF at cycle h is logged at h + 1 (the supply cuts after the halt); a
            # failure in cycle f at f: either way the power-up spans cycles 0 .. h or f.
            cycles = snap.now if snap.event == "O" else snap.now + 1
            current.measured = current.measured + window_energy(chip, snap.counters, None, cycles)
            current.cycles = cycles
            current.points.append((snap.now, current.measured.total_j))
            out.append(current)
            power_up += 1
            row_at = 0
            launch_start = None
            current = open_power_up()
    # The last power-up ends with the final HALT.
    current.measured = current.measured + window_energy(chip, run.counters, None, run.end_cycle + 1)
    current.cycles = run.end_cycle + 1
    current.points.append((run.end_cycle, current.measured.total_j))
    out.append(current)
    return out
