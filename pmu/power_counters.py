"""Power counters: time per domain per voltage level, transitions by kind, sleep and frames."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.pmu.config import TIME_BITS, PmuConfig
from voltflow.pmu.timing import TRANSITION_KINDS
from voltflow.scheduler.chip import BankKind

__all__ = ["PowerCounters"]

_DOMAINS = ("sys", "rram", "feeder")
#: The domain whose supply a bank kind's leakage is charged at.
_BANK_DOMAIN = {BankKind.IFMAP: "feeder", BankKind.OFMAP: "feeder", BankKind.RRAM: "rram"}


class PowerCounters(wiring.Component):
    """Reference-cycle and event counters of the PMU (read at the end of a run).

    Every time counter adds ``delta`` (the cycles the present tick stands for), so the PMU's
    time skips are counted in full.

    Attributes
    ----------
    delta : In(64)
    level_<d> : In(5)
        The domain's voltage code (0: unpowered, not counted).
    asleep, idle, frame, overrun : In(1)
    rail_sets, supply_switches, freq_changes, sleeps : In(1), bank_wakes, bank_gates : In(16)
        Transitions this cycle.
    cycles_<d>_<k> : Out(64)
        Cycles domain d spent connected to voltage level k.
    on_<kind> : In(16), wakes_<kind>_inc : In(16)
        Banks of the kind on now, and woken this cycle.
    bank_cycles_<kind>_<k> : Out(64)
        Bank-cycles (cycles x banks on) of the kind while its domain (feeder for the scratchpad,
        rram for RRAM) is at voltage level k: bank leakage at the right voltage.
    wakes_<kind> : Out(64)
        Banks of the kind woken (wake energy differs by kind).
    <transition kind>, asleep_cycles, idle_cycles, frames, overruns : Out(64)
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = cfg = config
        ports: dict[str, object] = {
            "delta": In(TIME_BITS),
            "asleep": In(1),
            "idle": In(1),
            "frame": In(1),
            "overrun": In(1),
            "asleep_cycles": Out(TIME_BITS),
            "idle_cycles": Out(TIME_BITS),
            "frames": Out(TIME_BITS),
            "overruns": Out(TIME_BITS),
        }
        for kind in TRANSITION_KINDS:
            ports[f"{kind}_inc"] = In(16)
            ports[kind] = Out(TIME_BITS)
        for d in _DOMAINS:
            ports[f"level_{d}"] = In(5)
            for k in range(len(cfg.levels_v)):
                ports[f"cycles_{d}_{k}"] = Out(TIME_BITS)
        for bank_kind in BankKind:
            ports[f"on_{bank_kind.value}"] = In(16)
            ports[f"wakes_{bank_kind.value}_inc"] = In(16)
            ports[f"wakes_{bank_kind.value}"] = Out(TIME_BITS)
            for k in range(len(cfg.levels_v)):
                ports[f"bank_cycles_{bank_kind.value}_{k}"] = Out(TIME_BITS)
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for d in _DOMAINS:
            with m.Switch(getattr(self, f"level_{d}")):
                for k in range(len(self.config.levels_v)):
                    with m.Case(k + 1):
                        counter = getattr(self, f"cycles_{d}_{k}")
                        m.d.sync += counter.eq(counter + self.delta)
        for bank_kind in BankKind:
            name = bank_kind.value
            with m.Switch(getattr(self, f"level_{_BANK_DOMAIN[bank_kind]}")):
                for k in range(len(self.config.levels_v)):
                    with m.Case(k + 1):
                        counter = getattr(self, f"bank_cycles_{name}_{k}")
                        m.d.sync += counter.eq(counter + self.delta * getattr(self, f"on_{name}"))
            wakes = getattr(self, f"wakes_{name}")
            m.d.sync += wakes.eq(wakes + getattr(self, f"wakes_{name}_inc"))
        for kind in TRANSITION_KINDS:
            counter = getattr(self, kind)
            m.d.sync += counter.eq(counter + getattr(self, f"{kind}_inc"))
        with m.If(self.asleep):
            m.d.sync += self.asleep_cycles.eq(self.asleep_cycles + self.delta)
        with m.If(self.idle):
            m.d.sync += self.idle_cycles.eq(self.idle_cycles + self.delta)
        m.d.sync += [
            self.frames.eq(self.frames + self.frame),
            self.overruns.eq(self.overruns + self.overrun),
        ]
        return m
