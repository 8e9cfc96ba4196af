"""voltflow's int8 arithmetic against onnxruntime: `python -m bench.onnx_reference [--squeezenet]`.

Builds the reference models (a small CNN with every mapped op kind, and with ``--squeezenet`` the
onnx package's SqueezeNet 1.1 topology with seeded random weights), quantises them with
onnxruntime's ``quantize_static`` (QDQ, int8, symmetric, per channel), and prints per tensor the
share of int8 elements equal between onnxruntime and voltflow's golden model (which the RTL
matches bit for bit), the largest difference in LSB, and the top-1 agreement. Figures are printed,
never asserted (tests/onnx/test_reference.py asserts).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from voltflow.cosim.onnx_reference import (
    OrtComparison,
    compare_with_onnxruntime,
    comparison_rows,
    quantize_qdq,
    random_weights,
)
from voltflow.scheduler.onnx_model import load_model
from voltflow.scheduler.texttable import format_table

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def small_cnn(path: Path, seed: int = 1) -> Path:
    """A float CNN with every op kind the RTL runs: conv (3x3, 1x1, strided, depthwise), relu,
    max pool, concat, residual add, global average pool, flatten, fc."""
    rng = np.random.default_rng(seed)
    inits = []

    def w(name: str, *shape: int) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1
        inits.append(
            numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
        )
        return name

    def conv(
        x: str, out: str, c_in: int, c_out: int, k: int, group: int = 1, **attrs: Any
    ) -> onnx.NodeProto:
        w_name = w(f"{out}_w", c_out, c_in // group, k, k)
        b_name = w(f"{out}_b", c_out)
        return helper.make_node("Conv", [x, w_name, b_name], [out], group=group, **attrs)

    nodes = [
        conv("x", "c1", 3, 16, 3, pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        conv("p1", "d1", 16, 16, 3, group=16, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["d1"], ["rd1"]),
        conv("rd1", "e1", 16, 8, 1),
        helper.make_node("Relu", ["e1"], ["re1"]),
        conv("rd1", "e3", 16, 8, 3, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e3"], ["re3"]),
        helper.make_node("Concat", ["re1", "re3"], ["cat"], axis=1),
        conv("cat", "c2", 16, 16, 1),
        helper.make_node("Add", ["c2", "p1"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["ra2"]),
        helper.make_node("GlobalAveragePool", ["ra2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", w("fc_w", 10, 16), w("fc_b", 10)], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def reference_model(name: str, folder: Path, share: bool) -> Path:
    """The QDQ model of ``small_cnn`` or ``squeezenet`` (light topology, random weights)."""
    if name == "small_cnn":
        float_model = small_cnn(folder / "small_cnn.onnx")
    else:
        float_model = random_weights(LIGHT / f"light_{name}.onnx", folder / f"{name}_float.onnx")
    return quantize_qdq(float_model, folder / f"{name}_qdq.onnx", share=share)


def compare(name: str, folder: Path, seed: int = 0, share: bool = False) -> OrtComparison:
    return compare_with_onnxruntime(load_model(reference_model(name, folder, share)), seed)


def report(name: str, result: OrtComparison) -> str:
    table = format_table(
        ["tensor", "elements", "equal (run)", "max LSB", "differ (op alone)", "max LSB"],
        comparison_rows(result),
    )
    agree = "agrees" if result.top1_agrees else "DIFFERS"
    lines = [
        f"{name}: voltflow (golden = RTL) vs onnxruntime, seed {result.seed}",
        table,
        f"top-1: voltflow {result.top1_voltflow}, onnxruntime {result.top1_onnxruntime} "
        f"(unoptimised {result.top1_reference}): {agree}",
    ]
    lines.extend(f"note: {note}" for note in result.notes)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squeezenet", action="store_true", help="also SqueezeNet 1.1")
    parser.add_argument("--json", metavar="FILE", help="write the comparisons here")
    args = parser.parse_args(argv)
    names = ["small_cnn"] + (["squeezenet"] if args.squeezenet else [])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for share in (False, True):
                label = f"{name}, {'concat scales shared' if share else 'quantize_static defaults'}"
                result = compare(name, Path(tmp), share=share)
                results[label] = result.to_json()
                print(report(label, result))
                print()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
