"""Power intent out: the chip's IEEE 1801 (UPF 2.1) file, checked against its own Verilog.

:func:`generate_upf` builds the power intent of one build of a chip (``cosim/power_intent.py``),
writes it in the UPF subset of ``cosim/upf_syntax.py``, parses it back with that grammar, and
resolves every design name it uses in the Verilog the build simulates (``cosim/sim_top.py``):
a file that names a missing signal is never returned. docs/upf.md has the model and the subset.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voltflow.cosim.power_intent import (
    PowerIntent,
    TracedState,
    build_power_intent,
    schedule_supply_states,
)
from voltflow.cosim.sim_top import (
    CORE_NAME,
    chip_configs,
    core_verilog,
    default_bank_counts,
    sim_bank_counts,
)
from voltflow.cosim.upf_check import DesignNames, check_upf_names
from voltflow.cosim.upf_syntax import UPF_VERSION, parse_upf
from voltflow.cosim.upf_writer import render_upf
from voltflow.cosim.verilog_hierarchy import read_verilog
from voltflow.pmu.compiler import CompileError
from voltflow.pmu.limits import check_chip
from voltflow.rtl.chip_top import power_wiring
from voltflow.scheduler.chip import DEFAULT_CHIP, BankKind, Chip, ChipError, GatingPolicy, load_chip
from voltflow.scheduler.documents import short, write_atomic
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import ProblemOptions, build_problem
from voltflow.scheduler.schedule import load_schedule

__all__ = ["FORMAT", "UpfError", "UpfReport", "UpfRequest", "generate_upf", "write_upf"]

#: The ``--json`` format of ``voltflow upf``.
FORMAT = "voltflow-upf/1"


class UpfError(ValueError):
    """A request that cannot be met (a schedule for another chip, no network to rebuild its
    states from); the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class UpfRequest:
    """What to write the UPF of.

    Attributes
    ----------
    chip : str or Path or None
        Chip name or file; None: the schedule's chip (its provenance), else the reference chip.
    schedule : str or Path or None
        A ``voltflow-schedule/1`` file: the power state table lists the states its PMU program
        passes through, and the build has the bank counts its network needs.
    network : str or None
        The network the schedule was solved for, when its provenance does not say (one that
        contradicts the provenance is refused).
    check : bool
        Resolve every design name in the build's generated Verilog (generated once per build
        and cached, about 6 s for the reference chip).
    """

    chip: str | os.PathLike[str] | None = None
    schedule: str | os.PathLike[str] | None = None
    network: str | None = None
    check: bool = True


@dataclass(frozen=True, slots=True)
class UpfReport:
    """The UPF text, the intent it states, and the design names checked (None if not asked)."""

    text: str
    intent: PowerIntent
    names: DesignNames | None

    @property
    def data(self) -> dict[str, Any]:
        """The ``voltflow-upf/1`` object (without the text)."""
        intent = self.intent
        pst = intent.pst
        return {
            "format": FORMAT,
            "upf_version": UPF_VERSION,
            "chip": intent.chip,
            "top": intent.top,
            "schedule": intent.schedule,
            "bank_counts": {kind.value: n for kind, n in intent.bank_counts},
            "supply_ports": [
                {"name": p.name, "direction": p.direction, "states": [s for s, _ in p.states]}
                for p in intent.ports
            ],
            "domains": [
                {"name": d.name, "elements": list(d.elements), "supply_set": d.supply_set}
                for d in intent.domains
            ],
            "switches": [
                {
                    "name": s.name,
                    "domain": s.domain,
                    "output": s.output[1],
                    "inputs": [net for _, net in s.inputs],
                    "controls": [signal for _, signal in s.controls],
                }
                for s in intent.switches
            ],
            "isolation": [
                {
                    "name": i.name,
                    "domain": i.domain,
                    "elements": list(i.elements),
                    "applies_to": i.applies_to,
                    "signal": i.signal,
                    "sense": i.sense,
                    "clamp": i.clamp,
                }
                for i in intent.isolation
            ],
            "level_shifters": [
                {
                    "name": ls.name,
                    "domain": ls.domain,
                    "applies_to": ls.applies_to,
                    "source": ls.source,
                    "sink": ls.sink,
                    "elements": list(ls.elements),
                }
                for ls in intent.level_shifters
            ],
            "power_states": {
                "table": pst.name,
                "supplies": list(pst.supplies),
                "states": [
                    {"name": r.name, "supplies": list(r.states), "where": list(r.where)}
                    for r in pst.rows
                ],
            },
            "checked": None
            if self.names is None
            else {
                "instances": sorted(self.names.instances),
                "ports": sorted(self.names.ports),
                "signals": len(self.names.signals),
            },
            "lines": self.text.count("\n"),
        }


def generate_upf(request: UpfRequest) -> UpfReport:
    """The UPF of the chip (and schedule) of ``request``, parsed back with the subset's grammar
    and, with ``request.check``, every design name resolved in the build's Verilog.

    Raises
    ------
    ValueError
        A bad chip, schedule or network file (naming the file, field and value), a schedule
        for another chip or network, or a UPF the checks refuse (a bug: the message says what).
    """
    if request.schedule is None:
        chip = _load_chip(request.chip or DEFAULT_CHIP)
        counts = default_bank_counts(chip)
        states = None
    else:
        chip, counts, states = _schedule_states(request, request.schedule)
    accel, pmu = chip_configs(chip, counts)
    intent = build_power_intent(
        chip,
        pmu,
        power_wiring(accel, pmu),
        top=CORE_NAME,
        states=states,
        schedule=str(request.schedule) if request.schedule is not None else None,
    )
    text = render_upf(intent)
    commands = parse_upf(text)  # the subset's grammar: a failure here is a bug of the writer
    names = None
    if request.check:
        names = check_upf_names(commands, read_verilog(core_verilog(accel, pmu)))
    return UpfReport(text, intent, names)


def _load_chip(source: str | os.PathLike[str]) -> Chip:
    chip = load_chip(source)
    check_chip(chip, source)
    return chip


def _recorded(where: str, provenance: Mapping[str, Any], field: str) -> str | None:
    """A string field of the schedule's provenance (None if absent)."""
    value = provenance.get(field)
    if value is not None and (not isinstance(value, str) or not value):
        raise UpfError(
            f"{where}: provenance.{field}: must be a non-empty string, not {short(value)}"
        )
    return value


def _schedule_states(
    request: UpfRequest, path: str | os.PathLike[str]
) -> tuple[Chip, dict[BankKind, int], tuple[TracedState, ...]]:
    """The chip, the build's bank counts and the supply states of the schedule at ``path``."""
    where = str(path)
    schedule = load_schedule(Path(path))
    provenance = dict(schedule.provenance or {})
    recorded_chip = _recorded(where, provenance, "chip")
    if request.chip is not None:
        chip = _load_chip(request.chip)
        if recorded_chip is not None:
            _check_same_chip(where, recorded_chip, chip)
    elif recorded_chip is not None:
        try:
            chip = _load_chip(recorded_chip)
        except ChipError as exc:
            raise UpfError(f"{where}: provenance.chip: {exc} (pass --hw)") from None
    else:
        chip = _load_chip(DEFAULT_CHIP)
    recorded_network = _recorded(where, provenance, "network")
    if request.network is not None and recorded_network is not None:
        _check_same_network(where, recorded_network, request.network)
    network = request.network or recorded_network
    if network is None:
        raise UpfError(
            f"{where}: provenance.network: missing (the schedule does not say which network it "
            "was solved for); pass --net"
        )
    policy_text = _recorded(where, provenance, "policy") or GatingPolicy.RRAM_PG.value
    try:
        policy = GatingPolicy(policy_text)
    except ValueError:
        allowed = ", ".join(p.value for p in GatingPolicy)
        raise UpfError(
            f"{where}: provenance.policy: must be one of {allowed}, not {short(policy_text)}"
        ) from None
    levels = provenance.get("levels_v")
    if levels is not None and (
        not isinstance(levels, list)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in levels)
    ):
        raise UpfError(
            f"{where}: provenance.levels_v: must be a list of voltages, not {short(levels)}"
        )
    options = ProblemOptions(policy=policy, levels_v=tuple(levels) if levels else None)
    _, table = build_problem(load_network(network), chip, options)
    counts = sim_bank_counts(chip, table.memory)
    try:
        states = schedule_supply_states(schedule, table, counts)
    except CompileError as exc:
        raise UpfError(f"{where}: {exc}") from None
    return chip, counts, states


def _check_same_network(where: str, recorded: str, network: str) -> None:
    """Refuse a network other than the one the schedule's provenance records."""
    if recorded == network:
        return
    try:
        name = load_network(recorded).name
    except ValueError:
        return  # no longer loads: the schedule's own check against the network decides
    if name != load_network(network).name:
        raise UpfError(
            f"{where}: provenance.network: the schedule was solved for network {short(name)}, "
            f"not {short(network)} (drop --net)"
        )


def _check_same_chip(where: str, recorded: str, chip: Chip) -> None:
    """Refuse a schedule whose provenance names another chip than ``chip`` (when the recorded
    chip still loads; else the schedule's own check against ``chip`` decides)."""
    try:
        name = load_chip(recorded).name
    except ChipError:
        return
    if name != chip.name:
        raise UpfError(
            f"{where}: provenance.chip: the schedule was solved for chip {short(name)}, not "
            f"{short(chip.name)} (pass --hw {short(recorded)})"
        )


def write_upf(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, renamed)."""
    write_atomic(Path(path), text)
