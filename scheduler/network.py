"""Networks as chains of operators: the ``voltflow-network/1`` YAML format, its loader and the zoo.

A network is a directed acyclic graph of operators over tensors shaped (channels, height, width),
stored in topological order; the cost model and the scheduler walk it as a chain. The format is
described field by field in ``docs/network-format.md``; the zoo lives in ``scheduler/networks/``.
"""

import dataclasses
import enum
import heapq
import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any, Final, NoReturn, TypeGuard

from .documents import DocumentError, parse_yaml, read_text, short

__all__ = [
    "FORMAT",
    "MAX_OPS",
    "SCORES_BLOCK",
    "Attention",
    "AttentionKind",
    "MatmulDims",
    "Network",
    "NetworkError",
    "Op",
    "OpKind",
    "Shape",
    "known_networks",
    "load_network",
    "network_from_document",
    "padded_keys",
]

FORMAT: Final = "voltflow-network/1"
"""The value of the ``format`` key that this loader reads."""


class NetworkError(ValueError):
    """A network file, a zoo name or a programmatically built network is invalid."""


class OpKind(enum.Enum):
    """What an operator computes."""

    CONV = "conv"
    FC = "fc"
    MATMUL = "matmul"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADD = "add"
    CONCAT = "concat"
    SOFTMAX = "softmax"


class AttentionKind(enum.Enum):
    """Which product of an attention a matmul with an ``attention`` layout computes."""

    SCORES = "scores"  # Q K^T (docs/attention.md)
    CONTEXT = "context"  # A V


#: The channel block of the scores tensor: the keys of a batch fill whole blocks of this many
#: channels (docs/attention.md). A format constant: a chip with other lanes per word rejects it.
SCORES_BLOCK: Final = 8


def padded_keys(keys: int) -> int:
    """``N8 = ceil(N / 8) * 8``: the channels one batch's (or group's) keys take in a scores
    tensor."""
    return -(-keys // SCORES_BLOCK) * SCORES_BLOCK


_WEIGHTED: Final = frozenset({OpKind.CONV, OpKind.FC, OpKind.MATMUL})
_WINDOWED: Final = frozenset({OpKind.CONV, OpKind.MAXPOOL, OpKind.AVGPOOL})
_POOLS: Final = frozenset({OpKind.MAXPOOL, OpKind.AVGPOOL})
_MAY_RELU: Final = frozenset({OpKind.CONV, OpKind.FC, OpKind.ADD})
_MAY_PER_CHANNEL: Final = frozenset({OpKind.CONV, OpKind.FC})


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Shape:
    """A tensor shape: channels x height x width, in elements. An fc output is (features, 1, 1)."""

    channels: int
    height: int
    width: int

    def __post_init__(self) -> None:
        for name in ("channels", "height", "width"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise NetworkError(f"Shape.{name} must be a positive int, not {short(value)}")

    @property
    def elements(self) -> int:
        """Number of elements, channels x height x width."""
        return self.channels * self.height * self.width

    def __str__(self) -> str:
        return f"{self.channels}x{self.height}x{self.width}"


@dataclass(frozen=True, slots=True)
class MatmulDims:
    """Dimensions of a batched matrix product ``out[b, i, j] = sum_k A[b, i, k] * B[b, k, j]``."""

    batch: int
    m: int
    k: int
    n: int

    def __post_init__(self) -> None:
        for name in ("batch", "m", "k", "n"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise NetworkError(f"MatmulDims.{name} must be a positive int, not {short(value)}")


@dataclass(frozen=True, slots=True)
class Attention:
    """The layout of an attention matmul's operands (docs/attention.md, "The three ops").

    Tokens are the pixels that share a position in their ``patch``: with patch ``(ph, pw)`` over
    an ``H x W`` map there are ``P = ph * pw`` positions and ``N = (H / ph) * (W / pw)`` tokens
    per position; batch ``b = p * heads + h``.

    Parameters
    ----------
    kind : AttentionKind
        SCORES (Q K^T: both inputs are maps) or CONTEXT (A V: the scores tensor and the V map).
    heads : int
        Attention heads.
    head_channels : int
        Channels per head (dh).
    patch : tuple of int
        (ph, pw).
    a_channel : int
        SCORES: Q's first channel in the a map; 0 for CONTEXT (its a is the scores tensor).
    b_channel : int
        K's (SCORES) or V's (CONTEXT) first channel in the b map.
    """

    kind: AttentionKind
    heads: int
    head_channels: int
    patch: tuple[int, int] = (1, 1)
    a_channel: int = 0
    b_channel: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, AttentionKind):
            raise NetworkError(f"Attention.kind must be an AttentionKind, not {short(self.kind)}")
        for name in ("heads", "head_channels"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise NetworkError(f"Attention.{name} must be a positive int, not {short(value)}")
        if not (
            isinstance(self.patch, tuple)
            and len(self.patch) == 2
            and all(_is_int(v) and v >= 1 for v in self.patch)
        ):
            raise NetworkError(
                f"Attention.patch must be a tuple of 2 positive ints, not {short(self.patch)}"
            )
        for name in ("a_channel", "b_channel"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise NetworkError(
                    f"Attention.{name} must be a non-negative int, not {short(value)}"
                )
        if self.kind is AttentionKind.CONTEXT and self.a_channel != 0:
            raise NetworkError(
                f"Attention.a_channel must be 0 for a context matmul (its a input is the scores "
                f"tensor), not {self.a_channel}"
            )

    @property
    def positions(self) -> int:
        """``P = ph * pw``: pixel positions in a patch."""
        return self.patch[0] * self.patch[1]

    @property
    def batch(self) -> int:
        """``P * heads``: one batch per position and head."""
        return self.positions * self.heads

    def tokens(self, height: int, width: int) -> int:
        """``N = (H / ph) * (W / pw)``: tokens per position of an ``H x W`` map."""
        return (height // self.patch[0]) * (width // self.patch[1])

    def map_shape(self, in_shapes: tuple[Shape, ...]) -> Shape:
        """The map the tokens come from: the a map of SCORES, the b (V) map of CONTEXT."""
        return in_shapes[0] if self.kind is AttentionKind.SCORES else in_shapes[1]


class _Invalid(Exception):
    """A rule broken by one field of an op; turned into a NetworkError with the caller's context."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason


def _window_count(size: int, window: int, stride: int, before: int, after: int) -> int:
    """Window positions along one axis: floor((size + before + after - window) / stride) + 1."""
    return (size + before + after - window) // stride + 1


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TF/Keras 'same' padding along one axis: output ceil(size / stride), extra padding after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _ceil_mode_extra(size: int, window: int, stride: int, before: int, after: int) -> int:
    """Padding to add after an axis so that the floor formula gives PyTorch's ceil_mode count.

    PyTorch counts ceil((size + before + after - window) / stride) + 1 windows, minus the last one
    if it would start beyond the input and the padding before it.
    """
    span = size + before + after
    out = -(-(span - window) // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return max((out - 1) * stride + window - span, 0)


def _attention_dims(attention: Attention, in_shapes: tuple[Shape, ...]) -> tuple[MatmulDims, Shape]:
    """The product dimensions and the output shape of an attention matmul (docs/attention.md),
    or ``_Invalid`` naming the field that breaks a rule. ``in_shapes`` holds the two inputs."""
    heads, dh = attention.heads, attention.head_channels
    ph, pw = attention.patch
    span = heads * dh
    scores = attention.kind is AttentionKind.SCORES
    a, b = in_shapes
    if scores and (a.height, a.width) != (b.height, b.width):
        raise _Invalid(
            "inputs", f"must be maps of equal height and width for scores, not {a} and {b}"
        )
    grid = attention.map_shape(in_shapes)
    if grid.height % ph or grid.width % pw:
        raise _Invalid(
            "patch",
            f"[{ph}, {pw}] must tile the {grid.height}x{grid.width} map (height a multiple of "
            f"{ph}, width a multiple of {pw})",
        )
    operands = (("a_channel", a, attention.a_channel),) if scores else ()
    for key, shape, first in (*operands, ("b_channel", b, attention.b_channel)):
        if first + span > shape.channels:
            which = "a" if key == "a_channel" else "b"
            raise _Invalid(
                key,
                f"{key} {first} + heads {heads} x head_channels {dh} = {first + span} must be "
                f"at most the {shape.channels} channels of input {which} ({shape})",
            )
    n = attention.tokens(grid.height, grid.width)
    batch = attention.batch
    if scores:
        return MatmulDims(batch, n, dh, n), Shape(batch * padded_keys(n), 1, n)
    expected = Shape(batch * padded_keys(n), 1, n)
    if a != expected:
        raise _Invalid(
            "inputs",
            f"a must be the scores tensor [batch * N8, 1, N] = [{expected.channels}, 1, {n}] of "
            f"heads {heads}, patch [{ph}, {pw}] over the {grid.height}x{grid.width} map of "
            f"input b ({n} tokens), not {a}",
        )
    return MatmulDims(batch, n, n, dh), Shape(span, grid.height, grid.width)


def _derive_out(
    kind: OpKind,
    in_shapes: tuple[Shape, ...],
    *,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    groups: int,
    channels: int | None,
    matmul: MatmulDims | None,
    out_shape: Shape | None,
    attention: Attention | None = None,
) -> Shape:
    """The output shape of an op, or ``_Invalid`` naming the field that breaks a rule.

    This is the one place where the shape rules live: the loader uses it to infer output shapes,
    ``Op`` uses it to check a given one. ``channels`` is out_channels (conv) or out_features (fc);
    ``out_shape`` is only read for a generic matmul (no ``attention``), whose data layout the
    format leaves open; an attention matmul's ``matmul`` must be the dimensions its layout gives.
    """
    arity = {OpKind.ADD: 2, OpKind.MATMUL: 2, OpKind.CONCAT: None}.get(kind, 1)
    if arity is None and len(in_shapes) < 2:
        raise _Invalid("inputs", f"must list at least 2 tensors, not {len(in_shapes)}")
    if arity is not None and len(in_shapes) != arity:
        raise _Invalid("inputs", f"must list exactly {arity} tensor(s), not {len(in_shapes)}")
    first = in_shapes[0]
    if kind in _WINDOWED:
        (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, stride, padding
        if first.height + top + bottom < kh or first.width + left + right < kw:
            raise _Invalid(
                "kernel",
                f"{kh}x{kw} does not fit the input {first.height}x{first.width} "
                f"padded by {list(padding)} (top, left, bottom, right)",
            )
        if max(top, bottom) >= kh or max(left, right) >= kw:
            raise _Invalid(
                "padding",
                f"each side must be smaller than the {kh}x{kw} kernel, not {list(padding)}",
            )
        height = _window_count(first.height, kh, sh, top, bottom)
        width = _window_count(first.width, kw, sw, left, right)
        if kind in _POOLS:
            return Shape(first.channels, height, width)
        assert channels is not None
        if groups != 1:
            if groups != first.channels:
                raise _Invalid(
                    "groups",
                    f"must be 1, or the input's {first.channels} channels for a depthwise conv, "
                    f"not {groups}",
                )
            if channels != first.channels:
                raise _Invalid(
                    "out_channels",
                    f"must equal the input's {first.channels} channels for a depthwise conv "
                    f"(groups {groups}), not {channels}",
                )
        return Shape(channels, height, width)
    if kind is OpKind.FC:
        assert channels is not None
        return Shape(channels, 1, 1)
    if kind is OpKind.MATMUL and attention is not None:
        dims, shape = _attention_dims(attention, in_shapes)
        if matmul is not None and matmul != dims:
            raise _Invalid(
                "matmul", f"must be {dims} for this {attention.kind.value} layout, not {matmul}"
            )
        return shape
    if kind is OpKind.MATMUL:
        assert matmul is not None and out_shape is not None
        produced = matmul.batch * matmul.m * matmul.n
        if out_shape.elements != produced:
            raise _Invalid(
                "out_shape",
                f"must hold batch*m*n = {produced} elements, "
                f"not {out_shape.elements} ({out_shape})",
            )
        return out_shape
    if kind is OpKind.SOFTMAX:
        keys = padded_keys(first.width)
        if first.height != 1 or first.channels % keys:
            raise _Invalid(
                "inputs",
                f"must be a scores tensor [G * n8, 1, n] (height 1, channels a multiple of "
                f"n8 = ceil(n / 8) * 8 = {keys} for n = {first.width} keys), not {first}",
            )
        return first
    if kind is OpKind.ADD:
        if in_shapes[1] != first:
            raise _Invalid("inputs", f"must have equal shapes, not {first} and {in_shapes[1]}")
        return first
    # CONCAT, along channels.
    for shape in in_shapes[1:]:
        if (shape.height, shape.width) != (first.height, first.width):
            raise _Invalid(
                "inputs",
                "must have equal height and width, not "
                + ", ".join(str(shape) for shape in in_shapes),
            )
    return Shape(sum(shape.channels for shape in in_shapes), first.height, first.width)


@dataclass(frozen=True, slots=True)
class Op:
    """One operator of a network.

    Parameters
    ----------
    name : str
        Unique within the network; also the name of the op's output tensor.
    kind : OpKind
        What the op computes.
    inputs : tuple of str
        Names of the tensors read: the network input's name or earlier ops' names.
    in_shapes : tuple of Shape
        Shapes of ``inputs``, in the same order.
    out : Shape
        Output shape, (channels, height, width).
    kernel : tuple of int
        (kh, kw) of a conv; a pool's window, (H, W) for a global pool; (1, 1) otherwise.
    stride : tuple of int
        (sh, sw) in input elements; (1, 1) for non-windowed ops.
    padding : tuple of int
        (top, left, bottom, right), always explicit: the loader resolves 'same' and ceil_mode.
    groups : int
        1, or the input channel count for a depthwise conv.
    relu : bool
        A pointwise activation follows in the same op (conv, fc, add only).
    matmul : MatmulDims or None
        Dimensions of a matmul op (derived from ``attention`` for an attention matmul); None for
        every other kind.
    per_channel : bool
        Requantisation parameters per output channel instead of one per op (conv, fc only;
        docs/arithmetic.md, "Per-channel requantisation").
    attention : Attention or None
        The operand layout of an attention matmul (docs/attention.md); None for a generic matmul
        (cost model only) and every other kind.
    """

    name: str
    kind: OpKind
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    out: Shape
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    relu: bool = False
    matmul: MatmulDims | None = None
    per_channel: bool = False
    attention: Attention | None = None

    def __post_init__(self) -> None:
        try:
            self._check_fields()
            expected = _derive_out(
                self.kind,
                self.in_shapes,
                kernel=self.kernel,
                stride=self.stride,
                padding=self.padding,
                groups=self.groups,
                channels=self.out.channels,
                matmul=self.matmul,
                out_shape=self.out,
                attention=self.attention,
            )
        except _Invalid as exc:
            raise NetworkError(f"op {short(self.name)}: {exc}") from None
        if expected != self.out:
            raise NetworkError(f"op {short(self.name)}: out: must be {expected}, not {self.out}")

    def _check_fields(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise NetworkError(f"Op.name must be a non-empty str, not {short(self.name)}")
        if not isinstance(self.kind, OpKind):
            raise _Invalid("kind", f"must be an OpKind, not {short(self.kind)}")
        if not isinstance(self.inputs, tuple) or not all(
            isinstance(name, str) and name for name in self.inputs
        ):
            raise _Invalid("inputs", f"must be a tuple of non-empty str, not {short(self.inputs)}")
        if not isinstance(self.in_shapes, tuple) or not all(
            isinstance(shape, Shape) for shape in self.in_shapes
        ):
            raise _Invalid("in_shapes", f"must be a tuple of Shape, not {short(self.in_shapes)}")
        if len(self.in_shapes) != len(self.inputs):
            raise _Invalid(
                "in_shapes",
                f"must give one shape per input ({len(self.inputs)}), not {len(self.in_shapes)}",
            )
        if not isinstance(self.out, Shape):
            raise _Invalid("out", f"must be a Shape, not {short(self.out)}")
        for name, length, least in (("kernel", 2, 1), ("stride", 2, 1), ("padding", 4, 0)):
            value = getattr(self, name)
            if not (
                isinstance(value, tuple)
                and len(value) == length
                and all(_is_int(v) and v >= least for v in value)
            ):
                what = "positive" if least else "non-negative"
                raise _Invalid(name, f"must be a tuple of {length} {what} ints, not {short(value)}")
        if not _is_int(self.groups) or self.groups < 1:
            raise _Invalid("groups", f"must be a positive int, not {short(self.groups)}")
        if not isinstance(self.relu, bool):
            raise _Invalid("relu", f"must be a bool, not {short(self.relu)}")
        if self.relu and self.kind not in _MAY_RELU:
            raise _Invalid("relu", f"must be False for op kind {short(self.kind.value)}")
        if not isinstance(self.per_channel, bool):
            raise _Invalid("per_channel", f"must be a bool, not {short(self.per_channel)}")
        if self.per_channel and self.kind not in _MAY_PER_CHANNEL:
            raise _Invalid("per_channel", f"must be False for op kind {short(self.kind.value)}")
        if (self.kind is OpKind.MATMUL) != isinstance(self.matmul, MatmulDims):
            raise _Invalid(
                "matmul",
                f"must be MatmulDims for a matmul op and None otherwise, not {short(self.matmul)}",
            )
        if self.attention is not None and (
            self.kind is not OpKind.MATMUL or not isinstance(self.attention, Attention)
        ):
            raise _Invalid(
                "attention",
                f"must be an Attention of a matmul op or None, not {short(self.attention)}",
            )
        if self.kind not in _WINDOWED:
            for name, default in (("kernel", (1, 1)), ("stride", (1, 1)), ("padding", (0,) * 4)):
                if getattr(self, name) != default:
                    raise _Invalid(name, f"must be {default} for op kind {short(self.kind.value)}")
        if self.kind is not OpKind.CONV and self.groups != 1:
            raise _Invalid(
                "groups", f"must be 1 for op kind {short(self.kind.value)}, not {self.groups}"
            )

    @property
    def weighted(self) -> bool:
        """True for ops that multiply and accumulate (conv, fc, matmul)."""
        return self.kind in _WEIGHTED

    @property
    def attention_map(self) -> Shape:
        """The map an attention matmul's tokens come from (`Attention.map_shape`)."""
        if self.attention is None:
            raise ValueError(f"op {self.name!r} is not an attention matmul")
        return self.attention.map_shape(self.in_shapes)

    @property
    def macs(self) -> int:
        """Multiply-accumulates; 0 for pools, add and concat."""
        if self.kind is OpKind.CONV:
            kh, kw = self.kernel
            return self.out.elements * (self.in_shapes[0].channels // self.groups) * kh * kw
        if self.kind is OpKind.FC:
            return self.in_shapes[0].elements * self.out.channels
        if self.matmul is not None:
            return self.matmul.batch * self.matmul.m * self.matmul.k * self.matmul.n
        return 0

    @property
    def weight_count(self) -> int:
        """Weights (without bias) of a conv or fc; 0 otherwise (a matmul multiplies activations)."""
        if self.kind is OpKind.CONV:
            kh, kw = self.kernel
            return self.out.channels * (self.in_shapes[0].channels // self.groups) * kh * kw
        if self.kind is OpKind.FC:
            return self.in_shapes[0].elements * self.out.channels
        return 0

    @property
    def bias_count(self) -> int:
        """One bias per output channel of a conv or fc (own or folded batch norm); 0 otherwise."""
        return self.out.channels if self.kind in (OpKind.CONV, OpKind.FC) else 0


@dataclass(frozen=True, slots=True)
class Network:
    """A network: its input tensor and its ops in topological (chain) order.

    The last op's output is the network output; every other op's output and the input are read by
    at least one op.
    """

    name: str
    title: str
    source: str
    input_name: str
    input: Shape
    ops: tuple[Op, ...]
    _shapes: Mapping[str, Shape] = field(init=False, repr=False, compare=False)
    _ops: Mapping[str, Op] = field(init=False, repr=False, compare=False)
    _consumers: Mapping[str, tuple[Op, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("name", "title", "source", "input_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise NetworkError(f"Network.{name} must be a non-empty str, not {short(value)}")
        where = f"network {short(self.name)}"
        if not isinstance(self.input, Shape):
            raise NetworkError(f"{where}: input must be a Shape, not {short(self.input)}")
        if not isinstance(self.ops, tuple) or not self.ops:
            raise NetworkError(
                f"{where}: ops must be a non-empty tuple of Op, not {short(self.ops)}"
            )
        shapes: dict[str, Shape] = {self.input_name: self.input}
        ops: dict[str, Op] = {}
        consumers: dict[str, list[Op]] = {self.input_name: []}
        for index, op in enumerate(self.ops):
            if not isinstance(op, Op):
                raise NetworkError(f"{where}: ops[{index}] must be an Op, not {short(op)}")
            for tensor, in_shape in zip(op.inputs, op.in_shapes, strict=True):
                if tensor not in shapes:
                    raise NetworkError(
                        f"{where}: ops[{index}] ({op.name}).inputs: {short(tensor)} must be the "
                        f"network input or an earlier op"
                    )
                if shapes[tensor] != in_shape:
                    raise NetworkError(
                        f"{where}: ops[{index}] ({op.name}).in_shapes: {short(tensor)} is "
                        f"{shapes[tensor]}, not {in_shape}"
                    )
                consumers[tensor].append(op)
            if op.name in shapes:
                raise NetworkError(f"{where}: ops[{index}].name: duplicate name {short(op.name)}")
            shapes[op.name] = op.out
            ops[op.name] = op
            consumers[op.name] = []
        unused = [t for t, users in consumers.items() if not users and t != self.ops[-1].name]
        if unused:
            raise NetworkError(
                f"{where}: {short(unused[0])} is read by no op; only the last op may be unused"
            )
        object.__setattr__(self, "_shapes", MappingProxyType(shapes))
        object.__setattr__(self, "_ops", MappingProxyType(ops))
        object.__setattr__(
            self,
            "_consumers",
            MappingProxyType({tensor: tuple(users) for tensor, users in consumers.items()}),
        )

    def __reduce__(
        self,
    ) -> tuple[type["Network"], tuple[str, str, str, str, Shape, tuple[Op, ...]]]:
        # Pickle (process pools, deepcopy) through the constructor: the lookup tables are derived.
        args = (self.name, self.title, self.source, self.input_name, self.input, self.ops)
        return Network, args

    def _known(self, tensor: str) -> None:
        if tensor not in self._shapes:
            raise KeyError(f"network {short(self.name)} has no tensor {short(tensor)}")

    def shape(self, tensor: str) -> Shape:
        """Shape of a tensor: the input's name or an op's name."""
        self._known(tensor)
        return self._shapes[tensor]

    def op(self, name: str) -> Op:
        """The op with this name."""
        if name not in self._ops:
            raise KeyError(f"network {short(self.name)} has no op {short(name)}")
        return self._ops[name]

    def consumers(self, tensor: str) -> tuple[Op, ...]:
        """Ops that read a tensor, in chain order; empty for the network output."""
        self._known(tensor)
        return self._consumers[tensor]

    @property
    def output(self) -> Op:
        """The last op of the chain, whose output is the network output."""
        return self.ops[-1]

    @property
    def weighted_ops(self) -> tuple[Op, ...]:
        """The conv, fc and matmul ops, in chain order."""
        return tuple(op for op in self.ops if op.weighted)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference (the sum over the weighted ops)."""
        return sum(op.macs for op in self.ops)

    @property
    def weight_count(self) -> int:
        """Weights (without biases) of one copy of the network."""
        return sum(op.weight_count for op in self.ops)


# --------------------------------------------------------------------------------------------------
# Loader


#: Most ops a network may have: far above real edge networks (MobileNetV2: 65), and a bound on
#: everything sized by the op count (layer program, PMU program, solver tables).
MAX_OPS: Final = 2048

_TOP_KEYS: Final = ("format", "name", "title", "source", "input", "ops")
_INPUT_KEYS: Final = ("name", "shape")
_WINDOW_KEYS: Final = ("kernel", "stride", "padding")
#: Keys of a conv's or fc's output stage (docs/arithmetic.md).
_OUTPUT_KEYS: Final = ("relu", "per_channel")
#: Keys of a generic matmul (cost model only) and of an attention matmul (docs/attention.md).
_MATMUL_GENERIC_KEYS: Final = ("batch", "m", "k", "n", "out_shape")
_MATMUL_ATTENTION_KEYS: Final = (
    "attention",
    "heads",
    "head_channels",
    "patch",
    "a_channel",
    "b_channel",
)
_MATMUL_ATTENTION_REQUIRED: Final = ("attention", "heads", "head_channels")
_OP_KEYS: Final[Mapping[OpKind, tuple[str, ...]]] = {
    OpKind.CONV: ("name", "op", "input", "out_channels", *_WINDOW_KEYS, "groups", *_OUTPUT_KEYS),
    OpKind.FC: ("name", "op", "input", "out_features", *_OUTPUT_KEYS),
    OpKind.MATMUL: ("name", "op", "inputs", *_MATMUL_GENERIC_KEYS, *_MATMUL_ATTENTION_KEYS),
    OpKind.MAXPOOL: ("name", "op", "input", *_WINDOW_KEYS, "ceil_mode", "global"),
    OpKind.AVGPOOL: ("name", "op", "input", *_WINDOW_KEYS, "ceil_mode", "global"),
    OpKind.ADD: ("name", "op", "inputs", "relu"),
    OpKind.CONCAT: ("name", "op", "inputs"),
    OpKind.SOFTMAX: ("name", "op", "input"),
}
_OP_REQUIRED: Final[Mapping[OpKind, tuple[str, ...]]] = {
    OpKind.CONV: ("input", "out_channels", "kernel"),
    OpKind.FC: ("input", "out_features"),
    OpKind.MATMUL: ("inputs",),  # and the keys of its form: generic or attention
    OpKind.MAXPOOL: ("input",),
    OpKind.AVGPOOL: ("input",),
    OpKind.ADD: ("inputs",),
    OpKind.CONCAT: ("inputs",),
    OpKind.SOFTMAX: ("input",),
}
_SAME: Final = "same"


@dataclass(frozen=True, slots=True)
class _RawOp:
    """One op as read from the file, before its shapes are known."""

    index: int
    name: str
    kind: OpKind
    inputs: tuple[str, ...]
    input_key: str  # "input" or "inputs": where to point an error about an input
    kernel: tuple[int, int] | None = None
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] | str = (0, 0, 0, 0)
    groups: int = 1
    relu: bool = False
    per_channel: bool = False
    ceil_mode: bool = False
    is_global: bool = False
    channels: int | None = None
    matmul: MatmulDims | None = None
    out_shape: Shape | None = None
    attention: Attention | None = None

    @property
    def where(self) -> str:
        return f"ops[{self.index}] ({self.name})"

    def input_path(self, position: int) -> str:
        return (
            f"{self.where}.input"
            if self.input_key == "input"
            else f"{self.where}.inputs[{position}]"
        )


class _Reader:
    """Reads one file's parsed YAML into a Network, reporting errors as 'file: path: reason'."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, path: str, reason: str) -> NoReturn:
        prefix = f"{self.label}: {path}" if path else self.label
        raise NetworkError(f"{prefix}: {reason}")

    # -- scalars and small lists ---------------------------------------------------------------

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty string, not {short(value)}")
        return value

    def positive(self, value: object, path: str) -> int:
        if not _is_int(value) or value < 1:
            self.fail(path, f"must be a positive int, not {short(value)}")
        return value

    def non_negative(self, value: object, path: str) -> int:
        if not _is_int(value) or value < 0:
            self.fail(path, f"must be a non-negative int, not {short(value)}")
        return value

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, not {short(value)}")
        return value

    def pair(self, value: object, path: str, names: str) -> tuple[int, int]:
        if _is_int(value) and value >= 1:
            return value, value
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(_is_int(v) and v >= 1 for v in value)
        ):
            return value[0], value[1]
        self.fail(path, f"must be a positive int or [{names}], not {short(value)}")

    def padding(self, value: object, path: str) -> tuple[int, int, int, int] | str:
        if value == _SAME:
            return _SAME
        if _is_int(value) and value >= 0:
            return value, value, value, value
        if isinstance(value, list) and all(_is_int(v) and v >= 0 for v in value):
            if len(value) == 2:
                return value[0], value[1], value[0], value[1]
            if len(value) == 4:
                return value[0], value[1], value[2], value[3]
        self.fail(
            path,
            "must be a non-negative int, [ph, pw], [top, left, bottom, right] or 'same', "
            f"not {short(value)}",
        )

    def shape(self, value: object, path: str) -> Shape:
        if (
            isinstance(value, list)
            and len(value) == 3
            and all(_is_int(v) and v >= 1 for v in value)
        ):
            return Shape(*value)
        self.fail(path, f"must be [channels, height, width] of positive ints, not {short(value)}")

    def mapping(
        self,
        value: object,
        path: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...],
        what: str,
    ) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping with keys {', '.join(allowed)}, not {short(value)}")
        for key in value:
            if key not in allowed:
                self.fail(
                    path, f"unknown key {short(key)}; allowed keys{what}: {', '.join(allowed)}"
                )
        for key in required:
            if key not in value:
                self.fail(
                    path, f"missing key {short(key)}; required keys{what}: {', '.join(required)}"
                )
        return value

    # -- the document ----------------------------------------------------------------------------

    def network(self, doc: object) -> Network:
        if not isinstance(doc, dict):
            self.fail("", f"must be a mapping with keys {', '.join(_TOP_KEYS)}, not {short(doc)}")
        if "format" not in doc:
            self.fail("", f"missing key 'format'; the first line should be 'format: {FORMAT}'")
        if doc["format"] != FORMAT:
            self.fail("format", f"must be {short(FORMAT)}, not {short(doc['format'])}")
        doc = self.mapping(doc, "", (*_TOP_KEYS, "parameters"), _TOP_KEYS, "")
        if "parameters" in doc and not isinstance(doc["parameters"], dict):
            self.fail(
                "parameters",
                f"must be a mapping (see voltflow import), not {short(doc['parameters'])}",
            )
        name = self.text(doc["name"], "name")
        title = self.text(doc["title"], "title")
        source = self.text(doc["source"], "source")
        spec = self.mapping(doc["input"], "input", _INPUT_KEYS, _INPUT_KEYS, "")
        input_name = self.text(spec["name"], "input.name")
        input_shape = self.shape(spec["shape"], "input.shape")
        if not isinstance(doc["ops"], list) or not doc["ops"]:
            self.fail("ops", f"must be a non-empty list of ops, not {short(doc['ops'])}")
        if len(doc["ops"]) > MAX_OPS:
            self.fail(
                "ops",
                f"has {len(doc['ops']):,} ops; a network has at most {MAX_OPS:,} (the PMU's "
                "command memory and the layer program are sized for that)",
            )
        raws = [self.raw_op(index, value) for index, value in enumerate(doc["ops"])]
        chain = self.chain(raws, input_name)
        shapes = {input_name: input_shape}
        ops = []
        for raw in chain:
            op = self.build(raw, tuple(shapes[tensor] for tensor in raw.inputs))
            shapes[op.name] = op.out
            ops.append(op)
        try:
            return Network(name, title, source, input_name, input_shape, tuple(ops))
        except NetworkError as exc:  # pragma: no cover - the checks above are meant to catch all
            self.fail("", str(exc))

    def raw_op(self, index: int, value: object) -> _RawOp:
        where = f"ops[{index}]"
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping with keys name, op, ..., not {short(value)}")
        if "name" not in value:
            self.fail(where, "missing key 'name'")
        name = self.text(value["name"], f"{where}.name")
        where = f"{where} ({name})"
        kinds = ", ".join(kind.value for kind in OpKind)
        if "op" not in value:
            self.fail(where, f"missing key 'op'; must be one of {kinds}")
        try:
            kind = OpKind(value["op"])
        except ValueError:
            self.fail(f"{where}.op", f"must be one of {kinds}, not {short(value['op'])}")
        spec = self.mapping(
            value, where, _OP_KEYS[kind], _OP_REQUIRED[kind], f" for op kind {short(kind.value)}"
        )
        if "input" in spec:
            inputs: tuple[str, ...] = (self.text(spec["input"], f"{where}.input"),)
            input_key = "input"
        else:
            listed = spec["inputs"]
            if not isinstance(listed, list):
                self.fail(f"{where}.inputs", f"must be a list of tensor names, not {short(listed)}")
            inputs = tuple(
                self.text(tensor, f"{where}.inputs[{i}]") for i, tensor in enumerate(listed)
            )
            input_key = "inputs"
        base = _RawOp(index, name, kind, inputs, input_key)
        relu = self.flag(spec.get("relu", False), f"{where}.relu")
        per_channel = self.flag(spec.get("per_channel", False), f"{where}.per_channel")
        if kind is OpKind.CONV:
            return dataclasses.replace(
                base,
                channels=self.positive(spec["out_channels"], f"{where}.out_channels"),
                kernel=self.pair(spec["kernel"], f"{where}.kernel", "kh, kw"),
                stride=self.pair(spec.get("stride", 1), f"{where}.stride", "sh, sw"),
                padding=self.padding(spec.get("padding", 0), f"{where}.padding"),
                groups=self.positive(spec.get("groups", 1), f"{where}.groups"),
                relu=relu,
                per_channel=per_channel,
            )
        if kind is OpKind.FC:
            return dataclasses.replace(
                base,
                channels=self.positive(spec["out_features"], f"{where}.out_features"),
                relu=relu,
                per_channel=per_channel,
            )
        if kind is OpKind.MATMUL:
            if "attention" in spec:
                return dataclasses.replace(base, attention=self.attention(spec, where))
            for key in _MATMUL_ATTENTION_KEYS:
                if key in spec:
                    self.fail(
                        f"{where}.{key}",
                        "belongs to the attention form of matmul: give 'attention: scores' or "
                        "'attention: context' too, or leave it out for a generic matmul",
                    )
            for key in _MATMUL_GENERIC_KEYS:
                if key not in spec:
                    self.fail(
                        where,
                        f"missing key {short(key)}; required keys for a generic matmul: inputs, "
                        f"{', '.join(_MATMUL_GENERIC_KEYS)} (or give 'attention: scores' or "
                        "'attention: context' and its keys, docs/attention.md)",
                    )
            dims = {
                key: self.positive(spec[key], f"{where}.{key}") for key in ("batch", "m", "k", "n")
            }
            return dataclasses.replace(
                base,
                matmul=MatmulDims(**dims),
                out_shape=self.shape(spec["out_shape"], f"{where}.out_shape"),
            )
        if kind in _POOLS:
            if self.flag(spec.get("global", False), f"{where}.global"):
                for key in ("kernel", "stride", "padding", "ceil_mode"):
                    if key in spec:
                        self.fail(f"{where}.{key}", "must be left out of a global pool")
                return dataclasses.replace(base, is_global=True)
            if "kernel" not in spec:
                self.fail(where, "missing key 'kernel'; a pool needs a kernel or 'global: true'")
            kernel = self.pair(spec["kernel"], f"{where}.kernel", "kh, kw")
            return dataclasses.replace(
                base,
                kernel=kernel,
                stride=self.pair(spec.get("stride", list(kernel)), f"{where}.stride", "sh, sw"),
                padding=self.padding(spec.get("padding", 0), f"{where}.padding"),
                ceil_mode=self.flag(spec.get("ceil_mode", False), f"{where}.ceil_mode"),
            )
        # ADD, CONCAT, SOFTMAX: arity and input shapes are checked with the shapes.
        return dataclasses.replace(base, relu=relu)

    def attention(self, spec: Mapping[str, Any], where: str) -> Attention:
        """The layout of an attention matmul (docs/attention.md)."""
        for key in _MATMUL_GENERIC_KEYS:
            if key in spec:
                self.fail(
                    f"{where}.{key}",
                    "must be left out of an attention matmul: batch, m, k, n and the output "
                    "shape follow from heads, head_channels, patch and the input shapes",
                )
        for key in _MATMUL_ATTENTION_REQUIRED:
            if key not in spec:
                self.fail(
                    where,
                    f"missing key {short(key)}; required keys for an attention matmul: inputs, "
                    f"{', '.join(_MATMUL_ATTENTION_REQUIRED)}",
                )
        kinds = " or ".join(repr(kind.value) for kind in AttentionKind)
        try:
            kind = AttentionKind(spec["attention"])
        except (ValueError, TypeError):
            self.fail(f"{where}.attention", f"must be {kinds}, not {short(spec['attention'])}")
        if kind is AttentionKind.CONTEXT and "a_channel" in spec:
            self.fail(
                f"{where}.a_channel",
                "must be left out of a context matmul: its a input is the scores tensor; "
                "b_channel gives V's first channel",
            )
        return Attention(
            kind=kind,
            heads=self.positive(spec["heads"], f"{where}.heads"),
            head_channels=self.positive(spec["head_channels"], f"{where}.head_channels"),
            patch=self.pair(spec.get("patch", 1), f"{where}.patch", "ph, pw"),
            a_channel=self.non_negative(spec.get("a_channel", 0), f"{where}.a_channel"),
            b_channel=self.non_negative(spec.get("b_channel", 0), f"{where}.b_channel"),
        )

    # -- the graph -------------------------------------------------------------------------------

    def chain(self, raws: list[_RawOp], input_name: str) -> list[_RawOp]:
        """The ops in topological order (Kahn's algorithm, ties broken by file order)."""
        first_index: dict[str, int] = {}
        for raw in raws:
            if raw.name == input_name:
                self.fail(
                    f"ops[{raw.index}].name",
                    f"{short(raw.name)} is already the network input's name",
                )
            if raw.name in first_index:
                self.fail(
                    f"ops[{raw.index}].name",
                    f"duplicate op name {short(raw.name)} (also ops[{first_index[raw.name]}])",
                )
            first_index[raw.name] = raw.index
        users: dict[str, list[int]] = {input_name: [], **{raw.name: [] for raw in raws}}
        for raw in raws:
            for position, tensor in enumerate(raw.inputs):
                if tensor not in users:
                    self.fail(
                        raw.input_path(position),
                        f"must name the network input {short(input_name)} or an op, "
                        f"not {short(tensor)}",
                    )
                users[tensor].append(raw.index)
        waiting = [sum(tensor != input_name for tensor in raw.inputs) for raw in raws]
        ready = [raw.index for raw in raws if waiting[raw.index] == 0]
        heapq.heapify(ready)
        order: list[_RawOp] = []
        while ready:
            raw = raws[heapq.heappop(ready)]
            order.append(raw)
            for user in users[raw.name]:
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, user)
        if len(order) < len(raws):
            self.fail("ops", f"the ops form a cycle: {self.cycle(raws, waiting, input_name)}")
        last = order[-1]
        for raw in order[:-1]:
            if not users[raw.name]:
                self.fail(
                    raw.where,
                    f"its output is read by no op; only the network output (the last op of the "
                    f"chain, here {short(last.name)}) may be unused",
                )
        return order

    @staticmethod
    def cycle(raws: list[_RawOp], waiting: list[int], input_name: str) -> str:
        """One cycle among the ops Kahn's algorithm could not place, in data-flow order."""
        by_name = {raw.name: raw for raw in raws}
        raw = next(raw for raw in raws if waiting[raw.index] > 0)
        seen: list[str] = []
        while raw.name not in seen:
            seen.append(raw.name)
            raw = next(
                by_name[tensor]
                for tensor in raw.inputs
                if tensor != input_name and waiting[by_name[tensor].index] > 0
            )
        loop = [*seen[seen.index(raw.name) :], raw.name]
        return " -> ".join(reversed(loop))

    # -- shapes ----------------------------------------------------------------------------------

    def build(self, raw: _RawOp, in_shapes: tuple[Shape, ...]) -> Op:
        kernel, stride, padding = (1, 1), (1, 1), (0, 0, 0, 0)
        first = in_shapes[0]
        if raw.is_global:
            kernel = stride = (first.height, first.width)
        elif raw.kernel is not None:
            assert raw.stride is not None
            kernel, stride = raw.kernel, raw.stride
            if raw.padding == _SAME:
                top, bottom = _same_padding(first.height, kernel[0], stride[0])
                left, right = _same_padding(first.width, kernel[1], stride[1])
            else:
                assert isinstance(raw.padding, tuple)
                top, left, bottom, right = raw.padding
            if raw.ceil_mode:
                bottom += _ceil_mode_extra(first.height, kernel[0], stride[0], top, bottom)
                right += _ceil_mode_extra(first.width, kernel[1], stride[1], left, right)
            padding = (top, left, bottom, right)
        try:
            out = _derive_out(
                raw.kind,
                in_shapes,
                kernel=kernel,
                stride=stride,
                padding=padding,
                groups=raw.groups,
                channels=raw.channels,
                matmul=raw.matmul,
                out_shape=raw.out_shape,
                attention=raw.attention,
            )
        except _Invalid as exc:
            key = raw.input_key if exc.field_name == "inputs" else exc.field_name
            self.fail(f"{raw.where}.{key}", exc.reason)
        matmul = raw.matmul
        if raw.attention is not None:
            matmul, _ = _attention_dims(raw.attention, in_shapes)
        return Op(
            name=raw.name,
            kind=raw.kind,
            inputs=raw.inputs,
            in_shapes=in_shapes,
            out=out,
            kernel=kernel,
            stride=stride,
            padding=padding,
            groups=raw.groups,
            relu=raw.relu,
            matmul=matmul,
            per_channel=raw.per_channel,
            attention=raw.attention,
        )


def _zoo() -> Traversable:
    return importlib.resources.files(__package__) / "networks"


def known_networks() -> tuple[str, ...]:
    """Names of the networks in the zoo, sorted."""
    return tuple(
        sorted(
            entry.name.removesuffix(".yaml")
            for entry in _zoo().iterdir()
            if entry.name.endswith(".yaml")
        )
    )


def network_from_document(doc: object, label: str) -> Network:
    """The network described by a parsed ``voltflow-network/1`` document (``label`` names it in
    errors); raises `NetworkError` like `load_network`."""
    return _Reader(label).network(doc)


def load_network(name_or_path: str | os.PathLike[str]) -> Network:
    """Load a network from the zoo by name, a ``voltflow-network/1`` YAML file or an ONNX model.

    Parameters
    ----------
    name_or_path : str or path-like
        A zoo name such as ``"squeezenet"`` (see `known_networks`), or a path to a ``.yaml`` file.
        A string is taken as a path if it contains a path separator or ends in ``.yaml``/``.yml``
        or ``.onnx``. An ``.onnx`` file is imported (`scheduler.onnx_import`); its errors are
        raised as `NetworkError` too.

    Returns
    -------
    Network
        The validated network, ops in topological order.

    Raises
    ------
    NetworkError
        Unknown zoo name, unreadable file, invalid YAML, or a file that breaks a rule of the format;
        the message names the file, the field, the value and what is allowed.
    """
    if str(name_or_path).endswith(".onnx"):
        from .onnx_model import load_onnx_network  # imports onnx only when a model is read

        return load_onnx_network(name_or_path)
    if isinstance(name_or_path, str) and not _looks_like_path(name_or_path):
        known = known_networks()
        if name_or_path not in known:
            raise NetworkError(
                f"unknown network {short(name_or_path)}; known networks: {', '.join(known)}"
            )
        label = f"{name_or_path}.yaml"
        text = (_zoo() / label).read_text(encoding="utf-8")
    else:
        label = str(name_or_path)
        try:
            text = read_text(name_or_path, label)
        except DocumentError as exc:
            raise NetworkError(str(exc)) from None
    try:
        doc = parse_yaml(text, label)
    except DocumentError as exc:
        raise NetworkError(str(exc)) from None
    return _Reader(label).network(doc)


def _looks_like_path(text: str) -> bool:
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(sep in text for sep in separators) or text.endswith((".yaml", ".yml", ".onnx"))
