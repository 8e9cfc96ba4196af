"""`voltflow cosim`: the end-to-end flow on the RTL, or one inference at a fixed power state."""

import argparse
import sys

from voltflow.cli.console import CliError, StderrProgress, emit
from voltflow.cli.parser import AUTO
from voltflow.cosim.build import TraceFormat
from voltflow.cosim.flow import FlowRequest, StateRequest, run_fixed_state, run_flow
from voltflow.cosim.toolchain import ToolchainError
from voltflow.scheduler.chip import GatingPolicy
from voltflow.scheduler.solve import Method

__all__ = ["cmd_cosim"]


def cmd_cosim(args: argparse.Namespace) -> int:
    try:
        return _cosim(args)
    except ToolchainError as exc:  # a missing system library or tool: the message says which
        raise CliError(str(exc)) from None


def _cosim(args: argparse.Namespace) -> int:
    progress = StderrProgress(sys.stderr)
    if args.state is not None:
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
            progress=progress,
        )
    )
    progress.close()
    emit(args, report.data, report.text)
    if report.failures:
        print(f"voltflow cosim: FAIL: {'; '.join(report.failures)}", file=sys.stderr)
        return 1
    return 0
