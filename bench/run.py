"""`make bench`: measured figures, printed (never asserted). Sections run in one process so that
ratios compare like with like."""

import argparse
import sys
import time

from voltflow.scheduler.chip import GatingPolicy, load_chip
from voltflow.scheduler.cost import build_cost_table
from voltflow.scheduler.network import known_networks, load_network
from voltflow.scheduler.texttable import format_table


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


def bench_networks(ilp_limit_s: float) -> None:
    """DP vs ILP on voltflow's own instances of the paper's four networks, 3/5/9 levels, and the
    SqueezeNet 9-level sweep from 1 FPS to the highest feasible rate."""
    from voltflow.scheduler.problem import ProblemOptions, build_problem

    from bench.solvers import compare_problems, sweep

    chip = load_chip()
    grids = {3: (0.9, 1.1, 1.3), 5: (0.9, 1.0, 1.1, 1.2, 1.3), 9: None}
    items = []
    for name in ("squeezenet", "resnet18", "mobilenet_v3_small", "mobilevit_xxs"):
        net = load_network(name)
        for n, levels in grids.items():
            problem, table = build_problem(net, chip, ProblemOptions(levels_v=levels))
            nominal = table.latency_s(table.state_index([chip.nominal_v] * 3))
            fps = round(0.8 / nominal, 1)  # 80 % of the highest rate nominal voltage meets
            items.append((f"{name} {n}lv", problem, fps))
    compare_problems(items, rails=3, ilp_limit=ilp_limit_s)
    problem, _ = build_problem(load_network("squeezenet"), chip, ProblemOptions())
    sweep(problem, rails=3)


def bench_cosim() -> None:
    """Simulation speed of the full reference chip: one inference of resnet8 and of SqueezeNet on
    the RTL, on each network's own build (no attention ops: the attention engines left empty)
    and on the chip's full build, alternately in one run (the ratio is what attention's logic
    would cost them)."""
    from voltflow.cosim.accel_run import accelerator_build, run_network

    chip = load_chip()
    t0 = time.perf_counter()
    full = accelerator_build(chip)
    build_s = time.perf_counter() - t0
    rows = []
    for name in ("resnet8", "squeezenet"):
        network = load_network(name)
        speed = {}
        for which, given in (("own", None), ("full", full)):
            t0 = time.perf_counter()
            result = run_network(network, chip, [chip.nominal_v] * 3, verilator_build=given)
            total_s = time.perf_counter() - t0
            exact = all(op.cycles_match and op.activity_match for op in result.ops)
            speed[which] = result.cycles_per_s
            rows.append(
                [
                    name,
                    which,
                    result.total_cycles,
                    result.sim_wall_s,
                    result.cycles_per_s / 1e3,
                    result.wall_s,
                    total_s,
                    "yes" if exact and result.passed else "NO",
                ]
            )
        rows[-1].append(f"{speed['own'] / speed['full']:.3f}")
        rows[-2].append("")
    how = f"built in {full.build_seconds:.1f} s" if full.built else "cached build"
    print(f"RTL co-simulation on {chip.name} at nominal voltage ({how}, lookup {build_s:.2f} s)")
    print(
        format_table(
            [
                "network",
                "build",
                "ref cycles",
                "sim s",
                "k cycles/s",
                "run s",
                "inference s",
                "exact",
                "own/full",
            ],
            rows,
        )
    )
    print("(inference s: golden model, images, program, simulation and comparison, after build;")
    print(" own: the network's build, whose attention engines are empty; full: the chip's)")
    print()


def bench_e2e() -> None:
    """Wall time of `voltflow cosim --net squeezenet` (`make cosim`) with a warm build."""
    import subprocess
    import sys
    import time

    print("\n== end to end: voltflow cosim --net squeezenet (warm build) ==")
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "voltflow.cli", "cosim", "--net", "squeezenet"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    verdict = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"exit {run.returncode} in {wall:.1f} s (target <= 30 s): {verdict}")


def bench_intermittent(repeats: int = 3) -> None:
    """The exact intermittent scheduler on every zoo network with the reference chip's capacitor
    (iNAS: 100 uF, 2.8 -> 2.4 V), at two constant harvests: the schedule (latency objective),
    the checkpoint-every-layer baseline, and the solver time (best of ``repeats``)."""
    import dataclasses

    from voltflow.scheduler.intermittent import Checkpointing, Objective, intermittent_problem
    from voltflow.scheduler.intermittent_dp import (
        IntermittentInfeasibleError,
        IntermittentResult,
        solve_intermittent,
    )
    from voltflow.scheduler.supply import Harvest

    chip = load_chip()
    spec = chip.intermittent
    assert spec is not None
    problems = {
        name: intermittent_problem(build_cost_table(load_network(name), chip))
        for name in known_networks()
    }

    def timed(problem, harvest, objective, rule) -> tuple[IntermittentResult | str, float]:
        best = float("inf")
        outcome: IntermittentResult | str = ""
        for _ in range(repeats):
            t0 = time.perf_counter()
            try:
                outcome = solve_intermittent(problem, harvest, objective, rule)
            except IntermittentInfeasibleError as exc:
                outcome = f"infeasible: C >= {exc.capacitance_f * 1e6:.1f} uF"
            best = min(best, time.perf_counter() - t0)
        return outcome, best

    cap = spec.capacitor
    for capacitance_uf in (cap.capacitance_uf, 330.0):
        bigger = dataclasses.replace(cap, capacitance_uf=capacitance_uf)
        for power_uw in (100.0, 1000.0):
            harvest = Harvest.constant(power_uw / 1e6)
            rows = []
            for name, base in problems.items():
                problem = dataclasses.replace(base, capacitor=bigger)
                row: list[object] = [name, problem.num_layers]
                for objective in (Objective.LATENCY, Objective.ENERGY):
                    exact, seconds = timed(problem, harvest, objective, Checkpointing.OPTIMAL)
                    if objective is Objective.LATENCY:
                        every, _ = timed(problem, harvest, objective, Checkpointing.EVERY_LAYER)
                        row += _intermittent_cells(exact) + _intermittent_cells(every)
                    row.append(seconds * 1e3)
                rows.append(row)
            print(
                f"Intermittent (exact, latency objective): {capacitance_uf:g} uF "
                f"({bigger.on_v:g} -> {bigger.off_v:g} V, {bigger.charge_j * 1e6:.1f} uJ per "
                f"charge), constant {power_uw:g} uW; solver ms best of {repeats}"
            )
            print(
                format_table(
                    [
                        "network", "layers", "cycles", "latency ms", "energy uJ",
                        "every-layer cycles", "latency ms", "energy uJ", "solve ms",
                        "solve ms (energy)",
                    ],
                    rows,
                )
            )  # fmt: skip
            print()


def _intermittent_cells(outcome: object) -> list[object]:
    """cycles, latency ms, energy uJ of a result, or the reason it does not fit."""
    from voltflow.scheduler.intermittent_dp import IntermittentResult

    if isinstance(outcome, IntermittentResult):
        ev = outcome.evaluation
        return [len(ev.cycles), ev.latency_s * 1e3, ev.energy_j * 1e6]
    return [str(outcome), "", ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only",
        choices=[
            "cost",
            "cosim",
            "rtl-speed",
            "networks",
            "solvers",
            "e2e",
            "intermittent",
            "intermittent-rtl",
            "sparsity-rtl",
            "lookahead",
        ],
        help="run one section",
    )
    parser.add_argument("--ilp-time-limit", type=float, default=120.0, help="seconds per ILP")
    args = parser.parse_args()
    if args.only in (None, "cost"):
        bench_cost_model()
    if args.only in (None, "intermittent"):
        bench_intermittent()
    if args.only in (None, "intermittent-rtl"):
        # The README's intermittent table, measured on the RTL (about 6 minutes).
        from bench import intermittent_rtl

        intermittent_rtl.main([])
    if args.only in (None, "sparsity-rtl"):
        # The README's sparsity table: aware vs oblivious vs super-block DVFS on the RTL.
        from bench import sparsity_rtl

        sparsity_rtl.main([])
    if args.only in (None, "lookahead"):
        # The PMU's look-ahead queue: latency hidden per frame, energy on the RTL.
        from bench import lookahead

        lookahead.main([])
    if args.only in (None, "rtl-speed"):
        # The RTL simulation against the build issue 17's speed work started from, in one run.
        from bench import rtl_speed

        rtl_speed.main([])
    if args.only in (None, "cosim"):
        bench_cosim()
    if args.only in (None, "networks"):
        bench_networks(args.ilp_time_limit)
    if args.only in (None, "e2e"):
        bench_e2e()
    if args.only in (None, "solvers"):
        # The artifact instances: DP vs ILP, CBC vs HiGHS, the sweep. Its own defaults, not this
        # command's arguments (which its parser does not know).
        from bench import solvers

        solvers.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
