"""Schedules the PMU meets: solve, compile, replay on the PMU model, re-solve with a margin.

The scheduler's latency counts layer cycles and supply switches; the PMU program adds its own
cycles (one per command, three per LAUNCH, bank wake-up WAITs). When those make a frame overrun,
the schedule is solved again for a period shorter by the overhead (the margin), then judged and
compiled at the real period, so the prediction stays the scheduler's own at the requested rate.
Both `voltflow schedule` and the co-simulation flow plan this way, so every schedule they write
compiles.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voltflow.pmu.compiler import (
    Program,
    compile_schedule,
    descriptor_works,
    launch_cycles,
    verify_timing,
)
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.timing import Outcome, predict
from voltflow.scheduler.chip import BankKind
from voltflow.scheduler.cost import CostTable
from voltflow.scheduler.evaluate import evaluate
from voltflow.scheduler.instance import Problem
from voltflow.scheduler.schedule import ScheduleFile, schedule_from_json, schedule_to_json
from voltflow.scheduler.solve import Method, Result, solve

__all__ = ["MAX_ROUNDS", "Plan", "lookahead_program", "plan_schedule"]

#: Margin rounds before giving up (each lengthens the margin by the busiest frame's overrun).
MAX_ROUNDS = 6


@dataclass(frozen=True, slots=True)
class Plan:
    """A schedule that the PMU program meets, and its program."""

    result: Result  # judged at the requested period
    schedule: ScheduleFile
    schedule_json: dict[str, Any]
    program: Program
    margin_cycles: int  # how much shorter a period the schedule was solved for
    predicted_run: Outcome  # the program replayed on pmu.timing


def plan_schedule(
    table: CostTable,
    problem: Problem,
    fps: float,
    rails: int,
    method: Method,
    frames: int = 1,
    provenance: Mapping[str, Any] | None = None,
    hardware_counts: Mapping[BankKind, int] | None = None,
    time_limit_s: float | None = 60.0,
) -> Plan:
    """Solve ``problem`` for ``fps`` so that the compiled program meets every deadline.

    ``hardware_counts``: banks per kind of the PMU build the program runs on (default: the
    network's layout). Raises the solver's errors (infeasible rate, no solution) and ValueError
    when no margin within :data:`MAX_ROUNDS` rounds makes the program meet the period.
    """
    chip = table.chip
    period_s = 1.0 / fps
    f_ref = chip.reference_mhz * 1e6
    descriptors = descriptor_works(table)
    cycles = launch_cycles(chip, descriptors)
    counts = dict(hardware_counts) if hardware_counts else dict(table.memory.counts)
    pmu_config = PmuConfig.from_chip(chip, counts)
    margin = 0
    for _ in range(MAX_ROUNDS):
        result = solve(
            problem,
            period_s - margin / f_ref,
            rails,
            method,
            time_limit_s=time_limit_s,
            nominal_v=chip.nominal_v,
        )
        judged = evaluate(problem, result.states, period_s, rails)
        result = dataclasses.replace(result, evaluation=judged)
        data = schedule_to_json(result, problem, provenance)
        schedule = schedule_from_json(data)
        program = compile_schedule(schedule, table, frames=frames, hardware_counts=counts)
        outcome = predict(list(program.words), pmu_config, cycles, program_ops=len(descriptors))
        if outcome.overruns == 0:
            return Plan(result, schedule, data, program, margin, outcome)
        # Busiest frame's PMU cycles beyond the period.
        ends = [
            c for pc, c in outcome.command_cycles if pc == len(program.words) - 2 - (frames > 1)
        ]
        starts = [c for pc, c in outcome.command_cycles if pc == program.frame_start]
        over = max((e - s for s, e in zip(starts, ends, strict=False)), default=0)
        margin += max(16, over - round(period_s * f_ref) + 16)
    raise ValueError(f"no schedule found that the PMU meets at {fps:g} FPS (margin {margin})")


def lookahead_program(
    plan: Plan,
    table: CostTable,
    frames: int,
    hardware_counts: Mapping[BankKind, int] | None = None,
) -> tuple[Program, int]:
    """``plan``'s schedule compiled for the PMU's look-ahead queue, checked on pmu.timing
    (:func:`~voltflow.pmu.compiler.verify_timing`), and the reference cycles per frame it hides:
    how much earlier the first frame's last layer is done than in ``plan.program``."""
    program = compile_schedule(
        plan.schedule, table, frames=frames, hardware_counts=hardware_counts, lookahead=True
    )
    outcome = verify_timing(program, table, hardware_counts)
    last = len(program.launch_layers) - 1
    hidden = plan.predicted_run.launches[last].done_cycle - outcome.launches[last].done_cycle
    return program, hidden
