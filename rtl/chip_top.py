"""The chip: the accelerator core and the power-management unit, joined through isolation."""

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.pmu.config import TIME_BITS, PmuConfig
from voltflow.pmu.isa import ErrorCode
from voltflow.pmu.unit import COUNTER_PORTS, PowerManagementUnit
from voltflow.rtl.accelerator import Accelerator
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.rtl.config import ADDR_BITS, COUNTER_BITS, AccelConfig
from voltflow.rtl.program import DESCRIPTOR_BITS

__all__ = ["ChipTop"]


class ChipTop(wiring.Component):
    """Accelerator + PowerManagementUnit. The PMU drives the accelerator's launches and its
    domain clock increments; every memory port of the core passes the bank switches' isolation
    (a read of a bank that is not ready returns 0, a write to it is dropped).

    Memories stay outside (ports), as for the accelerator alone: the command memory
    (``cmd_addr``/``cmd_rdata``), the layer program, the scratchpad and the RRAM. Status,
    activity counters (``COUNTERS``), PMU counters (``COUNTER_PORTS``) and bank state are
    outputs for the simulation wrapper.
    """

    def __init__(self, accel: AccelConfig, pmu: PmuConfig) -> None:
        self.accel_config = accel
        self.pmu_config = pmu
        n = pmu.n_banks
        ports: dict[str, object] = {
            "cmd_addr": Out(12),
            "cmd_rdata": In(64),
            "cmd_words": In(13),
            "prog_ops": In(13),
            "budget": In(32),
            "prog_addr": Out(12),
            "prog_rdata": In(DESCRIPTOR_BITS),
            "spad_raddr": Out(ADDR_BITS),
            "spad_rdata": In(64),
            "spad_waddr": Out(ADDR_BITS),
            "spad_wdata": Out(64),
            "spad_we": Out(1),
            "rram_raddr": Out(ADDR_BITS),
            "rram_rdata": In(64),
            "op_done": Out(1),
            "op_index": Out(12),
            "acc_start": Out(1),
            "acc_first": Out(12),
            "acc_count": Out(8),
            "now": Out(TIME_BITS),
            "halted": Out(1),
            "halt_code": Out(8),
            "error": Out(ErrorCode),
            "error_pc": Out(12),
            "end_cycle": Out(TIME_BITS),
            "launch_exec": Out(TIME_BITS),
            "launch_done": Out(1),
            "bank_on": Out(n),
            "bank_ready": Out(n),
            "gated_now": Out(n),
            "bank_sel": In(16),
            "bank_on_cycles": Out(TIME_BITS),
        }
        for name, _ in COUNTERS:
            ports[name] = Out(COUNTER_BITS)
        for name in COUNTER_PORTS(pmu):
            ports[name] = Out(TIME_BITS)
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.core = core = Accelerator(self.accel_config)
        m.submodules.pmu = pmu = PowerManagementUnit(self.pmu_config)

        # PMU <-> accelerator: launches and domain clocks.
        m.d.comb += [
            core.start.eq(pmu.acc_start),
            core.first_op.eq(pmu.acc_first),
            core.op_count.eq(pmu.acc_count),
            pmu.acc_done.eq(core.done),
            core.inc_sys.eq(pmu.inc_sys),
            core.inc_rram.eq(pmu.inc_rram),
            core.inc_feeder.eq(pmu.inc_feeder),
        ]
        # Memories through the isolation of the bank switches.
        m.d.comb += [
            pmu.spad_raddr.eq(core.spad_raddr),
            pmu.spad_re.eq(core.spad_re),
            pmu.spad_waddr.eq(core.spad_waddr),
            pmu.spad_we.eq(core.spad_we),
            pmu.rram_raddr.eq(core.rram_raddr),
            pmu.rram_re.eq(core.rram_re),
            self.spad_raddr.eq(core.spad_raddr),
            core.spad_rdata.eq(Mux(pmu.spad_rd_ok, self.spad_rdata, 0)),
            self.spad_waddr.eq(core.spad_waddr),
            self.spad_wdata.eq(core.spad_wdata),
            self.spad_we.eq(core.spad_we & pmu.spad_wr_ok),
            self.rram_raddr.eq(core.rram_raddr),
            core.rram_rdata.eq(Mux(pmu.rram_rd_ok, self.rram_rdata, 0)),
            self.prog_addr.eq(core.prog_addr),
            core.prog_rdata.eq(self.prog_rdata),
            self.op_done.eq(core.op_done),
            self.op_index.eq(core.op_index),
        ]
        # Command memory and status.
        m.d.comb += [
            self.cmd_addr.eq(pmu.cmd_addr),
            pmu.cmd_rdata.eq(self.cmd_rdata),
            pmu.cmd_words.eq(self.cmd_words),
            pmu.prog_ops.eq(self.prog_ops),
            pmu.budget.eq(self.budget),
            pmu.bank_sel.eq(self.bank_sel),
        ]
        for name in (
            "acc_start", "acc_first", "acc_count", "now", "halted", "halt_code", "error",
            "error_pc", "end_cycle", "launch_exec", "launch_done", "bank_on", "bank_ready",
            "gated_now", "bank_on_cycles",
        ):  # fmt: skip
            m.d.comb += getattr(self, name).eq(getattr(pmu, name))
        for name, _ in COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(core, name))
        for name in COUNTER_PORTS(self.pmu_config):
            m.d.comb += getattr(self, name).eq(getattr(pmu, name))
        return m
