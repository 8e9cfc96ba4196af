"""The end-to-end report: terminal table, report.json, layers.csv, timeline.png, energy.png."""

import csv
from pathlib import Path
from typing import Any

from voltflow.cosim.e2e import ENERGY_TOLERANCE, Plan, RunAnalysis
from voltflow.scheduler.chip import DOMAINS, Chip
from voltflow.scheduler.texttable import format_table

__all__ = ["report_json", "report_text", "write_csv", "write_plots"]


def _uj(x: float) -> float:
    return round(x * 1e6, 4)


def report_json(
    head: dict[str, Any], run: RunAnalysis, base: RunAnalysis | None, plan: Plan
) -> dict[str, Any]:
    def layer(r: Any) -> dict[str, Any]:
        return {
            "frame": r.frame,
            "index": r.index,
            "name": r.name,
            "voltage_v": list(r.voltage_v),
            "predicted_cycles": r.predicted_cycles,
            "timing_cycles": r.timing_cycles,
            "measured_cycles": r.measured_cycles,
            "predicted": r.predicted,
            "measured": r.measured_parts(),
            "measured_detail": r.measured.to_json(),
        }

    frames = [
        {
            "frame": f.frame,
            "latency_cycles": f.latency_cycles,
            "predicted_latency_cycles": f.predicted_latency_cycles,
            "period_cycles": f.period_cycles,
            "slack_cycles": f.slack_cycles,
            "deadline_met": f.deadline_met,
            "violations": f.violations,
            "bit_exact": f.bit_exact,
            "predicted_j": f.predicted_j,
            "measured_j": f.measured.total_j,
            "slack_measured_j": f.slack.total_j,
        }
        for f in run.frames
    ]
    out: dict[str, Any] = {
        "format": "voltflow-cosim/1",
        **head,
        "margin_cycles": plan.margin_cycles,
        "layers": [layer(r) for r in run.layers],
        "frames": frames,
        "totals": {
            "predicted_j": run.predicted_total_j,
            "measured_j": run.total.total_j,
            "difference": run.energy_difference,
            "tolerance": ENERGY_TOLERANCE,
            "measured_detail": run.total.to_json(),
            "cycles": run.cycles,
            # The PMU's prologue before the first period: measured, not part of a frame.
            "prologue_j": run.prologue.total_j,
        },
        "failures": run.failures(),
        "passed": not run.failures(),
        "wall_s": run.wall_s,
        "sim_wall_s": run.sim_wall_s,
    }
    if base is not None:
        out["baseline"] = {
            "method": "nominal",
            "policy": "no_pg",
            "predicted_j": base.predicted_total_j,
            "measured_j": base.total.total_j,
            "failures": base.failures(),
            "saving_measured": 1 - run.total.total_j / base.total.total_j,
            "saving_predicted": 1 - run.predicted_total_j / base.predicted_total_j,
        }
    return out


def report_text(report: dict[str, Any], run: RunAnalysis, chip: Chip) -> str:
    last = max(r.frame for r in run.layers)
    rows = []
    for r in (r for r in run.layers if r.frame == last):
        p, m = r.predicted, r.measured_parts()
        rows.append(
            [
                r.index,
                r.name,
                " ".join(f"{v:.2f}" for v in r.voltage_v),
                r.predicted_cycles,
                r.measured_cycles - r.predicted_cycles,
                _uj(p["dynamic_j"]),
                _uj(m["dynamic_j"]),
                _uj(p["leakage_j"]),
                _uj(m["leakage_j"]),
                _uj(p["transition_j"]),
                _uj(m["transition_j"]),
                f"{(m['total_j'] / p['total_j'] - 1) * 100:+.3f}%",
            ]
        )
    layers = format_table(
        ["#", "layer", "V sys rram feeder", "cycles", "diff", "dyn pred uJ", "dyn meas uJ",
         "leak pred", "leak meas", "trans pred", "trans meas", "energy diff"],
        rows,
    )  # fmt: skip
    f_ref = chip.reference_mhz * 1e3  # cycles per ms
    frames = format_table(
        ["frame", "latency ms", "slack ms", "deadline", "violations", "bit-exact",
         "pred uJ", "meas uJ", "diff"],
        [
            [f["frame"], f["latency_cycles"] / f_ref, f["slack_cycles"] / f_ref,
             "met" if f["deadline_met"] else "MISSED", f["violations"],
             "yes" if f["bit_exact"] else "NO", _uj(f["predicted_j"]), _uj(f["measured_j"]),
             f"{(f['measured_j'] / f['predicted_j'] - 1) * 100:+.4f}%"]
            for f in report["frames"]
        ],
    )  # fmt: skip
    t = report["totals"]
    lines = [
        f"{report['title']} on {report['chip']}: {report['fps']:g} FPS, {report['method']}, "
        f"{report['rails']} rails, {report['policy']}, slack {report['slack_mode']}, "
        f"{len(report['frames'])} frames",
        "",
        f"layers (frame {last}; cycles: cost model = pmu.timing = RTL when diff is 0)",
        layers,
        "",
        frames,
        "",
        f"total: predicted {_uj(t['predicted_j']):,.4f} uJ, measured {_uj(t['measured_j']):,.4f}"
        f" uJ ({t['difference'] * 100:+.4f}%, tolerance {t['tolerance'] * 100:.1f}%); "
        f"{t['cycles']:,} reference cycles; the PMU's prologue before the first period "
        f"(rails and first supplies, in no frame) {t['prologue_j'] * 1e9:,.3f} nJ",
    ]
    if "baseline" in report:
        b = report["baseline"]
        lines.append(
            f"nominal baseline (1.1 V, no_pg) on the same RTL: measured {_uj(b['measured_j']):,.4f}"
            f" uJ (predicted {_uj(b['predicted_j']):,.4f}); saving {b['saving_measured']:.2%} "
            f"measured, {b['saving_predicted']:.2%} predicted"
        )
    if "baseline_infeasible" in report:
        lines.append(f"nominal baseline (1.1 V, no_pg): {report['baseline_infeasible']}; no saving")
    if report["margin_cycles"]:
        lines.append(
            f"scheduled with a {report['margin_cycles']} cycle margin for the PMU's own cycles"
        )
    return "\n".join(lines)


def write_csv(path: Path, run: RunAnalysis) -> None:
    with path.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(
            ["frame", "layer", "name", "v_sys", "v_rram", "v_feeder", "predicted_cycles",
             "timing_cycles", "measured_cycles", "pred_dynamic_j", "meas_dynamic_j",
             "pred_leakage_j", "meas_leakage_j", "pred_transition_j", "meas_transition_j",
             "pred_total_j", "meas_total_j"]
        )  # fmt: skip
        for r in run.layers:
            p, m = r.predicted, r.measured_parts()
            w.writerow(
                [r.frame, r.index, r.name, *r.voltage_v, r.predicted_cycles, r.timing_cycles,
                 r.measured_cycles, p["dynamic_j"], m["dynamic_j"], p["leakage_j"],
                 m["leakage_j"], p["transition_j"], m["transition_j"], p["total_j"],
                 m["total_j"]]
            )  # fmt: skip


def write_plots(out_dir: Path, run: RunAnalysis, chip: Chip, report: dict[str, Any]) -> None:
    """timeline.png (voltage, frequency per domain and power over one period) and energy.png
    (by layer and component, predicted vs measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    last = max(r.frame for r in run.layers)
    rows = [r for r in run.layers if r.frame == last]
    frame = run.frames[last]
    us = 1e6 / (chip.reference_mhz * 1e6)
    # Layer boundaries from the measured stamps (cumulative measured cycles, frame-relative).
    starts, t = [], 0.0
    for r in rows:
        starts.append(t)
        t += r.measured_cycles * us
    period_us = frame.period_cycles * us
    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    # Distinct line styles: domains often share a voltage, and a plain overlay hides all but one.
    styles = (("-", 2.6), ("--", 2.0), (":", 2.4))
    for d_i, d in enumerate(DOMAINS):
        volts = [r.voltage_v[d_i] for r in rows]
        mhz = [float(chip.quantised_mhz(d, v)) for v in volts]
        ls, lw = styles[d_i % len(styles)]
        for ax, values in ((axes[0], volts), (axes[1], mhz)):
            ax.step([*starts, t], [*values, values[-1]], where="post", ls=ls, lw=lw, label=d.value)
    power = [r.measured.total_j / max(r.measured_cycles * us * 1e-6, 1e-12) * 1e3 for r in rows]
    axes[2].step([*starts, t], [*power, power[-1]], where="post", color="k", label="layers")
    slack_w = frame.slack.total_j / max((period_us - t) * 1e-6, 1e-12) * 1e3
    axes[2].hlines(slack_w, t, period_us, color="tab:red", label=f"slack ({report['slack_mode']})")
    axes[0].set_ylabel("supply (V)")
    axes[1].set_ylabel("clock (MHz)")
    axes[2].set_ylabel("power (mW, measured)")
    axes[2].set_xlabel("time in the period (µs); dashed grey: end of the period")
    for ax in axes:
        ax.axvline(period_us, color="grey", ls="--", lw=1)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{report['network']} at {report['fps']:g} FPS: one period (frame {last})")
    fig.tight_layout()
    fig.savefig(out_dir / "timeline.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.45), 5))
    x = np.arange(len(rows))
    parts = ("dynamic_j", "leakage_j", "transition_j")
    colours = ("tab:blue", "tab:orange", "tab:green")
    for offset, source in ((-0.2, "predicted"), (0.2, "measured")):
        bottom = np.zeros(len(rows))
        for part, colour in zip(parts, colours, strict=True):
            vals = np.array(
                [(r.predicted if source == "predicted" else r.measured_parts())[part] * 1e6
                 for r in rows]
            )  # fmt: skip
            ax.bar(x + offset, vals, 0.38, bottom=bottom, color=colour,
                   alpha=1.0 if source == "measured" else 0.5,
                   label=f"{part[:-2]} ({source})")  # fmt: skip
            bottom += vals
    ax.set_xticks(x, [r.name for r in rows], rotation=70, fontsize=7)
    ax.set_ylabel("uJ")
    ax.set_title("energy by layer: predicted (light, left) vs measured (right)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "energy.png", dpi=110)
    plt.close(fig)
