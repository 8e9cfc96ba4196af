"""Where tensors and weights live: scratchpad placement, RRAM placement and bank counts.

Activations are stored channel-blocked (one 64-bit word = 8 channels of one pixel, word address
``base + (cb * H + y) * W + x``), so a concatenation is adjacency of channel blocks: its inputs are
placed at offsets inside the concatenated buffer and no copy is made. Buffers are placed first-fit
in chain order and freed after their last reader. The scratchpad is one address space made of the
ifmap banks followed by the ofmap banks; each weighted op's weights start at a fresh RRAM bank.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from voltflow.scheduler.chip import BankKind, Chip
from voltflow.scheduler.dataflow import OpWork
from voltflow.scheduler.network import Network, OpKind

__all__ = ["BankLayout", "CapacityError", "Placement", "plan_memory"]


class CapacityError(ValueError):
    """The network does not fit in the chip's fixed bank counts."""


@dataclass(frozen=True, slots=True)
class Placement:
    """A tensor's place in the scratchpad (in words) and its live range in chain-op indices."""

    tensor: str
    base_word: int
    words: int
    first_op: int  # -1: present before the first op (the network input)
    last_op: int


@dataclass(frozen=True, slots=True)
class BankLayout:
    """Bank counts and contents for one network on one chip."""

    counts: tuple[tuple[BankKind, int], ...]  # in chip order: ifmap, ofmap, rram
    placements: tuple[Placement, ...]  # every tensor, aliases included
    weight_banks: tuple[tuple[int, int], ...]  # per chain op: [first, last) global bank index
    peak_words: int

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    def kind_of(self) -> tuple[BankKind, ...]:
        """The kind of each global bank index."""
        return tuple(kind for kind, n in self.counts for _ in range(n))

    def first_bank(self, kind: BankKind) -> int:
        start = 0
        for k, n in self.counts:
            if k is kind:
                return start
            start += n
        raise KeyError(kind)

    def scratchpad_banks_live(self, op_index: int, chip: Chip) -> np.ndarray:
        """Boolean mask over all banks: scratchpad banks holding a tensor live during the op."""
        return self.banks_holding(
            [
                (p.base_word, p.words)
                for p in self.placements
                if p.first_op <= op_index <= p.last_op and p.words
            ],
            chip,
        )

    def banks_holding(self, spans: Iterable[tuple[int, int]], chip: Chip) -> np.ndarray:
        """Boolean mask over all banks: the scratchpad banks that ``(base_word, words)`` spans
        touch."""
        mask = np.zeros(self.total, dtype=bool)
        bank_words = [chip.bank(BankKind.IFMAP).words(chip.word_bits)] * dict(self.counts)[
            BankKind.IFMAP
        ] + [chip.bank(BankKind.OFMAP).words(chip.word_bits)] * dict(self.counts)[BankKind.OFMAP]
        edges = np.concatenate([[0], np.cumsum(bank_words)])
        for base, words in spans:
            if words:
                lo = int(np.searchsorted(edges, base, side="right")) - 1
                hi = int(np.searchsorted(edges, base + words, side="left"))
                mask[lo:hi] = True
        return mask


def _words(channels: int, height: int, width: int, lanes: int) -> int:
    return -(-channels // lanes) * height * width


def plan_memory(network: Network, chip: Chip, works: tuple[OpWork, ...]) -> BankLayout:
    """Place every tensor and every weight tile; size the banks whose count is ``auto``."""
    lanes = chip.lanes_per_word
    ops = network.ops
    index = {op.name: i for i, op in enumerate(ops)}
    produced = {network.input_name: -1, **index}
    last_use = {name: produced[name] for name in produced}
    for i, op in enumerate(ops):
        for name in op.inputs:
            last_use[name] = max(last_use[name], i)
    last_use[ops[-1].name] = len(ops) - 1  # the output is read out at the end of the frame

    # Concatenation: each input is a view at a channel-block offset into the concat's buffer.
    parent: dict[str, tuple[str, int]] = {}
    for op in ops:
        if op.kind is OpKind.CONCAT:
            offset = 0
            for name, shape in zip(op.inputs, op.in_shapes, strict=True):
                if name in parent:
                    raise CapacityError(
                        f"{network.name}: tensor {name!r} feeds two concatenations; "
                        "a tensor can live in only one concatenated buffer"
                    )
                parent[name] = (op.name, offset)
                offset += _words(shape.channels, shape.height, shape.width, lanes)

    def root(name: str) -> tuple[str, int]:
        offset = 0
        while name in parent:
            name, off = parent[name]
            offset += off
        return name, offset

    shapes = {network.input_name: network.input, **{op.name: op.out for op in ops}}
    members: dict[str, list[str]] = {}
    for name in shapes:
        members.setdefault(root(name)[0], []).append(name)
    start = {r: min(produced[m] for m in ms) for r, ms in members.items()}
    end = {r: max(last_use[m] for m in ms) for r, ms in members.items()}

    # First-fit placement of root buffers in order of their first producer.
    free: list[tuple[int, int]] = [(0, 1 << 62)]  # (base, size) sorted by base
    live: list[tuple[int, int, int]] = []  # (end_op, base, size)
    base_of: dict[str, int] = {}
    peak = 0
    for r in sorted(members, key=lambda r: (start[r], list(shapes).index(r))):
        t = start[r]
        for item in [x for x in live if x[0] < t]:
            live.remove(item)
            free = _release(free, item[1], item[2])
        s = shapes[r]
        size = _words(s.channels, s.height, s.width, lanes)
        for j, (b, n) in enumerate(free):
            if n >= size:
                base_of[r] = b
                free[j] = (b + size, n - size)
                break
        live.append((end[r], base_of[r], size))
        peak = max(peak, base_of[r] + size)

    placements = []
    for name, s in shapes.items():
        r, off = root(name)
        placements.append(
            Placement(
                name,
                base_of[r] + off,
                _words(s.channels, s.height, s.width, lanes),
                start[r] if r == name else produced[name],
                end[r] if r == name else last_use[name],
            )
        )
    # An alias lives as long as its root buffer must hold its data: from its producer to the
    # root's last reader.
    placements = [
        p if root(p.tensor)[0] == p.tensor else _extend(p, end[root(p.tensor)[0]])
        for p in placements
    ]

    ifmap, ofmap, rram = (chip.bank(k) for k in (BankKind.IFMAP, BankKind.OFMAP, BankKind.RRAM))
    if_words, of_words = ifmap.words(chip.word_bits), ofmap.words(chip.word_bits)
    counts: dict[BankKind, int] = {}
    if ifmap.count is None:
        counts[BankKind.IFMAP] = max(ifmap.min_count, -(-peak // if_words))
        counts[BankKind.OFMAP] = ofmap.count if ofmap.count is not None else ofmap.min_count
    else:
        counts[BankKind.IFMAP] = ifmap.count
        rest = max(0, peak - ifmap.count * if_words)
        needed = -(-rest // of_words)
        if ofmap.count is None:
            counts[BankKind.OFMAP] = max(ofmap.min_count, needed)
        else:
            counts[BankKind.OFMAP] = ofmap.count
    capacity = counts[BankKind.IFMAP] * if_words + counts[BankKind.OFMAP] * of_words
    if peak > capacity:
        raise CapacityError(
            f"{network.name} needs {peak * chip.word_bytes} bytes of scratchpad at its peak, "
            f"but {chip.name} has {capacity * chip.word_bytes}; set banks.ofmap.count to auto "
            "or add banks"
        )

    rram_words = rram.words(chip.word_bits)
    weight_ranges = []
    next_bank = 0
    for work in works:
        if work.load_from_rram and work.passes:
            words = work.passes * work.load_beats
            n = -(-words // rram_words)
            weight_ranges.append((next_bank, next_bank + n))
            next_bank += n
        else:
            weight_ranges.append((next_bank, next_bank))
    if rram.count is None:
        counts[BankKind.RRAM] = max(rram.min_count, next_bank)
    elif next_bank > rram.count:
        raise CapacityError(
            f"{network.name} needs {next_bank} RRAM banks of {rram.size_kib} KiB for its weights, "
            f"but {chip.name} has banks.rram.count = {rram.count}; set it to auto or raise it"
        )
    else:
        counts[BankKind.RRAM] = rram.count
    rram_base = counts[BankKind.IFMAP] + counts[BankKind.OFMAP]
    return BankLayout(
        counts=tuple((k, counts[k]) for k in (BankKind.IFMAP, BankKind.OFMAP, BankKind.RRAM)),
        placements=tuple(placements),
        weight_banks=tuple((rram_base + a, rram_base + b) for a, b in weight_ranges),
        peak_words=peak,
    )


def _extend(p: Placement, last_op: int) -> Placement:
    return Placement(p.tensor, p.base_word, p.words, p.first_op, max(p.last_op, last_op))


def _release(free: list[tuple[int, int]], base: int, size: int) -> list[tuple[int, int]]:
    """Return a block to the free list, merging neighbours."""
    blocks = sorted([*free, (base, size)])
    merged: list[tuple[int, int]] = []
    for b, n in blocks:
        if merged and merged[-1][0] + merged[-1][1] == b:
            merged[-1] = (merged[-1][0], merged[-1][1] + n)
        elif n:
            merged.append((b, n))
    return merged
