"""`voltflow import`: an ONNX model into a network file with its scales; `--list-ops` its census."""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from voltflow.cli.console import CliError, check_writable, emit
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.onnx_graph import OnnxError, read_onnx
from voltflow.scheduler.onnx_import import SUPPORTED_OPS, census, import_onnx
from voltflow.scheduler.onnx_model import import_document, import_model
from voltflow.scheduler.quantise import QuantError
from voltflow.scheduler.texttable import format_table

__all__ = ["cmd_import", "network_yaml", "parse_input_shape"]


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``--input-shape C,H,W`` (or F for a vector input)."""
    if text is None:
        return None
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if not dims or len(dims) > 3 or min(dims) < 1:
        raise CliError(f"--input-shape must be C,H,W of positive ints (or F), not {text!r}")
    return dims


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**9)
    return text.removesuffix("\n...\n").strip()  # a plain scalar is dumped as a document


def network_yaml(document: dict[str, Any], header: list[str]) -> str:
    """The network file's text: a comment header, the keys in the format's order, one op a line."""
    lines = [f"# {line}" if line else "#" for line in header]
    for key in ("format", "name", "title", "source"):
        lines.append(f"{key}: {_flow(document[key])}")
    lines.append(f"input: {_flow(document['input'])}")
    lines.append("ops:")
    lines.extend(f"  - {_flow(op)}" for op in document["ops"])
    if "parameters" in document:
        params = document["parameters"]
        lines.append("parameters:")
        for key in ("onnx", "sha256", "input_shape", "scheme"):
            lines.append(f"  {key}: {_flow(params[key])}")
        lines.append("  scales:")
        lines.extend(f"    {_flow(name)}: {value!r}" for name, value in params["scales"].items())
    return "\n".join(lines) + "\n"


def _census(args: argparse.Namespace) -> int:
    graph = read_onnx(args.model, parse_input_shape(args.input_shape))
    rows, problems = census(graph)
    notes: list[str] = []
    if not problems:
        notes = list(import_onnx(graph).notes)
    report = {
        "format": "voltflow-onnx-census/1",
        "model": str(args.model),
        "opset": graph.opset,
        "ops": [{"op_type": op, "maps_to": outcome, "nodes": n} for op, outcome, n in rows],
        "unsupported": problems,
        "notes": notes,
        "supported": dict(SUPPORTED_OPS),
    }
    table = format_table(
        ["ONNX op", "maps to", "nodes"], [[op, outcome, str(n)] for op, outcome, n in rows]
    )
    text = f"{args.model}: opset {graph.opset}, {len(graph.nodes)} nodes\n{table}"
    if problems:
        text += f"\n{len(problems)} node(s) cannot run on the accelerator:\n" + "\n".join(
            f"  {p}" for p in problems
        )
    else:
        text += "\nevery node maps onto the accelerator"
    text += "".join(f"\nnote: {note}" for note in notes)
    emit(args, report, text)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if args.list_ops:
        return _census(args)
    if not args.output:
        raise CliError("give the network file to write with -o FILE.yaml (or use --list-ops)")
    if not str(args.output).endswith((".yaml", ".yml")):
        raise CliError(f"-o {args.output}: the network file must end in .yaml or .yml")
    check_writable(args.output)
    model_path = Path(args.model)
    shape = parse_input_shape(args.input_shape)
    try:
        model = import_model(
            model_path, input_shape=shape, calibration=args.calibration, seed=args.seed
        )
    except (OnnxError, QuantError) as exc:
        raise CliError(str(exc)) from None
    assert model.imported is not None and model.quantised is not None
    document = import_document(model, model_path, Path(args.output))
    if args.name:
        document["name"] = args.name
    imported, quantised = model.imported, model.quantised
    header = [
        f"Imported by `voltflow import` from {model_path.name} "
        f"(ONNX opset {imported.graph.opset}).",
        f"Weights: the model's own ({len(quantised.weights)} conv/fc ops), int8 per output "
        "channel; activation scales: " + quantised.scheme + ".",
    ]
    if imported.host_softmax:
        header.append("The model's final Softmax is left to the host (not run on the chip).")
    header.extend(f"Note: {note}" for note in quantised.notes)
    write_atomic(args.output, network_yaml(document, header))
    net = model.network
    report = {
        "format": "voltflow-import/1",
        "model": str(model_path),
        "output": str(args.output),
        "network": document["name"],
        "opset": imported.graph.opset,
        "ops": len(net.ops),
        "macs": net.macs,
        "weights": "file",
        "quantised_model": imported.quantised,
        "scheme": quantised.scheme,
        "host_softmax": imported.host_softmax,
        "notes": list(quantised.notes),
    }
    lines = [
        f"{model_path} -> {args.output}: {len(net.ops)} ops, {net.macs:,} MACs, "
        f"{len(quantised.weights)} weighted ops with the model's weights",
        f"scales: {quantised.scheme}",
    ]
    if imported.host_softmax:
        lines.append("final Softmax: left to the host")
    lines.extend(f"note: {note}" for note in quantised.notes)
    emit(args, report, "\n".join(lines))
    if not args.json:
        print(f"next: voltflow cosim --net {args.output} --frames 1", file=sys.stderr)
    return 0
