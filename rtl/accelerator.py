"""The accelerator core: sequencer, engines, internal buffers and counters.

The scratchpad, the RRAM and the program memory are outside (ports), so a simulation wrapper
can load and dump them without rebuilding; everything else is inside.
"""

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out, connect, flipped
from voltflow.hw.signatures import ClockIncrements, Counters, MemoryRead, MemoryWrite
from voltflow.hw.widths import ADDR_BITS, COUNTER_BITS, WORD_BITS, WORD_LANES
from voltflow.pmu.config import PROGRAM_ADDR_BITS
from voltflow.pmu.ports import LaunchPort
from voltflow.rtl.activity_counters import COUNTERS, ActivityCounters
from voltflow.rtl.array_engine import ArrayEngine
from voltflow.rtl.b_loader import BLoader
from voltflow.rtl.buffers import DomainBuffers
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.gather import Gather
from voltflow.rtl.output_writer import OutputWriter
from voltflow.rtl.program import ProgramMemory
from voltflow.rtl.sequencer import ENGINE_DOMAINS, ENGINES, LayerSequencer
from voltflow.rtl.softmax_unit import SoftmaxUnit
from voltflow.rtl.vector_unit import VectorUnit
from voltflow.rtl.weight_dma import WeightDma
from voltflow.scheduler.chip import Domain
from voltflow.scheduler.prices import Component

__all__ = ["BUFFER_DOMAINS", "Accelerator", "block_domains"]


def _charged(component: Component) -> Domain:
    domain = component.domain
    assert domain is not None, f"the price table charges {component} to the always-on supply"
    return domain


#: The DVFS domain whose supply powers each kind of internal buffer: the lane buffers and the
#: weight buffer where the price table charges their energy (``scheduler/prices.py``), the
#: array's output buffer and its bias and requantisation RAMs with the array (sys).
BUFFER_DOMAINS: dict[str, Domain] = {
    "lane_buffer": _charged(Component.LANE),
    "weight_buffer": _charged(Component.WBUF),
    "output_buffer": Domain.SYS,
    "bias_ram": Domain.SYS,
    "requant_ram": Domain.SYS,
}


def block_domains() -> dict[str, Domain]:
    """The core's blocks that a DVFS domain powers, by instance name: the engines (the domain
    whose clock ticks them, ``rtl.sequencer.ENGINE_DOMAINS``) and each domain's buffers. The
    rest of the core (layer sequencer with the clock dividers, activity counters, the port
    multiplexers) is always-on."""
    buffers = {DomainBuffers.instance_name(d): d for d in BUFFER_DOMAINS.values()}
    return {**ENGINE_DOMAINS, **dict(sorted(buffers.items()))}


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
                "spad_write": Out(
                    MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS, mask_bits=WORD_LANES)
                ),
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
        gather, writer, array = Gather(cfg), OutputWriter(cfg), ArrayEngine(cfg)
        vector, dma = VectorUnit(cfg), WeightDma(cfg)
        bload, softmax = BLoader(cfg), SoftmaxUnit(cfg)
        engines: dict[str, wiring.Component] = {
            "gather": gather, "writer": writer, "array": array, "vector": vector, "dma": dma,
            "bload": bload, "softmax": softmax,
        }  # fmt: skip
        # Each engine is the instance of its sequencer bus's name (the power intent's names).
        for name in ENGINES:
            m.submodules[name] = engines[name]
        m.submodules.counters = counters = ActivityCounters()

        # ---- internal buffers (no init: contents come from the datapath) ------------------------
        def reads(port: ReadPort, bus: wiring.PureInterface) -> None:
            """An engine's read bus on a memory's (asynchronous) read port."""
            m.d.comb += [port.addr.eq(bus.addr), bus.data.eq(port.data)]

        def writes(port: WritePort, bus: wiring.PureInterface) -> None:
            """An engine's write bus on a memory's write port."""
            m.d.comb += [port.addr.eq(bus.addr), port.data.eq(bus.data), port.en.eq(bus.en)]

        buffers: dict[Domain, dict[str, Memory]] = {}

        def buffer(kind: str, memory: Memory, index: int | None = None) -> Memory:
            """``memory`` joins its domain's buffers (:data:`BUFFER_DOMAINS`)."""
            name = kind if index is None else f"{kind}{index}"
            buffers.setdefault(BUFFER_DOMAINS[kind], {})[name] = memory
            return memory

        lane_depth = 2 * cfg.max_row_words
        lanes = []
        for r in range(R):
            mem = buffer("lane_buffer", Memory(shape=WORD_BITS, depth=lane_depth, init=[]), r)
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
        wbuf = buffer("weight_buffer", Memory(shape=WORD_BITS, depth=2 * cfg.half_words, init=[]))
        # One write port: the RRAM DMA (weights) or the B loader (attention), never both at once.
        wbuf_write = wbuf.write_port()
        with m.If(bload.control.busy):
            writes(wbuf_write, bload.wbuf_write)
        with m.Else():
            writes(wbuf_write, dma.wbuf_write)
        reads(wbuf.read_port(domain="comb"), array.wbuf_read)
        reads(wbuf.read_port(domain="comb"), array.wbuf_bias_read)
        obuf = buffer(
            "output_buffer", Memory(shape=WORD_BITS, depth=3 * cfg.obuf_slot_words, init=[])
        )
        writes(obuf.write_port(), array.obuf_write)
        reads(obuf.read_port(domain="comb"), writer.obuf_read)
        bias = buffer("bias_ram", Memory(shape=32 * cfg.cols, depth=cfg.max_resident, init=[]))
        writes(bias.write_port(), array.bias_write)
        reads(bias.read_port(domain="comb"), array.bias_read)
        requant = buffer(
            "requant_ram", Memory(shape=array.requant_bits, depth=cfg.max_resident, init=[])
        )
        writes(requant.write_port(), array.requant_write)
        reads(requant.read_port(domain="comb"), array.requant_read)
        # The buffers of each domain in one block (its own Verilog module, for the power intent).
        for domain, memories in buffers.items():
            m.submodules[DomainBuffers.instance_name(domain)] = DomainBuffers(
                domain=domain, memories=memories
            )

        # ---- sequencer <-> engines -----------------------------------------------------------
        connect(m, flipped(self.launch), seq.launch)
        connect(m, flipped(self.clocks), seq.clocks)
        connect(m, flipped(self.prog), seq.prog)
        for name in ENGINES:
            connect(m, getattr(seq, name), engines[name].control)
        m.d.comb += [self.op_done.eq(seq.op_done), self.op_index.eq(seq.op_index)]
        # The engines read the current descriptor whole, and where the epoch stands.
        m.d.comb += [
            engine.desc.eq(seq.desc) for engine in (gather, writer, array, vector, bload, softmax)
        ]
        connect(m, seq.epoch, gather.epoch, writer.epoch, array.epoch)
        m.d.comb += [
            gather.spad_read.data.eq(self.spad_read.data),
            array.flush.eq(seq.array_flush),
            vector.spad_read.data.eq(self.spad_read.data),
            bload.spad_read.data.eq(self.spad_read.data),
            softmax.spad_read.data.eq(self.spad_read.data),
            bload.block.eq(seq.bload_block),
            bload.nb.eq(seq.bload_nb),
            bload.pix0.eq(seq.bload_pix0),
            bload.lane_lo.eq(seq.bload_lane_lo),
            bload.first.eq(seq.bload_first),
            bload.half.eq(seq.bload_half),
            dma.src.eq(seq.dma_src),
            dma.words.eq(seq.dma_words),
            dma.half.eq(seq.dma_half),
            self.rram_read.addr.eq(dma.rram_read.addr),
            dma.rram_read.data.eq(self.rram_read.data),
        ]
        # Scratchpad ports: the array modes use the gather (read) and the writer (write), an
        # attention matmul's B load the B loader (read), the VECTOR modes the vector unit or the
        # softmax unit; never two at once.
        with m.If(vector.control.busy):
            m.d.comb += [
                self.spad_read.addr.eq(vector.spad_read.addr),
                self.spad_write.addr.eq(vector.spad_write.addr),
                self.spad_write.data.eq(vector.spad_write.data),
                self.spad_write.mask.eq(-1),
                self.spad_write.en.eq(vector.spad_write.en),
            ]
        with m.Else():
            # The softmax unit, or the array modes' gather / B loader and writer.
            softmax_busy = softmax.control.busy
            m.d.comb += [
                self.spad_read.addr.eq(
                    Mux(
                        softmax_busy,
                        softmax.spad_read.addr,
                        Mux(bload.control.busy, bload.spad_read.addr, gather.spad_read.addr),
                    )
                ),
                self.spad_write.addr.eq(
                    Mux(softmax_busy, softmax.spad_write.addr, writer.spad_write.addr)
                ),
                self.spad_write.data.eq(
                    Mux(softmax_busy, softmax.spad_write.data, writer.spad_write.data)
                ),
                self.spad_write.mask.eq(
                    Mux(softmax_busy, softmax.spad_write.mask, writer.spad_write.mask)
                ),
                self.spad_write.en.eq(
                    Mux(softmax_busy, softmax.spad_write.en, writer.spad_write.en)
                ),
            ]

        # ---- counters ----------------------------------------------------------------------
        feeder_busy = (
            gather.control.busy
            | writer.control.busy
            | vector.control.busy
            | bload.control.busy
            | softmax.control.busy
        )
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
            "spad_reads": (
                gather.spad_reads_inc
                + vector.spad_reads_inc
                + bload.spad_reads_inc
                + softmax.spad_reads_inc
            ),
            "spad_writes": self.spad_write.en,
            "lane_words": gather.lane_writes_inc + array.lane_reads_inc,
            "wbuf_reads": array.wbuf_reads_inc,
            "wbuf_writes": dma.wbuf_write.en | bload.wbuf_write.en,
            "rram_reads": dma.wbuf_write.en,
            "dma_beats": dma.wbuf_write.en,
            "steps": seq.step_barrier,
            "epochs": seq.epoch_barrier,
            "gated_macs": array.gated_macs_inc,
            "zero_detects": array.zero_detects_inc,
            "skipped_steps": array.skipped_inc,
        }
        # Counters are cumulative from reset across launches (readers take differences).
        m.d.comb += [
            counters.clear.eq(0),
            self.spad_read.en.eq(
                gather.spad_reads_inc
                | vector.spad_reads_inc
                | bload.spad_reads_inc
                | softmax.spad_reads_inc
            ),
            self.rram_read.en.eq(dma.wbuf_write.en),
        ]
        m.d.comb += [getattr(counters.inc, name).eq(incs[name]) for name, _ in COUNTERS]
        connect(m, flipped(self.counters), counters.counts)
        return m
