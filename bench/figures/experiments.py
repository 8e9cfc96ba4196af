"""What the figures compute: the constants of every experiment and the job functions that the
runner's worker processes call (each builds its instances itself, cached per process)."""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.scheduler.baselines import even_rail_levels
from voltflow.scheduler.chip import DOMAINS, BankKind, GatingPolicy, load_chip
from voltflow.scheduler.cost import Component, CostTable, LeakageSource
from voltflow.scheduler.dp import min_period, solve_dp
from voltflow.scheduler.instance import Problem
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import ProblemOptions, build_problem
from voltflow.scheduler.solve import InfeasibleError, Method, NoSolutionError, Result, solve


@dataclass(frozen=True, slots=True)
class Options:
    """How much to compute and where the files go (the command's flags)."""

    out: Path
    quick: bool
    workers: int | None
    cluster: str | None  # --cluster: None (the process pool), "local" or tcp://HOST:PORT
    ilp_time_limit: float  # s per CBC instance
    rtl: bool  # figure 7's RTL runs
    rtl_frames: int


# ---- what is computed ------------------------------------------------------------------------

RAILS = 3
NETWORKS = ("squeezenet", "resnet18", "mobilenet_v3_small", "mobilevit_xxs")
TINY_NETWORKS = ("ds_cnn", "resnet8", "vww", "autoencoder")  # MLPerf Tiny: gating effect only
METHODS = ("nominal", "gating", "greedy", "gating-greedy", "dp")  # the paper's five columns
POLICY = {
    "nominal": GatingPolicy.NO_PG,
    "greedy": GatingPolicy.NO_PG,
    "gating": GatingPolicy.RRAM_PG,
    "gating-greedy": GatingPolicy.RRAM_PG,
    "dp": GatingPolicy.RRAM_PG,
    "ilp": GatingPolicy.RRAM_PG,
    "even-rails": GatingPolicy.RRAM_PG,
}
LABEL = {
    "nominal": "nominal (1.1 V, no gating)",
    "gating": "+gating (1.1 V, rram_pg)",
    "greedy": "+greedy (0.9/1.1/1.3 V, no gating)",
    "gating-greedy": "+gating+greedy",
    "dp": f"exact DP (optimised rails, R = {RAILS}, rram_pg)",
}
COLOR = {
    "nominal": "#444444",
    "gating": "tab:blue",
    "greedy": "tab:orange",
    "gating-greedy": "tab:green",
    "dp": "tab:red",
    "even-rails": "tab:purple",
}
NET_COLOR = dict(zip(NETWORKS, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
# Grids of fig4 (the paper's compile-time table uses 3..6 levels; 9 is the full grid).
GRIDS: dict[int, tuple[float, ...] | None] = {
    3: (0.9, 1.1, 1.3),
    5: (0.9, 1.0, 1.1, 1.2, 1.3),
    6: (0.9, 1.0, 1.1, 1.2, 1.25, 1.3),
    9: None,
}
RAIL_POINTS = {"squeezenet": 60.0, "resnet18": 12.0}  # fig3: a tight-ish rate per network
TRANSITION_FPS = (60.0, 90.0)  # fig5, squeezenet
TRANSITION_NJ = (0, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
BREAKDOWN_LAYERS = ("features.0", "features.3.squeeze", "features.3.expand3x3")
SAVING_FPS = 60.0  # fig6 saving: the DP schedule of SqueezeNet at this rate
SWEEP_POINTS = 25  # rates per network other than SqueezeNet (which gets every integer rate)
CHUNK = 12  # rates per sweep job
TIMING_REPEATS = 5  # bare-DP pruning measurement: best of this many fresh instances
# The bare DP's label budget in that measurement: the unpruned DP must finish with its proof to
# be compared (MobileNetV3-Small at 3 levels creates 45 M labels unpruned, past the default 20 M).
BARE_MAX_LABELS = 200_000_000


_CACHE: dict[tuple, tuple[Problem, CostTable]] = {}


def _instance(
    network: str,
    policy: GatingPolicy,
    levels: tuple[float, ...] | None = None,
    transition_nj: float | None = None,
    fresh: bool = False,
) -> tuple[Problem, CostTable]:
    """The instance of ``network``; the same object for the same key within a process (so the
    DP's per-instance cache applies), unless ``fresh``."""
    key = (network, policy, levels, transition_nj)
    if fresh or key not in _CACHE:
        chip = load_chip()
        options = ProblemOptions(
            policy=policy,
            levels_v=levels,
            transition_energy_j=None if transition_nj is None else transition_nj * 1e-9,
        )
        built = build_problem(load_network(network), chip, options)
        if fresh:
            return built
        _CACHE[key] = built
    return _CACHE[key]


def _volts(values: Sequence[float]) -> str:
    return " ".join(f"{v:g}" for v in values)


def _row(network: str, fps: float, method: str, solver: Callable[[], Result]) -> dict[str, Any]:
    """One sweep row: the evaluated schedule, or the reason there is none."""
    row: dict[str, Any] = {
        "network": network,
        "fps": fps,
        "method": method,
        "policy": POLICY[method].value,
    }
    try:
        r = solver()
    except InfeasibleError as exc:
        row.update(status="infeasible", max_rate_fps=exc.max_rate_fps)
        return row
    except NoSolutionError:
        row.update(status="no-solution")
        return row
    ev = r.evaluation
    row.update(
        status=r.status.value,
        energy_j=ev.energy_j,
        layer_energy_j=ev.layer_energy_j,
        transition_energy_j=ev.transition_energy_j,
        slack_energy_j=ev.slack_energy_j,
        slack_mode=ev.slack_mode.value if ev.slack_mode else "",
        switches=ev.switches,
        rails_used_v=_volts(ev.rails_used_v),
        latency_s=ev.latency_s,
        solve_time_s=r.solve_time_s,
        _states=r.states,
        _stats=r.stats,
    )
    return row


def job_sweep(network: str, method: str, rates: Sequence[float]) -> list[dict[str, Any]]:
    """One method of one network at several rates (the DP's preparation is reused)."""
    chip = load_chip()
    problem, _ = _instance(network, POLICY[method])
    rows = []
    for fps in rates:
        rows.append(
            _row(
                network,
                fps,
                method,
                partial(
                    solve,
                    problem,
                    1.0 / fps,
                    RAILS,
                    method,
                    nominal_v=chip.nominal_v,
                    time_limit_s=None,
                ),
            )
        )
    for row in rows:
        row.pop("_states", None)
        row.pop("_stats", None)
    return rows


def _stat_cells(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "states_per_subset": stats.get("states_per_subset"),
        "states_after_pruning": stats.get("states_per_subset_after_pruning"),
        "rail_subsets": stats.get("rail_subsets"),
        "subsets_skipped_by_bound": stats.get("subsets_skipped_by_bound"),
        "labels_created": stats.get("labels_created"),
    }


def job_ilp(network: str, levels: int, fps: float, time_limit_s: float) -> dict[str, Any]:
    """The CBC oracle on one fig4 instance (a fresh instance: nothing cached matters here)."""
    problem, _ = _instance(network, GatingPolicy.RRAM_PG, GRIDS[levels], fresh=True)
    row: dict[str, Any] = {"network": network, "levels": levels, "fps": fps, "method": "ilp"}
    started = time.perf_counter()
    try:
        r = solve(problem, 1.0 / fps, RAILS, Method.ILP, time_limit_s=time_limit_s)
    except NoSolutionError:
        row.update(status="timed-out-no-solution", time_s=time.perf_counter() - started)
        return row
    except InfeasibleError:
        row.update(status="infeasible", time_s=time.perf_counter() - started)
        return row
    row.update(
        status=r.stats.get("ilp_status", r.status.value),
        energy_j=r.energy_j,
        gap=r.gap,
        time_s=r.solve_time_s,
    )
    return row


def job_dp_time(network: str, levels: int, fps: float) -> dict[str, Any]:
    """The DP on one fig4 instance: cold (fresh instance, preparation included) and warm through
    ``solve``, then the bare DP cold with and without dominance pruning (best of a few fresh
    instances each), for the speedup that pruning buys."""
    period = 1.0 / fps
    problem, _ = _instance(network, GatingPolicy.RRAM_PG, GRIDS[levels], fresh=True)
    cold = solve(problem, period, RAILS, Method.DP, time_limit_s=None)
    warm = solve(problem, period, RAILS, Method.DP, time_limit_s=None)
    bare: dict[bool, float] = {}
    for _ in range(TIMING_REPEATS):
        for prune in (True, False):
            fresh, _ = _instance(network, GatingPolicy.RRAM_PG, GRIDS[levels], fresh=True)
            started = time.perf_counter()
            found = solve_dp(fresh, period, RAILS, prune=prune, max_labels=BARE_MAX_LABELS)
            spent = time.perf_counter() - started
            if not found.proven:
                raise RuntimeError(
                    f"{network} {levels} levels: the DP with prune={prune} stopped unproven "
                    f"({found.stats.get('stopped_by')}); raise BARE_MAX_LABELS"
                )
            if not math.isclose(found.energy_j, cold.energy_j, rel_tol=1e-9):
                raise RuntimeError(f"{network} {levels} levels: the DP with prune={prune} differs")
            bare[prune] = min(bare.get(prune, math.inf), spent)
    return {
        "network": network,
        "levels": levels,
        "fps": fps,
        "method": "dp",
        "status": cold.status.value,
        "energy_j": cold.energy_j,
        "gap": cold.gap,
        "time_s": cold.solve_time_s,
        "warm_time_s": warm.solve_time_s,
        **_stat_cells(cold.stats),
        "dp_pruned_s": bare[True],
        "dp_unpruned_s": bare[False],
        "pruning_speedup": bare[False] / bare[True],
    }


def job_rails(network: str, fps: float, rails: int, method: str) -> dict[str, Any]:
    """Fig3: the exact DP with at most ``rails`` optimised rails, or inside evenly spaced ones."""
    problem, _ = _instance(network, GatingPolicy.RRAM_PG)
    row = _row(
        network,
        fps,
        method,
        lambda: solve(problem, 1.0 / fps, rails, method, time_limit_s=None),
    )
    stats = row.pop("_stats", {})
    row.pop("_states", None)
    row["rails"] = rails
    if method == "even-rails":
        offered = stats.get("rails_v") or [
            float(problem.levels_v[i]) for i in even_rail_levels(problem, rails)
        ]
        row["rails_offered_v"] = _volts(offered)
    return row


def job_transition(fps: float, transition_nj: float) -> dict[str, Any]:
    """Fig5: SqueezeNet's optimum at one rate with another transition energy per switch."""
    problem, _ = _instance("squeezenet", GatingPolicy.RRAM_PG, transition_nj=transition_nj)
    row = _row(
        "squeezenet",
        fps,
        "dp",
        lambda: solve(problem, 1.0 / fps, RAILS, Method.DP, time_limit_s=None),
    )
    row.pop("_stats", None)
    row.pop("_states", None)
    row["transition_energy_nj"] = transition_nj
    return row


def job_tiny(network: str) -> dict[str, Any]:
    """What rram_pg does at nominal voltage on a tiny network, at half its nominal limit."""
    chip = load_chip()
    plain, table = _instance(network, GatingPolicy.NO_PG)
    gated, _ = _instance(network, GatingPolicy.RRAM_PG)
    fps = 0.5 / table.latency_s(table.state_index([chip.nominal_v] * len(DOMAINS)))
    nominal = solve(plain, 1.0 / fps, RAILS, Method.NOMINAL, nominal_v=chip.nominal_v)
    gating = solve(gated, 1.0 / fps, RAILS, Method.GATING, nominal_v=chip.nominal_v)
    return {
        "network": network,
        "fps": fps,
        "nominal_j": nominal.energy_j,
        "gating_j": gating.energy_j,
        "gating_saving_vs_nominal": 1.0 - gating.energy_j / nominal.energy_j,
    }


def job_breakdown() -> dict[str, list[dict[str, Any]]]:
    """Fig6: three SqueezeNet layers at nominal voltage, and the DP schedule's per-layer saving
    split into voltage scaling (DP state vs 1.1 V, both rram_pg) and gating (rram_pg vs no_pg,
    both at 1.1 V), sorted by marginal utility (voltage-scaling saving per second of extra time)."""
    chip = load_chip()
    gated, table = _instance("squeezenet", GatingPolicy.RRAM_PG)
    _, plain = _instance("squeezenet", GatingPolicy.NO_PG)
    nominal = table.state_index([chip.nominal_v] * len(DOMAINS))
    layers = {layer.name: layer for layer in table.layers}
    breakdown = []
    for name in BREAKDOWN_LAYERS:
        layer = layers[name]
        row: dict[str, Any] = {"layer": name, "policy": table.policy.value}
        for c in Component:
            row[c.value] = float(layer.dynamic_j[c][nominal])
        row["leakage"] = float(layer.leakage_j[nominal])
        row["wake"] = layer.wake_j
        row["total"] = float(layer.energy_j[nominal])
        for s in LeakageSource:
            watts = np.broadcast_to(layer.leakage_w[s], (table.n_states,))
            row[f"leakage_w_{s.value}"] = float(watts[nominal])
        breakdown.append(row)
    result = solve(gated, 1.0 / SAVING_FPS, RAILS, Method.DP, time_limit_s=None)
    saving: list[dict[str, Any]] = []
    for layer, off, state in zip(table.layers, plain.layers, result.states, strict=True):
        gating_j = float(off.energy_j[nominal] - layer.energy_j[nominal])
        dvfs_j = float(layer.energy_j[nominal] - layer.energy_j[state])
        extra = float(layer.time_s[state] - layer.time_s[nominal])
        utility = dvfs_j / extra if extra > 0 else (math.inf if dvfs_j > 0 else 0.0)
        saving.append(
            {
                "layer": layer.name,
                "dp_state_v": _volts(table.voltages_v[state]),
                "nominal_j": float(off.energy_j[nominal]),
                "gating_saving_j": gating_j,
                "dvfs_saving_j": dvfs_j,
                "extra_time_s": extra,
                "marginal_utility_w": utility,
            }
        )
    saving.sort(key=lambda r: -r["marginal_utility_w"])
    for rank, row in enumerate(saving, start=1):
        row["rank"] = rank
    return {"breakdown": breakdown, "saving": saving}


def job_limits(network: str) -> dict[str, Any]:
    """The rates that bound a network's sweep: nominal's limit and the DP's (R rails)."""
    chip = load_chip()
    problem, table = _instance(network, GatingPolicy.RRAM_PG)
    nominal = table.latency_s(table.state_index([chip.nominal_v] * len(DOMAINS)))
    fastest, _ = min_period(problem, RAILS)
    return {
        "network": network,
        "title": table.network.title,
        "layers": len(table.layers),
        "nominal_max_fps": 1.0 / nominal,
        "dp_max_fps": 1.0 / fastest,
        "rram_banks": dict(table.memory.counts)[BankKind.RRAM],
    }


def _grid_of(top: float, points: int) -> list[int]:
    return sorted({round(float(x)) for x in np.linspace(1, math.floor(top), points)})


def sweep_rates(network: str, limits: dict[str, Any], quick: bool) -> list[float]:
    """Rates of a network's sweep: integers from 1 FPS to the DP's limit (every one for
    SqueezeNet, about 25 otherwise; a handful with --quick), plus nominal's limit and its half."""
    top = math.floor(limits["dp_max_fps"])
    if quick:
        base = _grid_of(top, 6 if network == "squeezenet" else 4)
    elif network == "squeezenet" or top <= SWEEP_POINTS:
        base = list(range(1, top + 1))
    else:
        base = _grid_of(top, SWEEP_POINTS)
    nominal = limits["nominal_max_fps"]
    return sorted({*base, nominal, nominal / 2})
