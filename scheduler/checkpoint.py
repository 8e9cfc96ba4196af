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

from .chip import BANK_DOMAIN, DOMAINS, BankKind, Chip, IntermittentSpec, ns_to_cycles
from .cost import CostTable, schedule_layers
from .prices import SUPPLY_PRICES, SupplyEvent

__all__ = ["Checkpoint", "TransferCosts", "idle_power_w", "plan_checkpoints", "transfer_costs"]


@dataclass(frozen=True, slots=True, eq=False)
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
    spans : tuple of (int, int)
        The scratchpad ``(base_word, words)`` ranges that hold them, disjoint and sorted.
    data_words : int
        Scratchpad words they occupy (each shared word once).
    banks : numpy.ndarray
        Mask over all banks: the scratchpad banks that hold them (the only banks on while the
        checkpoint is written or read back).
    bits : int
        What the store keeps: ``data_words * word_bits`` plus the progress marker (0 if nothing
        is saved).
    """

    boundary: int
    tensors: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    data_words: int
    banks: np.ndarray
    bits: int

    @property
    def written_words(self) -> int:
        """Store words one checkpoint writes: the data and the marker twice (invalidated by the
        first SAVE, written by COMMIT; docs/intermittent.md, "Commit protocol")."""
        return self.data_words + 2 if self.tensors else 0


@dataclass(frozen=True, slots=True, eq=False)
class TransferCosts:
    """What a power cycle pays beyond its layers' cost-table entries, per boundary and state.

    The state is that of the cycle's first layer for a restore (the domains are connected for it
    before the copy) and of its last layer for a checkpoint: the copies' idle power is the
    domains' at that state's voltages and the held banks' at their domain's.

    Attributes
    ----------
    boot_energy_j, boot_time_s : float
        One power-up: the chip file's ``boot`` (the analog power-up, which no counter sees), then
        the PMU's boot commands (rails settling, RESUME reading both markers) and connecting the
        domains.
    checkpoint_energy_j : numpy.ndarray
        (N + 1, S) writing the checkpoint of boundary k (row 0 unused: 0) in state s.
    checkpoint_time_s : numpy.ndarray
        (N + 1,) its duration.
    restore_energy_j : numpy.ndarray
        (N + 1, S) reading boundary k's checkpoint back in state s (rows 0 and N: 0).
    restore_time_s : numpy.ndarray
        (N + 1,).
    """

    boot_energy_j: float
    boot_time_s: float
    checkpoint_energy_j: np.ndarray
    checkpoint_time_s: np.ndarray
    restore_energy_j: np.ndarray
    restore_time_s: np.ndarray


def _price(chip: Chip, event: SupplyEvent) -> float:
    return next(p for p in SUPPLY_PRICES if p.event is event).joules(chip)


def _always_on_w(chip: Chip) -> float:
    """The always-on supply's idle power (it sits at its own fixed voltage)."""
    law, ref = chip.energy.leakage_law, chip.energy.reference_v
    return chip.always_on_idle_uw * 1e-6 * float(law.factor(chip.always_on_v, ref))


def idle_power_w(table: CostTable, banks: np.ndarray) -> np.ndarray:
    """(S,) power the chip draws, in each of ``table``'s states, while the PMU copies between
    the scratchpad and the store: the always-on supply's idle power, every domain's at the
    state's voltage, and the leakage of the banks ``banks`` (a mask over all banks) at their
    domain's voltage (docs/intermittent.md)."""
    chip = table.chip
    law = chip.energy.leakage_law
    ref = chip.energy.reference_v
    volts = table.voltages_v
    uw = np.full(len(volts), _always_on_w(chip) * 1e6)
    for j, d in enumerate(DOMAINS):
        uw = uw + chip.domain(d).idle_power_uw * law.factor(volts[:, j], ref)
    kinds = table.memory.kind_of()
    for kind in BankKind:
        count = sum(1 for i in np.flatnonzero(banks) if kinds[i] is kind)
        if count:
            j = DOMAINS.index(BANK_DOMAIN[kind])
            uw = uw + count * chip.bank(kind).leakage_uw * law.factor(volts[:, j], ref)
    return np.asarray(uw, dtype=np.float64) * 1e-6


def plan_checkpoints(table: CostTable, spec: IntermittentSpec) -> tuple[Checkpoint, ...]:
    """The checkpoint at every boundary 1..N of ``table``'s schedule layers (index k - 1)."""
    network, chip, memory = table.network, table.chip, table.memory
    groups = schedule_layers(network)
    produced = {network.input_name: -1, **{op.name: i for i, op in enumerate(network.ops)}}
    last_read = {
        name: max((produced[op.name] for op in network.consumers(name)), default=-1)
        for name in produced
    }
    place = {p.tensor: p for p in memory.placements}
    output = network.ops[-1].name
    checkpoints = []
    for k in range(1, len(groups) + 1):
        last_op = groups[k - 1][-1]
        if k < len(groups):
            tensors = tuple(
                name for name in produced if produced[name] <= last_op < last_read[name]
            )
        else:
            tensors = (output,) if spec.checkpoint.commit_output else ()
        spans = _union(sorted((place[t].base_word, place[t].words) for t in tensors))
        words = sum(n for _, n in spans)
        checkpoints.append(
            Checkpoint(
                boundary=k,
                tensors=tensors,
                spans=tuple(spans),
                data_words=words,
                banks=memory.banks_holding(spans, chip),
                bits=words * chip.word_bits + (spec.checkpoint.marker_bits if tensors else 0),
            )
        )
    return tuple(checkpoints)


def transfer_costs(
    table: CostTable, spec: IntermittentSpec, checkpoints: tuple[Checkpoint, ...]
) -> TransferCosts:
    """The boot, checkpoint and restore costs of the program ``pmu.intermittent_compiler``
    builds (docs/intermittent.md, "The model"), in reference cycles as the PMU spends them.

    A checkpoint at boundary b: its SAVEs (one tick each, then a store write of W cycles per
    word, the first one the free slot's marker) and COMMIT (a tick and the marker's write), with
    only the checkpoint's banks on. A restore at boundary a: WAKE the checkpoint's banks and wait
    for them, its RESTOREs (a tick each, then a read of R cycles per word). Store words are
    priced per bit, the scratchpad words the copies read or write at ``energy.reference_v``.
    Single command ticks outside copies (SET_RAIL, GATE, WAKE, HALT: one reference cycle each,
    a few hundred per power cycle at most, picojoules) are not counted.
    """
    chip, store = table.chip, spec.checkpoint
    f_hz = chip.reference_mhz * 1e6
    write, read = store.write_cycles(chip.reference_mhz), store.read_cycles(chip.reference_mhz)
    word_write = store.word_bits * _price(chip, SupplyEvent.CHECKPOINT_BIT)
    word_read = store.word_bits * _price(chip, SupplyEvent.RESTORE_BIT)
    spad_read = _price(chip, SupplyEvent.CHECKPOINT_WORD)
    spad_write = _price(chip, SupplyEvent.RESTORE_WORD)
    wake = max(
        ns_to_cycles(chip.bank(kind).wake_latency_ns, chip.reference_mhz)
        for kind, _ in table.memory.counts
    )
    n, states = len(checkpoints), len(table.voltages_v)
    ck_e, rs_e = np.zeros((n + 1, states)), np.zeros((n + 1, states))
    ck_t, rs_t = np.zeros(n + 1), np.zeros(n + 1)
    for c in checkpoints:
        k = c.boundary
        if not c.tensors:
            continue
        idle = idle_power_w(table, c.banks)
        cycles = len(c.spans) + 1 + c.written_words * write
        ck_t[k] = cycles / f_hz
        ck_e[k] = c.written_words * word_write + c.data_words * spad_read + idle * ck_t[k]
        if k < n:
            cycles = 1 + wake + len(c.spans) + c.data_words * read
            rs_t[k] = cycles / f_hz
            rs_e[k] = c.data_words * (word_read + spad_write) + idle * rs_t[k]
    # Boot: the rails settle, RESUME reads both markers, then every domain is connected (its
    # CONNECT waits out the switch) and clocked, with the always-on supply alone drawing power.
    aon_w = _always_on_w(chip)
    domains = len(DOMAINS)
    cycles = (
        ns_to_cycles(chip.rail_settle_ns, chip.reference_mhz)
        + 2 * read
        + domains * (2 + ns_to_cycles(chip.transition_latency_s * 1e9, chip.reference_mhz))
    )
    boot_energy = (
        _price(chip, SupplyEvent.BOOT)
        + 2 * word_read
        + domains * chip.transition_energy_j
        + aon_w * cycles / f_hz
    )
    return TransferCosts(
        boot_energy_j=boot_energy,
        boot_time_s=spec.boot.latency_s + cycles / f_hz,
        checkpoint_energy_j=ck_e,
        checkpoint_time_s=ck_t,
        restore_energy_j=rs_e,
        restore_time_s=rs_t,
    )


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
