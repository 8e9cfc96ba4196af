"""The feeder's im2col gather: one lane-buffer word slot per feeder tick."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead
from voltflow.hw.widths import WORD_BITS
from voltflow.rtl.arith import address_bits, widened_signed
from voltflow.rtl.buses import EngineControl, EpochCursor
from voltflow.rtl.config import ADDR_BITS, AccelConfig
from voltflow.rtl.program import Descriptor, OpMode

__all__ = ["Gather"]


class Gather(wiring.Component):
    """Fills the lane buffer with one tile, one word slot per tick, in im2col order.

    GEMM: for each of the tile's R pixels r, for each tap (ky, kx), for each of the group's CB
    input channel blocks: the word of channel block ``cb0 + cb`` at the input pixel the tap
    reaches goes to lane-buffer row r, word ``tap * CB + cb`` (so row r holds pixel r's K_pad
    reduction elements in order). DEPTHWISE: one pixel, channel block ``cb0``, one word per tap
    into row 0. A slot in the padding or beyond the last pixel is written with zeros in its tick
    without a scratchpad read. Tile t goes to lane-buffer half t % 2. SCORES and CONTEXT
    (attention) gather as a 1x1 GEMM; SCORES' tokens of a patch position are the pixels at the
    patch stride from ``epoch.pix0`` (docs/attention.md).

    ``epoch.begin`` rewinds to pixel 0; ``start`` gathers the next tile.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        self.lane_bits = address_bits(2 * cfg.max_row_words)
        super().__init__(
            {
                "control": In(EngineControl()),
                "epoch": In(EpochCursor()),
                "desc": In(Descriptor),
                "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "lane_waddr": Out(self.lane_bits),
                "lane_wdata": Out(WORD_BITS),
                "lane_we": Out(cfg.rows),
                "spad_reads_inc": Out(1),
                "lane_writes_inc": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        desc = self.desc
        dw = desc.mode == OpMode.DEPTHWISE
        cfg = self.config
        R = cfg.rows

        row = Signal(8)
        ky = Signal(12)
        kx = Signal(12)
        cb = Signal(12)
        word = Signal(self.lane_bits)
        tile = Signal(1)  # parity of the tile: the lane-buffer half
        pix = Signal(24)
        ox = Signal(12)
        iy0 = Signal(signed(14))  # input row of tap (0, 0) for the current pixel
        ix0 = Signal(signed(14))

        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        blocks = Mux(dw, 1, desc.cb)
        rows = Mux(dw, 1, R)

        iy = Signal(signed(15))
        ix = Signal(signed(15))
        m.d.comb += [iy.eq(iy0 + ky), ix.eq(ix0 + kx)]
        inside = Signal()
        m.d.comb += inside.eq(
            (pix < desc.pixels)
            & (iy >= 0)
            & (iy < widened_signed(desc.in_h))
            & (ix >= 0)
            & (ix < widened_signed(desc.in_w))
        )
        plane = desc.in_h * desc.in_w
        m.d.comb += [
            self.spad_read.addr.eq(
                desc.in_base
                + Mux(desc.mode == OpMode.SCORES, self.epoch.pix0, 0)
                + (self.epoch.cb0 + cb) * plane
                + iy[:12] * desc.in_w
                + ix[:12]
            ),
            self.lane_waddr.eq(Mux(tile, cfg.max_row_words, 0) + word),
            self.lane_wdata.eq(Mux(inside, self.spad_read.data, 0)),
            self.spad_reads_inc.eq(active & inside),
            self.lane_writes_inc.eq(active),
        ]
        for r in range(R):
            m.d.comb += self.lane_we[r].eq(active & (row == r))

        with m.If(active):
            m.d.sync += [cb.eq(cb + 1), word.eq(word + 1)]
            with m.If(cb == blocks - 1):
                m.d.sync += [cb.eq(0), kx.eq(kx + 1)]
                with m.If(kx == desc.kw - 1):
                    m.d.sync += [kx.eq(0), ky.eq(ky + 1)]
                    with m.If(ky == desc.kh - 1):
                        # Next pixel (raster order over the output).
                        m.d.sync += [ky.eq(0), word.eq(0), row.eq(row + 1), pix.eq(pix + 1)]
                        with m.If(ox == desc.out_w - 1):
                            m.d.sync += [ox.eq(0), ix0.eq(-desc.pad_l), iy0.eq(iy0 + desc.sh)]
                        with m.Else():
                            m.d.sync += [ox.eq(ox + 1), ix0.eq(ix0 + desc.sw)]
                        with m.If(row == rows - 1):
                            m.d.comb += self.control.done.eq(1)
                            m.d.sync += [self.control.busy.eq(0), row.eq(0), tile.eq(~tile)]
        with m.If(self.control.start):
            m.d.sync += self.control.busy.eq(1)
        with m.If(self.epoch.begin):
            m.d.sync += [
                row.eq(0),
                ky.eq(0),
                kx.eq(0),
                cb.eq(0),
                word.eq(0),
                tile.eq(0),
                pix.eq(0),
                ox.eq(0),
                iy0.eq(-desc.pad_t),
                ix0.eq(-desc.pad_l),
            ]
        return m
