"""The price table: every energy the models charge, declared once as data.

Each entry says which component (or leakage source, or event) costs energy, in which domain's
voltage it is charged, which counted event drives it, and which field of the chip file prices it.
Two models read it and stay independent code paths: the cost model (:mod:`scheduler.cost`)
multiplies the prices by analytic activity (:class:`scheduler.dataflow.Activity`), the
co-simulation's energy model (``cosim.energy``) by the RTL's counters. A new counted event is one
new row here, priced by a new chip-file field (docs/architecture.md, "Where a new chip feature
goes").
"""

import enum
from dataclasses import dataclass

from voltflow.scheduler.chip import BANK_DOMAIN, DOMAINS, BankKind, Chip, Domain

__all__ = [
    "DYNAMIC_PRICES",
    "EVENT_PRICES",
    "LEAKAGE_PRICES",
    "SUPPLY_PRICES",
    "UNPRICED_ENERGY_FIELDS",
    "Component",
    "DynamicPrice",
    "EventPrice",
    "LeakagePrice",
    "LeakageSource",
    "SupplyEvent",
    "SupplyPrice",
    "Term",
    "chip_field",
]


class Component(enum.Enum):
    """Dynamic-energy components, each charged at one domain's voltage (:data:`DYNAMIC_PRICES`)."""

    PE = "pe"  # processing elements
    ARRAY = "array"  # operand skew/stagger registers
    ZERO_DETECT = "zero_detect"  # zero detection of operands (array.sparsity gate)
    PG_CONTROLLER = "pg_ctrl"  # power-gating controller
    FEEDER = "feeder"  # feeder control
    SPAD = "spad"  # scratchpad reads and writes
    LANE = "lane"  # lane buffers
    RRAM = "rram"  # RRAM reads
    WBUF = "wbuf"  # weight tile buffer reads and writes
    DMA = "dma"  # weight DMA control

    @property
    def domain(self) -> Domain | None:
        """The domain whose voltage scales this component (None: the always-on supply)."""
        return _COMPONENT_DOMAIN[self]


class LeakageSource(enum.Enum):
    """What leaks: the three domains, the always-on supply, the banks by kind."""

    SYS = "sys"
    RRAM = "rram"
    FEEDER = "feeder"
    ALWAYS_ON = "always_on"
    IFMAP_BANKS = "ifmap_banks"
    OFMAP_BANKS = "ofmap_banks"
    RRAM_BANKS = "rram_banks"


@dataclass(frozen=True, slots=True)
class Term:
    """One counted event of a component and its price.

    ``counter`` counts it on the RTL (``rtl.activity_counters.COUNTERS``); one count is
    ``per_count`` (a product of integer :class:`scheduler.chip.Chip` fields, in order) priced
    units. ``activity`` is the same event in priced units in the cost model's analytic
    :class:`scheduler.dataflow.Activity`. ``energy`` names the :class:`scheduler.chip.EnergySpec`
    field (chip file ``energy.<field>``): picojoules per priced unit at ``energy.reference_v``.
    ``saving``: the event saves that energy from the component's other terms (a gated MAC).
    """

    counter: str
    energy: str
    activity: str
    per_count: tuple[str, ...] = ()
    saving: bool = False

    @property
    def sign(self) -> int:
        """+1, or -1 for a saving."""
        return -1 if self.saving else 1


@dataclass(frozen=True, slots=True)
class DynamicPrice:
    """A dynamic component: the sum of its terms, charged at ``domain``'s voltage (None: the
    always-on supply); ``gating_only``: charged only while a bank-gating policy is active."""

    component: Component
    domain: Domain | None
    terms: tuple[Term, ...]
    gating_only: bool = False


#: Dynamic energy, in the order of :class:`Component` (the order energies are summed in).
DYNAMIC_PRICES: tuple[DynamicPrice, ...] = (
    # Every PE of the array is clocked on each array tick; a gated MAC (array.sparsity gate: a
    # zero operand) saves its multiplier and adder.
    DynamicPrice(
        Component.PE,
        Domain.SYS,
        (
            Term("sys_ticks", "pe_cycle_pj", "pe_cycles", per_count=("rows", "cols")),
            Term("gated_macs", "pe_mac_pj", "gated_macs", saving=True),
        ),
    ),
    DynamicPrice(
        Component.ARRAY, Domain.SYS, (Term("sys_ticks", "array_stagger_pj", "sys_ticks"),)
    ),
    DynamicPrice(
        Component.ZERO_DETECT,
        Domain.SYS,
        (Term("zero_detects", "zero_detect_pj", "zero_detects"),),
    ),
    # The power-gating controller is clocked with the array, from the always-on supply.
    DynamicPrice(
        Component.PG_CONTROLLER,
        None,
        (Term("sys_ticks", "pg_controller_pj", "sys_ticks"),),
        gating_only=True,
    ),
    DynamicPrice(
        Component.FEEDER,
        Domain.FEEDER,
        (Term("feeder_ticks", "feeder_control_pj", "feeder_ticks"),),
    ),
    DynamicPrice(
        Component.SPAD,
        Domain.FEEDER,
        (
            Term("spad_reads", "spad_read_pj", "spad_reads"),
            Term("spad_writes", "spad_write_pj", "spad_writes"),
        ),
    ),
    # Lane-buffer energy is per bit; the counter counts words.
    DynamicPrice(
        Component.LANE,
        Domain.FEEDER,
        (Term("lane_words", "lane_buffer_pj_per_bit", "lane_bits", per_count=("word_bits",)),),
    ),
    DynamicPrice(Component.RRAM, Domain.RRAM, (Term("rram_reads", "rram_read_pj", "rram_reads"),)),
    DynamicPrice(
        Component.WBUF,
        Domain.RRAM,
        (
            Term("wbuf_reads", "wbuf_read_pj", "wbuf_reads"),
            Term("wbuf_writes", "wbuf_write_pj", "wbuf_writes"),
        ),
    ),
    DynamicPrice(Component.DMA, Domain.RRAM, (Term("dma_beats", "dma_control_pj", "dma_beats"),)),
)

_COMPONENT_DOMAIN: dict[Component, Domain | None] = {p.component: p.domain for p in DYNAMIC_PRICES}

#: EnergySpec fields no counted event uses: RRAM is written only when it is programmed, never
#: while a network runs.
UNPRICED_ENERGY_FIELDS: frozenset[str] = frozenset({"rram_write_pj_per_bit"})


@dataclass(frozen=True, slots=True)
class LeakagePrice:
    """A leakage source, scaled by the voltage of ``domain`` (None: the always-on supply).

    ``level_counter`` is the PMU power counter prefix (``pmu.power_counters``) that, with a
    voltage-level index appended, counts reference cycles (domains) or bank-cycles (banks) at that
    level; None for the always-on supply, which leaks over the cycles the chip is not asleep.
    ``field`` is the chip-file field that prices it (microwatts at ``energy.reference_v``).
    """

    source: LeakageSource
    domain: Domain | None
    bank: BankKind | None
    level_counter: str | None
    field: str


#: Leakage, in the order of :class:`LeakageSource` (the order powers are summed in).
LEAKAGE_PRICES: tuple[LeakagePrice, ...] = (
    *(
        LeakagePrice(
            LeakageSource(d.value),
            d,
            None,
            f"cycles_{d.value}_",
            f"domains.{d.value}.idle_power_uw",
        )
        for d in DOMAINS
    ),
    LeakagePrice(LeakageSource.ALWAYS_ON, None, None, None, "always_on.idle_power_uw"),
    *(
        LeakagePrice(
            LeakageSource(f"{k.value}_banks"),
            BANK_DOMAIN[k],
            k,
            f"bank_cycles_{k.value}_",
            f"banks.{k.value}.leakage_uw",
        )
        for k in BankKind
    ),
)


@dataclass(frozen=True, slots=True)
class EventPrice:
    """A counted power-management event and the chip-file field that prices one of it."""

    name: str
    counter: str
    field: str


#: Events of the power-management unit (``pmu.power_counters``), priced per count.
EVENT_PRICES: tuple[EventPrice, ...] = (
    EventPrice("transition", "supply_switches", "transition.energy_nj"),
    *(
        EventPrice(f"wake_{k.value}", f"wakes_{k.value}", f"banks.{k.value}.wake_energy_pj")
        for k in BankKind
    ),
    # Per reference cycle asleep: the whole chip's sleep power.
    EventPrice("sleep", "asleep_cycles", "sleep.power_uw"),
)


class SupplyEvent(enum.Enum):
    """Events of an intermittently powered chip (chip file ``intermittent``, docs/intermittent.md).

    The PMU counts all but the boot (``SupplyPrice.counter``); the boot is one per power-up.
    """

    BOOT = "boot"  # one power-up: the analog part (reset, clock start-up) no counter sees
    CHECKPOINT_BIT = "checkpoint_bit"  # one bit written to the checkpoint store (markers too)
    RESTORE_BIT = "restore_bit"  # one bit read back from it (markers too)
    CHECKPOINT_WORD = "checkpoint_spad_read"  # one scratchpad word read for a checkpoint
    RESTORE_WORD = "restore_spad_write"  # one scratchpad word written by a restore


@dataclass(frozen=True, slots=True)
class SupplyPrice:
    """A supply event and the chip-file field (a dotted path) that prices one of it;
    ``units_per_joule`` converts the field's unit to joules (pJ: 1e12, uJ: 1e6). ``counter``: the
    PMU's power counter (``pmu.power_counters``) whose one count is ``per_count`` events (a
    chip-file field, such as the bits of a store word; None: one); None for the boot."""

    event: SupplyEvent
    field: str
    units_per_joule: float
    counter: str | None = None
    per_count: str | None = None

    def joules(self, chip: Chip) -> float:
        """Energy of one event on ``chip``."""
        value = chip_field(chip, self.field)
        if not isinstance(value, int | float):
            raise TypeError(f"chip field {self.field!r} is not a number: {value!r}")
        return float(value) / self.units_per_joule


#: The intermittent supply's events, in the order of :class:`SupplyEvent`. Scratchpad accesses of
#: checkpoints and restores are priced at ``energy.reference_v`` (docs/intermittent.md).
SUPPLY_PRICES: tuple[SupplyPrice, ...] = (
    SupplyPrice(SupplyEvent.BOOT, "intermittent.boot.energy_uj", 1e6),
    SupplyPrice(
        SupplyEvent.CHECKPOINT_BIT,
        "intermittent.checkpoint.write_pj_per_bit",
        1e12,
        "store_writes",
        "intermittent.checkpoint.word_bits",
    ),
    SupplyPrice(
        SupplyEvent.RESTORE_BIT,
        "intermittent.checkpoint.read_pj_per_bit",
        1e12,
        "store_reads",
        "intermittent.checkpoint.word_bits",
    ),
    SupplyPrice(SupplyEvent.CHECKPOINT_WORD, "energy.spad_read_pj", 1e12, "copy_reads"),
    SupplyPrice(SupplyEvent.RESTORE_WORD, "energy.spad_write_pj", 1e12, "copy_writes"),
)


def chip_field(chip: Chip, path: str) -> object:
    """The value of a chip-file field given as a dotted path (``"intermittent.boot.energy_uj"``)."""
    value: object = chip
    for part in path.split("."):
        if value is None:
            raise ValueError(f"chip {chip.name!r} has no field {path!r}")
        value = getattr(value, part)
    return value
