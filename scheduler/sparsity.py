"""Data-dependent activity of a sparsity-aware array (chip ``array.sparsity``; docs/sparsity.md).

The dense cost model (:mod:`scheduler.dataflow`) knows every count that follows from shapes; what
depends on the data is which operands are zero. Given what one input decides per array op
(:class:`OpOperands`, counted from the input by the golden model, ``cosim.operands``), the works
here carry that input's exact activity and, when the array skips, its exact cycles:

- gating (``gate``, and the elements a ``skip`` array streams): every streamed operand pair with
  a zero operand is a gated MAC; the cycles are the dense ones;
- skipping (``skip``; GEMM, SCORES and CONTEXT, not DEPTHWISE): a tile's stream lasts
  ``S_t = max(ticks_t, C + 1)`` ticks per pass, where ``ticks_t`` is the sum over its blocks of
  L elements of max(1, elements with some non-zero activation); only those elements are
  streamed (one weight-buffer read, R + C zero detects each) and every block's R x L activation
  bytes are zero-detected when it is read.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from voltflow.scheduler.chip import Chip, Sparsity
from voltflow.scheduler.dataflow import Mode, OpWork, bias_words, requant_words

__all__ = ["ARRAY_MODES", "SKIP_MODES", "OpOperands", "operand_pairs", "with_operands"]

#: The modes whose ops run on the array (the others have no operand pairs).
ARRAY_MODES = frozenset({Mode.GEMM, Mode.DEPTHWISE, Mode.SCORES, Mode.CONTEXT})
#: The modes whose elements a skipping array drops (a depthwise element is a whole lane word,
#: known to be zero only in the tick it is read: gated, not skipped).
SKIP_MODES = frozenset({Mode.GEMM, Mode.SCORES, Mode.CONTEXT})


@dataclass(frozen=True, slots=True)
class OpOperands:
    """What one input decides of one array op.

    Attributes
    ----------
    active_pairs : int
        Operand pairs the array multiplies with both operands non-zero.
    ticks, streamed : tuple of tuple of int
        Skipping only (else empty): per group and tile, the stream ticks (sum over the tile's
        blocks of max(1, elements with a non-zero activation)) and the elements streamed.
    macs : int
        Skipping only: the useful MACs of the streamed elements (the ``macs`` counter); -1 when
        not skipping (the op's MACs).
    """

    active_pairs: int
    ticks: tuple[tuple[int, ...], ...] = ()
    streamed: tuple[tuple[int, ...], ...] = ()
    macs: int = -1


def operand_pairs(work: OpWork, chip: Chip) -> int:
    """Valid operand pairs a dense array meets for one op: every element of every sub-tile
    (tile x pass) in each of the R x C PEs."""
    if work.mode not in ARRAY_MODES:
        return 0
    return chip.rows * chip.cols * work.tiles * work.passes * work.reduction


def with_operands(
    works: Sequence[OpWork], chip: Chip, operands: Mapping[str, OpOperands]
) -> tuple[OpWork, ...]:
    """The works of one input on ``chip``; without sparsity (``array.sparsity: none``) nothing
    changes.

    Raises
    ------
    ValueError
        An array op is missing from ``operands`` or its counts do not fit the op.
    """
    if chip.sparsity is Sparsity.NONE:
        return tuple(works)
    out = []
    for work in works:
        if work.mode not in ARRAY_MODES:
            out.append(work)
            continue
        name = work.op.name
        if name not in operands:
            raise ValueError(f"no operand counts for array op {name!r}")
        ops = operands[name]
        if chip.sparsity is Sparsity.SKIP and work.mode in SKIP_MODES:
            out.append(_skipped(work, chip, ops))
        else:
            out.append(_gated(work, chip, ops.active_pairs))
    return tuple(out)


def _gated(work: OpWork, chip: Chip, active: int) -> OpWork:
    total = operand_pairs(work, chip)
    if not 0 <= active <= total:
        raise ValueError(
            f"op {work.op.name!r}: {active} non-zero operand pairs, but the array meets {total}"
        )
    return replace(work, activity=replace(work.activity, gated_macs=total - active))


def _skipped(work: OpWork, chip: Chip, ops: OpOperands) -> OpWork:
    name = work.op.name
    R, C, L = chip.rows, chip.cols, chip.lanes_per_word
    shape = (work.groups, work.tiles)
    for what, table in (("ticks", ops.ticks), ("streamed", ops.streamed)):
        if (len(table), *{len(row) for row in table}) != shape:
            raise ValueError(f"op {name!r}: {what} must be per group and tile, {shape}")
    blocks = work.reduction // L
    for g in range(work.groups):
        for t in range(work.tiles):
            n, ticks = ops.streamed[g][t], ops.ticks[g][t]
            if not 0 <= n <= work.reduction or not max(n, blocks) <= ticks <= n + blocks:
                raise ValueError(
                    f"op {name!r}: group {g} tile {t}: {n} elements in {ticks} ticks do not fit "
                    f"{blocks} blocks of {L}"
                )
    streams = tuple(tuple(max(ticks, C + 1) for ticks in row) for row in ops.ticks)
    flush = R + C
    sys_ticks = streamed = 0
    for q, g in zip(work.epoch_passes, work.epoch_groups(), strict=True):
        sys_ticks += sum(q * s + max(0, flush - s) for s in streams[g]) + flush
        streamed += q * sum(ops.streamed[g])
    side = bias_words(chip) + (requant_words(chip) if work.op.per_channel else 0)
    total = R * C * streamed
    if not 0 <= ops.active_pairs <= total:
        raise ValueError(
            f"op {name!r}: {ops.active_pairs} non-zero operand pairs, but the array streams {total}"
        )
    subtiles = work.tiles * work.passes
    act = replace(
        work.activity,
        sys_ticks=sys_ticks,
        pe_cycles=R * C * sys_ticks,
        macs=ops.macs,
        wbuf_reads=streamed + (work.passes * side if work.load_from_rram else 0),
        gated_macs=total - ops.active_pairs,
        zero_detects=(R + C) * streamed + R * L * blocks * subtiles,
        skipped_steps=work.reduction * subtiles - streamed,
    )
    return replace(work, activity=act, tile_streams=streams)
