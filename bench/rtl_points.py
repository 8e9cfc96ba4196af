"""Figure 7 of `make figures`: one rate point per network, validated on the RTL.

Each point is a `voltflow cosim --net N --json` run (the end-to-end flow of `make cosim`): the
exact DP's schedule at the network's default rate (half the highest rate the chip reaches at its
top voltage), compiled into a PMU program and run for ``frames`` periods on the cycle-accurate
chip, beside the nominal baseline on the same RTL. The figure and CSV put the scheduler's
predictions next to what the RTL measured: cycles per layer, energy, and the saving against the
nominal baseline. Networks the RTL cannot run (generic matmul ops) are listed with the reason.
"""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from voltflow.cosim.e2e import ENERGY_TOLERANCE
from voltflow.scheduler.executor import Executor, open_executor
from voltflow.scheduler.network import OpKind, known_networks, load_network

ROOT = Path(__file__).resolve().parents[1]
#: Columns of ``fig7_rtl_validation.csv``.
RTL_COLUMNS = (
    "network",
    "fps",
    "slack_mode",
    "frames",
    "layers",
    "layers_cycle_exact",
    "measured_cycles",
    "predicted_uj",
    "measured_uj",
    "energy_difference",
    "deadlines_met",
    "bit_exact",
    "violations",
    "nominal_measured_uj",
    "saving_predicted",
    "saving_measured",
    "passed",
    "wall_s",
)
#: Networks of the quick run (CI): the smallest one.
QUICK_NETWORKS = ("ds_cnn",)


def rtl_networks() -> tuple[list[str], dict[str, str]]:
    """The zoo networks the RTL runs, and the others with the reason."""
    runnable: list[str] = []
    skipped: dict[str, str] = {}
    for name in known_networks():
        network = load_network(name)
        generic = [op for op in network.ops if op.kind is OpKind.MATMUL and op.attention is None]
        if generic:
            skipped[name] = (
                f"{len(generic)} generic matmuls: their operand layout is open "
                "(docs/attention.md; docs/rtl.md, Limits)"
            )
        else:
            runnable.append(name)
    return runnable, skipped


def _row(report: dict[str, Any], wall_s: float) -> dict[str, Any]:
    frames = report["frames"]
    layers = report["layers"]
    base = report["baseline"]
    return {
        "network": report["network"],
        "fps": report["fps"],
        "slack_mode": report["slack_mode"],
        "frames": len(frames),
        "layers": len(layers),
        "layers_cycle_exact": sum(
            1
            for layer in layers
            if layer["measured_cycles"] == layer["predicted_cycles"] == layer["timing_cycles"]
        ),
        "measured_cycles": report["totals"]["cycles"],
        "predicted_uj": report["totals"]["predicted_j"] * 1e6,
        "measured_uj": report["totals"]["measured_j"] * 1e6,
        "energy_difference": report["totals"]["difference"],
        "deadlines_met": all(f["deadline_met"] for f in frames),
        "bit_exact": all(f["bit_exact"] for f in frames),
        "violations": sum(f["violations"] for f in frames),
        "nominal_measured_uj": base["measured_j"] * 1e6,
        "saving_predicted": base["saving_predicted"],
        "saving_measured": base["saving_measured"],
        "passed": report["passed"],
        "wall_s": wall_s,
    }


def run_point(
    name: str, run_dir: Path, frames: int, extra_args: Sequence[str] = ()
) -> dict[str, Any]:
    """One ``voltflow cosim`` run, on whichever worker the executor picks: its row, with the
    machine it ran on (``host``) and whether it built the chip there (``chip_build``: the
    seconds of the build, or None when the worker's build cache had it). The run's files go to
    ``run_dir`` on that machine."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "voltflow.cli",
            "cosim",
            "--net",
            name,
            "--frames",
            str(frames),
            "--json",
            "--out-dir",
            str(run_dir),
            *extra_args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"voltflow cosim --net {name} failed:\n{tail}") from None
    row = _row(report, wall)
    row["failures"] = report["failures"]
    row["host"] = socket.gethostname()
    build = report["build"]
    row["chip_build"] = build["build_seconds"] if build["built"] else None
    return row


def run_points(
    networks: Sequence[str],
    out: Path,
    frames: int,
    step: Callable[[str], None],
    extra_args: Sequence[str] = (),
    executor: Executor | None = None,
) -> list[dict[str, Any]]:
    """Run ``voltflow cosim`` for each network on ``executor`` (default: a local process pool
    with one worker per two cores, since each run already uses two processes, the schedule's
    and the nominal baseline's); rows in the order of ``networks``, ``step`` called as each
    finishes. Each run's files (report, layers CSV, schedule, ROM, plots) go to ``out/<net>``
    on the machine that ran it. ``extra_args``: further ``voltflow cosim`` arguments (e.g.
    ``--hw``)."""
    if executor is None:
        with open_executor(None, max(1, (os.cpu_count() or 1) // 2)) as pool:
            return run_points(networks, out, frames, step, extra_args, pool)
    # Each run is two simulations at once (the schedule's and the baseline's): on this machine's
    # workers, at most one run per two workers, so that runs do not slow each other down (their
    # wall times are reported); a remote cluster's workers are its own to share.
    at_once = max(1, executor.workers // 2) if executor.local else executor.workers
    queue = list(networks)
    futures: dict[Any, str] = {}
    rows: dict[str, dict[str, Any]] = {}
    while queue or futures:
        while queue and len(futures) < at_once:
            name = queue.pop(0)
            futures[executor.submit(run_point, name, out / name, frames, tuple(extra_args))] = name
        for future in executor.wait_any(futures):
            name = futures.pop(future)
            row = future.result()
            rows[name] = row
            verdict = "pass" if row["passed"] else "FAIL: " + "; ".join(row["failures"])
            where = "" if executor.local else f" on {row['host']}"
            build = row["chip_build"]
            built = f"chip built in {build:.0f} s" if build is not None else "chip cached"
            step(
                f"rtl {name}: {row['layers_cycle_exact']}/{row['layers']} layers cycle-exact, "
                f"energy {row['energy_difference']:+.4%}, {verdict} ({row['wall_s']:.0f} s{where}; "
                f"{built})"
            )
    return [rows[name] for name in networks]


def plot_fig7(rows: Sequence[dict[str, Any]], skipped: dict[str, str], out: Path) -> None:
    """Saving vs nominal (predicted and measured on the RTL) and the energy difference."""
    names = [r["network"] for r in rows]
    x = list(range(len(rows)))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(7.0, 0.9 * len(rows) + 3), 7), dpi=150, sharex=True
    )
    width = 0.38
    top.bar(
        [i - width / 2 for i in x],
        [100 * r["saving_predicted"] for r in rows],
        width,
        label="predicted by the scheduler",
        color="tab:blue",
    )
    top.bar(
        [i + width / 2 for i in x],
        [100 * r["saving_measured"] for r in rows],
        width,
        label="measured on the RTL (counters -> energy model)",
        color="tab:red",
    )
    for i, r in enumerate(rows):
        top.text(i, 100 * r["saving_measured"] + 0.5, f"{r['fps']:g} FPS", ha="center", fontsize=7)
    top.set_ylabel("energy saving vs nominal (%)")
    top.set_title("RTL-validated points: exact DP schedule vs the nominal baseline, same RTL")
    top.legend(fontsize=8, loc="lower right")
    top.grid(axis="y", alpha=0.3)
    diffs = [max(abs(r["energy_difference"]) * 100, 1e-6) for r in rows]
    colors = ["tab:green" if r["passed"] else "tab:red" for r in rows]
    bottom.bar(x, diffs, 0.6, color=colors)
    tolerance = ENERGY_TOLERANCE * 100
    bottom.axhline(tolerance, color="grey", ls="--", lw=1)
    bottom.text(
        len(rows) - 0.5,
        tolerance,
        f" tolerance {tolerance:g} %",
        va="bottom",
        ha="right",
        fontsize=8,
    )
    bottom.set_yscale("log")
    bottom.set_ylabel("|measured - predicted| energy (%)")
    bottom.set_xticks(x)
    bottom.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    bottom.set_xlabel("network (every layer cycle-exact and bit-exact when green)")
    bottom.grid(axis="y", alpha=0.3)
    if skipped:
        fig.text(
            0.01,
            0.005,
            "not run: " + ", ".join(skipped) + " (generic matmul ops: no operand layout)",
            fontsize=7,
            color="grey",
        )
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(out / "fig7_rtl_validation.png")
    plt.close(fig)


def markdown(rows: Sequence[dict[str, Any]], skipped: dict[str, str], frames: int) -> list[str]:
    """The README's table of RTL-validated points."""
    lines = [
        "### RTL-validated points",
        "",
        f"`voltflow cosim --net N --frames {frames}` per network (the exact DP at the default "
        "rate, `rram_pg`, 3 rails), measured on the cycle-accurate RTL beside the nominal "
        "baseline (figure `fig7_rtl_validation.png`, CSV `fig7_rtl_validation.csv`):",
        "",
        "| network | FPS | slack | layers cycle-exact | cycles | predicted uJ | measured uJ "
        "| difference | bit-exact | deadlines | saving predicted | saving measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['fps']:g} | {r['slack_mode']} | "
            f"{r['layers_cycle_exact']}/{r['layers']} | {r['measured_cycles']:,} | "
            f"{r['predicted_uj']:.3f} | {r['measured_uj']:.3f} | "
            f"{r['energy_difference']:+.4%} | {'yes' if r['bit_exact'] else 'NO'} | "
            f"{'met' if r['deadlines_met'] else 'MISSED'} | {r['saving_predicted']:.2%} | "
            f"{r['saving_measured']:.2%} |"
        )
    for name, why in skipped.items():
        lines.append(f"| {name} | - | - | not run: {why} | | | | | | | | |")
    lines.append("")
    return lines
