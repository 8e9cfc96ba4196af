"""`voltflow schedule --intermittent`: power states and checkpoints for a capacitor-powered chip."""

import argparse
import json
import sys

from voltflow.cli.console import CliError, check_writable, emit
from voltflow.cli.parser import AUTO
from voltflow.cli.scheduling import levels_of, load_inputs
from voltflow.scheduler.checkpoint import plan_checkpoints
from voltflow.scheduler.chip import DOMAINS, GatingPolicy
from voltflow.scheduler.cost import CostTable, build_cost_table
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.intermittent import (
    Checkpointing,
    IntermittentProblem,
    Objective,
    intermittent_problem,
    require_intermittent,
)
from voltflow.scheduler.intermittent_dp import (
    IntermittentInfeasibleError,
    IntermittentResult,
    solve_intermittent,
)
from voltflow.scheduler.intermittent_report import Baseline, intermittent_json, intermittent_text
from voltflow.scheduler.problem import check_rails
from voltflow.scheduler.supply import Harvest, load_harvest_trace

__all__ = ["harvest_of", "run_intermittent"]

#: The baselines beside the exact schedule, by report name.
BASELINES = (("every-layer", Checkpointing.EVERY_LAYER), ("battery", Checkpointing.NONE))


def _check_flags(args: argparse.Namespace) -> None:
    """Flags of the periodic mode that mean nothing here are refused, not ignored."""
    if args.fps is not None:
        raise CliError(
            "--fps does not apply to --intermittent: an intermittent inference runs as its "
            "harvest allows; drop --fps"
        )
    if args.instance:
        raise CliError(
            "--instance does not apply to --intermittent: it needs a chip file with an "
            "intermittent section (--hw)"
        )
    if args.method != "dp":
        raise CliError(
            f"--method {args.method} does not apply to --intermittent: its solver is exact "
            "and its baselines (every-layer, battery) are always reported"
        )


def harvest_of(args: argparse.Namespace) -> Harvest:
    """The harvest of ``--harvest-uw`` or ``--harvest-trace`` (exactly one)."""
    if args.harvest_uw is not None and args.harvest_trace is not None:
        raise CliError("give one of --harvest-uw and --harvest-trace, not both")
    if args.harvest_uw is None and args.harvest_trace is None:
        raise CliError(
            "--intermittent needs the harvested power: --harvest-uw P (constant, microwatts) "
            "or --harvest-trace FILE (CSV time_s,power_w)"
        )
    if args.harvest_trace is not None:
        return load_harvest_trace(args.harvest_trace)
    return Harvest.constant(args.harvest_uw / 1e6)


def run_intermittent(args: argparse.Namespace) -> int:
    """Run `voltflow schedule --intermittent`; return the exit status."""
    _check_flags(args)
    if args.output:
        check_writable(args.output)
    harvest = harvest_of(args)
    network, chip, policy = load_inputs(args)
    spec = require_intermittent(chip, args.hw)
    check_rails(args.rails, chip)
    objective = Objective(args.objective or Objective.LATENCY.value)
    levels = levels_of(args.levels, chip)
    policies = list(chip.gating_policies) if policy is None else [policy]
    solved: dict[GatingPolicy, tuple[IntermittentResult, IntermittentProblem, CostTable]] = {}
    failure: IntermittentInfeasibleError | None = None
    for pol in policies:
        table = build_cost_table(network, chip, pol, levels)
        problem = intermittent_problem(
            table,
            rails=args.rails,
            transition_energy_j=args.transition_energy_j,
            transition_latency_s=args.transition_latency_s,
        )
        try:
            solved[pol] = (solve_intermittent(problem, harvest, objective), problem, table)
        except IntermittentInfeasibleError as exc:
            # With --policy auto, name the policy that comes closest to fitting.
            if failure is None or exc.needed_j < failure.needed_j:
                failure = exc
    if not solved:
        assert failure is not None
        raise CliError(f"{network.name} on {args.hw}: {failure}")
    chosen = min(solved, key=lambda p: solved[p][0].value)
    result, problem, table = solved[chosen]
    baselines = []
    if not args.no_baselines:
        for name, rule in BASELINES:
            try:
                baselines.append(
                    Baseline(name, solve_intermittent(problem, harvest, objective, rule))
                )
            except IntermittentInfeasibleError as exc:
                baselines.append(Baseline(name, None, exc))
    provenance = {
        "network": args.net,
        "title": network.title,
        "chip": args.hw,
        "policy": chosen.value,
        "levels_v": [float(v) for v in (levels or chip.levels_v)],
        "transition_energy_j": args.transition_energy_j,
        "transition_latency_s": args.transition_latency_s,
        "checkpoint_store": {
            "word_bits": spec.checkpoint.word_bits,
            "write_j_per_bit": spec.checkpoint.write_pj_per_bit / 1e12,
            "read_j_per_bit": spec.checkpoint.read_pj_per_bit / 1e12,
            "write_s_per_word": spec.checkpoint.write_ns_per_word / 1e9,
            "read_s_per_word": spec.checkpoint.read_ns_per_word / 1e9,
            "marker_bits": spec.checkpoint.marker_bits,
            "commit_output": spec.checkpoint.commit_output,
        },
    }
    report = intermittent_json(
        result,
        problem,
        harvest,
        domains=[d.value for d in DOMAINS],
        checkpoints=plan_checkpoints(table, spec),
        baselines=baselines,
        provenance=provenance,
    )
    if len(policies) > 1:
        report["policy_auto"] = {
            p.value: solved[p][0].value if p in solved else None for p in policies
        }
    header = (
        f"{network.title} on {chip.name}, intermittent, policy {chosen.value}"
        f"{' (auto)' if args.policy == AUTO else ''}, at most {args.rails} rails\n"
        f"harvest: {harvest.describe()}"
    )
    if args.output:
        write_atomic(args.output, json.dumps(report, indent=2) + "\n")
    emit(args, report, intermittent_text(report, header))
    if args.output and not args.json:
        print(f"\nschedule written to {args.output}", file=sys.stdout)
    return 0
