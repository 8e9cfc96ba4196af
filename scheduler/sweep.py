"""Energy versus rate for several methods: points solved in parallel, rows written as they end."""

import csv
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import IO

from voltflow.scheduler.instance import Problem
from voltflow.scheduler.solve import InfeasibleError, Method, NoSolutionError, solve

__all__ = ["SweepPoint", "parse_rates", "run_sweep"]

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
            if step <= 0 or lo <= 0 or hi < lo:
                raise ValueError
            count = int((hi - lo) / step + 1e-9) + 1
            return tuple(lo + i * step for i in range(count))
        rates = tuple(float(x) for x in text.split(","))
        if not rates or min(rates) <= 0:
            raise ValueError
        return rates
    except ValueError:
        raise ValueError(
            f"--fps must be LO:HI, LO:HI:STEP or a comma list of positive rates, not {text!r}"
        ) from None


# Worker state: each process receives the problems once, then solves many points.
_PROBLEMS: dict[str, Problem] = {}
_OPTIONS: list[_Options] = []


def _init(problems: dict[str, Problem], options: _Options) -> None:
    _PROBLEMS.update(problems)
    _OPTIONS[:] = [options]


def _solve_point(fps: float, method: Method) -> SweepPoint:
    options = _OPTIONS[0]
    problem = _PROBLEMS[options.instance_of[method.value]]
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
    out: IO[str],
    time_limit_s: float = 60.0,
    workers: int | None = None,
    progress: IO[str] | None = sys.stderr,
) -> list[SweepPoint]:
    """Solve every (rate, method) point with a process pool, writing CSV rows as they finish."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    options = _Options(instance_of, rails, nominal_v, time_limit_s)
    jobs = [(fps, m) for fps in rates for m in methods]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    points = []
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(problems, options)) as pool:
        futures = [pool.submit(_solve_point, fps, m) for fps, m in jobs]
        for done, point in enumerate(_completed(futures), start=1):
            writer.writerow(point.row)
            out.flush()
            points.append(point)
            if progress is not None:
                _bar(progress, done, len(jobs), point)
    if progress is not None:
        progress.write("\n")
    return sorted(points, key=lambda p: (p.fps, list(methods).index(p.method)))


def _completed(futures: list) -> Iterator[SweepPoint]:
    for future in as_completed(futures):
        yield future.result()


def _bar(stream: IO[str], done: int, total: int, point: SweepPoint) -> None:
    width = 30
    filled = width * done // total
    stream.write(
        f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  "
        f"last: {point.fps:g} FPS {point.method.value:<14}"
    )
    stream.flush()
