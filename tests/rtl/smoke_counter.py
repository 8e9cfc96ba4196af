"""A tiny counter proving the Amaranth -> Verilog -> Verilator -> cocotb toolchain end to end."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SmokeCounter"]


class SmokeCounter(wiring.Component):
    """8-bit counter that counts enabled clock cycles up to a programmable limit, then holds.

    On every rising edge of ``clk`` with ``en`` high and ``count != limit``, ``count`` increments
    by one. ``done`` is high (combinationally) while ``count == limit``, so with ``en`` held high
    from reset, ``done`` rises exactly ``limit`` clock cycles later and stays high. Amaranth adds
    ``clk`` and a synchronous, active-high ``rst`` for the ``sync`` domain; ``rst`` clears
    ``count``.

    Attributes
    ----------
    en : In(1)
        Count enable.
    limit : In(8)
        The count at which ``done`` rises; compared every cycle.
    count : Out(8)
        The current count.
    done : Out(1)
        High while ``count == limit``.
    """

    en: In(1)
    limit: In(8)
    count: Out(8)
    done: Out(1)

    def elaborate(self, platform: object) -> Module:
        m = Module()

        at_limit = self.count == self.limit
        m.d.comb += self.done.eq(at_limit)

        # Hold at the limit instead of wrapping, so `done` is a level a testbench can wait on.
        with m.If(self.en & ~at_limit):
            m.d.sync += self.count.eq(self.count + 1)

        return m
