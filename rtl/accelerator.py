"""The accelerator core: sequencer, engines, internal buffers and counters.

The scratchpad, the RRAM and the program memory are outside (ports), so a simulation wrapper
can load and dump them without rebuilding; everything else is inside.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from voltflow.rtl.activity_counters import COUNTERS, ActivityCounters
from voltflow.rtl.array_engine import ArrayEngine
from voltflow.rtl.config import ADDR_BITS, COUNTER_BITS, AccelConfig
from voltflow.rtl.gather import Gather
from voltflow.rtl.output_writer import OutputWriter
from voltflow.rtl.program import DESCRIPTOR_BITS, OpMode
from voltflow.rtl.sequencer import LayerSequencer
from voltflow.rtl.vector_unit import VectorUnit
from voltflow.rtl.weight_dma import WeightDma

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """The int8 dataflow accelerator of docs/timing-model.md (block diagram: docs/rtl.md).

    Attributes
    ----------
    start : In(1), first_op : In(12), op_count : In(8)
        Run ``op_count`` descriptors from ``first_op`` (held until ``done``, then dropped).
    inc_sys, inc_rram, inc_feeder : In(B)
        Divider increments of the three DVFS domains (programmable while running).
    prog_addr : Out(12), prog_rdata : In(descriptor bits)
        Program memory (asynchronous read).
    spad_raddr : Out(24), spad_rdata : In(64)
        Scratchpad read port (asynchronous read).
    spad_waddr : Out(24), spad_wdata : Out(64), spad_we : Out(1)
        Scratchpad write port.
    rram_raddr : Out(24), rram_rdata : In(64)
        RRAM read port (asynchronous read).
    spad_re : Out(1), rram_re : Out(1)
        A scratchpad / RRAM word is read (and used) this cycle (for the bank monitors).
    op_done : Out(1), op_index : Out(12)
        Pulses one cycle after each op's last cycle; the counters then include that op.
    done : Out(1)
        The launched ops have finished (until ``start`` drops).
    <counter> : Out(48)
        Every entry of :data:`rtl.activity_counters.COUNTERS`.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        ports = {
            "start": In(1),
            "first_op": In(12),
            "op_count": In(8),
            "inc_sys": In(cfg.phase_bits),
            "inc_rram": In(cfg.phase_bits),
            "inc_feeder": In(cfg.phase_bits),
            "prog_addr": Out(12),
            "prog_rdata": In(DESCRIPTOR_BITS),
            "spad_raddr": Out(ADDR_BITS),
            "spad_rdata": In(64),
            "spad_waddr": Out(ADDR_BITS),
            "spad_wdata": Out(64),
            "spad_we": Out(1),
            "spad_re": Out(1),
            "rram_re": Out(1),
            "rram_raddr": Out(ADDR_BITS),
            "rram_rdata": In(64),
            "op_done": Out(1),
            "op_index": Out(12),
            "done": Out(1),
        }
        for name, _ in COUNTERS:
            ports[name] = Out(COUNTER_BITS)
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        R = cfg.rows

        m.submodules.sequencer = seq = LayerSequencer(cfg)
        m.submodules.gather = gather = Gather(cfg)
        m.submodules.writer = writer = OutputWriter(cfg)
        m.submodules.array = array = ArrayEngine(cfg)
        m.submodules.vector = vector = VectorUnit(cfg)
        m.submodules.dma = dma = WeightDma(cfg)
        m.submodules.counters = counters = ActivityCounters()

        # ---- internal buffers (no init: contents come from the datapath) ------------------------
        lane_depth = 2 * cfg.max_row_words
        lanes = []
        for r in range(R):
            mem = Memory(shape=64, depth=lane_depth, init=[])
            m.submodules[f"lane_buffer{r}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(domain="comb")
            m.d.comb += [
                wr.addr.eq(gather.lane_waddr),
                wr.data.eq(gather.lane_wdata),
                wr.en.eq(gather.lane_we[r]),
                rd.addr.eq(array.lane_raddr),
                array.lane_rdata[r].eq(rd.data),
            ]
            lanes.append(mem)
        m.submodules.weight_buffer = wbuf = Memory(shape=64, depth=2 * cfg.half_words, init=[])
        wbuf_w = wbuf.write_port()
        wbuf_r = wbuf.read_port(domain="comb")
        wbuf_b = wbuf.read_port(domain="comb")
        m.d.comb += [
            wbuf_w.addr.eq(dma.wbuf_waddr),
            wbuf_w.data.eq(dma.wbuf_wdata),
            wbuf_w.en.eq(dma.wbuf_we),
            wbuf_r.addr.eq(array.wbuf_raddr),
            array.wbuf_rdata.eq(wbuf_r.data),
            wbuf_b.addr.eq(array.wbuf_baddr),
            array.wbuf_bdata.eq(wbuf_b.data),
        ]
        m.submodules.output_buffer = obuf = Memory(shape=64, depth=3 * cfg.obuf_slot_words, init=[])
        obuf_w = obuf.write_port()
        obuf_r = obuf.read_port(domain="comb")
        m.d.comb += [
            obuf_w.addr.eq(array.obuf_waddr),
            obuf_w.data.eq(array.obuf_wdata),
            obuf_w.en.eq(array.obuf_we),
            obuf_r.addr.eq(writer.obuf_raddr),
            writer.obuf_rdata.eq(obuf_r.data),
        ]
        m.submodules.bias_ram = bias = Memory(shape=32 * cfg.cols, depth=cfg.max_resident, init=[])
        bias_w = bias.write_port()
        bias_r = bias.read_port(domain="comb")
        m.d.comb += [
            bias_w.addr.eq(array.bias_waddr),
            bias_w.data.eq(array.bias_wdata),
            bias_w.en.eq(array.bias_we),
            bias_r.addr.eq(array.bias_raddr),
            array.bias_rdata.eq(bias_r.data),
        ]

        # ---- sequencer <-> engines -----------------------------------------------------------
        desc = seq.desc
        dw = desc.mode == OpMode.DEPTHWISE
        m.d.comb += [
            seq.start.eq(self.start),
            seq.first.eq(self.first_op),
            seq.count.eq(self.op_count),
            seq.inc_sys.eq(self.inc_sys),
            seq.inc_rram.eq(self.inc_rram),
            seq.inc_feeder.eq(self.inc_feeder),
            self.prog_addr.eq(seq.prog_addr),
            seq.prog_rdata.eq(self.prog_rdata),
            seq.gather_busy.eq(gather.busy),
            seq.gather_done.eq(gather.done_now),
            seq.writer_busy.eq(writer.busy),
            seq.writer_done.eq(writer.done_now),
            seq.array_busy.eq(array.busy),
            seq.array_done.eq(array.done_now),
            seq.vector_busy.eq(vector.busy),
            seq.vector_done.eq(vector.done_now),
            seq.dma_busy.eq(dma.busy),
            seq.dma_done.eq(dma.done_now),
            self.op_done.eq(seq.op_done),
            self.op_index.eq(seq.op_index),
            self.done.eq(seq.done),
        ]
        m.d.comb += [
            gather.tick.eq(seq.tick_feeder),
            gather.start.eq(seq.gather_start),
            gather.epoch_begin.eq(seq.epoch_begin),
            gather.dw.eq(dw),
            gather.in_base.eq(desc.in_base),
            gather.in_h.eq(desc.in_h),
            gather.in_w.eq(desc.in_w),
            gather.out_w.eq(desc.out_w),
            gather.pixels.eq(desc.pixels),
            gather.kh.eq(desc.kh),
            gather.kw.eq(desc.kw),
            gather.sh.eq(desc.sh),
            gather.sw.eq(desc.sw),
            gather.pad_t.eq(desc.pad_t),
            gather.pad_l.eq(desc.pad_l),
            gather.cb.eq(desc.cb),
            gather.cb0.eq(seq.epoch_cb0),
            gather.spad_rdata.eq(self.spad_rdata),
        ]
        m.d.comb += [
            writer.tick.eq(seq.tick_feeder),
            writer.start.eq(seq.writer_start),
            writer.epoch_begin.eq(seq.epoch_begin),
            writer.dw.eq(dw),
            writer.out_base.eq(desc.out_base),
            writer.pixels.eq(desc.pixels),
            writer.q.eq(seq.epoch_q),
            writer.cbo0.eq(seq.epoch_cbo0),
        ]
        m.d.comb += [
            array.tick.eq(seq.tick_sys),
            array.start.eq(seq.array_start),
            array.flush.eq(seq.array_flush),
            array.epoch_begin.eq(seq.epoch_begin),
            array.dw.eq(dw),
            array.k_pad.eq(desc.k_pad),
            array.cin.eq(desc.cin),
            array.cout.eq(desc.cout),
            array.pixels.eq(desc.pixels),
            array.cb.eq(desc.cb),
            array.q.eq(seq.epoch_q),
            array.jp0.eq(seq.epoch_jp0),
            array.whalf.eq(seq.epoch_half),
            array.m.eq(desc.m),
            array.s.eq(desc.s),
            array.relu.eq(desc.relu),
        ]
        m.d.comb += [
            vector.tick.eq(seq.tick_feeder),
            vector.start.eq(seq.vector_start),
            vector.mode.eq(desc.mode),
            vector.in_base.eq(desc.in_base),
            vector.in2_base.eq(desc.in2_base),
            vector.out_base.eq(desc.out_base),
            vector.in_h.eq(desc.in_h),
            vector.in_w.eq(desc.in_w),
            vector.out_w.eq(desc.out_w),
            vector.pixels.eq(desc.pixels),
            vector.kh.eq(desc.kh),
            vector.kw.eq(desc.kw),
            vector.sh.eq(desc.sh),
            vector.sw.eq(desc.sw),
            vector.pad_t.eq(desc.pad_t),
            vector.pad_l.eq(desc.pad_l),
            vector.cb.eq(desc.cb),
            vector.m.eq(desc.m),
            vector.m_b.eq(desc.m_b),
            vector.s.eq(desc.s),
            vector.relu.eq(desc.relu),
            vector.spad_rdata.eq(self.spad_rdata),
        ]
        m.d.comb += [
            dma.tick.eq(seq.tick_rram),
            dma.start.eq(seq.dma_start),
            dma.src.eq(seq.dma_src),
            dma.words.eq(seq.dma_words),
            dma.half.eq(seq.dma_half),
            self.rram_raddr.eq(dma.rram_raddr),
            dma.rram_rdata.eq(self.rram_rdata),
        ]
        # Scratchpad ports: the array modes use the gather (read) and the writer (write), the
        # VECTOR modes the vector unit; never both at once.
        with m.If(vector.busy):
            m.d.comb += [
                self.spad_raddr.eq(vector.spad_raddr),
                self.spad_waddr.eq(vector.spad_waddr),
                self.spad_wdata.eq(vector.spad_wdata),
                self.spad_we.eq(vector.spad_we),
            ]
        with m.Else():
            m.d.comb += [
                self.spad_raddr.eq(gather.spad_raddr),
                self.spad_waddr.eq(writer.spad_waddr),
                self.spad_wdata.eq(writer.spad_wdata),
                self.spad_we.eq(writer.spad_we),
            ]

        # ---- counters ----------------------------------------------------------------------
        feeder_busy = gather.busy | writer.busy | vector.busy
        running = seq.running
        incs = {
            "cycles": running,
            "sys_ticks": seq.tick_sys & array.busy,
            "feeder_ticks": seq.tick_feeder & feeder_busy,
            "rram_ticks": seq.tick_rram & dma.busy,
            "sys_idle": running & ~array.busy,
            "feeder_idle": running & ~feeder_busy,
            "rram_idle": running & ~dma.busy,
            "macs": array.macs_inc,
            "spad_reads": gather.spad_reads_inc + vector.spad_reads_inc,
            "spad_writes": self.spad_we,
            "lane_words": gather.lane_writes_inc + array.lane_reads_inc,
            "wbuf_reads": array.wbuf_reads_inc,
            "wbuf_writes": dma.wbuf_we,
            "rram_reads": dma.wbuf_we,
            "dma_beats": dma.wbuf_we,
            "steps": seq.step_barrier,
            "epochs": seq.epoch_barrier,
        }
        # Counters are cumulative from reset across launches (readers take differences).
        m.d.comb += [
            counters.clear.eq(0),
            self.spad_re.eq(gather.spad_reads_inc | vector.spad_reads_inc),
            self.rram_re.eq(dma.wbuf_we),
        ]
        for name, _ in COUNTERS:
            m.d.comb += [
                getattr(counters, f"{name}_inc").eq(incs[name]),
                getattr(self, name).eq(getattr(counters, name)),
            ]
        return m
