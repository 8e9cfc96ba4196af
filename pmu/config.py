"""Build-time parameters of the PMU hardware, derived from a chip (one Verilator build each).

The PMU RTL (``pmu/sequencer.py``, ``pmu/bank_switches.py``, ...) and its Python model
(``pmu/timing.py``) read only a :class:`PmuConfig`, so the model and the RTL share every number.
"""

from dataclasses import dataclass

from voltflow.hw.widths import GROUP_BANKS, TIME_BITS
from voltflow.scheduler.chip import DOMAINS, BankKind, Chip, ns_to_cycles

__all__ = [
    "BUDGET_BITS",
    "COMMAND_ADDR_BITS",
    "COMMAND_WORDS",
    "GROUP_BANKS",
    "PROGRAM_ADDR_BITS",
    "PROGRAM_OPS",
    "TIME_BITS",
    "TRANSITION_KINDS",
    "BankGeometry",
    "PmuConfig",
    "ns_to_cycles",
]

#: Depth of the command memory (the ISA's 12-bit LOOP target).
COMMAND_WORDS = 4096
#: Depth of the layer-program memory (12-bit op index).
PROGRAM_OPS = 4096
#: Width of a command address (the program counter).
COMMAND_ADDR_BITS = (COMMAND_WORDS - 1).bit_length()
#: Width of an op index (a layer-program address).
PROGRAM_ADDR_BITS = (PROGRAM_OPS - 1).bit_length()
#: Width of the run's command budget (commands it may execute; 0: unlimited).
BUDGET_BITS = 32
#: Transition counters of the PMU, in the order of its counter outputs (``pmu/timing.py``
#: predicts the same kinds).
TRANSITION_KINDS = (
    "rail_sets",
    "supply_switches",
    "freq_changes",
    "bank_wakes",
    "bank_gates",
    "sleeps",
)


def _store_cycles(chip: Chip) -> dict[str, int]:
    if chip.intermittent is None:
        return {}
    store = chip.intermittent.checkpoint
    return {
        "store_write_cycles": store.write_cycles(chip.reference_mhz),
        "store_read_cycles": store.read_cycles(chip.reference_mhz),
    }


@dataclass(frozen=True, slots=True)
class BankGeometry:
    """One power-switched bank as the hardware sees it."""

    kind: BankKind
    first_word: int  # in its memory (scratchpad or RRAM)
    log2_words: int
    wake_cycles: int
    volatile: bool

    @property
    def words(self) -> int:
        return 1 << self.log2_words


@dataclass(frozen=True, slots=True)
class PmuConfig:
    """The parameters that decide the PMU's generated Verilog.

    Attributes
    ----------
    phase_bits : int
        Width of the domains' divider increments.
    rails : int
        Rail regulators (SET_RAIL/CONNECT rail indices below this are legal).
    levels_v : tuple of float
        The voltage grid (SET_RAIL levels below ``len(levels_v)`` are legal).
    max_increment : tuple of tuple of int
        Per domain (DOMAINS order), per level: the fastest legal increment,
        ``chip.divider_increment(domain, V)`` (the single quantisation).
    transition_cycles : int
        A CONNECT's supply switch settles (and the PMU waits) this long.
    rail_settle_cycles : int
        A SET_RAIL's regulator settles this long after the command.
    banks : tuple of BankGeometry
        Global bank index order: ifmap, ofmap (scratchpad), then RRAM.
    store : bool
        The build has the checkpoint store's engine (SAVE, RESTORE, COMMIT, RESUME): the builds
        of intermittent runs. Battery runs use a build without it, whose simulation does not pay
        for logic it never uses; there the commands stop the PMU with NO_STORE.
    store_write_cycles, store_read_cycles : int
        Reference cycles of one checkpoint-store word write / read (the chip file's
        ``intermittent.checkpoint``; 1 for a chip without one, whose programs have no checkpoint
        commands).
    """

    phase_bits: int
    rails: int
    levels_v: tuple[float, ...]
    max_increment: tuple[tuple[int, ...], ...]
    transition_cycles: int
    rail_settle_cycles: int
    banks: tuple[BankGeometry, ...]
    store: bool = False
    store_write_cycles: int = 1
    store_read_cycles: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.rails <= 8:
            raise ValueError(f"rails must be in 1..8 (3-bit rail field), not {self.rails}")
        if not 1 <= len(self.levels_v) <= 16:
            raise ValueError(
                f"the voltage grid must have 1..16 levels (4-bit field), not {len(self.levels_v)}"
            )

    @classmethod
    def from_chip(
        cls, chip: Chip, bank_counts: dict[BankKind, int], *, store: bool = False
    ) -> "PmuConfig":
        """``bank_counts``: banks per kind the hardware has (the simulation's fixed sizes);
        ``store``: with the checkpoint store (the chip must have an ``intermittent`` section)."""
        if store and chip.intermittent is None:
            raise ValueError(
                f"chip {chip.name!r} has no intermittent section: its checkpoint store is "
                f"undefined (add one, docs/intermittent.md)"
            )
        banks = []
        word = {BankKind.IFMAP: 0, BankKind.OFMAP: 0, BankKind.RRAM: 0}
        for kind in (BankKind.IFMAP, BankKind.OFMAP, BankKind.RRAM):
            spec = chip.bank(kind)
            words = spec.words(chip.word_bits)
            if words & (words - 1):
                raise ValueError(
                    f"banks.{kind.value}.size_kib must give a power-of-two number of words for "
                    f"the PMU's address decode, not {words} words"
                )
            memory = BankKind.RRAM if kind is BankKind.RRAM else BankKind.IFMAP
            for _ in range(bank_counts[kind]):
                banks.append(
                    BankGeometry(
                        kind,
                        word[memory],
                        words.bit_length() - 1,
                        ns_to_cycles(spec.wake_latency_ns, chip.reference_mhz),
                        spec.volatile,
                    )
                )
                word[memory] += words
        return cls(
            phase_bits=chip.divider_phase_bits,
            rails=chip.rails,
            levels_v=tuple(chip.levels_v),
            max_increment=tuple(
                tuple(int(chip.divider_increment(d, v)) for v in chip.levels_v) for d in DOMAINS
            ),
            transition_cycles=ns_to_cycles(chip.transition_latency_ns, chip.reference_mhz),
            rail_settle_cycles=ns_to_cycles(chip.rail_settle_ns, chip.reference_mhz),
            banks=tuple(banks),
            **(_store_cycles(chip) if store else {}),
            store=store,
        )

    @property
    def n_banks(self) -> int:
        return len(self.banks)

    @property
    def groups(self) -> int:
        return -(-self.n_banks // GROUP_BANKS)

    def bank_range(self, kind_is_rram: bool) -> tuple[int, int]:
        """[first, last) global indices of the scratchpad (False) or RRAM (True) banks."""
        idx = [i for i, b in enumerate(self.banks) if (b.kind is BankKind.RRAM) == kind_is_rram]
        return (idx[0], idx[-1] + 1) if idx else (0, 0)

    @property
    def spad_words(self) -> int:
        """Words of the scratchpad's banks (SAVE and RESTORE copies must lie below)."""
        lo, hi = self.bank_range(kind_is_rram=False)
        return sum(b.words for b in self.banks[lo:hi])

    @property
    def slot_words(self) -> int:
        """Words of one checkpoint-store slot: the scratchpad's words, to a power of two (a
        checkpoint never holds more than the scratchpad)."""
        return 1 << max(0, (self.spad_words - 1).bit_length())

    def group_wake_cycles(self, group: int, mask: int) -> int:
        """Wake latency of a WAKE command: its banks become usable together, after the slowest."""
        cycles = 0
        for i in range(GROUP_BANKS):
            b = group * GROUP_BANKS + i
            if mask >> i & 1 and b < self.n_banks:
                cycles = max(cycles, self.banks[b].wake_cycles)
        return cycles
