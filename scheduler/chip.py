"""The chip description: a validated, immutable view of a ``voltflow-chip/1`` YAML file.

Every hardware number (clocks, voltages, energies, banks, transition costs) comes from the chip
file; this module holds none. It is also the one place where domain frequencies are quantised
to what the RTL's fractional clock dividers can produce.
"""

import enum
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .documents import DocumentError, parse_yaml, read_text, short

__all__ = [
    "BANK_DOMAIN",
    "DOMAINS",
    "BankKind",
    "BankSpec",
    "BootSpec",
    "CapacitorSpec",
    "CheckpointStoreSpec",
    "Chip",
    "ChipError",
    "Domain",
    "DomainSpec",
    "EnergySpec",
    "GatingPolicy",
    "IntermittentSpec",
    "ScalingLaw",
    "Sparsity",
    "TimingSpec",
    "known_chips",
    "load_chip",
    "ticks_to_ref_cycles",
]

FORMAT = "voltflow-chip/1"

#: The energy fields only a chip with ``array.sparsity`` other than none needs, with what each
#: prices (the message of a missing one).
SPARSITY_ENERGY_FIELDS: dict[str, str] = {
    "pe_mac_pj": "picojoules of pe_cycle_pj a gated MAC saves: its multiplier and adder",
    "zero_detect_pj": "picojoules of one operand's zero detection",
}
DEFAULT_CHIP = "powerflow_ref"


class ChipError(ValueError):
    """A chip file is missing, malformed or physically impossible."""


class Domain(enum.Enum):
    """A DVFS domain. The order of ``DOMAINS`` is the order of a power state's voltages."""

    SYS = "sys"
    RRAM = "rram"
    FEEDER = "feeder"


DOMAINS: tuple[Domain, ...] = (Domain.SYS, Domain.RRAM, Domain.FEEDER)


class Sparsity(enum.Enum):
    """How the array treats zero operands (chip file ``array.sparsity``; docs/sparsity.md).

    NONE: every operand pair is multiplied and accumulated. GATE: a PE whose activation or weight
    is zero holds its accumulator and multiplier inputs (energy saved, cycles kept); the operands
    are zero-detected at the array's edge. SKIP: GATE, and the array engine does not stream a
    reduction element whose activations (every row's) are all zero (energy and cycles saved).
    """

    NONE = "none"
    GATE = "gate"
    SKIP = "skip"


class ScalingLaw(enum.Enum):
    """How an energy or power at the reference voltage scales with supply voltage."""

    CONSTANT = "constant"
    LINEAR = "linear"
    QUADRATIC = "quadratic"
    CUBIC = "cubic"

    @property
    def exponent(self) -> int:
        return {"constant": 0, "linear": 1, "quadratic": 2, "cubic": 3}[self.value]

    def factor(self, voltage_v: np.ndarray | float, reference_v: float) -> np.ndarray:
        """Scale factor ``(V / V_ref) ** exponent``."""
        return (np.asarray(voltage_v, dtype=np.float64) / reference_v) ** self.exponent


class GatingPolicy(enum.Enum):
    """Which memory banks are powered while a layer runs."""

    NO_PG = "no_pg"  # every bank on
    LAYER_PG = "layer_pg"  # only scratchpad banks holding live tensors on; RRAM all on
    RRAM_PG = "rram_pg"  # as layer_pg, and only the RRAM banks of the running layer on


class BankKind(enum.Enum):
    IFMAP = "ifmap"
    OFMAP = "ofmap"
    RRAM = "rram"


#: The domain each kind of bank belongs to (its leakage scales with that domain's voltage).
BANK_DOMAIN: dict[BankKind, Domain] = {
    BankKind.IFMAP: Domain.FEEDER,
    BankKind.OFMAP: Domain.FEEDER,
    BankKind.RRAM: Domain.RRAM,
}


@dataclass(frozen=True, slots=True)
class DomainSpec:
    domain: Domain
    nominal_mhz: float
    idle_power_uw: float


@dataclass(frozen=True, slots=True)
class BankSpec:
    kind: BankKind
    size_kib: int
    count: int | None  # None: sized from the network ("auto"), at least min_count
    min_count: int
    leakage_uw: float
    volatile: bool
    wake_latency_ns: float
    wake_energy_pj: float

    @property
    def domain(self) -> Domain:
        return BANK_DOMAIN[self.kind]

    def words(self, word_bits: int) -> int:
        return self.size_kib * 1024 * 8 // word_bits


@dataclass(frozen=True, slots=True)
class EnergySpec:
    reference_v: float
    dynamic_law: ScalingLaw
    leakage_law: ScalingLaw
    pe_cycle_pj: float
    array_stagger_pj: float
    spad_read_pj: float
    spad_write_pj: float
    wbuf_read_pj: float
    wbuf_write_pj: float
    rram_read_pj: float
    rram_write_pj_per_bit: float
    lane_buffer_pj_per_bit: float
    feeder_control_pj: float
    pg_controller_pj: float
    dma_control_pj: float
    # Sparsity (optional; needed when array.sparsity is not none): the part of pe_cycle_pj a MAC's
    # multiplier and adder spend, saved when the PE is gated; one operand's zero detection.
    pe_mac_pj: float = 0.0
    zero_detect_pj: float = 0.0


@dataclass(frozen=True, slots=True)
class TimingSpec:
    step_sync_ref_cycles: int
    epoch_sync_ref_cycles: int
    op_setup_ref_cycles: int


@dataclass(frozen=True, slots=True)
class CapacitorSpec:
    """The storage capacitor of an intermittently powered chip (chip file
    ``intermittent.capacitor``): the chip turns on when it reaches ``on_v`` and browns out at
    ``off_v``; ``leakage_uw`` is its self-discharge, a constant power whenever it is charged."""

    capacitance_uf: float
    on_v: float
    off_v: float
    leakage_uw: float

    @property
    def charge_j(self) -> float:
        """Energy of one charge, ``1/2 C (V_on^2 - V_off^2)``."""
        # Products, not ``**``: a float power overflows with an exception, a product to inf.
        return 0.5 * (self.capacitance_uf / 1e6) * (self.on_v * self.on_v - self.off_v * self.off_v)

    @property
    def capacitance_f(self) -> float:
        return self.capacitance_uf / 1e6

    @property
    def leakage_w(self) -> float:
        return self.leakage_uw / 1e6

    def capacitance_for(self, energy_j: float) -> float:
        """The capacitance (F) whose one charge, in this voltage window, holds ``energy_j``."""
        return 2.0 * energy_j / (self.on_v * self.on_v - self.off_v * self.off_v)


@dataclass(frozen=True, slots=True)
class BootSpec:
    """What a power-up costs before the first layer of a power cycle (``intermittent.boot``)."""

    energy_uj: float
    latency_us: float

    @property
    def energy_j(self) -> float:
        return self.energy_uj / 1e6

    @property
    def latency_s(self) -> float:
        return self.latency_us / 1e6


@dataclass(frozen=True, slots=True)
class CheckpointStoreSpec:
    """The write-friendly non-volatile memory that keeps progress across power failures
    (``intermittent.checkpoint``): energy per bit, latency per ``word_bits`` word, the size of the
    progress marker, and whether the network output is committed to it at the end."""

    word_bits: int
    write_pj_per_bit: float
    read_pj_per_bit: float
    write_ns_per_word: float
    read_ns_per_word: float
    marker_bits: int
    commit_output: bool

    def words(self, bits: int) -> int:
        """Words of the store that ``bits`` bits occupy."""
        return -(-bits // self.word_bits)

    def write_cycles(self, reference_mhz: float) -> int:
        """Reference cycles one word write takes (whole cycles, at least one)."""
        return max(1, ns_to_cycles(self.write_ns_per_word, reference_mhz))

    def read_cycles(self, reference_mhz: float) -> int:
        """Reference cycles one word read takes (whole cycles, at least one)."""
        return max(1, ns_to_cycles(self.read_ns_per_word, reference_mhz))


@dataclass(frozen=True, slots=True)
class IntermittentSpec:
    """The supply of a battery-less chip: capacitor, boot path and checkpoint store."""

    capacitor: CapacitorSpec
    boot: BootSpec
    checkpoint: CheckpointStoreSpec


@dataclass(frozen=True, slots=True)
class Chip:
    """A validated chip. Build it with :func:`load_chip`."""

    name: str
    title: str
    source: str
    reference_mhz: float
    divider_phase_bits: int
    rows: int
    cols: int
    operand_bits: int
    accumulator_bits: int
    word_bits: int
    weight_buffer_half_kib: int
    levels_v: tuple[float, ...]
    nominal_v: float
    delay_poly: tuple[float, float, float, float]
    delay_fit_range_v: tuple[float, float]
    domains: tuple[DomainSpec, ...]  # in DOMAINS order
    always_on_v: float
    always_on_idle_uw: float
    energy: EnergySpec
    banks: tuple[BankSpec, ...]  # ifmap, ofmap, rram
    gating_policies: tuple[GatingPolicy, ...]
    rails: int
    transition_energy_nj: float
    transition_latency_ns: float
    rail_settle_ns: float
    sleep_power_uw: float
    sleep_entry_switches: int
    timing: TimingSpec
    intermittent: IntermittentSpec | None = None  # None: no ``intermittent`` section
    sparsity: Sparsity = Sparsity.NONE  # array.sparsity

    # ---- derived quantities -------------------------------------------------------------------
    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    @property
    def weight_buffer_half_words(self) -> int:
        return self.weight_buffer_half_kib * 1024 * 8 // self.word_bits

    @property
    def lanes_per_word(self) -> int:
        """Operands (bytes) per memory word: channels per channel block."""
        return self.word_bits // self.operand_bits

    def domain(self, domain: Domain) -> DomainSpec:
        return self.domains[DOMAINS.index(domain)]

    def bank(self, kind: BankKind) -> BankSpec:
        return next(b for b in self.banks if b.kind is kind)

    def delay(self, voltage_v: np.ndarray | float) -> np.ndarray:
        """The delay polynomial D(V), V clamped to the fitted range."""
        lo, hi = self.delay_fit_range_v
        v = np.clip(np.asarray(voltage_v, dtype=np.float64), lo, hi)
        c0, c1, c2, c3 = self.delay_poly
        return c0 + v * (c1 + v * (c2 + v * c3))

    def ideal_mhz(self, domain: Domain, voltage_v: np.ndarray | float) -> np.ndarray:
        """f(V) of a domain before quantisation: f_nominal * D(V_nominal) / D(V)."""
        return self.domain(domain).nominal_mhz * self.delay(self.nominal_v) / self.delay(voltage_v)

    def divider_increment(self, domain: Domain, voltage_v: np.ndarray | float) -> np.ndarray:
        """Phase increment of the domain's fractional divider at voltage V (int64).

        This is the one place frequencies are quantised: rounded down, so the clock never
        exceeds f(V) of its supply.
        """
        scale = 1 << self.divider_phase_bits
        inc = np.floor(self.ideal_mhz(domain, voltage_v) / self.reference_mhz * scale + 1e-9)
        return inc.astype(np.int64)

    def quantised_mhz(self, domain: Domain, voltage_v: np.ndarray | float) -> np.ndarray:
        """The frequency the RTL really produces at voltage V."""
        inc = self.divider_increment(domain, voltage_v)
        return self.reference_mhz * inc / (1 << self.divider_phase_bits)

    @property
    def transition_energy_j(self) -> float:
        return self.transition_energy_nj * 1e-9

    @property
    def transition_latency_s(self) -> float:
        return self.transition_latency_ns * 1e-9


def ns_to_cycles(ns: float, reference_mhz: float) -> int:
    """Reference cycles that cover ``ns`` nanoseconds, rounded up (the one place latencies are
    quantised; 1e-9 absorbs float noise such as 20 ns x 800 MHz = 16.000000000000004)."""
    return max(0, math.ceil(ns * reference_mhz / 1000.0 - 1e-9))


def ticks_to_ref_cycles(
    ticks: np.ndarray | int, increment: np.ndarray, phase_bits: int
) -> np.ndarray:
    """Reference cycles from a divider restart until the ``ticks``-th enable pulse.

    The divider adds ``increment`` to a ``phase_bits`` accumulator that starts at zero every
    reference cycle and pulses on carry-out, so pulse n comes at cycle ``ceil(n * 2^bits / inc)``.
    """
    ticks = np.asarray(ticks, dtype=np.int64)
    return -((-ticks << phase_bits) // increment)


# ---- loading -------------------------------------------------------------------------------------
def known_chips() -> tuple[str, ...]:
    folder = resources.files(__package__) / "hardware"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")))


def load_chip(name_or_path: str | os.PathLike[str] = DEFAULT_CHIP) -> Chip:
    """Load a chip by name (package data) or from a YAML file path.

    A chip file may start from another (``extends: <chip name or path>``, a path relative to the
    file): its mappings are merged into the base's, field by field; any other value (a list
    too) replaces the base's.
    """
    raw, label = _raw_chip(name_or_path, ())
    return _Reader(label).chip(raw)


def _raw_chip(name_or_path: str | os.PathLike[str], seen: tuple[str, ...]) -> tuple[Any, str]:
    """The parsed chip document (its ``extends`` resolved) and the label errors name."""
    text_path = str(name_or_path)
    if text_path.endswith((".yaml", ".yml")) or os.sep in text_path:
        path = Path(text_path)
        if not path.exists():
            raise ChipError(f"{path}: no such chip file")
        label = path.name
        try:
            text = read_text(path, label)
        except DocumentError as exc:
            raise ChipError(str(exc)) from None
        folder: Path | None = path.parent
    else:
        if text_path not in known_chips():
            raise ChipError(
                f"unknown chip {short(text_path)}; known chips: {', '.join(known_chips())} "
                "(or give a path to a .yaml file)"
            )
        text = (resources.files(__package__) / "hardware" / f"{text_path}.yaml").read_text()
        label = f"{text_path}.yaml"
        folder = None
    try:
        raw = parse_yaml(text, label)
    except DocumentError as exc:
        if exc.problem is None:
            raise ChipError(str(exc)) from None
        where = f"{exc.where}: " if exc.where else ""
        raise ChipError(f"{label}: not valid YAML: {where}{exc.problem}") from None
    if not isinstance(raw, Mapping) or "extends" not in raw:
        return raw, label
    base = raw["extends"]
    if not isinstance(base, str) or not base:
        raise ChipError(
            f"{label}: extends: must be a chip name or a path to a chip file, not {short(base)}"
        )
    if label in seen:
        raise ChipError(f"{label}: extends: {' -> '.join((*seen, label))} is a loop")
    is_path = base.endswith((".yaml", ".yml")) or "/" in base or os.sep in base
    source: str | Path = folder / base if is_path and folder is not None else base
    base_raw, base_label = _raw_chip(source, (*seen, label))
    if not isinstance(base_raw, Mapping):
        return base_raw, base_label
    merged = _merge(base_raw, {k: v for k, v in raw.items() if k != "extends"})
    return merged, f"{label} (extends {base_label})"


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over``'s fields: mappings merged recursively, other values replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _Reader:
    """Reads one chip file, naming the file and field path in every error."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, path: str, value: Any, allowed: str) -> ChipError:
        return ChipError(f"{self.label}: {path}: must be {allowed}, not {short(value)}")

    def mapping(
        self, raw: Any, path: str, keys: set[str], optional: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise self.fail(path or "top level", raw, "a mapping")
        unknown = set(raw) - keys - optional
        if unknown:
            raise ChipError(
                f"{self.label}: {path + '.' if path else ''}{sorted(unknown)[0]}: unknown field; "
                f"allowed: {', '.join(sorted(keys | optional))}"
            )
        missing = keys - set(raw)
        if missing:
            raise ChipError(
                f"{self.label}: {path + '.' if path else ''}{sorted(missing)[0]}: missing"
            )
        return dict(raw)

    def number(
        self, raw: Any, path: str, *, positive: bool = False, lo: float | None = None
    ) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise self.fail(path, raw, "a finite number")
        if positive and raw <= 0:
            raise self.fail(path, raw, "a positive number")
        if lo is not None and raw < lo:
            raise self.fail(path, raw, f"a number >= {lo:g}")
        return float(raw)

    def integer(self, raw: Any, path: str, *, lo: int = 0) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < lo:
            raise self.fail(path, raw, f"an integer >= {lo}")
        return raw

    def text(self, raw: Any, path: str) -> str:
        if not isinstance(raw, str) or not raw:
            raise self.fail(path, raw, "a non-empty string")
        return raw

    def enum(self, cls: type[enum.Enum], raw: Any, path: str) -> Any:
        try:
            return cls(raw)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            raise self.fail(path, raw, f"one of {allowed}") from None

    def chip(self, raw: Any) -> Chip:
        top = self.mapping(
            raw,
            "",
            {
                "format", "name", "title", "source", "clock", "array", "word_bits", "buffers",
                "voltage",
                "domains", "always_on", "energy", "banks", "gating_policies", "rails",
                "transition", "sleep", "timing",
            },
            frozenset({"intermittent"}),
        )  # fmt: skip
        if top["format"] != FORMAT:
            raise self.fail("format", top["format"], repr(FORMAT))
        clock = self.mapping(top["clock"], "clock", {"reference_mhz", "divider_phase_bits"})
        reference_mhz = self.number(clock["reference_mhz"], "clock.reference_mhz", positive=True)
        phase_bits = self.integer(clock["divider_phase_bits"], "clock.divider_phase_bits", lo=4)
        if phase_bits > 32:
            raise self.fail("clock.divider_phase_bits", phase_bits, "an integer in 4..32")
        array = self.mapping(
            top["array"],
            "array",
            {"rows", "cols", "operand_bits", "accumulator_bits"},
            frozenset({"sparsity"}),
        )
        sparsity = self.enum(Sparsity, array.get("sparsity", "none"), "array.sparsity")
        rows = self.integer(array["rows"], "array.rows", lo=1)
        cols = self.integer(array["cols"], "array.cols", lo=1)
        operand_bits = self.integer(array["operand_bits"], "array.operand_bits", lo=1)
        acc_bits = self.integer(array["accumulator_bits"], "array.accumulator_bits", lo=1)
        word_bits = self.integer(top["word_bits"], "word_bits", lo=8)
        if word_bits % operand_bits or word_bits // operand_bits != cols:
            raise self.fail(
                "word_bits", word_bits, f"array.cols x array.operand_bits = {cols * operand_bits}"
            )

        buffers = self.mapping(top["buffers"], "buffers", {"weight_buffer_half_kib"})
        wbuf_kib = self.integer(
            buffers["weight_buffer_half_kib"], "buffers.weight_buffer_half_kib", lo=1
        )
        volt = self.mapping(
            top["voltage"], "voltage", {"levels_v", "nominal_v", "delay_poly", "delay_fit_range_v"}
        )
        levels_raw = volt["levels_v"]
        if not isinstance(levels_raw, list) or not levels_raw:
            raise self.fail("voltage.levels_v", levels_raw, "a non-empty list of voltages")
        levels = tuple(
            self.number(v, f"voltage.levels_v[{i}]", positive=True)
            for i, v in enumerate(levels_raw)
        )
        if list(levels) != sorted(set(levels)):
            raise self.fail("voltage.levels_v", levels_raw, "strictly increasing voltages")
        poly_raw = volt["delay_poly"]
        if not isinstance(poly_raw, list) or len(poly_raw) != 4:
            raise self.fail("voltage.delay_poly", poly_raw, "4 coefficients [c0, c1, c2, c3]")
        poly = tuple(self.number(c, f"voltage.delay_poly[{i}]") for i, c in enumerate(poly_raw))
        fit_raw = volt["delay_fit_range_v"]
        if not isinstance(fit_raw, list) or len(fit_raw) != 2:
            raise self.fail("voltage.delay_fit_range_v", fit_raw, "[low_v, high_v]")
        fit = (
            self.number(fit_raw[0], "voltage.delay_fit_range_v[0]", positive=True),
            self.number(fit_raw[1], "voltage.delay_fit_range_v[1]", positive=True),
        )
        if fit[0] >= fit[1]:
            raise self.fail("voltage.delay_fit_range_v", fit_raw, "[low_v, high_v] with low < high")
        for i, v in enumerate(levels):
            if not fit[0] - 1e-9 <= v <= fit[1] + 1e-9:
                raise self.fail(
                    f"voltage.levels_v[{i}]", v, f"inside delay_fit_range_v [{fit[0]}, {fit[1]}]"
                )
        nominal_v = self.number(volt["nominal_v"], "voltage.nominal_v", positive=True)
        if not any(abs(nominal_v - v) < 1e-9 for v in levels):
            raise self.fail("voltage.nominal_v", nominal_v, "one of voltage.levels_v")

        dom_raw = self.mapping(top["domains"], "domains", {d.value for d in DOMAINS})
        domains = []
        for d in DOMAINS:
            spec = self.mapping(
                dom_raw[d.value], f"domains.{d.value}", {"nominal_mhz", "idle_power_uw"}
            )
            domains.append(
                DomainSpec(
                    d,
                    self.number(
                        spec["nominal_mhz"], f"domains.{d.value}.nominal_mhz", positive=True
                    ),
                    self.number(spec["idle_power_uw"], f"domains.{d.value}.idle_power_uw", lo=0),
                )
            )
        aon = self.mapping(top["always_on"], "always_on", {"voltage_v", "idle_power_uw"})

        en_optional = frozenset(SPARSITY_ENERGY_FIELDS)
        en_fields = {f for f in EnergySpec.__dataclass_fields__} - en_optional
        en = self.mapping(top["energy"], "energy", en_fields, en_optional)
        energy_kwargs: dict[str, Any] = {}
        for f, what in SPARSITY_ENERGY_FIELDS.items():
            if f in en:
                energy_kwargs[f] = self.number(en[f], f"energy.{f}", lo=0)
            elif sparsity is not Sparsity.NONE:
                raise ChipError(
                    f"{self.label}: energy.{f}: missing; array.sparsity: {sparsity.value} needs "
                    f"it ({what}); add it to the energy section or set array.sparsity: none"
                )
        for f in sorted(en_fields):
            if f in ("dynamic_law", "leakage_law"):
                energy_kwargs[f] = self.enum(ScalingLaw, en[f], f"energy.{f}")
            elif f == "reference_v":
                energy_kwargs[f] = self.number(en[f], "energy.reference_v", positive=True)
            else:
                energy_kwargs[f] = self.number(en[f], f"energy.{f}", lo=0)
        if energy_kwargs.get("pe_mac_pj", 0.0) > energy_kwargs["pe_cycle_pj"]:
            raise self.fail(
                "energy.pe_mac_pj",
                en["pe_mac_pj"],
                f"at most energy.pe_cycle_pj = {en['pe_cycle_pj']} (it is the part of a PE "
                "cycle that gating saves)",
            )
        energy = EnergySpec(**energy_kwargs)

        banks_raw = self.mapping(top["banks"], "banks", {k.value for k in BankKind})
        banks = []
        for kind in BankKind:
            path = f"banks.{kind.value}"
            b = self.mapping(
                banks_raw[kind.value],
                path,
                {
                    "size_kib",
                    "count",
                    "leakage_uw",
                    "volatile",
                    "wake_latency_ns",
                    "wake_energy_pj",
                },
                frozenset({"min_count"}),
            )
            if b["count"] == "auto":
                count = None
            else:
                count = self.integer(b["count"], f"{path}.count", lo=1)
            min_count = self.integer(b.get("min_count", 1), f"{path}.min_count", lo=1)
            if not isinstance(b["volatile"], bool):
                raise self.fail(f"{path}.volatile", b["volatile"], "true or false")
            banks.append(
                BankSpec(
                    kind,
                    self.integer(b["size_kib"], f"{path}.size_kib", lo=1),
                    count,
                    min_count,
                    self.number(b["leakage_uw"], f"{path}.leakage_uw", lo=0),
                    b["volatile"],
                    self.number(b["wake_latency_ns"], f"{path}.wake_latency_ns", lo=0),
                    self.number(b["wake_energy_pj"], f"{path}.wake_energy_pj", lo=0),
                )
            )

        pol_raw = top["gating_policies"]
        if not isinstance(pol_raw, list) or not pol_raw:
            raise self.fail("gating_policies", pol_raw, "a non-empty list of policies")
        policies = tuple(
            self.enum(GatingPolicy, p, f"gating_policies[{i}]") for i, p in enumerate(pol_raw)
        )
        rails = self.integer(top["rails"], "rails", lo=1)
        tr = self.mapping(
            top["transition"], "transition", {"energy_nj", "latency_ns", "rail_settle_ns"}
        )
        sl = self.mapping(top["sleep"], "sleep", {"power_uw", "entry_switches"})
        tm = self.mapping(top["timing"], "timing", set(TimingSpec.__dataclass_fields__))

        chip = Chip(
            name=self.text(top["name"], "name"),
            title=self.text(top["title"], "title"),
            source=self.text(top["source"], "source"),
            reference_mhz=reference_mhz,
            divider_phase_bits=phase_bits,
            rows=rows,
            cols=cols,
            operand_bits=operand_bits,
            accumulator_bits=acc_bits,
            word_bits=word_bits,
            weight_buffer_half_kib=wbuf_kib,
            levels_v=levels,
            nominal_v=nominal_v,
            delay_poly=poly,  # type: ignore[arg-type]
            delay_fit_range_v=fit,
            domains=tuple(domains),
            always_on_v=self.number(aon["voltage_v"], "always_on.voltage_v", positive=True),
            always_on_idle_uw=self.number(aon["idle_power_uw"], "always_on.idle_power_uw", lo=0),
            energy=energy,
            banks=tuple(banks),
            gating_policies=policies,
            rails=rails,
            transition_energy_nj=self.number(tr["energy_nj"], "transition.energy_nj", lo=0),
            transition_latency_ns=self.number(tr["latency_ns"], "transition.latency_ns", lo=0),
            rail_settle_ns=self.number(tr["rail_settle_ns"], "transition.rail_settle_ns", lo=0),
            sleep_power_uw=self.number(sl["power_uw"], "sleep.power_uw", lo=0),
            sleep_entry_switches=self.integer(sl["entry_switches"], "sleep.entry_switches"),
            timing=TimingSpec(
                **{f: self.integer(tm[f], f"timing.{f}") for f in TimingSpec.__dataclass_fields__}
            ),
            intermittent=(
                self.intermittent(top["intermittent"], word_bits) if "intermittent" in top else None
            ),
            sparsity=sparsity,
        )
        self.check_physics(chip)
        return chip

    def intermittent(self, raw: Any, word_bits: int) -> IntermittentSpec:
        """The optional ``intermittent`` section (docs/intermittent.md)."""
        sec = self.mapping(raw, "intermittent", {"capacitor", "boot", "checkpoint"})
        cap = self.mapping(
            sec["capacitor"],
            "intermittent.capacitor",
            {"capacitance_uf", "on_v", "off_v"},
            frozenset({"leakage_uw"}),
        )
        on_v = self.number(cap["on_v"], "intermittent.capacitor.on_v", positive=True)
        off_v = self.number(cap["off_v"], "intermittent.capacitor.off_v", positive=True)
        if off_v >= on_v:
            raise self.fail(
                "intermittent.capacitor.off_v",
                cap["off_v"],
                f"below on_v = {on_v:g} V (the chip turns on at on_v and browns out at off_v; "
                "lower off_v or raise on_v)",
            )
        capacitor = CapacitorSpec(
            capacitance_uf=self.number(
                cap["capacitance_uf"], "intermittent.capacitor.capacitance_uf", positive=True
            ),
            on_v=on_v,
            off_v=off_v,
            leakage_uw=self.number(
                cap.get("leakage_uw", 0.0), "intermittent.capacitor.leakage_uw", lo=0
            ),
        )
        bt = self.mapping(sec["boot"], "intermittent.boot", {"energy_uj", "latency_us"})
        boot = BootSpec(
            energy_uj=self.number(bt["energy_uj"], "intermittent.boot.energy_uj", lo=0),
            latency_us=self.number(bt["latency_us"], "intermittent.boot.latency_us", lo=0),
        )
        boot_j = boot.energy_j + capacitor.leakage_w * boot.latency_s
        if boot_j >= capacitor.charge_j:
            raise self.fail(
                "intermittent.boot.energy_uj",
                bt["energy_uj"],
                f"less than one charge of the capacitor, 1/2 C (V_on^2 - V_off^2) = "
                f"{capacitor.charge_j * 1e6:.6g} uJ (booting takes {boot_j * 1e6:.6g} uJ with "
                "the capacitor's leakage); raise intermittent.capacitor.capacitance_uf or widen "
                "on_v - off_v",
            )
        ck = self.mapping(
            sec["checkpoint"],
            "intermittent.checkpoint",
            {
                "word_bits", "write_pj_per_bit", "read_pj_per_bit", "write_ns_per_word",
                "read_ns_per_word", "marker_bits", "commit_output",
            },
        )  # fmt: skip
        path = "intermittent.checkpoint"
        if not isinstance(ck["commit_output"], bool):
            raise self.fail(f"{path}.commit_output", ck["commit_output"], "true or false")
        store = CheckpointStoreSpec(
            word_bits=self.integer(ck["word_bits"], f"{path}.word_bits", lo=1),
            write_pj_per_bit=self.number(ck["write_pj_per_bit"], f"{path}.write_pj_per_bit", lo=0),
            read_pj_per_bit=self.number(ck["read_pj_per_bit"], f"{path}.read_pj_per_bit", lo=0),
            write_ns_per_word=self.number(
                ck["write_ns_per_word"], f"{path}.write_ns_per_word", lo=0
            ),
            read_ns_per_word=self.number(ck["read_ns_per_word"], f"{path}.read_ns_per_word", lo=0),
            marker_bits=self.integer(ck["marker_bits"], f"{path}.marker_bits"),
            commit_output=ck["commit_output"],
        )
        if store.word_bits != word_bits:
            raise self.fail(
                f"{path}.word_bits",
                ck["word_bits"],
                f"the scratchpad's word_bits = {word_bits} (a checkpoint copies one scratchpad "
                "word per store word)",
            )
        if store.marker_bits != store.word_bits:
            raise self.fail(
                f"{path}.marker_bits",
                ck["marker_bits"],
                f"one store word, {store.word_bits} bits (the commit protocol writes the marker "
                "in one atomic word write)",
            )
        return IntermittentSpec(capacitor, boot, store)

    def check_physics(self, chip: Chip) -> None:
        """Reject what no real chip can do, before any computation uses it."""
        lo, hi = chip.delay_fit_range_v
        grid = np.linspace(lo, hi, 81)
        delay = chip.delay(grid)
        if np.any(delay <= 0):
            raise self.fail(
                "voltage.delay_poly", list(chip.delay_poly), "positive on delay_fit_range_v"
            )
        if np.any(np.diff(delay) > 1e-9 * np.abs(delay[:-1])):
            raise self.fail(
                "voltage.delay_poly",
                list(chip.delay_poly),
                "non-increasing in V on delay_fit_range_v (a higher voltage must not be slower)",
            )
        for spec in chip.domains:
            top_mhz = float(chip.ideal_mhz(spec.domain, max(chip.levels_v)))
            if top_mhz > chip.reference_mhz:
                raise self.fail(
                    f"domains.{spec.domain.value}.nominal_mhz",
                    spec.nominal_mhz,
                    f"such that f({max(chip.levels_v)} V) = {top_mhz:.1f} MHz does not exceed "
                    f"clock.reference_mhz = {chip.reference_mhz:g} (a clock enable cannot fire "
                    "twice per reference cycle)",
                )
            if int(chip.divider_increment(spec.domain, min(chip.levels_v))) < 1:
                raise self.fail(
                    "clock.divider_phase_bits",
                    chip.divider_phase_bits,
                    f"large enough to produce {spec.domain.value}'s slowest frequency",
                )
