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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.model_case import model_case
from voltflow.scheduler.onnx_model import Model
from voltflow.scheduler.quantise import seeded_input

__all__ = [
    "LayerAgreement",
    "OrtComparison",
    "compare_with_onnxruntime",
    "comparison_rows",
    "quantize_qdq",
    "random_weights",
]


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
    typed = {v.name: v for v in onnx.shape_inference.infer_shapes(proto).graph.value_info}
    for onnx_name in wanted.values():
        if onnx_name not in known:
            proto.graph.output.append(typed[onnx_name])
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


# ---- reference models ----------------------------------------------------------------------------


def random_weights(src: str | os.PathLike[str], dst: str | os.PathLike[str], seed: int = 0) -> Path:
    """A copy of a model whose ``ConstantOfShape`` weights (the ``light_*`` topologies') become
    seeded random initializers: He-normal conv and Gemm weights, small biases, batch norms near
    identity (scale ~1, variance ~1). The float model to quantise for the comparison."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.fspath(src))
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    readers: dict[str, tuple[str, int]] = {}
    for node in graph.node:
        for position, name in enumerate(node.input):
            readers.setdefault(name, (node.op_type, position))
    rng = np.random.default_rng(seed)
    keep = []
    new = []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            keep.append(node)
            continue
        shape = tuple(int(v) for v in inits[node.input[0]])
        op, position = readers.get(node.output[0], ("", -1))
        noise = rng.standard_normal(shape)
        if position == 1 and op in ("Conv", "Gemm"):
            fan_in = int(np.prod(shape[1:]))
            value = noise * np.sqrt(2.0 / max(fan_in, 1))
        elif op == "BatchNormalization" and position in (1, 4):
            value = 1.0 + 0.1 * np.abs(noise)
        else:
            value = 0.1 * noise
        new.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(new)
    out = Path(dst)
    onnx.save(model, os.fspath(out))
    return out


def quantize_qdq(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    samples: int = 4,
    seed: int = 2,
    *,
    dedicated: bool = True,
    share: bool = False,
) -> Path:
    """onnxruntime's ``quantize_static`` in the form voltflow runs: QDQ, int8, symmetric
    activations and weights, weights per channel; calibrated (MinMax) on ``samples`` seeded
    standard-normal inputs. ``dedicated``: one DequantizeLinear per reader
    (``DedicatedQDQPair``), so that onnxruntime runs every Conv as QLinearConv. ``share``: the
    tensors voltflow keeps at one scale (a concat's inputs and output) get one range
    (``TensorQuantOverrides`` from voltflow's own float calibration on the same inputs), so the
    model does not round them twice."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(os.fspath(src))
    value = model.graph.input[0]
    dims = [d.dim_value or 1 for d in value.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(dims).astype(np.float32) for _ in range(samples)]

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter([{value.name: d} for d in data])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    extra: dict[str, Any] = {}
    if share:
        extra["TensorQuantOverrides"] = shared_ranges(src, [d[0] for d in data])
    quantize_static(
        os.fspath(src),
        os.fspath(dst),
        _Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "DedicatedQDQPair": dedicated,
            **extra,
        },
    )
    return Path(dst)


def shared_ranges(
    src: str | os.PathLike[str], inputs: list[np.ndarray]
) -> dict[str, list[dict[str, Any]]]:
    """``TensorQuantOverrides`` giving each group of tensors that must share a scale (a max
    pool's or concat's inputs and output) one symmetric range: the largest magnitude of the
    group over voltflow's float run of ``inputs``, for every ONNX tensor that holds a member."""
    from voltflow.scheduler.onnx_graph import read_onnx
    from voltflow.scheduler.onnx_import import import_onnx
    from voltflow.scheduler.quantise import calibrate, share_groups

    imported = import_onnx(read_onnx(src))
    ranges = calibrate(imported, inputs)
    overrides: dict[str, list[dict[str, Any]]] = {}
    for group in share_groups(imported.network):
        if len(group) < 2:
            continue
        top = max(ranges[name] for name in group)
        for name in group:
            for onnx_name in imported.onnx_names.get(name, ()):
                overrides[onnx_name] = [
                    {"rmin": np.float32(-top), "rmax": np.float32(top)}
                ]
    return overrides
