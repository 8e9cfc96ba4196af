"""`python -m bench.figures`: every figure, CSV, ``summary.json`` and ``results.md``."""

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from voltflow.scheduler.executor import ClusterError, check_cluster, open_executor

from bench.figures import __doc__ as package_doc
from bench.figures.experiments import Options
from bench.figures.markdown import _pct, results_markdown
from bench.figures.plots import plot_fig1, plot_fig2, plot_fig3, plot_fig4, plot_fig5, plot_fig6
from bench.figures.runner import ROOT, run_jobs, run_rtl
from bench.figures.summary import collect
from bench.figures.tables import write_csv, write_tables
from bench.rtl_points import RTL_COLUMNS, plot_fig7


def _cluster(text: str) -> str:
    try:
        return check_cluster(text)
    except ClusterError as exc:  # argparse prints it as "argument --cluster: <message>"
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, compute, write every file; return the exit status."""
    parser = argparse.ArgumentParser(description=(package_doc or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "figures", help="output folder")
    parser.add_argument("--quick", action="store_true", help="a few points per figure (test)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes of the local pool or of --cluster local (default: CPUs)",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDR",
        type=_cluster,
        default=None,
        help="run the jobs on Dask: 'local' (a LocalCluster) or tcp://HOST:PORT of a running "
        "`dask scheduler` (docs/scale.md; needs pip install 'voltflow[cluster]')",
    )
    parser.add_argument(
        "--ilp-time-limit",
        type=float,
        default=None,
        help="CBC time limit per instance in s (default 120, 30 with --quick)",
    )
    parser.add_argument(
        "--rtl",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="figure 7: validate one rate point per network on the RTL (default: on, off with "
        "--quick; about 15 min on 2 cores)",
    )
    parser.add_argument("--rtl-frames", type=int, default=1, help="periods per RTL run (default 1)")
    flags = parser.parse_args(argv)
    if flags.workers is not None and flags.workers < 1:
        parser.error("--workers must be at least 1")
    args = Options(
        out=flags.out,
        quick=flags.quick,
        workers=flags.workers,
        cluster=flags.cluster,
        ilp_time_limit=flags.ilp_time_limit
        if flags.ilp_time_limit is not None
        else (30.0 if flags.quick else 120.0),
        rtl=flags.rtl if flags.rtl is not None else not flags.quick,
        rtl_frames=flags.rtl_frames,
    )
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    # One executor for the solver jobs and the RTL points; the workers of a remote cluster must
    # import the job functions' modules (checked before any job is sent).
    imports = ("bench.figures.experiments", "bench.rtl_points")
    try:
        with contextlib.ExitStack() as stack:
            try:
                executor = stack.enter_context(
                    open_executor(args.cluster, args.workers, imports=imports)
                )
            except ValueError as exc:  # --cluster unusable (ClusterError), --workers with tcp://
                print(f"figures: error: {exc}", file=sys.stderr)
                return 2
            print(f"figures: jobs on {executor.description}", file=sys.stderr)
            run = run_jobs(args, executor)
            data = collect(run, args)
            data.rtl, data.rtl_skipped = run_rtl(args, executor)
    except KeyboardInterrupt:  # the executor ended its local workers; no file is written yet
        print("\nfigures: interrupted; nothing written", file=sys.stderr)
        return 130
    write_tables(data, args.out)
    plot_fig1(data, args.out)
    plot_fig2(data, args.out)
    plot_fig3(data, args.out)
    plot_fig4(data, args.out, args.ilp_time_limit)
    plot_fig5(data, args.out)
    plot_fig6(data, args.out)
    if data.rtl:
        write_csv(args.out / "fig7_rtl_validation.csv", RTL_COLUMNS, data.rtl)
        plot_fig7(data.rtl, data.rtl_skipped, args.out)
    data.summary["rtl"] = data.rtl
    wall = time.perf_counter() - started
    data.summary["wall_time_s"] = wall
    (args.out / "summary.json").write_text(json.dumps(data.summary, indent=2) + "\n")
    (args.out / "results.md").write_text(results_markdown(data, args, wall))
    s = data.summary
    print(f"figures: wrote {args.out} in {wall:.1f} s")
    worst = s["dp_vs_ilp_max_relative_difference"]
    if worst is not None:
        print(
            f"  DP vs ILP: max relative difference {worst:.1e} over "
            f"{s['dp_vs_ilp_proven_instances']} proven instances"
        )
    for network, info in s["networks"].items():
        best = info["max_saving"]["dp_vs_nominal"]["saving"]
        limit = info["nominal_max_rate"]["saving_vs_nominal"]["dp"]
        print(f"  {network}: DP saving vs nominal best {_pct(best)}, at the limit {_pct(limit)}")
    pr = s["pruning"]
    if pr["speedup_max"] is not None:
        print(
            f"  pruning speedup {pr['speedup_min']:.2f}-{pr['speedup_max']:.2f}x "
            f"(median {pr['speedup_median']:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
