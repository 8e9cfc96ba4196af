"""How each operation runs on the accelerator: tiles, pipeline steps and activity counts.

This module is the executable form of docs/timing-model.md, the specification the RTL implements
cycle for cycle. Everything here is independent of voltage: it counts domain clock ticks, memory
words and pipeline steps; :mod:`scheduler.cost` turns the counts into time and energy per state.
"""

import enum
import itertools
from collections import Counter
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from voltflow.scheduler.chip import Chip, Sparsity, ticks_to_ref_cycles
from voltflow.scheduler.network import (
    SCORES_BLOCK,
    Attention,
    AttentionKind,
    Network,
    Op,
    OpKind,
    Shape,
    padded_keys,
)
from voltflow.scheduler.softmax import SOFTMAX_ROW_TICKS_EXTRA

__all__ = [
    "CHANNEL_ENTRY_BITS",
    "CHANNEL_M_BITS",
    "CHANNEL_S_BITS",
    "Activity",
    "Mode",
    "OpWork",
    "StepKind",
    "UnsupportedOpError",
    "bias_words",
    "op_work",
    "requant_words",
    "valid_taps",
]

#: A per-channel op's requantisation entry of one output channel in RRAM (docs/arithmetic.md,
#: "Per-channel requantisation"): the multiplier m_c in its low CHANNEL_M_BITS bits, the shift
#: s_c in the next CHANNEL_S_BITS, zeros up to CHANNEL_ENTRY_BITS. `hw.widths` re-exports them
#: for the RTL and the golden model.
CHANNEL_M_BITS: Final = 24
CHANNEL_S_BITS: Final = 6
CHANNEL_ENTRY_BITS: Final = 32


class UnsupportedOpError(ValueError):
    """An operation the reference dataflow cannot map (the message says why and what would work)."""


class Mode(enum.Enum):
    """How an op uses the hardware."""

    GEMM = "gemm"  # im2col GEMM on the array: tile = rows pixels x cols output channels
    DEPTHWISE = "depthwise"  # diagonal of the array: tile = 1 pixel x cols channels
    SCORES = "scores"  # attention Q K^T: GEMM with K loaded transposed from the scratchpad
    CONTEXT = "context"  # attention A V: GEMM with V loaded from the scratchpad
    VECTOR = "vector"  # feeder's pool/add/softmax unit, word by word, array idle
    ALIAS = "alias"  # concatenation: producers write into channel-block offsets, no work


@dataclass(frozen=True, slots=True)
class Activity:
    """Voltage-independent activity of one op: what the RTL's counters measure."""

    sys_ticks: int = 0
    feeder_ticks: int = 0
    rram_ticks: int = 0
    macs: int = 0  # useful multiply-accumulates
    pe_cycles: int = 0  # PE clock cycles (all rows x cols PEs clocked while the array runs)
    spad_reads: int = 0  # 64-bit words
    spad_writes: int = 0
    lane_bits: int = 0  # bits stored into plus bits read out of the lane buffers
    wbuf_reads: int = 0
    wbuf_writes: int = 0
    rram_reads: int = 0
    dma_beats: int = 0
    steps: int = 0  # pipeline step barriers
    epochs: int = 0  # epoch barriers
    # array.sparsity (docs/sparsity.md): operand pairs a PE met with a zero operand and did not
    # multiply (data-dependent: 0 in the dense prediction), operands checked for zero
    gated_macs: int = 0
    zero_detects: int = 0
    skipped_steps: int = 0  # reduction elements not streamed (array.sparsity skip)

    def __add__(self, other: "Activity") -> "Activity":
        return Activity(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))


def _fields(a: Activity) -> tuple[int, ...]:
    return tuple(getattr(a, f) for f in Activity.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class StepKind:
    """``count`` identical pipeline steps with the given feeder and array tick loads."""

    count: int
    feeder_ticks: int
    sys_ticks: int


@dataclass(frozen=True, slots=True)
class OpWork:
    """The mapped form of one op: its pipeline structure and its activity."""

    op: Op
    mode: Mode
    passes: int  # weight tiles of C output channels (J)
    tiles: int  # pixel tiles (T), each gathered once per epoch
    gather_ticks: int  # feeder ticks to gather one tile into the lane buffer (G)
    stream_ticks: int  # array ticks to stream one tile through one pass's weights (S)
    drain_ticks: int  # extra array ticks per stream step so the drain ends in the step (X)
    write_words: int  # output words per tile and pass (W)
    reduction: int  # K padded to whole words (K_pad)
    reduction_blocks: int  # L-lane words of the reduction per kernel tap (CB; KB of a matmul)
    group_passes: int  # passes per group (conv group, matmul batch); passes are group-major
    # words loaded per pass: weights + biases (+ requantisation entries of a per-channel op) from
    # RRAM, or B from the scratchpad (the weight-buffer words written)
    load_beats: int
    load_from_rram: bool
    # feeder ticks of one pass's B load from the scratchpad (K_pad, or KB * (C + L) for the
    # transposing SCORES load); 0 when the DMA loads the pass from RRAM
    load_ticks: int
    # scratchpad words read by the B load of each pass of one group, in pass order (the same for
    # every group); empty when the pass comes from RRAM
    b_reads: tuple[int, ...]
    epoch_passes: tuple[int, ...]  # passes resident in the weight buffer per epoch, in order
    vector_ticks: int  # feeder ticks of a VECTOR op
    activity: Activity
    # array.sparsity skip (scheduler.sparsity): one input's stream ticks S of every tile, per
    # group (conv group, attention batch); None: S = stream_ticks for every tile (dense)
    tile_streams: tuple[tuple[int, ...], ...] | None = None

    @property
    def groups(self) -> int:
        """Groups of passes (conv groups, attention batches; 1 for a plain conv)."""
        return self.passes // self.group_passes if self.group_passes else 0

    def epoch_groups(self) -> tuple[int, ...]:
        """The group of each epoch's passes (epochs never span two groups)."""
        firsts = itertools.accumulate((0, *self.epoch_passes[:-1]))
        return tuple(first // self.group_passes for first in firsts)

    def tile_stream_steps(self, passes: int, group: int, chip: Chip) -> tuple[StepKind, ...]:
        """The steps of one epoch of ``passes`` passes of ``group`` when each tile has its own
        stream ticks (``tile_streams``), equal steps counted together."""
        assert self.tile_streams is not None
        tiles, flush = self.tiles, chip.rows + chip.cols
        write = passes * self.write_words
        steps: Counter[tuple[int, int]] = Counter()
        for s, stream in enumerate((0, *self.tile_streams[group], 0, 0)):
            feeder = max(
                self.gather_ticks if s <= tiles - 1 else 0, write if 3 <= s <= tiles + 2 else 0
            )
            sys = passes * stream + max(0, flush - stream) if 1 <= s <= tiles else 0
            steps[feeder, sys + (flush if s == tiles + 1 else 0)] += 1
        return tuple(StepKind(n, feeder, sys) for (feeder, sys), n in steps.items())

    def epoch_steps(self, passes: int, chip: Chip) -> tuple[StepKind, ...]:
        """The pipeline steps of one epoch holding ``passes`` passes."""
        return _epoch_steps(
            self.tiles,
            self.gather_ticks,
            passes * self.stream_ticks + self.drain_ticks,
            chip.rows + chip.cols,
            passes * self.write_words,
        )

    def ref_cycles(
        self, chip: Chip, inc_sys: np.ndarray, inc_rram: np.ndarray, inc_feeder: np.ndarray
    ) -> np.ndarray:
        """Exact reference-clock cycles of this op for every state (arrays of increments)."""
        bits = chip.divider_phase_bits
        t = chip.timing
        shape = np.broadcast(inc_sys, inc_rram, inc_feeder).shape
        if self.mode is Mode.ALIAS:
            return np.zeros(shape, dtype=np.int64)
        setup = t.op_setup_ref_cycles
        sync = t.epoch_sync_ref_cycles
        if self.mode is Mode.VECTOR:
            cycles = ticks_to_ref_cycles(self.vector_ticks, inc_feeder, bits) + sync
            return np.broadcast_to(cycles + setup, shape).astype(np.int64)
        # An epoch's compute depends on its passes and, when each tile has its own stream ticks
        # (array.sparsity skip), on its group: epochs are keyed by both (group 0 when dense).
        qs = self.epoch_passes
        if self.tile_streams is None:
            keys = tuple((q, 0) for q in qs)
        else:
            keys = tuple(zip(qs, self.epoch_groups(), strict=True))
        compute: dict[tuple[int, int], np.ndarray] = {}
        for q, group in set(keys):
            if self.tile_streams is None:
                steps = self.epoch_steps(q, chip)
            else:
                steps = self.tile_stream_steps(q, group, chip)
            total = np.zeros(shape, dtype=np.int64)
            for step in steps:
                f = ticks_to_ref_cycles(step.feeder_ticks, inc_feeder, bits)
                s = ticks_to_ref_cycles(step.sys_ticks, inc_sys, bits)
                total = total + step.count * (np.maximum(f, s) + t.step_sync_ref_cycles)
            compute[q, group] = total
        if self.load_from_rram:
            # Epoch 0 only loads; epoch e computes epoch e-1's passes while the DMA loads epoch
            # e's into the other half of the weight buffer; the last epoch only computes.
            dma = {q: ticks_to_ref_cycles(q * self.load_beats, inc_rram, bits) for q in set(qs)}
            total = dma[qs[0]] + sync + compute[keys[-1]] + sync
            for (prev, nxt), n in Counter(itertools.pairwise(keys)).items():
                total = total + n * (np.maximum(compute[prev], dma[nxt[0]]) + sync)
        else:
            # B comes from the scratchpad through the feeder: load, then compute, no overlap.
            total = np.zeros(shape, dtype=np.int64)
            for key, n in Counter(keys).items():
                load = ticks_to_ref_cycles(key[0] * self.load_ticks, inc_feeder, bits)
                total = total + n * (load + sync + compute[key] + sync)
        return np.broadcast_to(total + setup, shape).astype(np.int64)


def valid_taps(size: int, out: int, kernel: int, stride: int, pad_before: int) -> int:
    """Number of (output position, kernel tap) pairs along one axis that fall inside the input."""
    pos = np.arange(out)[:, None] * stride - pad_before + np.arange(kernel)[None, :]
    return int(np.count_nonzero((pos >= 0) & (pos < size)))


def _epoch_steps(
    tiles: int, gather: int, stream: int, flush: int, write: int
) -> tuple[StepKind, ...]:
    """Steps of one epoch: s = 0..T+2.

    Step s gathers tile s (s < T), streams tile s-1 through the array against every resident
    pass (1 <= s <= T), flushes the array (s = T+1) and writes the outputs of tile s-3
    (3 <= s <= T+2); gathering and writing use separate scratchpad ports and overlap. The loads
    are constant between these breakpoints.
    """
    cuts = sorted({0, 1, 3, tiles, tiles + 1, tiles + 2, tiles + 3} - {tiles + 4})
    steps = []
    for a, b in itertools.pairwise(c for c in cuts if c <= tiles + 3):
        s = a
        feeder = max(gather if s <= tiles - 1 else 0, write if 3 <= s <= tiles + 2 else 0)
        sys = (stream if 1 <= s <= tiles else 0) + (flush if s == tiles + 1 else 0)
        steps.append(StepKind(b - a, feeder, sys))
    return tuple(steps)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def bias_words(chip: Chip) -> int:
    """Words of a pass's biases, after its ``K_pad`` weight words: one accumulator-wide bias per
    array column (``C * 32 / 64 = 4`` on the reference chip)."""
    return _ceil(chip.cols * chip.accumulator_bits, chip.word_bits)


def requant_words(chip: Chip) -> int:
    """Words of a per-channel pass's requantisation entries, after its bias words: one
    `CHANNEL_ENTRY_BITS` entry per array column (``C * 32 / 64 = 4`` on the reference chip)."""
    return _ceil(chip.cols * CHANNEL_ENTRY_BITS, chip.word_bits)


def op_work(op: Op, chip: Chip, network: Network) -> OpWork:
    """Map one op onto the chip (see docs/timing-model.md).

    Raises
    ------
    UnsupportedOpError
        The op does not fit or cannot be mapped; the message names the network, the chip and the op.
    """
    try:
        return _op_work(op, chip, network)
    except UnsupportedOpError as exc:
        raise UnsupportedOpError(
            f"network {network.name!r} on chip {chip.name!r}: op {exc}"
        ) from None


def _op_work(op: Op, chip: Chip, network: Network) -> OpWork:
    lanes = chip.lanes_per_word
    rows, cols = chip.rows, chip.cols
    flush = rows + cols
    min_stream = cols + 1
    # Words a pass holds after its K_pad weight words: biases, then (per-channel ops) the
    # requantisation entries; the array engine reads them once per pass.
    side_words = bias_words(chip) + (requant_words(chip) if op.per_channel else 0)
    out: Shape = op.out

    if op.kind is OpKind.CONCAT:
        for i, shape in enumerate(op.in_shapes[:-1]):
            if shape.channels % lanes:
                raise UnsupportedOpError(
                    f"{op.name}: concat input {i} has {shape.channels} channels; concatenation by "
                    f"channel-block offset needs a multiple of {lanes} for every input but the last"
                )
        return _vector_like(op, Mode.ALIAS, 0, Activity())

    if op.kind in (OpKind.MAXPOOL, OpKind.AVGPOOL):
        src = op.in_shapes[0]
        cb = _ceil(src.channels, lanes)
        kh, kw = op.kernel
        sh, sw = op.stride
        pt, pl, _, _ = op.padding
        taps = kh * kw
        outs = out.height * out.width
        vt = valid_taps(src.height, out.height, kh, sh, pt) * valid_taps(
            src.width, out.width, kw, sw, pl
        )
        ticks = cb * outs * taps + 1
        act = Activity(feeder_ticks=ticks, spad_reads=cb * vt, spad_writes=cb * outs)
        return _vector_like(op, Mode.VECTOR, ticks, act)

    if op.kind is OpKind.SOFTMAX:
        # docs/attention.md, "Softmax": per row (group g, pixel i) NB words read three times
        # (max, exp, normalise) and written once, plus the last exp fold and the division.
        _check_scores_block(op, chip)
        src = op.in_shapes[0]
        keys = padded_keys(src.width)
        blocks = keys // lanes
        n_rows = (src.channels // keys) * src.width
        ticks = n_rows * (3 * blocks + SOFTMAX_ROW_TICKS_EXTRA) + 1
        act = Activity(
            feeder_ticks=ticks, spad_reads=3 * blocks * n_rows, spad_writes=blocks * n_rows
        )
        return _vector_like(op, Mode.VECTOR, ticks, act)

    if op.kind is OpKind.ADD:
        words = _ceil(out.channels, lanes) * out.height * out.width
        ticks = 2 * words + 1
        act = Activity(feeder_ticks=ticks, spad_reads=2 * words, spad_writes=words)
        return _vector_like(op, Mode.VECTOR, ticks, act)

    # ---- array ops -------------------------------------------------------------------------------
    depthwise = op.groups > 1 and op.groups == op.in_shapes[0].channels == out.channels
    if op.kind is OpKind.CONV and depthwise:
        if rows != cols:
            raise UnsupportedOpError(
                f"{op.name}: the depthwise mapping uses the array diagonal; rows must equal cols"
            )
        src = op.in_shapes[0]
        kh, kw = op.kernel
        taps = kh * kw
        pixels = out.height * out.width
        vt = valid_taps(src.height, out.height, kh, op.stride[0], op.padding[0]) * valid_taps(
            src.width, out.width, kw, op.stride[1], op.padding[1]
        )
        passes = _ceil(out.channels, cols)
        tiles = pixels
        gather = taps
        reduction = taps
        stream = max(taps, min_stream)
        write = 1
        per_epoch_reads = vt  # each pass is a different channel block: its own input words
        spad_writes = passes * pixels
        load_beats = taps + side_words
        from_rram = True
        mode = Mode.DEPTHWISE
        epochs = (1,) * passes
        groups, blocks, per_group, load_ticks = 1, 1, passes, 0
        b_reads: tuple[int, ...] = ()
    elif op.kind in (OpKind.CONV, OpKind.FC):
        src = op.in_shapes[0]
        if op.kind is OpKind.FC:
            # A fully connected layer is a convolution whose kernel covers its whole input.
            kh, kw, sh, sw, pt, pl = src.height, src.width, 1, 1, 0, 0
            groups, cout = 1, out.channels
            oh, ow = 1, 1
        else:
            kh, kw = op.kernel
            sh, sw = op.stride
            pt, pl = op.padding[0], op.padding[1]
            groups, cout = op.groups, out.channels
            oh, ow = out.height, out.width
        cin_g, cout_g = src.channels // groups, cout // groups
        if groups > 1 and (cin_g % lanes or cout_g % cols):
            raise UnsupportedOpError(
                f"{op.name}: grouped convolution with {cin_g} input / {cout_g} output channels per "
                f"group; the array maps groups only in whole {lanes}-channel blocks"
            )
        cb = _ceil(cin_g, lanes)
        taps = kh * kw
        pixels = oh * ow
        vt = valid_taps(src.height, oh, kh, sh, pt) * valid_taps(src.width, ow, kw, sw, pl)
        passes = groups * _ceil(cout_g, cols)
        tiles = _ceil(pixels, rows)
        gather = rows * taps * cb
        reduction = taps * cb * lanes
        stream = max(reduction, min_stream)
        write = rows
        per_epoch_reads = cb * vt
        spad_writes = passes * pixels
        load_beats = reduction + side_words
        from_rram = True
        mode = Mode.GEMM
        # Passes of one group share their input tile: as many as fit in half the weight buffer
        # stay resident together, so a gathered tile is streamed against all of them.
        per_group = _ceil(cout_g, cols)
        resident = max(1, min(per_group, chip.weight_buffer_half_words // load_beats))
        full, rest = divmod(per_group, resident)
        epochs = ((resident,) * full + ((rest,) if rest else ())) * groups
        blocks, load_ticks, b_reads = cb, 0, ()
    elif op.kind is OpKind.MATMUL and op.attention is not None:
        # docs/attention.md, "Mapping": the GEMM pipeline with B from the scratchpad, one pass
        # per epoch; the batches are the groups.
        attention = op.attention
        _check_scores_block(op, chip)
        if cols != lanes:
            raise UnsupportedOpError(
                f"{op.name}: the attention mapping gives each array column one lane of the "
                f"output word; cols ({cols}) must equal the lanes per word ({lanes})"
            )
        grid = op.attention_map
        n = attention.tokens(grid.height, grid.width)
        groups = attention.batch
        if attention.kind is AttentionKind.SCORES:
            a_lo, b_lo = attention.a_channel % lanes, attention.b_channel % lanes
            if a_lo != b_lo:
                raise UnsupportedOpError(
                    f"{op.name}: a_channel {attention.a_channel} and b_channel "
                    f"{attention.b_channel} must be equal modulo {lanes} so that Q's and K's "
                    f"lanes line up (docs/attention.md, Lanes of a head), not {a_lo} and {b_lo}"
                )
            blocks = _head_blocks(op, attention, attention.a_channel, lanes)  # KB
            per_group = _ceil(n, cols)  # NB: C tokens j per pass
            load_ticks = blocks * (cols + lanes)  # transposing: C read and L write ticks per block
            b_reads = tuple(blocks * min(cols, n - nb * cols) for nb in range(per_group))
            mode = Mode.SCORES
        else:
            if attention.b_channel % lanes:
                raise UnsupportedOpError(
                    f"{op.name}: b_channel {attention.b_channel} must be a multiple of {lanes} "
                    "so that V's lanes are the output's lanes (docs/attention.md, Lanes of a "
                    "head)"
                )
            blocks = _ceil(n, lanes)  # KB: the keys, batch b's blocks of the scores tensor
            per_group = _head_blocks(op, attention, attention.b_channel, lanes)  # OB
            load_ticks = blocks * lanes
            b_reads = (n,) * per_group
            mode = Mode.CONTEXT
        passes = groups * per_group
        tiles = _ceil(n, rows)
        gather = rows * blocks
        reduction = blocks * lanes
        stream = max(reduction, min_stream)
        write = rows
        per_epoch_reads = blocks * n  # A rows gathered; B loads are counted from b_reads
        spad_writes = passes * n
        load_beats = reduction
        from_rram = False
        epochs = (1,) * passes
    elif op.kind is OpKind.MATMUL:
        dims = op.matmul
        assert dims is not None
        kb = _ceil(dims.k, lanes)
        passes = dims.batch * _ceil(dims.n, cols)
        tiles = _ceil(dims.m, rows)
        gather = rows * kb
        reduction = kb * lanes
        stream = max(reduction, min_stream)
        write = rows
        per_epoch_reads = kb * dims.m  # A rows gathered; B loads are counted from b_reads
        spad_writes = passes * dims.m
        load_beats = reduction
        from_rram = False
        mode = Mode.GEMM
        epochs = (1,) * passes
        groups, blocks, per_group = dims.batch, kb, _ceil(dims.n, cols)
        load_ticks, b_reads = reduction, (reduction,) * per_group
    else:  # pragma: no cover - every OpKind is handled above
        raise UnsupportedOpError(f"{op.name}: unsupported op kind {op.kind.value}")

    # A tile's results leave the skewed array R + C ticks after its last operand entered; the
    # step that drains them (the next stream step) lasts at least that long.
    drain = max(0, flush - stream)
    if load_beats > chip.weight_buffer_half_words:
        need_kib = _ceil(load_beats * chip.word_bytes, 1024)
        raise UnsupportedOpError(
            f"{op.name}: one pass needs {load_beats} words of the weight buffer, but half of it "
            f"holds {chip.weight_buffer_half_words}; "
            f"set buffers.weight_buffer_half_kib >= {need_kib}"
        )
    work = OpWork(
        op=op,
        mode=mode,
        passes=passes,
        tiles=tiles,
        gather_ticks=gather,
        stream_ticks=stream,
        drain_ticks=drain,
        write_words=write,
        reduction=reduction,
        reduction_blocks=blocks,
        group_passes=per_group,
        load_beats=load_beats,
        load_from_rram=from_rram,
        load_ticks=load_ticks,
        b_reads=b_reads,
        epoch_passes=epochs,
        vector_ticks=0,
        activity=Activity(),
    )
    n_epochs = len(epochs)
    feeder = sum(st.count * st.feeder_ticks for q in epochs for st in work.epoch_steps(q, chip))
    sys_ticks = tiles * (passes * stream + n_epochs * drain) + n_epochs * flush
    act = Activity(
        sys_ticks=sys_ticks,
        feeder_ticks=feeder + passes * load_ticks,
        rram_ticks=passes * load_beats if from_rram else 0,
        macs=op.macs,
        pe_cycles=sys_ticks * rows * cols,
        spad_reads=n_epochs * per_epoch_reads + groups * sum(b_reads),
        spad_writes=spad_writes,
        # stored once per epoch, read once per pass
        lane_bits=(n_epochs + passes) * tiles * gather * chip.word_bits,
        wbuf_reads=passes * (tiles * reduction + (side_words if from_rram else 0)),
        wbuf_writes=passes * load_beats,
        rram_reads=passes * load_beats if from_rram else 0,
        dma_beats=passes * load_beats if from_rram else 0,
        steps=n_epochs * (tiles + 3),
        epochs=n_epochs + 1 if from_rram else 2 * n_epochs,
        zero_detects=_dense_zero_detects(chip, mode, tiles * passes, reduction),
    )
    return replace(work, activity=act)


def _dense_zero_detects(chip: Chip, mode: Mode, subtiles: int, reduction: int) -> int:
    """Zero detects when every element is streamed (docs/sparsity.md): gating checks each
    element's R + C operands where they enter the array; skipping (not depthwise) also each
    block's R x L activation bytes when it reads them."""
    if chip.sparsity is Sparsity.NONE:
        return 0
    detects = subtiles * reduction * (chip.rows + chip.cols)
    if chip.sparsity is Sparsity.SKIP and mode is not Mode.DEPTHWISE:
        detects += subtiles * reduction * chip.rows
    return detects


def _check_scores_block(op: Op, chip: Chip) -> None:
    """The scores tensor packs SCORES_BLOCK keys per word: a chip with other lanes rejects the
    attention ops."""
    if chip.lanes_per_word != SCORES_BLOCK:
        raise UnsupportedOpError(
            f"{op.name}: the scores tensor packs {SCORES_BLOCK} keys per word (docs/attention.md); "
            f"this chip has {chip.lanes_per_word} lanes per word"
        )


def _head_blocks(op: Op, attention: Attention, first: int, lanes: int) -> int:
    """The L-lane blocks every head of an operand starting at channel ``first`` touches,
    ``span(h) = ceil((lo(h) + dh) / L)`` with ``lo(h) = (first + h dh) mod L``; the mapping needs
    the same span for all heads (docs/attention.md, "Lanes of a head")."""
    dh = attention.head_channels
    spans = [_ceil((first + h * dh) % lanes + dh, lanes) for h in range(attention.heads)]
    if len(set(spans)) > 1:
        raise UnsupportedOpError(
            f"{op.name}: every head must touch the same number of {lanes}-channel blocks "
            f"(docs/attention.md, Lanes of a head), but heads of {dh} channels from channel "
            f"{first} touch {', '.join(map(str, spans))}"
        )
    return spans[0]


def _vector_like(op: Op, mode: Mode, ticks: int, act: Activity) -> OpWork:
    return OpWork(
        op=op,
        mode=mode,
        passes=0,
        tiles=0,
        gather_ticks=0,
        stream_ticks=0,
        drain_ticks=0,
        write_words=0,
        reduction=0,
        reduction_blocks=0,
        group_passes=0,
        load_beats=0,
        load_from_rram=False,
        load_ticks=0,
        b_reads=(),
        epoch_passes=(),
        vector_ticks=ticks,
        activity=act if mode is Mode.ALIAS else Activity(**{**_asdict(act), "epochs": 1}),
    )


def _asdict(a: Activity) -> dict[str, int]:
    return {f: getattr(a, f) for f in Activity.__dataclass_fields__}
