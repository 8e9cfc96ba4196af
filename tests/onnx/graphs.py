"""Small ONNX models built with `onnx.helper` for the import tests (seeded float weights)."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: The topologies shipped with the onnx package (weights from ConstantOfShape).
LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def light(name: str) -> Path:
    return LIGHT / f"light_{name}.onnx"


class Builder:
    """Nodes, seeded initializers and one input; `save` writes a checked model."""

    def __init__(self, shape: Sequence[int], seed: int = 1, opset: int = 13) -> None:
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.input_shape = list(shape)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0

    def const(self, array: np.ndarray, name: str | None = None) -> str:
        self.count += 1
        name = name or f"k{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, *shape: int, scale: float = 0.3) -> str:
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> str:
        self.count += 1
        outs = [f"t{self.count}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=f"n{self.count}", **attrs))
        return outs[0]

    def conv(
        self,
        x: str,
        c_in: int,
        c_out: int,
        k: int | tuple[int, int],
        groups: int = 1,
        bias: bool = True,
        **attrs: Any,
    ) -> str:
        kh, kw = (k, k) if isinstance(k, int) else k
        inputs = [x, self.weight(c_out, c_in // groups, kh, kw)]
        if bias:
            inputs.append(self.weight(c_out, scale=0.1))
        return self.node("Conv", inputs, group=groups, **attrs)

    def model(self, output: str, dims: Sequence[int | str] | None = None) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "test",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims or self.input_shape)],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],  # shape set below
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8 if self.opset < 21 else 10
        # Full check with the inferred output shape (the builder does not know it).
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        known = {v.name: v for v in (*inferred.graph.value_info, *inferred.graph.output)}
        if known[output].type.tensor_type.HasField("shape"):
            model.graph.output[0].CopyFrom(known[output])
        onnx.checker.check_model(model)
        return model

    def save(self, path: Path, output: str, dims: Sequence[int | str] | None = None) -> Path:
        onnx.save(self.model(output, dims), str(path))
        return path


def ort_run(path: Path, x: np.ndarray, outputs: Sequence[str] | None = None) -> list[np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(list(outputs) if outputs else None, {name: x})
