"""Energy versus rate for several methods: points solved in parallel (scheduler/executor.py), rows
written as they end."""

import csv
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from voltflow.scheduler.documents import short
from voltflow.scheduler.executor import LOCAL, check_cluster, open_executor
from voltflow.scheduler.instance import Problem
from voltflow.scheduler.solve import InfeasibleError, Method, NoSolutionError, solve

__all__ = ["MAX_POINTS", "SweepInterrupted", "SweepPoint", "TextSink", "parse_rates", "run_sweep"]

#: Most (rate, method) points one sweep may have (each is a solve: hours beyond this).
MAX_POINTS = 100_000

COLUMNS = (
    "fps",
    "method",
    "status",
    "energy_j",
    "layer_energy_j",
    "transition_energy_j",
    "slack_energy_j",
    "slack_mode",
    "switches",
    "rails_used_v",
    "latency_s",
    "solve_time_s",
)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    fps: float
    method: Method
    row: dict[str, object]


@dataclass(frozen=True, slots=True)
class _Options:
    """What every worker needs besides the problems."""

    instance_of: dict[str, str]  # method value -> key into the problems
    rails: int
    nominal_v: float | None
    time_limit_s: float


def parse_rates(text: str) -> tuple[float, ...]:
    """``"1:150"`` (step 1), ``"1:150:5"`` or ``"10,30,60"`` -> rates in FPS."""
    try:
        if ":" in text:
            parts = [float(x) for x in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            lo, hi = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1.0
            if not all(map(math.isfinite, parts)) or step <= 0 or lo <= 0 or hi < lo:
                raise ValueError
            count = (hi - lo) / step + 1e-9
            if count >= MAX_POINTS:
                raise OverflowError(f"{count + 1:.3g}")
            return tuple(lo + i * step for i in range(int(count) + 1))
        rates = tuple(float(x) for x in text.split(","))
        if not rates or not all(0 < r < math.inf for r in rates):
            raise ValueError
        if len(rates) > MAX_POINTS:
            raise OverflowError(str(len(rates)))
        return rates
    except OverflowError as exc:
        raise ValueError(
            f"--fps {short(text)} gives {exc} rates; a sweep takes at most {MAX_POINTS:,} "
            "(use a larger STEP)"
        ) from None
    except ValueError:
        raise ValueError(
            f"--fps must be LO:HI, LO:HI:STEP or a comma list of positive rates, not {short(text)}"
        ) from None


class TextSink(Protocol):
    """Where rows go: a text file or anything with ``write`` and ``flush``."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: the workers are gone, ``points`` are the rows already written."""

    def __init__(self, points: list["SweepPoint"], total: int) -> None:
        super().__init__(f"{len(points)} of {total} points done")
        self.points = points
        self.total = total


def _solve_point(
    problems: dict[str, Problem], options: _Options, fps: float, method: Method
) -> SweepPoint:
    """One point, on a worker (``problems`` reach each worker once: ``Executor.share``)."""
    problem = problems[options.instance_of[method.value]]
    try:
        r = solve(
            problem,
            1.0 / fps,
            options.rails,
            method,
            time_limit_s=options.time_limit_s,
            nominal_v=options.nominal_v,
        )
    except (InfeasibleError, NoSolutionError) as exc:
        status = "infeasible" if isinstance(exc, InfeasibleError) else "no-solution"
        return SweepPoint(fps, method, {"fps": fps, "method": method.value, "status": status})
    ev = r.evaluation
    row: dict[str, object] = {
        "fps": fps,
        "method": method.value,
        "status": r.status.value,
        "energy_j": ev.energy_j,
        "layer_energy_j": ev.layer_energy_j,
        "transition_energy_j": ev.transition_energy_j,
        "slack_energy_j": ev.slack_energy_j,
        "slack_mode": ev.slack_mode.value if ev.slack_mode else "",
        "switches": ev.switches,
        "rails_used_v": " ".join(f"{v:g}" for v in ev.rails_used_v),
        "latency_s": ev.latency_s,
        "solve_time_s": r.solve_time_s,
    }
    return SweepPoint(fps, method, row)


def run_sweep(
    problems: dict[str, Problem],
    instance_of: dict[str, str],
    rates: Sequence[float],
    methods: Sequence[Method],
    rails: int,
    nominal_v: float | None,
    out: TextSink,
    time_limit_s: float = 60.0,
    workers: int | None = None,
    progress: IO[str] | None = sys.stderr,
    cluster: str | None = None,
) -> list[SweepPoint]:
    """Solve every (rate, method) point on the executor of ``cluster`` (None: the local process
    pool; ``"local"`` or ``"tcp://HOST:PORT"``: Dask, scheduler/executor.py), writing CSV rows
    as they finish.

    Arguments are checked, and the executor started, before anything is written. Ctrl-C stops
    the local workers and their solver processes at once (a remote cluster's running points
    finish there, unread) and raises :class:`SweepInterrupted` with the points already written
    (each row is whole and flushed as it ends).
    """
    jobs = [(fps, m) for fps in rates for m in methods]
    if not jobs:
        raise ValueError("a sweep needs at least one rate and one method")
    if len(jobs) > MAX_POINTS:
        raise ValueError(f"{len(jobs):,} points; a sweep takes at most {MAX_POINTS:,}")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer, not {short(workers)}")
    if cluster is not None:
        check_cluster(cluster)
    if cluster in (None, LOCAL):  # no more local workers than points
        workers = min(len(jobs), workers or os.cpu_count() or 1)
    options = _Options(instance_of, rails, nominal_v, time_limit_s)
    points: list[SweepPoint] = []
    try:
        with open_executor(cluster, workers) as executor:
            writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            out.flush()
            if progress is not None:
                progress.write(f"sweep: {len(jobs)} points on {executor.description}\n")
            shared = executor.share(problems)
            solved = executor.map_unordered(
                _solve_point, ((shared, options, fps, m) for fps, m in jobs)
            )
            for done, point in enumerate(solved, start=1):
                writer.writerow(point.row)
                out.flush()
                points.append(point)
                if progress is not None:
                    _bar(progress, done, len(jobs), point)
    except KeyboardInterrupt:  # leaving the executor's block ended its workers
        if progress is not None:
            progress.write("\n")
        raise SweepInterrupted(points, len(jobs)) from None
    if progress is not None:
        progress.write("\n")
    return sorted(points, key=lambda p: (p.fps, list(methods).index(p.method)))


def _bar(stream: IO[str], done: int, total: int, point: SweepPoint) -> None:
    width = 30
    filled = width * done // total
    stream.write(
        f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  "
        f"last: {point.fps:g} FPS {point.method.value:<14}"
    )
    stream.flush()
