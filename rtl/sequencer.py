"""The layer sequencer: runs the program's descriptors through setup, phases, epochs and steps."""

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import ClockIncrements
from voltflow.pmu.config import PROGRAM_ADDR_BITS
from voltflow.pmu.ports import LaunchPort
from voltflow.rtl.arith import address_bits
from voltflow.rtl.buses import CURSOR_BITS, EngineControl, EpochCursor
from voltflow.rtl.config import ADDR_BITS, AccelConfig
from voltflow.rtl.divider import FractionalDivider
from voltflow.rtl.program import Descriptor, OpMode, ProgramMemory
from voltflow.scheduler.chip import Domain

__all__ = ["ENGINES", "ENGINE_DOMAINS", "LayerSequencer"]

#: The engines the sequencer drives, each through an :class:`EngineControl` member of its name,
#: and the DVFS domain whose divider ticks it: the domain whose supply powers it (the power
#: intent, ``cosim/upf.py``, reads the same table).
ENGINE_DOMAINS: dict[str, Domain] = {
    "gather": Domain.FEEDER,
    "writer": Domain.FEEDER,
    "array": Domain.SYS,
    "vector": Domain.FEEDER,
    "dma": Domain.RRAM,
    "bload": Domain.FEEDER,
    "softmax": Domain.FEEDER,
}
ENGINES = tuple(ENGINE_DOMAINS)


class LayerSequencer(wiring.Component):
    """Fetches descriptors and drives the engines through the barriers of docs/timing-model.md.

    Per op: ``op_setup`` cycles (fetch, decode); then a VECTOR op runs the vector unit alone, or
    an array op runs phases 0..E: phase e starts the DMA of epoch e (e < E) and the compute of
    epoch e-1 (e >= 1), and ends when both have finished; each phase is followed by
    ``epoch_sync`` cycles. Compute of an epoch is T + 3 steps; step s starts the gather of tile s
    (s < T), the write of tile s-3 (s >= 3), the stream of tile s-1 (1 <= s <= T) or the flush
    (s = T + 1), and ends when every started engine has finished, followed by ``step_sync``
    cycles. The feeder and sys dividers run only inside steps and the rram divider only while the
    DMA is busy, each restarting from phase zero, so n ticks take ceil(n 2^B / inc) cycles. The
    engines are self-timed: their own loops decide when they finish.

    ``launch.start`` (held until ``launch.done``) runs ``launch.count`` descriptors from
    ``launch.first`` (fewer if one has ``last`` set); ``done`` stays high until ``start`` drops,
    then the sequencer is idle again. ``clocks`` are the domains' divider increments, ``prog``
    the program memory's read port.
    ``op_done`` pulses (registered) one cycle after each op's last cycle, with ``op_index``;
    ``done`` rises with it after the last op.
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = cfg = config
        self.wbuf_bits = address_bits(2 * cfg.half_words)
        super().__init__(
            {
                "launch": In(LaunchPort()),
                "clocks": In(ClockIncrements(phase_bits=cfg.phase_bits)),
                "prog": Out(ProgramMemory()),
                "desc": Out(Descriptor),
                **{name: Out(EngineControl()) for name in ENGINES},
                "epoch": Out(EpochCursor()),
                "array_flush": Out(1),
                "dma_src": Out(ADDR_BITS),
                "dma_words": Out(self.wbuf_bits),
                "dma_half": Out(1),
                "bload_block": Out(CURSOR_BITS),
                "bload_nb": Out(CURSOR_BITS),
                "bload_pix0": Out(ADDR_BITS),
                "bload_lane_lo": Out(3),
                "bload_first": Out(1),
                "bload_half": Out(1),
                "running": Out(1),
                "step_barrier": Out(1),
                "epoch_barrier": Out(1),
                "op_done": Out(1),
                "op_index": Out(PROGRAM_ADDR_BITS),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        desc = self.desc
        dividers = {}
        for domain in (Domain.SYS, Domain.FEEDER, Domain.RRAM):
            divider = FractionalDivider(phase_bits=cfg.phase_bits)
            m.submodules[f"div_{domain.value}"] = dividers[domain] = divider
            m.d.comb += divider.inc.eq(getattr(self.clocks, domain.value))
        div_sys, div_feeder, div_rram = (
            dividers[Domain.SYS],
            dividers[Domain.FEEDER],
            dividers[Domain.RRAM],
        )
        m.d.comb += div_rram.run.eq(self.dma.busy)
        # Each engine ticks with its domain's divider.
        m.d.comb += [
            getattr(self, name).tick.eq(dividers[domain].tick)
            for name, domain in ENGINE_DOMAINS.items()
        ]

        pc = Signal(PROGRAM_ADDR_BITS)
        ops_left = Signal(8)
        count = Signal(16)
        step = Signal(25)
        m.d.comb += self.prog.addr.eq(pc)
        is_vector = Signal()
        is_softmax = desc.mode == OpMode.SOFTMAX
        m.d.comb += is_vector.eq(
            (desc.mode == OpMode.MAXPOOL)
            | (desc.mode == OpMode.AVGPOOL)
            | (desc.mode == OpMode.ADD)
            | is_softmax
        )
        dw = desc.mode == OpMode.DEPTHWISE
        scores = desc.mode == OpMode.SCORES
        # Attention matmuls: B from the scratchpad, loaded before each pass's compute.
        mm = scores | (desc.mode == OpMode.CONTEXT)
        lane_shift = cfg.lanes.bit_length() - 1

        # ---- epoch cursor: the next epoch to load ------------------------------------------------
        ld_more = Signal()
        ld_j = Signal(12)  # global index of its first pass
        ld_jp = Signal(12)  # index within its group
        ld_g = Signal(12)
        ld_cb0 = Signal(12)  # its group's first input channel block
        ld_off = Signal(ADDR_BITS)  # RRAM offset of its first pass
        ld_half = Signal()
        left = desc.group_passes - ld_jp
        ld_q = Signal(12)
        m.d.comb += ld_q.eq(Mux(desc.resident < left, desc.resident, left))
        ld_words = Signal(self.wbuf_bits)
        # A pass: K_pad weight words, the bias words, a per-channel op's requantisation words.
        pass_words = desc.k_pad + cfg.bias_words + Mux(desc.per_channel, cfg.requant_words, 0)
        m.d.comb += ld_words.eq(ld_q * pass_words)
        # The loaded epoch waiting for its compute phase, and the one being computed.
        pend = Signal()
        pend_q, pend_jp0, pend_cb0, pend_cbo0 = (
            Signal(CURSOR_BITS, name=f"pend_{n}") for n in ("q", "jp0", "cb0", "cbo0")
        )
        pend_half = Signal()
        m.d.comb += [
            self.dma_src.eq(desc.rram_base + ld_off),
            self.dma_words.eq(ld_words),
            self.dma_half.eq(ld_half),
        ]
        # Attention: batch b = p * heads + h is group b; where the next epoch's batch stands.
        ld_h = Signal(12)
        ld_px = Signal(8)
        ld_row = Signal(ADDR_BITS)  # py * W
        ld_pix0 = Signal(ADDR_BITS)  # py * W + px
        ld_head_ch = Signal(CURSOR_BITS)  # h * dh
        ld_lane_lo = Signal(3)
        head_a = Mux(scores, desc.a_ch, desc.b_ch) + ld_head_ch
        m.d.comb += ld_lane_lo.eq(head_a[:lane_shift])
        pend_pix0 = Signal(ADDR_BITS)
        pend_head_ch = Signal(CURSOR_BITS)
        pend_lane_lo = Signal(3)
        b_block = ((desc.b_ch + ld_head_ch) >> lane_shift) + Mux(scores, 0, ld_jp)
        m.d.comb += [
            self.bload_block.eq(b_block),
            self.bload_nb.eq(ld_jp),
            self.bload_pix0.eq(ld_pix0),
            self.bload_lane_lo.eq(ld_lane_lo),
            self.bload_first.eq(ld_jp == 0),
            self.bload_half.eq(ld_half),
        ]

        tiles = desc.tiles

        def start_step(s: int | Value) -> None:
            """Start the engines of step ``s`` (a signal, or 0 for an epoch's first step)."""
            if isinstance(s, int):  # step 0 only gathers tile 0 (every op has a tile)
                assert s == 0
                m.d.comb += self.gather.start.eq(1)
            else:
                m.d.comb += [
                    self.gather.start.eq(s < tiles),
                    self.writer.start.eq(s >= 3),
                    self.array.start.eq(((s >= 1) & (s <= tiles)) | (s == tiles + 1)),
                    self.array_flush.eq(s == tiles + 1),
                ]
            m.d.sync += step.eq(s)

        def epoch_sync() -> None:
            """The phase has ended: the epoch barrier, then ``epoch_sync`` cycles."""
            m.d.comb += self.epoch_barrier.eq(1)
            m.d.sync += count.eq(cfg.epoch_sync - 1)
            m.next = "EPOCH_SYNC"

        def take_epoch() -> None:
            """The next epoch is being loaded: it waits for its compute; the cursor moves on."""
            a_block = (desc.a_ch + ld_head_ch) >> lane_shift
            m.d.sync += [
                pend.eq(1),
                pend_q.eq(ld_q),
                pend_jp0.eq(Mux(dw, ld_j, ld_jp)),
                pend_cb0.eq(Mux(dw, ld_j, Mux(scores, a_block, ld_cb0))),
                pend_cbo0.eq(ld_j),
                pend_half.eq(ld_half),
                pend_pix0.eq(ld_pix0),
                pend_head_ch.eq(ld_head_ch),
                pend_lane_lo.eq(ld_lane_lo),
                ld_off.eq(ld_off + ld_words),
                ld_half.eq(~ld_half),
                ld_j.eq(ld_j + ld_q),
                ld_jp.eq(ld_jp + ld_q),
            ]
            with m.If(ld_jp + ld_q == desc.group_passes):
                m.d.sync += [ld_jp.eq(0), ld_g.eq(ld_g + 1), ld_cb0.eq(ld_cb0 + desc.cb)]
                with m.If(ld_g + 1 == desc.groups):
                    m.d.sync += ld_more.eq(0)
                with m.If(mm):
                    # The next batch: the next head, or head 0 of the next patch position.
                    m.d.sync += [ld_h.eq(ld_h + 1), ld_head_ch.eq(ld_head_ch + desc.head_ch)]
                    with m.If(ld_h == desc.heads - 1):
                        m.d.sync += [
                            ld_h.eq(0),
                            ld_head_ch.eq(0),
                            ld_px.eq(ld_px + 1),
                            ld_pix0.eq(ld_pix0 + 1),
                        ]
                        with m.If(ld_px == desc.pw - 1):
                            m.d.sync += [
                                ld_px.eq(0),
                                ld_row.eq(ld_row + desc.map_w),
                                ld_pix0.eq(ld_row + desc.map_w),
                            ]

        def begin_epoch() -> None:
            """Start the compute of the loaded epoch."""
            m.d.comb += self.epoch.begin.eq(1)
            m.d.sync += [
                self.epoch.q.eq(pend_q),
                self.epoch.jp0.eq(pend_jp0),
                self.epoch.cb0.eq(pend_cb0),
                self.epoch.cbo0.eq(pend_cbo0),
                self.epoch.half.eq(pend_half),
                self.epoch.pix0.eq(pend_pix0),
                self.epoch.head_ch.eq(pend_head_ch),
                self.epoch.lane_lo.eq(pend_lane_lo),
            ]
            start_step(0)
            m.next = "RUN"

        def launch_phase() -> None:
            """Start phase: DMA of the next epoch (if any), compute of the loaded one (if any).
            An attention matmul alternates: the B load of a pass, then its compute."""
            with m.If(mm):
                with m.If(pend):
                    m.d.sync += pend.eq(0)
                    begin_epoch()
                with m.Else():
                    m.d.comb += self.bload.start.eq(1)
                    take_epoch()
                    m.next = "BLOAD"
            with m.Else():
                with m.If(ld_more):
                    m.d.comb += self.dma.start.eq(1)
                    take_epoch()
                with m.Else():
                    m.d.sync += pend.eq(0)
                with m.If(pend):
                    begin_epoch()
                with m.Else():
                    m.next = "WAIT_DMA"

        dma_idle_next = ~self.dma.busy | self.dma.done
        feeder_idle_next = (~self.gather.busy | self.gather.done) & (
            ~self.writer.busy | self.writer.done
        )
        sys_idle_next = ~self.array.busy | self.array.done

        op_end = Signal()
        m.d.sync += [self.op_done.eq(op_end), self.op_index.eq(pc)]

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.sync += count.eq(cfg.op_setup - 1)
                with m.If(self.launch.start):
                    m.d.sync += [pc.eq(self.launch.first), ops_left.eq(self.launch.count)]
                    m.next = "SETUP"
            with m.State("SETUP"):
                m.d.comb += self.running.eq(1)
                m.d.sync += [
                    desc.eq(self.prog.data),
                    count.eq(count - 1),
                    ld_more.eq(~is_vector),
                    ld_j.eq(0),
                    ld_jp.eq(0),
                    ld_g.eq(0),
                    ld_cb0.eq(0),
                    ld_off.eq(0),
                    ld_half.eq(0),
                    pend.eq(0),
                    ld_h.eq(0),
                    ld_px.eq(0),
                    ld_row.eq(0),
                    ld_pix0.eq(0),
                    ld_head_ch.eq(0),
                ]
                with m.If(count == 0):
                    # desc was latched in the first setup cycle and the cursors set from it in
                    # the second (op_setup >= 3).
                    with m.If(is_vector):
                        m.d.comb += [
                            self.vector.start.eq(~is_softmax),
                            self.softmax.start.eq(is_softmax),
                        ]
                        m.next = "VEC_RUN"
                    with m.Else():
                        launch_phase()
            with m.State("RUN"):
                m.d.comb += [self.running.eq(1), div_sys.run.eq(1), div_feeder.run.eq(1)]
                with m.If(feeder_idle_next & sys_idle_next):
                    m.d.comb += self.step_barrier.eq(1)
                    m.d.sync += count.eq(cfg.step_sync - 1)
                    m.next = "STEP_SYNC"
            with m.State("STEP_SYNC"):
                m.d.comb += self.running.eq(1)
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(step == tiles + 2):
                        with m.If(dma_idle_next):
                            epoch_sync()
                        with m.Else():
                            m.next = "WAIT_DMA"
                    with m.Else():
                        start_step(step + 1)
                        m.next = "RUN"
            with m.State("WAIT_DMA"):
                m.d.comb += self.running.eq(1)
                with m.If(dma_idle_next):
                    epoch_sync()
            with m.State("VEC_RUN"):
                m.d.comb += [self.running.eq(1), div_feeder.run.eq(1)]
                with m.If(
                    (~self.vector.busy | self.vector.done)
                    & (~self.softmax.busy | self.softmax.done)
                ):
                    epoch_sync()
            with m.State("BLOAD"):
                m.d.comb += [self.running.eq(1), div_feeder.run.eq(1)]
                with m.If(~self.bload.busy | self.bload.done):
                    epoch_sync()
            with m.State("EPOCH_SYNC"):
                m.d.comb += self.running.eq(1)
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    with m.If(ld_more | pend):
                        launch_phase()
                    with m.Else():
                        m.d.comb += op_end.eq(1)
                        m.d.sync += count.eq(cfg.op_setup - 1)
                        with m.If(desc.last | (ops_left == 1)):
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [pc.eq(pc + 1), ops_left.eq(ops_left - 1)]
                            m.next = "SETUP"
            with m.State("DONE"):
                # Held until the launcher drops start (a PMU LAUNCH handshake).
                m.d.comb += self.launch.done.eq(1)
                with m.If(~self.launch.start):
                    m.next = "IDLE"
        return m
