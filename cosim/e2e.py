"""The steps of the end-to-end flow: plan (solve + compile + pmu.timing check), measure on the RTL,
analyse the counters against the prediction.

:func:`plan` solves a network's schedule for a rate and compiles it into a PMU program that meets
every deadline; :func:`measure` runs ``frames`` periods of it on the chip's one Verilator build
(accelerator + PMU) and :func:`analyse` turns the measured counters into energy with
:mod:`voltflow.cosim.energy` and compares every layer with the scheduler's prediction.
:func:`voltflow.cosim.flow.run_flow` joins these steps (with the nominal baseline in a second
process) into one call.
"""

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.accel_run import chip_build
from voltflow.cosim.build import TraceFormat
from voltflow.cosim.energy import Energy, dynamic_energy, launch_levels, window_energy
from voltflow.cosim.golden import Case
from voltflow.cosim.pmu_run import PmuRunResult, run_program
from voltflow.cosim.sim_top import sim_bank_counts, uses_attention
from voltflow.pmu.compiler import Program, compile_schedule
from voltflow.pmu.planning import Plan, plan_schedule
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.scheduler.chip import DOMAINS, Chip, GatingPolicy
from voltflow.scheduler.cost import CostTable
from voltflow.scheduler.evaluate import SlackMode
from voltflow.scheduler.instance import Problem
from voltflow.scheduler.network import Network
from voltflow.scheduler.schedule import ScheduleFile
from voltflow.scheduler.solve import Method

__all__ = [
    "ENERGY_TOLERANCE",
    "FrameRow",
    "LayerRow",
    "Plan",
    "RunAnalysis",
    "SecondProcess",
    "analyse",
    "chip_build",
    "default_rate",
    "measure",
    "plan",
]

#: Measured total energy must agree with the prediction to this relative difference.
ENERGY_TOLERANCE = 1e-3


@dataclass(slots=True)
class LayerRow:
    """One schedule layer in one frame: the scheduler's prediction next to the measurement."""

    frame: int
    index: int
    name: str
    voltage_v: tuple[float, ...]
    predicted_cycles: int  # the cost model's layer cycles in the schedule's state
    timing_cycles: int  # pmu.timing's LAUNCH cycles
    measured_cycles: int  # the RTL's LAUNCH cycles
    predicted: dict[str, float]  # dynamic_j, leakage_j, transition_j (switches + wakes), total_j
    measured: Energy = field(default_factory=Energy)

    @property
    def cycles_exact(self) -> bool:
        return self.predicted_cycles == self.timing_cycles == self.measured_cycles

    def measured_parts(self) -> dict[str, float]:
        m = self.measured
        return {
            "dynamic_j": m.dynamic_total_j,
            "leakage_j": m.leakage_total_j + m.sleep_j,
            "transition_j": m.transition_j + m.wake_j,
            "total_j": m.total_j,
        }


@dataclass(slots=True)
class FrameRow:
    """One period."""

    frame: int
    start_cycle: int
    latency_cycles: int  # frame start to the last LAUNCH's done
    predicted_latency_cycles: int  # the same from pmu.timing
    period_cycles: int
    violations: int
    bit_exact: bool
    predicted_j: float
    measured: Energy = field(default_factory=Energy)
    slack: Energy = field(default_factory=Energy)

    @property
    def slack_cycles(self) -> int:
        return self.period_cycles - self.latency_cycles

    @property
    def deadline_met(self) -> bool:
        return self.latency_cycles <= self.period_cycles


@dataclass(slots=True)
class RunAnalysis:
    """A compiled schedule run on the RTL, compared with the scheduler and pmu.timing."""

    layers: list[LayerRow]
    frames: list[FrameRow]
    total: Energy
    predicted_total_j: float
    cycles: int
    overruns: int
    violations: int
    error: str
    timing_exact: bool
    wall_s: float
    sim_wall_s: float
    trace: str | None
    #: The PMU's prologue before the first period (rails set up, the first supplies and banks):
    #: measured, not part of any frame (``total`` is the frames'), so not in the prediction.
    prologue: Energy = field(default_factory=Energy)

    @property
    def energy_difference(self) -> float:
        return self.total.total_j / self.predicted_total_j - 1.0

    def failures(self) -> list[str]:
        """Why the run does not match (empty: it passes)."""
        out = []
        if self.error != "NONE":
            out.append(f"the PMU stopped with error {self.error}")
        bad = [r for r in self.layers if not r.cycles_exact]
        if bad:
            r = bad[0]
            out.append(
                f"cycle mismatch in frame {r.frame} layer {r.index} {r.name}: measured "
                f"{r.measured_cycles}, cost model {r.predicted_cycles}, pmu.timing "
                f"{r.timing_cycles} ({len(bad)} layers differ)"
            )
        if not self.timing_exact:
            out.append("the run's LAUNCH or end cycles differ from pmu.timing's prediction")
        if abs(self.energy_difference) > ENERGY_TOLERANCE:
            out.append(
                f"energy differs by {self.energy_difference:+.4%} (measured "
                f"{self.total.total_j * 1e6:.4f} uJ, predicted {self.predicted_total_j * 1e6:.4f}"
                f" uJ; tolerance {ENERGY_TOLERANCE:.1%})"
            )
        missed = [f.frame for f in self.frames if not f.deadline_met]
        if missed or self.overruns:
            out.append(f"deadline missed in frames {missed} ({self.overruns} overruns)")
        if self.violations:
            out.append(f"{self.violations} overclock/access violations")
        wrong = [f.frame for f in self.frames if not f.bit_exact]
        if wrong:
            out.append(f"output not bit-exact in frames {wrong}")
        return out


def default_rate(table: CostTable, share: float = 0.5) -> float:
    """``share`` (default half) of the highest rate the chip can run the network at (every
    domain at the top voltage), rounded to an integer: a rate met with slack."""
    top = table.state_index([max(table.levels_v)] * len(DOMAINS))
    return float(max(1, round(share / table.latency_s(top))))


def _predicted_layer(
    table: CostTable, schedule: ScheduleFile, i: int, transition_j: float, sleep_entry: int
) -> dict[str, float]:
    layer = table.layers[i]
    s = schedule.layers[i].state
    switches = schedule.layers[i].switches_in
    if i == 0:
        switches = sleep_entry if schedule.slack_mode is SlackMode.SLEEP else schedule.wrap_switches
    dyn = float(layer.dynamic_total_j[s])
    leak = float(layer.leakage_j[s])
    trans = switches * transition_j + layer.wake_j
    return {
        "dynamic_j": dyn,
        "leakage_j": leak,
        "transition_j": trans,
        "total_j": dyn + leak + trans,
    }


def analyse(
    run: PmuRunResult,
    chip: Chip,
    table: CostTable,
    schedule: ScheduleFile,
    program: Program,
    frames: int,
) -> RunAnalysis:
    """Compare a run of ``program`` (compiled from ``schedule``) with the prediction."""
    gating = table.policy is not GatingPolicy.NO_PG
    n = len(table.layers)
    period = round(schedule.period_s * chip.reference_mhz * 1e6)
    sleep_entry = schedule.sleep_entry_switches
    names = [name for name, _ in COUNTERS]
    rows_stats = run.op_stats
    frame_rows: list[FrameRow] = []
    layer_rows: list[LayerRow] = []
    exact = {f: e for f, e in enumerate(run.frame_exact)}

    def new_frame(f: int, start: int) -> FrameRow:
        row = FrameRow(f, start, 0, 0, period, 0, exact.get(f, False), schedule.energy_j)
        frame_rows.append(row)
        return row

    # The first period starts at SET_PERIOD, the prologue's last command (pmu.timing's cycle,
    # which the RTL's LAUNCH stamps are checked against).
    period_start = next(
        (c for pc, c in run.predicted.command_cycles if pc == program.frame_start - 1), 0
    )
    frame = new_frame(0, period_start)
    prev: dict[str, int] | None = None
    prev_now = 0
    launch = 0
    stat_row = 0
    current: LayerRow | None = None
    # The running launch's open segment: the PMU's and the accelerator's counters at its start
    # (a look-ahead's supply change ends one segment and starts the next).
    segment_power: dict[str, int] | None = None
    segment_activity = np.zeros(len(names), dtype=np.int64)
    frame_before: dict[str, int] | None = None
    prologue = Energy()

    def segment_energy(power: dict[str, int], activity: np.ndarray) -> Energy:
        """Dynamic energy of the open segment, up to ``power``/``activity``."""
        counts = dict(zip(names, (int(x) for x in activity - segment_activity), strict=True))
        levels = launch_levels(chip, power, segment_power)
        return dynamic_energy(chip, counts, levels, gating=gating)

    for snap in run.snapshots:
        window = window_energy(chip, snap.counters, prev, snap.now - prev_now)
        if snap.event == "S" and launch // n != frame.frame:
            # No period boundary was seen (an overrun skips the wait): start the frame here.
            frame_before = snap.counters
            frame = new_frame(launch // n, snap.now)
        if snap.event == "S":
            i = launch - frame.frame * n
            if not 0 <= i < n:
                raise ValueError(f"LAUNCH {launch} does not belong to frame {frame.frame}")
            got = run.launches[launch]
            s = schedule.layers[i].state
            current = LayerRow(
                frame=frame.frame,
                index=i,
                name=table.layers[i].name,
                voltage_v=tuple(schedule.layers[i].voltage_v),
                predicted_cycles=int(table.layers[i].ref_cycles[s]),
                timing_cycles=got.predicted_cycles,
                measured_cycles=got.cycles,
                predicted=_predicted_layer(
                    table, schedule, i, chip.transition_energy_j, sleep_entry
                ),
            )
            current.measured = current.measured + window
            layer_rows.append(current)
            segment_power = snap.counters
            segment_activity = (
                rows_stats[stat_row - 1, 1:] if stat_row else np.zeros(len(names), np.int64)
            )
        elif snap.event == "C":  # a look-ahead changed a supply while the ops run
            assert current is not None
            activity = np.array(snap.activity, dtype=np.int64)
            current.measured = current.measured + window + segment_energy(snap.counters, activity)
            segment_power, segment_activity = snap.counters, activity
        elif snap.event == "D":
            assert current is not None
            got = run.launches[launch]
            last = stat_row + got.count - 1
            stat_row = last + 1
            current.measured = (
                current.measured + window + segment_energy(snap.counters, rows_stats[last, 1:])
            )
            frame.latency_cycles = snap.now - frame.start_cycle
            frame.predicted_latency_cycles = (
                run.predicted.launches[launch].done_cycle - frame.start_cycle
                if launch < len(run.predicted.launches)
                else -1
            )
            launch += 1
        elif snap.event == "B":  # SET_PERIOD: the first one ends the prologue
            if launch == 0:
                prologue = prologue + window
            else:
                frame.slack = frame.slack + window
        else:  # F: the period ended
            frame.slack = frame.slack + window
            frame.violations = _violations(snap.counters, frame_before)
            frame_before = snap.counters
            frame = new_frame(frame.frame + 1, snap.now)
        prev, prev_now = snap.counters, snap.now
    # After the last period: LOOP and HALT (part of the last frame's slack).
    tail = window_energy(chip, run.counters, prev, run.end_cycle + 1 - prev_now)
    if frame_rows[-1].latency_cycles == 0 and len(frame_rows) > frames:
        frame_rows.pop()
    frame_rows[-1].slack = frame_rows[-1].slack + tail
    if frame_rows[-1].violations == 0:
        frame_rows[-1].violations = _violations(run.counters, frame_before)
    for f in frame_rows:
        f.measured = f.slack
    for r in layer_rows:
        frame_rows[r.frame].measured = frame_rows[r.frame].measured + r.measured
    total = Energy()
    for f in frame_rows:
        total = total + f.measured
    return RunAnalysis(
        layers=layer_rows,
        frames=frame_rows,
        total=total,
        predicted_total_j=frames * schedule.energy_j,
        cycles=run.end_cycle + 1,
        overruns=run.counters["overruns"],
        violations=run.violations,
        error=run.error.name,
        timing_exact=run.timing_exact,
        wall_s=run.wall_s,
        sim_wall_s=run.sim_wall_s,
        trace=None if run.trace is None else str(run.trace),
        prologue=prologue,
    )


def _violations(after: dict[str, int], before: dict[str, int] | None) -> int:
    return sum(after[k] - (before[k] if before else 0) for k in ("overclock_count", "access_count"))


class SecondProcess:
    """``fn(*args, **kwargs)`` running in a forked process (the baseline runs beside the main run).

    The process leads its own process group, so the terminal's Ctrl-C reaches the parent only,
    and :meth:`stop` ends it together with the simulator it started.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_second, args=(send, fn, args, kwargs))
        self._process.start()
        send.close()

    def result(self) -> Any:
        """Wait for the process and return what ``fn`` returned (or raise what it raised)."""
        try:
            ok, value = self._receive.recv()
        except EOFError:
            raise RuntimeError(f"the second process ended ({self._process.exitcode})") from None
        self._process.join()
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        """End the process and its children at once (a no-op once it has finished)."""
        if self._process.is_alive() and self._process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        self._process.join()


def _second(send: Any, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    os.setpgrp()
    try:
        send.send((True, fn(*args, **kwargs)))
    except BaseException as exc:  # handed to the parent, which raises it
        send.send((False, exc))


def measure(
    network: Network,
    table: CostTable,
    schedule: ScheduleFile,
    frames: int,
    seed: int,
    run_dir: Path | None,
    waves: TraceFormat | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    *,
    case: Case | None = None,
    solved_on: CostTable | None = None,
    lookahead: bool = False,
) -> tuple[RunAnalysis, Program]:
    """Compile ``schedule``, run it for ``frames`` periods on the chip's build and analyse it.

    ``table`` is the cost table of ``network`` on its chip for the schedule's gating policy (on a
    sparsity-aware chip: this input's exact one); ``solved_on`` the table the schedule was solved
    on, when another (a profile's bound: the compiler checks the schedule's times against it);
    ``case`` the weights and input (None: drawn from ``seed``); ``lookahead``: compile for the
    PMU's look-ahead queue. The arguments pickle (the baseline runs in a second process with
    them, without ``progress``).
    """
    chip = table.chip
    counts = sim_bank_counts(chip, table.memory)
    program = compile_schedule(
        schedule, solved_on or table, frames=frames, hardware_counts=counts, lookahead=lookahead
    )
    verilator_build = chip_build(chip, counts, waves, attention=uses_attention(network))
    run = run_program(
        network,
        chip,
        program.words,
        seed=seed,
        case=case,
        run_dir=run_dir,
        verilator_build=verilator_build,
        waves=waves is not None,
        progress=progress,
    )
    return analyse(run, chip, table, schedule, program, frames), program


def plan(
    table: CostTable,
    problem: Problem,
    fps: float,
    rails: int,
    method: str,
    frames: int,
    provenance: dict[str, Any],
) -> Plan:
    """:func:`pmu.planning.plan_schedule` for the simulation build of ``table``'s chip (its bank
    size class)."""
    counts = sim_bank_counts(table.chip, table.memory)
    return plan_schedule(
        table, problem, fps, rails, Method(method), frames, provenance, hardware_counts=counts
    )
