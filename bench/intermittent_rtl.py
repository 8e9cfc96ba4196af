"""Intermittent inference measured on the RTL: the README's table and capacitor figure.

For SqueezeNet (several charges) and DS-CNN (one charge) on the reference chip with iNAS's
capacitor (100 uF, 2.8 -> 2.4 V), at two constant harvests, the exact schedule and the
checkpoint-after-every-layer baseline each run through their power cycles on the chip's RTL
(``voltflow cosim --intermittent``): power cycles, latency and energy per inference as the
schedule predicts them and as the counters measure them, and the worst per-cycle energy
difference. A schedule that does not fit is reported with the capacitance it would need.

    python -m bench.intermittent_rtl [--out figures]
"""

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

from voltflow.cosim.intermittent_flow import IntermittentRequest, run_intermittent_flow
from voltflow.scheduler.intermittent import Checkpointing
from voltflow.scheduler.intermittent_dp import IntermittentInfeasibleError
from voltflow.scheduler.supply import Harvest
from voltflow.scheduler.texttable import format_table

NETWORKS = ("squeezenet", "ds_cnn")
HARVESTS_UW = (100.0, 1000.0)
RULES = (Checkpointing.OPTIMAL, Checkpointing.EVERY_LAYER)
FIELDS = (
    "network", "harvest_uw", "checkpoints", "power_cycles", "predicted_latency_ms",
    "measured_latency_ms", "predicted_energy_uj", "measured_energy_uj", "worst_cycle_diff",
    "cycle_exact", "bit_exact", "needs_uf", "sim_s",
)  # fmt: skip


def measure(network: str, harvest_uw: float, rule: Checkpointing, out: Path) -> dict[str, object]:
    """One schedule through its power cycles on the RTL (or why it does not fit)."""
    row: dict[str, object] = {
        "network": network,
        "harvest_uw": harvest_uw,
        "checkpoints": rule.value,
    }
    start = time.perf_counter()
    try:
        report = run_intermittent_flow(
            IntermittentRequest(
                network=network,
                harvest=Harvest.constant(harvest_uw * 1e-6),
                checkpoints=rule,
                out_dir=out / f"{network}-{harvest_uw:g}uw-{rule.value}",
            )
        )
    except IntermittentInfeasibleError as exc:
        row["needs_uf"] = round(exc.capacitance_f * 1e6, 1)
        return row
    data = report.data
    diffs = [abs(up["difference"]) for up in data["power_ups"] if "difference" in up]
    row.update(
        power_cycles=data["schedule"]["power_cycles"],
        predicted_latency_ms=data["schedule"]["latency_s"] * 1e3,
        measured_latency_ms=data["timeline"]["latency_s"] * 1e3,
        predicted_energy_uj=data["predicted_j"] * 1e6,
        measured_energy_uj=data["measured_j"] * 1e6,
        worst_cycle_diff=max(diffs),
        cycle_exact=data["timing_exact"],
        bit_exact=data["bit_exact"],
        sim_s=round(time.perf_counter() - start, 1),
    )
    if not report.passed:
        raise SystemExit(f"{network} {harvest_uw:g} uW {rule.value}: {report.failures}")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="figures", help="where the CSV and the figure go")
    args = parser.parse_args(argv)
    out = Path(args.out)
    runs = Path("build/bench/intermittent")
    rows = []
    for network in NETWORKS:
        for harvest_uw in HARVESTS_UW:
            for rule in RULES:
                print(
                    f"{network}, {harvest_uw:g} uW, {rule.value} ...", file=sys.stderr, flush=True
                )
                rows.append(measure(network, harvest_uw, rule, runs))
    table: list[tuple[object, ...]] = []
    for r in rows:
        if "needs_uf" in r:
            table.append(
                (r["network"], r["harvest_uw"], r["checkpoints"],
                 f"does not fit: needs C >= {r['needs_uf']} uF", "", "", "", "", "")
            )  # fmt: skip
            continue
        table.append(
            (
                r["network"], r["harvest_uw"], r["checkpoints"], r["power_cycles"],
                f"{r['predicted_latency_ms']:.3f}", f"{r['measured_latency_ms']:.3f}",
                f"{r['predicted_energy_uj']:.3f}", f"{r['measured_energy_uj']:.3f}",
                f"{r['worst_cycle_diff']:.4%}",
            )
        )  # fmt: skip
    print(
        format_table(
            ("network", "harvest uW", "checkpoints", "power cycles", "latency ms (schedule)",
             "latency ms (RTL)", "energy uJ (schedule)", "energy uJ (RTL)", "worst cycle diff"),
            table,
        )
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with (out / "intermittent_rtl.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    figure = runs / "squeezenet-1000uw-optimal" / "capacitor.png"
    if figure.exists():
        shutil.copy(figure, out / "intermittent_squeezenet_capacitor.png")
    print(f"\nwritten: {out}/intermittent_rtl.csv, {out}/intermittent_squeezenet_capacitor.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
