"""Memory images in the hardware layout: scratchpad and RRAM words, and $readmemh hex files.

The layouts are specified in docs/timing-model.md, section "Data layout": activations are
channel-blocked 64-bit words of 8 int8 lanes; a weighted op's RRAM region holds its passes, each
``K_pad`` weight words followed by the bias words (and, for a per-channel op, its requantisation
words). Words are numpy ``uint64`` arrays; lane ``l`` of a word is bits ``[8 l, 8 l + 8)``.
"""

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from voltflow.cosim.golden import Case
from voltflow.hw.readmemh import readmemh_text
from voltflow.hw.widths import CHANNEL_ENTRY_BITS, CHANNEL_M_BITS
from voltflow.scheduler.chip import BankKind, Chip
from voltflow.scheduler.dataflow import Mode, OpWork
from voltflow.scheduler.memory import BankLayout, Placement
from voltflow.scheduler.network import OpKind, Shape

__all__ = [
    "LANES",
    "WORD_BITS",
    "DescriptorQuant",
    "descriptor_quant",
    "from_words",
    "read_readmemh",
    "read_tensor",
    "rram_image",
    "rram_words",
    "scratchpad_image",
    "scratchpad_words",
    "to_words",
    "weight_passes",
    "write_readmemh",
    "write_tensor",
]

LANES = 8
"""int8 lanes per word: the channels of one channel block."""
WORD_BITS = 64
"""Bits per scratchpad and RRAM word."""

_BIAS_BITS = 32
_ENTRIES_PER_WORD = WORD_BITS // CHANNEL_ENTRY_BITS  # per-channel requantisation entries
_IS_HEX_DIGIT = np.zeros(256, dtype=bool)
_IS_HEX_DIGIT[np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8)] = True
_HEX_TOKEN = re.compile(r"[0-9a-fA-F][0-9a-fA-F_]*")

ShapeLike = Shape | tuple[int, int, int]


def _check_chip(chip: Chip) -> None:
    """The images pack 8 int8 lanes (or 8 output channels, or 2 int32 biases) into 64 bits."""
    found = (chip.word_bits, chip.operand_bits, chip.cols, chip.accumulator_bits)
    wanted = (WORD_BITS, WORD_BITS // LANES, LANES, _BIAS_BITS)
    if found != wanted:
        raise ValueError(
            "the memory images need word_bits, operand_bits, array cols and accumulator_bits of "
            f"{wanted}, not {found} (chip {chip.name!r})"
        )


def _dims(shape: object) -> tuple[int, int, int]:
    if isinstance(shape, Shape):
        return shape.channels, shape.height, shape.width
    if (
        isinstance(shape, tuple)
        and len(shape) == 3
        and all(isinstance(v, int | np.integer) and v >= 1 for v in shape)
    ):
        return int(shape[0]), int(shape[1]), int(shape[2])
    raise ValueError(f"shape must be a Shape or (C, H, W) of positive ints, not {shape!r}")


def _blocks(channels: int) -> int:
    return -(-channels // LANES)


def _lanes_to_words(lanes: np.ndarray) -> np.ndarray:
    """Words from an int8 array whose last axis holds the 8 lanes of each word."""
    packed = np.ascontiguousarray(lanes, dtype=np.int8).view("<u8")
    return packed.reshape(lanes.shape[:-1]).astype(np.uint64)


# ---- activations ---------------------------------------------------------------------------------


def to_words(tensor: np.ndarray) -> np.ndarray:
    """Channel-blocked words of an int8 (C, H, W) tensor, ``CB * H * W`` long (``CB = ceil(C/8)``).

    Word ``(cb * H + y) * W + x`` holds channel ``cb * 8 + l`` of pixel (y, x) in lane l; channels
    beyond C are 0.
    """
    if not isinstance(tensor, np.ndarray) or tensor.dtype != np.int8 or tensor.ndim != 3:
        found = (
            f"a {tensor.ndim}-d {tensor.dtype} array"
            if isinstance(tensor, np.ndarray)
            else repr(tensor)
        )
        raise ValueError(f"tensor must be a 3-d int8 numpy array, not {found}")
    channels, height, width = tensor.shape
    blocks = _blocks(channels)
    padded = np.zeros((blocks * LANES, height, width), dtype=np.int8)
    padded[:channels] = tensor
    lanes = padded.reshape(blocks, LANES, height, width).transpose(0, 2, 3, 1)
    return _lanes_to_words(lanes).reshape(-1)


def from_words(words: np.ndarray, shape: ShapeLike, *, check_padding: bool = False) -> np.ndarray:
    """The int8 (C, H, W) tensor held by channel-blocked ``words`` (the inverse of `to_words`).

    Parameters
    ----------
    words : numpy.ndarray of uint64
        Exactly ``ceil(C / 8) * H * W`` words.
    shape : Shape or (C, H, W)
    check_padding : bool
        Raise ValueError if a lane beyond channel C is not 0 (pad lanes are ignored otherwise).
    """
    channels, height, width = _dims(shape)
    blocks = _blocks(channels)
    words = np.asarray(words)
    if words.dtype != np.uint64 or words.shape != (blocks * height * width,):
        raise ValueError(
            f"words must be a 1-d uint64 array of {blocks * height * width} words for a "
            f"{channels}x{height}x{width} tensor, not {words.dtype} of shape {words.shape}"
        )
    lanes = words.astype("<u8").view(np.int8).reshape(blocks, height, width, LANES)
    tensor = lanes.transpose(0, 3, 1, 2).reshape(blocks * LANES, height, width)
    if check_padding and tensor[channels:].any():
        bad = np.argwhere(tensor[channels:])[0]
        raise ValueError(
            f"pad lane of channel {channels + int(bad[0])} at pixel ({int(bad[1])}, "
            f"{int(bad[2])}) must be 0, not {int(tensor[channels + bad[0], bad[1], bad[2]])}"
        )
    return np.ascontiguousarray(tensor[:channels])


def scratchpad_words(chip: Chip, layout: BankLayout) -> int:
    """Words of the scratchpad address space: the ifmap banks, then the ofmap banks."""
    counts = dict(layout.counts)
    return sum(
        counts[kind] * chip.bank(kind).words(chip.word_bits)
        for kind in (BankKind.IFMAP, BankKind.OFMAP)
    )


def _placement(layout: BankLayout, tensor_name: str) -> Placement:
    for placement in layout.placements:
        if placement.tensor == tensor_name:
            return placement
    raise KeyError(f"the layout places no tensor {tensor_name!r}")


def _span(image: np.ndarray, layout: BankLayout, tensor_name: str, shape: ShapeLike) -> slice:
    channels, height, width = _dims(shape)
    placement = _placement(layout, tensor_name)
    words = _blocks(channels) * height * width
    if placement.words != words:
        raise ValueError(
            f"tensor {tensor_name!r} is placed as {placement.words} words, but a "
            f"{channels}x{height}x{width} tensor takes {words}"
        )
    if image.dtype != np.uint64 or image.ndim != 1 or placement.base_word + words > image.size:
        raise ValueError(
            f"image must be a 1-d uint64 array of at least {placement.base_word + words} words, "
            f"not {image.dtype} of shape {image.shape}"
        )
    return slice(placement.base_word, placement.base_word + words)


def write_tensor(
    image: np.ndarray, layout: BankLayout, tensor_name: str, tensor: np.ndarray
) -> None:
    """Store an int8 (C, H, W) tensor into a scratchpad image (in place) at its placement."""
    words = to_words(tensor)
    image[_span(image, layout, tensor_name, tuple(tensor.shape))] = words


def read_tensor(
    image: np.ndarray,
    layout: BankLayout,
    tensor_name: str,
    shape: ShapeLike,
    *,
    check_padding: bool = False,
) -> np.ndarray:
    """The int8 (C, H, W) tensor at ``tensor_name``'s placement in a scratchpad image."""
    words = image[_span(image, layout, tensor_name, shape)]
    return from_words(words, shape, check_padding=check_padding)


def scratchpad_image(case: Case, chip: Chip, layout: BankLayout) -> np.ndarray:
    """The scratchpad at the start of an inference: the network input at its place, zeros else."""
    _check_chip(chip)
    image = np.zeros(scratchpad_words(chip, layout), dtype=np.uint64)
    write_tensor(image, layout, case.network.input_name, case.input)
    return image


# ---- weights -------------------------------------------------------------------------------------


def _bias_words(bias: np.ndarray, passes: int) -> np.ndarray:
    """(passes, 4) words: word i of a pass holds bias 2i in bits 0..31 and 2i+1 in bits 32..63."""
    lanes = np.ascontiguousarray(bias.reshape(passes, LANES), dtype="<i4")
    return lanes.view("<u8").astype(np.uint64)


def _requant_words(channel_m: np.ndarray, channel_s: np.ndarray, passes: int) -> np.ndarray:
    """(passes, 4) words: word i of a pass holds the entry of channel 2i in bits 0..31 and that of
    2i+1 in bits 32..63; an entry is ``m_c | s_c << 24`` (0 for a padding channel)."""
    entries = channel_m.astype(np.uint64) | (
        channel_s.astype(np.uint64) << np.uint64(CHANNEL_M_BITS)
    )
    entries = entries.reshape(passes, -1, _ENTRIES_PER_WORD)
    shifts = np.arange(_ENTRIES_PER_WORD, dtype=np.uint64) * np.uint64(CHANNEL_ENTRY_BITS)
    return np.bitwise_or.reduce(entries << shifts, axis=2)


def weight_passes(case: Case, op_name: str, work: OpWork, chip: Chip) -> np.ndarray:
    """An op's RRAM words, (passes, load_beats): each row is one pass as the DMA loads it.

    GEMM (conv, fc): pass ``g * P + p`` (group g, output block p of ``P = ceil(C_out_g / 8)``)
    word ``k = ((ky * kw) + kx) * 8 * CB + cb * 8 + i`` holds in lane j the weight of output
    channel ``g * C_out_g + p * 8 + j`` at input channel ``g * C_in_g + cb * 8 + i``, tap (ky, kx);
    an fc's kernel is its input's (H, W). DEPTHWISE: pass p word ``ky * kw + kx`` holds channel
    ``p * 8 + j``'s weight in lane j. Padded channels and outputs are 0. Then the pass's 8 biases,
    two per word (`_bias_words`), and for a per-channel op the 8 channels' requantisation entries,
    two per word (`_requant_words`); ``load_beats`` is ``K_pad + 4`` or ``K_pad + 8``.
    """
    _check_chip(chip)
    op = case.network.op(op_name)
    if work.op.name != op_name:
        raise ValueError(f"work must be the OpWork of op {op_name!r}, not of {work.op.name!r}")
    if op.kind not in (OpKind.CONV, OpKind.FC) or not work.load_from_rram:
        raise ValueError(
            f"op {op_name!r} ({op.kind.value}) loads no weights from RRAM; only conv and fc do"
        )
    params = case.params[op_name]
    weight, bias = params.weight, params.bias
    assert weight is not None and bias is not None
    c_out = weight.shape[0]
    if work.mode is Mode.DEPTHWISE:
        passes = _blocks(c_out)
        taps = weight.shape[2] * weight.shape[3]
        padded = np.zeros((passes * LANES, taps), dtype=np.int8)
        padded[:c_out] = weight.reshape(c_out, taps)
        lanes = padded.reshape(passes, LANES, taps).transpose(0, 2, 1)
        groups, c_out_g = 1, c_out  # a pass's channels, as for a conv of one group
    elif work.mode is Mode.GEMM:
        groups = op.groups
        c_out_g, c_in_g, kh, kw = c_out // groups, weight.shape[1], weight.shape[2], weight.shape[3]
        blocks_out, blocks_in = _blocks(c_out_g), _blocks(c_in_g)
        padded = np.zeros((groups, blocks_out * LANES, blocks_in * LANES, kh, kw), dtype=np.int8)
        padded[:, :c_out_g, :c_in_g] = weight.reshape(groups, c_out_g, c_in_g, kh, kw)
        passes = groups * blocks_out
        lanes = (
            padded.reshape(groups, blocks_out, LANES, blocks_in, LANES, kh, kw)
            .transpose(0, 1, 5, 6, 3, 4, 2)  # (g, p, ky, kx, cb, i, j)
            .reshape(passes, kh * kw * blocks_in * LANES, LANES)
        )
    else:
        raise ValueError(f"op {op_name!r} runs in mode {work.mode.value}, which has no weights")

    def per_pass(values: np.ndarray) -> np.ndarray:
        """Per-channel values in pass order (group, then block of 8), 0 for padding channels."""
        padded_values = np.zeros((groups, _blocks(c_out_g) * LANES), dtype=values.dtype)
        padded_values[:, :c_out_g] = values.reshape(groups, c_out_g)
        return padded_values.reshape(-1)

    parts = [_lanes_to_words(lanes), _bias_words(per_pass(bias), passes)]
    if op.per_channel:
        if params.channel_m is None or params.channel_s is None:
            raise ValueError(f"op {op_name!r} is per_channel, but its OpParams have no channel_m")
        parts.append(_requant_words(per_pass(params.channel_m), per_pass(params.channel_s), passes))
    rows = np.concatenate(parts, axis=1)
    if rows.shape != (work.passes, work.load_beats) or lanes.shape[1] != work.reduction:
        raise ValueError(
            f"op {op_name!r}: packed {rows.shape[0]} passes of {rows.shape[1]} words "
            f"(K_pad {lanes.shape[1]}), but the dataflow loads {work.passes} of "
            f"{work.load_beats} (K_pad {work.reduction})"
        )
    return rows


def rram_words(chip: Chip, layout: BankLayout) -> int:
    """Words of the RRAM address space: the layout's RRAM banks; address 0 is the first bank."""
    return dict(layout.counts)[BankKind.RRAM] * chip.bank(BankKind.RRAM).words(chip.word_bits)


def rram_image(case: Case, chip: Chip, layout: BankLayout, works: Sequence[OpWork]) -> np.ndarray:
    """The RRAM contents: every weighted op's `weight_passes`, in pass order, from its first bank.

    ``works`` are the ops' OpWork in chain order (as given to ``plan_memory``). Words not used by a
    pass are 0.
    """
    _check_chip(chip)
    ops = case.network.ops
    if len(works) != len(ops) or len(layout.weight_banks) != len(ops):
        raise ValueError(
            f"works and layout.weight_banks must hold one entry per op ({len(ops)}), "
            f"not {len(works)} and {len(layout.weight_banks)}"
        )
    bank_words = chip.bank(BankKind.RRAM).words(chip.word_bits)
    first = layout.first_bank(BankKind.RRAM)
    image = np.zeros(rram_words(chip, layout), dtype=np.uint64)
    for op, work, (lo, hi) in zip(ops, works, layout.weight_banks, strict=True):
        if work.op.name != op.name:
            raise ValueError(f"works must follow the chain: {work.op.name!r} where {op.name!r} is")
        if not (work.load_from_rram and work.passes):
            continue
        words = weight_passes(case, op.name, work, chip).reshape(-1)
        base, limit = (lo - first) * bank_words, (hi - first) * bank_words
        if base + words.size > limit:
            raise ValueError(
                f"op {op.name!r}: {words.size} weight words do not fit its RRAM banks "
                f"[{lo}, {hi}) of {bank_words} words"
            )
        image[base : base + words.size] = words
    return image


# ---- descriptors ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DescriptorQuant:
    """The arithmetic fields of an op's descriptor (docs/arithmetic.md).

    ``m`` is ``m_a`` of an add; ``m_b`` is 0 for every op but add. Ops without requantisation
    (max pool, concatenation) get the identity ``m = 1, s = 0``.
    """

    m: int
    s: int
    m_b: int
    relu: bool


def descriptor_quant(case: Case, op_name: str) -> DescriptorQuant:
    """Requantisation multiplier, shift, add multiplier and relu of one op of ``case``."""
    op = case.network.op(op_name)
    params = case.params.get(op_name)
    if params is None:
        return DescriptorQuant(m=1, s=0, m_b=0, relu=op.relu)
    return DescriptorQuant(m=params.m, s=params.s, m_b=params.m_b or 0, relu=op.relu)


# ---- hex files -----------------------------------------------------------------------------------


def write_readmemh(path: str | os.PathLike[str], words: np.ndarray) -> None:
    """Write 64-bit words for Verilog's ``$readmemh``: one word per line, 16 hex digits."""
    words = np.asarray(words)
    if words.dtype != np.uint64 or words.ndim != 1:
        raise ValueError(f"words must be a 1-d uint64 array, not {words.dtype} {words.shape}")
    Path(path).write_bytes(readmemh_text(words, 64))


def read_readmemh(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ``$readmemh`` file of 64-bit words (comments and blank lines allowed, no ``@``)."""
    data = Path(path).read_bytes()
    chars = np.frombuffer(data, dtype=np.uint8)
    if chars.size % 17 == 0:
        lines = chars.reshape(-1, 17)
        if np.all(lines[:, 16] == ord("\n")) and np.all(_IS_HEX_DIGIT[lines[:, :16]]):
            # The layout `write_readmemh` produces: 16 hex digits and a newline per word.
            octets = bytes.fromhex(lines[:, :16].tobytes().decode("ascii"))
            return np.frombuffer(octets, dtype=">u8").astype(np.uint64)
    values: list[int] = []
    for number, line in enumerate(data.decode("ascii", errors="replace").splitlines(), 1):
        for token in line.split("//", 1)[0].split():
            if token.startswith("@"):
                raise ValueError(f"{path}:{number}: address records ({token}) are not supported")
            if _HEX_TOKEN.fullmatch(token) is None:
                raise ValueError(f"{path}:{number}: {token!r} is not a hex number")
            value = int(token.replace("_", ""), 16)
            if value >= 1 << WORD_BITS:
                raise ValueError(f"{path}:{number}: {token!r} does not fit in {WORD_BITS} bits")
            values.append(value)
    return np.array(values, dtype=np.uint64)
