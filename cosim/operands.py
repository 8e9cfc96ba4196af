"""The zeros the array meets: per array op of a golden case, what its input decides on a
sparsity-aware array (docs/sparsity.md, "Exact per-input prediction").

**Gating.** In the output-stationary array every (row operand, column operand, reduction element)
triple of a sub-tile meets in exactly one PE, once. Padding (rows beyond the last pixel, columns
beyond the last output channel, lanes beyond the last input channel, taps in the padding, a
head's foreign lanes, keys beyond N) is zero on at least one side. So the pairs a gating array
multiplies are the non-zero products of the op's own computation, counted from the tensors the
golden model computes, independently of the RTL's tiling:

- GEMM (conv, fc): sum over (output pixel, output channel, input channel of its group, tap);
- DEPTHWISE: a tap word meets a weight word in all R x C PEs, so per channel block, pixel and
  tap the non-zero input lanes times the non-zero weight lanes;
- SCORES: sum over (batch, query i, key j, head feature f) of Q[b, i, f] K[b, j, f] != 0;
- CONTEXT: sum over (batch, query i, key j, feature f) of A[b, i, j] V[b, j, f] != 0.

**Skipping.** Per group and tile, the lane-buffer words as the gather writes them (row r =
pixel or token r of the tile; reduction element k = tap, channel block, lane for a conv; a Q
word's lanes for SCORES, keys for CONTEXT): per block of L elements, the real elements (an input
channel, a lane of the head, a real key) where some row is non-zero are streamed, and a block
with none costs one tick. (A lane beyond the tensor's channels can hold another tensor's bytes:
an attention context writes only its heads' lanes; the real-element mask keeps them out.)
"""

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from voltflow.cosim.golden import Case, OpParams, Padding, Pair, head_tokens, scores_values
from voltflow.scheduler.chip import Chip, Sparsity
from voltflow.scheduler.dataflow import Mode, OpWork
from voltflow.scheduler.network import AttentionKind, Op, OpKind
from voltflow.scheduler.sparsity import ARRAY_MODES, SKIP_MODES, OpOperands, with_operands
from voltflow.scheduler.windows import windows

__all__ = ["active_pairs", "case_operands", "case_works", "op_operands"]


def _nonzero(x: np.ndarray) -> np.ndarray:
    return (x != 0).astype(np.int64)


def _conv_geometry(op: Op, x: np.ndarray) -> tuple[Pair, Pair, Padding]:
    """Kernel, stride and padding of a conv, or of an fc as the conv over its whole input."""
    if op.kind is OpKind.FC:
        return (x.shape[1], x.shape[2]), (1, 1), (0, 0, 0, 0)
    return op.kernel, op.stride, op.padding


def active_pairs(
    op: Op, work: OpWork, inputs: Sequence[np.ndarray], params: OpParams | None, lanes: int
) -> int:
    """Operand pairs of ``op`` (mapped as ``work``) that the array meets with neither operand
    zero, for the given int8 inputs (``op.inputs`` order) and parameters."""
    if work.mode is Mode.SCORES or work.mode is Mode.CONTEXT:
        attention = op.attention
        assert attention is not None
        a, b = inputs
        if attention.kind is AttentionKind.SCORES:
            q = _nonzero(head_tokens(a, attention, attention.a_channel))  # (batch, N, dh)
            k = _nonzero(head_tokens(b, attention, attention.b_channel))
            return int((q.sum(axis=1) * k.sum(axis=1)).sum())
        n = attention.tokens(b.shape[1], b.shape[2])
        probs = _nonzero(scores_values(a, attention.batch, n))  # (batch, N queries, N keys)
        v = _nonzero(head_tokens(b, attention, attention.b_channel))  # (batch, N keys, dh)
        return int((probs.sum(axis=1) * v.sum(axis=2)).sum())
    if params is None or params.weight is None:
        raise ValueError(f"op {op.name!r}: counting its operand pairs needs its weight")
    x = inputs[0]
    kernel, stride, padding = _conv_geometry(op, x)
    win = windows(_nonzero(x), kernel, stride, padding, 0)  # (C_in, OH, OW, kh, kw)
    weight = _nonzero(params.weight)  # (C_out, C_in / groups, kh, kw)
    taps = kernel[0] * kernel[1]
    if work.mode is Mode.DEPTHWISE:
        channels = x.shape[0]
        blocks = -(-channels // lanes)
        pad = blocks * lanes - channels
        a = np.pad(win.reshape(channels, -1, taps), ((0, pad), (0, 0), (0, 0)))
        a = a.reshape(blocks, lanes, -1, taps).sum(axis=1)  # (J, P, taps)
        w = np.pad(weight[:, 0].reshape(channels, taps), ((0, pad), (0, 0)))
        w = w.reshape(blocks, lanes, taps).sum(axis=1)  # (J, taps)
        return int((a * w[:, None, :]).sum())
    groups = 1 if op.kind is OpKind.FC else op.groups
    c_in, c_out = x.shape[0], weight.shape[0]
    per_pixel = win.sum(axis=(1, 2)).reshape(groups, c_in // groups, -1)  # pixels with x != 0
    per_channel = weight.reshape(groups, c_out // groups, c_in // groups, -1).sum(axis=1)
    return int((per_pixel * per_channel).sum())


def _row_words(op: Op, work: OpWork, inputs: Sequence[np.ndarray], lanes: int) -> np.ndarray:
    """Which bytes of the lane-buffer words are non-zero: bool (groups, rows, K_pad), row = pixel
    or token (the op's, in tile order), element k in block-major order (k // L is the word)."""
    a = inputs[0]
    if work.mode is Mode.GEMM:
        kernel, stride, padding = _conv_geometry(op, a)
        win = windows(_nonzero(a), kernel, stride, padding, 0)  # (C_in, OH, OW, kh, kw)
        groups = 1 if op.kind is OpKind.FC else op.groups
        cin_g = a.shape[0] // groups
        taps = kernel[0] * kernel[1]
        cols = win.reshape(groups, cin_g, -1, taps)  # (G, cin_g, P, taps)
        cols = np.pad(cols, ((0, 0), (0, work.reduction_blocks * lanes - cin_g), (0, 0), (0, 0)))
        # element k = (tap, channel block, lane): channel cb L + l of the tap
        return cols.transpose(0, 2, 3, 1).reshape(groups, cols.shape[2], -1) != 0
    attention = op.attention
    assert attention is not None
    if work.mode is Mode.CONTEXT:
        n = attention.tokens(inputs[1].shape[1], inputs[1].shape[2])
        probs = scores_values(a, attention.batch, n)  # (batch, N, N keys)
        keys = work.reduction_blocks * lanes
        return np.pad(probs, ((0, 0), (0, 0), (0, keys - n))) != 0
    # SCORES: Q's whole words (every lane, not only the head's) of the head's blocks
    channels, height, width = a.shape
    ph, pw = attention.patch
    th, tw = height // ph, width // pw
    tokens = a.reshape(channels, th, ph, tw, pw).transpose(2, 4, 1, 3, 0)  # (py, px, ty, tx, C)
    tokens = tokens.reshape(ph * pw, th * tw, channels)
    kb = work.reduction_blocks
    out = []
    for p in range(ph * pw):
        for h in range(attention.heads):
            first = (attention.a_channel + h * attention.head_channels) // lanes * lanes
            words = tokens[p][:, first : first + kb * lanes]
            out.append(np.pad(words, ((0, 0), (0, kb * lanes - words.shape[1]))))
    return np.stack(out) != 0


def _real_elements(op: Op, work: OpWork, lanes: int) -> np.ndarray:
    """bool (groups, K_pad): element k of a group is a real reduction element (the ``macs``
    counter counts it: an input channel, a lane of the head, a real key)."""
    k = np.arange(work.reduction)
    if work.mode is Mode.GEMM:
        channel = (k // lanes % work.reduction_blocks) * lanes + k % lanes
        cin_g = op.in_shapes[0].channels // (1 if op.kind is OpKind.FC else op.groups)
        return np.broadcast_to(channel < cin_g, (work.groups, work.reduction))
    attention = op.attention
    assert attention is not None
    if work.mode is Mode.CONTEXT:
        n = attention.tokens(op.in_shapes[1].height, op.in_shapes[1].width)
        return np.broadcast_to(k < n, (work.groups, work.reduction))
    dh = attention.head_channels
    rows = []
    for _p in range(attention.batch // attention.heads):
        for h in range(attention.heads):
            lo = (attention.a_channel + h * dh) % lanes
            rows.append((k - lo >= 0) & (k - lo < dh))
    return np.stack(rows)


def _columns(op: Op, work: OpWork) -> int:
    """Real columns over a group's passes: output channels, keys (SCORES), head lanes."""
    if work.mode is Mode.GEMM:
        return op.out.channels // (1 if op.kind is OpKind.FC else op.groups)
    attention = op.attention
    assert attention is not None
    if work.mode is Mode.SCORES:
        return attention.tokens(op.in_shapes[0].height, op.in_shapes[0].width)
    return attention.head_channels


def op_operands(
    op: Op,
    work: OpWork,
    inputs: Sequence[np.ndarray],
    params: OpParams | None,
    chip: Chip,
) -> OpOperands:
    """What the given inputs decide of one array op on ``chip``."""
    lanes, rows = chip.lanes_per_word, chip.rows
    active = active_pairs(op, work, inputs, params, lanes)
    if chip.sparsity is not Sparsity.SKIP or work.mode not in SKIP_MODES:
        return OpOperands(active)
    words = _row_words(op, work, inputs, lanes)  # (G, pixels, K_pad)
    groups, pixels, k_pad = words.shape
    tiles = work.tiles
    words = np.pad(words, ((0, 0), (0, tiles * rows - pixels), (0, 0)))
    # streamed: a real element (the others have zero weights) with some non-zero activation
    real = _real_elements(op, work, lanes)[:, None, :]
    set_lanes = words.reshape(groups, tiles, rows, k_pad).any(axis=2) & real  # (G, T, K_pad)
    per_block = set_lanes.reshape(groups, tiles, -1, lanes).sum(axis=3)  # (G, T, blocks)
    ticks = np.maximum(per_block, 1).sum(axis=2)
    streamed = per_block.sum(axis=2)
    rows_real = np.minimum(rows, pixels - np.arange(tiles) * rows)
    macs = int((streamed * rows_real[None, :]).sum()) * _columns(op, work)
    return OpOperands(
        active_pairs=active,
        ticks=tuple(tuple(int(v) for v in row) for row in ticks),
        streamed=tuple(tuple(int(v) for v in row) for row in streamed),
        macs=macs,
    )


def case_operands(case: Case, chip: Chip, works: Sequence[OpWork]) -> Mapping[str, OpOperands]:
    """:func:`op_operands` of every array op of ``case``'s network, by op name."""
    out = {}
    for op, work in zip(case.network.ops, works, strict=True):
        if work.mode in ARRAY_MODES:
            inputs = [case.tensor(name) for name in op.inputs]
            out[op.name] = op_operands(op, work, inputs, case.params.get(op.name), chip)
    return MappingProxyType(out)


def case_works(case: Case, chip: Chip, works: Sequence[OpWork]) -> tuple[OpWork, ...]:
    """The works with ``case``'s exact activity (and, skipping, cycles) on ``chip``; unchanged
    when the chip's array has no sparsity mechanism."""
    if chip.sparsity is Sparsity.NONE:
        return tuple(works)
    return with_operands(works, chip, case_operands(case, chip, works))
