"""The bus signatures: widths from their single sources, connectable by name, checked arguments;
and the layering of the hardware packages (hw below pmu below rtl)."""

import ast
from pathlib import Path

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow, In, Out
from voltflow.hw.signatures import Counters, MemoryRead, MemoryWrite, outputs
from voltflow.hw.widths import ADDR_BITS, WORD_BITS
from voltflow.pmu.isa import Opcode, payload_fields
from voltflow.pmu.ports import LaunchPort
from voltflow.rtl.program import DESCRIPTOR_BITS, ProgramMemory

ROOT = Path(__file__).resolve().parents[2]


def _widths(signature: wiring.Signature) -> dict[str, tuple[Flow, int]]:
    return {
        "__".join(path): (member.flow, member.shape if isinstance(member.shape, int) else 0)
        for path, member in signature.members.flatten()
    }


def test_launch_port_has_the_isa_launch_widths() -> None:
    fields = payload_fields(Opcode.LAUNCH)
    assert _widths(LaunchPort()) == {
        "start": (Flow.Out, 1),
        "first": (Flow.Out, fields["first"]),
        "count": (Flow.Out, fields["count"]),
        "done": (Flow.In, 1),
    }


def test_program_memory_reads_one_descriptor() -> None:
    assert _widths(ProgramMemory())["data"] == (Flow.In, DESCRIPTOR_BITS)


def test_memory_ports_and_their_strobe() -> None:
    assert _widths(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS, strobe=True)) == {
        "addr": (Flow.Out, ADDR_BITS),
        "data": (Flow.In, WORD_BITS),
        "en": (Flow.Out, 1),
    }
    assert set(_widths(MemoryWrite(addr_bits=4, data_bits=8))) == {"addr", "data", "en"}


def test_outputs_keeps_only_what_an_observer_sees() -> None:
    assert list(outputs(LaunchPort()).members) == ["start", "first", "count"]


def test_a_bus_passes_through_a_parent_by_connect() -> None:
    class Child(wiring.Component):
        bus: In(Counters(["a", "b"], bits=3))

        def elaborate(self, platform: object) -> Module:
            return Module()

    class Parent(wiring.Component):
        bus: In(Counters(["a", "b"], bits=3))

        def elaborate(self, platform: object) -> Module:
            m = Module()
            m.submodules.child = child = Child()
            wiring.connect(m, wiring.flipped(self.bus), child.bus)
            return m

    Fragment.get(Parent(), None)  # elaborates both; connect() checks names, flows and widths


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "8"])
def test_widths_are_checked(bad: object) -> None:
    with pytest.raises(TypeError, match=r"^addr_bits must be a positive integer, not "):
        MemoryRead(addr_bits=bad, data_bits=8)  # type: ignore[arg-type]


def test_counter_names_are_distinct() -> None:
    with pytest.raises(
        ValueError, match=r"^names must be distinct and not empty, not \('a', 'a'\)$"
    ):
        Counters(["a", "a"], bits=8)
    assert list(Counters(["x", "y"], bits=2).members) == ["x", "y"]
    assert Out(Counters(["x"], bits=2)).flow is Flow.Out


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("hw", ("voltflow.pmu", "voltflow.rtl", "voltflow.cosim")),
        ("pmu", ("voltflow.rtl", "voltflow.cosim")),
        ("rtl", ("voltflow.cosim",)),
    ],
)
def test_hardware_packages_import_only_downwards(folder: str, forbidden: tuple[str, ...]) -> None:
    for path in sorted((ROOT / folder).glob("*.py")):
        bad = [n for n in _imports(path) if n.startswith(forbidden)]
        assert not bad, (path.name, bad)


@pytest.mark.parametrize(
    "module", ["sequencer", "bank_switches", "monitors", "power_counters", "unit", "ports"]
)
def test_pmu_hardware_does_not_import_its_timing_model(module: str) -> None:
    assert "voltflow.pmu.timing" not in _imports(ROOT / "pmu" / f"{module}.py")
