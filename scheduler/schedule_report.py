"""The `voltflow schedule` report: a schedule, its proof status and the baselines beside it."""

from collections.abc import Mapping, Sequence
from typing import Any

from voltflow.scheduler.solve import Result
from voltflow.scheduler.texttable import format_table

__all__ = ["BaselineRow", "schedule_text"]

BaselineRow = tuple[str, float | None, str]  # method, energy (None: infeasible), note


def schedule_text(
    report: Mapping[str, Any], result: Result, header: str, baselines: Sequence[BaselineRow]
) -> str:
    """Terminal text for a schedule (``report`` is its ``voltflow-schedule/1`` object)."""
    totals = report["totals"]
    e = totals["energy_j"]
    rows = []
    for i, layer in enumerate(report["layers"]):
        v = layer["voltage_v"]
        rows.append(
            [
                i,
                layer["name"],
                *(f"{x:.2f}" for x in v),
                layer["time_s"] * 1e6,
                layer["energy_j"] * 1e6,
                layer["switches_in"],
            ]
        )
    domains = [f"V {d}" for d in report["domains"]]
    table = format_table(["#", "layer", *domains, "time us", "energy uJ", "switches in"], rows)
    gap = report["gap"]
    proof = result.status.value + (
        f" (lower bound {report['lower_bound_j'] * 1e6:.4f} uJ, gap {gap:.3%})"
        if gap is not None
        else ""
    )
    lines = [
        header,
        "",
        table,
        "",
        f"method {report['method']}: {proof}, solved in {result.solve_time_s:.3f} s",
        f"energy per period: {e * 1e6:.4f} uJ = layers {totals['layer_energy_j'] * 1e6:.4f} "
        f"+ transitions {totals['transition_energy_j'] * 1e6:.4f} "
        f"+ slack {totals['slack_energy_j'] * 1e6:.4f} ({report['slack']['mode']})",
        f"latency {totals['latency_s'] * 1e3:.4f} ms of {report['period_s'] * 1e3:.4f} ms, "
        f"idle {totals['idle_s'] * 1e3:.4f} ms; {totals['switches']} domain switches; rails "
        + ", ".join(f"{v:.2f} V" for v in report["rails_used_v"]),
    ]
    if baselines:
        base_rows: list[list[object]] = []
        for method, energy, note in baselines:
            if energy is None:
                base_rows.append([method, "infeasible", "", note])
            else:
                base_rows.append([method, energy * 1e6, f"{1 - e / energy:+.2%}", note])
        lines += [
            "",
            format_table(["baseline", "energy uJ", f"{report['method']} saves", "note"], base_rows),
        ]
    return "\n".join(lines)
