"""The PMU's look-ahead queue: the latency it hides per frame, and what it does to energy.

For every zoo network on the reference chip at 80 % of its top rate (the deadline binds, the
exact DP schedules several voltage changes), the schedule's PMU program is compiled twice,
without and with the look-ahead queue (``compile_schedule(lookahead=True)``: the next layer's
supplies are raised and its banks woken while a layer runs). pmu.timing gives, exactly, the
reference cycles per frame the look-ahead takes off the frame's critical path. On the networks in
``--rtl`` both programs run one period on the RTL with the same input: cycle-exact and bit-exact
against pmu.timing, energy measured by the counters (a supply raised during a layer's last
cycles is priced at the raised voltage from that cycle on).

    python -m bench.lookahead [--out figures] [--rtl ds_cnn,resnet8,squeezenet] [--share 0.8]
"""

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

from voltflow.cosim.e2e import default_rate, measure, plan
from voltflow.cosim.golden import make_case
from voltflow.cosim.sim_top import sim_bank_counts
from voltflow.pmu.isa import Opcode, decode
from voltflow.pmu.planning import lookahead_program
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import build_problem
from voltflow.scheduler.texttable import format_table

NETWORKS = Path(__file__).resolve().parents[1] / "scheduler" / "networks"
RTL_NETWORKS = ("ds_cnn", "resnet8", "squeezenet")
FIELDS = (
    "network", "fps", "layers", "switches", "prepared", "raised", "hidden_cycles", "hidden_ns",
    "frame_cycles", "hidden_share", "plain_uj", "lookahead_uj", "energy_change", "exact",
)  # fmt: skip


def bench_network(name: str, share: float, rtl: bool) -> dict[str, Any]:
    network = load_network(name)
    chip = load_chip()
    problem, table = build_problem(network, chip)
    fps = default_rate(table, share)
    planned = plan(table, problem, fps, 3, "dp", 1, {"bench": "lookahead"})
    counts = sim_bank_counts(chip, table.memory)
    program, hidden = lookahead_program(planned, table, 1, counts)
    ops = [decode(w) for w in program.words]
    # Supplies raised ahead: the CONNECTs between a look-ahead LAUNCH and its SYNC.
    raised, running = 0, False
    for op in ops:
        if op.opcode is Opcode.LAUNCH:
            running = op["lead"] > 0
        elif op.opcode is Opcode.SYNC:
            running = False
        raised += running and op.opcode is Opcode.CONNECT
    last = len(program.launch_layers) - 1
    frame = planned.predicted_run.launches[last].done_cycle
    frame -= planned.predicted_run.launches[0].exec_cycle
    row: dict[str, Any] = {
        "network": name,
        "fps": fps,
        "layers": len(table.layers),
        "switches": planned.result.evaluation.switches,
        "prepared": sum(op.opcode is Opcode.SYNC for op in ops),
        "raised": raised,
        "hidden_cycles": hidden,
        "hidden_ns": round(hidden * 1e3 / chip.reference_mhz, 1),
        "frame_cycles": frame,
        "hidden_share": hidden / frame,
        "plain_uj": "",
        "lookahead_uj": "",
        "energy_change": "",
        "exact": "",
    }
    if rtl:
        case = make_case(network, seed=0)
        runs = []
        for lookahead in (False, True):
            start = time.perf_counter()
            run, _ = measure(
                network, table, planned.schedule, 1, 0, None, case=case, lookahead=lookahead
            )
            runs.append(run)
            print(
                f"  {name} lookahead={lookahead}: {run.total.total_j * 1e6:.6f} uJ "
                f"({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        plain, ahead = runs
        row["plain_uj"] = round(plain.total.total_j * 1e6, 6)
        row["lookahead_uj"] = round(ahead.total.total_j * 1e6, 6)
        row["energy_change"] = ahead.total.total_j / plain.total.total_j - 1
        row["exact"] = not plain.failures() and not ahead.failures()
        measured = ahead.frames[0].latency_cycles - plain.frames[0].latency_cycles
        assert measured == -hidden, (name, measured, hidden)  # the RTL hides what pmu.timing says
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="figures")
    parser.add_argument("--rtl", default=",".join(RTL_NETWORKS), help="networks run on the RTL")
    parser.add_argument("--share", type=float, default=0.8, help="rate: share of the top rate")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    on_rtl = set(filter(None, args.rtl.split(",")))
    rows = [
        bench_network(path.stem, args.share, path.stem in on_rtl)
        for path in sorted(NETWORKS.glob("*.yaml"))
    ]
    path = out / "lookahead.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    headers = [
        "network", "FPS", "layers", "switches", "prepared", "raised", "hidden cycles",
        "hidden ns", "of frame", "RTL uJ plain", "RTL uJ look-ahead", "energy", "exact",
    ]  # fmt: skip
    table = [
        [
            r["network"],
            r["fps"],
            r["layers"],
            r["switches"],
            r["prepared"],
            r["raised"],
            r["hidden_cycles"],
            r["hidden_ns"],
            f"{r['hidden_share']:.4%}",
            r["plain_uj"],
            r["lookahead_uj"],
            f"{r['energy_change']:+.5%}" if r["energy_change"] != "" else "",
            {True: "yes", False: "NO", "": ""}[r["exact"]],
        ]
        for r in rows
    ]
    print(format_table(headers, table))
    print(f"\nwritten {path}")
    return 0 if all(r["exact"] in (True, "") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
