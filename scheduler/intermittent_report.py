"""The `voltflow schedule --intermittent` report: ``voltflow-intermittent/1`` JSON and its table.

docs/cli.md describes every field.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .checkpoint import Checkpoint
from .intermittent import IntermittentProblem
from .intermittent_dp import IntermittentInfeasibleError, IntermittentResult
from .intermittent_evaluate import IntermittentEvaluation
from .supply import Harvest
from .texttable import format_table

__all__ = ["FORMAT", "Baseline", "intermittent_json", "intermittent_text"]

FORMAT = "voltflow-intermittent/1"

#: The energy parts of a power cycle, in report order.
PARTS = ("compute_j", "switch_j", "checkpoint_j", "restore_j", "boot_j", "leakage_j")


@dataclass(frozen=True, slots=True)
class Baseline:
    """A baseline's outcome: its result, or why it does not fit."""

    name: str
    result: IntermittentResult | None
    infeasible: IntermittentInfeasibleError | None = None


def _totals(evaluation: IntermittentEvaluation) -> dict[str, Any]:
    return {
        "power_cycles": len(evaluation.cycles),
        "latency_s": evaluation.latency_s,
        "output_s": evaluation.output_s,
        "on_time_s": evaluation.on_time_s,
        "recharge_s": evaluation.recharge_s,
        "energy_j": evaluation.energy_j,
        **{part: evaluation.total(part) for part in PARTS},
        "checkpoint_bits": sum(c.checkpoint_bits for c in evaluation.cycles),
    }


def _harvest_json(harvest: Harvest) -> dict[str, Any]:
    if harvest.is_constant:
        return {"kind": "constant", "power_w": float(harvest.power_w[0])}
    return {
        "kind": "trace",
        "file": harvest.source,
        "rows": len(harvest.times_s),
        "start_s": float(harvest.times_s[0]),
        "last_row_s": float(harvest.times_s[-1]),
        "min_w": float(harvest.power_w.min()),
        "max_w": float(harvest.power_w.max()),
        "mean_w": float(
            (harvest.power_w[:-1] * (harvest.times_s[1:] - harvest.times_s[:-1])).sum()
            / (harvest.times_s[-1] - harvest.times_s[0])
        )
        if len(harvest.times_s) > 1
        else float(harvest.power_w[0]),
    }


def intermittent_json(
    result: IntermittentResult,
    problem: IntermittentProblem,
    harvest: Harvest,
    *,
    domains: Sequence[str],
    checkpoints: Sequence[Checkpoint] | None = None,
    baselines: Sequence[Baseline] = (),
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``voltflow-intermittent/1`` object of a solved schedule.

    ``checkpoints`` (boundaries 1..N, from :func:`scheduler.checkpoint.plan_checkpoints`) adds
    the tensors each checkpoint holds; ``provenance`` (network, chip, policy, ...) is copied in.
    """
    evaluation = result.evaluation
    cycle_of = {
        i: c.index for c in evaluation.cycles for i in range(c.first_layer, c.last_layer + 1)
    }
    layers = []
    n = problem.num_layers
    for i, state in enumerate(result.states):
        after = i == n - 1 or result.checkpoint_after[i]
        saved = problem.checkpoint_bits[i + 1] if after else 0
        layer: dict[str, Any] = {
            "index": i,
            "name": problem.layer_names[i],
            "cycle": cycle_of[i],
            "state": int(state),
            "voltage_v": [float(v) for v in problem.voltage_v[state]],
            "time_s": float(problem.time_s[i][state]),
            "energy_j": float(problem.energy_j[i][state]),
            "checkpoint_after": bool(after and i < n - 1),
            "checkpoint_bits": int(saved),
        }
        if checkpoints is not None and after:
            layer["checkpoint_tensors"] = list(checkpoints[i].tensors)
        layers.append(layer)
    cycles = [
        {
            "index": c.index,
            "first_layer": c.first_layer,
            "last_layer": c.last_layer,
            "start_s": c.start_s,
            "on_time_s": c.on_time_s,
            "end_on_s": c.end_on_s,
            "recharge_s": c.recharge_s,
            "recharged_s": c.recharged_s,
            "energy_j": c.energy_j,
            **{part: getattr(c, part) for part in PARTS},
            "switches": c.switches,
            "restored_bits": c.restored_bits,
            "checkpoint_bits": c.checkpoint_bits,
        }
        for c in evaluation.cycles
    ]
    cap = problem.capacitor
    report: dict[str, Any] = {
        "format": FORMAT,
        **(dict(provenance) if provenance else {}),
        "instance": problem.name,
        "objective": result.objective.value,
        "status": result.status.value,
        "harvest": _harvest_json(harvest),
        "capacitor": {
            "capacitance_f": cap.capacitance_f,
            "on_v": cap.on_v,
            "off_v": cap.off_v,
            "leakage_w": cap.leakage_w,
            "charge_j": cap.charge_j,
        },
        "boot": {"energy_j": problem.boot_energy_j, "time_s": problem.boot_time_s},
        "rails": problem.rails,
        "rails_used_v": list(evaluation.rails_used_v),
        "domains": list(domains),
        "layers": layers,
        "cycles": cycles,
        "totals": _totals(evaluation),
        "baselines": [_baseline_json(b, result) for b in baselines],
        "solve_time_s": result.solve_time_s,
        "stats": dict(result.stats),
    }
    return report


def _baseline_json(baseline: Baseline, best: IntermittentResult) -> dict[str, Any]:
    if baseline.result is None:
        assert baseline.infeasible is not None
        err = baseline.infeasible
        return {
            "name": baseline.name,
            "feasible": False,
            "needed_j": err.needed_j,
            "needed_capacitance_f": err.capacitance_f,
            "bottleneck_layers": [err.first_layer, err.last_layer],
            "reason": str(err),
        }
    value = baseline.result.value
    return {
        "name": baseline.name,
        "feasible": True,
        **_totals(baseline.result.evaluation),
        "objective_ratio": value / best.value if best.value > 0 else math.nan,
        "solve_time_s": baseline.result.solve_time_s,
    }


def _ms(seconds: float) -> float:
    return seconds * 1e3


def intermittent_text(report: Mapping[str, Any], header: str) -> str:
    """Terminal text of a ``voltflow-intermittent/1`` report."""
    domains = report["domains"]
    rows = []
    for layer in report["layers"]:
        saved = layer["checkpoint_bits"]
        note = ""
        if layer["checkpoint_after"]:
            note = f"checkpoint {saved / 8 / 1024:,.1f} KiB"
        elif layer["index"] == len(report["layers"]) - 1 and saved:
            note = f"output commit {saved / 8 / 1024:,.1f} KiB"
        rows.append(
            [
                layer["index"],
                layer["name"],
                " ".join(f"{v:.2f}" for v in layer["voltage_v"]),
                layer["time_s"] * 1e6,
                layer["energy_j"] * 1e6,
                layer["cycle"],
                note,
            ]
        )
    volts = "V " + " ".join(domains)
    layer_table = format_table(
        ["#", "layer", volts, "time us", "energy uJ", "cycle", "after it"], rows
    )
    cycle_rows = [
        [
            c["index"],
            f"{c['first_layer']}..{c['last_layer']}",
            _ms(c["on_time_s"]),
            _ms(c["recharge_s"]),
            c["boot_j"] * 1e6,
            c["restore_j"] * 1e6,
            (c["compute_j"] + c["switch_j"]) * 1e6,
            c["checkpoint_j"] * 1e6,
            c["energy_j"] * 1e6,
            100 * c["energy_j"] / report["capacitor"]["charge_j"],
        ]
        for c in report["cycles"]
    ]
    cycle_table = format_table(
        [
            "cycle", "layers", "on ms", "recharge ms", "boot uJ", "restore uJ", "compute uJ",
            "ckpt uJ", "total uJ", "% charge",
        ],
        cycle_rows,
    )  # fmt: skip
    t = report["totals"]
    e = t["energy_j"]

    def share(part: str) -> str:
        return f"{t[part] * 1e6:.3f} ({t[part] / e:.1%})" if e > 0 else f"{t[part] * 1e6:.3f}"

    cap = report["capacitor"]
    lines = [
        header,
        "",
        layer_table,
        "",
        cycle_table,
        "",
        f"objective {report['objective']}: {report['status']}, solved in "
        f"{report['solve_time_s']:.3f} s",
        f"{t['power_cycles']} power cycles per inference, each within one charge of "
        f"{cap['charge_j'] * 1e6:.4g} uJ ({cap['capacitance_f'] * 1e6:g} uF, "
        f"{cap['on_v']:g} -> {cap['off_v']:g} V)",
        f"latency {_ms(t['latency_s']):.4f} ms per inference = on {_ms(t['on_time_s']):.4f} ms "
        f"+ recharging {_ms(t['recharge_s']):.4f} ms (output committed at "
        f"{_ms(t['output_s']):.4f} ms)",
        f"energy per inference {e * 1e6:.4f} uJ: compute {share('compute_j')}, switches "
        f"{share('switch_j')}, checkpoint {share('checkpoint_j')}, restore {share('restore_j')}, "
        f"boot {share('boot_j')}, capacitor leakage {share('leakage_j')}",
        "rails " + ", ".join(f"{v:.2f} V" for v in report["rails_used_v"]),
    ]
    if report["baselines"]:
        base_rows: list[list[object]] = []
        for b in report["baselines"]:
            if not b["feasible"]:
                base_rows.append(
                    [
                        b["name"],
                        "infeasible",
                        "",
                        "",
                        "",
                        f"needs {b['needed_j'] * 1e6:.4g} uJ per cycle: C >= "
                        f"{b['needed_capacitance_f'] * 1e6:.4g} uF",
                    ]
                )
            else:
                base_rows.append(
                    [
                        b["name"],
                        b["power_cycles"],
                        _ms(b["latency_s"]),
                        b["energy_j"] * 1e6,
                        f"{b['objective_ratio']:.3f}x",
                        "",
                    ]
                )
        lines += [
            "",
            format_table(
                [
                    "baseline",
                    "cycles",
                    "latency ms",
                    "energy uJ",
                    f"{report['objective']} vs exact",
                    "note",
                ],
                base_rows,
            ),
        ]
    return "\n".join(lines)
