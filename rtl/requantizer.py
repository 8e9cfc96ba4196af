"""One lane of requantisation, int32 (plus an optional int8 term) to int8 (docs/arithmetic.md)."""

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.rtl.program import ChannelRequant, Descriptor

__all__ = ["Requantizer"]

#: The multiplier and shift widths: the layer descriptor's ``m``, ``m_b`` and ``s`` fields, and
#: a per-channel op's ``ChannelRequant`` entry.
_FIELDS = Descriptor.as_shape().members
_CHANNEL = ChannelRequant.as_shape().members
#: Width of ``a``: an int32 accumulator.
_ACC_BITS = 32
#: Width of ``b``: an int8 operand.
_B_BITS = 8


def _width(shape: object) -> int:
    return Shape.cast(shape).width


class Requantizer(wiring.Component):
    """``y = clamp((a * m_a + b * m_b + round) >> s, lo, 127)``, combinational.

    ``round`` is ``2^(s-1)`` for s > 0 and 0 for s = 0 (round half up, arithmetic shift); ``lo`` is
    0 with ``relu`` and -128 otherwise. Conv, depthwise, fc and average pool use ``a`` only (``b``
    absent); the residual add uses both.

    Parameters
    ----------
    two_terms : bool
        Add ``b * m_b`` (the residual add).
    per_channel : bool
        Also take a per-channel op's parameters: ``m_a`` and ``s`` as wide as the wider of the
        descriptor's fields and the ``ChannelRequant`` entry's (24-bit multiplier, shift up to 63).

    Attributes
    ----------
    a : In(signed(32))
    b : In(signed(8))  (only with ``two_terms``)
    m_a : In(16), or In(24) with ``per_channel``
    m_b : In(16)  (only with ``two_terms``)
    s : In(6)
    relu : In(1)
    y : Out(signed(8))
    """

    def __init__(self, *, two_terms: bool = False, per_channel: bool = False) -> None:
        self.two_terms = two_terms
        m_bits, s_bits = _width(_FIELDS["m"]), _width(_FIELDS["s"])
        if per_channel:
            m_bits = max(m_bits, _width(_CHANNEL["m"]))
            s_bits = max(s_bits, _width(_CHANNEL["s"]))
        # |a * m_a| < 2^(31 + m_bits) and |b * m_b| < 2^(7 + m_b bits) <= 2^(31 + m_bits): one
        # more bit holds their sum.
        self.prod_bits = _ACC_BITS + m_bits + (1 if two_terms else 0)
        ports = {
            "a": In(signed(_ACC_BITS)),
            "m_a": In(m_bits),
            "s": In(s_bits),
            "relu": In(1),
            "y": Out(signed(8)),
        }
        if two_terms:
            ports |= {"b": In(signed(_B_BITS)), "m_b": In(_FIELDS["m_b"])}
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        prod = Signal(signed(self.prod_bits))
        if self.two_terms:
            m.d.comb += prod.eq(self.a * self.m_a + self.b * self.m_b)
        else:
            m.d.comb += prod.eq(self.a * self.m_a)
        # Round half up without adding the rounding term: for s >= 1,
        # (prod + 2^(s-1)) >> s == ((prod >> (s-1)) + 1) >> 1, since the low s-1 bits of prod
        # (less than 2^(s-1)) add less than one half after the shift either way. So no adder as
        # wide as the term (2^62 at s = 63) is needed and no signal is wider than prod_bits + 1.
        below = Signal(len(self.s))
        m.d.comb += below.eq(self.s - 1)  # wraps for s = 0, which takes prod as it is
        halved = Signal(signed(self.prod_bits))
        m.d.comb += halved.eq(prod >> below)
        shifted = Signal(signed(self.prod_bits))
        m.d.comb += shifted.eq(Mux(self.s == 0, prod, (halved + 1) >> 1))
        lo = Mux(self.relu, 0, -128)
        with m.If(shifted > 127):
            m.d.comb += self.y.eq(127)
        with m.Elif(shifted < lo):
            m.d.comb += self.y.eq(lo)
        with m.Else():
            m.d.comb += self.y.eq(shifted[:8])
        return m
