"""The `voltflow` console command: one entry point, one subcommand per task, `--json` everywhere.

The package parses arguments, calls the library (`voltflow.scheduler`, `voltflow.pmu`,
`voltflow.cosim`) and prints; the flow itself is `voltflow.cosim.flow.run_flow`.
"""

import importlib
import sys
from collections.abc import Sequence

from voltflow.cli.console import INTERRUPTED, USER_ERROR, CliError
from voltflow.cli.parser import build_parser

__all__ = ["build_parser", "main"]

#: The module whose ``cmd_<command>`` runs each subcommand. It is imported when its command runs,
#: not here: `voltflow.cosim` (Amaranth, the RTL, cocotb) takes 0.85 s to import and the PMU's
#: Amaranth layouts 0.4 s, while `model`/`schedule`/`sweep` need only the scheduler (0.2 s);
#: `voltflow model --net ds_cnn` takes 0.9 s this way, 1.3 s with every import at the top.
COMMAND_MODULES = {
    "model": "voltflow.cli.scheduling",
    "schedule": "voltflow.cli.scheduling",
    "sweep": "voltflow.cli.scheduling",
    "compile": "voltflow.cli.rom",
    "disasm": "voltflow.cli.rom",
    "cosim": "voltflow.cli.cosim",
    "import": "voltflow.cli.onnx",
    "upf": "voltflow.cli.upf",
    "profile": "voltflow.cli.profile",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``voltflow`` with ``argv`` (default: the process's); return the exit status.

    0: done; 1: a check failed (cosim); 2: a user error, printed as one line; 3: the solver
    stopped before it found a schedule; 130: interrupted (Ctrl-C). docs/cli.md lists them.
    """
    args = build_parser().parse_args(argv)
    try:
        module = importlib.import_module(COMMAND_MODULES[args.command])
        return int(getattr(module, f"cmd_{args.command}")(args))
    # Every library error a user can cause (bad chip, network, instance, schedule or ROM file,
    # an infeasible rate) is a ValueError.
    except (CliError, ValueError) as exc:
        print(f"voltflow {args.command}: error: {exc}", file=sys.stderr)
        return USER_ERROR
    except OSError as exc:  # a file the libraries did not open themselves
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"voltflow {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"voltflow {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
