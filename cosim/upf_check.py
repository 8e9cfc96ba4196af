"""Every object a UPF file names exists: its own objects are declared before use, and every design
object (instance, port, control signal) is in the generated Verilog.

Reads the commands of :func:`cosim.upf_syntax.parse_upf` and a
:class:`cosim.verilog_hierarchy.VerilogDesign` (the chip's Verilog, the UPF's top scope).
"""

from collections.abc import Collection
from dataclasses import dataclass, field

from voltflow.cosim.upf_syntax import UpfCommand, boolean_names
from voltflow.cosim.verilog_hierarchy import VerilogDesign, VerilogModule

__all__ = ["DesignNames", "UpfNameError", "check_upf_names"]


class UpfNameError(ValueError):
    """The UPF names objects that do not exist; ``problems`` lists each (line: what)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        super().__init__(f"{len(problems)} name(s) do not resolve: {shown}")


@dataclass(frozen=True, slots=True)
class DesignNames:
    """The design objects a UPF names, each found in the Verilog: instance paths, top-level
    ports, and signals (``instance/port`` pins or top ports, with a bit where one is selected)."""

    instances: frozenset[str]
    ports: frozenset[str]
    signals: frozenset[str]

    @property
    def count(self) -> int:
        return len(self.instances) + len(self.ports) + len(self.signals)


@dataclass
class _Tables:
    """The UPF's own objects, as declared so far."""

    supply_ports: dict[str, str | None] = field(default_factory=dict)  # name -> direction
    supply_nets: set[str] = field(default_factory=set)
    net_ports: dict[str, list[str]] = field(default_factory=dict)  # net -> ports on it
    supply_sets: set[str] = field(default_factory=set)
    domains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    switches: set[str] = field(default_factory=set)
    port_states: dict[str, dict[str, float | None]] = field(default_factory=dict)
    psts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    pst_states: dict[str, set[str]] = field(default_factory=dict)


class _Checker:
    def __init__(self, design: VerilogDesign) -> None:
        self.design = design
        self.top: VerilogModule = design.modules[design.top]
        self.problems: list[str] = []
        self.t = _Tables()
        self.instances: set[str] = set()
        self.ports: set[str] = set()
        self.signals: set[str] = set()
        self.placed: dict[str, str] = {}  # instance path -> domain

    def fail(self, command: UpfCommand, text: str) -> None:
        self.problems.append(f"line {command.line}: {command.name}: {text}")

    # ---- design objects ---------------------------------------------------------------------
    def instance(self, command: UpfCommand, path: str) -> None:
        if self.design.scope(path) is None:
            self.fail(command, f"no instance {path!r} in module {self.design.top}")
        else:
            self.instances.add(path)

    def signal(self, command: UpfCommand, name: str, *, one_bit: bool, top_port: bool) -> str:
        """Resolve ``[inst/.../]name[[bit]]``; returns the port's direction ("" if none)."""
        base, _, bit = name.partition("[")
        scope_path, _, leaf = base.rpartition("/")
        module = self.design.scope(scope_path)
        if module is None:
            self.fail(command, f"{name!r}: no instance {scope_path!r} in module {self.design.top}")
            return ""
        if top_port and scope_path:
            self.fail(command, f"{name!r}: must be a port of the top module {self.design.top}")
            return ""
        port = module.ports.get(leaf)
        width = port.width if port is not None else module.nets.get(leaf)
        if width is None or (top_port and port is None):
            where = f"module {module.name}" + (f" (instance {scope_path})" if scope_path else "")
            self.fail(
                command, f"{name!r}: no {'port' if top_port else 'port or net'} {leaf!r} in {where}"
            )
            return ""
        if bit:
            index = int(bit.rstrip("]"))
            if index >= width:
                self.fail(command, f"{name!r}: bit {index} beyond the {width} bits of {leaf!r}")
                return ""
        elif one_bit and width != 1:
            self.fail(command, f"{name!r} is {width} bits wide; select one bit")
            return ""
        (self.ports if top_port else self.signals).add(name)
        return port.direction if port is not None else ""

    # ---- UPF objects ------------------------------------------------------------------------
    def declared(
        self, command: UpfCommand, table: Collection[str], name: object, what: str
    ) -> bool:
        if name not in table:
            self.fail(command, f"{what} {name!r} is not declared before this line")
            return False
        return True

    def new(self, command: UpfCommand, table: Collection[str], name: str, what: str) -> None:
        if name in table:
            self.fail(command, f"{what} {name!r} is declared twice")

    def net_states(self, net: str) -> dict[str, float | None] | None:
        """The port states of a supply net: those of the port that drives it."""
        for port in self.t.net_ports.get(net, []):
            if port in self.t.port_states:
                return self.t.port_states[port]
        return None

    def run(self, commands: tuple[UpfCommand, ...]) -> None:
        for c in commands:
            getattr(self, f"cmd_{c.name}")(c)

    def cmd_upf_version(self, c: UpfCommand) -> None:
        pass

    def cmd_create_supply_port(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        self.new(c, self.t.supply_ports, name, "supply port")
        direction = c.option("-direction")
        self.t.supply_ports[name] = str(direction) if direction else None

    def cmd_create_supply_net(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        self.new(c, self.t.supply_nets, name, "supply net")
        self.t.supply_nets.add(name)

    def cmd_connect_supply_net(self, c: UpfCommand) -> None:
        net = str(c.args[0])
        self.declared(c, self.t.supply_nets, net, "supply net")
        for port in c.option("-ports") or ():
            if self.declared(c, self.t.supply_ports, port, "supply port"):
                self.t.net_ports.setdefault(net, []).append(str(port))

    def cmd_create_supply_set(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        self.new(c, self.t.supply_sets, name, "supply set")
        functions = [tuple(f) for f in c.options["-function"]]
        kinds = sorted(str(f[0]) for f in functions)
        if kinds != ["ground", "power"]:
            self.fail(c, f"{name}: needs one power and one ground function, not {kinds}")
        for _, net in functions:
            self.declared(c, self.t.supply_nets, net, "supply net")
        self.t.supply_sets.add(name)

    def cmd_create_power_domain(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        self.new(c, self.t.domains, name, "power domain")
        elements = tuple(str(e) for e in c.option("-elements"))
        for element in elements:
            self.instance(c, element)
            if element in self.placed:
                self.fail(c, f"instance {element!r} is already in {self.placed[element]}")
            self.placed[element] = name
        _, supply_set = c.option("-supply")
        self.declared(c, self.t.supply_sets, supply_set, "supply set")
        self.t.domains[name] = elements

    def cmd_create_power_switch(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        self.new(c, self.t.switches, name, "power switch")
        self.declared(c, self.t.domains, c.option("-domain"), "power domain")
        out_port, out_net = c.option("-output_supply_port")
        inputs = [tuple(p) for p in c.options["-input_supply_port"]]
        controls = [tuple(p) for p in c.options["-control_port"]]
        ports = [str(out_port), *(str(p) for p, _ in inputs), *(str(p) for p, _ in controls)]
        if len(set(ports)) != len(ports):
            self.fail(c, f"{name}: a port name is used twice ({', '.join(ports)})")
        for _, net in [(out_port, out_net), *inputs]:
            self.declared(c, self.t.supply_nets, net, "supply net")
        for _, signal in controls:
            self.signal(c, str(signal), one_bit=True, top_port=False)
        control_names = {str(p) for p, _ in controls}
        input_names = {str(p) for p, _ in inputs}
        states = []
        for state, port, function in c.options["-on_state"]:
            states.append(state)
            if port not in input_names:
                self.fail(c, f"{name}: on state {state} names {port!r}, not an input supply port")
            self.booleans(c, name, str(function), control_names)
        for state, function in c.options.get("-off_state", ()):
            states.append(state)
            self.booleans(c, name, str(function), control_names)
        if len(set(states)) != len(states):
            self.fail(c, f"{name}: a state name is used twice")
        self.t.switches.add(name)
        # The switch's supply ports, for add_port_state and the nets they drive.
        for port, _ in [(out_port, out_net), *inputs]:
            self.t.supply_ports[f"{name}/{port}"] = "out" if port == out_port else "in"
        self.t.net_ports.setdefault(str(out_net), []).insert(0, f"{name}/{out_port}")

    def booleans(self, c: UpfCommand, switch: str, function: str, controls: set[str]) -> None:
        unknown = sorted(boolean_names(function) - controls)
        if unknown:
            self.fail(c, f"{switch}: {{{function}}} uses {unknown[0]!r}, not a control port")

    def boundary_ports(self, c: UpfCommand) -> None:
        """A strategy's ``-elements``: ports of the top module, in the direction it applies to."""
        applies_to = c.option("-applies_to")
        wanted = {"inputs": "input", "outputs": "output"}.get(str(applies_to))
        for element in c.option("-elements") or ():
            direction = self.signal(c, str(element), one_bit=False, top_port=True)
            if direction and wanted and direction != wanted:
                self.fail(c, f"{element!r} is an {direction}, but -applies_to is {applies_to}")

    def cmd_set_isolation(self, c: UpfCommand) -> None:
        self.declared(c, self.t.domains, c.option("-domain"), "power domain")
        self.boundary_ports(c)
        self.signal(c, str(c.option("-isolation_signal")), one_bit=True, top_port=False)
        self.declared(c, self.t.supply_sets, c.option("-isolation_supply_set"), "supply set")

    def cmd_set_level_shifter(self, c: UpfCommand) -> None:
        self.declared(c, self.t.domains, c.option("-domain"), "power domain")
        self.boundary_ports(c)
        for option in ("-source", "-sink"):
            if c.option(option) is not None:
                self.declared(c, self.t.supply_sets, c.option(option), "supply set")

    def cmd_set_port_attributes(self, c: UpfCommand) -> None:
        needs = {"-driver_supply": "input", "-receiver_supply": "output"}
        for port in c.option("-ports"):
            direction = self.signal(c, str(port), one_bit=False, top_port=True)
            for option, wanted in needs.items():
                if c.option(option) is not None and direction and direction != wanted:
                    self.fail(c, f"{port!r} is an {direction}; {option} is for an {wanted}")
        for option in needs:
            if c.option(option) is not None:
                self.declared(c, self.t.supply_sets, c.option(option), "supply set")

    def cmd_add_port_state(self, c: UpfCommand) -> None:
        port = str(c.args[0])
        if not self.declared(c, self.t.supply_ports, port, "supply port"):
            return
        states = self.t.port_states.setdefault(port, {})
        for state, volts in c.options["-state"]:
            if state in states:
                self.fail(c, f"{port}: state {state} is declared twice")
            states[str(state)] = volts

    def cmd_create_pst(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        self.new(c, self.t.psts, name, "power state table")
        supplies = tuple(str(s) for s in c.option("-supplies"))
        for net in supplies:
            if self.declared(c, self.t.supply_nets, net, "supply net") and (
                self.net_states(net) is None
            ):
                self.fail(c, f"supply net {net!r} has no port states (add_port_state)")
        self.t.psts[name] = supplies
        self.t.pst_states[name] = set()

    def cmd_add_pst_state(self, c: UpfCommand) -> None:
        name = str(c.args[0])
        pst = c.option("-pst")
        if not self.declared(c, self.t.psts, pst, "power state table"):
            return
        supplies = self.t.psts[str(pst)]
        if name in self.t.pst_states[str(pst)]:
            self.fail(c, f"state {name} is declared twice in {pst}")
        self.t.pst_states[str(pst)].add(name)
        values = c.option("-state")
        if len(values) != len(supplies):
            self.fail(c, f"{name}: {len(values)} states for {len(supplies)} supplies")
            return
        for net, state in zip(supplies, values, strict=True):
            known = self.net_states(net) or {}
            if state not in known:
                self.fail(c, f"{name}: {net} has no state {state!r} (it has {', '.join(known)})")


def check_upf_names(commands: tuple[UpfCommand, ...], design: VerilogDesign) -> DesignNames:
    """Check that every object ``commands`` name exists: UPF objects declared before use, design
    objects in ``design`` (resolved from its top module).

    Raises
    ------
    UpfNameError
        Listing every name that does not resolve, with its line.
    """
    checker = _Checker(design)
    checker.run(commands)
    if checker.problems:
        raise UpfNameError(checker.problems)
    return DesignNames(
        frozenset(checker.instances), frozenset(checker.ports), frozenset(checker.signals)
    )
