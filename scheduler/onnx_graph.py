"""Reading an ONNX model: the file checked, one input shape fixed, every tensor's shape inferred.

`read_onnx` turns a ``.onnx`` file into a `Graph`: its nodes in file order (ONNX requires a
topological order), the static shape of every tensor (``onnx.shape_inference``, after the input's
batch dimension is fixed to 1), and the constants (initializers and ``Constant`` nodes) as numpy
arrays. What the file cannot give us -- a model that is not ONNX, a truncated one, an opset outside
`MIN_OPSET` .. `MAX_OPSET`, missing external weights, several inputs, a dynamic input shape without
``input_shape`` -- raises `OnnxError` with the file, the node or tensor and the fix.
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from .documents import short

__all__ = [
    "MAX_OPSET",
    "MIN_OPSET",
    "Graph",
    "Node",
    "OnnxError",
    "read_onnx",
]

MIN_OPSET: Final = 9
"""Oldest default-domain opset the importer reads."""
MAX_OPSET: Final = 21
"""Newest default-domain opset the importer reads."""

#: Domains whose nodes the importer may meet: the default one and onnxruntime's contrib ops
#: (QLinearAdd, QLinearGlobalAveragePool... of QOperator models).
_DOMAINS: Final = ("", "ai.onnx", "com.microsoft")


class OnnxError(ValueError):
    """An ONNX file that voltflow cannot read or map; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class Node:
    """One ONNX node, attributes decoded to Python values (ints, floats, lists, numpy arrays)."""

    index: int
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]

    @property
    def label(self) -> str:
        """``node 12 'conv1' (Conv)``: how messages name a node."""
        name = f" {self.name!r}" if self.name else ""
        return f"node {self.index}{name} ({self.op_type})"


@dataclass(frozen=True, slots=True)
class Graph:
    """A checked ONNX graph with one input.

    Attributes
    ----------
    path : Path
        The file.
    label : str
        The file as messages name it.
    opset : int
        The default domain's opset.
    producer : str
        ``producer_name producer_version`` from the file (may be empty).
    input_name : str
    input_shape : tuple of int
        The input's shape, batch dimension (1) first.
    output_names : tuple of str
    nodes : tuple of Node
        In file (topological) order.
    shapes : Mapping[str, tuple[int, ...]]
        Static shape of every tensor whose shape inference could tell.
    constants : Mapping[str, numpy.ndarray]
        Initializers and ``Constant`` outputs.
    readers : Mapping[str, tuple[Node, ...]]
        The nodes that read each tensor, in file order (tensors no node reads are absent).
    """

    path: Path
    label: str
    opset: int
    producer: str
    input_name: str
    input_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    nodes: tuple[Node, ...]
    shapes: Mapping[str, tuple[int, ...]]
    constants: Mapping[str, np.ndarray]
    readers: Mapping[str, tuple[Node, ...]]

    def consumers(self, tensor: str) -> tuple[Node, ...]:
        """Nodes that read ``tensor``, in file order."""
        return self.readers.get(tensor, ())


def _fail(label: str, problem: str) -> OnnxError:
    return OnnxError(f"{label}: {problem}")


def _load(path: Path, label: str) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    if not path.exists():
        raise _fail(label, "no such file")
    if path.is_dir():
        raise _fail(label, "is a folder, not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError, UnicodeDecodeError) as exc:
        raise _fail(
            label,
            f"not a readable ONNX model (protobuf: {short(str(exc) or type(exc).__name__)}); "
            "the file is truncated or not ONNX: export it again (torch.onnx.export, tf2onnx)",
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise _fail(
            label,
            "holds no graph (not an ONNX model, or truncated); export it again "
            "(torch.onnx.export, tf2onnx)",
        )
    _load_external(model, path, label)
    return model


def _load_external(model: Any, path: Path, label: str) -> None:
    """Read external-data initializers from beside the model, naming any missing file."""
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    missing = []
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            if not (path.parent / location).is_file():
                missing.append((tensor.name, location))
    if missing:
        name, location = missing[0]
        raise _fail(
            label,
            f"initializer {name!r} keeps its data in the external file {location!r}, which is "
            f"not in {str(path.parent)!r} ({len(missing)} initializer(s) missing data); copy the "
            "data file beside the model or save the model with onnx.save(..., "
            "save_as_external_data=False)",
        )
    try:
        load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as exc:
        raise _fail(label, f"cannot read its external weight data: {short(str(exc))}") from None


def _check(model: Any, label: str) -> None:
    """The ONNX checker: every node's attributes and inputs as its operator's schema says."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise _fail(
            label,
            f"is not a valid ONNX model: {short(first)}; onnx.checker.check_model shows the "
            "problem, export the model again",
        ) from None


def _opset(model: Any, label: str) -> int:
    versions = {entry.domain: entry.version for entry in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise _fail(label, "declares no default-domain opset (opset_import); export it again")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise _fail(
            label,
            f"opset {version} is outside the {MIN_OPSET}..{MAX_OPSET} voltflow reads; convert it "
            f"with onnx.version_converter.convert_version(model, {min(max(version, 9), 21)})",
        )
    return int(version)


def _dims(value_info: Any) -> list[int | str]:
    dims: list[int | str] = []
    for dim in value_info.type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return dims


def _fix_input(
    model: Any, label: str, input_shape: Sequence[int] | None
) -> tuple[str, tuple[int, ...]]:
    graph = model.graph
    initialized = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initialized]
    if len(inputs) != 1:
        names = ", ".join(repr(value.name) for value in inputs) or "none"
        raise _fail(
            label,
            f"the graph has {len(inputs)} inputs ({names}); a voltflow network takes exactly one "
            "input tensor: export the model with one input",
        )
    value = inputs[0]
    if value.type.tensor_type.elem_type == 0:
        raise _fail(label, f"input {value.name!r} is not a tensor; export the model again")
    dims = _dims(value)
    if input_shape is not None:
        fixed = tuple(int(v) for v in input_shape)
        if len(fixed) not in (len(dims), len(dims) - 1):
            raise _fail(
                label,
                f"--input-shape {','.join(map(str, fixed))} has {len(fixed)} dimension(s); input "
                f"{value.name!r} has {len(dims)} ({_show(dims)}): give them without the batch",
            )
        if len(fixed) == len(dims) - 1:
            fixed = (1, *fixed)
    else:
        unknown = [i for i, d in enumerate(dims) if not isinstance(d, int) and i > 0]
        if unknown:
            raise _fail(
                label,
                f"input {value.name!r} has the dynamic shape {_show(dims)}; give its size with "
                "--input-shape C,H,W",
            )
        fixed = (1, *(int(d) for d in dims[1:])) if dims else ()
    if len(fixed) not in (2, 3, 4):
        raise _fail(
            label,
            f"input {value.name!r} has shape {_show(list(fixed))}; voltflow reads a batch of one "
            "image [1, C, H, W] or vector [1, F]",
        )
    if isinstance(dims[0], int) and dims[0] != 1 and input_shape is None:
        raise _fail(
            label,
            f"input {value.name!r} has batch {dims[0]}; voltflow runs one inference: export with "
            "batch 1 or a dynamic batch",
        )
    if any(d < 1 for d in fixed):
        raise _fail(label, f"input shape {_show(list(fixed))} must be positive")
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in fixed:
        shape.dim.add().dim_value = d
    return value.name, fixed


def _show(dims: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper, numpy_helper

    out: dict[str, Any] = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif hasattr(value, "dims") and hasattr(value, "data_type"):
            value = numpy_helper.to_array(value)
        elif isinstance(value, list):
            value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        out[attribute.name] = value
    return out


def read_onnx(path: str | os.PathLike[str], input_shape: Sequence[int] | None = None) -> Graph:
    """Read and check an ONNX model.

    Parameters
    ----------
    path : path-like
        The ``.onnx`` file.
    input_shape : sequence of int or None
        The input's shape without (or with) the batch dimension, for a model whose input shape is
        dynamic; None: the file's own static shape (a dynamic batch is taken as 1).

    Raises
    ------
    OnnxError
        For every problem named in the module docstring; never another exception for bad files.
    """
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    label = str(path)
    model = _load(path, label)
    opset = _opset(model, label)
    _check(model, label)
    input_name, fixed = _fix_input(model, label, input_shape)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises several types, all meaning "the model is inconsistent"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(
            label,
            f"shape inference fails with input shape {_show(list(fixed))}: {short(first)}; "
            "check --input-shape, or run onnx.checker.check_model on the file",
        ) from None
    graph = inferred.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = _dims(value)
        if all(isinstance(d, int) for d in dims) and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = tuple(int(d) for d in dims)
    constants: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        try:
            constants[tensor.name] = numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as exc:
            raise _fail(
                label, f"initializer {tensor.name!r} cannot be read: {short(str(exc))}"
            ) from None
        shapes[tensor.name] = tuple(constants[tensor.name].shape)
    nodes = []
    for index, proto in enumerate(graph.node):
        node = Node(
            index=index,
            name=proto.name,
            op_type=proto.op_type,
            domain=proto.domain,
            inputs=tuple(proto.input),
            outputs=tuple(proto.output),
            attrs=MappingProxyType(_attrs(proto)),
        )
        if node.domain not in _DOMAINS:
            raise _fail(
                label,
                f"{node.label} is in the custom domain {node.domain!r}; voltflow reads the "
                "standard ONNX operators (and onnxruntime's quantised contrib operators)",
            )
        nodes.append(node)
    readers: dict[str, list[Node]] = {}
    for node in nodes:
        for name in dict.fromkeys(node.inputs):  # a node reading a tensor twice counts once
            if name:
                readers.setdefault(name, []).append(node)
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    return Graph(
        path=path,
        label=label,
        opset=opset,
        producer=producer,
        input_name=input_name,
        input_shape=fixed,
        output_names=tuple(value.name for value in graph.output),
        nodes=tuple(nodes),
        shapes=MappingProxyType(shapes),
        constants=MappingProxyType(constants),
        readers=MappingProxyType({name: tuple(found) for name, found in readers.items()}),
    )
