"""The UPF text of a :class:`~voltflow.cosim.power_intent.PowerIntent`, in the subset of
``cosim/upf_syntax.py`` (docs/upf.md): commands continued over lines of at most 100 characters,
comments saying what each object is, one section per bank group."""

import textwrap
from collections.abc import Iterable

from voltflow.cosim.power_intent import (
    OFF,
    Isolation,
    LevelShifter,
    PortAttributes,
    PowerDomain,
    PowerIntent,
    PowerStateTable,
    PowerSwitch,
    SupplyPort,
    volts_text,
)
from voltflow.cosim.upf_syntax import UPF_VERSION

__all__ = ["render_upf"]

_WIDTH = 100


def _command(head: str, *parts: str, one_per_line: bool = False) -> str:
    """One command, continued on further lines (an option with its value never split) when
    longer than the line width; ``one_per_line``: then each option on a line of its own."""
    line = " ".join((head, *parts))
    if len(line) <= _WIDTH:
        return line + "\n"
    lines = [head]
    for part in parts:
        last = lines[-1].rsplit("\n", 1)[-1]
        if one_per_line or len(last) + 1 + len(part) > _WIDTH - 2:
            lines.append("    " + part)
        else:
            lines[-1] += " " + part
    return " \\\n".join(lines) + "\n"


def _braced(items: Iterable[str], indent: int = 4) -> str:
    """A braced list, wrapped inside the braces when long (newlines there are spaces)."""
    items = list(items)
    text = "{" + " ".join(items) + "}"
    if len(text) <= _WIDTH - 20:
        return text
    lines, line = [], ""
    for item in items:
        if line and len(line) + 1 + len(item) > _WIDTH - indent - 4:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    lines.append(line)
    pad = "\n" + " " * (indent + 4)
    return "{" + pad.join(lines) + "}"


def _section(title: str) -> str:
    return f"\n# ---- {title} " + "-" * max(4, _WIDTH - 12 - len(title)) + "\n"


def _volts(value: float | None) -> str:
    return "off" if value is None else volts_text(value)


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in textwrap.wrap(text, _WIDTH - 2))


def _switch(s: PowerSwitch) -> str:
    parts = [f"-domain {s.domain}", f"-output_supply_port {{{s.output[0]} {s.output[1]}}}"]
    parts += [f"-input_supply_port {{{port} {net}}}" for port, net in s.inputs]
    parts += [f"-control_port {{{port} {signal}}}" for port, signal in s.controls]
    parts += [f"-on_state {{{state} {port} {{{expr}}}}}" for state, port, expr in s.on_states]
    parts.append(f"-off_state {{{s.off_state[0]} {{{s.off_state[1]}}}}}")
    return _command(f"create_power_switch {s.name}", *parts, one_per_line=s.bank is None)


def _supply_port(port: SupplyPort) -> str:
    return (
        _command(f"create_supply_port {port.name}", f"-direction {port.direction}")
        + f"create_supply_net {port.name}\n"
        + f"connect_supply_net {port.name} -ports {{{port.name}}}\n"
    )


def _port_states(name: str, states: Iterable[tuple[str, float | None]]) -> str:
    parts = [f"-state {{{state} {_volts(v)}}}" for state, v in states]
    return _command(f"add_port_state {name}", *parts) if parts else ""


def _domain(pd: PowerDomain) -> str:
    return _command(
        f"create_power_domain {pd.name}",
        f"-elements {_braced(pd.elements)}",
        f"-supply {{primary {pd.supply_set}}}",
    )


def _isolation(iso: Isolation) -> str:
    parts = [f"-domain {iso.domain}"]
    if iso.elements:
        parts.append(f"-elements {_braced(iso.elements)}")
    parts += [
        f"-applies_to {iso.applies_to}",
        f"-isolation_signal {iso.signal}",
        f"-isolation_sense {iso.sense}",
        f"-clamp_value {iso.clamp}",
        f"-isolation_supply_set {iso.supply_set}",
        f"-location {iso.location}",
    ]
    return _comment(iso.comment) + _command(f"set_isolation {iso.name}", *parts)


def _level_shifter(ls: LevelShifter) -> str:
    parts = [f"-domain {ls.domain}"]
    if ls.elements:
        parts.append(f"-elements {_braced(ls.elements)}")
    parts.append(f"-applies_to {ls.applies_to}")
    if ls.source:
        parts.append(f"-source {ls.source}")
    if ls.sink:
        parts.append(f"-sink {ls.sink}")
    parts += [f"-rule {ls.rule}", f"-location {ls.location}"]
    return _command(f"set_level_shifter {ls.name}", *parts)


def _port_attributes(attr: PortAttributes) -> str:
    parts = [f"-ports {_braced(attr.ports)}"]
    if attr.driver:
        parts.append(f"-driver_supply {attr.driver}")
    if attr.receiver:
        parts.append(f"-receiver_supply {attr.receiver}")
    return _comment(attr.comment) + _command("set_port_attributes", *parts)


def _bank_group(
    pd: PowerDomain, ports: dict[int, SupplyPort], switches: dict[int, PowerSwitch]
) -> str:
    out = [_section(f"bank group {pd.name}"), _comment(pd.comment), _domain(pd)]
    out.append("# each bank: its supply port to the array, its header switch, its states\n")
    for b in pd.banks:
        switch = switches[b]
        out += [
            _supply_port(ports[b]),
            _switch(switch),
            _port_states(f"{switch.name}/{switch.output[0]}", switch.output_states),
        ]
    return "".join(out)


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def _state_table(pst: PowerStateTable) -> str:
    out = [_section("power state table"), _comment(pst.comment)]
    out.append(_command(f"create_pst {pst.name}", f"-supplies {_braced(pst.supplies)}"))
    banks = {
        i: int(net.removeprefix("VDD_BANK"))
        for i, net in enumerate(pst.supplies)
        if net.startswith("VDD_BANK")
    }
    for row in pst.rows:
        if row.where:
            more = f"; ... ({len(row.where)} in all)" if len(row.where) > 3 else ""
            on = _ranges([b for i, b in banks.items() if row.states[i] != OFF])
            out.append(_comment(f"{row.name} (banks on: {on}): {'; '.join(row.where[:3])}{more}"))
        state = f"-state {_braced(row.states)}"
        out.append(_command(f"add_pst_state {row.name}", f"-pst {pst.name}", state))
    return "".join(out)


def render_upf(intent: PowerIntent) -> str:
    """``intent`` as UPF text in the subset of ``cosim/upf_syntax.py``: supplies, supply sets,
    the chip's domains and their rail switches, the supplies beyond the memory ports, isolation,
    level shifters, supply states, one section per bank group, and the power state table."""
    banks = ", ".join(f"{n} {kind.value}" for kind, n in intent.bank_counts)
    out = [
        f"# IEEE 1801-2013 (UPF {UPF_VERSION}) power intent of chip {intent.chip}, written by\n",
        "# `voltflow upf` (voltflow.cosim.upf): do not edit; docs/upf.md explains it.\n",
        f"# Design top: module {intent.top} (the chip's Verilog, cosim/sim_top.py), with\n",
        f"# {banks} banks. Load it with {intent.top} as the current scope.\n",
    ]
    if intent.schedule is not None:
        out.append(_comment(f"Power states: those of schedule {intent.schedule}."))
    out.append(f"upf_version {UPF_VERSION}\n")

    out.append(_section("supply ports and nets"))
    for port in intent.ports:
        if port.bank is None:
            out += [_comment(port.comment), _supply_port(port)]
    out.append("# the domains' supplies: outputs of their rail switches (below)\n")
    out += [f"create_supply_net {net}\n" for net in intent.switched_nets]

    out.append(_section("supply sets"))
    out += [
        _command(
            f"create_supply_set {ss.name}",
            f"-function {{power {ss.power}}}",
            f"-function {{ground {ss.ground}}}",
        )
        for ss in intent.supply_sets
    ]

    out.append(_section("power domains"))
    for pd in intent.domains:
        if not pd.banks:
            out += [_comment(pd.comment), _domain(pd)]

    out.append(_section("the domains' rail switches"))
    for s in intent.switches:
        if s.bank is None:
            out += [_comment(s.comment), _switch(s)]

    out.append(_section("supplies beyond the memory ports"))
    out += [_port_attributes(attr) for attr in intent.port_attributes]
    out.append(_section("isolation"))
    out += [_isolation(iso) for iso in intent.isolation]
    out.append(_section("level shifters: every crossing whose two supplies can differ"))
    out += [_level_shifter(ls) for ls in intent.level_shifters]

    out.append(_section("supply states"))
    for port in intent.ports:
        if port.bank is None:
            out.append(_port_states(port.name, port.states))
    for s in intent.switches:
        if s.bank is None:
            out.append(_port_states(f"{s.name}/{s.output[0]}", s.output_states))

    ports = {p.bank: p for p in intent.ports if p.bank is not None}
    switches = {s.bank: s for s in intent.switches if s.bank is not None}
    out += [_bank_group(pd, ports, switches) for pd in intent.domains if pd.banks]
    out.append(_state_table(intent.pst))
    return "".join(out)
