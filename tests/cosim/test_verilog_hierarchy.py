"""The small Verilog reader: modules, ports with widths, nets and the instance tree, on
hand-written text and on the chip's generated Verilog (against the chip's signature)."""

from pathlib import Path

import pytest
from amaranth.hdl import Shape
from voltflow.cosim.sim_top import CORE_NAME, chip_configs, core_verilog
from voltflow.cosim.verilog_hierarchy import VerilogError, read_verilog
from voltflow.rtl.chip_top import CORE, PMU, chip_signature, port_name
from voltflow.scheduler.chip import load_chip

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"

TEXT = r"""`timescale 1ns / 1ps
/* a block comment with module fake(x); inside */
(* top = 1 *)
module top(a, b, \odd$name , clk);
  input [7:0] a;
  wire [7:0] a;
  output b;
  wire b;
  input \odd$name ;
  input clk;
  reg [63:0] mem [15:0];
  reg r = 1'h0;
  wire [3:0] w1, w2;
  \top.child  child (
    .x(a[0]),
    .y(b)
  );
  leaf #(.N(4)) leaf0 (.d(a));
  always @* begin
    if (a == 8'h01) r = 1'h1; // not an instance: r = ...
    case (a)
      8'h02: r = 1'h0;
    endcase
  end
  assign w1 = a[3:0];
endmodule

module \top.child (x, y);
  input x;
  output [0:0] y;
  \top.child.grand  grand ();
endmodule

module \top.child.grand ();
endmodule

module leaf(d);
  input [7:0] d;
endmodule
"""


def test_reads_modules_ports_nets_and_instances() -> None:
    design = read_verilog(TEXT)
    assert design.top == "top"
    top = design.modules["top"]
    assert {name: (p.direction, p.width) for name, p in top.ports.items()} == {
        "a": ("input", 8),
        "b": ("output", 1),
        "odd$name": ("input", 1),
        "clk": ("input", 1),
    }
    assert top.nets["mem"] == 64 and top.nets["r"] == 1 and top.nets["w2"] == 4
    assert top.instances == {"child": "top.child", "leaf0": "leaf"}
    assert design.scope("child/grand") is design.modules["top.child.grand"]
    assert design.scope(".") is top and design.scope("") is top
    assert design.scope("child/nothing") is None and design.scope("leaf0/x") is None
    assert design.modules["top.child"].ports["y"].width == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("module a(x);\n  input x;\n", r"module a has no endmodule"),
        ("module a(x);\nendmodule\n", r"module a: port x has no direction"),
        ("module a(x);\n  input y;\nendmodule\n", r"line 2: input y is not in the port list"),
        ("module a(x);\n  input [n:0] x;\nendmodule\n", r"line 2: a range must be \[msb:lsb\]"),
        ("module a();\nendmodule\nmodule b();\nendmodule\n", r"one top module, not \['a', 'b'\]"),
        ("module a();\nendmodule\nmodule a();\nendmodule\n", r"line 4: module a twice"),
        ("endmodule\n", r"line 1: endmodule outside a module"),
    ],
)
def test_unreadable_text_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(VerilogError, match=message):
        read_verilog(text)


def test_the_chip_verilog_has_every_port_of_the_chip_signature() -> None:
    """An independent source for the reader: the signature the wrapper is generated from."""
    chip = load_chip(SMALL_CHIP)
    accel, pmu = chip_configs(chip)
    design = read_verilog(core_verilog(accel, pmu))
    assert design.top == CORE_NAME
    top = design.modules[CORE_NAME]
    expected = {
        port_name(path): Shape.cast(member.shape).width
        for path, member in chip_signature(accel, pmu).members.flatten()
        if member.is_port
    }
    assert {name: p.width for name, p in top.ports.items() if name not in ("clk", "rst")} == (
        expected
    )
    assert set(top.instances) == {CORE, PMU}
    assert {"sequencer", "banks", "monitors", "counters"} <= set(design.scope(PMU).instances)
