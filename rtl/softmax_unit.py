"""The feeder's softmax unit: the integer softmax over the keys of every row of a scores tensor
(docs/attention.md, "Softmax"; arithmetic: docs/arithmetic.md, "Softmax")."""

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import MemoryRead, MemoryWrite
from voltflow.hw.widths import ADDR_BITS, WORD_BITS, WORD_LANES
from voltflow.rtl.arith import widened_signed
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
    reads, one tick in which the sum settles, ``SOFTMAX_DIVIDE_TICKS`` reciprocal ticks (one
    quotient bit each), NB normalising reads. A read word is folded in its own tick (the
    scratchpad's read port is asynchronous); a normalised word is written in the next tick, so
    the op's last write comes one tick after its last read. Lanes beyond the keys take no part
    and are written as 0.
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
        if not self.config.attention:
            return m  # a build for networks without attention: present, outputs 0
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
        group_jump = Signal(ADDR_BITS)  # 1 + (NB - 1) n: from a group's last row to the next's
        active = Signal()
        m.d.comb += active.eq(self.control.tick & self.control.busy)
        reading = Signal()
        m.d.comb += reading.eq(active & ((phase == _MAX) | (phase == _EXP) | (phase == _NORM)))
        m.d.comb += [
            self.spad_read.addr.eq(desc.in_base + word_off),
            self.spad_reads_inc.eq(reading),
        ]
        last_block = q == nb - 1
        with m.If(active), m.Switch(phase):
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
                    # The group's last pixel: the next group starts NB planes on.
                    next_row = row_off + Mux(i == n - 1, group_jump, 1)
                    with m.If(i == n - 1):
                        m.d.sync += [i.eq(0), g.eq(g + 1)]
                    with m.Else():
                        m.d.sync += i.eq(i + 1)
                    m.d.sync += [q.eq(0), row_off.eq(next_row), word_off.eq(next_row)]
                    last_row = (i == n - 1) & (g == desc.groups - 1)
                    m.d.sync += phase.eq(Mux(last_row, _FINAL, _MAX))
            with m.Case(_FINAL):
                m.d.comb += self.control.done.eq(1)
                m.d.sync += self.control.busy.eq(0)

        # ---- the folds: each read's word is folded in its own tick ------------------------------
        # Verilator evaluates every comb wire on every clock, busy or not, so every value the folds
        # use more than once is a Signal computed only in the phases that need it, elsewhere an
        # unused idle value. Not a constant: Verilator turns "x = 0; if (c) x = f" into x = {c} & f,
        # which computes f on every clock; with a signal it stays c ? f : idle, f computed only
        # if c. The phase register: a narrow variable, one load for all of them.
        data = self.spad_read.data
        idle = phase

        def when(cond: Value, *assignments: tuple[Signal, Value]) -> None:
            with m.If(cond):
                m.d.comb += [signal.eq(value) for signal, value in assignments]
            with m.Else():
                m.d.comb += [signal.eq(idle) for signal, _ in assignments]

        in_max = Signal()
        in_exp = Signal()  # the exp and normalising reads: the phases that use e
        in_norm = Signal()
        in_divide = Signal()
        m.d.comb += [
            in_max.eq(active & (phase == _MAX)),
            in_exp.eq(active & ((phase == _EXP) | (phase == _NORM))),
            in_norm.eq(active & (phase == _NORM)),
            in_divide.eq(active & (phase == _DIVIDE)),
        ]
        left = Signal(signed(18))  # keys from this block's lane 0 on
        keys = [Signal(name=f"key{lane}") for lane in range(L)]
        when(reading, (left, widened_signed(desc.cin) - widened_signed(q * L)))
        when(reading, *((keys[lane], left > lane) for lane in range(L)))
        values = [data.word_select(lane, 8).as_signed() for lane in range(L)]

        row_max = Signal(signed(8))
        total = Signal(SUM_BITS)
        reciprocal = Signal(RECIPROCAL_SHIFT - EXP_TABLE_BITS + 2)
        m.submodules.exp_table = table = Memory(
            shape=EXP_TABLE_BITS, depth=len(EXP_TABLE), init=EXP_TABLE
        )
        frac_shift = (desc.s - EXP_FRACTION_BITS).as_unsigned()[:6]
        exps = []
        for lane in range(L):
            # e = EXP_TABLE[r] >> q of t = (max - x) * m_e (docs/arithmetic.md).
            scaled = Signal(24, name=f"scaled{lane}")
            entry = table.read_port(domain="comb")
            e = Signal(EXP_TABLE_BITS, name=f"e{lane}")
            when(in_exp, (scaled, ((row_max - values[lane])[:8] * desc.m) >> frac_shift))
            m.d.comb += entry.addr.eq(scaled[:EXP_FRACTION_BITS])
            whole = scaled >> EXP_FRACTION_BITS
            when(
                in_exp, (e, Mux(keys[lane] & (whole < EXP_TABLE_BITS), entry.data >> whole[:4], 0))
            )
            exps.append(e)

        # The running maximum of the row's keys, one lane after the other.
        best = [Signal(signed(8), name=f"best{lane}") for lane in range(L + 1)]
        when(in_max, (best[0], Mux(q == 0, -128, row_max)))
        for lane in range(L):
            take = keys[lane] & (values[lane] > best[lane])
            when(in_max, (best[lane + 1], Mux(take, values[lane], best[lane])))
        with m.If(in_max):
            m.d.sync += row_max.eq(best[L])
        with m.If(active & (phase == _EXP)):
            m.d.sync += total.eq(Mux(q == 0, 0, total) + sum(exps))

        # The normalised word, written in the tick after its read.
        out_word = Signal(WORD_BITS)
        out_addr = Signal(ADDR_BITS)
        out_valid = Signal()
        with m.If(active):
            m.d.sync += out_valid.eq(phase == _NORM)
        probs = []
        for lane in range(L):
            rounded = exps[lane] * reciprocal + (1 << (PROB_ROUND_SHIFT - 1))
            p = Signal((rounded >> PROB_ROUND_SHIFT).shape(), name=f"prob{lane}")
            when(in_norm, (p, rounded >> PROB_ROUND_SHIFT))
            probs.append(p)
        with m.If(in_norm):
            clamped = [Mux(p > PROB_MAX, PROB_MAX, p)[:8] for p in probs]
            m.d.sync += [out_word.eq(Cat(*clamped)), out_addr.eq(desc.out_base + word_off)]

        # ---- the reciprocal: restoring division of 2^31 by the sum, one quotient bit a tick ----
        remainder = Signal(SUM_BITS + 1)
        start_rem = 1 << (RECIPROCAL_SHIFT - SOFTMAX_DIVIDE_TICKS)
        shifted_in = Mux(div_tick == 0, start_rem, remainder) << 1
        doubled = Signal(shifted_in.shape())
        bit = Signal()
        when(in_divide, (doubled, shifted_in), (bit, doubled >= total))
        with m.If(in_divide):
            m.d.sync += [
                remainder.eq(Mux(bit, doubled - total, doubled)),
                reciprocal.eq(Cat(bit, Mux(div_tick == 0, 0, reciprocal))),
            ]
        m.d.comb += [
            self.spad_write.addr.eq(out_addr),
            self.spad_write.data.eq(out_word),
            self.spad_write.mask.eq((1 << WORD_LANES) - 1),
            self.spad_write.en.eq(active & out_valid),
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
                out_valid.eq(0),
                group_jump.eq(1 + (nb - 1) * n),
            ]
        return m
