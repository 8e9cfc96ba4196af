"""Bank power switches: per-bank power state, wake-up latency, isolation and on-time."""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from voltflow.hw.clock_gating import gated_domain
from voltflow.hw.signatures import BankAccess, BankPower
from voltflow.hw.widths import GROUP_BANKS, SELECT_BITS, TIME_BITS
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.ports import BankCommand
from voltflow.scheduler.chip import BankKind

__all__ = ["BankSwitches"]


class BankSwitches(wiring.Component):
    """The header switches of every memory bank and the isolation cells at their ports.

    A bank is *on* from the cycle after a WAKE (reset: every bank on, so preloaded memories are
    valid) until the cycle after a GATE (or SLEEP's ``gate_all``); it is *ready* (usable) once
    its WAKE's latency has passed: a WAKE's newly woken banks become ready together, after the
    slowest of them (``PmuConfig.group_wake_cycles``); a second WAKE of a group whose banks are
    still waking extends their common deadline. A port whose address falls in a bank that is not
    ready is isolated (the core reads 0, a write is dropped) and counts one ``access_violation``.

    Attributes
    ----------
    now, delta : In(64)
        The present cycle and the cycles this tick covers (bank on-time counts ``delta``).
    command : In(BankCommand)
        Power commands from the sequencer (validated there).
    access : In(BankAccess)
        The accelerator's memory accesses; ``*_ok`` out: the addressed bank is ready (else
        isolate).
    access_violation : Out(1)
        An access to a bank that is not ready, this cycle.
    power : Out(BankPower)
        ``on``, ``ready``, ``gated_now`` (banks that lose power this cycle: the simulation
        scrambles volatile ones), and the read port ``sel`` / ``on_cycles`` of the per-bank
        on-time counters (reference cycles powered).
    wakes, gates : Out(16)
        Banks turned on / off by this cycle's command.
    on_<kind> : Out(16), wakes_<kind> : Out(16)
        Banks of each kind (ifmap, ofmap, rram) that are on, and turned on by this cycle's
        command: the power counters charge bank leakage and wake energy by kind, at the voltage
        of the kind's domain.
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = cfg = config
        n = cfg.n_banks
        super().__init__(
            {
                "now": In(TIME_BITS),
                "delta": In(TIME_BITS),
                "command": In(BankCommand()),
                "access": In(BankAccess()),
                "access_violation": Out(1),
                "power": Out(BankPower(n_banks=n)),
                "wakes": Out(SELECT_BITS),
                "gates": Out(SELECT_BITS),
                **{f"on_{k.value}": Out(SELECT_BITS) for k in BankKind},
                **{f"wakes_{k.value}": Out(SELECT_BITS) for k in BankKind},
            }
        )

    def _bank_of(self, m: Module, addr: Value, rram: bool, name: str) -> tuple[Signal, Signal]:
        """Global bank index of a word address, and whether it falls in a bank at all."""
        cfg = self.config
        index = Signal(16, name=f"{name}_bank")
        inside = Signal(name=f"{name}_in_bank")
        runs = []  # (first global index, base word, count, log2 words) per kind
        for kind in BankKind:
            if (kind is BankKind.RRAM) != rram:
                continue
            idx = [i for i, b in enumerate(cfg.banks) if b.kind is kind]
            if idx:
                b = cfg.banks[idx[0]]
                runs.append((idx[0], b.first_word, len(idx), b.log2_words))
        cond = None
        for first, base, count, log2 in runs:
            here = addr < base + (count << log2)
            if base:
                here = here & (addr >= base)
            value = first + ((addr - base) >> log2)
            if cond is None:
                with m.If(here):
                    m.d.comb += [index.eq(value), inside.eq(1)]
            else:
                with m.Elif(here):
                    m.d.comb += [index.eq(value), inside.eq(1)]
            cond = here
        return index, inside

    def elaborate(self, platform: object) -> Module:
        m = Module()
        command = self.command
        cfg = self.config
        n = cfg.n_banks
        groups = cfg.groups
        width = groups * GROUP_BANKS
        now = self.now

        # Every register and memory here changes only on a GATE, WAKE or SLEEP command: they run
        # on the reference clock gated by the commands (hw.clock_gating), so the cycles without
        # one cost the simulation none of their next-state logic.
        gated_domain(m, "switch", command.gate_all | command.gate | command.wake)
        on = self.power.on
        until = Array(Signal(TIME_BITS, name=f"group{g}_until") for g in range(groups))
        waking = Array(Signal(GROUP_BANKS, name=f"group{g}_waking") for g in range(groups))
        n_on = Signal(16, init=n)

        # ---- readiness and isolation ---------------------------------------------------------
        busy = Signal(width)
        m.d.comb += busy.eq(Cat(Mux(now < until[g], waking[g], 0) for g in range(groups)))
        m.d.comb += self.power.ready.eq(on & ~busy[:n])
        for addr, ok, rram, name in (
            (self.access.spad_raddr, self.access.spad_rd_ok, False, "spad_r"),
            (self.access.spad_waddr, self.access.spad_wr_ok, False, "spad_w"),
            (self.access.rram_raddr, self.access.rram_rd_ok, True, "rram_r"),
        ):
            index, inside = self._bank_of(m, addr, rram, name)
            m.d.comb += ok.eq(~inside | self.power.ready.bit_select(index, 1))
        m.d.comb += self.access_violation.eq(
            (self.access.spad_re & ~self.access.spad_rd_ok)
            | (self.access.spad_we & ~self.access.spad_wr_ok)
            | (self.access.rram_re & ~self.access.rram_rd_ok)
        )

        # ---- commands ------------------------------------------------------------------------
        cmd_vec = Signal(width)
        with m.Switch(command.group):
            for g in range(groups):
                with m.Case(g):
                    m.d.comb += cmd_vec[g * GROUP_BANKS : (g + 1) * GROUP_BANKS].eq(command.mask)
        on_g = Signal(GROUP_BANKS)
        m.d.comb += on_g.eq(
            Array(on[g * GROUP_BANKS : (g + 1) * GROUP_BANKS] for g in range(groups))[command.group]
        )
        new_g = Signal(GROUP_BANKS)
        off_g = Signal(GROUP_BANKS)
        m.d.comb += [new_g.eq(command.mask & ~on_g), off_g.eq(command.mask & on_g)]

        def popcount(v: Signal) -> object:
            return sum(v[i] for i in range(len(v)))

        # Banks of each kind that are on: kept as counts updated by the commands (a popcount over
        # every bank each cycle would cost the simulation more than the rest of the PMU).
        kind_g: dict[BankKind, Signal] = {}
        n_kind: dict[BankKind, Signal] = {}
        for kind in BankKind:
            masks = [
                sum(
                    1 << i
                    for i in range(GROUP_BANKS)
                    if g * GROUP_BANKS + i < n and cfg.banks[g * GROUP_BANKS + i].kind is kind
                )
                for g in range(groups)
            ]
            kind_g[kind] = Signal(GROUP_BANKS, name=f"group_mask_{kind.value}")
            m.d.comb += kind_g[kind].eq(Array(Const(x, GROUP_BANKS) for x in masks)[command.group])
            total = sum(1 for b in cfg.banks if b.kind is kind)
            n_kind[kind] = Signal(16, init=total, name=f"n_on_{kind.value}")
            m.d.comb += getattr(self, f"on_{kind.value}").eq(n_kind[kind])

        with m.If(command.gate_all):
            m.d.comb += [self.gates.eq(n_on), self.power.gated_now.eq(on)]
            m.d.switch += [on.eq(0), n_on.eq(0)]
            m.d.switch += [n_kind[kind].eq(0) for kind in BankKind]
        with m.Elif(command.gate):
            m.d.comb += [self.gates.eq(popcount(off_g)), self.power.gated_now.eq(on & cmd_vec[:n])]
            m.d.switch += [on.eq(on & ~cmd_vec[:n]), n_on.eq(n_on - self.gates)]
            m.d.switch += [
                n_kind[kind].eq(n_kind[kind] - popcount(off_g & kind_g[kind])) for kind in BankKind
            ]
        with m.Elif(command.wake):
            m.d.comb += self.wakes.eq(popcount(new_g))
            for kind in BankKind:
                m.d.comb += getattr(self, f"wakes_{kind.value}").eq(popcount(new_g & kind_g[kind]))
                m.d.switch += n_kind[kind].eq(n_kind[kind] + popcount(new_g & kind_g[kind]))
            m.d.switch += [on.eq(on | cmd_vec[:n]), n_on.eq(n_on + self.wakes)]
            for g in range(groups):
                latencies: dict[int, int] = {}
                for i in range(GROUP_BANKS):
                    b = g * GROUP_BANKS + i
                    if b < n:
                        w = cfg.banks[b].wake_cycles
                        latencies[w] = latencies.get(w, 0) | 1 << i
                latest = Const(0, TIME_BITS)
                for w, bits in sorted(latencies.items()):
                    latest = Mux((new_g & bits) != 0, now + 1 + w, latest)
                with m.If((command.group == g) & (new_g != 0)):
                    m.d.switch += [
                        waking[g].eq(Mux(until[g] <= now + 1, new_g, waking[g] | new_g)),
                        until[g].eq(Mux(until[g] > latest, until[g], latest)),
                    ]

        # ---- on-time -------------------------------------------------------------------------
        # Counted lazily, so nothing happens per bank per cycle: a bank's on-time is the time
        # accumulated over its finished on-intervals (``done``) plus, while it is on, the time
        # since it turned on (``since``). A tick adds ``delta`` to ``now``, so an interval of
        # ticks t0+1..t1 (WAKE at t0, GATE at t1) lasts now(t1) + delta(t1) - (now(t0) +
        # delta(t0)) cycles. ``done`` and ``since`` live in one small memory per bank position
        # in a group (lane), addressed by group: a GATE or WAKE touches one group, so each lane
        # memory takes at most one write per command (registers per bank would make the
        # simulator re-evaluate every bank's update every cycle). SLEEP's ``gate_all`` turns
        # off every group at once, more than one write per lane: it only records, per group,
        # which banks it turned off (``pend``) and when (``pend_at``); those intervals are
        # closed into ``done`` by the next command that touches the group, and counted by the
        # read port meanwhile. A group with banks on has nothing pending (turning a bank on
        # touched the group), so a later SLEEP never overwrites an unclosed interval.
        after = Signal(TIME_BITS)
        m.d.comb += after.eq(now + self.delta)
        pend = Array(Signal(GROUP_BANKS, name=f"group{g}_pend") for g in range(groups))
        pend_at = Array(Signal(TIME_BITS, name=f"group{g}_pend_at") for g in range(groups))
        touch = Signal()
        m.d.comb += touch.eq(~command.gate_all & (command.gate | command.wake))
        with m.If(command.gate_all):
            for g in range(groups):
                on_here = on[g * GROUP_BANKS : min(n, (g + 1) * GROUP_BANKS)]
                with m.If(on_here != 0):
                    m.d.switch += [pend[g].eq(on_here), pend_at[g].eq(after)]
        with m.Elif(touch):
            m.d.switch += pend[command.group].eq(0)
        pend_g = Signal(GROUP_BANKS)
        pend_at_g = Signal(TIME_BITS)
        m.d.comb += [pend_g.eq(pend[command.group]), pend_at_g.eq(pend_at[command.group])]
        # The read port: bank ``sel`` = (group, lane).
        sel_group = Signal(range(groups))
        sel_lane = Signal(range(GROUP_BANKS))
        m.d.comb += [sel_group.eq(self.power.sel >> 5), sel_lane.eq(self.power.sel[:5])]
        assert GROUP_BANKS == 32
        sel_done = []
        sel_since = []
        #: The on-time memories, zero at power-on; a reset does not clear them (they are SRAM).
        self.on_time_memories: list[Memory] = []
        for lane in range(min(n, GROUP_BANKS)):
            done_mem = Memory(shape=TIME_BITS, depth=groups, init=[])
            since_mem = Memory(shape=TIME_BITS, depth=groups, init=[])
            m.submodules[f"lane{lane}_on_done"] = done_mem
            m.submodules[f"lane{lane}_on_since"] = since_mem
            self.on_time_memories += [done_mem, since_mem]
            done_rd = done_mem.read_port(domain="comb")
            since_rd = since_mem.read_port(domain="comb")
            done_wr = done_mem.write_port(domain="switch")
            since_wr = since_mem.write_port(domain="switch")
            closing = Signal(name=f"lane{lane}_closing")
            m.d.comb += [
                done_rd.addr.eq(command.group),
                since_rd.addr.eq(command.group),
                done_wr.addr.eq(command.group),
                since_wr.addr.eq(command.group),
                # A pending SLEEP interval, or a bank this GATE turns off (disjoint: pending
                # banks are off).
                closing.eq(pend_g[lane] | (command.gate & off_g[lane])),
                done_wr.en.eq(touch & closing),
                done_wr.data.eq(done_rd.data + Mux(pend_g[lane], pend_at_g, after) - since_rd.data),
                since_wr.en.eq(touch & command.wake & new_g[lane]),
                since_wr.data.eq(after),
            ]
            sel_done_rd = done_mem.read_port(domain="comb")
            sel_since_rd = since_mem.read_port(domain="comb")
            m.d.comb += [sel_done_rd.addr.eq(sel_group), sel_since_rd.addr.eq(sel_group)]
            sel_done.append(sel_done_rd.data)
            sel_since.append(sel_since_rd.data)
        done_sel = Signal(TIME_BITS)
        since_sel = Signal(TIME_BITS)
        m.d.comb += [
            done_sel.eq(Array(sel_done)[sel_lane]),
            since_sel.eq(Array(sel_since)[sel_lane]),
        ]
        sel_on = Signal()
        sel_pend = Signal()
        m.d.comb += [
            sel_on.eq(on.bit_select(self.power.sel, 1)),
            sel_pend.eq(pend[sel_group].bit_select(sel_lane, 1)),
        ]
        m.d.comb += self.power.on_cycles.eq(
            done_sel
            + Mux(sel_pend, pend_at[sel_group] - since_sel, 0)
            + Mux(sel_on, now - since_sel, 0)
        )
        return m
