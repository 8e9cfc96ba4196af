"""The rram-domain weight DMA: one RRAM word into the weight tile buffer per rram tick."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import WORD_BITS
from voltflow.rtl.arith import address_bits
from voltflow.rtl.buses import EngineControl
from voltflow.rtl.config import ADDR_BITS, AccelConfig

__all__ = ["WeightDma"]


class WeightDma(wiring.Component):
    """Copies ``words`` RRAM words from ``src`` into weight-buffer half ``half`` from its word 0.

    ``start`` (with the parameters) begins; each tick reads one RRAM word and writes it (a DMA
    beat); ``done_now`` marks the tick of the last beat.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        self.wbuf_bits = address_bits(2 * cfg.half_words)
        super().__init__(
            {
                "control": In(EngineControl()),
                "src": In(ADDR_BITS),
                "words": In(self.wbuf_bits),
                "half": In(1),
                "rram_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "wbuf_write": Out(MemoryWrite(addr_bits=self.wbuf_bits, data_bits=WORD_BITS)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        index = Signal(self.wbuf_bits)
        src = Signal(ADDR_BITS)
        words = Signal(self.wbuf_bits)
        half = Signal()
        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        m.d.comb += [
            self.rram_read.addr.eq(src + index),
            self.wbuf_write.addr.eq(Mux(half, self.config.half_words, 0) + index),
            self.wbuf_write.data.eq(self.rram_read.data),
            self.wbuf_write.en.eq(active),
        ]
        with m.If(active):
            m.d.sync += index.eq(index + 1)
            with m.If(index == words - 1):
                m.d.comb += self.control.done.eq(1)
                m.d.sync += self.control.busy.eq(0)
        with m.If(self.control.start):
            m.d.sync += [
                self.control.busy.eq(1),
                index.eq(0),
                src.eq(self.src),
                words.eq(self.words),
                half.eq(self.half),
            ]
        return m
