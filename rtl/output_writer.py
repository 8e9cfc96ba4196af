"""The feeder's output writer: one output-buffer word to the scratchpad per feeder tick."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import WORD_BITS, WORD_LANES
from voltflow.rtl.arith import address_bits, head_lanes
from voltflow.rtl.buses import EngineControl, EpochCursor
from voltflow.rtl.config import ADDR_BITS, AccelConfig
from voltflow.rtl.program import Descriptor, OpMode
from voltflow.rtl.token_walk import TokenWalk

__all__ = ["OutputWriter"]


class OutputWriter(wiring.Component):
    """Writes one tile's outputs: q passes x W words (W = R pixels, or 1 in DEPTHWISE mode).

    Word (p, r) of tile t comes from output-buffer slot t % 3 and goes to channel block
    ``cbo0 + p`` of output pixel ``t * W + r``: address ``out_base + (cbo0 + p) * P + t * W + r``
    through the scratchpad's second (write) port. A pixel beyond the last takes its tick but
    writes nothing. CONTEXT (attention A V, one pass per epoch): word r of tile t is token
    ``i = t W + r`` of the epoch's position and goes to output block ``head_ch div L + jp0`` at
    the token's pixel, lanes of the head only (docs/attention.md).
    ``epoch.begin`` rewinds to tile 0; ``start`` writes the next tile.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        self.obuf_bits = address_bits(3 * cfg.obuf_slot_words)
        super().__init__(
            {
                "control": In(EngineControl()),
                "epoch": In(EpochCursor()),
                "desc": In(Descriptor),
                "obuf_read": Out(MemoryRead(addr_bits=self.obuf_bits, data_bits=WORD_BITS)),
                "spad_write": Out(
                    MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS, mask_bits=WORD_LANES)
                ),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        desc = self.desc
        dw = desc.mode == OpMode.DEPTHWISE
        cfg = self.config
        slot_words = cfg.obuf_slot_words

        row = Signal(8)
        p = Signal(12)
        p_off = Signal(self.obuf_bits)
        slot = Signal(2)
        tile_pix = Signal(24)

        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        width = Mux(dw, 1, cfg.rows)
        pixel = tile_pix + row
        slot_base = Mux(slot == 0, 0, Mux(slot == 1, slot_words, 2 * slot_words))
        context = desc.mode == OpMode.CONTEXT
        m.submodules.walk = walk = TokenWalk()
        walk.follow(m, desc)
        m.d.comb += [
            walk.restart.eq(self.epoch.begin),
            walk.step.eq(active),
        ]
        lane_shift = cfg.lanes.bit_length() - 1
        # CONTEXT: the epoch's output block at its position, and the head's lanes; set when a
        # tile starts (the epoch's cursor is stable by then), not recomputed on every clock.
        context_base = Signal(ADDR_BITS)
        context_lanes = Signal(WORD_LANES)
        with m.If(self.control.start & context):
            block = (self.epoch.head_ch >> lane_shift) + self.epoch.jp0
            m.d.sync += [
                context_base.eq(desc.out_base + block * desc.map_plane + self.epoch.pix0),
                context_lanes.eq(
                    head_lanes(self.epoch.jp0, self.epoch.lane_lo, desc.head_ch, cfg.lanes)
                ),
            ]
        plain_addr = desc.out_base + (self.epoch.cbo0 + p) * desc.pixels + pixel
        all_lanes = Const((1 << WORD_LANES) - 1, WORD_LANES)
        m.d.comb += [
            self.obuf_read.addr.eq(slot_base + p_off + row),
            self.spad_write.addr.eq(Mux(context, context_base + walk.pixel, plain_addr)),
            self.spad_write.data.eq(self.obuf_read.data),
            self.spad_write.mask.eq(Mux(context, context_lanes, all_lanes)),
            self.spad_write.en.eq(active & (pixel < desc.pixels)),
        ]
        with m.If(active):
            m.d.sync += row.eq(row + 1)
            with m.If(row == width - 1):
                m.d.sync += [row.eq(0), p.eq(p + 1), p_off.eq(p_off + width)]
                with m.If(p == self.epoch.q - 1):
                    m.d.comb += self.control.done.eq(1)
                    m.d.sync += [
                        self.control.busy.eq(0),
                        p.eq(0),
                        p_off.eq(0),
                        slot.eq(Mux(slot == 2, 0, slot + 1)),
                        tile_pix.eq(tile_pix + width),
                    ]
        with m.If(self.control.start):
            m.d.sync += self.control.busy.eq(1)
        with m.If(self.epoch.begin):
            m.d.sync += [row.eq(0), p.eq(0), p_off.eq(0), slot.eq(0), tile_pix.eq(0)]
        return m
