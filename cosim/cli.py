"""The `voltflow` console command: one entry point, one subcommand per task, `--json` everywhere."""

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

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


def _emit(args: argparse.Namespace, report: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(text)


def _load_inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from scheduler.chip import GatingPolicy, load_chip
    from scheduler.network import load_network

    network = load_network(args.net)
    chip = load_chip(args.hw)
    return network, chip, GatingPolicy(args.policy)


def cmd_model(args: argparse.Namespace) -> int:
    from scheduler.cost import build_cost_table
    from scheduler.model_report import model_json, model_text

    network, chip, policy = _load_inputs(args)
    table = build_cost_table(network, chip, policy)
    state_v = args.state if args.state is not None else [chip.nominal_v] * 3
    try:
        state = table.state_index(state_v)
    except ValueError as exc:
        raise CliError(f"--state: {exc}") from None
    report = model_json(table, state)
    _emit(args, report, model_text(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voltflow",
        description="Energy-minimal power-state schedules for DNN accelerators, proven on RTL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--net", default="squeezenet", help="zoo network name or a network .yaml file"
        )
        p.add_argument("--hw", default="powerflow_ref", help="chip name or a chip .yaml file")
        p.add_argument(
            "--policy",
            default="rram_pg",
            choices=["no_pg", "layer_pg", "rram_pg"],
            help="bank power-gating policy (default rram_pg)",
        )
        p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")

    model = sub.add_parser("model", help="per-layer cycles, time and energy of one power state")
    common(model)
    model.add_argument(
        "--state",
        type=_parse_state,
        default=None,
        metavar="VSYS,VRRAM,VFEEDER",
        help="voltages of the sys, rram and feeder domains (default: nominal)",
    )
    model.set_defaults(func=cmd_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from scheduler.chip import ChipError
    from scheduler.network import NetworkError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (CliError, ChipError, NetworkError, ValueError) as exc:
        print(f"voltflow {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
