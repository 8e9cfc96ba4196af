"""The chip: the accelerator core and the power-management unit, joined through isolation."""

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped
from voltflow.hw.signatures import BankPower, Counters, MemoryRead, MemoryWrite, outputs
from voltflow.hw.widths import ADDR_BITS, COUNTER_BITS, WORD_BITS
from voltflow.pmu.config import PROGRAM_ADDR_BITS, PmuConfig
from voltflow.pmu.ports import CommandMemory, LaunchPort, PmuCounters, RunLimits, Status
from voltflow.pmu.unit import PowerManagementUnit
from voltflow.rtl.accelerator import Accelerator
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.program import ProgramMemory

__all__ = ["ChipTop", "chip_signature"]


def chip_signature(accel: AccelConfig, pmu: PmuConfig) -> wiring.Signature:
    """The ports of :class:`ChipTop` for these configurations (the simulation wrapper reads them
    without elaborating the chip)."""
    return wiring.Signature(
        {
            "cmd": Out(CommandMemory()),
            "limits": In(RunLimits()),
            "prog": Out(ProgramMemory()),
            "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
            "spad_write": Out(MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
            "rram_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
            "op_done": Out(1),
            "op_index": Out(PROGRAM_ADDR_BITS),
            "launch": Out(outputs(LaunchPort())),
            "status": Out(Status()),
            "banks": Out(BankPower(n_banks=pmu.n_banks)),
            "counters": Out(Counters((name for name, _ in COUNTERS), bits=COUNTER_BITS)),
            "pmu_counters": Out(PmuCounters(pmu)),
        }
    )


class ChipTop(wiring.Component):
    """Accelerator + PowerManagementUnit. The PMU drives the accelerator's launches and its
    domain clock increments; every memory port of the core passes the bank switches' isolation
    (a read of a bank that is not ready returns 0, a write to it is dropped).

    Memories stay outside (ports), as for the accelerator alone; status, counters and bank
    state are outputs for the simulation wrapper, which generates its port list from this
    signature (``cosim/sim_top.py``).

    Attributes
    ----------
    cmd : Out(CommandMemory), limits : In(RunLimits)
        The PMU's command memory and the run's limits.
    prog : Out(ProgramMemory)
        The layer-program memory.
    spad_read : Out(MemoryRead), spad_write : Out(MemoryWrite), rram_read : Out(MemoryRead)
        The scratchpad and RRAM ports, after isolation.
    op_done : Out(1), op_index : Out(12)
        Pulses one cycle after each op's last cycle.
    launch : Out(outputs(LaunchPort))
        The PMU's launches (``start``, ``first``, ``count``), observed.
    status : Out(Status), banks : Out(BankPower)
        The PMU's status and bank power state.
    counters : Out(Counters)
        The accelerator's activity counters (:data:`~voltflow.rtl.activity_counters.COUNTERS`).
    pmu_counters : Out(PmuCounters)
        The PMU's counters (:data:`~voltflow.pmu.unit.COUNTER_PORTS`).
    """

    def __init__(self, accel: AccelConfig, pmu: PmuConfig) -> None:
        self.accel_config = accel
        self.pmu_config = pmu
        super().__init__(chip_signature(accel, pmu))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.core = core = Accelerator(self.accel_config)
        m.submodules.pmu = pmu = PowerManagementUnit(self.pmu_config)

        # PMU <-> accelerator: launches and domain clocks.
        connect(m, pmu.launch, core.launch)
        connect(m, pmu.clocks, core.clocks)
        m.d.comb += [
            getattr(self.launch, name).eq(getattr(pmu.launch, name))
            for name in self.launch.signature.members
        ]
        # Memories, status and counters that leave the chip as they are.
        connect(m, flipped(self.cmd), pmu.cmd)
        connect(m, flipped(self.limits), pmu.limits)
        connect(m, flipped(self.prog), core.prog)
        connect(m, flipped(self.status), pmu.status)
        connect(m, flipped(self.banks), pmu.banks)
        connect(m, flipped(self.counters), core.counters)
        connect(m, flipped(self.pmu_counters), pmu.counters)
        m.d.comb += [self.op_done.eq(core.op_done), self.op_index.eq(core.op_index)]

        # The scratchpad and RRAM through the isolation of the bank switches.
        access = pmu.access
        m.d.comb += [
            access.spad_raddr.eq(core.spad_read.addr),
            access.spad_re.eq(core.spad_read.en),
            access.spad_waddr.eq(core.spad_write.addr),
            access.spad_we.eq(core.spad_write.en),
            access.rram_raddr.eq(core.rram_read.addr),
            access.rram_re.eq(core.rram_read.en),
            self.spad_read.addr.eq(core.spad_read.addr),
            core.spad_read.data.eq(Mux(access.spad_rd_ok, self.spad_read.data, 0)),
            self.spad_write.addr.eq(core.spad_write.addr),
            self.spad_write.data.eq(core.spad_write.data),
            self.spad_write.en.eq(core.spad_write.en & access.spad_wr_ok),
            self.rram_read.addr.eq(core.rram_read.addr),
            core.rram_read.data.eq(Mux(access.rram_rd_ok, self.rram_read.data, 0)),
        ]
        return m
