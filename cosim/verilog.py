"""Turn an Amaranth component into deterministic Verilog text for Verilator."""

import re

from amaranth.back import verilog as amaranth_verilog
from amaranth.lib import wiring

__all__ = ["component_to_verilog"]

_VERILOG_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def component_to_verilog(component: wiring.Component, *, name: str) -> str:
    """Convert *component* into Verilog text whose top module is called *name*.

    The component's signature gives the ports (plus ``clk`` and ``rst`` for each clock domain it
    uses), so nothing else is exposed at the top. Source-location attributes are left out: they
    hold absolute paths and line numbers, which would change the text (and so the Verilator build
    cache key) whenever the checkout moves or an unrelated line is edited. The same component and
    Amaranth/Yosys versions give byte-identical text in any process.

    Parameters
    ----------
    component : wiring.Component
        The design to convert.
    name : str
        The top module's name; also used as the HDL toplevel and file stem of a build.

    Raises
    ------
    TypeError
        If *component* is not a :class:`wiring.Component`.
    ValueError
        If *name* is not a plain Verilog identifier.
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"Component must be an amaranth.lib.wiring.Component, not {component!r}")
    if not isinstance(name, str) or _VERILOG_IDENTIFIER.fullmatch(name) is None:
        raise ValueError(f"Name must be a plain Verilog identifier, not {name!r}")
    text: str = amaranth_verilog.convert(component, name=name, emit_src=False)
    return text
