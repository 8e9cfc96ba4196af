"""Solver benchmark: exact DP vs the ILP, the ILP back-ends (CBC vs HiGHS) against each other, and
a rate sweep. Prints, never asserts.

Usage::

    python -m bench.solvers [INSTANCE.json ...] [--fps 50] [--rails 3] [--ilp-time-limit 300]
                            [--sweep INSTANCE.json] [--no-ilp]

Without instance arguments it runs the PowerFlow-DNN artifact instances from
``../shared/reference/instances`` (beside the clone) and sweeps the 9-level one from 1 FPS to the
highest feasible rate.
"""

import argparse
import math
import sys
import time
from pathlib import Path

from voltflow.scheduler.dp import min_period, solve_dp
from voltflow.scheduler.evaluate import evaluate
from voltflow.scheduler.ilp import IlpStatus, available_backends, default_backend, solve_ilp
from voltflow.scheduler.instance import Problem, load_instance
from voltflow.scheduler.texttable import format_table

ARTIFACTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "instances"
DEFAULT = [ARTIFACTS / f"squeezenet-pfdnn-{n}lv.json" for n in (3, 5, 6, 9)]


def compare(paths: list[Path], fps: float, rails: int, ilp_limit: float | None) -> None:
    """DP (cold: preparation included; warm: cached) and ILP on each instance at one rate."""
    compare_problems([(p.stem, load_instance(p), fps) for p in paths], rails, ilp_limit)


def compare_problems(
    items: list[tuple[str, Problem, float]], rails: int, ilp_limit: float | None
) -> None:
    """DP and ILP on each (label, instance, rate)."""
    header = [
        "instance",
        "FPS",
        "levels",
        "DP cold s",
        "DP warm s",
        "DP uJ",
        "DP status",
        "ILP s",
        "ILP status",
        "ILP uJ",
        "ILP gap",
        "DP-ILP rel",
        "states/subset",
        "after prune",
        "subsets",
        "skipped",
        "labels",
    ]
    rows = []
    for label, problem, fps in items:
        period = 1.0 / fps
        started = time.perf_counter()
        cold = solve_dp(problem, period, rails)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        warm = solve_dp(problem, period, rails)
        warm_s = time.perf_counter() - started
        stats = warm.stats
        dp_uj = "infeasible" if cold.states is None else f"{cold.energy_j * 1e6:.4f}"
        cells = [
            label,
            f"{fps:g}",
            str(problem.num_levels),
            f"{cold_s:.3f}",
            f"{warm_s:.3f}",
            dp_uj,
            "proven" if cold.proven else f"gap {(cold.energy_j - cold.lower_bound_j):.3g} J",
        ]
        if ilp_limit is None:
            cells += ["-", "skipped", "-", "-", "-"]
        else:
            ilp = solve_ilp(problem, period, rails, time_limit_s=ilp_limit)
            if ilp.states is None:
                cells += [f"{ilp.solve_time_s:.2f}", ilp.status.value, "-", "-", "-"]
            else:
                ilp_j = evaluate(problem, ilp.states, period, rails).energy_j
                relative = (cold.energy_j - ilp_j) / ilp_j
                cells += [
                    f"{ilp.solve_time_s:.2f}",
                    ilp.status.value,
                    f"{ilp_j * 1e6:.4f}",
                    f"{ilp.gap:.2e}",
                    f"{relative:+.1e}",
                ]
        cells += [
            f"{stats['states_per_subset']:.0f}",
            f"{stats['states_per_subset_after_pruning']:.0f}",
            str(stats["rail_subsets"]),
            str(stats["subsets_skipped_by_bound"]),
            str(stats["labels_created"]),
        ]
        rows.append(cells)
        print(f"  done {label}", file=sys.stderr, flush=True)
    print(
        f"\nDP vs ILP, R = {rails} (DP cold includes the per-instance "
        f"preparation; DP warm reuses it)"
    )
    print(format_table(header, rows))


#: The rates the back-end comparison solves each artifact instance at: the test suite's
#: (tests/scheduler/test_solvers.py) and the bench's 50 FPS.
BACKEND_RATES = {3: (50, 80, 100), 5: (50, 80, 100), 6: (50,), 9: (50,)}


def compare_backends(items: list[tuple[str, Problem, float]], rails: int, ilp_limit: float) -> None:
    """Every available ILP back-end on each (label, instance, rate): solve time (model building
    excluded) and status; the energies of proven optima must agree."""
    backends = available_backends()
    header = ["instance", "FPS", "levels"]
    for b in backends:
        header += [f"{b.value} s", f"{b.value} status"]
    header += ["max rel diff", "faster"]
    rows = []
    totals = dict.fromkeys(backends, 0.0)
    wins = dict.fromkeys(backends, 0)
    for label, problem, fps in items:
        cells = [label, f"{fps:g}", str(problem.num_levels)]
        results = {}
        for b in backends:
            result = solve_ilp(problem, 1.0 / fps, rails, time_limit_s=ilp_limit, backend=b)
            results[b] = result
            totals[b] += result.solve_time_s
            cells += [f"{result.solve_time_s:.2f}", result.status.value]
        proven = [r for r in results.values() if r.status is IlpStatus.PROVEN_OPTIMAL]
        if len(proven) > 1:
            base = proven[0].objective_j
            cells.append(f"{max(abs(r.objective_j - base) / base for r in proven):.1e}")
        else:
            cells.append("-")
        fastest = min(
            backends,
            key=lambda b: (
                results[b].status is not IlpStatus.PROVEN_OPTIMAL,
                results[b].solve_time_s,
            ),
        )
        wins[fastest] += 1
        cells.append(fastest.value)
        rows.append(cells)
        print(f"  done {label} {fps:g} FPS", file=sys.stderr, flush=True)
    print(
        f"\nILP back-ends, R = {rails}, time limit {ilp_limit:g} s (default: "
        f"{default_backend().value}, the faster proven one in total)"
    )
    print(format_table(header, rows))
    print(
        "  total solve time: "
        + ", ".join(f"{b.value} {totals[b]:.1f} s" for b in backends)
        + "; fastest proven on: "
        + ", ".join(f"{b.value} {wins[b]}" for b in backends)
    )


def sweep(problem: Problem, rails: int) -> None:
    """DP at every integer rate from 1 FPS to the highest feasible one."""
    started = time.perf_counter()
    fastest, _ = min_period(problem, rails)
    top = math.floor(1.0 / fastest)
    worst = (0.0, 0)
    unproven = 0
    for fps in range(1, top + 1):
        begun = time.perf_counter()
        result = solve_dp(problem, 1.0 / fps, rails)
        spent = time.perf_counter() - begun
        unproven += not result.proven
        worst = max(worst, (spent, fps))
    total = time.perf_counter() - started
    print(
        f"\nSweep of {problem.name!r}, R = {rails}: 1..{top} FPS "
        f"(highest feasible {1.0 / fastest:.2f} FPS)"
    )
    print(
        f"  total {total:.2f} s for {top} rates (preparation included), "
        f"slowest rate {worst[1]} FPS at {worst[0]:.3f} s, unproven {unproven}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="*", type=Path)
    parser.add_argument("--fps", type=float, default=50.0)
    parser.add_argument("--rails", type=int, default=3)
    parser.add_argument("--ilp-time-limit", type=float, default=300.0)
    parser.add_argument("--no-ilp", action="store_true")
    parser.add_argument("--sweep", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = args.instances or DEFAULT
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"instances not found: {', '.join(map(str, missing))}", file=sys.stderr)
        raise SystemExit(2)
    compare(paths, args.fps, args.rails, None if args.no_ilp else args.ilp_time_limit)
    if not args.no_ilp:
        if args.instances:
            items = [(p.stem, load_instance(p), args.fps) for p in paths]
        else:
            items = [
                (p.stem, load_instance(p), float(fps))
                for p, levels in zip(paths, (3, 5, 6, 9), strict=True)
                for fps in BACKEND_RATES[levels]
            ]
        compare_backends(items, args.rails, args.ilp_time_limit)
    target = args.sweep or (DEFAULT[-1] if not args.instances else None)
    if target is not None:
        sweep(load_instance(target), args.rails)


if __name__ == "__main__":
    main()
