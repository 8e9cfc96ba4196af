"""Violation monitors: a domain clocked faster than its voltage allows, a gated-bank access."""

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import ClockIncrements, Counters
from voltflow.hw.widths import CLOCK_DOMAINS, TIME_BITS
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.ports import VIOLATION_COUNTERS, VoltageCodes

__all__ = ["ViolationMonitors"]

_DOMAINS = CLOCK_DOMAINS


class ViolationMonitors(wiring.Component):
    """Counts violations, each with the cycle of its first occurrence.

    Overclock: a domain whose programmed increment exceeds ``PmuConfig.max_increment`` at the
    lowest voltage it may have now (``safe_<d>``: the lower of old and new while a rail or a
    supply switch settles; 0 V when unpowered). One count per episode (the cycle the condition
    becomes true): conditions only start when a command takes effect, so the PMU's time skips
    never hide one. Access: one count per cycle with an access to a bank that is not ready.

    Attributes
    ----------
    now : In(64), run : In(1)
        The present cycle; monitors are frozen while ``run`` is low (PMU stopped).
    clocks : In(ClockIncrements), safe : In(VoltageCodes)
        Per domain: the increment and the safe voltage code.
    access_violation : In(1)
    counters : Out(Counters)
        ``overclock_count``, ``overclock_first``, ``access_count``, ``access_first``
        (:data:`~voltflow.pmu.ports.VIOLATION_COUNTERS`; ``*_first`` is valid when the count is
        non-zero).
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = config
        super().__init__(
            {
                "now": In(TIME_BITS),
                "run": In(1),
                "clocks": In(ClockIncrements(phase_bits=config.phase_bits)),
                "safe": In(VoltageCodes()),
                "access_violation": In(1),
                "counters": Out(Counters(VIOLATION_COUNTERS, bits=TIME_BITS)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        B = cfg.phase_bits
        over = Signal()
        terms = []
        for i, d in enumerate(_DOMAINS):
            table = Array(
                Const(v, B + 1)
                for v in (0, *cfg.max_increment[i], *([0] * (31 - len(cfg.levels_v))))
            )
            terms.append(getattr(self.clocks, d) > table[getattr(self.safe, d)])
        m.d.comb += over.eq(terms[0] | terms[1] | terms[2])
        was_over = Signal()
        with m.If(self.run):
            m.d.sync += was_over.eq(over)
            with m.If(over & ~was_over):
                m.d.sync += self.counters.overclock_count.eq(self.counters.overclock_count + 1)
                with m.If(self.counters.overclock_count == 0):
                    m.d.sync += self.counters.overclock_first.eq(self.now)
            with m.If(self.access_violation):
                m.d.sync += self.counters.access_count.eq(self.counters.access_count + 1)
                with m.If(self.counters.access_count == 0):
                    m.d.sync += self.counters.access_first.eq(self.now)
        return m
