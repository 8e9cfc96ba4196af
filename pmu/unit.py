"""The power-management unit: sequencer, bank switches, monitors and counters in one block."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.pmu.bank_switches import BankSwitches
from voltflow.pmu.config import TIME_BITS, PmuConfig
from voltflow.pmu.isa import ErrorCode
from voltflow.pmu.monitors import ViolationMonitors
from voltflow.pmu.power_counters import PowerCounters
from voltflow.pmu.sequencer import PmuSequencer
from voltflow.pmu.timing import TRANSITION_KINDS
from voltflow.rtl.config import ADDR_BITS
from voltflow.scheduler.chip import BankKind

__all__ = ["COUNTER_PORTS", "PowerManagementUnit"]

_DOMAINS = ("sys", "rram", "feeder")


def _counter_ports(config: PmuConfig) -> tuple[str, ...]:
    names = [f"cycles_{d}_{k}" for d in _DOMAINS for k in range(len(config.levels_v))]
    names += [*TRANSITION_KINDS, "asleep_cycles", "idle_cycles", "frames", "overruns"]
    names += [
        f"bank_cycles_{kind.value}_{k}" for kind in BankKind for k in range(len(config.levels_v))
    ]
    names += [f"wakes_{kind.value}" for kind in BankKind]
    names += ["overclock_count", "overclock_first", "access_count", "access_first"]
    return tuple(names)


#: The 64-bit counter outputs of the unit, for a given config (``COUNTER_PORTS(config)``).
COUNTER_PORTS = _counter_ports


class PowerManagementUnit(wiring.Component):
    """PmuSequencer + BankSwitches + ViolationMonitors + PowerCounters (docs/pmu.md).

    Ports: the sequencer's command-memory, accelerator and status ports, the bank switches'
    access and isolation ports, every counter of :data:`COUNTER_PORTS`, and the per-bank
    on-time read port ``bank_sel`` / ``bank_on_cycles``.
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = cfg = config
        n = cfg.n_banks
        ports: dict[str, object] = {
            "cmd_addr": Out(12),
            "cmd_rdata": In(64),
            "cmd_words": In(13),
            "prog_ops": In(13),
            "budget": In(32),
            "acc_start": Out(1),
            "acc_first": Out(12),
            "acc_count": Out(8),
            "acc_done": In(1),
            "spad_raddr": In(ADDR_BITS),
            "spad_re": In(1),
            "spad_waddr": In(ADDR_BITS),
            "spad_we": In(1),
            "rram_raddr": In(ADDR_BITS),
            "rram_re": In(1),
            "spad_rd_ok": Out(1),
            "spad_wr_ok": Out(1),
            "rram_rd_ok": Out(1),
            "bank_on": Out(n),
            "bank_ready": Out(n),
            "gated_now": Out(n),
            "now": Out(TIME_BITS),
            "halted": Out(1),
            "halt_code": Out(8),
            "error": Out(ErrorCode),
            "error_pc": Out(12),
            "end_cycle": Out(TIME_BITS),
            "launch_exec": Out(TIME_BITS),
            "launch_done": Out(1),
            "bank_sel": In(16),
            "bank_on_cycles": Out(TIME_BITS),
        }
        for d in _DOMAINS:
            ports[f"inc_{d}"] = Out(cfg.phase_bits)
        for name in COUNTER_PORTS(cfg):
            ports[name] = Out(TIME_BITS)
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        m.submodules.sequencer = seq = PmuSequencer(cfg)
        m.submodules.banks = self.banks = banks = BankSwitches(cfg)
        m.submodules.monitors = mon = ViolationMonitors(cfg)
        m.submodules.counters = cnt = PowerCounters(cfg)

        m.d.comb += [
            self.cmd_addr.eq(seq.cmd_addr),
            seq.cmd_rdata.eq(self.cmd_rdata),
            seq.cmd_words.eq(self.cmd_words),
            seq.prog_ops.eq(self.prog_ops),
            seq.budget.eq(self.budget),
            self.acc_start.eq(seq.acc_start),
            self.acc_first.eq(seq.acc_first),
            self.acc_count.eq(seq.acc_count),
            seq.acc_done.eq(self.acc_done),
            self.now.eq(seq.now),
            self.halted.eq(seq.halted),
            self.halt_code.eq(seq.halt_code),
            self.error.eq(seq.error),
            self.error_pc.eq(seq.error_pc),
            self.end_cycle.eq(seq.end_cycle),
            self.launch_exec.eq(seq.launch_exec),
            self.launch_done.eq(seq.launch_done),
        ]
        # Bank switches.
        m.d.comb += [
            banks.now.eq(seq.now),
            banks.delta.eq(seq.delta),
            banks.gate.eq(seq.bank_gate),
            banks.wake.eq(seq.bank_wake),
            banks.group.eq(seq.bank_group),
            banks.mask.eq(seq.bank_mask),
            banks.gate_all.eq(seq.gate_all),
            banks.sel.eq(self.bank_sel),
            self.bank_on_cycles.eq(banks.on_cycles),
            self.bank_on.eq(banks.on),
            self.bank_ready.eq(banks.ready),
            self.gated_now.eq(banks.gated_now),
        ]
        for name in ("spad_raddr", "spad_re", "spad_waddr", "spad_we", "rram_raddr", "rram_re"):
            m.d.comb += getattr(banks, name).eq(getattr(self, name))
        for name in ("spad_rd_ok", "spad_wr_ok", "rram_rd_ok"):
            m.d.comb += getattr(self, name).eq(getattr(banks, name))
        # Monitors.
        m.d.comb += [
            mon.now.eq(seq.now),
            mon.run.eq(~seq.halted),
            mon.access_violation.eq(banks.access_violation),
        ]
        for d in _DOMAINS:
            m.d.comb += [
                getattr(self, f"inc_{d}").eq(getattr(seq, f"inc_{d}")),
                getattr(mon, f"inc_{d}").eq(getattr(seq, f"inc_{d}")),
                getattr(mon, f"safe_{d}").eq(getattr(seq, f"safe_{d}")),
                getattr(cnt, f"level_{d}").eq(getattr(seq, f"level_{d}")),
            ]
        # Counters.
        m.d.comb += [
            cnt.delta.eq(seq.delta),
            cnt.asleep.eq(seq.asleep),
            cnt.idle.eq(seq.idle),
            cnt.frame.eq(seq.frame),
            cnt.overrun.eq(seq.overrun),
            cnt.rail_sets_inc.eq(seq.rail_set),
            cnt.supply_switches_inc.eq(seq.supply_switch),
            cnt.freq_changes_inc.eq(seq.freq_change),
            cnt.sleeps_inc.eq(seq.sleep),
            cnt.bank_wakes_inc.eq(banks.wakes),
            cnt.bank_gates_inc.eq(banks.gates),
        ]
        for kind in BankKind:
            m.d.comb += [
                getattr(cnt, f"on_{kind.value}").eq(getattr(banks, f"on_{kind.value}")),
                getattr(cnt, f"wakes_{kind.value}_inc").eq(getattr(banks, f"wakes_{kind.value}")),
            ]
        for name in COUNTER_PORTS(cfg):
            source = mon if name.startswith(("overclock", "access")) else cnt
            m.d.comb += getattr(self, name).eq(getattr(source, name))
        return m
