"""`voltflow cosim`: the end-to-end flow on the RTL, or one inference at a fixed power state."""

import argparse
import os
import sys
from typing import Any

from voltflow.cli.console import CliError, StderrProgress, emit, only_with
from voltflow.cli.intermittent import harvest_of
from voltflow.cli.parser import AUTO
from voltflow.cosim.build import TraceFormat
from voltflow.cosim.flow import FlowRequest, StateRequest, run_fixed_state, run_flow
from voltflow.cosim.inputs_flow import InputsRequest, run_inputs_flow
from voltflow.cosim.intermittent_flow import (
    IntermittentReport,
    IntermittentRequest,
    run_intermittent_flow,
)
from voltflow.cosim.toolchain import ToolchainError
from voltflow.scheduler.chip import GatingPolicy
from voltflow.scheduler.intermittent import Checkpointing, Objective
from voltflow.scheduler.intermittent_dp import IntermittentInfeasibleError
from voltflow.scheduler.solve import Method
from voltflow.scheduler.supply import Harvest

__all__ = ["cmd_cosim"]


def cmd_cosim(args: argparse.Namespace) -> int:
    try:
        return _cosim(args)
    except ToolchainError as exc:  # a missing system library or tool: the message says which
        raise CliError(str(exc)) from None


def _cosim(args: argparse.Namespace) -> int:
    if args.intermittent:
        return _intermittent(args)
    only_with(
        "--intermittent",
        ("--harvest-uw", args.harvest_uw, None),
        ("--harvest-trace", args.harvest_trace, None),
        ("--objective", args.objective, None),
        ("--checkpoints", args.checkpoints, "optimal"),
        ("--inject-failures", args.inject_failures, 0),
        add="--intermittent",
    )
    many = args.inputs is not None or args.input_dir is not None
    if not many:
        only_with(
            "--inputs or --input-dir",
            ("--profile", args.profile, None),
            ("--deadline-on", args.deadline_on, None),
            ("--workers", args.workers, None),
            ("--cluster", args.cluster, None),
        )
    progress = StderrProgress(sys.stderr)
    if many:
        return _many_inputs(args, progress)
    if args.state is not None:
        _refuse(
            "--state (one inference, one LAUNCH per 255 ops)",
            ("--lookahead", args.lookahead, False),
        )
        state = run_fixed_state(
            StateRequest(
                network=args.net,
                chip=args.hw,
                state_v=tuple(args.state),
                seed=args.seed,
                sparsity=args.sparsity,
                progress=progress,
            )
        )
        progress.close()
        emit(args, state.data, state.text)
        return 0 if state.passed else 1
    report = run_flow(
        FlowRequest(
            network=args.net,
            chip=args.hw,
            fps=args.fps,
            rails=args.rails,
            method=Method(args.method),
            policy=None if args.policy == AUTO else GatingPolicy(args.policy),
            frames=args.frames,
            seed=args.seed,
            waves=TraceFormat(args.waves) if args.waves else None,
            out_dir=args.out_dir,
            lookahead=args.lookahead,
            progress=progress,
        )
    )
    return _finish(args, progress, report.data, report.text, report.failures)


def _many_inputs(args: argparse.Namespace, progress: StderrProgress) -> int:
    """`voltflow cosim --inputs K | --input-dir DIR`: one schedule, every input on the RTL."""
    _refuse(
        "--inputs (one period per input, policy rram_pg)",
        ("--state", args.state, None),
        ("--waves", args.waves, None),
        ("--sparsity", args.sparsity, 0.0),
        ("--frames", args.frames, 2),
        ("--policy", args.policy, "rram_pg"),
        ("--lookahead", args.lookahead, False),
    )
    if args.inputs is not None and args.input_dir is not None:
        raise CliError("give --inputs K or --input-dir DIR, not both")
    report = run_inputs_flow(
        InputsRequest(
            network=args.net,
            chip=args.hw,
            inputs=args.inputs,
            input_dir=args.input_dir,
            profile=args.profile,
            deadline_on=args.deadline_on or "worst",
            fps=args.fps,
            rails=args.rails,
            method=args.method,
            seed=args.seed,
            out_dir=args.out_dir,
            workers=args.workers,
            cluster=args.cluster,
            progress=progress.step,
        )
    )
    return _finish(args, progress, report.data, report.text, report.data["failures"])


def _refuse(mode: str, *flags: tuple[str, object, object]) -> None:
    """A CliError for the first (flag, value, default) given away from its default."""
    for flag, value, unset in flags:
        if value != unset:
            raise CliError(f"{flag} does not apply to {mode}; drop {flag}")


def _finish(
    args: argparse.Namespace,
    progress: StderrProgress,
    data: dict[str, Any],
    text: str,
    failures: list[str],
) -> int:
    """Print the report; exit status 1 with the reasons on standard error if a check failed."""
    progress.close()
    emit(args, data, text)
    if failures:
        print(f"voltflow cosim: FAIL: {'; '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _intermittent(args: argparse.Namespace) -> int:
    """`voltflow cosim --intermittent`: the intermittent schedule through its power cycles."""
    _refuse(
        "--intermittent (one inference, run through its power cycles as the harvest allows)",
        ("--state", args.state, None),
        ("--fps", args.fps, None),
        ("--waves", args.waves, None),
        ("--sparsity", args.sparsity, 0.0),
        ("--frames", args.frames, 2),
        ("--method", args.method, "dp"),
        ("--lookahead", args.lookahead, False),
    )
    if args.inject_failures < 0:
        raise CliError(f"--inject-failures must be 0 or more, not {args.inject_failures}")
    harvest = harvest_of(args)
    progress = StderrProgress(sys.stderr)
    try:
        report = _run_intermittent(args, harvest, progress)
    except IntermittentInfeasibleError as exc:
        raise CliError(f"{os.fspath(args.net)} on {os.fspath(args.hw)}: {exc}") from None
    return _finish(args, progress, report.data, report.text, report.failures)


def _run_intermittent(
    args: argparse.Namespace, harvest: Harvest, progress: StderrProgress
) -> IntermittentReport:
    return run_intermittent_flow(
        IntermittentRequest(
            network=args.net,
            chip=args.hw,
            harvest=harvest,
            objective=Objective(args.objective or Objective.LATENCY.value),
            checkpoints=Checkpointing(args.checkpoints),
            policy=None if args.policy == AUTO else GatingPolicy(args.policy),
            rails=args.rails,
            seed=args.seed,
            inject_failures=args.inject_failures,
            failure_seed=args.seed,
            out_dir=args.out_dir,
            progress=progress,
        )
    )
