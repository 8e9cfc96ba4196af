"""One lane of requantisation, int32 (plus an optional int8 term) to int8 (docs/arithmetic.md)."""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.rtl.program import Descriptor

__all__ = ["Requantizer"]

#: The multiplier and shift widths: the layer descriptor's ``m``, ``m_b`` and ``s`` fields.
_FIELDS = Descriptor.as_shape().members


class Requantizer(wiring.Component):
    """``y = clamp((a * m_a + b * m_b + round) >> s, lo, 127)``, combinational.

    ``round`` is ``2^(s-1)`` for s > 0 and 0 for s = 0 (round half up, arithmetic shift); ``lo`` is
    0 with ``relu`` and -128 otherwise. Conv, depthwise, fc and average pool use ``a`` only (``b``
    absent); the residual add uses both.

    Attributes
    ----------
    a : In(signed(32))
    b : In(signed(8))  (only with ``two_terms``)
    m_a, m_b : In(16)  (``m_b`` only with ``two_terms``)
    s : In(6)
    relu : In(1)
    y : Out(signed(8))
    """

    def __init__(self, *, two_terms: bool = False) -> None:
        self.two_terms = two_terms
        ports = {
            "a": In(signed(32)),
            "m_a": In(_FIELDS["m"]),
            "s": In(_FIELDS["s"]),
            "relu": In(1),
            "y": Out(signed(8)),
        }
        if two_terms:
            ports |= {"b": In(signed(8)), "m_b": In(_FIELDS["m_b"])}
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        prod = Signal(signed(51))
        if self.two_terms:
            m.d.comb += prod.eq(self.a * self.m_a + self.b * self.m_b)
        else:
            m.d.comb += prod.eq(self.a * self.m_a)
        half = Signal(48)
        m.d.comb += half.eq((Const(1, 48) << self.s) >> 1)
        shifted = Signal(signed(51))
        m.d.comb += shifted.eq((prod + half) >> self.s)
        lo = Mux(self.relu, 0, -128)
        with m.If(shifted > 127):
            m.d.comb += self.y.eq(127)
        with m.Elif(shifted < lo):
            m.d.comb += self.y.eq(lo)
        with m.Else():
            m.d.comb += self.y.eq(shifted[:8])
        return m
