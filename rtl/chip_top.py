"""The chip: the accelerator core and the power-management unit, joined through isolation.

Also the chip's power wiring by its Verilog names (:func:`power_wiring`): which blocks each DVFS
domain powers, the PMU's switch enables, the isolated memory ports. The power intent
(``cosim/upf.py``) reads it, so every name in the UPF comes from the design that uses it.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow, In, Out, connect, flipped
from voltflow.hw.signatures import BankPower, Counters, MemoryRead, MemoryWrite, outputs
from voltflow.hw.widths import ADDR_BITS, COUNTER_BITS, WORD_BITS, WORD_LANES
from voltflow.pmu.config import PROGRAM_ADDR_BITS, PmuConfig
from voltflow.pmu.ports import (
    STORE_ADDR_BITS,
    CommandMemory,
    LaunchPort,
    PmuCounters,
    RunLimits,
    Status,
    SupplySwitches,
)
from voltflow.pmu.unit import PowerManagementUnit
from voltflow.rtl.accelerator import Accelerator, block_domains
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.rtl.config import AccelConfig
from voltflow.rtl.program import ProgramMemory
from voltflow.scheduler.chip import BANK_DOMAIN, BankKind, Domain

__all__ = [
    "CORE",
    "MEMORY_ISOLATION",
    "MEMORY_PORT_BANKS",
    "PMU",
    "ChipTop",
    "IsolatedPort",
    "PortIsolation",
    "PowerWiring",
    "chip_signature",
    "port_name",
    "power_wiring",
]

#: Instance names of the accelerator core and of the PMU in the chip (and its Verilog).
CORE = "core"
PMU = "pmu"


@dataclass(frozen=True, slots=True)
class PortIsolation:
    """A memory-port signal the chip isolates: ``<port>.<signal>`` is held at ``clamp`` unless
    the bank switches grant the access (the PMU's ``access.<grant>``: the addressed bank is
    ready)."""

    port: str
    signal: str
    grant: str
    clamp: int = 0


#: The isolation at the chip's memory ports (docs/pmu.md, "Banks"): a read of a bank that is not
#: ready returns 0, a write to it is dropped. :class:`ChipTop` builds it from this table.
MEMORY_ISOLATION: tuple[PortIsolation, ...] = (
    PortIsolation("spad_read", "data", "spad_rd_ok"),
    PortIsolation("spad_write", "en", "spad_wr_ok"),
    PortIsolation("rram_read", "data", "rram_rd_ok"),
)
#: The banks behind each memory port of the chip (the scratchpad holds the ifmap banks, then the
#: ofmap banks; the RRAM its own).
MEMORY_PORT_BANKS: dict[str, tuple[BankKind, ...]] = {
    "spad_read": (BankKind.IFMAP, BankKind.OFMAP),
    "spad_write": (BankKind.IFMAP, BankKind.OFMAP),
    "rram_read": (BankKind.RRAM,),
}


def port_name(path: Sequence[str | int]) -> str:
    """The Verilog port of a flattened signature member: ``("banks", "on")`` is ``banks__on``
    (Amaranth's naming of a component's ports)."""
    return "__".join(str(p) for p in path)


def chip_signature(accel: AccelConfig, pmu: PmuConfig) -> wiring.Signature:
    """The ports of :class:`ChipTop` for these configurations (the simulation wrapper reads them
    without elaborating the chip)."""
    return wiring.Signature(
        {
            "cmd": Out(CommandMemory()),
            "limits": In(RunLimits()),
            "prog": Out(ProgramMemory()),
            "spad_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
            "spad_write": Out(
                MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS, mask_bits=WORD_LANES)
            ),
            "rram_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
            "store_read": Out(MemoryRead(addr_bits=STORE_ADDR_BITS, data_bits=WORD_BITS)),
            "store_write": Out(MemoryWrite(addr_bits=STORE_ADDR_BITS, data_bits=WORD_BITS)),
            "op_done": Out(1),
            "op_index": Out(PROGRAM_ADDR_BITS),
            "launch": Out(outputs(LaunchPort())),
            "status": Out(Status()),
            "banks": Out(BankPower(n_banks=pmu.n_banks)),
            "supply": Out(SupplySwitches(rails=pmu.rails)),
            "counters": Out(Counters((name for name, _ in COUNTERS), bits=COUNTER_BITS)),
            "pmu_counters": Out(PmuCounters(pmu)),
        }
    )


def _flows(signature: wiring.Signature) -> dict[tuple[str | int, ...], Flow]:
    """The direction of every port of ``signature``, seen from the component that has it."""
    return {
        tuple(path): member.flow for path, member in signature.members.flatten() if member.is_port
    }


@dataclass(frozen=True, slots=True)
class IsolatedPort:
    """A chip port with isolation: ``port`` (``"in"`` into the chip or ``"out"``) is held at
    ``clamp`` while ``enable`` (a PMU output, ``pmu/<port>``) is low."""

    port: str
    direction: str
    enable: str
    clamp: int


@dataclass(frozen=True, slots=True)
class PowerWiring:
    """The chip's power-management wiring, by the names of its generated Verilog (top module
    ports, ``instance/port`` pins, ``/``-separated instance paths).

    Attributes
    ----------
    blocks : tuple of (str, Domain)
        Instance paths of the blocks a DVFS domain powers; every other block is always-on.
    bank_enable : str
        The top port whose bit b powers bank b (``banks.on``, driven by the PMU).
    supply_select, supply_on : tuple of (Domain, str)
        Per domain the top port whose bit r connects it to rail r, and the one that is high
        while it is connected to any rail (``supply``, driven by the PMU).
    isolation : tuple of IsolatedPort
        The isolated memory-port signals (:data:`MEMORY_ISOLATION`).
    bank_ports : tuple of (str, str, Domain)
        Every memory-port signal (name, ``"in"``/``"out"``) and the domain of the banks behind it.
    """

    blocks: tuple[tuple[str, Domain], ...]
    bank_enable: str
    supply_select: tuple[tuple[Domain, str], ...]
    supply_on: tuple[tuple[Domain, str], ...]
    isolation: tuple[IsolatedPort, ...]
    bank_ports: tuple[tuple[str, str, Domain], ...]


def power_wiring(accel: AccelConfig, pmu: PmuConfig) -> PowerWiring:
    """The power wiring of :class:`ChipTop` with these configurations (no elaboration)."""
    flows = _flows(chip_signature(accel, pmu))

    def direction(path: tuple[str | int, ...]) -> str:
        return "in" if flows[path] is Flow.In else "out"

    bank_ports = []
    for port, kinds in MEMORY_PORT_BANKS.items():
        (domain,) = {BANK_DOMAIN[kind] for kind in kinds}
        bank_ports += [
            (port_name(path), direction(path), domain) for path in flows if path[0] == port
        ]
    return PowerWiring(
        blocks=tuple((f"{CORE}/{name}", domain) for name, domain in block_domains().items()),
        bank_enable=port_name(("banks", "on")),
        supply_select=tuple(
            (domain, port_name(("supply", domain.value, "select"))) for domain in Domain
        ),
        supply_on=tuple((domain, port_name(("supply", domain.value, "on"))) for domain in Domain),
        isolation=tuple(
            IsolatedPort(
                port=port_name((iso.port, iso.signal)),
                direction=direction((iso.port, iso.signal)),
                # The PMU's bank switches drive the grants (ChipTop connects pmu.access).
                enable=f"{PMU}/{port_name(('access', iso.grant))}",
                clamp=iso.clamp,
            )
            for iso in MEMORY_ISOLATION
        ),
        bank_ports=tuple(bank_ports),
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
        The scratchpad and RRAM ports, after isolation (the scratchpad's are the PMU's while a
        SAVE or RESTORE copies).
    store_read : Out(MemoryRead), store_write : Out(MemoryWrite)
        The checkpoint store's ports (driven by the PMU; pmu/store.py).
    op_done : Out(1), op_index : Out(12)
        Pulses one cycle after each op's last cycle.
    launch : Out(outputs(LaunchPort))
        The PMU's launches (``start``, ``first``, ``count``), observed.
    status : Out(Status), banks : Out(BankPower)
        The PMU's status and bank power state (``banks.on``: the bank switches' enables).
    supply : Out(SupplySwitches)
        The enables of the domains' supply switches (which rail each domain is connected to).
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
        m.submodules[CORE] = core = Accelerator(self.accel_config)
        m.submodules[PMU] = pmu = PowerManagementUnit(self.pmu_config)

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
        connect(m, flipped(self.supply), pmu.supply)
        connect(m, flipped(self.counters), core.counters)
        connect(m, flipped(self.pmu_counters), pmu.counters)
        connect(m, flipped(self.store_read), pmu.store_read)
        connect(m, flipped(self.store_write), pmu.store_write)
        m.d.comb += [self.op_done.eq(core.op_done), self.op_index.eq(core.op_index)]

        # The scratchpad and RRAM through the isolation of the bank switches. Between launches
        # the PMU's checkpoint copies use the scratchpad ports (SAVE reads, RESTORE writes).
        access = pmu.access
        copy_read, copy_write = pmu.copy_read, pmu.copy_write
        spad_raddr = Mux(copy_read.en, copy_read.addr, core.spad_read.addr)
        spad_we = core.spad_write.en | copy_write.en
        m.d.comb += [
            access.spad_raddr.eq(spad_raddr),
            access.spad_re.eq(core.spad_read.en | copy_read.en),
            access.spad_waddr.eq(Mux(copy_write.en, copy_write.addr, core.spad_write.addr)),
            access.spad_we.eq(spad_we),
            access.rram_raddr.eq(core.rram_read.addr),
            access.rram_re.eq(core.rram_read.en),
            self.spad_read.addr.eq(spad_raddr),
            self.spad_write.addr.eq(access.spad_waddr),
            self.spad_write.data.eq(Mux(copy_write.en, copy_write.data, core.spad_write.data)),
            self.spad_write.mask.eq(
                Mux(copy_write.en, (1 << WORD_LANES) - 1, core.spad_write.mask)
            ),
            self.rram_read.addr.eq(core.rram_read.addr),
            copy_read.data.eq(core.spad_read.data),
        ]
        flows = _flows(self.signature)
        for iso in MEMORY_ISOLATION:
            outside = getattr(getattr(self, iso.port), iso.signal)
            inside = getattr(getattr(core, iso.port), iso.signal)
            if (iso.port, iso.signal) == ("spad_write", "en"):
                inside = spad_we  # the core's or the PMU's copy
            grant = getattr(access, iso.grant)
            if flows[(iso.port, iso.signal)] is Flow.In:  # from the banks into the core
                m.d.comb += inside.eq(Mux(grant, outside, iso.clamp))
            else:
                m.d.comb += outside.eq(Mux(grant, inside, iso.clamp))
        return m
