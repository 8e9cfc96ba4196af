"""Measured energy: the chip's counters turned into joules with the chip file's constants.

This is the co-simulation's own energy model (docs/timing-model.md, section Energy). It shares
the chip YAML and the price table (``scheduler.prices``: which counter drives which component,
in which domain, priced by which chip-file field) with the scheduler's cost model, but none of its
code: it never calls ``scheduler.cost`` and never reads a prediction back. Inputs are counter
differences over a window of the run:

- the accelerator's activity counters (``rtl.activity_counters``) over a LAUNCH, charged at the
  voltages the PMU's level counters show for that LAUNCH (dynamic energy);
- the PMU's power counters (``pmu.power_counters``) over any window: cycles per domain per
  voltage level (domain leakage), bank-cycles per bank kind per level of the kind's domain (bank
  leakage), supply switches (transitions), banks woken per kind (wake energy), asleep cycles
  (sleep power; the always-on supply leaks over the cycles the chip is not asleep, sleep power
  being the whole chip's);
- on the intermittent build, the checkpoint store's counters (store words written and read,
  markers included, and the scratchpad words the copies moved), priced by
  :data:`scheduler.prices.SUPPLY_PRICES`; the analog part of a power-up, which no counter sees,
  is the chip file's ``intermittent.boot`` per power-up (:func:`boot_energy`).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from voltflow.scheduler.chip import DOMAINS, Chip
from voltflow.scheduler.prices import (
    DYNAMIC_PRICES,
    EVENT_PRICES,
    LEAKAGE_PRICES,
    SUPPLY_PRICES,
    DynamicPrice,
    SupplyEvent,
    chip_field,
)

__all__ = [
    "DYNAMIC_COMPONENTS",
    "LEAKAGE_SOURCES",
    "Energy",
    "boot_energy",
    "dynamic_energy",
    "launch_levels",
    "window_energy",
]

#: Dynamic components (the price table's, :data:`scheduler.prices.DYNAMIC_PRICES`) and the
#: domain each is charged at (None: the always-on supply).
DYNAMIC_COMPONENTS: dict[str, str | None] = {
    p.component.value: None if p.domain is None else p.domain.value for p in DYNAMIC_PRICES
}
#: Leakage sources (:data:`scheduler.prices.LEAKAGE_PRICES`): the three domains, the always-on
#: supply, the banks by kind.
LEAKAGE_SOURCES: tuple[str, ...] = tuple(p.source.value for p in LEAKAGE_PRICES)
_EVENT_COUNTER = {p.name: p.counter for p in EVENT_PRICES}
_RESTORE_EVENTS = (SupplyEvent.RESTORE_BIT, SupplyEvent.RESTORE_WORD)


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
    checkpoint_j: float = 0.0  # store words written (markers too), scratchpad words read by SAVE
    restore_j: float = 0.0  # store words read (markers too), scratchpad words written by RESTORE
    boot_j: float = 0.0  # power-ups (the chip file's analog boot energy)

    def __add__(self, other: "Energy") -> "Energy":
        return Energy(
            {k: v + other.dynamic_j[k] for k, v in self.dynamic_j.items()},
            {k: v + other.leakage_j[k] for k, v in self.leakage_j.items()},
            self.transition_j + other.transition_j,
            self.wake_j + other.wake_j,
            self.sleep_j + other.sleep_j,
            self.checkpoint_j + other.checkpoint_j,
            self.restore_j + other.restore_j,
            self.boot_j + other.boot_j,
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
            + self.checkpoint_j
            + self.restore_j
            + self.boot_j
        )

    def to_json(self) -> dict[str, object]:
        return {
            "dynamic_j": dict(self.dynamic_j),
            "leakage_j": dict(self.leakage_j),
            "transition_j": self.transition_j,
            "wake_j": self.wake_j,
            "sleep_j": self.sleep_j,
            "checkpoint_j": self.checkpoint_j,
            "restore_j": self.restore_j,
            "boot_j": self.boot_j,
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
    pj = {p.component.value: _dynamic_pj(p, chip, activity, gating) for p in DYNAMIC_PRICES}
    e = chip.energy
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


def _dynamic_pj(
    price: DynamicPrice, chip: Chip, activity: Mapping[str, int], gating: bool
) -> float:
    """Picojoules of one component: each term's price, times the chip quantities one count
    stands for, times its counter."""
    if price.gating_only and not gating:
        return 0.0
    total = 0.0
    for i, term in enumerate(price.terms):
        pj = term.sign * getattr(chip.energy, term.energy)
        for quantity in term.per_count:
            pj = pj * getattr(chip, quantity)
        pj = pj * activity[term.counter]
        total = pj if i == 0 else total + pj
    return total


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
    asleep = _delta(after, before, _EVENT_COUNTER["sleep"])
    awake = cycles - asleep
    for price in LEAKAGE_PRICES:
        if price.domain is None or price.level_counter is None:  # the always-on supply
            uw_cycles = awake * chip.always_on_idle_uw * leak(chip.always_on_v)
        else:
            uw = (
                chip.domain(price.domain).idle_power_uw
                if price.bank is None
                else chip.bank(price.bank).leakage_uw
            )
            uw_cycles = sum(
                _delta(after, before, f"{price.level_counter}{k}") * uw * leak(v)
                for k, v in enumerate(chip.levels_v)
            )
        out.leakage_j[price.source.value] = uw_cycles * 1e-6 * seconds_per_cycle
        if price.bank is not None:
            wakes = _delta(after, before, _EVENT_COUNTER[f"wake_{price.bank.value}"])
            out.wake_j += wakes * chip.bank(price.bank).wake_energy_pj * 1e-12
    out.sleep_j = asleep * chip.sleep_power_uw * 1e-6 * seconds_per_cycle
    switches = _delta(after, before, _EVENT_COUNTER["transition"])
    out.transition_j = switches * chip.transition_energy_j
    if chip.intermittent is not None:
        for supply in SUPPLY_PRICES:
            if supply.counter is None or supply.counter not in after:
                continue
            count = _delta(after, before, supply.counter)
            per = 1 if supply.per_count is None else cast(int, chip_field(chip, supply.per_count))
            joules = count * per * supply.joules(chip)
            if supply.event in _RESTORE_EVENTS:
                out.restore_j += joules
            else:
                out.checkpoint_j += joules
    return out


def boot_energy(chip: Chip, power_ups: int = 1) -> Energy:
    """The analog part of ``power_ups`` power-ups (reset, clock start-up: the chip file's
    ``intermittent.boot.energy_uj``), which no counter sees; what the PMU does after it is in
    the counters."""
    price = next(p for p in SUPPLY_PRICES if p.event is SupplyEvent.BOOT)
    return Energy(boot_j=power_ups * price.joules(chip))
