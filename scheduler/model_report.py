"""The `voltflow model` report: per-layer cycles, time and energy of one power state.

The JSON object (format ``voltflow-model/1``) is documented in docs/cli.md; the text report is the
same numbers as a table.
"""

from typing import Any

from voltflow.scheduler.chip import DOMAINS, Domain
from voltflow.scheduler.cost import Component, CostTable
from voltflow.scheduler.texttable import format_table

__all__ = ["model_json", "model_text"]

FORMAT = "voltflow-model/1"


def _rate(latency_s: float) -> dict[str, float]:
    return {"latency_s": latency_s, "max_fps": 1.0 / latency_s}


def model_json(table: CostTable, state: int) -> dict[str, Any]:
    """The model report for one state as a JSON-ready object."""
    chip, net = table.chip, table.network
    volts = [float(v) for v in table.voltages_v[state]]
    layers: list[dict[str, Any]] = []
    for layer in table.layers:
        head = net.ops[[op.name for op in net.ops].index(layer.ops[0])]
        dyn = {c.value: float(layer.dynamic_j[c][state]) for c in Component}
        leak_w = {s.value: float(p[state]) for s, p in layer.leakage_w.items()}
        layers.append(
            {
                "name": layer.name,
                "ops": list(layer.ops),
                "kind": head.kind.value,
                "out_shape": [head.out.channels, head.out.height, head.out.width],
                "macs": layer.activity.macs,
                "ticks": {
                    "sys": layer.activity.sys_ticks,
                    "rram": layer.activity.rram_ticks,
                    "feeder": layer.activity.feeder_ticks,
                },
                "ref_cycles": int(layer.ref_cycles[state]),
                "time_s": float(layer.time_s[state]),
                "energy_j": {
                    "dynamic": dyn,
                    "leakage": float(layer.leakage_j[state]),
                    "wake": layer.wake_j,
                    "total": float(layer.energy_j[state]),
                },
                "leakage_w": leak_w,
                "banks_on": int(layer.banks_on.sum()),
            }
        )
    total_time = sum(layer["time_s"] for layer in layers)
    nominal = table.state_index([chip.nominal_v] * len(DOMAINS))
    top = table.state_index([max(table.levels_v)] * len(DOMAINS))
    return {
        "format": FORMAT,
        "network": net.name,
        "title": net.title,
        "chip": chip.name,
        "policy": table.policy.value,
        "state_v": dict(zip([d.value for d in DOMAINS], volts, strict=True)),
        "frequency_mhz": {
            d.value: float(chip.quantised_mhz(d, volts[i])) for i, d in enumerate(DOMAINS)
        },
        "banks": {k.value: n for k, n in table.memory.counts},
        "layers": layers,
        "totals": {
            "macs": sum(layer["macs"] for layer in layers),
            "ref_cycles": sum(layer["ref_cycles"] for layer in layers),
            "time_s": total_time,
            "energy_j": sum(layer["energy_j"]["total"] for layer in layers),
            "dynamic_j": sum(sum(layer["energy_j"]["dynamic"].values()) for layer in layers),
            "leakage_j": sum(layer["energy_j"]["leakage"] for layer in layers),
            "wake_j": sum(layer["energy_j"]["wake"] for layer in layers),
        },
        "this_state": _rate(total_time),
        "nominal": {"state_v": chip.nominal_v, **_rate(table.latency_s(nominal))},
        "top": {"state_v": max(table.levels_v), **_rate(table.latency_s(top))},
    }


def model_text(report: dict[str, Any]) -> str:
    """The model report as terminal text."""
    by_domain = {d: [c.value for c in Component if c.domain is d] for d in (*DOMAINS, None)}

    def dyn(layer: dict[str, Any], domain: Domain | None) -> float:
        return sum(layer["energy_j"]["dynamic"][c] for c in by_domain[domain]) * 1e6

    headers = [
        "layer", "kind", "out (CxHxW)", "MACs", "sys ticks", "feeder ticks", "rram ticks",
        "time us", "sys uJ", "feeder uJ", "rram uJ", "aon uJ", "leak uJ", "total uJ",
    ]  # fmt: skip
    rows = []
    for layer in report["layers"]:
        c, h, w = layer["out_shape"]
        name = layer["name"] + (f" (+{len(layer['ops']) - 1})" if len(layer["ops"]) > 1 else "")
        rows.append(
            [
                name,
                layer["kind"],
                f"{c}x{h}x{w}",
                layer["macs"],
                layer["ticks"]["sys"],
                layer["ticks"]["feeder"],
                layer["ticks"]["rram"],
                layer["time_s"] * 1e6,
                dyn(layer, Domain.SYS),
                dyn(layer, Domain.FEEDER),
                dyn(layer, Domain.RRAM),
                dyn(layer, None),
                (layer["energy_j"]["leakage"] + layer["energy_j"]["wake"]) * 1e6,
                layer["energy_j"]["total"] * 1e6,
            ]
        )
    layers = report["layers"]
    footer = ["total", "", "", report["totals"]["macs"]]
    footer += [sum(layer["ticks"][d] for layer in layers) for d in ("sys", "feeder", "rram")]
    footer += [report["totals"]["time_s"] * 1e6]
    footer += [
        sum(dyn(layer, d) for layer in layers)
        for d in (Domain.SYS, Domain.FEEDER, Domain.RRAM, None)
    ]
    footer += [(report["totals"]["leakage_j"] + report["totals"]["wake_j"]) * 1e6]
    footer += [report["totals"]["energy_j"] * 1e6]
    state = ", ".join(
        f"{d} {v:.2f} V / {report['frequency_mhz'][d]:.1f} MHz"
        for d, v in report["state_v"].items()
    )
    banks = ", ".join(f"{n} {k}" for k, n in report["banks"].items())
    lines = [
        f"{report['title']} on {report['chip']}, policy {report['policy']}",
        f"state: {state}",
        f"banks: {banks}",
        "",
        format_table(headers, rows, footer),
        "",
        _rate_line("this state", report["this_state"]),
        _rate_line(f"nominal ({report['nominal']['state_v']:.2f} V everywhere)", report["nominal"]),
        _rate_line(f"fastest ({report['top']['state_v']:.2f} V everywhere)", report["top"]),
    ]
    return "\n".join(lines)


def _rate_line(label: str, rate: dict[str, float]) -> str:
    return (
        f"{label}: latency {rate['latency_s'] * 1e3:.3f} ms, highest rate {rate['max_fps']:.1f} FPS"
    )
