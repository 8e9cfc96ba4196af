"""Runs every job of every figure on one executor (the process pool, or a Dask cluster with
``--cluster``), with a progress line; then figure 7's RTL runs on the same executor."""

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voltflow.scheduler.chip import DOMAINS, GatingPolicy, load_chip
from voltflow.scheduler.executor import Executor, JobFuture

from bench.figures.experiments import (
    CHUNK,
    GRIDS,
    NETWORKS,
    RAIL_POINTS,
    TINY_NETWORKS,
    TRANSITION_FPS,
    TRANSITION_NJ,
    Options,
    _instance,
    job_breakdown,
    job_dp_time,
    job_ilp,
    job_limits,
    job_rails,
    job_sweep,
    job_tiny,
    job_transition,
    sweep_rates,
)
from bench.rtl_points import QUICK_NETWORKS, rtl_networks, run_points

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class JobResults:
    """What the executor computed: each job kind's (arguments, result) pairs, and the plan's
    numbers."""

    limits: dict[str, dict[str, Any]]  # job_limits per network
    fig4_fps: dict[str, float]  # fig4's rate per network (80 % of the nominal limit)
    fig3_points: dict[str, float]  # fig3's rate per network
    workers: int
    executor: str  # its description, e.g. "process pool, 2 workers"
    results: dict[str, list[tuple[tuple[Any, ...], Any]]]


class Progress:
    """One rewritten line on a terminal; otherwise a line every 5 % and one per solver-time job."""

    def __init__(self, total: int, stream: Any = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.next_percent = 5
        self.started = time.perf_counter()

    def step(self, text: str, always: bool = False) -> None:
        self.done += 1
        percent = 100 * self.done / self.total
        elapsed = time.perf_counter() - self.started
        if self.tty:
            width = 30
            filled = width * self.done // self.total
            line = (
                f"\rfigures [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{elapsed:5.0f} s  {text}"
            )
            self.stream.write(line[:150].ljust(150))
        elif always or percent >= self.next_percent:
            self.stream.write(
                f"figures: {self.done}/{self.total} jobs ({percent:.0f} %), "
                f"{elapsed:.0f} s: {text}\n"
            )
            while self.next_percent <= percent:
                self.next_percent += 5
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _describe(kind: str, args: tuple, result: Any) -> tuple[str, bool]:
    """Progress text of a finished job, and whether it is a solver-time job (always shown)."""
    if kind == "ilp":
        r = result
        return (
            f"ilp {r['network']} {r['levels']} levels {r['fps']:g} FPS: {r['status']} "
            f"in {r['time_s']:.2f} s",
            True,
        )
    if kind == "dp-time":
        r = result
        return (
            f"dp {r['network']} {r['levels']} levels {r['fps']:g} FPS: cold {r['time_s']:.3f} s, "
            f"pruning speedup {r['pruning_speedup']:.2f}x",
            True,
        )
    if kind == "sweep":
        network, method, rates = args
        return f"sweep {network} {method} {rates[0]:g}..{rates[-1]:g} FPS", False
    return " ".join([kind, *(f"{a:g}" if isinstance(a, float) else str(a) for a in args)]), False


def run_jobs(args: Options, executor: Executor) -> JobResults:
    """Every computation of every figure, on ``executor``."""
    quick = args.quick
    chip = load_chip()
    networks_fig4 = ("squeezenet",) if quick else NETWORKS
    grids_fig4 = (3, 5) if quick else tuple(GRIDS)
    fig4_fps = {}
    for network in networks_fig4:
        _, table = _instance(network, GatingPolicy.RRAM_PG)
        nominal = table.latency_s(table.state_index([chip.nominal_v] * len(DOMAINS)))
        fig4_fps[network] = round(0.8 / nominal, 1)  # 80 % of the highest nominal rate
    fig3_points = {"squeezenet": 60.0} if quick else RAIL_POINTS
    rails_range = range(1, 4) if quick else range(1, 6)
    transition = (0, 1, 100, 1000) if quick else TRANSITION_NJ

    jobs: list[tuple[str, Callable[..., Any], tuple]] = []
    # The ILPs first: they are the longest jobs.
    ilps = [(n, lv, fig4_fps[n], args.ilp_time_limit) for n in networks_fig4 for lv in grids_fig4]
    ilps.sort(key=lambda a: (-a[1], a[0]))  # big grids first
    jobs += [("ilp", job_ilp, a) for a in ilps]

    futures: dict[JobFuture[Any], tuple[str, tuple]] = {}
    results: dict[str, list[tuple[tuple, Any]]] = defaultdict(list)
    for kind, fn, a in jobs:
        futures[executor.submit(fn, *a)] = (kind, a)
    # While CBC runs, the bounds of every sweep (fast) here.
    limits = {n: job_limits(n) for n in NETWORKS}
    rest: list[tuple[str, Callable[..., Any], tuple]] = []
    rest += [
        ("rails", job_rails, (n, f, r, "dp"))
        for n, f in fig3_points.items()
        for r in reversed(rails_range)
    ]
    rest += [
        ("dp-time", job_dp_time, (n, lv, fig4_fps[n])) for n in networks_fig4 for lv in grids_fig4
    ]
    for network in NETWORKS:
        rates = sweep_rates(network, limits[network], quick)
        for method in ("dp", "gating-greedy", "greedy"):
            for start in range(0, len(rates), CHUNK):
                chunk = tuple(rates[start : start + CHUNK])
                rest.append(("sweep", job_sweep, (network, method, chunk)))
        for method in ("nominal", "gating"):
            rest.append(("sweep", job_sweep, (network, method, tuple(rates))))
    rest += [
        ("rails", job_rails, (n, f, r, "even-rails"))
        for n, f in fig3_points.items()
        for r in rails_range
    ]
    rest += [("transition", job_transition, (f, e)) for f in TRANSITION_FPS for e in transition]
    rest.append(("breakdown", job_breakdown, ()))
    rest += [("tiny", job_tiny, (n,)) for n in TINY_NETWORKS]
    for kind, fn, a in rest:
        futures[executor.submit(fn, *a)] = (kind, a)
    progress = Progress(len(futures))
    for future in executor.as_completed(futures):
        kind, a = futures[future]
        result = future.result()
        results[kind].append((a, result))
        text, always = _describe(kind, a, result)
        progress.step(text, always)
    progress.close()
    return JobResults(
        limits, fig4_fps, fig3_points, executor.workers, executor.description, dict(results)
    )


def run_rtl(args: Options, executor: Executor) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Figure 7's RTL runs (``voltflow cosim`` per network, on ``executor``), after the solver
    jobs."""
    runnable, skipped = rtl_networks()
    if not args.rtl:
        return [], skipped
    networks = [n for n in runnable if n in QUICK_NETWORKS] if args.quick else runnable
    progress = Progress(len(networks))
    runs = ROOT / "build" / "figures-rtl"  # each run's own report and plots (not committed)
    rows = run_points(
        networks, runs, args.rtl_frames, lambda text: progress.step(text, True), (), executor
    )
    progress.close()
    return rows, skipped
