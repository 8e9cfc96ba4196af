"""Violation monitors: a domain clocked faster than its voltage allows, a gated-bank access."""

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.pmu.config import TIME_BITS, PmuConfig

__all__ = ["ViolationMonitors"]

_DOMAINS = ("sys", "rram", "feeder")


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
    inc_<d> : In(B), safe_<d> : In(5)
        Per domain: the increment and the safe voltage code.
    access_violation : In(1)
    overclock_count, overclock_first, access_count, access_first : Out(64)
        ``*_first`` is valid when the count is non-zero.
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = cfg = config
        ports: dict[str, object] = {
            "now": In(TIME_BITS),
            "run": In(1),
            "access_violation": In(1),
            "overclock_count": Out(TIME_BITS),
            "overclock_first": Out(TIME_BITS),
            "access_count": Out(TIME_BITS),
            "access_first": Out(TIME_BITS),
        }
        for d in _DOMAINS:
            ports[f"inc_{d}"] = In(cfg.phase_bits)
            ports[f"safe_{d}"] = In(5)
        super().__init__(ports)

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
            terms.append(getattr(self, f"inc_{d}") > table[getattr(self, f"safe_{d}")])
        m.d.comb += over.eq(terms[0] | terms[1] | terms[2])
        was_over = Signal()
        with m.If(self.run):
            m.d.sync += was_over.eq(over)
            with m.If(over & ~was_over):
                m.d.sync += self.overclock_count.eq(self.overclock_count + 1)
                with m.If(self.overclock_count == 0):
                    m.d.sync += self.overclock_first.eq(self.now)
            with m.If(self.access_violation):
                m.d.sync += self.access_count.eq(self.access_count + 1)
                with m.If(self.access_count == 0):
                    m.d.sync += self.access_first.eq(self.now)
        return m
