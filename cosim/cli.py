"""The `voltflow` console command: one entry point, one subcommand per task, `--json` everywhere."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voltflow.scheduler.chip import GatingPolicy
from voltflow.scheduler.solve import Method

# The CLI spellings are the enums' values: one source for the choices and their meaning.
METHODS = [m.value for m in Method]
POLICIES = [p.value for p in GatingPolicy]
#: ``--policy auto`` (schedule, cosim): solve on every gating policy and keep the least energy.
AUTO = "auto"
#: The policies the paper's baselines use (nominal and greedy: no_pg; the gating ones: rram_pg).
BASELINE_POLICIES = (GatingPolicy.NO_PG, GatingPolicy.RRAM_PG)

__all__ = ["main"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _parse_state(text: str) -> list[float]:
    try:
        volts = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--state must be three voltages sys,rram,feeder such as 1.1,1.1,1.1, not {text!r}"
        ) from None
    if len(volts) != 3:
        raise argparse.ArgumentTypeError(
            f"--state must be three voltages sys,rram,feeder such as 1.1,1.1,1.1, not {text!r}"
        )
    return volts


def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 if positive else value >= 0):
        allowed = "a positive number" if positive else "a number >= 0"
        raise argparse.ArgumentTypeError(f"must be {allowed}, not {text!r}")
    return value


def _positive(text: str) -> float:
    return _number(text, positive=True)


def _non_negative(text: str) -> float:
    return _number(text, positive=False)


def _emit(args: argparse.Namespace, report: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)


def _load_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from voltflow.scheduler.chip import GatingPolicy, load_chip
    from voltflow.scheduler.network import load_network

    network = load_network(args.net)
    chip = load_chip(args.hw)
    return network, chip, None if args.policy == AUTO else GatingPolicy(args.policy)


def cmd_model(args: argparse.Namespace) -> int:
    from voltflow.scheduler.cost import build_cost_table
    from voltflow.scheduler.model_report import model_json, model_text

    network, chip, policy = _load_inputs(args)
    table = build_cost_table(network, chip, policy, _levels(args.levels, chip))
    if args.export_instance:
        from voltflow.scheduler.instance import save_instance
        from voltflow.scheduler.problem import problem_from_table

        save_instance(
            problem_from_table(table, _problem_options(args, chip, policy)), args.export_instance
        )
        print(f"instance written to {args.export_instance}", file=sys.stderr)
    state_v = args.state if args.state is not None else [chip.nominal_v] * 3
    try:
        state = table.state_index(state_v)
    except ValueError as exc:
        raise CliError(f"--state: {exc}") from None
    report = model_json(table, state)
    _emit(args, report, model_text(report))
    return 0


def _levels(text: str | None, chip: Any) -> tuple[float, ...] | None:
    """``--levels``: N (N evenly spaced levels of the chip's grid) or a comma list of voltages."""
    if text is None:
        return None
    grid = chip.levels_v
    try:
        if "," not in text and "." not in text:
            n = int(text)
            if not 1 <= n <= len(grid):
                raise ValueError
            if n == 1:
                return (chip.nominal_v,)
            return tuple(grid[round(i * (len(grid) - 1) / (n - 1))] for i in range(n))
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise CliError(
            f"--levels must be a count 1..{len(grid)} or voltages such as 0.9,1.1,1.3, not {text!r}"
        ) from None


def _problem_options(args: argparse.Namespace, chip: Any, policy: Any) -> Any:
    from voltflow.scheduler.problem import ProblemOptions

    return ProblemOptions(
        policy=policy,
        levels_v=_levels(args.levels, chip),
        transition_energy_j=args.transition_energy_j,
        transition_latency_s=args.transition_latency_s,
        wraparound=not args.no_wraparound,
    )


def _instances(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str], Any, str, Any]:
    """Problems by policy, the policy each method uses (``auto``: every policy, the least
    energy wins), the chip, a header line, provenance."""
    from voltflow.scheduler.chip import GatingPolicy
    from voltflow.scheduler.instance import load_instance
    from voltflow.scheduler.problem import build_problem
    from voltflow.scheduler.solve import Method

    methods = [m.value for m in Method]
    if args.instance:
        problem = load_instance(args.instance)
        header = f"instance {problem.name} ({args.instance})"
        return {"file": problem}, dict.fromkeys(methods, "file"), None, header, None
    network, chip, policy = _load_inputs(args)
    problems = {}
    policies = set(GatingPolicy) if policy is None else {policy, *BASELINE_POLICIES}
    for pol in policies:
        problems[pol.value], _ = build_problem(network, chip, _problem_options(args, chip, pol))
    # The paper's baselines: nominal and greedy run without gating, the others with rram_pg.
    instance_of = dict.fromkeys(methods, AUTO if policy is None else policy.value)
    instance_of.update(
        {"nominal": "no_pg", "greedy": "no_pg", "gating": "rram_pg", "gating-greedy": "rram_pg"}
    )
    levels = _levels(args.levels, chip) or chip.levels_v
    header = (
        f"{network.title} on {chip.name}, policy {args.policy}, "
        f"levels {', '.join(f'{v:g}' for v in levels)} V"
    )
    provenance = {
        "network": args.net,
        "chip": args.hw,
        "policy": args.policy,
        "levels_v": list(levels),
        "wraparound": not args.no_wraparound,
        "transition_energy_j": args.transition_energy_j,
        "transition_latency_s": args.transition_latency_s,
    }
    return problems, instance_of, chip, header, provenance


def _least_energy(
    candidates: Sequence[str], attempt: Any, energy_j: Any
) -> tuple[str, dict[str, Any], str]:
    """``--policy auto``: ``attempt(policy)`` for each candidate (an ``InfeasibleError`` leaves it
    out), the one whose result has the least ``energy_j(result)``, all results, and a summary
    ``"no_pg 7.0942 uJ, layer_pg infeasible, ..."``. None feasible: the infeasibility that names
    the highest feasible rate is raised."""
    from voltflow.scheduler.solve import InfeasibleError

    results: dict[str, Any] = {}
    infeasible: list[InfeasibleError] = []
    for policy in candidates:
        try:
            results[policy] = attempt(policy)
        except InfeasibleError as exc:
            infeasible.append(exc)
    if not results:
        raise max(infeasible, key=lambda exc: exc.max_rate_fps)
    chosen = min(results, key=lambda policy: energy_j(results[policy]))
    summary = ", ".join(
        f"{policy} {energy_j(results[policy]) * 1e6:.4f} uJ"
        if policy in results
        else f"{policy} infeasible"
        for policy in candidates
    )
    return chosen, results, summary


def cmd_schedule(args: argparse.Namespace) -> int:
    from voltflow.scheduler.schedule import save_schedule, schedule_to_json
    from voltflow.scheduler.schedule_report import schedule_text
    from voltflow.scheduler.solve import InfeasibleError, Method, NoSolutionError, solve

    problems, instance_of, chip, header, provenance = _instances(args)
    nominal_v = chip.nominal_v if chip else args.nominal_v
    period = 1.0 / args.fps
    method = Method(args.method)
    candidates = POLICIES if instance_of[method.value] == AUTO else [instance_of[method.value]]

    def attempt(policy: str) -> Any:
        return solve(
            problems[policy],
            period,
            args.rails,
            method,
            time_limit_s=args.time_limit,
            nominal_v=nominal_v,
        )

    try:
        chosen, solved, energies = _least_energy(candidates, attempt, lambda r: r.energy_j)
    except InfeasibleError as exc:
        raise CliError(str(exc)) from None
    except NoSolutionError as exc:
        print(f"voltflow schedule: {exc}", file=sys.stderr)
        return 3
    result, problem = solved[chosen], problems[chosen]
    if len(candidates) > 1:
        header += f"\npolicy auto: {chosen} uses least energy ({energies})"
        instance_of = {m: chosen if p == AUTO else p for m, p in instance_of.items()}
        if provenance is not None:
            provenance = {**provenance, "policy": chosen}
    report = schedule_to_json(result, problem, provenance)
    if len(candidates) > 1:
        report["policy_auto"] = {
            pol: solved[pol].energy_j if pol in solved else None for pol in candidates
        }
    baselines: list[tuple[str, float | None, str]] = []  # energy None: infeasible
    if not args.no_baselines:
        for other in Method:
            if other in (method, Method.ILP, Method.DP):
                continue
            try:
                r = solve(
                    problems[instance_of[other.value]],
                    period,
                    args.rails,
                    other,
                    nominal_v=nominal_v,
                )
                baselines.append((other.value, r.energy_j, instance_of[other.value]))
            except InfeasibleError as exc:
                baselines.append((other.value, None, f"highest rate {exc.max_rate_fps:.1f} FPS"))
        report["baselines"] = [
            {"method": m, "energy_j": e, "saving": None if e is None else 1 - result.energy_j / e}
            for m, e, _ in baselines
        ]
    report["solve_time_s"] = result.solve_time_s
    if args.output:
        save_schedule(result, problem, args.output, provenance)
    head = f"{header}\n{args.fps:g} FPS (period {period * 1e3:.4f} ms), at most {args.rails} rails"
    _emit(args, report, schedule_text(report, result, head, baselines))
    if args.output and not args.json:
        print(f"\nschedule written to {args.output}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from voltflow.scheduler.solve import Method
    from voltflow.scheduler.sweep import parse_rates, run_sweep
    from voltflow.scheduler.texttable import format_table

    problems, instance_of, chip, header, _ = _instances(args)
    rates = parse_rates(args.fps)
    methods = [Method(m) for m in args.methods.split(",")]
    out = open(args.output, "w", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        points = run_sweep(
            problems,
            instance_of,
            rates,
            methods,
            args.rails,
            chip.nominal_v if chip else args.nominal_v,
            out,
            time_limit_s=args.time_limit,
            workers=args.workers,
            progress=None if args.quiet else sys.stderr,
        )
    finally:
        if args.output:
            out.close()
    if args.output and not args.quiet:
        rows = []
        for fps in rates:
            row: list[object] = [fps]
            for m in methods:
                p = next(p for p in points if p.fps == fps and p.method is m)
                energy = p.row.get("energy_j")
                row.append(float(energy) * 1e6 if isinstance(energy, float) else "-")
            rows.append(row)
        print(header)
        print(format_table(["FPS", *(f"{m.value} uJ" for m in methods)], rows))
        print(f"rows written to {args.output}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from voltflow.pmu.compiler import compile_schedule
    from voltflow.pmu.rom import write_bin, write_hex
    from voltflow.scheduler.chip import GatingPolicy, load_chip
    from voltflow.scheduler.network import load_network
    from voltflow.scheduler.problem import ProblemOptions, build_problem
    from voltflow.scheduler.schedule import load_schedule

    schedule = load_schedule(args.schedule)
    prov = dict(schedule.provenance or {})
    net = args.net or prov.get("network")
    if not net:
        raise CliError(
            f"{args.schedule}: the schedule does not say which network it is for "
            "(no provenance); pass --net and --hw"
        )
    chip = load_chip(args.hw or prov.get("chip") or "powerflow_ref")
    policy = GatingPolicy(args.policy or prov.get("policy") or "rram_pg")
    options = ProblemOptions(
        policy=policy, levels_v=tuple(prov["levels_v"]) if prov.get("levels_v") else None
    )
    _, table = build_problem(load_network(net), chip, options)
    program = compile_schedule(schedule, table, frames=args.frames)
    write_hex(args.output, program.words)
    if args.bin:
        write_bin(args.bin, program.words)
    if args.listing:
        Path(args.listing).write_text(program.listing())
    report = {
        "format": "voltflow-rom/1",
        "words": [f"{w:016x}" for w in program.words],
        "frame_start": program.frame_start,
        "rails_v": list(program.rails_v),
        "hex": str(args.output),
    }
    text = program.listing() + f"\n{len(program.words)} commands written to {args.output}"
    _emit(args, report, text)
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    from voltflow.pmu.disasm import disassemble, launch_states
    from voltflow.pmu.rom import read_rom
    from voltflow.scheduler.chip import DOMAINS, load_chip
    from voltflow.scheduler.texttable import format_table

    words = read_rom(args.rom)
    chip = load_chip(args.hw)
    states = launch_states(words, chip)
    report = {
        "format": "voltflow-disasm/1",
        "commands": disassemble(words).splitlines(),
        "launches": [
            {
                "address": s.address,
                "first_op": s.first_op,
                "op_count": s.op_count,
                "voltage_v": dict(zip([d.value for d in DOMAINS], s.voltage_v, strict=True)),
                "increment": dict(zip([d.value for d in DOMAINS], s.increment, strict=True)),
            }
            for s in states
        ],
    }
    rows = [
        [i, s.first_op, s.op_count, *(f"{v:.2f}" for v in s.voltage_v)]
        for i, s in enumerate(states)
    ]
    table = format_table(["layer", "first op", "ops", *(f"V {d.value}" for d in DOMAINS)], rows)
    _emit(args, report, disassemble(words) + "\nstates at each launch (first frame):\n" + table)
    return 0


class StatusLine:
    """A progress line on ``stream``: rewritten in place on a terminal, else printed at most every
    ``every_s`` seconds (logs stay short). Thread-safe enough for one writer thread."""

    def __init__(self, stream: Any, every_s: float = 10.0) -> None:
        import time

        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every_s = every_s
        self.clock = time.monotonic
        self.last = -every_s
        self.shown = False

    def __call__(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r      {text}\x1b[K")
            self.stream.flush()
            self.shown = True
        elif self.clock() - self.last >= self.every_s:
            self.last = self.clock()
            print(f"      {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.shown = False


def _require_rtl_support(network: Any, args: argparse.Namespace) -> None:
    """Stop before any work when the network has ops the RTL cannot run (matmul)."""
    from voltflow.scheduler.network import OpKind

    matmuls = [op.name for op in network.ops if op.kind is OpKind.MATMUL]
    if matmuls:
        raise CliError(
            f"{network.name} has {len(matmuls)} matmul op(s) (the first {matmuls[0]!r}): the RTL "
            "cannot run an activation x activation matmul yet (no scratchpad B-operand path; "
            "docs/rtl.md, Limits). `voltflow schedule --net "
            f"{args.net}` schedules it without the RTL."
        )


def cmd_cosim(args: argparse.Namespace) -> int:
    from voltflow.cosim.accel_run import accelerator_build, activity_diff, run_network
    from voltflow.cosim.sim_top import sim_bank_counts
    from voltflow.scheduler.dataflow import op_work
    from voltflow.scheduler.memory import plan_memory
    from voltflow.scheduler.texttable import format_table

    if args.state is None:
        return cmd_cosim_flow(args)
    network, chip, _ = _load_inputs(args)
    _require_rtl_support(network, args)
    state_v = args.state if args.state is not None else [chip.nominal_v] * 3
    progress = sys.stderr
    print(f"[1/2] Verilator model for {chip.name} (built once, cached)...", file=progress)
    works = tuple(op_work(op, chip, network) for op in network.ops)
    build = accelerator_build(chip, sim_bank_counts(chip, plan_memory(network, chip, works)))
    how = f"built in {build.build_seconds:.1f} s" if build.built else "cached"
    print(f"      {how}", file=progress)
    print(f"[2/2] {network.name}: {len(network.ops)} ops on the RTL...", file=progress)
    status = StatusLine(progress)
    result = run_network(
        network,
        chip,
        state_v,
        seed=args.seed,
        sparsity=args.sparsity,
        verilator_build=build,
        progress=lambda done, total: status(f"{done}/{total} ops done"),
    )
    status.close()
    rows = []
    ops = []
    for op in result.ops:
        diff = activity_diff(op.measured, op.predicted)
        exact = {True: "yes", False: "NO", None: "-"}[op.bit_exact]
        rows.append(
            [
                op.name,
                op.mode.value,
                op.measured_cycles,
                op.predicted_cycles,
                op.measured_cycles - op.predicted_cycles,
                "yes" if not diff else "NO",
                exact,
            ]
        )
        ops.append(
            {
                "name": op.name,
                "mode": op.mode.value,
                "measured_cycles": op.measured_cycles,
                "predicted_cycles": op.predicted_cycles,
                "counters_match": not diff,
                "counter_differences": {k: list(v) for k, v in diff.items()},
                "bit_exact": op.bit_exact,
            }
        )
    measured = sum(op.measured_cycles for op in result.ops)
    predicted = sum(op.predicted_cycles for op in result.ops)
    footer = ["total", "", measured, predicted, measured - predicted, "", ""]
    table = format_table(
        ["op", "mode", "measured cycles", "predicted cycles", "diff", "counters", "bit-exact"],
        rows,
        footer,
    )
    passed = result.passed
    report = {
        "format": "voltflow-cosim-state/1",
        "network": network.name,
        "chip": chip.name,
        "state_v": list(result.state_v),
        "increments": list(result.increments),
        "ops": ops,
        "counters": result.counters,
        "measured_cycles": measured,
        "predicted_cycles": predicted,
        "passed": passed,
        "sim_wall_s": result.sim_wall_s,
        "wall_s": result.wall_s,
        "cycles_per_s": result.cycles_per_s,
    }
    speed = (
        f"{result.total_cycles:,} reference cycles in {result.sim_wall_s:.2f} s of simulation "
        f"({result.cycles_per_s / 1e3:,.0f} k cycles/s); {result.wall_s:.2f} s with loading"
    )
    verdict = (
        "PASS: every op cycle-exact, counters equal, outputs bit-exact"
        if passed
        else ("FAIL: see the rows marked NO or a non-zero diff")
    )
    state = ", ".join(
        f"{d} {v:.2f} V" for d, v in zip(("sys", "rram", "feeder"), state_v, strict=True)
    )
    _emit(
        args,
        report,
        f"{network.title} on {chip.name} RTL at {state}\n\n{table}\n\n{speed}\n{verdict}",
    )
    return 0 if passed else 1


def cmd_cosim_flow(args: argparse.Namespace) -> int:
    """The end-to-end flow: schedule, compile, run frames on the RTL, energy, report."""
    import shutil
    import time

    from voltflow.cosim.e2e import default_rate, measure, plan, run_in_process
    from voltflow.cosim.e2e_report import report_json, report_text, write_csv, write_plots
    from voltflow.cosim.sim_top import sim_bank_counts
    from voltflow.pmu.rom import write_hex
    from voltflow.scheduler.chip import GatingPolicy
    from voltflow.scheduler.problem import ProblemOptions, build_problem
    from voltflow.scheduler.solve import InfeasibleError

    wall = time.perf_counter()
    progress = sys.stderr
    network, chip, policy = _load_inputs(args)
    _require_rtl_support(network, args)
    if args.frames < 1:
        raise CliError(f"--frames must be at least 1, not {args.frames}")
    candidates = POLICIES if policy is None else [policy.value]
    instances = {
        pol: build_problem(network, chip, ProblemOptions(policy=GatingPolicy(pol)))
        for pol in candidates
    }
    fps = args.fps if args.fps is not None else default_rate(instances[candidates[-1]][1])
    print(f"[1/5] schedule: {network.name} at {fps:g} FPS, {args.method}, policy "
          f"{args.policy}...", file=progress)  # fmt: skip

    def attempt(pol: str) -> Any:
        problem, table = instances[pol]
        provenance = {"network": args.net, "chip": args.hw, "policy": pol}
        return plan(table, problem, fps, args.rails, args.method, args.frames, provenance)

    try:
        chosen, plans, energies = _least_energy(candidates, attempt, lambda p: p.schedule.energy_j)
        policy, main_plan = GatingPolicy(chosen), plans[chosen]
        table = instances[chosen][1]
        provenance = {"network": args.net, "chip": args.hw, "policy": chosen}
        if len(candidates) > 1:
            print(f"      policy auto: {chosen} ({energies})", file=progress)
        counts = sim_bank_counts(chip, table.memory)
        base_problem, base_table = build_problem(
            network, chip, ProblemOptions(policy=GatingPolicy.NO_PG)
        )
        base_plan = plan(
            base_table, base_problem, fps, args.rails, "nominal", args.frames,
            {**provenance, "policy": "no_pg"},
        )  # fmt: skip
    except InfeasibleError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out_dir or f"build/cosim/{network.name}-{fps:g}fps")
    out.mkdir(parents=True, exist_ok=True)
    (out / "schedule.json").write_text(json.dumps(main_plan.schedule_json, indent=2) + "\n")
    print(f"[2/5] compile: {len(main_plan.program.words)} PMU commands -> {out}/rom.hex",
          file=progress)  # fmt: skip
    write_hex(out / "rom.hex", main_plan.program.words)
    (out / "rom.lst").write_text(main_plan.program.listing())
    print(f"[3/5] Verilator build of {chip.name} (once per chip, cached)...", file=progress)
    from voltflow.cosim.e2e import _build

    built = _build(chip, args.waves, counts)
    how = f"built in {built.build_seconds:.1f} s" if built.built else "cached"
    print(f"      {how}", file=progress)
    periods = f"{args.frames} period" + "s" * (args.frames != 1)
    print(f"[4/5] frames: {periods} on the RTL, and the nominal baseline beside them (second "
          "process)...", file=progress)  # fmt: skip
    base_future = run_in_process(
        measure, args.net, args.hw, "no_pg", base_plan.schedule, args.frames, args.seed, None
    )
    run_dir = out / "sim" if args.waves else None
    status = StatusLine(progress)
    frames = args.frames

    def launched(done: int, total: int, cycle: int) -> None:
        frame = min(frames, 1 + done * frames // max(total, 1)) if done < total else frames
        status(f"frame {frame}/{frames}: {done}/{total} launches, {cycle / 1e6:.1f} M cycles")

    run, _ = measure(
        args.net, args.hw, policy.value, main_plan.schedule, args.frames, args.seed, run_dir,
        args.waves, launched,
    )  # fmt: skip
    status.close()
    base, _ = base_future.result()
    if run.trace:
        trace = Path(run.trace)
        shutil.copy(trace, out / f"waves{trace.suffix}")
        shutil.rmtree(out / "sim", ignore_errors=True)
    print("[5/5] report...", file=progress)
    head = {
        "network": network.name,
        "title": network.title,
        "chip": chip.name,
        "fps": fps,
        "period_s": 1.0 / fps,
        "method": args.method,
        "rails": args.rails,
        "policy": policy.value,
        "frames": args.frames,
        "slack_mode": main_plan.schedule.slack_mode.value,
        "schedule_energy_j": main_plan.schedule.energy_j,
        "out_dir": str(out),
    }
    report = report_json(head, run, base, main_plan)
    report["total_wall_s"] = time.perf_counter() - wall
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_csv(out / "layers.csv", run)
    write_plots(out, run, chip, report)
    text = report_text(report, run, chip)
    failures = run.failures()
    verdict = (
        f"PASS: every layer and frame cycle-exact, energy within {0.1:g} %, deadlines met, "
        f"no violations, bit-exact ({report['total_wall_s']:.1f} s; files in {out})"
    )
    _emit(args, report, text + ("" if failures else "\n" + verdict))
    if failures:
        print(f"voltflow cosim: FAIL: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voltflow",
        description="Energy-minimal power-state schedules for DNN accelerators, proven on RTL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, auto: bool = False) -> None:
        p.add_argument(
            "--net", default="squeezenet", help="zoo network name or a network .yaml file"
        )
        p.add_argument("--hw", default="powerflow_ref", help="chip name or a chip .yaml file")
        p.add_argument(
            "--policy",
            default="rram_pg",
            choices=[*POLICIES, AUTO] if auto else POLICIES,
            help="bank power-gating policy (default rram_pg"
            + ("; auto: solve with each, keep the least energy)" if auto else ")"),
        )
        p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")

    def problem_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--levels", help="voltage levels: a count (3, 5, 9) or 0.9,1.1,1.3")
        p.add_argument(
            "--transition-energy-j",
            type=_non_negative,
            default=None,
            help="energy per domain switch (default: the chip's)",
        )
        p.add_argument(
            "--transition-latency-s",
            type=_non_negative,
            default=None,
            help="latency per domain switch (default: the chip's)",
        )
        p.add_argument(
            "--no-wraparound",
            action="store_true",
            help="do not charge the last-to-first switch (the paper's formulation)",
        )

    def solver_flags(p: argparse.ArgumentParser) -> None:
        problem_flags(p)
        p.add_argument("--rails", type=int, default=3, help="distinct voltages allowed (default 3)")
        p.add_argument("--time-limit", type=_positive, default=60.0, help="solver limit, seconds")
        p.add_argument(
            "--nominal-v",
            type=_positive,
            default=1.1,
            help="nominal voltage for baselines on --instance files (default 1.1)",
        )

    model = sub.add_parser("model", help="per-layer cycles, time and energy of one power state")
    common(model)
    model.add_argument(
        "--state",
        type=_parse_state,
        default=None,
        metavar="VSYS,VRRAM,VFEEDER",
        help="voltages of the sys, rram and feeder domains (default: nominal)",
    )
    model.add_argument(
        "--export-instance", metavar="FILE", help="also write the voltflow-instance/1 JSON here"
    )
    problem_flags(model)
    model.set_defaults(func=cmd_model)

    sched = sub.add_parser("schedule", help="energy-minimal power-state schedule for a rate")
    common(sched, auto=True)
    sched.add_argument(
        "--instance", metavar="FILE", help="solve a voltflow-instance/1 file instead"
    )
    sched.add_argument("--fps", type=_positive, required=True, help="target rate (frames/s)")
    solver_flags(sched)
    sched.add_argument("--method", default="dp", choices=METHODS, help="solver or baseline")
    sched.add_argument("-o", "--output", metavar="FILE", help="write the schedule JSON here")
    sched.add_argument("--no-baselines", action="store_true", help="skip the baseline comparison")
    sched.set_defaults(func=cmd_schedule)

    sweep = sub.add_parser("sweep", help="energy versus rate for several methods (CSV)")
    common(sweep)
    sweep.add_argument("--instance", metavar="FILE", help="sweep a voltflow-instance/1 file")
    sweep.add_argument("--fps", required=True, help="LO:HI[:STEP] or a comma list")
    solver_flags(sweep)
    sweep.add_argument("--methods", default=",".join(METHODS), help="comma list of methods")
    sweep.add_argument("-o", "--output", metavar="FILE", help="CSV file (default: stdout)")
    sweep.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar and summary")
    sweep.set_defaults(func=cmd_sweep)

    comp = sub.add_parser("compile", help="compile a schedule JSON into a PMU command ROM")
    comp.add_argument("schedule", help="voltflow-schedule/1 JSON (from voltflow schedule -o)")
    comp.add_argument("-o", "--output", required=True, metavar="ROM.hex", help="$readmemh image")
    comp.add_argument("--listing", metavar="FILE", help="annotated listing")
    comp.add_argument("--bin", metavar="FILE", help="binary image (little-endian words)")
    comp.add_argument("--frames", type=int, default=1, help="frames the program runs (default 1)")
    comp.add_argument("--net", help="override the schedule's network")
    comp.add_argument("--hw", help="override the schedule's chip")
    comp.add_argument("--policy", choices=POLICIES, help="override")
    comp.add_argument("--json", action="store_true", help="print a JSON object")
    comp.set_defaults(func=cmd_compile)

    cos = sub.add_parser("cosim", help="run a network on the cycle-accurate RTL and check it")
    common(cos, auto=True)
    cos.add_argument(
        "--state",
        type=_parse_state,
        default=None,
        metavar="VSYS,VRRAM,VFEEDER",
        help="one inference at this fixed power state instead of the end-to-end flow",
    )
    cos.add_argument(
        "--fps",
        type=_positive,
        default=None,
        help="frame rate (default: half the highest rate the chip reaches at its top voltage, "
        "rounded: met with slack; 50 FPS for squeezenet on powerflow_ref)",
    )
    cos.add_argument("--rails", type=int, default=3, help="distinct voltages (default 3)")
    cos.add_argument("--method", default="dp", choices=METHODS, help="solver or baseline")
    cos.add_argument("--frames", type=int, default=2, help="periods to run (default 2)")
    cos.add_argument(
        "--waves", choices=["fst", "vcd", "saif"], help="also dump waves (a separate build)"
    )
    cos.add_argument("--out-dir", help="default build/cosim/<net>-<fps>fps")
    cos.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    cos.add_argument("--sparsity", type=float, default=0.0, help="fraction of zero weights")
    cos.set_defaults(func=cmd_cosim)

    dis = sub.add_parser("disasm", help="disassemble a PMU ROM and show each layer's state")
    dis.add_argument("rom", help="ROM image (.hex or .bin)")
    dis.add_argument("--hw", default="powerflow_ref", help="chip (for voltages)")
    dis.add_argument("--json", action="store_true", help="print a JSON object")
    dis.set_defaults(func=cmd_disasm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from voltflow.pmu.compiler import CompileError
    from voltflow.pmu.rom import RomError
    from voltflow.scheduler.chip import ChipError
    from voltflow.scheduler.instance import InstanceError
    from voltflow.scheduler.network import NetworkError
    from voltflow.scheduler.schedule import ScheduleError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (
        CliError,
        ChipError,
        NetworkError,
        InstanceError,
        ScheduleError,
        CompileError,
        RomError,
        ValueError,
    ) as exc:
        print(f"voltflow {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
