"""The accelerator core: sequencer, engines, internal buffers and counters.

The scratchpad, the RRAM and the program memory are outside (ports), so a simulation wrapper
can load and dump them without rebuilding; everything else is inside.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped
from voltflow.hw.signatures import ClockIncrements, Counters, MemoryRead, MemoryWrite
from voltflow.hw.widths import ADDR_BITS, COUNTER_BITS, WORD_BITS
from voltflow.pmu.config import PROGRAM_ADDR_BITS
from voltflow.pmu.ports import LaunchPort
from voltflow.rtl.activity_counters import COUNTERS, ActivityCounters
from voltflow.rtl.array_engine import ArrayEngine
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.gather import Gather
from voltflow.rtl.output_writer import OutputWriter
from voltflow.rtl.program import ProgramMemory
from voltflow.rtl.sequencer import ENGINES, LayerSequencer
from voltflow.rtl.vector_unit import VectorUnit
from voltflow.rtl.weight_dma import WeightDma

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """The int8 dataflow accelerator of docs/timing-model.md (block diagram: docs/rtl.md).

    Attributes
    ----------
    launch : In(LaunchPort)
        Run ``count`` descriptors from ``first`` (``start`` held until ``done``, then dropped).
    clocks : In(ClockIncrements)
        Divider increments of the three DVFS domains (programmable while running).
    prog : Out(ProgramMemory)
        Program memory (asynchronous read).
    spad_read : Out(MemoryRead), spad_write : Out(MemoryWrite), rram_read : Out(MemoryRead)
        Scratchpad read and write ports, RRAM read port (asynchronous reads); the read ports'
        ``en``: a word is read (and used) this cycle (for the bank monitors).
    op_done : Out(1), op_index : Out(12)
        Pulses one cycle after each op's last cycle; the counters then include that op.
    counters : Out(Counters)
        Every entry of :data:`rtl.activity_counters.COUNTERS`, 48 bits.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        super().__init__(
            {
                "launch": In(LaunchPort()),
                "clocks": In(ClockIncrements(phase_bits=config.phase_bits)),
                "prog": Out(ProgramMemory()),
                "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS, strobe=True)),
                "spad_write": Out(MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
                "rram_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS, strobe=True)),
                "op_done": Out(1),
                "op_index": Out(PROGRAM_ADDR_BITS),
                "counters": Out(Counters((name for name, _ in COUNTERS), bits=COUNTER_BITS)),
            }
        )

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
        connect(m, flipped(self.launch), seq.launch)
        connect(m, flipped(self.clocks), seq.clocks)
        connect(m, flipped(self.prog), seq.prog)
        engines: dict[str, wiring.Component] = {
            "gather": gather, "writer": writer, "array": array, "vector": vector, "dma": dma,
        }  # fmt: skip
        for name in ENGINES:
            connect(m, getattr(seq, name), engines[name].control)
        m.d.comb += [self.op_done.eq(seq.op_done), self.op_index.eq(seq.op_index)]
        # The engines read the current descriptor whole; the epoch's position comes with it.
        m.d.comb += [engine.desc.eq(seq.desc) for engine in (gather, writer, array, vector)]
        m.d.comb += [
            gather.epoch_begin.eq(seq.epoch_begin),
            gather.cb0.eq(seq.epoch_cb0),
            gather.spad_rdata.eq(self.spad_read.data),
            writer.epoch_begin.eq(seq.epoch_begin),
            writer.q.eq(seq.epoch_q),
            writer.cbo0.eq(seq.epoch_cbo0),
            array.flush.eq(seq.array_flush),
            array.epoch_begin.eq(seq.epoch_begin),
            array.q.eq(seq.epoch_q),
            array.jp0.eq(seq.epoch_jp0),
            array.whalf.eq(seq.epoch_half),
            vector.spad_rdata.eq(self.spad_read.data),
            dma.src.eq(seq.dma_src),
            dma.words.eq(seq.dma_words),
            dma.half.eq(seq.dma_half),
            self.rram_read.addr.eq(dma.rram_raddr),
            dma.rram_rdata.eq(self.rram_read.data),
        ]
        # Scratchpad ports: the array modes use the gather (read) and the writer (write), the
        # VECTOR modes the vector unit; never both at once.
        with m.If(vector.control.busy):
            m.d.comb += [
                self.spad_read.addr.eq(vector.spad_raddr),
                self.spad_write.addr.eq(vector.spad_waddr),
                self.spad_write.data.eq(vector.spad_wdata),
                self.spad_write.en.eq(vector.spad_we),
            ]
        with m.Else():
            m.d.comb += [
                self.spad_read.addr.eq(gather.spad_raddr),
                self.spad_write.addr.eq(writer.spad_waddr),
                self.spad_write.data.eq(writer.spad_wdata),
                self.spad_write.en.eq(writer.spad_we),
            ]

        # ---- counters ----------------------------------------------------------------------
        feeder_busy = gather.control.busy | writer.control.busy | vector.control.busy
        running = seq.running
        incs = {
            "cycles": running,
            "sys_ticks": seq.array.tick & array.control.busy,
            "feeder_ticks": seq.gather.tick & feeder_busy,
            "rram_ticks": seq.dma.tick & dma.control.busy,
            "sys_idle": running & ~array.control.busy,
            "feeder_idle": running & ~feeder_busy,
            "rram_idle": running & ~dma.control.busy,
            "macs": array.macs_inc,
            "spad_reads": gather.spad_reads_inc + vector.spad_reads_inc,
            "spad_writes": self.spad_write.en,
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
            self.spad_read.en.eq(gather.spad_reads_inc | vector.spad_reads_inc),
            self.rram_read.en.eq(dma.wbuf_we),
        ]
        m.d.comb += [getattr(counters.inc, name).eq(incs[name]) for name, _ in COUNTERS]
        connect(m, flipped(self.counters), counters.counts)
        return m
