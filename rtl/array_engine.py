"""The sys-domain engine: streams tiles from the lane and weight buffers through the array,
captures biases (and per-channel requantisation parameters), and drains finished tiles,
requantised, into the output buffer."""

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.clock_gating import gated_domain
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import CHANNEL_ENTRY_BITS, WORD_BITS
from voltflow.rtl.arith import address_bits, head_lanes, widened_signed
from voltflow.rtl.buses import EngineControl, EpochCursor
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.program import ChannelRequant, Descriptor, OpMode
from voltflow.rtl.requantizer import Requantizer
from voltflow.rtl.systolic_array import SystolicArray
from voltflow.scheduler.chip import Sparsity

__all__ = ["ArrayEngine"]


class ArrayEngine(wiring.Component):
    """One step's array work: stream tile t against the epoch's q passes, or flush.

    A stream of one sub-tile (tile t x pass p) lasts ``S = max(K_pad, C + 1)`` ticks: in tick u
    (u < K_pad) element k = u enters: column c gets weight row k of the pass (one weight-buffer
    read), row r byte k % 8 of its lane-buffer word k / 8 (one read per row every 8 ticks); in
    DEPTHWISE mode row i gets lane i of word k (the pixel's tap k) each tick. Tick 0 carries the
    ``first`` marker, which finishes the previous sub-tile; its rows then drain one per tick into
    the output buffer while this one streams (``row_drain``). While streaming tile 0 the pass's
    bias words are read once (second weight-buffer port) into the bias RAM. A flush sends a bare
    marker and ends when it leaves the array's last PE, i.e. when the last row has drained.

    A per-channel op's pass has its requantisation words after the bias words; they are read in
    the same way, right after the bias words (ticks u = BW .. BW + RQ - 1 of tile 0; a stream lasts
    at least C + 1 >= BW + RQ ticks), into the requant RAM (one ``ChannelRequant`` per column and
    resident pass), and the drain gives each column's requantizer its own multiplier and shift.

    The engine is self-timed: ``busy`` falls after its own last tick (``done_now``), and the
    sequencer's step barrier waits for it. Ports are grouped by memory; counts are per tick.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        self.lane_bits = address_bits(2 * cfg.max_row_words)
        self.wbuf_bits = address_bits(2 * cfg.half_words)
        self.obuf_bits = address_bits(3 * cfg.obuf_slot_words)
        self.bias_bits = address_bits(cfg.max_resident)
        self.requant_bits = cfg.cols * ChannelRequant.as_shape().size
        super().__init__(
            {
                "control": In(EngineControl()),
                "flush": In(1),
                "epoch": In(EpochCursor()),
                "desc": In(Descriptor),
                "lane_raddr": Out(self.lane_bits),
                "lane_rdata": In(WORD_BITS).array(cfg.rows),
                "wbuf_read": Out(MemoryRead(addr_bits=self.wbuf_bits, data_bits=WORD_BITS)),
                "wbuf_bias_read": Out(MemoryRead(addr_bits=self.wbuf_bits, data_bits=WORD_BITS)),
                "bias_write": Out(MemoryWrite(addr_bits=self.bias_bits, data_bits=32 * cfg.cols)),
                "bias_read": Out(MemoryRead(addr_bits=self.bias_bits, data_bits=32 * cfg.cols)),
                "requant_write": Out(
                    MemoryWrite(addr_bits=self.bias_bits, data_bits=self.requant_bits)
                ),
                "requant_read": Out(
                    MemoryRead(addr_bits=self.bias_bits, data_bits=self.requant_bits)
                ),
                "obuf_write": Out(MemoryWrite(addr_bits=self.obuf_bits, data_bits=WORD_BITS)),
                "macs_inc": Out(16),
                "gated_macs_inc": Out(8),
                "zero_detects_inc": Out(8),
                "skipped_inc": Out(8),
                "lane_reads_inc": Out(8),
                "wbuf_reads_inc": Out(2),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        desc = self.desc
        dw = desc.mode == OpMode.DEPTHWISE
        scores = desc.mode == OpMode.SCORES
        context = desc.mode == OpMode.CONTEXT
        matmul = scores | context  # B from the scratchpad: no bias words, no bias
        cfg = self.config
        R, C, L, BW, RQ = cfg.rows, cfg.cols, cfg.lanes, cfg.bias_words, cfg.requant_words
        lane_shift = L.bit_length() - 1

        gate = cfg.sparsity is not Sparsity.NONE  # skipping gates the elements it streams
        skip = cfg.sparsity is Sparsity.SKIP
        m.submodules.array = array = SystolicArray(rows=R, cols=C, gate=gate)
        quants = []
        for c in range(C):
            rq = Requantizer(per_channel=True)
            m.submodules[f"requant{c}"] = rq
            quants.append(rq)

        # ---- stream state ----------------------------------------------------------------------
        flushing = Signal()
        flush_mark = Signal()  # the flush's first tick: send the marker
        u = Signal(16)
        p = Signal(12)
        pass_base = Signal(self.wbuf_bits)
        cbk = Signal(12)  # channel block of element u (GEMM), for useful-MAC counting
        tile = Signal(24)  # tile being streamed, within the epoch
        tile_pix = Signal(24)  # its first pixel
        shift = [Signal(64, name=f"row{r}_word") for r in range(R)]
        # The pass's bias and requantisation words as read, but the last (which is written on).
        side_acc = Signal(WORD_BITS * (BW + RQ - 1))

        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        streaming = Signal()
        m.d.comb += streaming.eq(active & ~flushing)
        # Every register here changes only in an active tick, at a start or when an epoch
        # begins: they run on the reference clock gated by those (hw.clock_gating).
        gated_domain(m, "engine", active | self.control.start | self.epoch.begin)

        stream_len = Signal(16)
        m.d.comb += stream_len.eq(Mux(desc.k_pad > C, desc.k_pad, C + 1))
        # in_k: an element enters this tick (dense: u < K_pad); lane: its byte in its row word;
        # k: the element (its weight-buffer word within the pass).
        in_k = Signal()
        lane = Signal(lane_shift)
        k = Signal(16)
        half_base = Mux(tile[0], cfg.max_row_words, 0)
        skipping = self._skipping(m, streaming, dw, scores, cbk) if skip else None
        if skipping is None:
            m.d.comb += [in_k.eq(u < desc.k_pad), lane.eq(u[:lane_shift]), k.eq(u)]
        else:
            dense_k = u < desc.k_pad
            m.d.comb += [
                in_k.eq(Mux(dw, dense_k, skipping.element)),
                lane.eq(Mux(dw, u[:lane_shift], skipping.lane)),
                k.eq(Mux(dw, u, skipping.k)),
            ]

        # ---- buffer reads ----------------------------------------------------------------------
        half_words = Const(cfg.half_words, self.wbuf_bits)
        wbase = Mux(self.epoch.half, half_words, 0) + pass_base
        m.d.comb += [
            self.wbuf_read.addr.eq(wbase + k),
            self.wbuf_bias_read.addr.eq(wbase + desc.k_pad + u),
        ]
        if skipping is None:
            m.d.comb += self.lane_raddr.eq(half_base + Mux(dw, u, u >> lane_shift))
        else:
            m.d.comb += self.lane_raddr.eq(half_base + Mux(dw, u, skipping.block))
        load_word = Signal()
        m.d.comb += load_word.eq(lane == 0)
        for r in range(R):
            byte = Signal(signed(8), name=f"row{r}_byte")
            with m.If(dw):
                m.d.comb += byte.eq(self.lane_rdata[0].word_select(r, 8))
            if skipping is None:
                with m.Elif(load_word):
                    m.d.comb += byte.eq(self.lane_rdata[r][:8])
                with m.Else():
                    m.d.comb += byte.eq(shift[r][:8])
                with m.If(streaming & in_k & ~dw):
                    m.d.engine += shift[r].eq(Mux(load_word, self.lane_rdata[r], shift[r]) >> 8)
            else:
                # The block's words as read (in its first tick) or as latched then.
                with m.Else():
                    word = Mux(skipping.reading, self.lane_rdata[r], shift[r])
                    m.d.comb += byte.eq(word.word_select(lane, 8))
                with m.If(streaming & skipping.reading & ~dw):
                    m.d.engine += shift[r].eq(self.lane_rdata[r])
            m.d.comb += array.a_in[r].eq(Mux(~flushing & in_k, byte, 0))
        for c in range(C):
            m.d.comb += array.w_in[c].eq(
                Mux(~flushing & in_k, self.wbuf_read.data.word_select(c, 8), 0)
            )
        m.d.comb += [
            array.tick.eq(active),
            array.valid.eq(~flushing & in_k),
            array.first.eq(Mux(flushing, flush_mark, u == 0)),
            array.drain.eq(flushing | (tile != 0) | (p != 0)),
            array.last.eq(flushing),
        ]

        # Biases (and a per-channel op's requantisation words, which follow them): once per
        # pass, while tile 0 streams (second weight-buffer port), word u in tick u.
        capture = Signal()
        side_len = Mux(desc.per_channel, BW + RQ, BW)
        m.d.comb += capture.eq(streaming & (tile == 0) & (u < side_len) & ~matmul)
        with m.If(capture):
            m.d.engine += side_acc.word_select(u[: address_bits(BW + RQ - 1)], WORD_BITS).eq(
                self.wbuf_bias_read.data
            )
        side_words = [side_acc.word_select(i, WORD_BITS) for i in range(BW + RQ - 1)]
        # Requantisation words in channel order: entry c is bits [32 c, 32 c + 32).
        entries = Cat(*side_words[BW:], self.wbuf_bias_read.data)
        channel_bits = ChannelRequant.as_shape().size
        m.d.comb += [
            self.bias_write.addr.eq(p),
            self.bias_write.data.eq(Cat(*side_words[: BW - 1], self.wbuf_bias_read.data)),
            self.bias_write.en.eq(capture & (u == BW - 1)),
            self.requant_write.addr.eq(p),
            self.requant_write.data.eq(
                Cat(*(entries.word_select(c, CHANNEL_ENTRY_BITS)[:channel_bits] for c in range(C)))
            ),
            self.requant_write.en.eq(capture & desc.per_channel & (u == BW + RQ - 1)),
        ]

        # ---- counts ----------------------------------------------------------------------------
        rows_real = Signal(8)
        left_pix = Signal(signed(25))
        m.d.comb += left_pix.eq(widened_signed(desc.pixels) - tile_pix)
        m.d.comb += rows_real.eq(Mux(dw, 1, Mux(left_pix >= R, R, left_pix)))
        cols_real = Signal(8)
        left_ch = Signal(signed(20))
        m.d.comb += left_ch.eq(widened_signed(desc.cout) - (self.epoch.jp0 + p) * C)
        # CONTEXT: the pass's columns that are lanes of the head, counted when a step starts (the
        # epoch's cursor is stable by then), not on every clock.
        context_cols = Signal(8)
        with m.If(self.control.start & context):
            head_cols = head_lanes(self.epoch.jp0, self.epoch.lane_lo, desc.head_ch, C)
            m.d.engine += context_cols.eq(sum(head_cols[c] for c in range(C)))
        m.d.comb += cols_real.eq(Mux(context, context_cols, Mux(left_ch >= C, C, left_ch)))
        k_index = Signal(16)
        m.d.comb += k_index.eq(cbk * L + lane)
        # SCORES: k is a lane of the head iff 0 <= k - lane_lo < dh (unsigned: one compare).
        in_head = (k_index - self.epoch.lane_lo)[:16] < desc.head_ch
        k_real = Signal()
        m.d.comb += k_real.eq(dw | Mux(scores, in_head, k_index < desc.cin))
        with m.If(streaming & in_k & k_real):
            m.d.comb += self.macs_inc.eq(rows_real * cols_real)
        if skipping is None:
            with m.If(streaming & in_k & (dw | load_word)):
                m.d.comb += self.lane_reads_inc.eq(Mux(dw, 1, R))
        else:
            with m.If(streaming & Mux(dw, in_k, skipping.reading)):
                m.d.comb += self.lane_reads_inc.eq(Mux(dw, 1, R))
        m.d.comb += self.wbuf_reads_inc.eq((streaming & in_k) + capture)
        if gate:
            # Every valid element's R + C operands are zero-detected where they enter; of its
            # R x C pairs (each meets in one PE) those with a zero operand are gated.
            nz_rows = sum(array.a_nz[r] for r in range(R))
            nz_cols = sum(array.w_nz[c] for c in range(C))
            element_detects = Mux(streaming & in_k, R + C, 0)
            with m.If(streaming & in_k):
                m.d.comb += self.gated_macs_inc.eq(R * C - nz_rows * nz_cols)
            if skipping is None:
                m.d.comb += self.zero_detects_inc.eq(element_detects)
            else:
                # Skipping also checks every byte of a block's R row words when it reads them.
                block_read = streaming & skipping.reading & ~dw
                m.d.comb += [
                    self.zero_detects_inc.eq(element_detects + Mux(block_read, R * L, 0)),
                    self.skipped_inc.eq(Mux(block_read, L - skipping.streamed, 0)),
                ]

        # ---- sequencing ------------------------------------------------------------------------
        sub_end = Signal()
        # The step's last sub-tile lasts until the drains started in this step are done
        # (docs/timing-model.md: q S + X sys ticks per stream step, X = max(0, R + C - S)).
        tail_len = Mux(stream_len > R + C, stream_len, R + C)
        last_pass = p == self.epoch.q - 1
        dense_end = u == Mux(last_pass, tail_len, stream_len) - 1
        block_done = in_k & (lane == L - 1)  # dense: the element ends its channel block
        if skipping is None:
            m.d.comb += sub_end.eq(dense_end)
        else:
            # Skipping: once the last block is streamed, and at least C + 1 ticks (R + C for the
            # step's last sub-tile) as in the dense stream.
            least = Mux(last_pass, R + C, C + 1)
            skip_end = skipping.finished & (u + 1 >= least)
            m.d.comb += sub_end.eq(Mux(dw, dense_end, skip_end))
            block_done = Mux(dw, block_done, skipping.block_end)
        with m.If(streaming):
            m.d.engine += u.eq(u + 1)
            with m.If(block_done):
                m.d.engine += cbk.eq(Mux(cbk == desc.cb - 1, 0, cbk + 1))
            with m.If(sub_end):
                m.d.engine += [
                    u.eq(0),
                    cbk.eq(0),
                    p.eq(p + 1),
                    pass_base.eq(pass_base + desc.k_pad + side_len),
                ]
                with m.If(p == self.epoch.q - 1):
                    m.d.comb += self.control.done.eq(1)
                    m.d.engine += [
                        self.control.busy.eq(0),
                        p.eq(0),
                        pass_base.eq(0),
                        tile.eq(tile + 1),
                        tile_pix.eq(tile_pix + R),
                    ]
        with m.If(active & flushing):
            m.d.engine += flush_mark.eq(0)
            with m.If(array.last_exit):
                m.d.comb += self.control.done.eq(1)
                m.d.engine += self.control.busy.eq(0)
        with m.If(self.control.start):
            m.d.engine += [
                self.control.busy.eq(1),
                flushing.eq(self.flush),
                flush_mark.eq(self.flush),
                u.eq(0),
                p.eq(0),
                pass_base.eq(0),
                cbk.eq(0),
            ]
        if skipping is not None:
            with m.If((streaming & sub_end) | self.control.start):
                m.d.engine += skipping.restart()

        # ---- drain -----------------------------------------------------------------------------
        d_row = Signal(8)
        d_pass = Signal(12)
        d_pass_off = Signal(self.obuf_bits)
        d_slot = Signal(2)
        m.d.comb += [self.bias_read.addr.eq(d_pass), self.requant_read.addr.eq(d_pass)]
        for c in range(C):
            rq = quants[c]
            channel = data.View(ChannelRequant, self.requant_read.data.word_select(c, channel_bits))
            m.d.comb += [
                rq.a.eq(
                    Mux(dw, array.diag_acc[c], array.row_acc[c])
                    + Mux(matmul, 0, self.bias_read.data.word_select(c, 32).as_signed())
                ),
                rq.m_a.eq(Mux(desc.per_channel, channel.m, desc.m)),
                rq.s.eq(Mux(desc.per_channel, channel.s, desc.s)),
                rq.relu.eq(desc.relu),
            ]
        # Depthwise: PE (i, i) finishes 2i ticks after PE (0, 0); lane i waits 2(C-1-i) ticks in
        # a delay line so the whole word is written when the last lane finishes.
        dw_lanes = []
        for c in range(C):
            value = quants[c].y
            for d in range(2 * (C - 1 - c)):
                nxt = Signal(8, name=f"dw_lane{c}_delay{d}")
                with m.If(active):
                    m.d.engine += nxt.eq(value)
                value = nxt
            dw_lanes.append(value)
        gemm_word = Cat(*(q.y for q in quants))
        write = Signal()
        m.d.comb += write.eq(active & Mux(dw, array.diag_drain[C - 1], array.row_drain.any()))
        slot_words = cfg.obuf_slot_words
        slot_base = Mux(d_slot == 0, 0, Mux(d_slot == 1, slot_words, 2 * slot_words))
        width = Mux(dw, 1, R)
        m.d.comb += [
            self.obuf_write.en.eq(write),
            self.obuf_write.addr.eq(slot_base + d_pass_off + d_row),
            self.obuf_write.data.eq(Mux(dw, Cat(*dw_lanes), gemm_word)),
        ]
        with m.If(write):
            m.d.engine += d_row.eq(d_row + 1)
            with m.If(d_row == width - 1):
                m.d.engine += [
                    d_row.eq(0),
                    d_pass.eq(d_pass + 1),
                    d_pass_off.eq(d_pass_off + width),
                ]
                with m.If(d_pass == self.epoch.q - 1):
                    m.d.engine += [
                        d_pass.eq(0),
                        d_pass_off.eq(0),
                        d_slot.eq(Mux(d_slot == 2, 0, d_slot + 1)),
                    ]
        with m.If(self.epoch.begin):
            m.d.engine += [
                tile.eq(0),
                tile_pix.eq(0),
                d_row.eq(0),
                d_pass.eq(0),
                d_pass_off.eq(0),
                d_slot.eq(0),
            ]
        return m

    def _skipping(
        self, m: Module, streaming: Signal, dw: Value, scores: Value, cbk: Signal
    ) -> "_Skipping":
        """The skipping stream of a sub-tile (GEMM, SCORES, CONTEXT; docs/sparsity.md).

        The reduction's K_pad elements come in blocks of L, one lane-buffer word per row. In a
        block's first tick all R words are read and the block's mask is made: lane i is set if
        element i is a real one (an input channel, a lane of the head, a real key: the others
        have zero weights, and their lanes may hold another tensor's bytes) and some row's byte
        i is not zero. Then its set lanes enter the array one per tick, lowest first, and the
        others are skipped. A block with no set lane takes its read tick with no element."""
        cfg, desc = self.config, self.desc
        L, R = cfg.lanes, cfg.rows
        lane_shift = L.bit_length() - 1
        blk = Signal(12)  # block of the sub-tile being streamed
        pend = Signal(L)  # its lanes still to stream (after its first tick)
        fresh = Signal(init=1)  # the block's first tick: read its words
        blocks = desc.k_pad >> lane_shift
        done = Signal()
        m.d.comb += done.eq(blk == blocks)
        reading = Signal()
        m.d.comb += reading.eq(fresh & ~done)
        mask = Signal(L)
        with m.If(reading & ~dw):
            lanes = []
            for i in range(L):
                k = cbk * L + i
                real = Mux(scores, (k - self.epoch.lane_lo)[:16] < desc.head_ch, k < desc.cin)
                nonzero = Cat(*(self.lane_rdata[r].word_select(i, 8) != 0 for r in range(R)))
                lanes.append(real & nonzero.any())
            m.d.comb += mask.eq(Cat(*lanes))
        current = Signal(L)
        m.d.comb += current.eq(Mux(reading, mask, pend))
        lane = Signal(lane_shift)
        for i in reversed(range(L)):  # the lowest set lane
            with m.If(current[i]):
                m.d.comb += lane.eq(i)
        rest = Signal(L)
        m.d.comb += rest.eq(current & (current - 1))  # without it
        block_end = Signal()
        m.d.comb += block_end.eq(~done & (rest == 0))
        with m.If(streaming & ~done & ~dw):
            m.d.engine += pend.eq(rest)
            m.d.engine += fresh.eq(block_end)
            with m.If(block_end):
                m.d.engine += blk.eq(blk + 1)
        streamed = Signal(range(L + 1))
        m.d.comb += streamed.eq(sum(mask[i] for i in range(L)))
        element = Signal()
        m.d.comb += element.eq(~done & current.any())
        k = Signal(16)
        m.d.comb += k.eq(Cat(lane, blk))
        finished = Signal()
        m.d.comb += finished.eq(done | (block_end & (blk == blocks - 1)))
        return _Skipping(
            element=element,
            lane=lane,
            k=k,
            block=blk,
            reading=reading,
            block_end=block_end,
            finished=finished,
            streamed=streamed,
            registers=(blk, pend, fresh),
        )


@dataclass(frozen=True)
class _Skipping:
    """The signals of the skipping stream (:meth:`ArrayEngine._skipping`)."""

    element: Value  # an element enters this tick
    lane: Value  # its lane in its block's words
    k: Value  # its index in the reduction
    block: Value  # the block being streamed (its lane-buffer word)
    reading: Value  # this tick reads the block's words
    block_end: Value  # this tick ends the block
    finished: Value  # the sub-tile's elements are all streamed after this tick
    streamed: Value  # set lanes of the block read this tick
    registers: tuple[Signal, Signal, Signal]  # block, pending lanes, first tick

    def restart(self) -> list[Any]:
        """Assignments that start a new sub-tile at its first block."""
        blk, pend, fresh = self.registers
        return [blk.eq(0), pend.eq(0), fresh.eq(1)]
