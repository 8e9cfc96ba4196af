"""What a checkpoint holds at each schedule-layer boundary, and what writing and reading it costs.

To resume at layer k after a power failure, the chip needs every activation tensor that was
produced before layer k (the network input included) and is read by layer k or later, plus a
progress marker. Weights live in RRAM, which is non-volatile, and are never saved. A tensor's
size is its stored size in the scratchpad (channel-blocked words, from the memory plan); tensors
that share storage (concatenation views) are counted once. docs/intermittent.md has the cost
equations; the prices come from :data:`scheduler.prices.SUPPLY_PRICES`.
"""

from dataclasses import dataclass

import numpy as np

from .chip import DOMAINS, Chip, IntermittentSpec
from .cost import CostTable, schedule_layers
from .prices import SUPPLY_PRICES, SupplyEvent

__all__ = ["Checkpoint", "plan_checkpoints", "transfer_idle_power_w"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The state saved at boundary ``boundary`` (after schedule layer ``boundary - 1``).

    Boundary N (after the last layer) holds the network output when the chip file commits it
    (``intermittent.checkpoint.commit_output``), else nothing.

    Attributes
    ----------
    boundary : int
        1..N.
    tensors : tuple of str
        The live tensors saved (empty at N without an output commit).
    data_words : int
        Scratchpad words they occupy (each shared word once).
    spans : tuple of (int, int)
        The scratchpad ``(base_word, words)`` ranges that hold them, disjoint and sorted.
    bits : int
        Bits written and read back: ``data_words * word_bits`` plus the progress marker (0 if
        nothing is saved).
    write_energy_j, write_time_s : float
        Saving it: store writes, scratchpad reads and the chip's idle power during the transfer.
    read_energy_j, read_time_s : float
        Restoring it: store reads, scratchpad writes and the idle power.
    """

    boundary: int
    tensors: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    data_words: int
    bits: int
    write_energy_j: float
    write_time_s: float
    read_energy_j: float
    read_time_s: float


def _price(chip: Chip, event: SupplyEvent) -> float:
    return next(p for p in SUPPLY_PRICES if p.event is event).joules(chip)


def transfer_idle_power_w(chip: Chip, banks: np.ndarray, table: CostTable) -> float:
    """Power the chip draws while a checkpoint or restore moves data: the domains' and the
    always-on supply's idle power and the leakage of the scratchpad banks ``banks`` (a mask over
    all banks) that hold the data, all at ``energy.reference_v`` (docs/intermittent.md)."""
    e = chip.energy
    aon = chip.always_on_idle_uw * float(e.leakage_law.factor(chip.always_on_v, e.reference_v))
    domains = sum(chip.domain(d).idle_power_uw for d in DOMAINS)
    kinds = table.memory.kind_of()
    bank_uw = sum(chip.bank(kinds[i]).leakage_uw for i in np.flatnonzero(banks))
    return (aon + domains + bank_uw) * 1e-6


def plan_checkpoints(table: CostTable, spec: IntermittentSpec) -> tuple[Checkpoint, ...]:
    """The checkpoint at every boundary 1..N of ``table``'s schedule layers (index k - 1)."""
    network, chip, memory = table.network, table.chip, table.memory
    store = spec.checkpoint
    groups = schedule_layers(network)
    produced = {network.input_name: -1, **{op.name: i for i, op in enumerate(network.ops)}}
    last_read = {
        name: max((produced[op.name] for op in network.consumers(name)), default=-1)
        for name in produced
    }
    place = {p.tensor: p for p in memory.placements}
    write_bit = _price(chip, SupplyEvent.CHECKPOINT_BIT)
    read_bit = _price(chip, SupplyEvent.RESTORE_BIT)
    spad_read = _price(chip, SupplyEvent.CHECKPOINT_WORD)
    spad_write = _price(chip, SupplyEvent.RESTORE_WORD)
    output = network.ops[-1].name
    checkpoints = []
    for k in range(1, len(groups) + 1):
        last_op = groups[k - 1][-1]
        if k < len(groups):
            tensors = tuple(
                name for name in produced if produced[name] <= last_op < last_read[name]
            )
        else:
            tensors = (output,) if store.commit_output else ()
        spans = _union(sorted((place[t].base_word, place[t].words) for t in tensors))
        words = sum(n for _, n in spans)
        bits = words * chip.word_bits + (store.marker_bits if tensors else 0)
        idle_w = transfer_idle_power_w(chip, memory.banks_holding(spans, chip), table)
        write_s = store.words(bits) * store.write_ns_per_word * 1e-9
        read_s = store.words(bits) * store.read_ns_per_word * 1e-9
        checkpoints.append(
            Checkpoint(
                boundary=k,
                tensors=tensors,
                spans=tuple(spans),
                data_words=words,
                bits=bits,
                write_energy_j=bits * write_bit + words * spad_read + idle_w * write_s,
                write_time_s=write_s,
                read_energy_j=bits * read_bit + words * spad_write + idle_w * read_s,
                read_time_s=read_s,
            )
        )
    return tuple(checkpoints)


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge sorted ``(base, words)`` spans into disjoint ones."""
    merged: list[tuple[int, int]] = []
    for base, words in spans:
        if merged and base <= merged[-1][0] + merged[-1][1]:
            top = max(merged[-1][0] + merged[-1][1], base + words)
            merged[-1] = (merged[-1][0], top - merged[-1][0])
        elif words:
            merged.append((base, words))
    return merged
