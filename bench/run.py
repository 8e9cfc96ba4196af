"""`make bench`: measured figures, printed (never asserted). Sections run in one process so that
ratios compare like with like."""

import argparse
import sys
import time
from pathlib import Path

from scheduler.chip import GatingPolicy, load_chip
from scheduler.cost import build_cost_table
from scheduler.network import known_networks, load_network
from scheduler.texttable import format_table


def bench_cost_model(repeats: int = 5) -> None:
    """Wall time of the full cost table (every layer x every state of the 9-level grid)."""
    chip = load_chip()
    rows = []
    for name in known_networks():
        net = load_network(name)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            table = build_cost_table(net, chip, GatingPolicy.RRAM_PG)
            best = min(best, time.perf_counter() - t0)
        rows.append([name, len(net.ops), len(table.layers), table.n_states, best * 1e3])
    print("Cost model: full table, 9-level grid (729 states), rram_pg, best of", repeats)
    print(format_table(["network", "ops", "layers", "states", "time ms"], rows))
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["cost", "solvers"], help="run one section")
    args = parser.parse_args()
    if args.only in (None, "cost"):
        bench_cost_model()
    if args.only in (None, "solvers"):
        solvers = Path(__file__).with_name("solvers.py")
        if solvers.exists():
            import runpy

            runpy.run_path(str(solvers), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
