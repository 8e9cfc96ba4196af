"""Power counters: time per domain per voltage level, transitions by kind, sleep and frames."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import Counters
from voltflow.hw.widths import CLOCK_DOMAINS, SELECT_BITS, TIME_BITS
from voltflow.pmu.config import TRANSITION_KINDS, PmuConfig
from voltflow.pmu.ports import STORE_EVENTS, VoltageCodes, power_counter_names
from voltflow.scheduler.chip import BANK_DOMAIN, BankKind

__all__ = ["PowerCounters"]

_DOMAINS = CLOCK_DOMAINS
#: The domain whose supply a bank kind's leakage is charged at.


class PowerCounters(wiring.Component):
    """Reference-cycle and event counters of the PMU (read at the end of a run).

    Every time counter adds ``delta`` (the cycles the present tick stands for), so the PMU's
    time skips are counted in full.

    Attributes
    ----------
    delta : In(64)
    level : In(VoltageCodes)
        Per domain the voltage code (0: unpowered, not counted).
    asleep, idle, frame, overrun : In(1)
    <transition kind>_inc : In(16)
        Transitions this cycle (``rail_sets``, ... of ``TRANSITION_KINDS``).
    on_<kind> : In(16), wakes_<kind>_inc : In(16)
        Banks of the kind on now, and woken this cycle.
    counters : Out(Counters), one 64-bit member per :func:`~voltflow.pmu.ports.power_counter_names`
        ``cycles_<d>_<k>``: cycles domain d spent connected to voltage level k;
        ``<transition kind>``, ``asleep_cycles``, ``idle_cycles``, ``frames``, ``overruns``;
        ``bank_cycles_<kind>_<k>``: bank-cycles (cycles x banks on) of the kind while its domain
        (feeder for the scratchpad, rram for RRAM) is at voltage level k (bank leakage at the
        right voltage); ``wakes_<kind>``: banks of the kind woken (wake energy differs by kind).
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = config
        super().__init__(
            {
                "delta": In(TIME_BITS),
                "asleep": In(1),
                "idle": In(1),
                "frame": In(1),
                "overrun": In(1),
                "level": In(VoltageCodes()),
                **{f"{kind}_inc": In(SELECT_BITS) for kind in TRANSITION_KINDS},
                **{f"on_{kind.value}": In(SELECT_BITS) for kind in BankKind},
                **{f"wakes_{kind.value}_inc": In(SELECT_BITS) for kind in BankKind},
                **{f"{event}_inc": In(1) for event in STORE_EVENTS},
                "counters": Out(Counters(power_counter_names(config), bits=TIME_BITS)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for d in _DOMAINS:
            with m.Switch(getattr(self.level, d)):
                for k in range(len(self.config.levels_v)):
                    with m.Case(k + 1):
                        counter = getattr(self.counters, f"cycles_{d}_{k}")
                        m.d.sync += counter.eq(counter + self.delta)
        for bank_kind in BankKind:
            name = bank_kind.value
            with m.Switch(getattr(self.level, BANK_DOMAIN[bank_kind].value)):
                for k in range(len(self.config.levels_v)):
                    with m.Case(k + 1):
                        counter = getattr(self.counters, f"bank_cycles_{name}_{k}")
                        m.d.sync += counter.eq(counter + self.delta * getattr(self, f"on_{name}"))
            wakes = getattr(self.counters, f"wakes_{name}")
            m.d.sync += wakes.eq(wakes + getattr(self, f"wakes_{name}_inc"))
        for kind in TRANSITION_KINDS:
            counter = getattr(self.counters, kind)
            m.d.sync += counter.eq(counter + getattr(self, f"{kind}_inc"))
        for event in STORE_EVENTS:
            counter = getattr(self.counters, event)
            m.d.sync += counter.eq(counter + getattr(self, f"{event}_inc"))
        with m.If(self.asleep):
            m.d.sync += self.counters.asleep_cycles.eq(self.counters.asleep_cycles + self.delta)
        with m.If(self.idle):
            m.d.sync += self.counters.idle_cycles.eq(self.counters.idle_cycles + self.delta)
        m.d.sync += [
            self.counters.frames.eq(self.counters.frames + self.frame),
            self.counters.overruns.eq(self.counters.overruns + self.overrun),
        ]
        return m
