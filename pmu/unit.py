"""The power-management unit: sequencer, bank switches, monitors and counters in one block."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped
from voltflow.hw.signatures import BankAccess, BankPower
from voltflow.pmu.bank_switches import BankSwitches
from voltflow.pmu.config import TRANSITION_KINDS, PmuConfig
from voltflow.pmu.monitors import ViolationMonitors
from voltflow.pmu.ports import (
    VIOLATION_COUNTERS,
    PmuCounters,
    power_counter_names,
    sequencer_buses,
)
from voltflow.pmu.power_counters import PowerCounters
from voltflow.pmu.sequencer import PmuSequencer
from voltflow.scheduler.chip import BankKind

__all__ = ["COUNTER_PORTS", "PowerManagementUnit"]


def _counter_ports(config: PmuConfig) -> tuple[str, ...]:
    return (*power_counter_names(config), *VIOLATION_COUNTERS)


#: The names of the unit's 64-bit counters, in output order, for a given config
#: (``COUNTER_PORTS(config)``): the members of ``counters.power`` then ``counters.violations``.
COUNTER_PORTS = _counter_ports


class PowerManagementUnit(wiring.Component):
    """PmuSequencer + BankSwitches + ViolationMonitors + PowerCounters (docs/pmu.md).

    Attributes
    ----------
    cmd : Out(CommandMemory)
        The command memory's read port.
    limits : In(RunLimits)
        Command words, layer-program ops and command budget of the run.
    launch : Out(LaunchPort)
        The accelerator's launches.
    clocks : Out(ClockIncrements)
        The accelerator's domain clock increments.
    supply : Out(SupplySwitches)
        The enables of the switches that connect each domain's supply to a rail.
    access : In(BankAccess)
        The accelerator's memory accesses, and the isolation grants (``*_ok``) back.
    status : Out(Status)
        ``now``, the stop (HALT or error) and the last LAUNCH.
    banks : Out(BankPower)
        Bank power state and the per-bank on-time read port.
    counters : Out(PmuCounters)
        Every counter (:data:`COUNTER_PORTS`).
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = config
        super().__init__(
            {
                **sequencer_buses(config),
                "access": In(BankAccess()),
                "banks": Out(BankPower(n_banks=config.n_banks)),
                "counters": Out(PmuCounters(config)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        m.submodules.sequencer = seq = PmuSequencer(cfg)
        m.submodules.banks = self.switches = banks = BankSwitches(cfg)
        m.submodules.monitors = mon = ViolationMonitors(cfg)
        m.submodules.counters = cnt = PowerCounters(cfg)

        # Buses that leave the unit, and the sequencer's buses to the other blocks.
        for name in sequencer_buses(cfg):
            if name != "clocks":
                connect(m, flipped(getattr(self, name)), getattr(seq, name))
        connect(m, seq.clocks, mon.clocks, flipped(self.clocks))
        connect(m, seq.safe, mon.safe)
        connect(m, seq.level, cnt.level)
        connect(m, seq.banks, banks.command)
        connect(m, flipped(self.access), banks.access)
        connect(m, flipped(self.banks), banks.power)
        connect(m, flipped(self.counters.power), cnt.counters)
        connect(m, flipped(self.counters.violations), mon.counters)

        # Time, and the events the monitors and counters count.
        now = seq.status.now
        m.d.comb += [
            banks.now.eq(now),
            banks.delta.eq(seq.delta),
            mon.now.eq(now),
            mon.run.eq(~seq.status.halted),
            mon.access_violation.eq(banks.access_violation),
            cnt.delta.eq(seq.delta),
            cnt.asleep.eq(seq.asleep),
            cnt.idle.eq(seq.idle),
            cnt.frame.eq(seq.frame),
            cnt.overrun.eq(seq.overrun),
            cnt.store_writes_inc.eq(seq.store_write_event),
            cnt.store_reads_inc.eq(seq.store_read_event),
            cnt.copy_reads_inc.eq(seq.copy_read.en),
            cnt.copy_writes_inc.eq(seq.copy_write.en),
        ]
        # Transition counts: the sequencer's pulses and the bank switches' bank counts.
        events = {
            "rail_sets": seq.rail_set,
            "supply_switches": seq.supply_switch,
            "freq_changes": seq.freq_change,
            "sleeps": seq.sleep,
            "bank_wakes": banks.wakes,
            "bank_gates": banks.gates,
        }
        assert set(events) == set(TRANSITION_KINDS)
        for transition, value in events.items():
            m.d.comb += getattr(cnt, f"{transition}_inc").eq(value)
        for kind in BankKind:
            m.d.comb += [
                getattr(cnt, f"on_{kind.value}").eq(getattr(banks, f"on_{kind.value}")),
                getattr(cnt, f"wakes_{kind.value}_inc").eq(getattr(banks, f"wakes_{kind.value}")),
            ]
        return m
