"""The feeder's vector unit: max / average pooling and the residual add, one read per tick."""

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import WORD_BITS
from voltflow.rtl.arith import widened_signed
from voltflow.rtl.buses import EngineControl
from voltflow.rtl.config import ADDR_BITS, AccelConfig
from voltflow.rtl.program import Descriptor, OpMode
from voltflow.rtl.requantizer import Requantizer

__all__ = ["VectorUnit"]


class VectorUnit(wiring.Component):
    """Runs a VECTOR op in ``positions + 1`` feeder ticks.

    Pooling visits, per channel block and output pixel (raster order), every window position
    (ky, kx): one tick each, reading the word if the position is inside the input (padding
    positions take their tick without a read). The read data arrives one tick later (registered,
    as a synchronous SRAM port), where it is folded into 8 lane accumulators; after a window's
    last position the result word is written (requantised for average pooling), in the tick of
    the next window's first read. The add reads a[i] then b[i] and writes
    ``requant(a * m_a + b * m_b)`` one tick after reading b. Hence the last write comes one tick
    after the last read.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        super().__init__(
            {
                "control": In(EngineControl()),
                "desc": In(Descriptor),
                "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "spad_write": Out(MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "spad_reads_inc": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        desc = self.desc
        L = self.config.lanes
        is_add = Signal()
        is_max = Signal()
        m.d.comb += [is_add.eq(desc.mode == OpMode.ADD), is_max.eq(desc.mode == OpMode.MAXPOOL)]
        taps_h = Mux(is_add, 1, desc.kh)
        taps_w = Mux(is_add, 2, desc.kw)

        # ---- stage 1: one window position per tick -----------------------------------------------
        issuing = Signal()
        cb = Signal(12)
        pix = Signal(24)
        ox = Signal(12)
        iy0 = Signal(signed(14))
        ix0 = Signal(signed(14))
        ky = Signal(12)
        kx = Signal(12)
        window = Signal(ADDR_BITS)  # output word index = cb * P + pixel
        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        issue = Signal()
        m.d.comb += issue.eq(active & issuing)

        iy = Signal(signed(15))
        ix = Signal(signed(15))
        m.d.comb += [iy.eq(iy0 + ky), ix.eq(ix0 + kx)]
        inside = Signal()
        m.d.comb += inside.eq(
            is_add
            | (
                (iy >= 0)
                & (iy < widened_signed(desc.in_h))
                & (ix >= 0)
                & (ix < widened_signed(desc.in_w))
            )
        )
        plane = desc.in_h * desc.in_w
        pool_addr = desc.in_base + cb * plane + iy[:12] * desc.in_w + ix[:12]
        add_addr = Mux(kx == 0, desc.in_base, desc.in2_base) + window
        m.d.comb += [
            self.spad_read.addr.eq(Mux(is_add, add_addr, pool_addr)),
            self.spad_reads_inc.eq(issue & inside),
        ]
        first_pos = (ky == 0) & (kx == 0)
        last_pos = (ky == taps_h - 1) & (kx == taps_w - 1)
        last_window = (cb == desc.cb - 1) & (pix == desc.pixels - 1)

        with m.If(issue):
            m.d.sync += kx.eq(kx + 1)
            with m.If(kx == taps_w - 1):
                m.d.sync += [kx.eq(0), ky.eq(ky + 1)]
                with m.If(ky == taps_h - 1):
                    m.d.sync += [ky.eq(0), window.eq(window + 1), pix.eq(pix + 1)]
                    with m.If(ox == desc.out_w - 1):
                        m.d.sync += [ox.eq(0), ix0.eq(-desc.pad_l), iy0.eq(iy0 + desc.sh)]
                    with m.Else():
                        m.d.sync += [ox.eq(ox + 1), ix0.eq(ix0 + desc.sw)]
                    with m.If(pix == desc.pixels - 1):
                        m.d.sync += [
                            pix.eq(0),
                            cb.eq(cb + 1),
                            ox.eq(0),
                            iy0.eq(-desc.pad_t),
                            ix0.eq(-desc.pad_l),
                        ]
                    with m.If(last_window):
                        m.d.sync += issuing.eq(0)

        # ---- stage 2: the registered read data ---------------------------------------------------
        d_valid = Signal()
        d_inside = Signal()
        d_first = Signal()
        d_last = Signal()
        d_data = Signal(64)
        d_out = Signal(ADDR_BITS)
        with m.If(active):
            m.d.sync += [
                d_valid.eq(issuing),
                d_inside.eq(inside),
                d_first.eq(first_pos),
                d_last.eq(last_pos),
                d_data.eq(self.spad_read.data),
                d_out.eq(desc.out_base + window),
            ]
        fold = Signal()
        m.d.comb += fold.eq(active & d_valid)
        lanes_out = []
        for lane in range(L):
            value = d_data.word_select(lane, 8).as_signed()
            acc = Signal(signed(32), name=f"acc{lane}")
            held = Signal(signed(8), name=f"a{lane}")  # the add's first operand
            new = Signal(signed(32), name=f"new{lane}")
            with m.If(is_max):
                with m.If(d_first):
                    m.d.comb += new.eq(Mux(d_inside, value, -128))
                with m.Else():
                    m.d.comb += new.eq(Mux(d_inside & (value > acc), value, acc))
            with m.Else():
                m.d.comb += new.eq(Mux(d_first, 0, acc) + Mux(d_inside, value, 0))
            rq = Requantizer(two_terms=True)
            m.submodules[f"requant{lane}"] = rq
            m.d.comb += [
                rq.a.eq(Mux(is_add, held, new)),
                rq.b.eq(Mux(is_add, value, 0)),
                rq.m_a.eq(desc.m),
                rq.m_b.eq(Mux(is_add, desc.m_b, 0)),
                rq.s.eq(desc.s),
                rq.relu.eq(desc.relu),
            ]
            with m.If(fold):
                m.d.sync += acc.eq(new)
                with m.If(d_first):
                    m.d.sync += held.eq(value)
            lanes_out.append(Mux(is_max, new[:8], rq.y)[:8])
        m.d.comb += [
            self.spad_write.addr.eq(d_out),
            self.spad_write.data.eq(Cat(*lanes_out)),
            self.spad_write.en.eq(fold & d_last),
        ]
        with m.If(active & ~issuing & d_valid):
            m.d.comb += self.control.done.eq(1)
            m.d.sync += self.control.busy.eq(0)

        with m.If(self.control.start):
            m.d.sync += [
                self.control.busy.eq(1),
                issuing.eq(1),
                cb.eq(0),
                pix.eq(0),
                ox.eq(0),
                ky.eq(0),
                kx.eq(0),
                window.eq(0),
                iy0.eq(-desc.pad_t),
                ix0.eq(-desc.pad_l),
                d_valid.eq(0),
            ]
        return m
