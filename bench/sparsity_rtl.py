"""Sparsity-aware scheduling measured on the RTL: the README's sparsity table.

For each network, on the reference chip with zero gating and with zero skipping
(``powerflow_ref_gate``, ``powerflow_ref_skip``): a profile of K seeded random inputs (golden
model), then three schedules at one rate, each run for one period on the chip's RTL with the same
input and its energy measured by the counters:

- **aware**: the exact DP on the profile (expected energy, deadline on the worst input seen);
- **oblivious**: today's exact DP on the dense cost model (it does not know the data);
- **superblock**: SparseDVFS's method (sparsity classes, merged super-blocks) on the profile.

The rate is 80 % of the highest rate the dense cost model reaches (every domain at the top
voltage), so that all three schedules are feasible and the deadline binds. Also: the dense
chip's energy of the same schedule method (what sparsity saves), the measured activation
density, and the simulation speed of the sparse build against the dense one.

    python -m bench.sparsity_rtl [--out figures] [--inputs K] [--nets a,b]
"""

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.e2e import default_rate, measure, plan
from voltflow.cosim.golden import case_from_params, make_case
from voltflow.cosim.operands import case_operands
from voltflow.cosim.profile import measure_profile, random_inputs
from voltflow.scheduler.chip import GatingPolicy, load_chip
from voltflow.scheduler.cost import build_cost_table
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import ProblemOptions, problem_from_table
from voltflow.scheduler.profile import DeadlineOn, profile_table
from voltflow.scheduler.texttable import format_table

NETWORKS = ("ds_cnn", "squeezenet", "mobilenet_v2")
CHIPS = ("powerflow_ref_gate", "powerflow_ref_skip")
FIELDS = (
    "network", "chip", "sparsity", "fps", "density", "method", "switches", "predicted_uj",
    "measured_uj", "dense_chip_uj", "cycles", "cycle_exact", "bit_exact", "cycles_per_s",
    "dense_cycles_per_s",
)  # fmt: skip
RATE_SHARE = 0.8


def bench_network(name: str, chip_name: str, inputs: int) -> list[dict[str, Any]]:
    network = load_network(name)
    chip = load_chip(chip_name)
    dense_chip = load_chip()
    base = make_case(network, seed=0)
    images = random_inputs(network, inputs, seed=0)
    profile = measure_profile(network, chip, base, images)
    case = case_from_params(network, images[0][1], base.params, seed=0)
    works = tuple(op_work(op, chip, network) for op in network.ops)
    exact = build_cost_table(network, chip, operands=case_operands(case, chip, works))
    dense = build_cost_table(network, chip)
    aware = profile_table(network, chip, profile, DeadlineOn.WORST)
    fps = default_rate(dense, RATE_SHARE)
    options = ProblemOptions(policy=GatingPolicy.RRAM_PG)
    # The profiled inputs' activation density, weighted by each layer's MACs.
    densities = [layer["activation_density"]["mean"] for layer in profile.summary["layers"]]
    density = float(np.average(densities, weights=[layer.activity.macs for layer in dense.layers]))
    rows: list[dict[str, Any]] = []
    dense_speed = None
    for method, table, how in (
        ("aware", aware, "dp"),
        ("oblivious", dense, "dp"),
        ("superblock", aware, "superblock"),
    ):
        planned = plan(table, problem_from_table(table, options), fps, 3, how, 1, {"bench": method})
        start = time.perf_counter()
        run, _ = measure(network, exact, planned.schedule, 1, 0, None, case=case, solved_on=table)
        wall = time.perf_counter() - start
        if method == "aware":
            # The same schedule method on the dense chip: what the array's sparsity saves.
            plain = build_cost_table(network, dense_chip)
            dense_plan = plan(
                plain, problem_from_table(plain, options), fps, 3, "dp", 1, {"bench": "dense"}
            )
            dense_run, _ = measure(network, plain, dense_plan.schedule, 1, 0, None, case=case)
            dense_uj = dense_run.total.total_j * 1e6
            dense_speed = dense_run.cycles / max(dense_run.sim_wall_s, 1e-9)
        rows.append(
            {
                "network": name,
                "chip": chip_name,
                "sparsity": chip.sparsity.value,
                "fps": fps,
                "density": round(density, 4),
                "method": method,
                "switches": planned.result.evaluation.switches,
                "predicted_uj": round(planned.schedule.energy_j * 1e6, 4),
                "measured_uj": round(run.total.total_j * 1e6, 4),
                "dense_chip_uj": round(dense_uj, 4),
                "cycles": run.cycles,
                "cycle_exact": all(r.cycles_exact for r in run.layers),
                "bit_exact": all(f.bit_exact for f in run.frames),
                "cycles_per_s": round(run.cycles / max(run.sim_wall_s, 1e-9)),
                "dense_cycles_per_s": round(dense_speed or 0),
            }
        )
        print(f"  {name} {chip_name} {method}: {rows[-1]['measured_uj']} uJ ({wall:.0f} s)",
              file=sys.stderr, flush=True)  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures")
    parser.add_argument("--inputs", type=int, default=8, help="profiled inputs (default 8)")
    parser.add_argument("--nets", default=",".join(NETWORKS))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name in args.nets.split(","):
        for chip in CHIPS:
            rows += bench_network(name, chip, args.inputs)
    path = out / "sparsity_rtl.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(
        format_table(
            [
                "network",
                "array",
                "density",
                "FPS",
                "method",
                "switches",
                "predicted uJ",
                "measured uJ",
                "dense chip uJ",
                "exact",
                "sim k cyc/s (dense)",
            ],
            [
                [
                    r["network"],
                    r["sparsity"],
                    r["density"],
                    r["fps"],
                    r["method"],
                    r["switches"],
                    r["predicted_uj"],
                    r["measured_uj"],
                    r["dense_chip_uj"],
                    "yes" if r["cycle_exact"] and r["bit_exact"] else "NO",
                    f"{int(r['cycles_per_s']) // 1000} ({int(r['dense_cycles_per_s']) // 1000})",
                ]
                for r in rows
            ],
        )
    )
    print(f"\nwritten {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
