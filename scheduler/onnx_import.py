"""ONNX graphs mapped onto voltflow ops: the network file of a model and its parameters.

`import_onnx` walks a checked `Graph` (`scheduler.onnx_graph`) node by node and builds the ops of a
``voltflow-network/1`` document:

- Conv -> ``conv`` (any kernel, stride, explicit or ``auto_pad`` padding; groups 1 or depthwise),
  Gemm and MatMul with a constant B -> ``fc``, MatMul of two activations -> ``matmul``;
- MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool -> pools; Add/Sum of two activations ->
  ``add``; Concat along channels -> ``concat``;
- Relu and Clip(0, c) are fused into the producing conv, fc or add (``relu``; a Clip's upper bound
  caps the tensor's quantisation range); BatchNormalization and per-channel Mul/Add/Sub/Div with a
  constant are folded into the producing conv or fc (exact in real arithmetic);
- Flatten, Reshape, Squeeze and Unsqueeze that only regroup dimensions are views (an fc flattens
  its input itself); Dropout and Identity are removed; a final Softmax is left to the host;
- initializers, Constant, ConstantOfShape and arithmetic on constants (Shape of a static tensor,
  Gather, Concat, Cast, Unsqueeze, ...) are evaluated here;
- QuantizeLinear / DequantizeLinear pairs (QDQ models) and QLinearConv, QLinearMatMul, QLinearAdd,
  QLinearConcat, QLinearGlobalAveragePool (QOperator models) keep the model's own int8 weights and
  scales.

Every node that cannot be mapped is collected; `import_onnx` then raises `OnnxError` naming them all
(index, name, op type and why) and the supported operators. `census` reports what maps to what.
"""

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from .documents import short
from .network import FORMAT, Network, NetworkError, network_from_document
from .onnx_graph import Graph, Node, OnnxError

__all__ = [
    "SUPPORTED_OPS",
    "Imported",
    "Layer",
    "census",
    "import_onnx",
]

#: What each supported ONNX operator becomes (``voltflow import --list-ops`` prints this).
SUPPORTED_OPS: Final[Mapping[str, str]] = {
    "Conv": "conv (depthwise when group = channels)",
    "Gemm": "fc (constant B)",
    "MatMul": "fc (constant B) or matmul (two activations)",
    "MaxPool": "maxpool",
    "AveragePool": "avgpool",
    "GlobalAveragePool": "avgpool (global)",
    "GlobalMaxPool": "maxpool (global)",
    "Add": "add (two activations) or folded bias (constant)",
    "Sum": "add",
    "Concat": "concat (channels)",
    "Relu": "relu of the producing conv, fc or add",
    "Clip": "relu with a capped range (min 0)",
    "BatchNormalization": "folded into the producing conv or fc",
    "Mul": "folded per-channel scale",
    "Sub": "folded per-channel bias",
    "Div": "folded per-channel scale",
    "Flatten": "view",
    "Reshape": "view",
    "Squeeze": "view",
    "Unsqueeze": "view",
    "Dropout": "removed",
    "Identity": "removed",
    "Softmax": "left to the host (final op only)",
    "Constant": "constant",
    "ConstantOfShape": "constant",
    "Shape": "constant (static shapes)",
    "Gather": "constant",
    "Cast": "constant",
    "Transpose": "constant (weights only)",
    "Sqrt": "constant",
    "QuantizeLinear": "quantisation scale of the tensor",
    "DequantizeLinear": "quantisation scale of the tensor / int8 weights",
    "QLinearConv": "conv with the model's int8 weights",
    "QLinearMatMul": "fc with the model's int8 weights",
    "QGemm": "fc with the model's int8 weights",
    "QLinearAdd": "add",
    "QLinearConcat": "concat",
    "QLinearGlobalAveragePool": "avgpool (global)",
}

_CONST_FOLDABLE: Final = frozenset(
    {
        "Shape",
        "Gather",
        "Cast",
        "Unsqueeze",
        "Squeeze",
        "Concat",
        "Reshape",
        "Flatten",
        "Transpose",
        "Mul",
        "Add",
        "Sub",
        "Div",
        "Sqrt",
        "Identity",
        "QuantizeLinear",
    }
)


class _Unsupported(Exception):
    """This node cannot be mapped; the text says why."""


@dataclass(slots=True)
class Layer:
    """A conv or fc op under construction and its parameters.

    ``weight``/``bias`` are float64 in real units (conv ``(C_out, C_in / groups, kh, kw)``, fc
    ``(N, C, H, W)`` over its input); for a quantised model ``qweight`` (int8, same shape) with its
    per-output-channel ``weight_scale`` and ``qbias`` (int32, in units of input scale x weight
    scale) are the model's own values.
    """

    doc: dict[str, Any]
    weight: np.ndarray
    bias: np.ndarray
    qweight: np.ndarray | None = None
    weight_scale: np.ndarray | None = None
    qbias: np.ndarray | None = None


@dataclass(slots=True)
class _Const:
    value: np.ndarray
    #: (int values, scale, zero point, axis) when the constant is a DequantizeLinear of integers.
    quant: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None


@dataclass(slots=True)
class _Act:
    tensor: str  # voltflow tensor (op or input name)
    dims: tuple[int, ...]  # ONNX shape, batch first


@dataclass(slots=True)
class _Bad:
    """The output of a node that could not be mapped (its readers are not blamed for it)."""


@dataclass(slots=True)
class _Host:
    """The output of the final Softmax (and its Q/DQ or reshaped copies): computed by the host
    from ``act``, the accelerator's last tensor."""

    act: _Act


_Value = _Const | _Act | _Bad | _Host


@dataclass(frozen=True, slots=True)
class Imported:
    """An ONNX model mapped onto voltflow.

    Attributes
    ----------
    graph : Graph
    document : dict
        The ``voltflow-network/1`` mapping (what ``voltflow import`` writes, without parameters).
    network : Network
        The document, loaded and checked.
    layers : Mapping[str, Layer]
        Every conv and fc op's parameters, by op name.
    scales : Mapping[str, float]
        Quantisation scale per voltflow tensor given by the model (QDQ/QOperator); empty for a
        float model.
    caps : Mapping[str, float]
        Upper bound of a tensor's real range set by a Clip (ReLU6: 6.0).
    quantised : bool
        The model carries its own int8 weights and activation scales.
    host_softmax : bool
        The model ends in a Softmax that the host applies to the network output.
    notes : tuple of str
        Where the accelerator's arithmetic knowingly differs from the model's (for reports).
    int8_names : Mapping[str, str]
        For a quantised model: the ONNX tensor holding each voltflow tensor's int8 values.
    onnx_names : Mapping[str, tuple[str, ...]]
        Every ONNX tensor that holds a voltflow tensor's values (its views, a fused Relu's
        output, ...), by voltflow tensor.
    outcomes : tuple of (op type, outcome)
        What each ONNX node became, in node order.
    """

    graph: Graph
    document: dict[str, Any]
    network: Network
    layers: Mapping[str, Layer]
    scales: Mapping[str, float]
    caps: Mapping[str, float]
    quantised: bool
    host_softmax: bool
    outcomes: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()
    int8_names: Mapping[str, str] = field(default_factory=dict)
    onnx_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _chw(dims: Sequence[int]) -> tuple[int, int, int]:
    """The voltflow [C, H, W] of an ONNX shape with its batch first."""
    rest = tuple(dims[1:])
    if len(rest) == 3:
        return rest[0], rest[1], rest[2]
    if len(rest) == 2:
        return rest[0], rest[1], 1
    if len(rest) == 1:
        return rest[0], 1, 1
    if not rest:
        return 1, 1, 1
    return math.prod(rest[:-2]) * rest[-2], rest[-1], 1


def _window_dims(
    dims: Sequence[int],
    channels: int,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """[1, channels, Ho, Wo] of a window op (ceil mode as PyTorch and docs/network-format.md)."""
    out = []
    for axis in range(2):
        size, k, s = dims[2 + axis], kernel[axis], strides[axis]
        before, after = pads[axis], pads[axis + 2]
        span = size + before + after - k
        count = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (count - 1) * s >= size + before:
            count -= 1
        out.append(count)
    return (1, channels, *out)


def _ints(value: object, what: str) -> list[int]:
    if value is None:
        return []
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise _Unsupported(f"{what} must be integers, not {short(value)}")
    return [int(v) for v in array.reshape(-1)]


class _Importer:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.values: dict[str, _Value] = {
            graph.input_name: _Act(graph.input_name, graph.input_shape)
        }
        for name, array in graph.constants.items():
            self.values[name] = _Const(array)
        self.ops: list[dict[str, Any]] = []
        self.producer: dict[str, dict[str, Any]] = {}  # voltflow tensor -> its op document
        self.layers: dict[str, Layer] = {}
        self.scales: dict[str, float] = {}
        self.caps: dict[str, float] = {}
        self.quantised = False
        self.host_softmax = False
        self.outcomes: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.names: set[str] = {graph.input_name}
        self.out_chw: dict[str, tuple[int, int, int]] = {graph.input_name: _chw(graph.input_shape)}
        self.notes: list[str] = []
        self.computed_from: set[str] = set()  # tensors read by an op that computes (not concat)
        self.int8_names: dict[str, str] = {}

    # -- values ----------------------------------------------------------------------------------

    def value(self, node: Node, position: int) -> _Value:
        if position >= len(node.inputs) or not node.inputs[position]:
            raise _Unsupported(f"input {position} is missing")
        name = node.inputs[position]
        if name not in self.values:
            raise _Unsupported(f"reads {name!r}, which no earlier node produces")
        return self.values[name]

    def optional(self, node: Node, position: int) -> _Value | None:
        if position >= len(node.inputs) or not node.inputs[position]:
            return None
        return self.value(node, position)

    def act(self, node: Node, position: int = 0) -> _Act:
        value = self.value(node, position)
        if isinstance(value, _Bad):
            raise _BadInput
        if isinstance(value, _Host):
            raise _Unsupported("reads the output of the final Softmax, which the host computes")
        if not isinstance(value, _Act):
            raise _Unsupported(f"input {position} must be an activation, not a constant")
        return value

    def const(self, node: Node, position: int, what: str) -> np.ndarray:
        value = self.value(node, position)
        if isinstance(value, _Bad):
            raise _BadInput
        if not isinstance(value, _Const):
            raise _Unsupported(f"its {what} (input {position}) must be a constant")
        return value.value

    def qconst(self, node: Node, position: int) -> _Const:
        value = self.value(node, position)
        if isinstance(value, _Bad):
            raise _BadInput
        if not isinstance(value, _Const):
            raise _Unsupported(f"input {position} must be a constant")
        return value

    def all_const(self, node: Node) -> bool:
        return all(
            not name or isinstance(self.values.get(name), _Const) for name in node.inputs
        ) and any(node.inputs)

    def new_name(self, node: Node) -> str:
        for candidate in (node.outputs[0], node.name, f"{node.op_type}_{node.index}"):
            if candidate and candidate not in self.names:
                self.names.add(candidate)
                return candidate
        index = 1
        while f"{node.outputs[0]}_{index}" in self.names:
            index += 1
        self.names.add(f"{node.outputs[0]}_{index}")
        return f"{node.outputs[0]}_{index}"

    def dims(self, node: Node, position: int = 0) -> tuple[int, ...]:
        name = node.outputs[position]
        if name not in self.graph.shapes:
            raise _Unsupported(f"shape inference could not tell the shape of {name!r}")
        return self.graph.shapes[name]

    def emit(self, node: Node, doc: dict[str, Any], dims: tuple[int, ...] | None = None) -> _Act:
        """Add an op; its output shape is shape inference's, or ``dims`` where inference could
        not tell (after a Reshape whose shape is computed)."""
        if doc["op"] != "concat":
            self.computed_from.update(doc.get("inputs", [doc.get("input")]))
        inferred = self.graph.shapes.get(node.outputs[0])
        if inferred is None and dims is None:
            raise _Unsupported(f"shape inference could not tell the shape of {node.outputs[0]!r}")
        self.ops.append(doc)
        self.producer[doc["name"]] = doc
        act = _Act(doc["name"], inferred if inferred is not None else dims)  # type: ignore[arg-type]
        self.out_chw[doc["name"]] = _chw(act.dims)
        self.values[node.outputs[0]] = act
        return act

    def sole_reader(self, node: Node, act: _Act) -> bool:
        """Is ``node`` the only reader of ``act``'s values under any of its ONNX names (so that a
        fold into its producer changes nothing else), none of them a graph output? Nodes already
        folded into the tensor (views, batch norms, Q/DQ pairs) pass it on and do not count."""

        def same(value: _Value | None) -> bool:
            return isinstance(value, _Act) and value.tensor == act.tensor

        names = [n for n, v in self.values.items() if same(v)]
        readers = {
            r.index
            for name in names
            for r in self.graph.consumers(name)
            if not (r.outputs and same(self.values.get(r.outputs[0])))
        }
        outputs = set(self.graph.output_names)
        return readers == {node.index} and not outputs.intersection(names)

    # -- the walk --------------------------------------------------------------------------------

    def onnx_names(self) -> dict[str, tuple[str, ...]]:
        names: dict[str, list[str]] = {}
        for onnx_name, value in self.values.items():
            if isinstance(value, _Act):
                names.setdefault(value.tensor, []).append(onnx_name)
        return {tensor: tuple(found) for tensor, found in names.items()}

    def run(self) -> None:
        for node in self.graph.nodes:
            try:
                outcome = self.node(node)
            except _BadInput:
                outcome = "not mapped (an input could not be mapped)"
                for name in node.outputs:
                    self.values[name] = _Bad()
            except _Unsupported as exc:
                outcome = "unsupported"
                self.problems.append(f"{node.label}: {exc}")
                for name in node.outputs:
                    self.values[name] = _Bad()
            self.outcomes.append((node.op_type, outcome))

    def node(self, node: Node) -> str:
        op = node.op_type
        if node.domain == "com.microsoft" and op not in _CONTRIB:
            raise _Unsupported("onnxruntime contrib operator without a voltflow mapping")
        if op in ("Constant", "ConstantOfShape"):
            self.values[node.outputs[0]] = _Const(self.constant(node))
            return "constant"
        if op == "Shape":
            value = self.value(node, 0)
            if isinstance(value, _Bad | _Host):
                raise _BadInput if isinstance(value, _Bad) else _Unsupported("Shape of the Softmax")
            dims = value.dims if isinstance(value, _Act) else value.value.shape
            start = int(node.attrs.get("start", 0))
            end = node.attrs.get("end")
            self.values[node.outputs[0]] = _Const(
                np.asarray(dims[start : None if end is None else int(end)], dtype=np.int64)
            )
            return "constant"
        if op in _TAIL_OPS and node.inputs and isinstance(self.values.get(node.inputs[0]), _Host):
            for name in node.outputs[:1]:
                self.values[name] = self.values[node.inputs[0]]
            return "after the host's Softmax"
        if op in _CONST_FOLDABLE and self.all_const(node):
            self.values[node.outputs[0]] = self.fold(node)
            return "constant"
        if op == "DequantizeLinear" and self.all_const(node):
            self.values[node.outputs[0]] = self.dequantize_const(node)
            return "int8 constant"
        handler = _HANDLERS.get(op)
        if handler is None:
            raise _Unsupported(_why_not(op))
        return handler(self, node)

    # -- constants -------------------------------------------------------------------------------

    def constant(self, node: Node) -> np.ndarray:
        if node.op_type == "ConstantOfShape":
            shape = _ints(self.const(node, 0, "shape"), "ConstantOfShape's shape")
            fill = node.attrs.get("value")
            fill_value = np.zeros(1, np.float32) if fill is None else np.asarray(fill).reshape(-1)
            return np.full(shape, fill_value[0], dtype=fill_value.dtype)
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in node.attrs:
                return np.asarray(node.attrs[key])
        raise _Unsupported("a Constant without a numeric value")

    def fold(self, node: Node) -> _Const:
        xs = [self.const(node, i, "input") if n else None for i, n in enumerate(node.inputs)]
        op = node.op_type
        a = xs[0]
        assert a is not None
        if op == "Identity":
            return _Const(a)
        if op == "Cast":
            import onnx

            return _Const(a.astype(onnx.helper.tensor_dtype_to_np_dtype(int(node.attrs["to"]))))
        if op == "Gather":
            indices = xs[1]
            assert indices is not None
            return _Const(np.take(a, indices, axis=int(node.attrs.get("axis", 0))))
        if op in ("Unsqueeze", "Squeeze"):
            axes = node.attrs.get("axes")
            if axes is None and len(xs) > 1 and xs[1] is not None:
                axes = xs[1]
            axes_list = _ints(axes, f"{op}'s axes")
            if op == "Squeeze":
                return _Const(np.squeeze(a, axis=tuple(axes_list) if axes_list else None))
            rank = a.ndim + len(axes_list)
            out = a
            for axis in sorted(ax % rank for ax in axes_list):
                out = np.expand_dims(out, axis)
            return _Const(out)
        if op == "Concat":
            parts = [x for x in xs if x is not None]
            return _Const(np.concatenate(parts, axis=int(node.attrs["axis"])))
        if op == "Reshape":
            shape = _ints(xs[1], "Reshape's shape")
            shape = [a.shape[i] if v == 0 else v for i, v in enumerate(shape)]
            return _Const(a.reshape(shape))
        if op == "Flatten":
            axis = int(node.attrs.get("axis", 1)) % max(a.ndim, 1)
            return _Const(a.reshape(math.prod(a.shape[:axis]), -1))
        if op == "Transpose":
            return _Const(np.transpose(a, node.attrs.get("perm")))
        if op == "Sqrt":
            return _Const(np.sqrt(a))
        if op == "QuantizeLinear":
            scale = xs[1]
            zero = xs[2] if len(xs) > 2 and xs[2] is not None else np.zeros((), np.uint8)
            assert scale is not None
            axis = int(node.attrs.get("axis", 1))
            scale_b = _broadcast(scale, a, axis)
            zero_b = _broadcast(zero, a, axis)
            info = np.iinfo(zero.dtype)
            q = np.clip(np.rint(a / scale_b) + zero_b, info.min, info.max).astype(zero.dtype)
            return _Const(q)
        b = xs[1]
        assert b is not None
        result = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract}.get(op)
        if result is not None:
            return _Const(result(a, b))
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            return _Const(np.floor_divide(a, b))
        return _Const(np.divide(a, b))

    def dequantize_const(self, node: Node) -> _Const:
        q = self.const(node, 0, "values")
        scale = self.const(node, 1, "scale").astype(np.float32)
        zero = (
            self.const(node, 2, "zero point")
            if len(node.inputs) > 2 and node.inputs[2]
            else np.zeros((), q.dtype)
        )
        axis = int(node.attrs.get("axis", 1))
        real = (q.astype(np.float64) - _broadcast(zero, q, axis)) * _broadcast(scale, q, axis)
        return _Const(real, (q, scale, zero, axis))

    # -- quantisation scales ---------------------------------------------------------------------

    def set_scale(self, act: _Act, scale: np.ndarray, zero: np.ndarray | None, what: str) -> None:
        """Record ``act``'s scale. A later QuantizeLinear on the same voltflow tensor (after a fused
        Relu, say) replaces the earlier scale: the accelerator rounds once, to the last scale."""
        if scale.size != 1:
            raise _Unsupported(
                f"{what} scale has {scale.size} values; voltflow quantises activations per "
                "tensor (one scale)"
            )
        _check_activation_zero(zero, what)
        value = float(np.float32(scale.reshape(-1)[0]))
        known = self.scales.get(act.tensor)
        if known is not None and known != value:
            if act.tensor in self.computed_from:
                raise _Unsupported(
                    f"tensor {act.tensor!r} is requantised from scale {known!r} to {value!r} "
                    "after an op has read it; voltflow keeps one scale per tensor"
                )
            self.notes.append(
                f"tensor {act.tensor!r}: ONNX rounds twice (scale {known!r}, then {value!r}); "
                "the accelerator rounds once, to the second"
            )
        self.scales[act.tensor] = value
        self.quantised = True

    def int8_tensor(self, act: _Act, onnx_name: str) -> None:
        """``onnx_name`` holds ``act``'s int8 values in the model (the last quantisation wins)."""
        self.int8_names[act.tensor] = onnx_name

    def scale_from(self, node: Node, act: _Act, scale_at: int, zero_at: int, what: str) -> None:
        """Record ``act``'s scale from the node's inputs ``scale_at`` and (optional) ``zero_at``."""
        scale = self.const(node, scale_at, f"{what} scale")
        has_zero = zero_at < len(node.inputs) and bool(node.inputs[zero_at])
        zero = self.const(node, zero_at, f"{what} zero point") if has_zero else None
        self.set_scale(act, scale, zero, f"the {what}")

    def quantize(self, node: Node) -> str:
        """QuantizeLinear or DequantizeLinear of an activation: the tensor's scale; a
        QuantizeLinear's output holds its int8 values."""
        act = self.act(node)
        self.scale_from(node, act, 1, 2, "activation")
        if node.op_type == "QuantizeLinear":
            self.int8_tensor(act, node.outputs[0])
        self.values[node.outputs[0]] = act
        return "quantisation scale"

    # -- weighted ops ----------------------------------------------------------------------------

    def window(
        self, node: Node, act: _Act, kernel: tuple[int, int], *, strides_default: tuple[int, int]
    ) -> tuple[list[int], list[int]]:
        if len(act.dims) != 4:
            raise _Unsupported(
                f"needs a 4-d [N, C, H, W] input, not {list(act.dims)} (1-d and 3-d windows are "
                "not supported)"
            )
        dilations = _ints(node.attrs.get("dilations"), "dilations") or [1, 1]
        if any(d != 1 for d in dilations):
            raise _Unsupported(f"dilations {dilations}: the array computes undilated windows only")
        strides = _ints(node.attrs.get("strides"), "strides") or list(strides_default)
        auto_pad = str(node.attrs.get("auto_pad", "NOTSET"))
        pads = _ints(node.attrs.get("pads"), "pads") or [0, 0, 0, 0]
        if len(strides) != 2 or len(pads) != 4:
            raise _Unsupported(f"strides {strides} / pads {pads} are not 2-d")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for axis, size in enumerate(act.dims[2:]):
                out = -(-size // strides[axis])
                total = max((out - 1) * strides[axis] + kernel[axis] - size, 0)
                small, big = total // 2, total - total // 2
                before, after = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
                pads[axis], pads[axis + 2] = before, after
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        elif auto_pad != "NOTSET":
            raise _Unsupported(f"auto_pad {auto_pad!r}")
        # ONNX pads are [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right].
        return strides, pads

    def conv(self, node: Node, qlinear: bool = False) -> str:
        act = self.spatial(node)
        if qlinear:
            self.check_input_scale(node, act, 1, 2)
            wq = self.qconst(node, 3)
            w_scale = self.const(node, 4, "weight scale")
            w_zero = self.const(node, 5, "weight zero point")
            weight_const = self.int_weight(node, wq.value, w_scale, w_zero, axis=0)
            bias_value = self.optional(node, 8)
        else:
            weight_const = self.qconst(node, 1)
            bias_value = self.optional(node, 2)
        weight = weight_const.value
        if weight.ndim != 4:
            raise _Unsupported(f"weight of shape {list(weight.shape)}: only 2-d convolutions")
        c_out, c_in_g, kh, kw = (int(v) for v in weight.shape)
        kernel_attr = _ints(node.attrs.get("kernel_shape"), "kernel_shape")
        if kernel_attr and kernel_attr != [kh, kw]:
            raise _Unsupported(f"kernel_shape {kernel_attr} disagrees with the weight {[kh, kw]}")
        strides, pads = self.window(node, act, (kh, kw), strides_default=(1, 1))
        groups = int(node.attrs.get("group", 1))
        c_in = act.dims[1]
        if groups != 1 and not (groups == c_in and c_out == c_in and c_in_g == 1):
            raise _Unsupported(
                f"group {groups} with {c_in} input and {c_out} output channels: the array runs "
                "group 1 or depthwise (group = input channels = output channels)"
            )
        doc = {
            "name": self.new_name(node),
            "op": "conv",
            "input": act.tensor,
            "out_channels": c_out,
            "kernel": [kh, kw],
            "stride": strides,
            "padding": pads,
            "groups": groups,
            "relu": False,
            "per_channel": True,
        }
        bias, qbias = self.bias(node, bias_value, c_out)
        layer = Layer(doc, weight.astype(np.float64), bias)
        self.quant_weights(node, layer, weight_const, qbias, axis=0)
        out = self.emit(node, doc, _window_dims(act.dims, c_out, (kh, kw), strides, pads))
        self.layers[out.tensor] = layer
        if qlinear:
            self.set_output_scale(node, out, 6, 7)
        return "conv"

    def bias(
        self, node: Node, value: _Value | None, channels: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if value is None:
            return np.zeros(channels), None
        if isinstance(value, _Bad):
            raise _BadInput
        if not isinstance(value, _Const):
            raise _Unsupported("its bias must be a constant")
        bias = np.asarray(value.value, dtype=np.float64).reshape(-1)
        if bias.size == 1:
            bias = np.full(channels, float(bias[0]))
        if bias.size != channels:
            raise _Unsupported(f"bias of {bias.size} values for {channels} output channels")
        qbias = None
        if value.quant is not None or value.value.dtype == np.int32:
            ints = value.quant[0] if value.quant is not None else value.value
            qbias = np.asarray(ints).reshape(-1).astype(np.int32)
            if qbias.size == 1:
                qbias = np.full(channels, int(qbias[0]), np.int32)
        return bias, qbias

    def int_weight(
        self, node: Node, q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int
    ) -> _Const:
        real = (q.astype(np.float64) - _broadcast(zero, q, axis)) * _broadcast(
            scale.astype(np.float32), q, axis
        )
        return _Const(real, (q, scale.astype(np.float32), zero, axis))

    def quant_weights(
        self, node: Node, layer: Layer, weight: _Const, qbias: np.ndarray | None, axis: int
    ) -> None:
        if weight.quant is None:
            if qbias is not None:
                raise _Unsupported("an int32 bias with float weights")
            return
        q, scale, zero, q_axis = weight.quant
        if q.dtype not in (np.int8, np.uint8) and q.dtype.kind not in "iu":
            raise _Unsupported(f"weights of type {q.dtype}")
        if np.any(np.asarray(zero) != 0):
            raise _Unsupported(
                f"weight zero point {short(np.asarray(zero).reshape(-1)[:4].tolist())}: voltflow "
                "multiplies symmetric int8 weights (zero point 0); quantise weights symmetrically "
                "(onnxruntime: WeightSymmetric=True, the default for int8)"
            )
        if q.min(initial=0) < -128 or q.max(initial=0) > 127:
            raise _Unsupported(f"weights of type {q.dtype} outside int8")
        channels = layer.weight.shape[0]
        per_channel = np.asarray(scale, dtype=np.float32).reshape(-1)
        if per_channel.size == 1:
            per_channel = np.full(channels, per_channel[0], np.float32)
        if per_channel.size != channels or (per_channel.size > 1 and q_axis % q.ndim != axis):
            raise _Unsupported(
                f"weight scales along axis {q_axis} ({per_channel.size} values); voltflow needs "
                "one scale per output channel or one per tensor"
            )
        layer.qweight = q.astype(np.int8)
        layer.weight_scale = per_channel
        layer.qbias = qbias if qbias is not None else np.zeros(channels, np.int32)
        self.quantised = True

    def check_input_scale(self, node: Node, act: _Act, scale_at: int, zero_at: int) -> None:
        self.scale_from(node, act, scale_at, zero_at, "input")

    def set_output_scale(self, node: Node, act: _Act, scale_at: int, zero_at: int) -> None:
        self.scale_from(node, act, scale_at, zero_at, "output")
        self.int8_tensor(act, node.outputs[0])

    def fc_from(
        self,
        node: Node,
        act: _Act,
        weight: np.ndarray,
        bias_value: _Value | None,
        weight_const: _Const,
        qaxis: int,
    ) -> _Act:
        """An fc of ``act`` with ``weight`` (N, K) in real units."""
        producer_shape = self.out_chw[act.tensor]
        k = math.prod(producer_shape)
        if len(act.dims) != 2 and any(d != 1 for d in act.dims[2:]):
            raise _Unsupported(
                f"input of shape {list(act.dims)}: an fc reads a flattened [1, K] vector "
                "(a Flatten or Reshape before it)"
            )
        n = weight.shape[0]
        if weight.shape[1] != k:
            raise _Unsupported(f"weight of shape {list(weight.shape)} for {k} input features")
        doc = {
            "name": self.new_name(node),
            "op": "fc",
            "input": act.tensor,
            "out_features": int(n),
            "relu": False,
            "per_channel": True,
        }
        bias, qbias = self.bias(node, bias_value, n)
        layer = Layer(
            doc,
            weight.reshape(n, *producer_shape).astype(np.float64),
            bias,
        )
        if weight_const.quant is not None:
            q, scale, zero, axis = weight_const.quant
            q2 = q if qaxis == 0 else q.T
            wconst = _Const(weight, (q2.reshape(n, -1), scale, zero, 0))
            if np.asarray(scale).size > 1 and (axis % q.ndim) != (qaxis % q.ndim):
                raise _Unsupported(f"weight scales along axis {axis}, not per output feature")
            self.quant_weights(node, layer, wconst, qbias, axis=0)
            assert layer.qweight is not None
            layer.qweight = layer.qweight.reshape(n, *producer_shape)
        elif qbias is not None:
            raise _Unsupported("an int32 bias with float weights")
        out = self.emit(node, doc, (1, int(n)))
        self.layers[out.tensor] = layer
        return out

    def spatial(self, node: Node, position: int = 0) -> _Act:
        """Input ``position`` as a [1, C, H, W] activation laid out as its producer wrote it."""
        act = self.act(node, position)
        if len(act.dims) != 4 and node.op_type not in ("Add", "Sum", "QLinearAdd", "Concat"):
            raise _Unsupported(f"needs a 4-d [N, C, H, W] input, not {list(act.dims)}")
        if _chw(act.dims) != self.out_chw[act.tensor]:
            raise _Unsupported(
                f"reads {act.tensor!r} reshaped from {list(self.out_chw[act.tensor])} to "
                f"{list(act.dims[1:])}, which moves data in the channel-blocked layout"
            )
        return act

    def gemm(self, node: Node) -> str:
        act = self.act(node)
        weight_const = self.qconst(node, 1)
        if int(node.attrs.get("transA", 0)):
            raise _Unsupported("transA = 1 (the activation transposed)")
        alpha = float(node.attrs.get("alpha", 1.0))
        beta = float(node.attrs.get("beta", 1.0))
        weight = weight_const.value.astype(np.float64)
        trans_b = int(node.attrs.get("transB", 0))
        if weight.ndim != 2:
            raise _Unsupported(f"B of shape {list(weight.shape)}, not a matrix")
        if not trans_b:
            weight = weight.T
        if weight_const.quant is not None and alpha != 1.0:
            raise _Unsupported("alpha != 1 with int8 weights")
        bias_value = self.optional(node, 2)
        if isinstance(bias_value, _Const) and beta != 1.0:
            bias_value = _Const(bias_value.value * beta)
        self.fc_from(node, act, weight * alpha, bias_value, weight_const, 0 if trans_b else 1)
        return "fc"

    def matmul(self, node: Node) -> str:
        a = self.value(node, 0)
        b = self.value(node, 1)
        if isinstance(a, _Bad) or isinstance(b, _Bad):
            raise _BadInput
        if isinstance(a, _Act) and isinstance(b, _Const):
            if b.value.ndim != 2:
                raise _Unsupported(f"constant B of shape {list(b.value.shape)}, not a matrix")
            self.fc_from(node, a, b.value.T.astype(np.float64), None, b, 1)
            return "fc"
        if isinstance(a, _Act) and isinstance(b, _Act):
            if len(a.dims) < 2 or len(b.dims) < 2 or a.dims[-1] != b.dims[-2]:
                raise _Unsupported(f"operands {list(a.dims)} x {list(b.dims)}")
            m, k, n = a.dims[-2], a.dims[-1], b.dims[-1]
            batch = math.prod(a.dims[:-2])
            out_dims = self.graph.shapes.get(node.outputs[0], (*a.dims[:-1], n))
            doc = {
                "name": self.new_name(node),
                "op": "matmul",
                "inputs": [a.tensor, b.tensor],
                "batch": int(batch),
                "m": int(m),
                "k": int(k),
                "n": int(n),
                "out_shape": list(_chw(out_dims)),
            }
            self.emit(node, doc, out_dims)
            return "matmul"
        raise _Unsupported("needs an activation as A")

    def qgemm(self, node: Node) -> str:
        """onnxruntime's QGemm: A, its scale and zero point, B, its scale and zero point, an
        int32 bias C, and the output's scale and zero point (absent: a float output)."""
        act = self.act(node)
        if int(node.attrs.get("transA", 0)) or float(node.attrs.get("alpha", 1.0)) != 1.0:
            raise _Unsupported("transA = 1 or alpha != 1")
        self.check_input_scale(node, act, 1, 2)
        trans_b = int(node.attrs.get("transB", 0))
        q = self.const(node, 3, "B")
        w_const = self.int_weight(
            node,
            q,
            self.const(node, 4, "B scale"),
            self.const(node, 5, "B zero point"),
            axis=0 if trans_b else 1,
        )
        weight = w_const.value if trans_b else w_const.value.T
        out = self.fc_from(node, act, weight, self.optional(node, 6), w_const, 0 if trans_b else 1)
        if len(node.inputs) > 7 and node.inputs[7]:
            self.set_output_scale(node, out, 7, 8)
        return "fc"

    def qlinear_matmul(self, node: Node) -> str:
        act = self.act(node)
        self.check_input_scale(node, act, 1, 2)
        q = self.const(node, 3, "B")
        w_const = self.int_weight(
            node, q, self.const(node, 4, "B scale"), self.const(node, 5, "B zero point"), axis=1
        )
        out = self.fc_from(node, act, w_const.value.T, None, w_const, 1)
        self.set_output_scale(node, out, 6, 7)
        return "fc"

    # -- folds -----------------------------------------------------------------------------------

    def foldable(self, node: Node, act: _Act, what: str) -> Layer:
        layer = self.layers.get(act.tensor)
        doc = self.producer.get(act.tensor)
        if layer is None or doc is None:
            raise _Unsupported(
                f"{what} must follow a conv or fc to be folded into it; it follows "
                f"{'the network input' if doc is None else doc['op']}"
            )
        if doc["relu"]:
            raise _Unsupported(f"{what} after an activation cannot be folded into the conv")
        if _chw(act.dims) != self.out_chw[act.tensor]:
            raise _Unsupported(f"{what} of a reshaped view cannot be folded into the conv")
        if not self.sole_reader(node, act):
            raise _Unsupported(f"{what}'s input is also read elsewhere, so it cannot be folded")
        if layer.qweight is not None:
            raise _Unsupported(f"{what} after an int8 conv cannot be folded into int8 weights")
        return layer

    def channel_vector(self, value: np.ndarray, act: _Act) -> np.ndarray | None:
        """``value`` as one number per channel of ``act`` if it broadcasts so; None otherwise."""
        channels = act.dims[1] if len(act.dims) > 1 else 1
        array = np.asarray(value, dtype=np.float64)
        if array.size == 1:
            return np.full(channels, float(array.reshape(-1)[0]))
        squeezed = array.reshape(-1)
        rank = len(act.dims)
        if squeezed.size != channels:
            return None
        # Must broadcast along the channel axis (1) of the activation.
        shape = (1,) * (rank - array.ndim) + tuple(array.shape)
        if len(shape) != rank or shape[1] != channels or math.prod(shape) != channels:
            return None
        return squeezed

    def batchnorm(self, node: Node) -> str:
        act = self.act(node)
        layer = self.foldable(node, act, "BatchNormalization")
        gamma, beta, mean, var = (
            self.const(node, i, what).astype(np.float64).reshape(-1)
            for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance"))
        )
        eps = float(node.attrs.get("epsilon", 1e-5))
        scale = gamma / np.sqrt(var + eps)
        self.affine(layer, scale, beta - mean * scale)
        self.values[node.outputs[0]] = act
        return "folded into the conv"

    @staticmethod
    def affine(layer: Layer, scale: np.ndarray, shift: np.ndarray) -> None:
        layer.weight = layer.weight * scale.reshape(-1, *([1] * (layer.weight.ndim - 1)))
        layer.bias = layer.bias * scale + shift

    def arith(self, node: Node) -> str:
        a, b = self.value(node, 0), self.value(node, 1)
        if isinstance(a, _Bad) or isinstance(b, _Bad):
            raise _BadInput
        op = node.op_type
        if op == "Add" and isinstance(a, _Act) and isinstance(b, _Act):
            return self.add(node, a, b)
        if isinstance(b, _Act) and isinstance(a, _Const) and op in ("Add", "Mul"):
            a, b = b, a
        if not (isinstance(a, _Act) and isinstance(b, _Const)):
            raise _Unsupported(f"{op} of these operands")
        vector = self.channel_vector(b.value, a)
        if vector is None:
            raise _Unsupported(
                f"{op} with a constant of shape {list(b.value.shape)}: only per-channel constants "
                "fold into the producing conv"
            )
        layer = self.foldable(node, a, op)
        ones, zeros = np.ones_like(vector), np.zeros_like(vector)
        if op == "Mul":
            self.affine(layer, vector, zeros)
        elif op == "Div":
            self.affine(layer, 1.0 / vector, zeros)
        elif op == "Add":
            self.affine(layer, ones, vector)
        else:
            self.affine(layer, ones, -vector)
        self.values[node.outputs[0]] = a
        return "folded into the conv"

    def add(self, node: Node, a: _Act, b: _Act) -> str:
        for act in (a, b):
            if _chw(act.dims) != self.out_chw[act.tensor]:
                raise _Unsupported(f"reads {act.tensor!r} reshaped to {list(act.dims[1:])}")
        if a.dims != b.dims:
            raise _Unsupported(f"operands of shapes {list(a.dims)} and {list(b.dims)} (broadcast)")
        doc = {
            "name": self.new_name(node),
            "op": "add",
            "inputs": [a.tensor, b.tensor],
            "relu": False,
        }
        self.emit(node, doc, a.dims)
        return "add"

    def sum(self, node: Node) -> str:
        acts = [self.act(node, i) for i in range(len(node.inputs))]
        if len(acts) == 1:
            self.values[node.outputs[0]] = acts[0]
            return "removed"
        if len(acts) != 2:
            raise _Unsupported(f"Sum of {len(acts)} inputs (the add unit takes two)")
        return self.add(node, acts[0], acts[1])

    def qlinear_add(self, node: Node) -> str:
        a, b = self.act(node, 0), self.act(node, 3)
        self.check_input_scale(node, a, 1, 2)
        self.check_input_scale(node, b, 4, 5)
        result = self.add(node, a, b)
        self.set_output_scale(node, self.values[node.outputs[0]], 6, 7)  # type: ignore[arg-type]
        return result

    def activation(self, node: Node) -> str:
        act = self.act(node)
        cap: float | None = None
        if node.op_type == "Clip":
            low, high = node.attrs.get("min"), node.attrs.get("max")
            if len(node.inputs) > 1 and node.inputs[1]:
                low = float(self.const(node, 1, "min").reshape(-1)[0])
            if len(node.inputs) > 2 and node.inputs[2]:
                high = float(self.const(node, 2, "max").reshape(-1)[0])
            if low is None or float(low) != 0.0:
                raise _Unsupported(f"Clip with min {low}: only Clip(0, max) maps to relu")
            cap = None if high is None or not math.isfinite(float(high)) else float(high)
        doc = self.producer.get(act.tensor)
        if doc is None or doc["op"] not in ("conv", "fc", "add"):
            raise _Unsupported(
                f"{node.op_type} must follow a conv, fc or add (it is applied in their output "
                f"stage); it follows {'the network input' if doc is None else doc['op']}"
            )
        if not self.sole_reader(node, act):
            raise _Unsupported(
                f"{node.op_type}'s input is also read elsewhere (before the "
                "activation), so it cannot be fused"
            )
        doc["relu"] = True
        # The model's int8 copy from before the activation no longer holds this tensor's values
        # (a later QuantizeLinear names the new one).
        self.int8_names.pop(act.tensor, None)
        if cap is not None:
            self.caps[act.tensor] = min(cap, self.caps.get(act.tensor, cap))
        self.values[node.outputs[0]] = act
        return "relu of the producer"

    # -- pools, concat, views --------------------------------------------------------------------

    def pool(self, node: Node) -> str:
        act = self.spatial(node)
        op = node.op_type
        kind = "maxpool" if "Max" in op else "avgpool"
        doc: dict[str, Any] = {"name": self.new_name(node), "op": kind, "input": act.tensor}
        if op.startswith("Global") or op == "QLinearGlobalAveragePool":
            if len(act.dims) != 4:
                raise _Unsupported(f"needs a 4-d input, not {list(act.dims)}")
            if int(node.attrs.get("channels_last", 0)):
                raise _Unsupported("channels_last = 1")
            doc["global"] = True
        else:
            kernel = _ints(node.attrs.get("kernel_shape"), "kernel_shape")
            if len(kernel) != 2:
                raise _Unsupported(f"kernel_shape {kernel}: only 2-d pools")
            strides, pads = self.window(node, act, (kernel[0], kernel[1]), strides_default=(1, 1))
            doc |= {"kernel": kernel, "stride": strides, "padding": pads}
            if int(node.attrs.get("ceil_mode", 0)):
                doc["ceil_mode"] = True
            indices = node.outputs[1] if len(node.outputs) > 1 else ""
            if indices and (self.graph.consumers(indices) or indices in self.graph.output_names):
                raise _Unsupported("its Indices output is used")
            if kind == "avgpool" and not int(node.attrs.get("count_include_pad", 0)):
                doc["_exclude_pad"] = True  # checked once the padding is resolved
        dims: tuple[int, ...]
        if doc.get("global"):
            dims = (1, act.dims[1], 1, 1)
        else:
            dims = _window_dims(
                act.dims,
                act.dims[1],
                doc["kernel"],
                doc["stride"],
                doc["padding"],
                bool(doc.get("ceil_mode")),
            )
        out = self.emit(node, doc, dims)
        if op == "QLinearGlobalAveragePool":
            self.check_input_scale(node, act, 1, 2)
            self.set_output_scale(node, out, 3, 4)
        return kind

    def concat(self, node: Node, qlinear: bool = False) -> str:
        if qlinear:
            positions = list(range(2, len(node.inputs), 3))
            acts = [self.spatial(node, i) for i in positions]
            for act, i in zip(acts, positions, strict=True):
                self.check_input_scale(node, act, i + 1, i + 2)
        else:
            acts = [self.spatial(node, i) for i in range(len(node.inputs))]
        rank = len(acts[0].dims)
        axis = int(node.attrs.get("axis", 1)) % rank
        if axis != 1:
            raise _Unsupported(f"axis {axis}: only channel concatenation (axis 1)")
        if len(acts) == 1:
            self.values[node.outputs[0]] = acts[0]
            return "removed"
        doc = {"name": self.new_name(node), "op": "concat", "inputs": [a.tensor for a in acts]}
        dims = (1, sum(a.dims[1] for a in acts), *acts[0].dims[2:])
        out = self.emit(node, doc, dims)
        if qlinear:
            self.set_output_scale(node, out, 0, 1)
        return "concat"

    def view_dims(self, node: Node, act: _Act) -> tuple[int, ...]:
        """The output shape of a view node, from its attributes and constant inputs."""
        dims = list(act.dims)
        op = node.op_type
        if op == "Flatten":
            axis = int(node.attrs.get("axis", 1)) % max(len(dims), 1)
            return (math.prod(dims[:axis]), math.prod(dims[axis:]))
        if op == "Reshape":
            shape = _ints(self.const(node, 1, "shape"), "Reshape's shape")
            out = [
                dims[i] if v == 0 and not node.attrs.get("allowzero") else v
                for i, v in enumerate(shape)
            ]
            if out.count(-1) == 1:
                known = math.prod(v for v in out if v != -1)
                out[out.index(-1)] = math.prod(dims) // known if known else 0
            return tuple(out)
        axes_value = node.attrs.get("axes")
        if axes_value is None and len(node.inputs) > 1 and node.inputs[1]:
            axes_value = self.const(node, 1, "axes")
        axes = _ints(axes_value, f"{op}'s axes")
        if op == "Squeeze":
            rank = len(dims)
            drop = {a % rank for a in axes} if axes else {i for i, d in enumerate(dims) if d == 1}
            return tuple(d for i, d in enumerate(dims) if i not in drop)
        rank = len(dims) + len(axes)
        for axis in sorted(a % rank for a in axes):
            dims.insert(axis, 1)
        return tuple(dims)

    def view(self, node: Node) -> str:
        act = self.act(node)
        dims = self.view_dims(node, act)
        inferred = self.graph.shapes.get(node.outputs[0])
        if inferred is not None and inferred != dims:
            raise _Unsupported(f"gives {list(dims)} here but {list(inferred)} by shape inference")
        if math.prod(dims) != math.prod(act.dims):
            raise _Unsupported(f"changes {list(act.dims)} to {list(dims)}")
        chw_in = _chw(act.dims)
        chw_out = _chw(dims)
        flat_out = len(dims) == 2 or all(d == 1 for d in dims[2:])
        if chw_out != chw_in and not flat_out and _chw(act.dims)[1:] != (1, 1):
            raise _Unsupported(
                f"regroups {list(act.dims)} as {list(dims)}, which moves data in the "
                "channel-blocked layout (only flattening and unit dimensions are views)"
            )
        self.values[node.outputs[0]] = _Act(act.tensor, dims)
        return "view"

    def reaches_only_outputs(self, tensor: str) -> bool:
        """Is ``tensor`` a graph output, or read only by nodes that change nothing but its type or
        shape (QDQ, Identity, views) and lead to the outputs (the tail of a final Softmax)?"""
        readers = self.graph.consumers(tensor)
        if not readers:
            return tensor in self.graph.output_names
        return all(
            reader.op_type in _TAIL_OPS and self.reaches_only_outputs(reader.outputs[0])
            for reader in readers
        )

    def passthrough(self, node: Node) -> str:
        act = self.act(node)
        self.values[node.outputs[0]] = act
        for extra in node.outputs[1:]:
            if extra and (self.graph.consumers(extra) or extra in self.graph.output_names):
                raise _Unsupported(f"its output {extra!r} (the mask) is used")
        return "removed"

    def softmax(self, node: Node) -> str:
        act = self.act(node)
        out = node.outputs[0]
        if not self.reaches_only_outputs(out):
            raise _Unsupported(
                "Softmax inside the network (only a final Softmax is left to the host)"
            )
        self.host_softmax = True
        self.values[out] = _Host(act)
        return "left to the host"


#: Nodes that may follow a final Softmax (a QDQ model's Q/DQ, a converter's Reshape).
_TAIL_OPS: Final = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"}
)


class _BadInput(Exception):
    """An input of this node comes from a node that could not be mapped."""


def _broadcast(values: np.ndarray, like: np.ndarray, axis: int) -> np.ndarray:
    values = np.asarray(values)
    if values.size <= 1:
        return values.reshape(())
    shape = [1] * like.ndim
    shape[axis % like.ndim] = values.size
    return values.reshape(shape)


def _check_activation_zero(zero: np.ndarray | None, what: str) -> None:
    if zero is None:
        return
    zero = np.asarray(zero)
    value = int(zero.reshape(-1)[0]) if zero.size else 0
    if zero.dtype == np.uint8 and value == 128:
        return  # uint8 with zero point 128 is int8 with zero point 0
    if zero.dtype not in (np.int8, np.uint8):
        raise _Unsupported(f"{what} is quantised to {zero.dtype}; voltflow computes in int8")
    if value != 0:
        raise _Unsupported(
            f"{what} has zero point {value} ({zero.dtype}); voltflow's datapath is symmetric "
            "int8 (zero point 0, or 128 for uint8): quantise activations symmetrically "
            "(onnxruntime: extra_options={'ActivationSymmetric': True})"
        )


def _why_not(op: str) -> str:
    reasons = {
        "LRN": "local response normalisation has no unit on the accelerator",
        "Transpose": "a transpose of activations (channel shuffle) moves data across channel "
        "blocks, which the accelerator cannot do",
        "Pad": "an explicit Pad op (only padding inside Conv/pool windows is supported)",
        "Resize": "resizing has no unit on the accelerator",
        "Upsample": "upsampling has no unit on the accelerator",
        "LeakyRelu": "only ReLU and Clip(0, max) activations run in the output stage",
        "Sigmoid": "only ReLU and Clip(0, max) activations run in the output stage",
        "HardSigmoid": "only ReLU and Clip(0, max) activations run in the output stage",
        "HardSwish": "only ReLU and Clip(0, max) activations run in the output stage",
        "Tanh": "only ReLU and Clip(0, max) activations run in the output stage",
    }
    return reasons.get(op, f"operator {op} has no voltflow mapping")


_HANDLERS: Final[Mapping[str, Callable[[_Importer, Node], str]]] = {
    "Conv": _Importer.conv,
    "QLinearConv": lambda self, node: self.conv(node, qlinear=True),
    "Gemm": _Importer.gemm,
    "MatMul": _Importer.matmul,
    "QLinearMatMul": _Importer.qlinear_matmul,
    "QGemm": _Importer.qgemm,
    "BatchNormalization": _Importer.batchnorm,
    "Add": _Importer.arith,
    "Mul": _Importer.arith,
    "Sub": _Importer.arith,
    "Div": _Importer.arith,
    "Sum": _Importer.sum,
    "QLinearAdd": _Importer.qlinear_add,
    "Relu": _Importer.activation,
    "Clip": _Importer.activation,
    "MaxPool": _Importer.pool,
    "AveragePool": _Importer.pool,
    "GlobalAveragePool": _Importer.pool,
    "GlobalMaxPool": _Importer.pool,
    "QLinearGlobalAveragePool": _Importer.pool,
    "Concat": _Importer.concat,
    "QLinearConcat": lambda self, node: self.concat(node, qlinear=True),
    "Flatten": _Importer.view,
    "Reshape": _Importer.view,
    "Squeeze": _Importer.view,
    "Unsqueeze": _Importer.view,
    "Dropout": _Importer.passthrough,
    "Identity": _Importer.passthrough,
    "Softmax": _Importer.softmax,
    "QuantizeLinear": _Importer.quantize,
    "DequantizeLinear": _Importer.quantize,
}
_CONTRIB: Final = frozenset(
    {
        "QLinearAdd",
        "QLinearConcat",
        "QLinearGlobalAveragePool",
        "QGemm",
        "QuantizeLinear",
        "DequantizeLinear",
    }
)


def _prune(ops: list[dict[str, Any]], output: str) -> list[dict[str, Any]]:
    """The ops the output depends on (ops whose results nothing uses are dropped)."""
    by_name = {doc["name"]: doc for doc in ops}
    needed = {output}
    for doc in reversed(ops):
        if doc["name"] in needed:
            needed.update(doc.get("inputs", [doc.get("input")]))
    return [doc for doc in ops if doc["name"] in needed and doc["name"] in by_name]


def _problem_report(graph: Graph, problems: Sequence[str]) -> str:
    """One line for one node; a line per node (after the first) for several."""
    supported = ", ".join(sorted(SUPPORTED_OPS))
    tail = (
        f"supported operators: {supported} (`voltflow import --list-ops {graph.label}` shows what "
        "each node maps to)"
    )
    if len(problems) == 1:
        return f"{graph.label}: {problems[0]}; {tail}"
    listed = "\n".join(f"  {problem}" for problem in problems)
    return (
        f"{graph.label}: {len(problems)} nodes cannot run on the accelerator:\n{listed}\n"
        f"{tail[0].upper()}{tail[1:]}"
    )


def import_onnx(graph: Graph, *, name: str | None = None) -> Imported:
    """Map a checked ONNX graph onto a voltflow network.

    Parameters
    ----------
    graph : Graph
        From `read_onnx`.
    name : str or None
        The network's name; None: the file's stem.

    Raises
    ------
    OnnxError
        Listing every node that cannot be mapped, or naming the output problem.
    """
    importer = _Importer(graph)
    importer.run()
    if importer.problems:
        raise OnnxError(_problem_report(graph, importer.problems))
    outputs = [o for o in graph.output_names if o]
    if len(outputs) != 1:
        raise OnnxError(
            f"{graph.label}: the graph has {len(outputs)} outputs "
            f"({', '.join(map(repr, outputs))}); a voltflow network has one output"
        )
    final = importer.values.get(outputs[0])
    if isinstance(final, _Host):
        final = final.act
    if not isinstance(final, _Act) or final.tensor == graph.input_name:
        raise OnnxError(
            f"{graph.label}: the output {outputs[0]!r} is not computed by any accelerator op"
        )
    ops = _prune(importer.ops, final.tensor)
    for doc in ops:
        if doc.pop("_exclude_pad", False):
            doc["_check_pad"] = True
    stem = graph.path.name.removesuffix(".onnx")
    producer = f", {graph.producer}" if graph.producer else ""
    document: dict[str, Any] = {
        "format": FORMAT,
        "name": name or stem,
        "title": f"{stem} (imported from ONNX)",
        "source": f"{graph.path.name} (ONNX opset {graph.opset}{producer})",
        "input": {"name": graph.input_name, "shape": list(_chw(graph.input_shape))},
        "ops": [{k: v for k, v in doc.items() if k != "_check_pad"} for doc in ops],
    }
    try:
        network = network_from_document(document, graph.label)
    except NetworkError as exc:
        raise OnnxError(f"{graph.label}: the mapped network is not valid: {exc}") from None
    for doc in ops:
        op = network.op(doc["name"])
        if op.out.channels * op.out.height * op.out.width and (
            (op.out.channels, op.out.height, op.out.width) != importer.out_chw[doc["name"]]
        ):
            raise OnnxError(
                f"{graph.label}: op {doc['name']!r} ({doc['op']}) gives "
                f"{[op.out.channels, op.out.height, op.out.width]} where ONNX infers "
                f"{list(importer.out_chw[doc['name']])}; this window arithmetic is not supported"
            )
        if doc.get("_check_pad") and any(op.padding):
            importer.notes.append(
                f"average pool {doc['name']!r} pads its window {list(op.padding)} with "
                "count_include_pad = 0; the accelerator divides by the full window "
                "(count_include_pad = 1), so outputs at the borders differ from ONNX's"
            )
    used = {doc["name"] for doc in ops}
    return Imported(
        graph=graph,
        document=document,
        network=network,
        layers={k: v for k, v in importer.layers.items() if k in used},
        scales=dict(importer.scales),
        caps=dict(importer.caps),
        quantised=importer.quantised,
        host_softmax=importer.host_softmax,
        outcomes=tuple(importer.outcomes),
        notes=tuple(importer.notes),
        int8_names=dict(importer.int8_names),
        onnx_names=importer.onnx_names(),
    )


def census(graph: Graph) -> tuple[list[tuple[str, str, int]], list[str]]:
    """What each ONNX operator of ``graph`` maps to: (op type, outcome, nodes) rows, and problems.

    Runs the mapping without raising: the problems are the nodes that cannot be mapped.
    """
    importer = _Importer(graph)
    importer.run()
    counts = Counter(importer.outcomes)
    rows = sorted(((op, outcome, n) for (op, outcome), n in counts.items()), key=lambda r: r[0])
    return rows, list(importer.problems)
