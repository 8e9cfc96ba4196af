"""The feeder's softmax unit: the integer softmax over the keys of every row of a scores tensor
(docs/attention.md, "Softmax"; arithmetic: docs/arithmetic.md, "Softmax")."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import ADDR_BITS, WORD_BITS, WORD_LANES
from voltflow.rtl.buses import EngineControl
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.program import Descriptor
from voltflow.scheduler.softmax import (
    EXP_FRACTION_BITS,
    EXP_TABLE,
    EXP_TABLE_BITS,
    PROB_MAX,
    PROB_ROUND_SHIFT,
    RECIPROCAL_SHIFT,
    SOFTMAX_DIVIDE_TICKS,
    SUM_BITS,
)

__all__ = ["SoftmaxUnit"]

_MAX, _EXP, _SETTLE, _DIVIDE, _NORM, _FINAL = range(6)


class SoftmaxUnit(wiring.Component):
    """Runs a SOFTMAX op in ``rows * (3 NB + 18) + 1`` feeder ticks.

    Rows are ``groups * n`` (group-major, then pixel i; ``n`` = ``desc.pixels``, the keys
    ``desc.cin``, ``NB`` = ``desc.cb``); row (g, i)'s words are at ``(g NB + q) n + i`` from
    ``in_base`` (reads) and ``out_base`` (writes), q = 0 .. NB - 1. Per row: NB max reads, NB exp
    reads, one tick for the last exp fold, ``SOFTMAX_DIVIDE_TICKS`` reciprocal ticks (one
    quotient bit each), NB normalising reads. A read's data is registered (as the vector unit's)
    and folded in the next tick; a normalised word is written in that tick, so the op's last
    write comes one tick after its last read. Lanes beyond the keys take no part and are
    written as 0.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        super().__init__(
            {
                "control": In(EngineControl()),
                "desc": In(Descriptor),
                "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "spad_write": Out(
                    MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS, mask_bits=WORD_LANES)
                ),
                "spad_reads_inc": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        desc = self.desc
        L = self.config.lanes
        n = desc.pixels
        nb = desc.cb

        # ---- stage 1: the row walk, one read per tick in the read phases -------------------------
        phase = Signal(3)
        q = Signal(12)
        i = Signal(24)  # pixel of the row
        g = Signal(12)  # group of the row
        row_off = Signal(ADDR_BITS)
        word_off = Signal(ADDR_BITS)
        div_tick = Signal(5)
        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        reading = Signal()
        m.d.comb += reading.eq(
            active & ((phase == _MAX) | (phase == _EXP) | (phase == _NORM))
        )
        m.d.comb += [
            self.spad_read.addr.eq(desc.in_base + word_off),
            self.spad_reads_inc.eq(reading),
        ]
        last_block = q == nb - 1
        with m.If(active):
            with m.Switch(phase):
                with m.Case(_MAX, _EXP):
                    m.d.sync += [q.eq(q + 1), word_off.eq(word_off + n)]
                    with m.If(last_block):
                        m.d.sync += [
                            q.eq(0),
                            word_off.eq(row_off),
                            phase.eq(Mux(phase == _MAX, _EXP, _SETTLE)),
                        ]
                with m.Case(_SETTLE):
                    m.d.sync += [phase.eq(_DIVIDE), div_tick.eq(0)]
                with m.Case(_DIVIDE):
                    m.d.sync += div_tick.eq(div_tick + 1)
                    with m.If(div_tick == SOFTMAX_DIVIDE_TICKS - 1):
                        m.d.sync += phase.eq(_NORM)
                with m.Case(_NORM):
                    m.d.sync += [q.eq(q + 1), word_off.eq(word_off + n)]
                    with m.If(last_block):
                        next_row = Signal(ADDR_BITS)
                        with m.If(i == n - 1):
                            # The group's last pixel: the next group starts NB planes on.
                            m.d.comb += next_row.eq(row_off + 1 + (nb - 1) * n)
                            m.d.sync += [i.eq(0), g.eq(g + 1)]
                        with m.Else():
                            m.d.comb += next_row.eq(row_off + 1)
                            m.d.sync += i.eq(i + 1)
                        m.d.sync += [q.eq(0), row_off.eq(next_row), word_off.eq(next_row)]
                        last_row = (i == n - 1) & (g == desc.groups - 1)
                        m.d.sync += phase.eq(Mux(last_row, _FINAL, _MAX))
                with m.Case(_FINAL):
                    m.d.comb += self.control.done.eq(1)
                    m.d.sync += self.control.busy.eq(0)

        # ---- stage 2: the registered read, folded ------------------------------------------------
        d_valid = Signal()
        d_phase = Signal(3)
        d_q = Signal(12)
        d_data = Signal(WORD_BITS)
        d_addr = Signal(ADDR_BITS)
        with m.If(active):
            m.d.sync += [
                d_valid.eq(reading),
                d_phase.eq(phase),
                d_q.eq(q),
                d_data.eq(self.spad_read.data),
                d_addr.eq(desc.out_base + word_off),
            ]
        fold = active & d_valid
        lane_max = [Signal(signed(8), name=f"max{lane}") for lane in range(L)]
        row_max = lane_max[0]
        for lane in range(1, L):
            bigger = Signal(signed(8), name=f"row_max{lane}")
            m.d.comb += bigger.eq(Mux(lane_max[lane] > row_max, lane_max[lane], row_max))
            row_max = bigger
        total = Signal(SUM_BITS)
        reciprocal = Signal(RECIPROCAL_SHIFT - EXP_TABLE_BITS + 2)
        table = Array(Const(v, EXP_TABLE_BITS) for v in EXP_TABLE)
        exps = []
        probs = []
        for lane in range(L):
            x = d_data.word_select(lane, 8).as_signed()
            real = Signal(name=f"key{lane}")
            m.d.comb += real.eq((d_q * L + lane) < desc.cin)
            with m.If(fold & (d_phase == _MAX)):
                kept = Mux(d_q == 0, -128, lane_max[lane])
                m.d.sync += lane_max[lane].eq(Mux(real & (x > kept), x, kept))
            # e = EXP_TABLE[r] >> q of t = (max - x) * m_e (docs/arithmetic.md).
            t = Signal(24, name=f"t{lane}")
            m.d.comb += t.eq((row_max - x)[:8] * desc.m)
            whole = Signal(24, name=f"whole{lane}")
            frac = Signal(EXP_FRACTION_BITS, name=f"frac{lane}")
            m.d.comb += [
                whole.eq(t >> desc.s),
                frac.eq(t >> (desc.s - EXP_FRACTION_BITS).as_unsigned()[:6]),
            ]
            e = Signal(EXP_TABLE_BITS, name=f"e{lane}")
            m.d.comb += e.eq(Mux(real & (whole < EXP_TABLE_BITS), table[frac] >> whole[:4], 0))
            exps.append(e)
            p = Signal(RECIPROCAL_SHIFT + 4, name=f"scaled{lane}")
            m.d.comb += p.eq((e * reciprocal + (1 << (PROB_ROUND_SHIFT - 1))) >> PROB_ROUND_SHIFT)
            probs.append(Mux(p > PROB_MAX, PROB_MAX, p)[:8])
        with m.If(fold & (d_phase == _EXP)):
            m.d.sync += total.eq(Mux(d_q == 0, 0, total) + sum(exps))

        # ---- the reciprocal: restoring division of 2^31 by the sum, one quotient bit a tick ----
        remainder = Signal(SUM_BITS + 1)
        start_rem = 1 << (RECIPROCAL_SHIFT - SOFTMAX_DIVIDE_TICKS)
        doubled = Signal(SUM_BITS + 2)
        m.d.comb += doubled.eq(Mux(div_tick == 0, start_rem, remainder) << 1)
        bit = Signal()
        m.d.comb += bit.eq(doubled >= total)
        with m.If(active & (phase == _DIVIDE)):
            m.d.sync += [
                remainder.eq(Mux(bit, doubled - total, doubled)),
                reciprocal.eq(Cat(bit, Mux(div_tick == 0, 0, reciprocal))),
            ]
        m.d.comb += [
            self.spad_write.addr.eq(d_addr),
            self.spad_write.data.eq(Cat(*probs)),
            self.spad_write.mask.eq((1 << WORD_LANES) - 1),
            self.spad_write.en.eq(fold & (d_phase == _NORM)),
        ]

        with m.If(self.control.start):
            m.d.sync += [
                self.control.busy.eq(1),
                phase.eq(_MAX),
                q.eq(0),
                i.eq(0),
                g.eq(0),
                row_off.eq(0),
                word_off.eq(0),
                d_valid.eq(0),
            ]
        return m
