"""`voltflow profile`: a network's inputs through the golden model on a sparsity-aware chip."""

import argparse
import json
import sys
from typing import Any

from voltflow.cli.console import StatusLine, check_writable, emit
from voltflow.cosim.inputs_flow import DEFAULT_INPUTS
from voltflow.cosim.model_case import case_of
from voltflow.cosim.profile import load_inputs, measure_profile, random_inputs
from voltflow.pmu.limits import check_chip
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.onnx_model import load_model
from voltflow.scheduler.profile import profile_json
from voltflow.scheduler.texttable import format_table

__all__ = ["cmd_profile"]


def cmd_profile(args: argparse.Namespace) -> int:
    check_writable(args.output)
    model = load_model(args.net, seed=args.seed)
    network = model.network
    chip = load_chip(args.hw)
    check_chip(chip, args.hw)
    if args.input_dir is not None:
        inputs = load_inputs(args.input_dir, network)
    else:
        count = DEFAULT_INPUTS if args.inputs is None else args.inputs
        inputs = random_inputs(network, count, args.seed)
    status = StatusLine(sys.stderr)
    profile = measure_profile(
        network,
        chip,
        case_of(model, args.seed),
        inputs,
        progress=lambda done, total: status(f"profile: {done}/{total} inputs"),
    )
    status.close()
    doc = profile_json(profile)
    write_atomic(args.output, json.dumps(doc) + "\n")
    summary = {k: v for k, v in doc.items() if k != "operands"}
    emit(args, summary, _text(summary, args.output))
    return 0


def _text(summary: dict[str, Any], path: str) -> str:
    s = summary["summary"]
    rows = [
        [
            layer["name"],
            f"{layer['activation_density']['mean']:.3f}",
            "-" if layer["weight_density"] is None else f"{layer['weight_density']:.3f}",
            f"{layer['cycles_nominal']['mean']:,.0f}",
            f"{layer['cycles_nominal']['min']:,.0f}",
            f"{layer['cycles_nominal']['max']:,.0f}",
            f"{layer['energy_nominal_j']['mean'] * 1e6:.4f}",
        ]
        for layer in s["layers"]
    ]
    table = format_table(
        ["layer", "act dens", "w dens", "cycles mean", "min", "max", "energy uJ"], rows
    )
    frame_c, frame_e = s["frame_cycles_nominal"], s["frame_energy_nominal_j"]
    return (
        f"{summary['network']} on {summary['chip']}: {len(summary['inputs'])} inputs, "
        f"at {s['nominal_v']:g} V everywhere\n\n{table}\n\nframe: {frame_c['mean']:,.0f} cycles "
        f"(min {frame_c['min']:,.0f}, p95 {frame_c['p95']:,.0f}, max {frame_c['max']:,.0f}), "
        f"{frame_e['mean'] * 1e6:.4f} uJ (min {frame_e['min'] * 1e6:.4f}, "
        f"max {frame_e['max'] * 1e6:.4f})\nprofile written to {path}"
    )
