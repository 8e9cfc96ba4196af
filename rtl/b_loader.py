"""The feeder's B loader: an attention matmul's B operand from the scratchpad into the weight
buffer, one pass at a time (docs/attention.md, "B load")."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import ADDR_BITS, WORD_BITS
from voltflow.rtl.arith import address_bits, head_lanes
from voltflow.rtl.buses import CURSOR_BITS, EngineControl
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.program import Descriptor, OpMode
from voltflow.rtl.token_walk import TokenWalk

__all__ = ["BLoader"]


class BLoader(wiring.Component):
    """Loads one pass's B words into weight-buffer half ``half``.

    SCORES (transposing): for each of the ``cb`` blocks kb, ``C`` read ticks (tick c: K's word of
    block ``block + kb`` at token ``tok0 + c``, the head's lanes only, into stage row c; no read
    and a zero row for a token beyond the last), then ``L`` write ticks (tick l: weight word
    ``kb L + l`` = lane l of the C stage rows). CONTEXT: ``k_pad`` ticks, tick k writes weight
    word k = V's word of block ``block`` at token k (the head's lanes of block ``nb``; zero
    beyond the last token). A token's word is at ``in2_base + block * map_plane + pix0 +``
    its pixel in the position (:class:`TokenWalk`).

    ``start`` latches the pass's parameters; ``first`` marks a batch's first pass (its tokens
    start at 0; later passes of the batch go on from where the previous one stopped).
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        self.wbuf_bits = address_bits(2 * cfg.half_words)
        super().__init__(
            {
                "control": In(EngineControl()),
                "desc": In(Descriptor),
                "block": In(CURSOR_BITS),
                "nb": In(CURSOR_BITS),
                "pix0": In(ADDR_BITS),
                "lane_lo": In(3),
                "first": In(1),
                "half": In(1),
                "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "wbuf_write": Out(MemoryWrite(addr_bits=self.wbuf_bits, data_bits=WORD_BITS)),
                "spad_reads_inc": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        if not self.config.attention:
            return m  # a build for networks without attention: present, outputs 0
        cfg = self.config
        desc = self.desc
        C, L = cfg.cols, cfg.lanes
        lane_shift = L.bit_length() - 1
        scores = desc.mode == OpMode.SCORES
        m.submodules.walk = walk = TokenWalk()
        walk.follow(m, desc)

        lane_lo = Signal(3)
        half = Signal()
        kb = Signal(CURSOR_BITS)  # SCORES: the block; CONTEXT: unused
        c = Signal(8)  # SCORES: stage row (read) or lane (write)
        writing = Signal()  # SCORES: the block's write ticks
        k = Signal(16)  # weight word being written (CONTEXT), block base kb * L (SCORES)
        token = Signal(24)  # token of the current read
        block_token = Signal(24)  # SCORES: token of the block's first read
        # The C stage rows in a memory, not registers: Verilator copies every register's next
        # state on every clock, a memory only does its write when enabled.
        m.submodules.stage = stage = Memory(shape=WORD_BITS, depth=C, init=[])
        stage_write = stage.write_port()
        stage_rows = [stage.read_port(domain="comb") for _ in range(C)]
        m.d.comb += [row.addr.eq(r) for r, row in enumerate(stage_rows)]
        # Per block, set when it starts (so that nothing is recomputed on every clock): the
        # scratchpad address of token 0 of the block, and the head's lanes as a byte mask.
        block_base = Signal(ADDR_BITS)
        lanes = Signal(WORD_BITS)

        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        reading = Signal()
        m.d.comb += reading.eq(active & ~(scores & writing))
        block_end = Signal()  # SCORES: a block's last write tick
        m.d.comb += block_end.eq(active & scores & writing & (c == L - 1))

        # The head's lanes of a new block (at start, and at the end of a block for the next one),
        # as a byte mask, computed only then: Verilator evaluates every comb wire on every clock
        # unless it is a conditional. The idle values are not constants: Verilator turns
        # "x = 0; if (c) x = f" into x = {c} & f, which computes f on every clock.
        mask_block = Signal(CURSOR_BITS)
        mask_lo = Signal(3)
        new_lanes = Signal(WORD_BITS)
        relane = Signal()
        m.d.comb += relane.eq(self.control.start | block_end)
        with m.If(self.control.start):
            m.d.comb += [mask_block.eq(Mux(scores, 0, self.nb)), mask_lo.eq(self.lane_lo)]
        with m.Elif(block_end):
            m.d.comb += [mask_block.eq(kb + 1), mask_lo.eq(lane_lo)]
        with m.Else():  # idle: not a constant (a constant would become a mask, see above)
            m.d.comb += [mask_block.eq(kb), mask_lo.eq(lane_lo)]
        mask = head_lanes(mask_block, mask_lo, desc.head_ch, L)
        with m.If(relane):
            m.d.comb += new_lanes.eq(
                Cat(*(Mux(mask[i], Const(0xFF, 8), Const(0, 8)) for i in range(L)))
            )
        with m.Else():
            m.d.comb += new_lanes.eq(lanes)

        inside = Signal()
        m.d.comb += inside.eq(token < desc.pixels)
        masked = Signal(WORD_BITS)
        with m.If(active):
            m.d.comb += masked.eq(Mux(inside, self.spad_read.data & lanes, 0))
        with m.Else():  # idle: not a constant (see above)
            m.d.comb += masked.eq(lanes)
        m.d.comb += [
            self.spad_read.addr.eq(block_base + walk.pixel),
            self.spad_reads_inc.eq(reading & inside),
        ]
        half_base = Mux(half, cfg.half_words, 0)
        # The transposed word l of a block (write tick l): lane l of every stage row.
        transposed = Cat(*(row.data.word_select(c[:lane_shift], 8) for row in stage_rows))
        m.d.comb += [
            stage_write.addr.eq(c),
            stage_write.data.eq(masked),
            stage_write.en.eq(scores & reading),
        ]
        m.d.comb += [
            self.wbuf_write.addr.eq(half_base + k + Mux(scores, c, 0)),
            self.wbuf_write.data.eq(Mux(scores, transposed, masked)),
            self.wbuf_write.en.eq(active & Mux(scores, writing, 1)),
        ]

        with m.If(scores):
            with m.If(reading):
                m.d.sync += [c.eq(c + 1), token.eq(token + 1)]
                m.d.comb += walk.step.eq(1)
                with m.If(c == C - 1):
                    m.d.sync += [c.eq(0), writing.eq(1)]
                    # The pass's last block: the walker stays on the next pass's first token.
                    m.d.comb += walk.save.eq(kb == desc.cb - 1)
            with m.If(active & writing):
                m.d.sync += c.eq(c + 1)
                with m.If(c == L - 1):
                    m.d.sync += [c.eq(0), writing.eq(0), kb.eq(kb + 1), k.eq(k + L)]
                    with m.If(kb == desc.cb - 1):
                        m.d.comb += self.control.done.eq(1)
                        m.d.sync += self.control.busy.eq(0)
                    with m.Else():
                        # The next block reads the same tokens again.
                        m.d.comb += walk.restore.eq(1)
                        m.d.sync += [
                            token.eq(block_token),
                            block_base.eq(block_base + desc.map_plane),
                            lanes.eq(new_lanes),
                        ]
        with m.Else(), m.If(active):
            m.d.sync += [k.eq(k + 1), token.eq(token + 1)]
            m.d.comb += walk.step.eq(1)
            with m.If(k == desc.k_pad - 1):
                m.d.comb += self.control.done.eq(1)
                m.d.sync += self.control.busy.eq(0)

        with m.If(self.control.start):
            m.d.sync += [
                self.control.busy.eq(1),
                lane_lo.eq(self.lane_lo),
                half.eq(self.half),
                kb.eq(0),
                c.eq(0),
                k.eq(0),
                writing.eq(0),
                block_base.eq(desc.in2_base + self.block * desc.map_plane + self.pix0),
                lanes.eq(new_lanes),
            ]
            # SCORES: a batch's first pass starts at token 0, the others where the previous
            # pass's walk stopped (its last block's reads end on this pass's first token).
            with m.If(~scores | self.first):
                m.d.comb += walk.restart.eq(1)
                m.d.sync += [token.eq(0), block_token.eq(0)]
            with m.Else():
                m.d.comb += walk.save.eq(1)
                m.d.sync += [token.eq(block_token + C), block_token.eq(block_token + C)]
        return m
