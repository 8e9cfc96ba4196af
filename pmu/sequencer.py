"""The PMU sequencer: fetches, checks and executes commands; rails, supplies, clocks, timers."""

from amaranth.hdl import Array, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from voltflow.pmu.config import COMMAND_WORDS, GROUP_BANKS, TIME_BITS, PmuConfig
from voltflow.pmu.isa import Command, ErrorCode, Opcode, payload_fields

__all__ = ["PmuSequencer"]

_CODE_BITS = 5  # a voltage code: 0 = unpowered, k + 1 = grid level k (at most 16 levels)
_DOMAINS = ("sys", "rram", "feeder")  # DomainCode order


class PmuSequencer(wiring.Component):
    """Executes the command program with the timing of ``pmu/timing.py`` (docs/pmu.md).

    One command executes per reference cycle in state EXEC; a command whose continuation is
    more than one cycle later (WAIT, CONNECT, WAIT_RAILS, IDLE, SLEEP) moves to WAIT for exactly
    one tick, in which ``delta`` (the reference cycles this tick stands for) jumps ``now`` to the
    continuation: nothing else in the chip can change while the PMU waits (the accelerator only
    runs inside a LAUNCH), so the always-on timer skips ahead instead of ticking. LAUNCH holds
    ``acc_start`` until the accelerator reports ``acc_done``.

    Attributes
    ----------
    cmd_addr : Out(12), cmd_rdata : In(64)
        Command memory (asynchronous read); the word is decoded through ``pmu.isa.Command``.
    cmd_words, prog_ops : In(13)
        Words of the loaded command program and descriptors of the layer program.
    budget : In(32)
        Commands the run may execute (0: unlimited); then WATCHDOG.
    now : Out(64)
        The present reference cycle. ``delta`` : Out(64): reference cycles this tick covers.
    acc_start, acc_first, acc_count : Out
        LAUNCH request; ``acc_done`` : In(1) the accelerator has finished it.
    inc_sys, inc_rram, inc_feeder : Out(B)
        Divider increments. ``level_<d>`` / ``safe_<d>`` : Out(5): the domain's voltage code
        (0 off, k + 1 = level k) and the lowest code it may have while settling.
    bank_gate, bank_wake, bank_group, bank_mask, gate_all : Out
        Bank power commands (one-cycle pulses).
    pulses ``rail_set``, ``supply_switch``, ``freq_change``, ``sleep``, ``frame``, ``overrun``,
    ``launch_done`` and levels ``asleep``, ``idle`` : Out(1)
        For the counters. ``launch_exec`` : Out(64) the cycle of the last LAUNCH.
    halted : Out(1), halt_code : Out(8), error : Out(ErrorCode), error_pc : Out(12),
    end_cycle : Out(64)
        The PMU has stopped (HALT or error) in cycle ``end_cycle``.
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = cfg = config
        B = cfg.phase_bits
        ports: dict[str, object] = {
            "cmd_addr": Out(12),
            "cmd_rdata": In(64),
            "cmd_words": In(13),
            "prog_ops": In(13),
            "budget": In(32),
            "now": Out(TIME_BITS),
            "delta": Out(TIME_BITS),
            "acc_start": Out(1),
            "acc_first": Out(12),
            "acc_count": Out(8),
            "acc_done": In(1),
            "bank_gate": Out(1),
            "bank_wake": Out(1),
            "bank_group": Out(12),
            "bank_mask": Out(GROUP_BANKS),
            "gate_all": Out(1),
            "rail_set": Out(1),
            "supply_switch": Out(1),
            "freq_change": Out(1),
            "sleep": Out(1),
            "frame": Out(1),
            "overrun": Out(1),
            "asleep": Out(1),
            "idle": Out(1),
            "launch_done": Out(1),
            "launch_exec": Out(TIME_BITS),
            "halted": Out(1),
            "halt_code": Out(8),
            "error": Out(ErrorCode),
            "error_pc": Out(12),
            "end_cycle": Out(TIME_BITS),
        }
        for d in _DOMAINS:
            ports[f"inc_{d}"] = Out(B)
            ports[f"level_{d}"] = Out(_CODE_BITS)
            ports[f"safe_{d}"] = Out(_CODE_BITS)
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        now = self.now
        # A plain 64-bit port viewed through the ISA's struct (a Struct-shaped port would give
        # the generated Verilog zero-width wires for the empty payloads).
        cmd = Command(self.cmd_rdata)
        word = self.cmd_rdata
        raw_op = word[0:4]
        op = cmd.opcode

        # ---- architectural state ------------------------------------------------------------
        pc = Signal(12)
        executed = Signal(32)
        wait_until = Signal(TIME_BITS)
        wait_kind = Signal(2)  # 1: IDLE, 2: SLEEP (for the asleep/idle counters)
        period = Signal(48)
        deadline = Signal(TIME_BITS)
        loop_armed = Signal()
        loop_pc = Signal(12)
        loop_left = Signal(16)
        R = cfg.rails
        rail_code = Array(Signal(_CODE_BITS, name=f"rail{r}_code") for r in range(R))
        rail_prev = Array(Signal(_CODE_BITS, name=f"rail{r}_prev") for r in range(R))
        rail_until = Array(Signal(TIME_BITS, name=f"rail{r}_until") for r in range(R))
        conn_on = Array(Signal(name=f"{d}_powered") for d in _DOMAINS)
        conn_rail = Array(Signal(3, name=f"{d}_rail") for d in _DOMAINS)
        dom_prev = Array(Signal(_CODE_BITS, name=f"{d}_prev") for d in _DOMAINS)
        dom_until = Array(Signal(TIME_BITS, name=f"{d}_until") for d in _DOMAINS)
        incs = Array(getattr(self, f"inc_{d}") for d in _DOMAINS)

        def lower(a: Value, b: Value) -> Value:
            return Mux(a < b, a, b)

        # ---- voltages as seen in this cycle --------------------------------------------------
        rail_safe = Array(Signal(_CODE_BITS, name=f"rail{r}_safe") for r in range(R))
        for r in range(R):
            m.d.comb += rail_safe[r].eq(
                Mux(now < rail_until[r], lower(rail_prev[r], rail_code[r]), rail_code[r])
            )
        dom_safe = []
        for i, d in enumerate(_DOMAINS):
            rs = Signal(_CODE_BITS, name=f"{d}_rail_safe")
            m.d.comb += rs.eq(rail_safe[conn_rail[i]])
            safe = Signal(_CODE_BITS, name=f"{d}_safe_now")
            m.d.comb += safe.eq(
                Mux(conn_on[i], Mux(now < dom_until[i], lower(dom_prev[i], rs), rs), 0)
            )
            dom_safe.append(safe)
            m.d.comb += [
                getattr(self, f"safe_{d}").eq(safe),
                getattr(self, f"level_{d}").eq(Mux(conn_on[i], rail_code[conn_rail[i]], 0)),
            ]
        dom_safe_arr = Array(dom_safe)

        # ---- decode and checks (priority as pmu/timing.py) ------------------------------------
        p: data.View = cmd.payload  # mypy cannot see the Payload union layout's fields
        used_bits = Signal(range(65))
        with m.Switch(raw_op):
            for o in Opcode:
                with m.Case(o.value):
                    m.d.comb += used_bits.eq(4 + sum(payload_fields(o).values()))
            with m.Default():
                m.d.comb += used_bits.eq(64)
        unused_set = Signal()
        m.d.comb += unused_set.eq((word >> used_bits) != 0)
        has_domain = (op == Opcode.CONNECT) | (op == Opcode.SET_FREQ)
        domain_raw = word[4:6]
        rail_f = Mux(op == Opcode.SET_RAIL, p.set_rail.rail, p.connect.rail)
        group, mask = p.gate.group, p.gate.mask  # WAKE has the same layout
        last_group = cfg.groups - 1
        last_mask = (1 << (cfg.n_banks - GROUP_BANKS * last_group)) - 1
        bank_bad = (group > last_group) | ((group == last_group) & ((mask & ~last_mask) != 0))
        first, count = p.launch.first, p.launch.count
        inc_zero = (self.inc_sys == 0) | (self.inc_rram == 0) | (self.inc_feeder == 0)

        err = Signal(ErrorCode)
        checks = [
            ((self.budget != 0) & (executed >= self.budget), ErrorCode.WATCHDOG),
            ((pc >= self.cmd_words) | (pc >= COMMAND_WORDS), ErrorCode.END_OF_PROGRAM),
            (raw_op > max(o.value for o in Opcode), ErrorCode.ILLEGAL_OPCODE),
            (has_domain & (domain_raw == 3), ErrorCode.ILLEGAL_DOMAIN),
            (unused_set, ErrorCode.UNUSED_BITS),
            (
                ((op == Opcode.SET_RAIL) | (op == Opcode.CONNECT)) & (rail_f >= R),
                ErrorCode.RAIL_RANGE,
            ),
            (
                (op == Opcode.SET_RAIL) & (p.set_rail.level >= len(cfg.levels_v)),
                ErrorCode.LEVEL_RANGE,
            ),
            (
                (op == Opcode.SET_FREQ) & (p.set_freq.increment >= 1 << cfg.phase_bits),
                ErrorCode.FREQ_RANGE,
            ),
            (((op == Opcode.GATE) | (op == Opcode.WAKE)) & bank_bad, ErrorCode.BANK_RANGE),
            (
                (op == Opcode.LAUNCH) & ((count == 0) | (first + count > self.prog_ops)),
                ErrorCode.LAUNCH_RANGE,
            ),
            ((op == Opcode.LAUNCH) & inc_zero, ErrorCode.CLOCK_STOPPED),
            ((op == Opcode.SET_PERIOD) & (p.set_period.cycles == 0), ErrorCode.PERIOD),
            (((op == Opcode.IDLE) | (op == Opcode.SLEEP)) & (period == 0), ErrorCode.PERIOD),
            ((op == Opcode.LOOP) & loop_armed & (loop_pc != pc), ErrorCode.LOOP_NESTED),
        ]
        with m.If(checks[0][0]):
            m.d.comb += err.eq(checks[0][1])
        for cond, code in checks[1:]:
            with m.Elif(cond):
                m.d.comb += err.eq(code)

        # ---- time ------------------------------------------------------------------------------
        m.d.comb += self.cmd_addr.eq(pc)
        m.d.sync += now.eq(now + self.delta)

        def go(cont: object, kind: int = 0) -> None:
            """Continue with the next command at cycle ``cont`` (>= now + 1)."""
            with m.If(cont > now + 1):
                m.d.sync += [wait_until.eq(cont), wait_kind.eq(kind)]
                m.next = "WAIT"

        def stop() -> None:
            m.d.sync += [self.halted.eq(1), self.end_cycle.eq(now)]
            m.next = "STOPPED"

        with m.FSM(name="pmu"):
            with m.State("EXEC"):
                m.d.comb += self.delta.eq(1)
                with m.If(err != ErrorCode.NONE):
                    m.d.sync += [self.error.eq(err), self.error_pc.eq(pc)]
                    stop()
                with m.Elif(op == Opcode.HALT):
                    m.d.sync += self.halt_code.eq(p.halt.code)
                    stop()
                with m.Else():
                    m.d.sync += [executed.eq(executed + 1), pc.eq(pc + 1)]
                    with m.Switch(op):
                        with m.Case(Opcode.SET_PERIOD):
                            m.d.sync += [
                                period.eq(p.set_period.cycles),
                                deadline.eq(now + p.set_period.cycles),
                            ]
                        with m.Case(Opcode.SET_RAIL):
                            r = p.set_rail.rail
                            m.d.comb += self.rail_set.eq(1)
                            m.d.sync += [
                                rail_prev[r].eq(rail_safe[r]),
                                rail_code[r].eq(p.set_rail.level + 1),
                                rail_until[r].eq(now + 1 + cfg.rail_settle_cycles),
                            ]
                        with m.Case(Opcode.WAIT_RAILS):
                            latest = now + 1
                            for r in range(R):
                                latest = Mux(rail_until[r] > latest, rail_until[r], latest)
                            last = Signal(TIME_BITS)
                            m.d.comb += last.eq(latest)
                            go(last)
                        with m.Case(Opcode.CONNECT):
                            d = p.connect.domain.as_value()
                            m.d.comb += self.supply_switch.eq(1)
                            m.d.sync += [
                                dom_prev[d].eq(dom_safe_arr[d]),
                                conn_on[d].eq(1),
                                conn_rail[d].eq(p.connect.rail),
                                dom_until[d].eq(now + 1 + cfg.transition_cycles),
                            ]
                            go(now + 1 + cfg.transition_cycles)
                        with m.Case(Opcode.SET_FREQ):
                            m.d.comb += self.freq_change.eq(1)
                            m.d.sync += incs[p.set_freq.domain.as_value()].eq(p.set_freq.increment)
                        with m.Case(Opcode.GATE):
                            m.d.comb += [
                                self.bank_gate.eq(1),
                                self.bank_group.eq(group),
                                self.bank_mask.eq(mask),
                            ]
                        with m.Case(Opcode.WAKE):
                            m.d.comb += [
                                self.bank_wake.eq(1),
                                self.bank_group.eq(group),
                                self.bank_mask.eq(mask),
                            ]
                        with m.Case(Opcode.LAUNCH):
                            m.d.sync += [
                                self.acc_start.eq(1),
                                self.acc_first.eq(first),
                                self.acc_count.eq(count),
                                self.launch_exec.eq(now),
                            ]
                            m.next = "LAUNCHED"
                        with m.Case(Opcode.WAIT):
                            go(now + 1 + p.wait.cycles)
                        with m.Case(Opcode.IDLE, Opcode.SLEEP):
                            is_sleep = op == Opcode.SLEEP
                            m.d.comb += [
                                self.frame.eq(1),
                                self.overrun.eq(deadline < now + 1),
                                self.asleep.eq(is_sleep),
                                self.idle.eq(~is_sleep),
                            ]
                            with m.If(is_sleep):
                                m.d.comb += [self.sleep.eq(1), self.gate_all.eq(1)]
                                for i in range(len(_DOMAINS)):
                                    m.d.sync += [conn_on[i].eq(0), incs[i].eq(0)]
                            m.d.sync += deadline.eq(deadline + period)
                            go(deadline, Mux(is_sleep, 2, 1))
                        with m.Case(Opcode.LOOP):
                            target = p.loop.target
                            with m.If(p.loop.count == 0):
                                m.d.sync += pc.eq(target)
                            with m.Elif(~loop_armed):
                                m.d.sync += [
                                    loop_armed.eq(1),
                                    loop_pc.eq(pc),
                                    loop_left.eq(p.loop.count - 1),
                                    pc.eq(target),
                                ]
                            with m.Elif(loop_left == 0):
                                m.d.sync += loop_armed.eq(0)
                            with m.Else():
                                m.d.sync += [loop_left.eq(loop_left - 1), pc.eq(target)]
            with m.State("WAIT"):
                m.d.comb += [
                    self.delta.eq(wait_until - now),
                    self.idle.eq(wait_kind == 1),
                    self.asleep.eq(wait_kind == 2),
                ]
                m.next = "EXEC"
            with m.State("LAUNCHED"):
                m.d.comb += self.delta.eq(1)
                with m.If(self.acc_done):
                    m.d.comb += self.launch_done.eq(1)
                    m.d.sync += self.acc_start.eq(0)
                    m.next = "EXEC"
            with m.State("STOPPED"):
                m.d.comb += self.delta.eq(0)
        return m
