"""An outside reference for the int8 arithmetic: the same quantised ONNX model run by onnxruntime.

`compare_with_onnxruntime` runs one seeded float input through onnxruntime (the model as it is, for
the final output and the top-1 class; and a copy that also outputs every int8 tensor the importer
mapped, for the per-layer comparison) and through the golden model (which the RTL matches bit for
bit), and reports per voltflow tensor the share of elements equal and the largest difference in
LSB. onnxruntime is a development dependency (``pip install -e .[dev]``); it is imported here only.

Known sources of difference (docs/arithmetic.md, "Against onnxruntime"):

- where the model requantises a tensor twice (a concat input quantised at its own scale and then
  at the concat's), the accelerator rounds once, to the second scale;
- an add's and an average pool's ratios go through 16-bit multipliers; onnxruntime computes them
  in float32;
- ties: the accelerator rounds half up, onnxruntime half to even;
- onnxruntime runs a Conv whose input DequantizeLinear also feeds another node in float32 (not as
  QLinearConv); float rounding can move a result across a rounding boundary.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from voltflow.cosim.model_case import model_case
from voltflow.scheduler.onnx_model import Model
from voltflow.scheduler.quantise import seeded_input

__all__ = ["LayerAgreement", "OrtComparison", "compare_with_onnxruntime", "comparison_rows"]


@dataclass(frozen=True, slots=True)
class LayerAgreement:
    """One tensor: voltflow's int8 values against onnxruntime's."""

    tensor: str
    onnx_tensor: str
    elements: int
    equal: int
    max_lsb: int

    @property
    def equal_share(self) -> float:
        return self.equal / self.elements if self.elements else 1.0


@dataclass(frozen=True, slots=True)
class OrtComparison:
    """The comparison of one input: per tensor, the final output and the top-1 class."""

    model: str
    seed: int
    layers: tuple[LayerAgreement, ...]
    final: LayerAgreement
    top1_voltflow: int
    top1_onnxruntime: int
    #: The instrumented copy's final output equals the plain model's (fusions unchanged).
    instrumented_same: bool
    notes: tuple[str, ...]

    @property
    def top1_agrees(self) -> bool:
        return self.top1_voltflow == self.top1_onnxruntime

    def to_json(self) -> dict[str, Any]:
        def row(a: LayerAgreement) -> dict[str, Any]:
            return {
                "tensor": a.tensor,
                "onnx_tensor": a.onnx_tensor,
                "elements": a.elements,
                "equal": a.equal,
                "equal_share": a.equal_share,
                "max_lsb": a.max_lsb,
            }

        return {
            "format": "voltflow-ort-comparison/1",
            "model": self.model,
            "seed": self.seed,
            "layers": [row(a) for a in self.layers],
            "final": row(self.final),
            "top1": {"voltflow": self.top1_voltflow, "onnxruntime": self.top1_onnxruntime},
            "top1_agrees": self.top1_agrees,
            "instrumented_same": self.instrumented_same,
            "notes": list(self.notes),
        }


def _session(model_proto: Any) -> Any:
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a dev dependency
        raise RuntimeError(
            "the onnxruntime comparison needs onnxruntime: pip install -e '.[dev]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _chw(array: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(array).reshape(shape)


def _agreement(
    tensor: str, onnx_tensor: str, ours: np.ndarray, theirs: np.ndarray
) -> LayerAgreement:
    diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    return LayerAgreement(
        tensor=tensor,
        onnx_tensor=onnx_tensor,
        elements=int(diff.size),
        equal=int(np.count_nonzero(diff == 0)),
        max_lsb=int(diff.max(initial=0)),
    )


def compare_with_onnxruntime(model: Model, seed: int = 0) -> OrtComparison:
    """Compare the golden model of a quantised ONNX model with onnxruntime on the seeded input.

    Raises
    ------
    ValueError
        If ``model`` is not a quantised ONNX model (QDQ or QOperator).
    """
    import onnx

    imported, quantised = model.imported, model.quantised
    if imported is None or quantised is None or not imported.quantised:
        raise ValueError("the onnxruntime comparison needs a quantised (QDQ/QOperator) ONNX model")
    network = model.network
    graph = imported.graph
    x = seeded_input(network, seed)
    case = model_case(model, seed, x)
    feed = {graph.input_name: x.reshape(graph.input_shape)}

    proto = onnx.load(str(graph.path))
    final_name = graph.output_names[0]
    plain = _session(proto).run([final_name], feed)[0]

    tensors = (network.input_name, *(op.name for op in network.ops))
    # Tensors rounded to a concat's scale instead of their own: compared at the concat.
    adjusted = {
        name
        for name in tensors
        if name in imported.scales and quantised.scales[name] != imported.scales[name]
    }
    wanted = {
        tensor: onnx_name
        for tensor, onnx_name in imported.int8_names.items()
        if tensor not in adjusted
    }
    known = {value.name for value in proto.graph.output}
    for onnx_name in wanted.values():
        if onnx_name not in known:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(onnx_name, 0, None))
    names = [final_name, *wanted.values()]
    results = dict(zip(names, _session(proto).run(names, feed), strict=True))
    instrumented_same = bool(np.array_equal(results[final_name], plain))

    layers = []
    for tensor, onnx_name in wanted.items():
        shape = network.shape(tensor)
        dims = (shape.channels, shape.height, shape.width)
        layers.append(
            _agreement(tensor, onnx_name, case.tensor(tensor), _chw(results[onnx_name], dims))
        )
    out = network.output
    out_scale = quantised.scales[out.name]
    theirs_final = np.clip(np.rint(np.asarray(plain, np.float64) / out_scale), -128, 127)
    dims = (out.out.channels, out.out.height, out.out.width)
    final = _agreement(out.name, final_name, case.tensor(out.name), _chw(theirs_final, dims))
    return OrtComparison(
        model=str(graph.path),
        seed=seed,
        layers=tuple(layers),
        final=final,
        top1_voltflow=int(np.argmax(case.tensor(out.name).reshape(-1))),
        top1_onnxruntime=int(np.argmax(np.asarray(plain).reshape(-1))),
        instrumented_same=instrumented_same,
        notes=tuple(quantised.notes),
    )


def comparison_rows(result: OrtComparison) -> list[list[str]]:
    """Table rows: tensor, elements, equal share, max LSB."""
    rows = [
        [a.tensor, f"{a.elements:,}", f"{100 * a.equal_share:.2f} %", str(a.max_lsb)]
        for a in result.layers
    ]
    f = result.final
    rows.append(
        [f"output ({f.tensor})", f"{f.elements:,}", f"{100 * f.equal_share:.2f} %", str(f.max_lsb)]
    )
    return rows
