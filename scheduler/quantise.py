"""Int8 quantisation of an imported model: scales per tensor, int8 weights, requantisation scales.

Symmetric int8 everywhere (zero points 0), per docs/arithmetic.md:

- weights per output channel: ``scale_w[c] = max |w[c]| / 127`` (float32),
  ``q = round(w / scale_w)`` clipped to -127..127, unless the model brings its own int8 weights
  (QDQ, QOperator);
- activations per tensor: ``scale = max |x| / 127`` over a calibration run of the float network
  (`calibrate`: a seeded standard-normal input, or the user's inputs), capped by a Clip's bound,
  unless the model brings its own scales; tensors that the accelerator cannot requantise between
  (a max pool's input and output, a concat's inputs and output) share one scale;
- biases: ``round(b / (scale_in * scale_w[c]))`` in int32;
- requantisation of a conv or fc output channel: ``(scale_in * scale_w[c]) / scale_out`` computed
  in float32 in that order (as onnxruntime's QLinearConv does), which the hardware's per-channel
  24-bit multiplier holds exactly; an add's two ratios ``scale_x / scale_out`` and an average
  pool's ``scale_in / (scale_out * kh * kw)`` go through the per-op 16-bit multiplier.

`float_forward` is the float reference of a network (real arithmetic, what the int8 network
approximates).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .network import Network, Op, OpKind
from .onnx_import import Imported
from .windows import im2col, windows

__all__ = [
    "QuantError",
    "Quantised",
    "calibrate",
    "float_forward",
    "quantise",
    "seeded_input",
    "share_groups",
]

_INT8_MAX = 127


class QuantError(ValueError):
    """The model cannot be quantised as the accelerator needs (the message says why and how)."""


@dataclass(frozen=True, slots=True, eq=False)
class Quantised:
    """The int8 parameters of a network.

    Attributes
    ----------
    input_scale : float
        The network input's scale: ``x_int8 = clamp(round_half_even(x / input_scale))``.
    scales : Mapping[str, float]
        Every tensor's scale (the input's and each op's output).
    weights, biases : Mapping[str, numpy.ndarray]
        Per conv/fc op: int8 weights (the op's weight shape) and int32 biases.
    channel_scales : Mapping[str, numpy.ndarray]
        Per conv/fc op: the float32 requantisation scale of each output channel.
    op_scales : Mapping[str, tuple[float, ...]]
        Per average pool: ``(ratio,)``; per add: ``(ratio_a, ratio_b)``.
    scheme : str
        Where the scales come from, for reports.
    notes : tuple of str
        Where the int8 arithmetic knowingly differs from the model's.
    """

    input_scale: float
    scales: Mapping[str, float]
    weights: Mapping[str, np.ndarray]
    biases: Mapping[str, np.ndarray]
    channel_scales: Mapping[str, np.ndarray]
    op_scales: Mapping[str, tuple[float, ...]]
    scheme: str
    notes: tuple[str, ...] = ()

    def quantise_input(self, x: np.ndarray) -> np.ndarray:
        """The int8 network input of a float (C, H, W) input (round half to even, saturated)."""
        q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(self.input_scale))
        return np.clip(q, -128, 127).astype(np.int8)


# ---- float reference -----------------------------------------------------------------------------


def _windows(x: np.ndarray, op: Op, fill: float) -> np.ndarray:
    return windows(x, op.kernel, op.stride, op.padding, fill)


def _float_op(
    op: Op, xs: Sequence[np.ndarray], weight: np.ndarray | None, bias: np.ndarray | None
) -> np.ndarray:
    kind = op.kind
    if kind in (OpKind.CONV, OpKind.FC):
        assert weight is not None and bias is not None
        x = xs[0]
        if kind is OpKind.FC:
            y = weight.reshape(weight.shape[0], -1) @ x.reshape(-1) + bias
            return y.reshape(-1, 1, 1)
        win = _windows(x, op, 0.0)  # (C_in, OH, OW, kh, kw)
        _, oh, ow, _, _ = win.shape
        cols = im2col(win, op.groups)
        w = weight.reshape(op.groups, weight.shape[0] // op.groups, -1)
        return np.matmul(w, cols).reshape(-1, oh, ow) + bias[:, None, None]
    if kind is OpKind.MAXPOOL:
        return _windows(xs[0], op, -np.inf).max(axis=(3, 4))
    if kind is OpKind.AVGPOOL:
        return _windows(xs[0], op, 0.0).sum(axis=(3, 4)) / (op.kernel[0] * op.kernel[1])
    if kind is OpKind.ADD:
        return xs[0] + xs[1]
    if kind is OpKind.CONCAT:
        return np.concatenate(xs, axis=0)
    raise QuantError(f"op {op.name!r}: {kind.value} has no float reference")


def float_forward(imported: Imported, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every tensor of the float network for a float (C, H, W) input, by name (input included)."""
    network = imported.network
    tensors = {network.input_name: np.asarray(x, dtype=np.float64)}
    for op in network.ops:
        layer = imported.layers.get(op.name)
        y = _float_op(
            op,
            [tensors[name] for name in op.inputs],
            None if layer is None else layer.weight,
            None if layer is None else layer.bias,
        )
        if op.relu:
            y = np.maximum(y, 0.0)
        cap = imported.caps.get(op.name)
        if cap is not None:
            y = np.minimum(y, cap)
        tensors[op.name] = y
    return tensors


def seeded_input(network: Network, seed: int) -> np.ndarray:
    """A reproducible float input: standard normal, (C, H, W), float32."""
    shape = network.input
    rng = np.random.default_rng([seed, 0])
    return rng.standard_normal((shape.channels, shape.height, shape.width)).astype(np.float32)


def calibrate(imported: Imported, inputs: Sequence[np.ndarray]) -> dict[str, float]:
    """The largest magnitude of every tensor over the float runs of ``inputs``."""
    ranges: dict[str, float] = {}
    for x in inputs:
        for name, value in float_forward(imported, x).items():
            ranges[name] = max(ranges.get(name, 0.0), float(np.max(np.abs(value), initial=0.0)))
    return ranges


# ---- scale groups --------------------------------------------------------------------------------


def share_groups(network: Network) -> list[list[str]]:
    """Tensors that must share one scale: a max pool's input and output, a concat's inputs and
    output (neither requantises). Every tensor is in exactly one group."""
    parent = {name: name for name in (network.input_name, *(op.name for op in network.ops))}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for op in network.ops:
        if op.kind in (OpKind.MAXPOOL, OpKind.CONCAT):
            for tensor in op.inputs:
                parent[find(tensor)] = find(op.name)
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(find(name), []).append(name)
    return list(groups.values())


def _scales_from_ranges(network: Network, ranges: Mapping[str, float]) -> dict[str, float]:
    scales: dict[str, float] = {}
    for group in share_groups(network):
        top = max(ranges[name] for name in group)
        scale = float(np.float32(top / _INT8_MAX)) if top > 0 else 1.0 / _INT8_MAX
        for name in group:
            scales[name] = scale
    return scales


def _check_given(imported: Imported) -> tuple[dict[str, float], list[str]]:
    """The model's own scales, each shared group given the scale of its last tensor (the concat's
    or the max pool's output): the producers of the group then round straight to it."""
    network = imported.network
    label = imported.graph.label
    scales = dict(imported.scales)
    missing = [n for n in (network.input_name, *(op.name for op in network.ops)) if n not in scales]
    if missing:
        raise QuantError(
            f"{label}: tensor(s) {', '.join(map(repr, missing[:5]))} have no quantisation scale "
            f"({len(missing)} in all): the model is only partly quantised; quantise every op "
            "(onnxruntime quantize_static without nodes_to_exclude)"
        )
    order = {
        name: index
        for index, name in enumerate((network.input_name, *(op.name for op in network.ops)))
    }
    notes = []
    for group in share_groups(network):
        root = max(group, key=order.__getitem__)
        for name in group:
            if scales[name] != scales[root]:
                notes.append(
                    f"tensor {name!r}: ONNX scale {scales[name]!r}, then requantised to "
                    f"{scales[root]!r} for {root!r}; the accelerator rounds once, to the second"
                )
                scales[name] = scales[root]
    return scales, notes


# ---- weights -------------------------------------------------------------------------------------


def _weights(imported: Imported, op: Op) -> tuple[np.ndarray, np.ndarray]:
    layer = imported.layers[op.name]
    if layer.qweight is not None and layer.weight_scale is not None:
        return layer.qweight, layer.weight_scale
    flat = layer.weight.reshape(layer.weight.shape[0], -1)
    top = np.max(np.abs(flat), axis=1)
    scale = np.where(top > 0, top / _INT8_MAX, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    q = np.clip(np.rint(layer.weight / scale.reshape(shape)), -_INT8_MAX, _INT8_MAX)
    return q.astype(np.int8), scale


def _bias(imported: Imported, op: Op, s_in: float, w_scale: np.ndarray) -> np.ndarray:
    layer = imported.layers[op.name]
    if layer.qbias is not None:
        return layer.qbias
    unit = np.float32(s_in) * w_scale.astype(np.float32)
    q = np.rint(layer.bias / unit.astype(np.float64))
    limit = 2.0**31 - 1
    if np.any(np.abs(q) > limit):
        worst = int(np.argmax(np.abs(q)))
        raise QuantError(
            f"{imported.graph.label}: op {op.name!r}: bias of channel {worst} "
            f"({layer.bias[worst]!r}) does not fit int32 at scale {float(unit[worst])!r}"
        )
    return q.astype(np.int32)


def quantise(
    imported: Imported,
    ranges: Mapping[str, float] | None = None,
    *,
    scales: Mapping[str, float] | None = None,
    scheme: str = "",
) -> Quantised:
    """The int8 parameters of ``imported``.

    Parameters
    ----------
    imported : Imported
    ranges : Mapping[str, float] or None
        Calibrated tensor ranges (`calibrate`), for a float model.
    scales : Mapping[str, float] or None
        Tensor scales to use as they are (a network file's stored scales); they must satisfy the
        shared-scale groups.
    scheme : str
        Where the scales come from, for reports.

    Raises
    ------
    QuantError
        A quantised model missing scales or with unequal shared scales, a float model without
        ranges, a bias beyond int32.
    """
    network = imported.network
    notes: list[str] = []
    if scales is not None:
        given = dict(scales)
        missing = [
            n for n in (network.input_name, *(op.name for op in network.ops)) if n not in given
        ]
        if missing:
            raise QuantError(f"no scale for tensor(s) {', '.join(map(repr, missing[:5]))}")
    elif imported.quantised:
        given, notes = _check_given(imported)
        scheme = scheme or "the model's own (QDQ/QOperator) scales"
    elif ranges is not None:
        capped = {
            name: min(value, imported.caps.get(name, math.inf)) for name, value in ranges.items()
        }
        given = _scales_from_ranges(network, capped)
    else:
        raise QuantError(f"{imported.graph.label}: a float model needs calibration ranges")
    weights: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    channel: dict[str, np.ndarray] = {}
    op_scales: dict[str, tuple[float, ...]] = {}
    f32 = np.float32
    for op in network.ops:
        if op.kind in (OpKind.CONV, OpKind.FC):
            s_in = given[op.inputs[0]]
            q, w_scale = _weights(imported, op)
            weights[op.name] = q
            biases[op.name] = _bias(imported, op, s_in, w_scale)
            channel[op.name] = ((f32(s_in) * w_scale.astype(f32)) / f32(given[op.name])).astype(f32)
        elif op.kind is OpKind.AVGPOOL:
            window = op.kernel[0] * op.kernel[1]
            op_scales[op.name] = (given[op.inputs[0]] / (given[op.name] * window),)
        elif op.kind is OpKind.ADD:
            op_scales[op.name] = tuple(given[t] / given[op.name] for t in op.inputs)
    return Quantised(
        input_scale=given[network.input_name],
        scales=MappingProxyType(given),
        weights=MappingProxyType(weights),
        biases=MappingProxyType(biases),
        channel_scales=MappingProxyType(channel),
        op_scales=MappingProxyType(op_scales),
        scheme=scheme,
        notes=(*imported.notes, *notes),
    )
