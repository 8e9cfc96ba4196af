"""A restartable fractional clock-enable divider (docs/timing-model.md, "Clocks")."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FractionalDivider"]


class FractionalDivider(wiring.Component):
    """B-bit phase accumulator: adds ``inc`` every reference cycle while ``run``; ``tick`` = carry.

    While ``run`` is low the accumulator is cleared (a pausible clock restarts from phase zero), so
    the n-th tick after ``run`` rises comes in its ``ceil(n * 2^B / inc)``-th cycle.

    Attributes
    ----------
    inc : In(B)
        Phase increment; f_domain = f_ref * inc / 2^B. Programmable at any time.
    run : In(1)
        Count this cycle; low clears the accumulator.
    tick : Out(1)
        The domain's clock enable for this cycle (combinational carry-out).
    """

    def __init__(self, *, phase_bits: int) -> None:
        if not isinstance(phase_bits, int) or phase_bits < 1:
            raise ValueError(f"Phase bits must be a positive int, not {phase_bits!r}")
        self.phase_bits = phase_bits
        super().__init__({"inc": In(phase_bits), "run": In(1), "tick": Out(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        phase = Signal(self.phase_bits)
        total = Signal(self.phase_bits + 1)
        m.d.comb += total.eq(phase + self.inc)
        with m.If(self.run):
            m.d.comb += self.tick.eq(total[-1])
            m.d.sync += phase.eq(total[: self.phase_bits])
        with m.Else():
            m.d.sync += phase.eq(0)
        return m
