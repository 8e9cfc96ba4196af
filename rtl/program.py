"""The layer program: one descriptor per op, its bit layout, compiler, encoder and decoder.

:class:`Descriptor` (an Amaranth ``data.Struct``) is the single source of truth for the format:
the RTL decodes a program word by viewing it through it, and Python encodes and decodes through
``Descriptor.const`` / ``Descriptor.from_bits``; there is no second bit packer. The compiler turns
a network mapped on a chip (``op_work``, ``plan_memory``) and per-op quantisation into
descriptors; concatenations (mode ALIAS) cost nothing and get none.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from amaranth.lib import data

if TYPE_CHECKING:
    # Amaranth ships no type information. Its shaped Enum is a standard enum.Enum that also takes
    # the `shape=` class keyword, so mypy checks OpMode as a standard enum.
    import enum as shaped_enum
else:
    from amaranth.lib import enum as shaped_enum

from voltflow.hw.signatures import MemoryRead
from voltflow.hw.widths import CHANNEL_M_BITS, CHANNEL_S_BITS
from voltflow.pmu.config import PROGRAM_ADDR_BITS
from voltflow.rtl.config import ADDR_BITS
from voltflow.scheduler.chip import BankKind, Chip
from voltflow.scheduler.dataflow import Mode, OpWork, UnsupportedOpError
from voltflow.scheduler.memory import BankLayout
from voltflow.scheduler.network import Network, Op, OpKind, padded_keys

__all__ = [
    "ChannelRequant",
    "Descriptor",
    "OpDescriptor",
    "OpMode",
    "Program",
    "ProgramMemory",
    "QuantLike",
    "compile_program",
    "decode",
    "encode",
]


class OpMode(shaped_enum.Enum, shape=3):
    """What the sequencer does with a descriptor."""

    GEMM = 0  # conv / fc on the array: tiles of R pixels x C output channels
    DEPTHWISE = 1  # depthwise conv on the array diagonal
    MAXPOOL = 2  # feeder's vector unit
    AVGPOOL = 3  # feeder's vector unit, requantised
    ADD = 4  # feeder's vector unit, two inputs
    SCORES = 5  # attention Q K^T on the array, B (K, transposed) from the scratchpad
    CONTEXT = 6  # attention A V on the array, B (V) from the scratchpad
    SOFTMAX = 7  # feeder's softmax unit over the rows of a scores tensor


class Descriptor(data.Struct):
    """One op of the layer program (field meanings: docs/rtl.md, "Layer program")."""

    mode: OpMode
    last: 1  # the last descriptor of the program
    relu: 1
    per_channel: 1  # GEMM / DEPTHWISE: m_c, s_c per output channel from the pass (m, s unused)
    in_base: ADDR_BITS  # scratchpad word address of the (first) input
    in2_base: ADDR_BITS  # second input of an add
    out_base: ADDR_BITS
    in_h: 12
    in_w: 12
    out_w: 12
    pixels: 24  # output pixels P (add: pixels of one channel block)
    tiles: 24  # T
    kh: 12
    kw: 12
    sh: 12
    sw: 12
    pad_t: 8
    pad_l: 8
    cb: 12  # input channel blocks per group (GEMM); channel blocks (others)
    cin: 16  # input channels per group (GEMM; counts useful MACs)
    cout: 16  # output channels per group (GEMM) / channels (DEPTHWISE)
    groups: 12
    group_passes: 12  # passes per group J_g
    resident: 12  # passes per full epoch Q
    k_pad: 16
    rram_base: ADDR_BITS  # RRAM word address of the op's first pass
    m: 16
    s: 6
    m_b: 16
    # Attention (SCORES, CONTEXT; docs/attention.md): batch b = p * heads + h is group b.
    heads: 12
    head_ch: 12  # channels per head (dh)
    a_ch: 12  # SCORES: Q's first channel in the A map
    b_ch: 12  # K's (SCORES) or V's (CONTEXT) first channel in the B map
    map_w: 12  # width W of the B map (and of CONTEXT's output map)
    map_plane: 24  # H * W of the B map (channel-block pitch, and of CONTEXT's output map)
    tok_w: 12  # tokens per row W / pw
    tok_step: 24  # pixels from one token row to the next: ph * W
    ph: 8  # patch height (token stride in rows)
    pw: 8  # patch width


#: Width of a program word (one descriptor).
DESCRIPTOR_BITS = Descriptor.as_shape().size


class ChannelRequant(data.Struct):
    """One output channel's requantisation parameters of a per-channel op (docs/arithmetic.md).

    The low bits of the channel's ``CHANNEL_ENTRY_BITS`` entry in a pass's requantisation words
    (docs/timing-model.md, "Data layout"; the bits above are 0); the array engine keeps one per
    column and resident pass.
    """

    m: CHANNEL_M_BITS  # multiplier m_c, 1 .. 2^24 - 1
    s: CHANNEL_S_BITS  # shift s_c, 0 .. 63


class ProgramMemory(MemoryRead):
    """The layer-program memory's read port: one descriptor per op index."""

    def __init__(self) -> None:
        super().__init__(addr_bits=PROGRAM_ADDR_BITS, data_bits=DESCRIPTOR_BITS)


@dataclass(frozen=True, slots=True)
class OpDescriptor:
    """Python view of one :class:`Descriptor` (same field names; ``mode`` an :class:`OpMode`)."""

    mode: OpMode
    last: int = 0
    relu: int = 0
    per_channel: int = 0
    in_base: int = 0
    in2_base: int = 0
    out_base: int = 0
    in_h: int = 1
    in_w: int = 1
    out_w: int = 1
    pixels: int = 1
    tiles: int = 0
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    pad_t: int = 0
    pad_l: int = 0
    cb: int = 1
    cin: int = 0
    cout: int = 0
    groups: int = 1
    group_passes: int = 0
    resident: int = 0
    k_pad: int = 0
    rram_base: int = 0
    m: int = 1
    s: int = 0
    m_b: int = 0
    heads: int = 0
    head_ch: int = 0
    a_ch: int = 0
    b_ch: int = 0
    map_w: int = 0
    map_plane: int = 0
    tok_w: int = 0
    tok_step: int = 0
    ph: int = 1
    pw: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.mode, OpMode):
            raise TypeError(f"mode must be an OpMode, not {self.mode!r}")
        layout = Descriptor.as_shape()
        for f in fields(self):
            if f.name == "mode":
                continue
            value = getattr(self, f.name)
            width = layout[f.name].width
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << width:
                raise ValueError(
                    f"descriptor field {f.name} must be an int in 0..{(1 << width) - 1}, "
                    f"not {value!r}"
                )


def encode(descriptor: OpDescriptor) -> int:
    """The program word of a descriptor."""
    return Descriptor.const(asdict(descriptor)).as_bits()


def decode(word: int) -> OpDescriptor:
    """The descriptor held by a program word (inverse of :func:`encode`)."""
    if not isinstance(word, int) or not 0 <= word < 1 << DESCRIPTOR_BITS:
        raise ValueError(f"word must be an int of {DESCRIPTOR_BITS} bits, not {word!r}")
    view = Descriptor.from_bits(word)
    values: dict[str, Any] = {}  # mode an OpMode, the other fields ints
    for f in fields(OpDescriptor):
        value = getattr(view, f.name)
        values[f.name] = value if f.name == "mode" else int(value)
    return OpDescriptor(**values)


class QuantLike(Protocol):
    """Per-op arithmetic fields (``cosim.images.DescriptorQuant`` has them).

    Read-only properties, so frozen dataclasses such as ``DescriptorQuant`` match.
    """

    @property
    def m(self) -> int: ...
    @property
    def s(self) -> int: ...
    @property
    def m_b(self) -> int: ...
    @property
    def relu(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled layer program.

    Attributes
    ----------
    descriptors : tuple of OpDescriptor
        In execution order.
    op_index : tuple of int
        For each descriptor, the index of its op in ``network.ops``.
    """

    descriptors: tuple[OpDescriptor, ...]
    op_index: tuple[int, ...]

    def words(self) -> tuple[int, ...]:
        return tuple(encode(d) for d in self.descriptors)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def compile_program(
    network: Network,
    chip: Chip,
    layout: BankLayout,
    works: Sequence[OpWork],
    quant: Mapping[str, QuantLike],
) -> Program:
    """Descriptors for every op of ``network`` but concatenations.

    A per-channel conv or fc (``op.per_channel``) gets ``per_channel`` set: the array engine then
    takes each column's multiplier and shift from the pass's requantisation words, and the
    descriptor's ``m`` and ``s`` (still taken from ``quant``) are unused. Attention matmuls and
    softmax get SCORES, CONTEXT and SOFTMAX descriptors (docs/attention.md; a softmax's ``m``,
    ``s`` are its ``m_e``, ``s_e``).

    Raises
    ------
    UnsupportedOpError
        For a generic matmul (no ``attention``: its operand layout is open).
    """
    lanes = chip.lanes_per_word
    base = {p.tensor: p.base_word for p in layout.placements}
    bank_words = chip.bank(BankKind.RRAM).words(chip.word_bits)
    first_rram = layout.first_bank(BankKind.RRAM)
    out: list[OpDescriptor] = []
    index: list[int] = []
    for i, (op, work) in enumerate(zip(network.ops, works, strict=True)):
        if work.op.name != op.name:
            raise ValueError(f"works must follow the chain: {work.op.name!r} where {op.name!r} is")
        if work.mode is Mode.ALIAS:
            continue
        if op.kind is OpKind.MATMUL and op.attention is None:
            raise UnsupportedOpError(
                f"{op.name}: a generic matmul has no operand layout the RTL could follow; give "
                "it 'attention: scores' or 'attention: context' (docs/attention.md), or use the "
                "cost model only"
            )
        q = quant[op.name]
        common = {
            "relu": int(bool(q.relu)),
            "m": int(q.m),
            "s": int(q.s),
            "m_b": int(q.m_b),
            "in_base": base[op.inputs[0]],
            "out_base": base[op.name],
        }
        src = op.in_shapes[0]
        pt, pl = op.padding[0], op.padding[1]
        if work.mode is Mode.VECTOR:
            if op.kind is OpKind.SOFTMAX:
                # docs/attention.md, "Softmax": G groups of n rows, NB = n8 / 8 words per row.
                keys = padded_keys(src.width)
                d = OpDescriptor(
                    mode=OpMode.SOFTMAX,
                    in_h=1,
                    in_w=src.width,
                    out_w=src.width,
                    pixels=src.width,
                    cb=keys // lanes,
                    cin=src.width,
                    groups=src.channels // keys,
                    **common,
                )
            elif op.kind is OpKind.ADD:
                d = OpDescriptor(
                    mode=OpMode.ADD,
                    in2_base=base[op.inputs[1]],
                    in_h=src.height,
                    in_w=src.width,
                    out_w=src.width,
                    pixels=src.height * src.width,
                    cb=_ceil(src.channels, lanes),
                    **common,
                )
            else:
                d = OpDescriptor(
                    mode=OpMode.MAXPOOL if op.kind is OpKind.MAXPOOL else OpMode.AVGPOOL,
                    in_h=src.height,
                    in_w=src.width,
                    out_w=op.out.width,
                    pixels=op.out.height * op.out.width,
                    kh=op.kernel[0],
                    kw=op.kernel[1],
                    sh=op.stride[0],
                    sw=op.stride[1],
                    pad_t=pt,
                    pad_l=pl,
                    cb=_ceil(src.channels, lanes),
                    **common,
                )
        elif work.mode in (Mode.SCORES, Mode.CONTEXT):
            d = _attention_descriptor(op, work, base[op.inputs[1]], common)
        else:
            lo, _ = layout.weight_banks[i]
            rram_base = (lo - first_rram) * bank_words
            if work.mode is Mode.DEPTHWISE:
                d = OpDescriptor(
                    mode=OpMode.DEPTHWISE,
                    in_h=src.height,
                    in_w=src.width,
                    out_w=op.out.width,
                    pixels=op.out.height * op.out.width,
                    tiles=work.tiles,
                    kh=op.kernel[0],
                    kw=op.kernel[1],
                    sh=op.stride[0],
                    sw=op.stride[1],
                    pad_t=pt,
                    pad_l=pl,
                    cb=1,
                    cin=1,
                    cout=op.out.channels,
                    groups=1,
                    group_passes=work.passes,
                    resident=1,
                    k_pad=work.reduction,
                    rram_base=rram_base,
                    per_channel=int(op.per_channel),
                    **common,
                )
            else:
                if op.kind is OpKind.FC:
                    kh, kw, sh, sw, pt, pl = src.height, src.width, 1, 1, 0, 0
                    groups, out_w, pixels = 1, 1, 1
                else:
                    (kh, kw), (sh, sw), groups = op.kernel, op.stride, op.groups
                    out_w, pixels = op.out.width, op.out.height * op.out.width
                d = OpDescriptor(
                    mode=OpMode.GEMM,
                    in_h=src.height,
                    in_w=src.width,
                    out_w=out_w,
                    pixels=pixels,
                    tiles=work.tiles,
                    kh=kh,
                    kw=kw,
                    sh=sh,
                    sw=sw,
                    pad_t=pt,
                    pad_l=pl,
                    cb=_ceil(src.channels // groups, lanes),
                    cin=src.channels // groups,
                    cout=op.out.channels // groups,
                    groups=groups,
                    group_passes=work.passes // groups,
                    resident=work.epoch_passes[0],
                    k_pad=work.reduction,
                    rram_base=rram_base,
                    per_channel=int(op.per_channel),
                    **common,
                )
        out.append(d)
        index.append(i)
    if not out:
        raise ValueError(f"network {network.name!r} has no op the RTL executes")
    last = out[-1]
    out[-1] = OpDescriptor(**{**asdict(last), "last": 1})
    return Program(tuple(out), tuple(index))


def _attention_descriptor(
    op: Op, work: OpWork, in2_base: int, common: Mapping[str, Any]
) -> OpDescriptor:
    """The SCORES or CONTEXT descriptor of an attention matmul (docs/attention.md, "Mapping"):
    the batches are the groups, one pass per epoch, B from the scratchpad (no RRAM words)."""
    attention = op.attention
    assert attention is not None
    grid = op.attention_map
    height, width = grid.height, grid.width
    ph, pw = attention.patch
    tokens = attention.tokens(height, width)
    tok_w = width // pw
    layout = {
        "in2_base": in2_base,
        "tiles": work.tiles,
        "cb": work.reduction_blocks,
        "groups": attention.batch,
        "group_passes": work.group_passes,
        "resident": 1,
        "k_pad": work.reduction,
        "heads": attention.heads,
        "head_ch": attention.head_channels,
        "b_ch": attention.b_channel,
        "map_w": width,
        "map_plane": height * width,
        "tok_w": tok_w,
        "tok_step": ph * width,
        "ph": ph,
        "pw": pw,
    }
    if work.mode is Mode.SCORES:
        return OpDescriptor(
            mode=OpMode.SCORES,
            in_h=height,
            in_w=width,
            out_w=tok_w,
            pixels=tokens,
            sh=ph,
            sw=pw,
            cin=attention.head_channels,
            cout=tokens,
            a_ch=attention.a_channel,
            **layout,
            **common,
        )
    return OpDescriptor(
        mode=OpMode.CONTEXT,
        in_h=1,
        in_w=tokens,
        out_w=tokens,
        pixels=tokens,
        cin=tokens,
        cout=attention.head_channels,
        a_ch=0,
        **layout,
        **common,
    )
