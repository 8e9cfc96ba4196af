"""`voltflow model`, `schedule` and `sweep`: the cost model and the solvers, without the RTL."""

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from voltflow.cli.console import (
    INTERRUPTED,
    CliError,
    LazyFile,
    check_writable,
    emit,
    only_with,
)
from voltflow.cli.parser import AUTO, POLICIES
from voltflow.pmu.compiler import check_period
from voltflow.pmu.limits import check_chip
from voltflow.pmu.planning import plan_schedule
from voltflow.scheduler.auto_policy import least_energy
from voltflow.scheduler.chip import Chip, GatingPolicy, Sparsity, load_chip
from voltflow.scheduler.cost import CostTable, build_cost_table
from voltflow.scheduler.instance import Problem, load_instance, save_instance
from voltflow.scheduler.model_report import model_json, model_text
from voltflow.scheduler.network import Network, load_network
from voltflow.scheduler.problem import (
    ProblemOptions,
    build_problem,
    check_rails,
    problem_from_table,
)
from voltflow.scheduler.profile import (
    DeadlineOn,
    Profile,
    load_profile,
    parse_deadline_on,
    profile_table,
)
from voltflow.scheduler.schedule import save_schedule, schedule_to_json
from voltflow.scheduler.schedule_report import schedule_text
from voltflow.scheduler.solve import InfeasibleError, Method, NoSolutionError, Result, solve
from voltflow.scheduler.sweep import SweepInterrupted, parse_rates, run_sweep
from voltflow.scheduler.texttable import format_table

__all__ = ["cmd_model", "cmd_schedule", "cmd_sweep", "levels_of", "load_inputs"]

#: The policies the paper's baselines use (nominal and greedy: no_pg; the gating ones: rram_pg).
BASELINE_POLICIES = (GatingPolicy.NO_PG, GatingPolicy.RRAM_PG)


def load_inputs(args: argparse.Namespace) -> tuple[Network, Chip, GatingPolicy | None]:
    """``--net``, ``--hw`` and ``--policy`` (None: ``auto``)."""
    network = load_network(args.net)
    chip = load_chip(args.hw)
    check_chip(chip, args.hw)  # what the PMU can encode: refused here, not when a ROM is written
    return network, chip, None if args.policy == AUTO else GatingPolicy(args.policy)


def cmd_model(args: argparse.Namespace) -> int:
    network = load_network(args.net)
    chip = load_chip(args.hw)
    check_chip(chip, args.hw)
    policy = GatingPolicy(args.policy)  # `model` offers no `auto`
    table = build_cost_table(network, chip, policy, levels_of(args.levels, chip))
    if args.export_instance:
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
    emit(args, report, model_text(report))
    return 0


def levels_of(text: str | None, chip: Chip) -> tuple[float, ...] | None:
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


def _problem_options(args: argparse.Namespace, chip: Chip, policy: GatingPolicy) -> ProblemOptions:
    return ProblemOptions(
        policy=policy,
        levels_v=levels_of(args.levels, chip),
        transition_energy_j=args.transition_energy_j,
        transition_latency_s=args.transition_latency_s,
        wraparound=not args.no_wraparound,
    )


@dataclass(frozen=True, slots=True)
class _Instances:
    """What `schedule` and `sweep` solve: problems by policy (``"file"`` for an instance file),
    the policy each method uses (``auto``: every policy, the least energy wins), the chip and its
    cost tables (none for an instance file), a header line, provenance."""

    problems: dict[str, Problem]
    instance_of: dict[str, str]
    chip: Chip | None
    tables: dict[str, CostTable]
    header: str
    provenance: dict[str, Any] | None


def _instances(args: argparse.Namespace) -> _Instances:
    methods = [m.value for m in Method]
    if args.instance:
        check_rails(args.rails, None)
        problem = load_instance(args.instance)
        header = f"instance {problem.name} ({args.instance})"
        return _Instances({"file": problem}, dict.fromkeys(methods, "file"), None, {}, header, None)
    network, chip, policy = load_inputs(args)
    check_rails(args.rails, chip)
    problems, tables = {}, {}
    policies = set(GatingPolicy) if policy is None else {policy, *BASELINE_POLICIES}
    profile, deadline = _profile(args, network, chip)
    for pol in policies:
        options = _problem_options(args, chip, pol)
        if profile is None:
            problems[pol.value], tables[pol.value] = build_problem(network, chip, options)
        else:
            table = profile_table(
                network, chip, profile, deadline[0], deadline[1], pol, options.levels_v
            )
            problems[pol.value], tables[pol.value] = problem_from_table(table, options), table
    # The paper's baselines: nominal and greedy run without gating, the others with rram_pg.
    instance_of = dict.fromkeys(methods, AUTO if policy is None else policy.value)
    instance_of.update(
        {"nominal": "no_pg", "greedy": "no_pg", "gating": "rram_pg", "gating-greedy": "rram_pg"}
    )
    levels = levels_of(args.levels, chip) or chip.levels_v
    header = (
        f"{network.title} on {chip.name}, policy {args.policy}, "
        f"levels {', '.join(f'{v:g}' for v in levels)} V"
    )
    if chip.sparsity is not Sparsity.NONE:
        header += "\n" + _sparsity_line(args, chip, profile)
    provenance = {
        "network": args.net,
        "chip": args.hw,
        "policy": args.policy,
        "profile": getattr(args, "profile", None),
        "deadline_on": getattr(args, "deadline_on", None) if profile is not None else None,
        "levels_v": list(levels),
        "wraparound": not args.no_wraparound,
        "transition_energy_j": args.transition_energy_j,
        "transition_latency_s": args.transition_latency_s,
    }
    return _Instances(problems, instance_of, chip, tables, header, provenance)


def _profile(
    args: argparse.Namespace, network: Network, chip: Chip
) -> tuple[Profile | None, tuple[DeadlineOn, float]]:
    """``--profile`` and ``--deadline-on`` (schedule only)."""
    path, text = getattr(args, "profile", None), getattr(args, "deadline_on", None)
    if path is None:
        only_with("--profile", ("--deadline-on", text, None), add="--profile FILE")
        return None, (DeadlineOn.DENSE, 100.0)
    if chip.sparsity is Sparsity.NONE:
        raise CliError(
            f"--profile: chip {chip.name!r} has array.sparsity: none, so the data does not change "
            "its cost; give the chip the profile was measured on (--hw)"
        )
    deadline = parse_deadline_on(text or "worst")
    return load_profile(path, network, chip), deadline


def _sparsity_line(args: argparse.Namespace, chip: Chip, profile: Profile | None) -> str:
    """What the schedule of a sparsity-aware chip is solved on (the report says which)."""
    if profile is None:
        return (
            f"array.sparsity {chip.sparsity.value}: dense bound (nothing gated or skipped); "
            "give --profile FILE for the expected energy"
        )
    return (
        f"array.sparsity {chip.sparsity.value}: expected energy over the {len(profile.inputs)} "
        f"inputs of {args.profile}; deadline on {args.deadline_on or 'worst'} cycles"
    )


def cmd_schedule(args: argparse.Namespace) -> int:
    if args.intermittent:
        from voltflow.cli.intermittent import run_intermittent

        return run_intermittent(args)
    only_with(
        "--intermittent",
        ("--harvest-uw", args.harvest_uw, None),
        ("--harvest-trace", args.harvest_trace, None),
        ("--objective", args.objective, None),
        add="--intermittent",
    )
    if args.fps is None:
        raise CliError(
            "--fps is required: the target rate in frames per second (or --intermittent)"
        )
    if args.output:
        check_writable(args.output)
    inst = _instances(args)
    problems, instance_of, chip, header = inst.problems, inst.instance_of, inst.chip, inst.header
    provenance = inst.provenance
    nominal_v = chip.nominal_v if chip else args.nominal_v
    period = 1.0 / args.fps
    if chip is not None:
        check_period(period, chip)  # the schedule must compile for this chip's PMU
    method = Method(args.method)
    candidates = POLICIES if instance_of[method.value] == AUTO else [instance_of[method.value]]
    margins: dict[str, int] = {}

    def attempt(policy: str) -> Result:
        if policy not in inst.tables:  # an instance file: no chip, no PMU program to plan
            return solve(
                problems[policy],
                period,
                args.rails,
                method,
                time_limit_s=args.time_limit,
                nominal_v=nominal_v,
            )
        # With a chip, the schedule is planned so that its PMU program meets every deadline
        # (pmu.planning): what `voltflow compile` then checks, it passes.
        planned = plan_schedule(
            inst.tables[policy],
            problems[policy],
            args.fps,
            args.rails,
            method,
            time_limit_s=args.time_limit,
        )
        margins[policy] = planned.margin_cycles
        return planned.result

    try:
        chosen, solved, energies = least_energy(candidates, attempt, lambda r: r.energy_j)
    except InfeasibleError as exc:
        raise CliError(str(exc)) from None
    except NoSolutionError as exc:
        print(f"voltflow schedule: {exc}", file=sys.stderr)
        return 3
    result, problem = solved[chosen], problems[chosen]
    if margins.get(chosen):
        header += f"\nscheduled with a {margins[chosen]} cycle margin for the PMU's own cycles"
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
    emit(args, report, schedule_text(report, result, head, baselines))
    if args.output and not args.json:
        print(f"\nschedule written to {args.output}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    inst = _instances(args)
    problems, instance_of, chip, header = inst.problems, inst.instance_of, inst.chip, inst.header
    rates = parse_rates(args.fps)
    methods = [Method(m) for m in args.methods.split(",")]
    if args.output:
        check_writable(args.output)
    # The CSV is opened when the first row is written: arguments are checked first, and a bad
    # one leaves an existing file as it was.
    out = LazyFile(args.output) if args.output else sys.stdout
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
            cluster=args.cluster,
        )
    except SweepInterrupted as stop:
        where = f" to {args.output}" if args.output else ""
        done = f"{len(stop.points)} of {stop.total} points written{where}"
        print(f"voltflow sweep: interrupted: {done}", file=sys.stderr)
        return INTERRUPTED
    finally:
        if isinstance(out, LazyFile):
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
