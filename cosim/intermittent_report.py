"""The intermittent co-simulation's report: terminal table, report.json, power_cycles.csv and the
capacitor timeline (capacitor.png).

The timeline replays the measured energies through the capacitor model (docs/intermittent.md):
each power-up starts at V_on, draws the chip file's analog boot energy over the boot latency and
then what the counters say, point by point (the power-up and every LAUNCH's start and end), at
V = sqrt(V_on^2 - 2 E / C); the harvest then recharges it back to V_on (the capacitor's leakage
drawn during the on-time and subtracted from the harvest while off, as the scheduler models it).
"""

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.intermittent_analysis import ENERGY_TOLERANCE, PowerUp
from voltflow.cosim.pmu_run import PmuRunResult
from voltflow.pmu.intermittent_compiler import IntermittentProgram
from voltflow.pmu.isa import Opcode, decode
from voltflow.pmu.timing import Outcome
from voltflow.scheduler.chip import Chip
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.intermittent import IntermittentProblem
from voltflow.scheduler.intermittent_dp import IntermittentResult
from voltflow.scheduler.supply import Harvest, NetCharging
from voltflow.scheduler.texttable import format_table

__all__ = [
    "capacitor_timeline",
    "report_json",
    "report_text",
    "write_csv",
    "write_timeline_plot",
]

#: Where in the program an interrupted command is (a failure's phase), by opcode.
_PHASES = {
    Opcode.SET_RAIL: "boot",
    Opcode.WAIT_RAILS: "boot",
    Opcode.RESUME: "boot",
    Opcode.RESTORE: "restore",
    Opcode.SAVE: "checkpoint",
    Opcode.COMMIT: "checkpoint",
    Opcode.LAUNCH: "layer",
}


def _uj(x: float) -> float:
    return round(x * 1e6, 6)


def capacitor_timeline(ups: list[PowerUp], chip: Chip, harvest: Harvest) -> dict[str, Any]:
    """Per power-up its start, on-time, energy drawn, end voltage and recharge end (seconds on
    the harvest's clock), and the (time, volts) points of the whole timeline."""
    spec = chip.intermittent
    assert spec is not None
    cap = spec.capacitor
    c_f = cap.capacitance_uf * 1e-6
    leak = cap.leakage_w
    boot_s = spec.boot.latency_s
    charging = NetCharging.of(harvest, leak)
    f_hz = chip.reference_mhz * 1e6

    def volts(drawn: float) -> float:
        return math.sqrt(max(cap.on_v**2 - 2 * drawn / c_f, 0.0))

    now = harvest.start_s
    points: list[tuple[float, float]] = []
    rows = []
    for up in ups:
        start = now
        points.append((start, cap.on_v))
        boot_j = up.measured.boot_j
        for cycle, energy in up.points:
            t = boot_s + cycle / f_hz
            # The analog boot draws its energy over the boot latency, before cycle 0.
            points.append((start + t, volts(energy + leak * t)))
        on_s = boot_s + up.cycles / f_hz
        drawn = up.measured.total_j + leak * on_s
        end = start + on_s
        recharged = float(charging.recharge_end(end, drawn))
        v_end = volts(drawn)
        for share in np.linspace(0.1, 1.0, 10):
            if math.isfinite(recharged):
                t = float(charging.recharge_end(end, drawn * share))
                points.append((t, math.sqrt(v_end**2 + 2 * drawn * share / c_f)))
        rows.append(
            {
                "power_up": up.index,
                "start_s": start,
                "on_s": on_s,
                "drawn_j": drawn,
                "boot_j": boot_j,
                "end_v": v_end,
                "recharged_s": recharged,
            }
        )
        now = recharged
    return {
        "capacitance_uf": cap.capacitance_uf,
        "on_v": cap.on_v,
        "off_v": cap.off_v,
        "charge_j": cap.charge_j,
        "power_ups": rows,
        "points": [[t, v] for t, v in points],
        "latency_s": now - harvest.start_s,
        "output_committed_s": rows[-1]["start_s"] + rows[-1]["on_s"] if rows else 0.0,
        "on_s": sum(r["on_s"] for r in rows),
    }


def _phase(outcome: Outcome | None, words: tuple[int, ...] | list[int]) -> str:
    """Where a failure hit: the phase of the command it interrupted (pmu.timing's last)."""
    if outcome is None or not outcome.command_cycles:
        return "boot"
    pc = outcome.command_cycles[-1][0]
    op = decode(words[pc]).opcode
    if op in _PHASES:
        return _PHASES[op]
    launched = any(decode(words[p]).opcode is Opcode.LAUNCH for p, _ in outcome.command_cycles)
    resumed = any(decode(words[p]).opcode is Opcode.RESUME for p, _ in outcome.command_cycles)
    if not resumed:
        return "boot"
    return "layer" if launched else "restore"


def report_json(
    head: dict[str, Any],
    schedule: IntermittentResult,
    problem: IntermittentProblem,
    program: IntermittentProgram,
    run: PmuRunResult,
    ups: list[PowerUp],
    timeline: dict[str, Any],
    chip: Chip,
    failures: list[str],
) -> dict[str, Any]:
    """The ``voltflow-cosim-intermittent/1`` object."""
    words = program.program.words
    cycles = schedule.evaluation.cycles
    rows = []
    for up, tl in zip(ups, timeline["power_ups"], strict=True):
        model = run.power_cycles[up.index] if up.index < len(run.power_cycles) else None
        row: dict[str, Any] = {
            "power_up": up.index,
            "cycle": up.cycle,
            "end": up.end,
            "failed_at": up.failed_at,
            "phase": _phase(model, words) if up.end == "failed" else None,
            "cycles": up.cycles,
            "predicted_cycles": up.predicted_cycles,
            "exact": up.exact,
            "launches": up.launches,
            "measured": up.measured.to_json(),
            "measured_j": up.measured.total_j,
            "on_s": tl["on_s"],
            "drawn_j": tl["drawn_j"],
            "end_v": tl["end_v"],
            "start_s": tl["start_s"],
            "recharged_s": tl["recharged_s"],
        }
        if up.cycle is not None:
            c = cycles[up.cycle]
            row["first_layer"], row["last_layer"] = c.first_layer, c.last_layer
            if up.end != "failed":
                expected = c.energy_j - c.leakage_j
                row["predicted_j"] = expected
                row["predicted_parts"] = {
                    "boot_j": c.boot_j,
                    "restore_j": c.restore_j,
                    "compute_j": c.compute_j,
                    "switch_j": c.switch_j,
                    "checkpoint_j": c.checkpoint_j,
                }
                row["difference"] = up.measured.total_j / expected - 1
                row["predicted_on_s"] = c.on_time_s
        rows.append(row)
    done = [r for r in rows if r["end"] != "failed"]
    failed = [r for r in rows if r["end"] == "failed"]

    def total(key: str, subset: list[dict[str, Any]]) -> float:
        return sum(r["measured"][key] for r in subset)

    measured_total = sum(r["measured_j"] for r in rows)
    split = {
        "checkpoint_j": total("checkpoint_j", done),
        "restore_j": total("restore_j", done),
        "boot_j": total("boot_j", done),
        "re_execution_j": sum(r["measured_j"] for r in failed),
        "capacitor_leakage_j": sum(r["drawn_j"] - r["measured_j"] for r in rows),
    }
    split["compute_j"] = (
        sum(r["measured_j"] for r in done)
        - split["checkpoint_j"]
        - split["restore_j"]
        - split["boot_j"]
    )
    evaluation = schedule.evaluation
    return {
        "format": "voltflow-cosim-intermittent/1",
        **head,
        "schedule": {
            "power_cycles": len(cycles),
            "states": list(schedule.states),
            "checkpoint_after": list(schedule.checkpoint_after),
            "latency_s": evaluation.latency_s,
            "energy_j": evaluation.energy_j,
            "solve_time_s": schedule.solve_time_s,
        },
        "power_ups": rows,
        "failures_injected": list(run.failures),
        "failures_happened": len(failed),
        "re_executed_cycles": sum(r["cycles"] for r in failed),
        "re_executed_cycles_predicted": sum(r["predicted_cycles"] for r in failed),
        "energy_split_j": split,
        "measured_j": measured_total,
        "predicted_j": sum(r.get("predicted_j", 0.0) for r in done),
        "timeline": timeline,
        "bit_exact": run.bit_exact,
        "timing_exact": run.timing_exact and all(up.exact for up in ups),
        "energy_tolerance": ENERGY_TOLERANCE,
        "simulated_cycles": sum(up.cycles for up in ups),
        "sim_wall_s": run.sim_wall_s,
        "failures": failures,
        "passed": not failures,
    }


def report_text(data: dict[str, Any]) -> str:
    """The terminal report: one row per power-up, then the totals."""
    table = []
    for r in data["power_ups"]:
        layers = f"{r['first_layer']}..{r['last_layer']}" if r["cycle"] is not None else "-"
        end = r["end"] if r["end"] != "failed" else f"failed@{r['failed_at']} ({r['phase']})"
        predicted = f"{r['predicted_j'] * 1e6:.4f}" if "predicted_j" in r else "-"
        diff = f"{r['difference']:+.4%}" if "difference" in r else "-"
        table.append(
            (
                r["power_up"],
                "-" if r["cycle"] is None else r["cycle"],
                layers,
                end,
                f"{r['cycles']:,}",
                "yes" if r["exact"] else "NO",
                f"{r['measured_j'] * 1e6:.4f}",
                predicted,
                diff,
                f"{r['end_v']:.4f}",
            )
        )
    head = (
        "power-up", "cycle", "layers", "end", "cycles", "= model", "RTL uJ", "predicted uJ",
        "diff", "V at end",
    )  # fmt: skip
    tl = data["timeline"]
    split = data["energy_split_j"]
    whole = sum(split.values())

    def share(key: str) -> str:
        return f"{split[key] * 1e6:.3f} ({split[key] / whole:.1%})" if whole else "0"

    sched = data["schedule"]
    lines = [
        f"{data['title']} on {data['chip']} RTL, intermittent: {data['checkpoints']} "
        f"checkpoints, objective {data['objective']}, policy {data['policy']}",
        f"capacitor {tl['capacitance_uf']:g} uF, {tl['on_v']:g} -> {tl['off_v']:g} V "
        f"({tl['charge_j'] * 1e6:.2f} uJ per charge); harvest {data['harvest']}",
        "",
        format_table(head, table),
        "",
        f"{sched['power_cycles']} power cycle{'s' * (sched['power_cycles'] != 1)} per inference"
        + (
            f"; {data['failures_happened']} supply failures injected (re-executed "
            f"{data['re_executed_cycles']:,} cycles, the model predicts "
            f"{data['re_executed_cycles_predicted']:,})"
            if data["failures_injected"]
            else ""
        ),
        f"latency {tl['latency_s'] * 1e3:.4f} ms per inference (measured energies through the "
        f"capacitor) = on {tl['on_s'] * 1e3:.4f} ms + recharging "
        f"{(tl['latency_s'] - tl['on_s']) * 1e3:.4f} ms; the schedule predicts "
        f"{sched['latency_s'] * 1e3:.4f} ms",
        f"energy per inference {data['measured_j'] * 1e6:.4f} uJ measured, "
        f"{data['predicted_j'] * 1e6:.4f} uJ predicted for the completed power cycles: compute "
        f"{share('compute_j')}, checkpoint {share('checkpoint_j')}, restore "
        f"{share('restore_j')}, boot {share('boot_j')}, re-execution {share('re_execution_j')}, "
        f"capacitor leakage {share('capacitor_leakage_j')}",
        f"{data['simulated_cycles']:,} reference cycles simulated in {data['sim_wall_s']:.2f} s",
    ]
    if data["failures"]:
        lines.append("FAIL: " + "; ".join(data["failures"]))
    return "\n".join(lines)


def write_csv(path: Path, data: dict[str, Any]) -> None:
    """power_cycles.csv: one row per power-up."""
    fields = (
        "power_up", "cycle", "first_layer", "last_layer", "end", "failed_at", "phase", "cycles",
        "predicted_cycles", "exact", "measured_j", "predicted_j", "difference", "on_s",
        "drawn_j", "end_v", "start_s", "recharged_s",
    )  # fmt: skip
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(data["power_ups"])
    write_atomic(path, text.getvalue())


def write_timeline_plot(path: Path, data: dict[str, Any], chip: Chip) -> None:
    """capacitor.png: the capacitor's voltage over the inference, checkpoints and failures
    marked, V_on and V_off dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = data["timeline"]
    t = np.array([p[0] for p in tl["points"]]) * 1e3
    v = np.array([p[1] for p in tl["points"]])
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.plot(t, v, color="tab:blue", lw=1.4, label="capacitor voltage (measured energies)")
    ax.axhline(tl["on_v"], color="grey", ls="--", lw=1)
    ax.axhline(tl["off_v"], color="tab:red", ls="--", lw=1)
    ax.text(t[-1], tl["on_v"], "V_on ", va="bottom", ha="right", fontsize=8, color="grey")
    ax.text(
        (t[0] + t[-1]) / 2,
        tl["off_v"],
        "V_off (brown-out)",
        va="top",
        ha="center",
        fontsize=8,
        color="tab:red",
    )
    marked = set()
    for row in data["power_ups"]:
        end_ms = (row["start_s"] + row["on_s"]) * 1e3
        if row["end"] == "failed":
            label = None if "failure" in marked else "supply failure (injected)"
            marked.add("failure")
            ax.plot([end_ms], [row["end_v"]], "x", color="tab:red", ms=8, label=label)
        else:
            label = None if "checkpoint" in marked else "checkpoint committed"
            marked.add("checkpoint")
            ax.plot([end_ms], [row["end_v"]], "v", color="tab:green", ms=7, label=label)
            if row.get("last_layer") is not None:
                ax.annotate(
                    f"{row['last_layer'] + 1}",
                    (end_ms, row["end_v"]),
                    textcoords="offset points",
                    xytext=(0, -12),
                    ha="center",
                    fontsize=7,
                    color="tab:green",
                )
    ax.set_xlabel("time (ms); numbers: the boundary each checkpoint commits")
    ax.set_ylabel("capacitor (V)")
    lo = min(tl["off_v"], float(v.min())) - 0.05
    ax.set_ylim(lo, tl["on_v"] + 0.08)
    ax.set_title(
        f"{data['network']} on {data['chip']}: {data['schedule']['power_cycles']} power cycles, "
        f"{data['harvest']}, {data['checkpoints']} checkpoints"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, image.getvalue())
