"""Measured energy: the chip's counters turned into joules with the chip file's constants.

This is the co-simulation's own energy model (docs/timing-model.md, section Energy). It shares
the chip YAML with the scheduler's cost model but none of its code: it never calls
``scheduler.cost`` and never reads a prediction back. Inputs are counter differences over a
window of the run:

- the accelerator's activity counters (``rtl.activity_counters``) over a LAUNCH, charged at the
  voltages the PMU's level counters show for that LAUNCH (dynamic energy);
- the PMU's power counters (``pmu.power_counters``) over any window: cycles per domain per
  voltage level (domain leakage), bank-cycles per bank kind per level of the kind's domain (bank
  leakage), supply switches (transitions), banks woken per kind (wake energy), asleep cycles
  (sleep power; the always-on supply leaks over the cycles the chip is not asleep, sleep power
  being the whole chip's).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from voltflow.scheduler.chip import DOMAINS, BankKind, Chip

__all__ = [
    "DYNAMIC_COMPONENTS",
    "LEAKAGE_SOURCES",
    "Energy",
    "dynamic_energy",
    "launch_levels",
    "window_energy",
]

#: Dynamic components (the same labels as the cost model's) and the domain each is charged at
#: (None: the always-on supply).
DYNAMIC_COMPONENTS: dict[str, str | None] = {
    "pe": "sys",
    "array": "sys",
    "pg_ctrl": None,
    "feeder": "feeder",
    "spad": "feeder",
    "lane": "feeder",
    "rram": "rram",
    "wbuf": "rram",
    "dma": "rram",
}
#: Leakage sources: the three domains, the always-on supply, the banks by kind.
LEAKAGE_SOURCES = (
    *(d.value for d in DOMAINS),
    "always_on",
    *(f"{k.value}_banks" for k in BankKind),
)


@dataclass(slots=True)
class Energy:
    """Energy by kind (joules); adds up with ``+``."""

    dynamic_j: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(DYNAMIC_COMPONENTS, 0.0)
    )
    leakage_j: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEAKAGE_SOURCES, 0.0))
    transition_j: float = 0.0
    wake_j: float = 0.0
    sleep_j: float = 0.0

    def __add__(self, other: "Energy") -> "Energy":
        return Energy(
            {k: v + other.dynamic_j[k] for k, v in self.dynamic_j.items()},
            {k: v + other.leakage_j[k] for k, v in self.leakage_j.items()},
            self.transition_j + other.transition_j,
            self.wake_j + other.wake_j,
            self.sleep_j + other.sleep_j,
        )

    @property
    def dynamic_total_j(self) -> float:
        return sum(self.dynamic_j.values())

    @property
    def leakage_total_j(self) -> float:
        return sum(self.leakage_j.values())

    @property
    def total_j(self) -> float:
        return (
            self.dynamic_total_j
            + self.leakage_total_j
            + self.transition_j
            + self.wake_j
            + self.sleep_j
        )

    def to_json(self) -> dict[str, object]:
        return {
            "dynamic_j": dict(self.dynamic_j),
            "leakage_j": dict(self.leakage_j),
            "transition_j": self.transition_j,
            "wake_j": self.wake_j,
            "sleep_j": self.sleep_j,
            "total_j": self.total_j,
        }


def _delta(after: Mapping[str, int], before: Mapping[str, int] | None, name: str) -> int:
    return int(after[name]) - (int(before[name]) if before is not None else 0)


def launch_levels(
    chip: Chip, after: Mapping[str, int], before: Mapping[str, int] | None
) -> dict[str, int | None]:
    """Per domain, the voltage level it held over a window (None: unpowered throughout).

    Raises ValueError if a domain changed level inside the window (a LAUNCH runs in one state).
    """
    levels: dict[str, int | None] = {}
    for d in DOMAINS:
        seen = [
            k
            for k in range(len(chip.levels_v))
            if _delta(after, before, f"cycles_{d.value}_{k}") > 0
        ]
        if len(seen) > 1:
            raise ValueError(f"domain {d.value} changed voltage level inside a LAUNCH: {seen}")
        levels[d.value] = seen[0] if seen else None
    return levels


def dynamic_energy(
    chip: Chip,
    activity: Mapping[str, int],
    levels: Mapping[str, int | None],
    *,
    gating: bool,
) -> Energy:
    """Dynamic energy of accelerator activity (``rtl.activity_counters`` differences) run with
    each domain at the voltage level ``levels[domain]``; ``gating``: a bank-gating policy is
    active, so the power-gating controller is clocked with the array."""
    e = chip.energy
    pj = {
        "pe": e.pe_cycle_pj * chip.rows * chip.cols * activity["sys_ticks"],
        "array": e.array_stagger_pj * activity["sys_ticks"],
        "pg_ctrl": e.pg_controller_pj * activity["sys_ticks"] if gating else 0.0,
        "feeder": e.feeder_control_pj * activity["feeder_ticks"],
        "spad": e.spad_read_pj * activity["spad_reads"] + e.spad_write_pj * activity["spad_writes"],
        "lane": e.lane_buffer_pj_per_bit * chip.word_bits * activity["lane_words"],
        "rram": e.rram_read_pj * activity["rram_reads"],
        "wbuf": e.wbuf_read_pj * activity["wbuf_reads"] + e.wbuf_write_pj * activity["wbuf_writes"],
        "dma": e.dma_control_pj * activity["dma_beats"],
    }
    out = Energy()
    for name, domain in DYNAMIC_COMPONENTS.items():
        if not pj[name]:
            continue
        if domain is None:
            volts = chip.always_on_v
        else:
            level = levels[domain]
            if level is None:
                raise ValueError(f"activity in domain {domain} while it is unpowered")
            volts = chip.levels_v[level]
        out.dynamic_j[name] = pj[name] * 1e-12 * float(e.dynamic_law.factor(volts, e.reference_v))
    return out


def window_energy(
    chip: Chip,
    after: Mapping[str, int],
    before: Mapping[str, int] | None,
    cycles: int,
) -> Energy:
    """Leakage, transition, wake and sleep energy of a window of ``cycles`` reference cycles
    from the PMU's counters at its end (``after``) and start (``before``; None: reset)."""
    e = chip.energy
    seconds_per_cycle = 1.0 / (chip.reference_mhz * 1e6)

    def leak(volts: float) -> float:
        return float(e.leakage_law.factor(volts, e.reference_v))

    out = Energy()
    for d in DOMAINS:
        uw = chip.domain(d).idle_power_uw
        out.leakage_j[d.value] = (
            sum(
                _delta(after, before, f"cycles_{d.value}_{k}") * uw * leak(v)
                for k, v in enumerate(chip.levels_v)
            )
            * 1e-6
            * seconds_per_cycle
        )
    for kind in BankKind:
        uw = chip.bank(kind).leakage_uw
        out.leakage_j[f"{kind.value}_banks"] = (
            sum(
                _delta(after, before, f"bank_cycles_{kind.value}_{k}") * uw * leak(v)
                for k, v in enumerate(chip.levels_v)
            )
            * 1e-6
            * seconds_per_cycle
        )
        out.wake_j += (
            _delta(after, before, f"wakes_{kind.value}") * chip.bank(kind).wake_energy_pj * 1e-12
        )
    asleep = _delta(after, before, "asleep_cycles")
    awake = cycles - asleep
    out.leakage_j["always_on"] = (
        awake * chip.always_on_idle_uw * leak(chip.always_on_v) * 1e-6 * seconds_per_cycle
    )
    out.sleep_j = asleep * chip.sleep_power_uw * 1e-6 * seconds_per_cycle
    out.transition_j = _delta(after, before, "supply_switches") * chip.transition_energy_j
    return out
