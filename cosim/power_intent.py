"""The chip's power intent as data: power domains, supplies, switches, isolation, level shifters
and the power states, for one build of a chip.

Every number comes from the chip file (rails, voltage grid, always-on voltage) and the build
(bank counts); every design name from the RTL (:func:`voltflow.rtl.chip_top.power_wiring`).
``cosim/upf.py`` writes it as UPF; docs/upf.md explains the model.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from voltflow.hw.widths import GROUP_BANKS
from voltflow.pmu.compiler import (
    CompileError,
    compile_schedule,
    descriptor_works,
    launch_cycles,
)
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.isa import ErrorCode
from voltflow.pmu.timing import SupplyState, predict
from voltflow.rtl.chip_top import PowerWiring
from voltflow.scheduler.chip import BANK_DOMAIN, DOMAINS, BankKind, Chip, Domain
from voltflow.scheduler.cost import CostTable
from voltflow.scheduler.schedule import ScheduleFile

__all__ = [
    "OFF",
    "Isolation",
    "LevelShifter",
    "PortAttributes",
    "PowerDomain",
    "PowerIntent",
    "PowerStateTable",
    "PowerSwitch",
    "PstRow",
    "SupplyPort",
    "SupplySet",
    "TracedState",
    "build_power_intent",
    "schedule_supply_states",
    "state_name",
    "volts_text",
]

#: The state of a supply that is off.
OFF = "OFF"
AON = "AON"
GROUND = "VSS"


def volts_text(volts: float) -> str:
    """A voltage as written in the UPF: ``1.10`` (two decimals at least, more if it has them)."""
    whole, _, frac = f"{volts:.6f}".rstrip("0").partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def state_name(volts: float) -> str:
    """The port state of a voltage: ``V1P10`` for 1.10 V."""
    return "V" + volts_text(volts).replace(".", "P")


# ---- the intent ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SupplyPort:
    """A supply port of the chip and the net of the same name (``"in"``: from a regulator or
    the board; ``"out"``: to a bank macro), with its states (name, volts; None is off)."""

    name: str
    direction: str
    states: tuple[tuple[str, float | None], ...]
    comment: str
    bank: int | None = None  # the bank it supplies


@dataclass(frozen=True, slots=True)
class SupplySet:
    name: str
    power: str
    ground: str


@dataclass(frozen=True, slots=True)
class PowerDomain:
    """A power domain: its instances (``.``: the top scope) and primary supply set; a bank
    group's domain has no instances here and lists its ``banks`` (global indices)."""

    name: str
    elements: tuple[str, ...]
    supply_set: str
    comment: str
    banks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PowerSwitch:
    """A power switch: its output net (``vout``), inputs, control ports (name, design signal),
    on states (state, input port, boolean) and off state, and the states of its output."""

    name: str
    domain: str
    output: tuple[str, str]
    inputs: tuple[tuple[str, str], ...]
    controls: tuple[tuple[str, str], ...]
    on_states: tuple[tuple[str, str, str], ...]
    off_state: tuple[str, str]
    output_states: tuple[tuple[str, float | None], ...]
    comment: str
    bank: int | None = None  # the bank it powers


@dataclass(frozen=True, slots=True)
class Isolation:
    name: str
    domain: str
    elements: tuple[str, ...]  # empty: every port the strategy applies to
    applies_to: str
    signal: str
    sense: str
    clamp: int
    supply_set: str
    location: str
    comment: str


@dataclass(frozen=True, slots=True)
class LevelShifter:
    """A level-shifter strategy on ``domain``'s ports (``elements``: only these), for signals
    from ``source`` or to ``sink`` (supply sets); the rule is ``both``: either side may be the
    higher voltage."""

    name: str
    domain: str
    applies_to: str
    source: str | None
    sink: str | None
    elements: tuple[str, ...] = ()
    rule: str = "both"
    location: str = "self"


@dataclass(frozen=True, slots=True)
class PortAttributes:
    """The supply on the far side of chip ports: ``driver`` (inputs) or ``receiver`` (outputs)."""

    ports: tuple[str, ...]
    driver: str | None
    receiver: str | None
    comment: str


@dataclass(frozen=True, slots=True)
class PstRow:
    """A power state: one port state per supply of the table, and where the chip is in it."""

    name: str
    states: tuple[str, ...]
    where: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PowerStateTable:
    name: str
    supplies: tuple[str, ...]
    rows: tuple[PstRow, ...]
    comment: str


@dataclass(frozen=True, slots=True)
class PowerIntent:
    """Everything the UPF states, in the order it is written."""

    chip: str
    top: str
    bank_counts: tuple[tuple[BankKind, int], ...]
    ports: tuple[SupplyPort, ...]
    switched_nets: tuple[str, ...]
    supply_sets: tuple[SupplySet, ...]
    domains: tuple[PowerDomain, ...]
    switches: tuple[PowerSwitch, ...]
    isolation: tuple[Isolation, ...]
    level_shifters: tuple[LevelShifter, ...]
    port_attributes: tuple[PortAttributes, ...]
    pst: PowerStateTable
    schedule: str | None


# ---- the states a schedule's program passes through -------------------------------------------
@dataclass(frozen=True, slots=True)
class TracedState:
    """A supply state the PMU program reaches, and the commands that reach it (listing
    comments; ``reset`` for the state after reset)."""

    state: SupplyState
    where: tuple[str, ...]


def schedule_supply_states(
    schedule: ScheduleFile, table: CostTable, counts: dict[BankKind, int]
) -> tuple[TracedState, ...]:
    """Every distinct supply state of ``schedule``'s PMU program, in the order it is first
    reached: the program is compiled for two frames (so the second frame starts from the state
    the first ends in) and replayed on the exact PMU model (``pmu.timing.predict``)."""
    program = compile_schedule(schedule, table, frames=2, hardware_counts=counts)
    config = PmuConfig.from_chip(table.chip, counts)
    descriptors = descriptor_works(table)
    seen: dict[SupplyState, list[str]] = {}

    def record(pc: int | None, state: SupplyState) -> None:
        why = "reset" if pc is None else program.comments[pc] or f"command {pc:04x}"
        where = seen.setdefault(state, [])
        if why not in where:
            where.append(why)

    outcome = predict(
        program.words,
        config,
        launch_cycles(table.chip, descriptors),
        program_ops=len(descriptors),
        on_supply=record,
    )
    if outcome.error is not ErrorCode.NONE:
        raise CompileError(
            f"the PMU would stop with {outcome.error.name} at command {outcome.error_pc:04x}"
        )
    return tuple(TracedState(state, tuple(where)) for state, where in seen.items())


# ---- building ----------------------------------------------------------------------------------
# Names: the four chip domains are a DVFS Domain or None (always-on).
def _tag(domain: Domain | None) -> str:
    return AON if domain is None else domain.value.upper()


def _pd(domain: Domain | None) -> str:
    return f"PD_{_tag(domain)}"


def _ss(domain: Domain | None) -> str:
    return f"SS_{_tag(domain)}"


def _vdd(domain: Domain | None) -> str:
    return f"VDD_{_tag(domain)}"


def _rail(r: int) -> str:
    return f"VDD_RAIL{r}"


def _bank_net(b: int) -> str:
    return f"VDD_BANK{b}"


def _group_pd(group: int, domain: Domain) -> str:
    return f"PD_BANKS_G{group}_{_tag(domain)}"


def _can_differ(chip: Chip, a: Domain | None, b: Domain | None) -> bool:
    """Whether the supplies of two of the four domains can have different voltages: a DVFS
    domain takes any grid level, two DVFS domains differ only on two rails."""
    if a is None and b is None:
        return False
    if a is None or b is None:
        return any(abs(v - chip.always_on_v) > 1e-9 for v in chip.levels_v)
    return chip.rails >= 2 and len(chip.levels_v) >= 2


def _bit(name: str, index: int, width: int) -> str:
    """Bit ``index`` of a port (a 1-bit port is used whole: a scalar has no bit-select)."""
    return name if width == 1 else f"{name}[{index}]"


def _levels(chip: Chip) -> tuple[tuple[str, float | None], ...]:
    """The states of a supply that takes any grid level or is off."""
    return (*((state_name(v), v) for v in chip.levels_v), (OFF, None))


def _bank_groups(pmu: PmuConfig) -> dict[tuple[int, Domain], list[int]]:
    """The banks (global order) by GATE/WAKE group (32 per group) and the domain supplying them."""
    groups: dict[tuple[int, Domain], list[int]] = {}
    for b, bank in enumerate(pmu.banks):
        groups.setdefault((b // GROUP_BANKS, BANK_DOMAIN[bank.kind]), []).append(b)
    return groups


def _supply_ports(chip: Chip, pmu: PmuConfig) -> list[SupplyPort]:
    ports = [
        SupplyPort(GROUND, "in", (), "ground"),
        SupplyPort(
            _vdd(None),
            "in",
            ((state_name(chip.always_on_v), chip.always_on_v),),
            "always-on supply (always_on.voltage_v): PMU, layer sequencer, counters",
        ),
    ]
    ports += [
        SupplyPort(
            _rail(r), "in", _levels(chip), f"rail {r}: a regulator the PMU programs (SET_RAIL)"
        )
        for r in range(chip.rails)
    ]
    ports += [
        SupplyPort(
            _bank_net(b),
            "out",
            (),
            f"bank {b} ({bank.kind.value}): switched supply to the bank's array",
            bank=b,
        )
        for b, bank in enumerate(pmu.banks)
    ]
    return ports


def _domains(pmu: PmuConfig, wiring: PowerWiring) -> list[PowerDomain]:
    blocks: dict[Domain, list[str]] = {}
    for path, domain in wiring.blocks:
        blocks.setdefault(domain, []).append(path)
    domains = [
        PowerDomain(
            _pd(None),
            (".",),
            _ss(None),
            "the chip top: PMU, layer sequencer and clock dividers, activity counters, glue, "
            "and the isolation at the memory ports",
        )
    ]
    domains += [
        PowerDomain(_pd(d), tuple(blocks.get(d, ())), _ss(d), f"DVFS domain {d.value}")
        for d in DOMAINS
    ]
    domains += [
        PowerDomain(
            _group_pd(group, domain),
            (),
            _ss(domain),
            f"banks {banks[0]}..{banks[-1]} of GATE/WAKE group {group}, supplied by "
            f"{domain.value} (the primary supply its switches take): their arrays sit behind "
            "the chip's memory ports, outside this Verilog, so the domain has no instances here",
            tuple(banks),
        )
        for (group, domain), banks in _bank_groups(pmu).items()
    ]
    return domains


def _switches(chip: Chip, pmu: PmuConfig, wiring: PowerWiring) -> list[PowerSwitch]:
    """A rail switch per DVFS domain (one input and one enable per rail), a header switch per
    bank (its domain's supply in, its bank enable)."""
    select = dict(wiring.supply_select)
    rails = range(chip.rails)
    switches = [
        PowerSwitch(
            f"SW_{_tag(d)}",
            _pd(d),
            ("vout", _vdd(d)),
            tuple((f"vin{r}", _rail(r)) for r in rails),
            tuple((f"sel{r}", _bit(select[d], r, chip.rails)) for r in rails),
            tuple((f"RAIL{r}", f"vin{r}", f"sel{r}") for r in rails),
            (OFF, " & ".join(f"!sel{r}" for r in rails)),
            _levels(chip),
            f"{d.value}'s supply: the rail the PMU connects it to (CONNECT), none after reset "
            "or SLEEP",
        )
        for d in DOMAINS
    ]
    for b, bank in enumerate(pmu.banks):
        domain = BANK_DOMAIN[bank.kind]
        switches.append(
            PowerSwitch(
                f"SW_BANK{b}",
                _group_pd(b // GROUP_BANKS, domain),
                ("vout", _bank_net(b)),
                (("vin", _vdd(domain)),),
                (("en", _bit(wiring.bank_enable, b, pmu.n_banks)),),
                (("ON", "vin", "en"),),
                (OFF, "!en"),
                _levels(chip),
                f"bank {b}: header switch, on while the PMU's bank enable is high",
                bank=b,
            )
        )
    return switches


def _isolation(wiring: PowerWiring) -> list[Isolation]:
    """Each DVFS domain's outputs while it is off, and the RTL's memory-port isolation."""
    on = dict(wiring.supply_on)
    isolation = [
        Isolation(
            f"iso_{d.value}",
            _pd(d),
            (),
            "outputs",
            on[d],
            "low",
            0,
            _ss(None),
            "parent",
            f"{d.value}'s outputs while it is connected to no rail",
        )
        for d in DOMAINS
    ]
    isolation += [
        Isolation(
            f"iso_{port.port}",
            _pd(None),
            (port.port,),
            "inputs" if port.direction == "in" else "outputs",
            port.enable,
            "low",
            port.clamp,
            _ss(None),
            "self",
            "the RTL's isolation at a memory port (rtl/chip_top.py): 0 unless the PMU's bank "
            "switches grant the access (the addressed bank is ready)",
        )
        for port in wiring.isolation
    ]
    return isolation


def _bank_sides(wiring: PowerWiring) -> list[Domain]:
    """The domains supplying the banks behind the chip's memory ports."""
    return sorted({domain for _, _, domain in wiring.bank_ports}, key=DOMAINS.index)


def _level_shifters(chip: Chip, wiring: PowerWiring) -> list[LevelShifter]:
    """On each chip domain's inputs from each domain whose voltage can differ, and on the chip's
    outputs to the banks (which no domain of this scope receives)."""
    shifters = [
        LevelShifter(
            f"ls_{_tag(sink).lower()}_from_{_tag(source).lower()}",
            _pd(sink),
            "inputs",
            source=_ss(source),
            sink=None,
        )
        for sink, source in itertools.permutations((None, *DOMAINS), 2)
        if _can_differ(chip, sink, source)
    ]
    for domain in _bank_sides(wiring):
        outputs = tuple(n for n, way, d in wiring.bank_ports if d is domain and way == "out")
        if outputs and _can_differ(chip, None, domain):
            shifters.append(
                LevelShifter(
                    f"ls_aon_to_{domain.value}_banks",
                    _pd(None),
                    "outputs",
                    source=None,
                    sink=_ss(domain),
                    elements=outputs,
                )
            )
    return shifters


def _port_attributes(wiring: PowerWiring) -> list[PortAttributes]:
    """The banks' supplies on the far side of the memory ports."""
    attributes = []
    for domain in _bank_sides(wiring):
        for direction in ("in", "out"):
            names = tuple(n for n, way, d in wiring.bank_ports if d is domain and way == direction)
            if names:
                attributes.append(
                    PortAttributes(
                        names,
                        _ss(domain) if direction == "in" else None,
                        _ss(domain) if direction == "out" else None,
                        f"the {domain.value}-supplied banks "
                        + ("drive these chip inputs" if direction == "in" else "receive these"),
                    )
                )
    return attributes


def build_power_intent(
    chip: Chip,
    pmu: PmuConfig,
    wiring: PowerWiring,
    *,
    top: str,
    states: Sequence[TracedState] | None = None,
    schedule: str | None = None,
) -> PowerIntent:
    """The power intent of ``chip``'s build whose PMU is ``pmu`` (its banks) and whose chip top
    (Verilog module ``top``) has the power wiring ``wiring``.

    ``states``: the supply states of a schedule (:func:`schedule_supply_states`); the power state
    table then lists exactly those, with every rail and bank. Without it the table lists every
    combination of domain voltages the rails allow (banks are free, see docs/upf.md).
    """
    return PowerIntent(
        chip=chip.name,
        top=top,
        bank_counts=tuple((kind, sum(1 for b in pmu.banks if b.kind is kind)) for kind in BankKind),
        ports=tuple(_supply_ports(chip, pmu)),
        switched_nets=tuple(_vdd(d) for d in DOMAINS),
        supply_sets=tuple(SupplySet(_ss(d), _vdd(d), GROUND) for d in (None, *DOMAINS)),
        domains=tuple(_domains(pmu, wiring)),
        switches=tuple(_switches(chip, pmu, wiring)),
        isolation=tuple(_isolation(wiring)),
        level_shifters=tuple(_level_shifters(chip, wiring)),
        port_attributes=tuple(_port_attributes(wiring)),
        pst=_state_table(chip, pmu, states),
        schedule=schedule,
    )


def _state_table(
    chip: Chip, pmu: PmuConfig, states: Sequence[TracedState] | None
) -> PowerStateTable:
    """Every combination of domain supplies the rails allow, or the states of a schedule."""
    names = [state_name(v) for v in chip.levels_v]
    aon = state_name(chip.always_on_v)
    dvfs_nets = tuple(_vdd(d) for d in DOMAINS)
    if states is None:
        rows = []
        for combo in itertools.product([OFF, *names], repeat=len(DOMAINS)):
            if len({s for s in combo if s != OFF}) > chip.rails:
                continue  # more distinct voltages than rails
            label = "_".join(s.removeprefix("V") for s in combo)
            rows.append(PstRow(f"S_{label}", (aon, *combo), ()))
        return PowerStateTable(
            "chip_states",
            (_vdd(None), *dvfs_nets),
            tuple(rows),
            f"every combination of domain supplies {chip.rails} rail(s) allow; each bank may "
            "be on or off in any of them",
        )
    kind_domain = [DOMAINS.index(BANK_DOMAIN[b.kind]) for b in pmu.banks]
    # Supply states that differ only in switches whose input is off are one state of the nets.
    seen: dict[tuple[str, ...], list[str]] = {}
    for traced in states:
        s = traced.state
        rail = [names[code - 1] if code else OFF for code in s.rail_codes]
        domain = [OFF if r is None else rail[r] for r in s.domain_rails]
        banks = [domain[kind_domain[b]] if on else OFF for b, on in enumerate(s.banks_on)]
        where = seen.setdefault((aon, *rail, *domain, *banks), [])
        where += [w for w in traced.where if w not in where]
    return PowerStateTable(
        "schedule_states",
        (
            _vdd(None),
            *(_rail(r) for r in range(chip.rails)),
            *dvfs_nets,
            *(_bank_net(b) for b in range(pmu.n_banks)),
        ),
        tuple(PstRow(f"S{k}", values, tuple(w)) for k, (values, w) in enumerate(seen.items())),
        "every supply state the schedule's PMU program passes through (two frames, replayed on "
        "pmu.timing)",
    )
