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

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.golden import run_op
from voltflow.cosim.model_case import model_case
from voltflow.scheduler.network import Network
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
    """One tensor: voltflow's int8 values against onnxruntime's.

    ``equal``/``max_lsb`` compare the whole run (differences propagate from layer to layer);
    ``local_equal``/``local_max_lsb`` compare the op alone, given onnxruntime's own int8 inputs
    (None for the input and for tensors whose inputs onnxruntime keeps at other scales).
    """

    tensor: str
    onnx_tensor: str
    elements: int
    equal: int
    max_lsb: int
    local_equal: int | None = None
    local_max_lsb: int | None = None

    @property
    def local_share(self) -> float | None:
        if self.local_equal is None:
            return None
        return self.local_equal / self.elements if self.elements else 1.0

    @property
    def equal_share(self) -> float:
        return self.equal / self.elements if self.elements else 1.0


@dataclass(frozen=True, slots=True)
class OrtComparison:
    """The comparison of one input: per tensor, the final output and the top-1 class."""

    model: str
    seed: int
    layers: tuple[LayerAgreement, ...]
    #: The accelerator's last tensor against the model's (None: the model's output is the host's
    #: Softmax of it, which only the top-1 compares).
    final: LayerAgreement | None
    #: The class voltflow's output picks, onnxruntime's optimised (deployed) session's, and the
    #: unoptimised session's (the graph as written), on the same input.
    top1_voltflow: int
    top1_onnxruntime: int
    top1_reference: int
    notes: tuple[str, ...]

    @property
    def top1_agrees(self) -> bool:
        return self.top1_voltflow == self.top1_onnxruntime == self.top1_reference

    def to_json(self) -> dict[str, Any]:
        def row(a: LayerAgreement) -> dict[str, Any]:
            return {
                "tensor": a.tensor,
                "onnx_tensor": a.onnx_tensor,
                "elements": a.elements,
                "equal": a.equal,
                "equal_share": a.equal_share,
                "max_lsb": a.max_lsb,
                "local_equal": a.local_equal,
                "local_equal_share": a.local_share,
                "local_max_lsb": a.local_max_lsb,
            }

        return {
            "format": "voltflow-ort-comparison/1",
            "model": self.model,
            "seed": self.seed,
            "layers": [row(a) for a in self.layers],
            "final": None if self.final is None else row(self.final),
            "top1": {
                "voltflow": self.top1_voltflow,
                "onnxruntime": self.top1_onnxruntime,
                "onnxruntime_unoptimised": self.top1_reference,
            },
            "top1_agrees": self.top1_agrees,
            "notes": list(self.notes),
        }


def _session(model_proto: Any, optimise: bool = True) -> Any:
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a dev dependency
        raise RuntimeError(
            "the onnxruntime comparison needs onnxruntime: pip install -e '.[dev]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if not optimise:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(
        model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _chw(array: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(array).reshape(shape)


def _dims(network: Network, tensor: str) -> tuple[int, int, int]:
    shape = network.shape(tensor)
    return shape.channels, shape.height, shape.width


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

    Per tensor, against onnxruntime running the graph as written (no graph optimisation: every
    QuantizeLinear rounds where the model says, the operators between them run in float32); the
    top-1 class also against the optimised session (fused QLinearConv and friends, int32
    accumulation), which is what a deployment runs.

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
    deployed = _session(proto).run([final_name], feed)[0]

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
            # Contrib operators' outputs are not typed by shape inference: int8 tensors.
            fallback = onnx.helper.make_tensor_value_info(onnx_name, onnx.TensorProto.INT8, None)
            proto.graph.output.append(typed.get(onnx_name, fallback))
    names = [final_name, *wanted.values()]
    results = dict(zip(names, _session(proto, optimise=False).run(names, feed), strict=True))

    theirs = {
        tensor: _chw(results[onnx_name], _dims(network, tensor))
        for tensor, onnx_name in wanted.items()
    }
    layers = []
    for tensor, onnx_name in wanted.items():
        row = _agreement(tensor, onnx_name, case.tensor(tensor), theirs[tensor])
        if tensor != network.input_name:
            op = network.op(tensor)
            if all(name in theirs for name in op.inputs):
                inputs = [theirs[name].astype(np.int8) for name in op.inputs]
                alone = run_op(op, inputs, case.params.get(tensor))
                local = _agreement(tensor, onnx_name, alone, theirs[tensor])
                row = dataclasses.replace(row, local_equal=local.equal, local_max_lsb=local.max_lsb)
        layers.append(row)
    out = network.output
    ours = case.tensor(out.name)
    final = next((a for a in layers if a.tensor == out.name), None)
    if final is None and not imported.host_softmax:
        # The model dequantises the accelerator's last tensor (after an activation, say):
        # quantise onnxruntime's float output back with that tensor's scale.
        values = np.asarray(results[final_name], np.float64) / quantised.scales[out.name]
        theirs_out = np.clip(np.rint(values), -128, 127).reshape(ours.shape)
        final = _agreement(out.name, final_name, ours, theirs_out)
    top1 = int(np.argmax(ours.reshape(-1)))
    return OrtComparison(
        model=str(graph.path),
        seed=seed,
        layers=tuple(layers),
        final=final,
        top1_voltflow=top1,
        top1_onnxruntime=int(np.argmax(np.asarray(deployed).reshape(-1))),
        top1_reference=int(np.argmax(np.asarray(results[final_name]).reshape(-1))),
        notes=tuple(quantised.notes),
    )


def comparison_rows(result: OrtComparison) -> list[list[str]]:
    """Table rows: tensor, elements, equal share and max LSB over the run; elements that differ
    and max LSB of the op alone."""

    def alone(a: LayerAgreement) -> list[str]:
        if a.local_equal is None:
            return ["-", "-"]
        return [f"{a.elements - a.local_equal:,}", str(a.local_max_lsb)]

    rows = [
        [a.tensor, f"{a.elements:,}", f"{100 * a.equal_share:.2f} %", str(a.max_lsb), *alone(a)]
        for a in result.layers
    ]
    f = result.final
    if f is not None and not any(a.tensor == f.tensor for a in result.layers):
        rows.append(
            [
                f"output ({f.tensor})",
                f"{f.elements:,}",
                f"{100 * f.equal_share:.2f} %",
                str(f.max_lsb),
                *alone(f),
            ]
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
    # Old models list their initializers as graph inputs (IR version 3); a current IR version
    # does not need that, and onnxruntime's quantiser converts the model to opset 13 or newer.
    initialized = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initialized]
    del graph.input[:]
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 8)
    if model.opset_import[0].version < 13:
        model = onnx.version_converter.convert_version(model, 13)
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
    operators: bool = False,
) -> Path:
    """onnxruntime's ``quantize_static`` in the form voltflow runs: QDQ, int8, symmetric
    activations and weights, weights per channel; calibrated (MinMax) on ``samples`` seeded
    standard-normal inputs. ``dedicated``: one DequantizeLinear per reader
    (``DedicatedQDQPair``), so that onnxruntime runs every Conv as QLinearConv. ``share``: the
    tensors voltflow keeps at one scale (a concat's inputs and output) get one range
    (``TensorQuantOverrides`` from voltflow's own float calibration on the same inputs), so the
    model does not round them twice. ``operators``: the QOperator format (QLinearConv,
    QLinearAdd, QGemm...) instead of QDQ."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    onnxruntime.set_default_logger_severity(3)  # the calibration sessions' warnings
    model = onnx.load(os.fspath(src))
    value = model.graph.input[0]
    dims = [d.dim_value or 1 for d in value.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(dims).astype(np.float32) for _ in range(samples)]

    class _Reader(CalibrationDataReader):
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
        quant_format=QuantFormat.QOperator if operators else QuantFormat.QDQ,
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
                overrides[onnx_name] = [{"rmin": np.float32(-top), "rmax": np.float32(top)}]
    return overrides
