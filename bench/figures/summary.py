"""The jobs' results turned into the rows of every CSV and the numbers of ``summary.json``."""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, cast

from voltflow.scheduler.chip import BankKind, load_chip

from bench.figures.experiments import (
    GRIDS,
    METHODS,
    NETWORKS,
    RAILS,
    TIMING_REPEATS,
    TINY_NETWORKS,
    Options,
)
from bench.figures.runner import JobResults


@dataclass(slots=True)
class Figures:
    """Every figure's rows (one dict per CSV row, keyed by column) and the headline numbers."""

    sweep: list[dict[str, Any]]  # every network x method x rate
    fig2: list[dict[str, Any]]
    fig3: list[dict[str, Any]]
    fig4: list[dict[str, Any]]
    fig5: list[dict[str, Any]]
    breakdown: list[dict[str, Any]]  # fig6: three SqueezeNet layers
    saving: list[dict[str, Any]]  # fig6: the DP's per-layer saving
    summary: dict[str, Any]  # summary.json
    energy: dict[str, dict[str, dict[float, float | None]]]  # network -> method -> fps -> J
    rtl: list[dict[str, Any]] = field(default_factory=list)  # fig7 rows
    rtl_skipped: dict[str, str] = field(default_factory=dict)  # network -> why not on the RTL


def _saving(energy: float | None, base: float | None) -> float | None:
    if energy is None or base is None:
        return None
    return 1.0 - energy / base


def _network_rows(
    energy: dict[str, dict[str, dict[float, float | None]]], limits: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each paper network's summary (limits, energies at two rates, best savings) and the rows
    of fig2."""
    fig2 = []
    networks: dict[str, Any] = {}
    for network in NETWORKS:
        lim = limits[network]
        e = energy[network]
        info: dict[str, Any] = {
            "title": lim["title"],
            "layers": lim["layers"],
            "nominal_max_fps": lim["nominal_max_fps"],
            "dp_max_fps": lim["dp_max_fps"],
            "rates_swept": len(e["dp"]),
            "rram_banks": lim["rram_banks"],
        }
        for key, rate, fps in (
            ("nominal_max_rate", "max", lim["nominal_max_fps"]),
            ("half_rate", "half", lim["nominal_max_fps"] / 2),
        ):
            at = {m: e[m].get(fps) for m in METHODS}
            info[key] = {
                "fps": fps,
                "energy_j": at,
                "saving_vs_nominal": {m: _saving(at[m], at["nominal"]) for m in METHODS},
                "saving_vs_gating": {m: _saving(at[m], at["gating"]) for m in METHODS},
            }
            for m in METHODS:
                energy_j = at[m]
                # Nominal is feasible at both rates (the higher is its own maximum).
                nominal_j = cast(float, at["nominal"])
                fig2.append(
                    {
                        "network": network,
                        "rate": rate,
                        "fps": fps,
                        "method": m,
                        "energy_j": energy_j,
                        "normalised_energy": None if energy_j is None else energy_j / nominal_j,
                    }
                )
        best: dict[str, Any] = {}
        for m in METHODS:
            for base in ("nominal", "gating"):
                points = [
                    (s, f)
                    for f in sorted(e[m])
                    if (s := _saving(e[m][f], e[base].get(f))) is not None
                ]
                if not points:
                    continue
                top = max(s for s, _ in points)
                near = [f for s, f in points if s >= top - 1e-6]
                best[f"{m}_vs_{base}"] = {
                    "saving": top,
                    "fps": float(min(near)),
                    "fps_up_to": float(max(near)),
                }
        info["max_saving"] = best
        networks[network] = info
    return networks, fig2


def _dp_vs_ilp(fig4: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The exact DP next to CBC on every fig4 instance both solved."""
    dp_vs_ilp = []
    by_key = {(r["network"], r["levels"], r["method"]): r for r in fig4}
    for network in NETWORKS:
        for levels in GRIDS:
            dp = by_key.get((network, levels, "dp"))
            ilp = by_key.get((network, levels, "ilp"))
            if dp is None or ilp is None:
                continue
            ilp_j = ilp.get("energy_j")
            dp_vs_ilp.append(
                {
                    "network": network,
                    "levels": levels,
                    "fps": dp["fps"],
                    "dp_energy_j": dp["energy_j"],
                    "ilp_energy_j": ilp_j,
                    "ilp_status": ilp["status"],
                    "dp_minus_ilp_relative": None
                    if ilp_j is None
                    else (dp["energy_j"] - ilp_j) / ilp_j,
                    "dp_cold_s": dp["time_s"],
                    "dp_warm_s": dp["warm_time_s"],
                    "ilp_s": ilp["time_s"],
                    "ilp_over_dp_cold": ilp["time_s"] / dp["time_s"],
                    "states_per_subset": dp["states_per_subset"],
                    "states_after_pruning": dp["states_after_pruning"],
                    "dp_pruned_s": dp["dp_pruned_s"],
                    "dp_unpruned_s": dp["dp_unpruned_s"],
                    "pruning_speedup": dp["pruning_speedup"],
                }
            )
    return dp_vs_ilp


def collect(run: JobResults, args: Options) -> Figures:
    """Turn the jobs' results into the rows of every CSV and the summary's numbers."""
    results = run.results
    limits = run.limits
    order = {n: i for i, n in enumerate((*NETWORKS, *TINY_NETWORKS))}
    sweep = [row for _, rows in results["sweep"] for row in rows]
    sweep.sort(key=lambda r: (r["network"], r["fps"], r["method"]))
    energy: dict[str, dict[str, dict[float, float | None]]] = defaultdict(lambda: defaultdict(dict))
    for row in sweep:
        energy[row["network"]][row["method"]][row["fps"]] = row.get("energy_j")

    networks, fig2 = _network_rows(energy, limits)

    fig3 = sorted(
        (r for _, r in results["rails"]),
        key=lambda r: (order[r["network"]], r["rails"], r["method"] != "even-rails"),
    )
    fig4 = sorted(
        (r for _, r in (*results["ilp"], *results["dp-time"])),
        key=lambda r: (order[r["network"]], r["levels"], r["method"]),
    )
    fig5 = sorted(
        (r for _, r in results["transition"]), key=lambda r: (r["fps"], r["transition_energy_nj"])
    )
    breakdown = results["breakdown"][0][1]
    tiny = {
        r["network"]: {k: v for k, v in r.items() if k != "network"}
        for _, r in sorted(results["tiny"], key=lambda x: order[x[1]["network"]])
    }

    dp_vs_ilp = _dp_vs_ilp(fig4)
    proven = [d for d in dp_vs_ilp if d["ilp_status"] == "proven-optimal" and d["ilp_energy_j"]]
    speedups = [r["pruning_speedup"] for r in fig4 if r["method"] == "dp"]
    kept = [r["states_after_pruning"] / r["states_per_subset"] for r in fig4 if r["method"] == "dp"]
    chip = load_chip()
    summary = {
        "format": "voltflow-figures/1",
        "quick": bool(args.quick),
        "chip": chip.name,
        "rails": RAILS,
        "transition_energy_nj": chip.transition_energy_nj,
        "transition_latency_ns": chip.transition_latency_ns,
        "ilp_time_limit_s": args.ilp_time_limit,
        "cpus": run.workers,
        "executor": run.executor,
        "rram_bank_leakage_uw": chip.bank(BankKind.RRAM).leakage_uw,
        "pg_controller_pj": chip.energy.pg_controller_pj,
        "sleep_power_uw": chip.sleep_power_uw,
        "sleep_entry_switches": chip.sleep_entry_switches,
        "lowest_level_v": min(chip.levels_v),
        "paper": {
            "dp_gap_to_ilp": "0.68 % (later revision: 0.04 %)",
            "saving_vs_baseline": "up to 37 % (later revision: 48 %)",
            "pruning_speedup": "up to 2.14x",
            "compile_time": {
                "squeezenet": "DP 0.065-0.31 s, ILP 0.79-98 s",
                "mobilevit_xxs": "DP 0.22-1.08 s, ILP 2.9 s to out of memory",
            },
        },
        "networks": networks,
        "dp_vs_ilp": dp_vs_ilp,
        "gating_on_tiny_networks": tiny,
        "dp_vs_ilp_max_relative_difference": max(
            (abs(d["dp_minus_ilp_relative"]) for d in proven), default=None
        ),
        "dp_vs_ilp_proven_instances": len(proven),
        "pruning": {
            "measured": "bare solve_dp cold, fresh instance, with vs without dominance pruning, "
            f"best of {TIMING_REPEATS}",
            "speedup_min": min(speedups, default=None),
            "speedup_median": statistics.median(speedups) if speedups else None,
            "speedup_max": max(speedups, default=None),
            "states_kept_min": min(kept, default=None),
            "states_kept_max": max(kept, default=None),
        },
    }
    return Figures(
        sweep=sweep,
        fig2=fig2,
        fig3=fig3,
        fig4=fig4,
        fig5=fig5,
        breakdown=breakdown["breakdown"],
        saving=breakdown["saving"],
        summary=summary,
        energy=energy,
    )
