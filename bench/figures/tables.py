"""The CSV files of the figures: their columns and how a cell is written."""

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voltflow.scheduler.cost import Component, LeakageSource
from voltflow.scheduler.sweep import COLUMNS

from bench.figures.summary import Figures

# The sweep CSV columns of `voltflow sweep`, plus the instance's policy and the method's limit.
SWEEP_COLUMNS = ("network", *COLUMNS[:2], "policy", *COLUMNS[2:], "max_rate_fps")
FIG2_COLUMNS = ("network", "rate", "fps", "method", "energy_j", "normalised_energy")
FIG3_COLUMNS = ("rails", *SWEEP_COLUMNS, "rails_offered_v")
FIG4_COLUMNS = (
    "network",
    "levels",
    "fps",
    "method",
    "status",
    "energy_j",
    "gap",
    "time_s",
    "warm_time_s",
    "states_per_subset",
    "states_after_pruning",
    "rail_subsets",
    "subsets_skipped_by_bound",
    "labels_created",
    "dp_pruned_s",
    "dp_unpruned_s",
    "pruning_speedup",
)
FIG5_COLUMNS = ("transition_energy_nj", *SWEEP_COLUMNS)
BREAKDOWN_COLUMNS = (
    "layer",
    "policy",
    *(c.value for c in Component),
    "leakage",
    "wake",
    "total",
    *(f"leakage_w_{s.value}" for s in LeakageSource),
)
SAVING_COLUMNS = (
    "rank",
    "layer",
    "dp_state_v",
    "nominal_j",
    "gating_saving_j",
    "dvfs_saving_j",
    "extra_time_s",
    "marginal_utility_w",
)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}"
    return str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def write_tables(data: Figures, out: Path) -> None:
    """Every figure's CSV (figure 7's is written with its RTL runs)."""
    write_csv(out / "sweep_all_networks.csv", SWEEP_COLUMNS, data.sweep)
    fig1 = [r for r in data.sweep if r["network"] == "squeezenet"]
    write_csv(out / "fig1_squeezenet_rate.csv", SWEEP_COLUMNS, fig1)
    write_csv(out / "fig2_networks.csv", FIG2_COLUMNS, data.fig2)
    write_csv(out / "fig3_rails.csv", FIG3_COLUMNS, data.fig3)
    write_csv(out / "fig4_solver_time.csv", FIG4_COLUMNS, data.fig4)
    write_csv(out / "fig5_transition.csv", FIG5_COLUMNS, data.fig5)
    write_csv(out / "fig6_breakdown.csv", BREAKDOWN_COLUMNS, data.breakdown)
    write_csv(out / "fig6_saving.csv", SAVING_COLUMNS, data.saving)
