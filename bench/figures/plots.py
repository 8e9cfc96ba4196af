"""Figures 1-6 as PNG files (figure 7 is drawn by bench/rtl_points.py)."""

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.cost import Component

from bench.figures.experiments import (
    COLOR,
    GRIDS,
    LABEL,
    METHODS,
    NET_COLOR,
    NETWORKS,
    RAILS,
    SAVING_FPS,
    TIMING_REPEATS,
    TRANSITION_FPS,
)
from bench.figures.summary import Figures


def _series(rows: Sequence[dict[str, Any]], method: str) -> tuple[list[float], list[float]]:
    pts = sorted((r["fps"], r.get("energy_j")) for r in rows if r["method"] == method)
    known = [(f, e) for f, e in pts if e is not None]
    return [f for f, _ in known], [e * 1e6 for _, e in known]


def plot_fig1(data: Figures, out: Path) -> None:
    rows = [r for r in data.sweep if r["network"] == "squeezenet"]
    info = data.summary["networks"]["squeezenet"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=150)
    for m in METHODS:
        x, y = _series(rows, m)
        ax.plot(x, y, color=COLOR[m], label=LABEL[m], lw=1.8, marker="o" if len(x) < 15 else None)
    limit = info["nominal_max_fps"]
    ax.axvline(limit, color="grey", ls=":", lw=1)
    ax.text(
        limit,
        ax.get_ylim()[1],
        f" highest nominal rate {limit:.1f} FPS",
        rotation=90,
        va="top",
        ha="left",
        fontsize=8,
        color="grey",
    )
    ax.set_xlabel("target rate (FPS)")
    ax.set_ylabel("energy per period (µJ)")
    ax.set_title(f"{info['title']}: energy per period vs target rate (R = {RAILS} rails)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "fig1_squeezenet_rate.png")
    plt.close(fig)


def plot_fig2(data: Figures, out: Path) -> None:
    rows = data.fig2
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=150, sharey=True)
    width = 0.8 / len(METHODS)
    for ax, rate, title in (
        (axes[0], "max", "at the highest rate the nominal baseline meets"),
        (axes[1], "half", "at half of that rate"),
    ):
        ticks = []
        for i, network in enumerate(NETWORKS):
            sel = {r["method"]: r for r in rows if r["network"] == network and r["rate"] == rate}
            ticks.append(f"{network}\n{sel['nominal']['fps']:.1f} FPS")
            for j, m in enumerate(METHODS):
                value = sel[m]["normalised_energy"]
                if value is None:
                    continue
                x = i + (j - (len(METHODS) - 1) / 2) * width
                ax.bar(x, value, width, color=COLOR[m], label=LABEL[m] if i == 0 else None)
                ax.text(
                    x,
                    value + 0.01,
                    f"{value:.2f}",
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                )
        ax.set_xticks(range(len(NETWORKS)), ticks, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1.18)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("energy per period / nominal baseline's (1 = nominal)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(METHODS), fontsize=8)
    fig.suptitle(f"Normalised energy per period, four networks (R = {RAILS} rails)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / "fig2_networks.png")
    plt.close(fig)


def plot_fig3(data: Figures, out: Path) -> None:
    rows = data.fig3
    nets = [n for n in NETWORKS if any(r["network"] == n for r in rows)]
    fig, axes = plt.subplots(
        2,
        len(nets),
        figsize=(7 * len(nets), 7.2),
        dpi=150,
        squeeze=False,
        gridspec_kw={"height_ratios": (2, 1)},
    )
    for k, network in enumerate(nets):
        ax, low = axes[0, k], axes[1, k]
        sel = [r for r in rows if r["network"] == network]
        fps = sel[0]["fps"]
        lines = {}
        for method, name, key in (
            ("even-rails", "evenly spaced", "rails_offered_v"),
            ("dp", "optimised", "rails_used_v"),
        ):
            pts = sorted(
                (r["rails"], r["energy_j"] * 1e6, r.get(key, ""))
                for r in sel
                if r["method"] == method and r.get("energy_j") is not None
            )
            lines[method] = {p[0]: p[1] for p in pts}
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=COLOR[method],
                marker="o",
                label=name,
            )
            offset = 7 if method == "even-rails" else -11
            for r, e, volts in pts:
                ax.annotate(
                    volts.replace(" ", "/"),
                    (r, e),
                    textcoords="offset points",
                    xytext=(0, offset),
                    ha="center",
                    fontsize=6,
                    color=COLOR[method],
                )
        ax.set_ylabel("energy per period (µJ)")
        ax.set_title(
            f"{network} at {fps:g} FPS (labels: rails offered (even) / chosen (optimised), V)",
            fontsize=9,
        )
        ax.set_xticks(list(range(1, max(r["rails"] for r in sel) + 1)))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.margins(y=0.12)
        common = sorted(set(lines["even-rails"]) & set(lines["dp"]))
        excess = [100 * (lines["even-rails"][r] / lines["dp"][r] - 1) for r in common]
        low.bar(common, excess, 0.5, color=COLOR["even-rails"])
        for r, x in zip(common, excess, strict=True):
            low.text(r, x * 1.15 + 0.05, f"{x:.2f} %", ha="center", va="bottom", fontsize=7)
        low.set_yscale("symlog", linthresh=1)
        low.set_ylim(0, max(excess, default=1) * 4 + 1)
        low.set_xticks(ax.get_xticks())
        low.set_xlabel("number of rails R")
        low.set_ylabel("even over optimised (%)")
        low.grid(axis="y", alpha=0.3)
    fig.suptitle(
        "Energy vs number of rails: evenly spaced vs optimised rail voltages\n"
        "(exact DP inside the rails, rram_pg)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(out / "fig3_rails.png")
    plt.close(fig)


def plot_fig4(data: Figures, out: Path, ilp_limit_s: float) -> None:
    rows = data.fig4
    pruning = data.summary["pruning"]
    nets = [n for n in NETWORKS if any(r["network"] == n for r in rows)]
    fig, (ax, right, speed) = plt.subplots(
        1, 3, figsize=(19, 5.4), dpi=150, gridspec_kw={"width_ratios": (1.2, 0.9, 0.9)}
    )
    levels_all = sorted({r["levels"] for r in rows})
    bar = 0.8 / len(nets)
    for network in nets:
        for method, style, marker in (("dp", "-", "o"), ("ilp", "--", "s")):
            sel = sorted(
                (r for r in rows if r["network"] == network and r["method"] == method),
                key=lambda r: r["levels"],
            )
            ax.plot(
                [r["levels"] for r in sel],
                [r["time_s"] for r in sel],
                ls=style,
                marker=marker,
                color=NET_COLOR[network],
                label=f"{network} {method}",
            )
            if method == "ilp":
                for r in sel:
                    if r["status"] != "proven-optimal":
                        gap = "" if r.get("gap") is None else f", gap {100 * r['gap']:.2g} %"
                        ax.annotate(
                            f"{r['status']}{gap}",
                            (r["levels"], r["time_s"]),
                            textcoords="offset points",
                            xytext=(4, 4),
                            fontsize=6,
                            color=NET_COLOR[network],
                        )
        dp = sorted(
            (r for r in rows if r["network"] == network and r["method"] == "dp"),
            key=lambda r: r["levels"],
        )
        xs = [r["levels"] for r in dp]
        share = [100 * r["states_after_pruning"] / r["states_per_subset"] for r in dp]
        right.plot(xs, share, marker="o", color=NET_COLOR[network], label=network)
        k = nets.index(network)
        positions = [levels_all.index(x) + (k - (len(nets) - 1) / 2) * bar for x in xs]
        speed.bar(
            positions,
            [r["pruning_speedup"] for r in dp],
            bar,
            color=NET_COLOR[network],
            label=network,
        )
        for x, r in zip(positions, dp, strict=True):
            speed.text(
                x,
                r["pruning_speedup"] + 0.03,
                f"{r['pruning_speedup']:.2f}",
                ha="center",
                va="bottom",
                fontsize=6,
                rotation=90,
            )
    ax.axhline(ilp_limit_s, color="grey", ls=":", lw=1)
    ax.text(min(GRIDS), ilp_limit_s, " ILP time limit", va="bottom", fontsize=8, color="#333333")
    ax.set_yscale("log")
    ax.set_xticks(sorted({r["levels"] for r in rows}))
    ax.set_xlabel("voltage levels in the grid")
    ax.set_ylabel("solve time (s, log scale)")
    ax.set_title(
        f"Exact DP (cold) vs CBC ILP, R = {RAILS}, 80% of nominal max rate\n"
        "ILP points are proven optimal unless labelled",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    right.set_ylim(0, 100)
    right.set_xticks(ax.get_xticks())
    right.set_xlabel("voltage levels in the grid")
    right.set_ylabel("states kept after dominance pruning (%)")
    right.set_title(
        "Dominance pruning: share of the states\nper rail subset kept",
        fontsize=10,
    )
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    speed.axhline(1.0, color="black", lw=0.8)
    speed.axhline(2.14, color="grey", ls=":", lw=1)
    speed.text(-0.45, 2.14, " paper: up to 2.14x", va="bottom", fontsize=8, color="#333333")
    speed.set_xticks(range(len(levels_all)), [str(x) for x in levels_all])
    speed.set_xlabel("voltage levels in the grid")
    speed.set_ylabel("bare DP time without / with pruning (x)")
    speed.set_ylim(
        0, max(2.6, max(r["pruning_speedup"] for r in rows if r["method"] == "dp") * 1.2)
    )
    speed.set_title(
        f"Measured pruning speedup: {pruning['speedup_min']:.2f}-{pruning['speedup_max']:.2f}x "
        f"(median {pruning['speedup_median']:.2f}x)\n"
        f"cold solve_dp on fresh instances, best of {TIMING_REPEATS}",
        fontsize=10,
    )
    speed.grid(axis="y", alpha=0.3)
    speed.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "fig4_solver_time.png")
    plt.close(fig)


def _symlog_x(ax: Any) -> None:
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlim(-0.02, 1500)
    ax.set_xlabel("transition energy per domain switch (nJ, symlog scale)")


def plot_fig5(data: Figures, out: Path) -> None:
    rows = data.fig5
    chip = load_chip()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=150)
    colors = dict(zip(TRANSITION_FPS, ("tab:red", "tab:blue"), strict=True))
    for fps in TRANSITION_FPS:
        sel = sorted(
            (r for r in rows if r["fps"] == fps and r.get("energy_j") is not None),
            key=lambda r: r["transition_energy_nj"],
        )
        if not sel:
            continue
        x = [r["transition_energy_nj"] for r in sel]
        base = sel[0]["energy_j"]
        left.plot(
            x,
            [100 * (r["energy_j"] / base - 1) for r in sel],
            marker="o",
            color=colors[fps],
            label=f"{fps:g} FPS ({base * 1e6:.1f} µJ at {x[0]:g} nJ)",
        )
        right.plot(x, [r["switches"] for r in sel], color=colors[fps])
        for mode, face, text in (
            ("stay-on", colors[fps], "stays on"),
            ("sleep", "white", "sleeps"),
        ):
            pts = [
                (r["transition_energy_nj"], r["switches"]) for r in sel if r["slack_mode"] == mode
            ]
            if pts:
                right.scatter(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    s=36,
                    zorder=3,
                    facecolors=face,
                    edgecolors=colors[fps],
                    label=f"{fps:g} FPS, {text}",
                )
    for ax in (left, right):
        _symlog_x(ax)
        ax.axvline(chip.transition_energy_nj, color="grey", ls=":", lw=1)
        ax.grid(alpha=0.3)
    left.set_ylabel("optimal energy per period, increase over 0 nJ (%)")
    left.set_title(
        f"Optimal energy (dotted line: the chip's {chip.transition_energy_nj:g} nJ)", fontsize=10
    )
    left.legend(fontsize=8)
    right.set_ylabel("domain voltage switches per period")
    right.set_title(
        "Switches in the optimal schedule: between layers + wrap-around\n"
        f"(hollow: sleeps after the last layer; its {chip.sleep_entry_switches} entry switches "
        "are not counted)",
        fontsize=10,
    )
    right.legend(fontsize=8)
    fig.suptitle(
        f"squeezenet: sensitivity to the transition energy (exact DP, R = {RAILS}, "
        f"{chip.transition_latency_ns:g} ns per switch)"
    )
    fig.tight_layout()
    fig.savefig(out / "fig5_transition.png")
    plt.close(fig)


def plot_fig6(data: Figures, out: Path) -> None:
    breakdown, saving = data.breakdown, data.saving
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(16, 6.2), dpi=150, gridspec_kw={"width_ratios": (1, 3.2)}
    )
    parts = [*(c.value for c in Component), "leakage", "wake"]
    cmap = plt.get_cmap("tab20")
    xs = np.arange(len(breakdown))
    bottom = np.zeros(len(breakdown))
    for k, part in enumerate(parts):
        values = np.array([r[part] * 1e6 for r in breakdown])
        left.bar(xs, values, 0.6, bottom=bottom, color=cmap(k), label=part)
        bottom += values
    for x, r in zip(xs, breakdown, strict=True):
        left.text(
            x, r["total"] * 1e6, f"{r['total'] * 1e6:.1f}", ha="center", va="bottom", fontsize=8
        )
    left.set_xticks(xs, [r["layer"] for r in breakdown], rotation=20, fontsize=8)
    left.set_ylabel("energy (µJ)")
    left.set_ylim(0, bottom.max() * 1.55)
    left.set_title(f"Per-layer energy at 1.1 V, {breakdown[0]['policy']}", fontsize=10)
    left.legend(
        title="dynamic by component, leakage, wake",
        fontsize=7,
        title_fontsize=7,
        ncol=3,
        loc="upper right",
    )
    left.grid(axis="y", alpha=0.3)

    xs = np.arange(len(saving))
    right.bar(
        xs - 0.2,
        [r["dvfs_saving_j"] * 1e6 for r in saving],
        0.4,
        color="tab:red",
        label="DVFS saving: dp state vs 1.1 V (both rram_pg)",
    )
    right.bar(
        xs + 0.2,
        [r["gating_saving_j"] * 1e6 for r in saving],
        0.4,
        color="tab:blue",
        label="gating saving: rram_pg vs no_pg (both 1.1 V)",
    )
    right.set_xticks(xs, [r["layer"] for r in saving], rotation=90, fontsize=7)
    right.set_ylabel("energy saved per period (µJ)")
    right.grid(axis="y", alpha=0.3)
    twin = right.twinx()
    utility = [r["marginal_utility_w"] * 1e3 for r in saving]  # µJ per ms = mW
    twin.scatter(
        xs,
        [u if math.isfinite(u) else np.nan for u in utility],
        s=12,
        color="black",
        label="marginal utility (right axis)",
    )
    twin.set_ylabel("marginal utility: µJ saved per ms of extra time (mW)")
    twin.set_ylim(0, np.nanmax([u if math.isfinite(u) else np.nan for u in utility]) * 1.1)
    handles = right.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    right.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper right")
    right.set_title(
        f"Per-layer saving of the exact DP schedule at {SAVING_FPS:g} FPS vs nominal, sorted by "
        "marginal utility\n(DVFS saving per second of extra layer time, highest first; "
        "transitions and slack not attributed to layers)",
        fontsize=10,
    )
    fig.suptitle("SqueezeNet: energy breakdown and per-layer saving")
    fig.tight_layout()
    fig.savefig(out / "fig6_breakdown.png")
    plt.close(fig)
