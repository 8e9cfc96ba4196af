"""The PMU sequencer: fetches, checks and executes commands; rails, supplies, clocks, timers."""

from amaranth.hdl import Array, Cat, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out
from voltflow.hw.widths import ADDR_BITS, CLOCK_DOMAINS, GROUP_BANKS, TIME_BITS
from voltflow.pmu.config import COMMAND_ADDR_BITS, COMMAND_WORDS, PmuConfig
from voltflow.pmu.isa import (
    LOOKAHEAD_COMMANDS,
    OPCODE_BITS,
    WORD_BITS,
    Command,
    ErrorCode,
    Opcode,
    payload_fields,
)
from voltflow.pmu.ports import (
    STORE_ADDR_BITS,
    VOLTAGE_CODE_BITS,
    BankCommand,
    VoltageCodes,
    sequencer_buses,
)
from voltflow.pmu.store import DATA_BASE, MAGIC, SEQUENCE_BITS, Marker

__all__ = ["PmuSequencer"]

_DOMAINS = CLOCK_DOMAINS  # DomainCode order
#: One-cycle pulses (``rail_set`` ... ``overrun``) and levels (``asleep``, ``idle``) for the
#: power counters.
_EVENTS = (
    "rail_set", "supply_switch", "freq_change", "sleep", "frame", "overrun", "asleep", "idle",
    "store_write_event", "store_read_event",
)  # fmt: skip


class PmuSequencer(wiring.Component):
    """Executes the command program with the timing of ``pmu/timing.py`` (docs/pmu.md).

    One command executes per reference cycle in state EXEC; a command whose continuation is
    more than one cycle later (WAIT, CONNECT, WAIT_RAILS, IDLE, SLEEP) moves to WAIT for exactly
    one tick, in which ``delta`` (the reference cycles this tick stands for) jumps ``now`` to the
    continuation: nothing else in the chip can change while the PMU waits (the accelerator only
    runs inside a LAUNCH), so the always-on timer skips ahead instead of ticking. LAUNCH holds
    ``launch.start`` until the accelerator reports ``launch.done``. A look-ahead LAUNCH (``lead``
    > 0) returns to EXEC after ``lead`` cycles while ``start`` stays high: the look-ahead
    commands execute while the ops run, a wait among them ticks cycle by cycle (the accelerator
    is running), and SYNC waits in LAUNCHED for ``done``, which is taken in any state.

    Attributes
    ----------
    cmd : Out(CommandMemory)
        Command memory (asynchronous read); the word is decoded through ``pmu.isa.Command``.
    limits : In(RunLimits)
        Words of the loaded command program, descriptors of the layer program, and the commands
        the run may execute (0: unlimited; then WATCHDOG).
    launch : Out(LaunchPort)
        LAUNCH request, held until the accelerator reports ``done``.
    clocks : Out(ClockIncrements)
        Divider increments of the domains.
    supply : Out(SupplySwitches)
        The supply switch enables: the rail each domain is connected to (CONNECT), none after
        reset or SLEEP.
    level, safe : Out(VoltageCodes)
        Per domain the voltage code (0 off, k + 1 = level k) and the lowest code it may have
        while settling.
    status : Out(Status)
        ``now``, the stop (HALT or error) and the last LAUNCH.
    delta : Out(64)
        Reference cycles this tick covers.
    banks : Out(BankCommand)
        Bank power commands (one-cycle pulses).
    rail_set, supply_switch, freq_change, sleep, frame, overrun : Out(1)
        Pulses for the counters; ``asleep``, ``idle`` : Out(1) levels.
    """

    def __init__(self, config: PmuConfig) -> None:
        self.config = config
        super().__init__(
            {
                **sequencer_buses(config),
                "level": Out(VoltageCodes()),
                "safe": Out(VoltageCodes()),
                "delta": Out(TIME_BITS),
                "banks": Out(BankCommand()),
                **{name: Out(1) for name in _EVENTS},
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.config
        now = self.status.now
        # A plain 64-bit port viewed through the ISA's struct (a Struct-shaped port would give
        # the generated Verilog zero-width wires for the empty payloads).
        cmd = Command(self.cmd.data)
        word = self.cmd.data
        raw_op = word[0:OPCODE_BITS]
        op = cmd.opcode

        # ---- architectural state ------------------------------------------------------------
        pc = Signal(COMMAND_ADDR_BITS)
        executed = Signal(32)
        wait_until = Signal(TIME_BITS)
        wait_kind = Signal(2)  # 1: IDLE, 2: SLEEP (for the asleep/idle counters)
        period = Signal(48)
        deadline = Signal(TIME_BITS)
        loop_armed = Signal()
        loop_pc = Signal(COMMAND_ADDR_BITS)
        loop_left = Signal(16)
        lead_on = Signal()  # LAUNCHED returns to EXEC when lead_left reaches 1 (look-ahead)
        lead_left = Signal(payload_fields(Opcode.LAUNCH)["lead"])
        running = self.launch.start  # a launch's ops run (held until done is taken)
        R = cfg.rails
        rail_code = Array(Signal(VOLTAGE_CODE_BITS, name=f"rail{r}_code") for r in range(R))
        rail_prev = Array(Signal(VOLTAGE_CODE_BITS, name=f"rail{r}_prev") for r in range(R))
        rail_until = Array(Signal(TIME_BITS, name=f"rail{r}_until") for r in range(R))
        conn_on = Array(Signal(name=f"{d}_powered") for d in _DOMAINS)
        conn_rail = Array(Signal(3, name=f"{d}_rail") for d in _DOMAINS)
        dom_prev = Array(Signal(VOLTAGE_CODE_BITS, name=f"{d}_prev") for d in _DOMAINS)
        dom_until = Array(Signal(TIME_BITS, name=f"{d}_until") for d in _DOMAINS)
        incs = Array(getattr(self.clocks, d) for d in _DOMAINS)
        # The checkpoint store (pmu/store.py): the current slot (1 after reset, so the first
        # checkpoint goes to slot 0), its sequence number, the SAVE/RESTORE word offsets, and the
        # copy in progress (STORE state: one tick per store word).
        current = Signal(init=1)
        sequence = Signal(SEQUENCE_BITS)
        save_off = Signal(ADDR_BITS + 1)
        restore_off = Signal(ADDR_BITS + 1)
        cp_kind = Signal(Opcode)
        cp_left = Signal(ADDR_BITS + 1)  # words still to copy
        cp_inval = Signal()  # SAVE first: the free slot's marker is written invalid first
        cp_spad = Signal(ADDR_BITS)
        cp_store = Signal(STORE_ADDR_BITS)
        cp_marker = Signal(WORD_BITS)  # COMMIT's marker; RESUME's first marker read
        slot_words, spad_words = cfg.slot_words, cfg.spad_words

        def lower(a: Value, b: Value) -> Value:
            return Mux(a < b, a, b)

        # ---- voltages as seen in this cycle --------------------------------------------------
        rail_safe = Array(Signal(VOLTAGE_CODE_BITS, name=f"rail{r}_safe") for r in range(R))
        for r in range(R):
            m.d.comb += rail_safe[r].eq(
                Mux(now < rail_until[r], lower(rail_prev[r], rail_code[r]), rail_code[r])
            )
        dom_safe = []
        for i, d in enumerate(_DOMAINS):
            rs = Signal(VOLTAGE_CODE_BITS, name=f"{d}_rail_safe")
            m.d.comb += rs.eq(rail_safe[conn_rail[i]])
            safe = Signal(VOLTAGE_CODE_BITS, name=f"{d}_safe_now")
            m.d.comb += safe.eq(
                Mux(conn_on[i], Mux(now < dom_until[i], lower(dom_prev[i], rs), rs), 0)
            )
            dom_safe.append(safe)
            m.d.comb += [
                getattr(self.safe, d).eq(safe),
                getattr(self.level, d).eq(Mux(conn_on[i], rail_code[conn_rail[i]], 0)),
            ]
        dom_safe_arr = Array(dom_safe)
        # The supply switch matrix: domain d takes rail r while connected to it.
        for i, d in enumerate(_DOMAINS):
            switches = getattr(self.supply, d)
            m.d.comb += [
                switches.on.eq(conn_on[i]),
                switches.select.eq(Cat(conn_on[i] & (conn_rail[i] == r) for r in range(R))),
            ]

        # ---- decode and checks (priority as pmu/timing.py) ------------------------------------
        p: data.View = cmd.payload  # mypy cannot see the Payload union layout's fields
        used_bits = Signal(range(65))
        with m.Switch(raw_op):
            for o in Opcode:
                with m.Case(o.value):
                    m.d.comb += used_bits.eq(OPCODE_BITS + sum(payload_fields(o).values()))
            with m.Default():
                m.d.comb += used_bits.eq(64)
        unused_set = Signal()
        m.d.comb += unused_set.eq((word >> used_bits) != 0)
        has_domain = (op == Opcode.CONNECT) | (op == Opcode.SET_FREQ)
        domain_raw = word[OPCODE_BITS : OPCODE_BITS + 2]
        rail_f = Mux(op == Opcode.SET_RAIL, p.set_rail.rail, p.connect.rail)
        group, mask = p.gate.group, p.gate.mask  # WAKE has the same layout
        last_group = cfg.groups - 1
        last_mask = (1 << (cfg.n_banks - GROUP_BANKS * last_group)) - 1
        bank_bad = (group > last_group) | ((group == last_group) & ((mask & ~last_mask) != 0))
        first, count = p.launch.first, p.launch.count
        inc_zero = (self.clocks.sys == 0) | (self.clocks.rram == 0) | (self.clocks.feeder == 0)

        # SAVE and RESTORE share a layout; their ranges: the scratchpad and one store slot.
        copy_op = (op == Opcode.SAVE) | (op == Opcode.RESTORE)
        copy_first, copy_base, copy_words = p.save.first, p.save.base, p.save.words
        copy_off = Signal(ADDR_BITS + 1)
        m.d.comb += copy_off.eq(Mux(copy_first, 0, Mux(op == Opcode.SAVE, save_off, restore_off)))
        copy_end_spad = copy_base + copy_words > spad_words
        copy_end_slot = copy_off + copy_words > slot_words
        free = ~current

        err = Signal(ErrorCode)
        checks = [
            ((self.limits.budget != 0) & (executed >= self.limits.budget), ErrorCode.WATCHDOG),
            ((pc >= self.limits.cmd_words) | (pc >= COMMAND_WORDS), ErrorCode.END_OF_PROGRAM),
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
                (op == Opcode.LAUNCH) & ((count == 0) | (first + count > self.limits.prog_ops)),
                ErrorCode.LAUNCH_RANGE,
            ),
            ((op == Opcode.LAUNCH) & inc_zero, ErrorCode.CLOCK_STOPPED),
            ((op == Opcode.SET_PERIOD) & (p.set_period.cycles == 0), ErrorCode.PERIOD),
            (((op == Opcode.IDLE) | (op == Opcode.SLEEP)) & (period == 0), ErrorCode.PERIOD),
            ((op == Opcode.LOOP) & loop_armed & (loop_pc != pc), ErrorCode.LOOP_NESTED),
        ]
        if cfg.store:
            checks.append((copy_op & (copy_end_spad | copy_end_slot), ErrorCode.STORE_RANGE))
        else:
            is_store_op = (raw_op >= Opcode.SAVE.value) & (raw_op <= Opcode.RESUME.value)
            checks.append((is_store_op, ErrorCode.NO_STORE))
        lookahead_op = Signal()
        m.d.comb += lookahead_op.eq(0)
        with m.Switch(raw_op), m.Case(*(o.value for o in LOOKAHEAD_COMMANDS)):
            m.d.comb += lookahead_op.eq(1)
        checks.append((running & ~lookahead_op, ErrorCode.BUSY))
        with m.If(checks[0][0]):
            m.d.comb += err.eq(checks[0][1])
        for cond, code in checks[1:]:
            with m.Elif(cond):
                m.d.comb += err.eq(code)

        # ---- time ------------------------------------------------------------------------------
        m.d.comb += self.cmd.addr.eq(pc)
        m.d.sync += now.eq(now + self.delta)
        m.d.comb += self.status.tick_end.eq(now + self.delta)

        def go(cont: object, kind: int = 0) -> None:
            """Continue with the next command at cycle ``cont`` (>= now + 1)."""
            with m.If(cont > now + 1):
                m.d.sync += [wait_until.eq(cont), wait_kind.eq(kind)]
                m.next = "WAIT"

        def next_word() -> None:
            """A copy's word is done: advance both addresses; the last word ends the copy."""
            m.d.sync += [
                cp_spad.eq(cp_spad + 1),
                cp_store.eq(cp_store + 1),
                cp_left.eq(cp_left - 1),
            ]
            with m.If(cp_left == 1):
                m.next = "EXEC"

        def stop() -> None:
            m.d.sync += [self.status.halted.eq(1), self.status.end_cycle.eq(now)]
            m.next = "STOPPED"

        def take_done() -> Value:
            """The accelerator's ``done`` for the running launch (in every state but STOPPED):
            the one-cycle ``launch_done`` pulse, and ``start`` drops."""
            done = Signal(name="launch_taken")
            m.d.comb += done.eq(running & self.launch.done)
            with m.If(done):
                m.d.comb += self.status.launch_done.eq(1)
                m.d.sync += self.launch.start.eq(0)
            return done

        with m.FSM(name="pmu"):
            with m.State("EXEC"):
                m.d.comb += self.delta.eq(1)
                take_done()
                with m.If(err != ErrorCode.NONE):
                    m.d.sync += [self.status.error.eq(err), self.status.error_pc.eq(pc)]
                    stop()
                with m.Elif(op == Opcode.HALT):
                    m.d.sync += self.status.halt_code.eq(p.halt.code)
                    stop()
                with m.Else():
                    m.d.sync += [executed.eq(executed + 1), pc.eq(pc + 1)]
                    with m.Switch(op):
                        with m.Case(Opcode.SET_PERIOD):
                            m.d.comb += self.status.period_set.eq(1)
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
                                self.banks.gate.eq(1),
                                self.banks.group.eq(group),
                                self.banks.mask.eq(mask),
                            ]
                        with m.Case(Opcode.WAKE):
                            m.d.comb += [
                                self.banks.wake.eq(1),
                                self.banks.group.eq(group),
                                self.banks.mask.eq(mask),
                            ]
                        with m.Case(Opcode.LAUNCH):
                            m.d.sync += [
                                self.launch.start.eq(1),
                                self.launch.first.eq(first),
                                self.launch.count.eq(count),
                                self.status.launch_exec.eq(now),
                                lead_on.eq(p.launch.lead != 0),
                                lead_left.eq(p.launch.lead),
                            ]
                            m.next = "LAUNCHED"
                        with m.Case(Opcode.SYNC), m.If(running & ~self.launch.done):
                            m.d.sync += lead_on.eq(0)
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
                                m.d.comb += [self.sleep.eq(1), self.banks.gate_all.eq(1)]
                                for i in range(len(_DOMAINS)):
                                    m.d.sync += [conn_on[i].eq(0), incs[i].eq(0)]
                            m.d.sync += deadline.eq(deadline + period)
                            go(deadline, Mux(is_sleep, 2, 1))
                        if cfg.store:  # the checkpoint commands (an intermittent build)
                            with m.Case(Opcode.SAVE):
                                m.d.sync += [
                                    cp_kind.eq(Opcode.SAVE),
                                    cp_left.eq(copy_words),
                                    cp_inval.eq(copy_first),
                                    cp_spad.eq(copy_base),
                                    cp_store.eq(DATA_BASE + Mux(free, slot_words, 0) + copy_off),
                                    save_off.eq(copy_off + copy_words),
                                ]
                                with m.If(copy_first | (copy_words != 0)):
                                    m.next = "STORE"
                            with m.Case(Opcode.RESTORE):
                                m.d.sync += [
                                    cp_kind.eq(Opcode.RESTORE),
                                    cp_left.eq(copy_words),
                                    cp_spad.eq(copy_base),
                                    cp_store.eq(DATA_BASE + Mux(current, slot_words, 0) + copy_off),
                                    restore_off.eq(copy_off + copy_words),
                                ]
                                with m.If(copy_words != 0):
                                    m.next = "STORE"
                            with m.Case(Opcode.COMMIT):
                                marker = Marker(cp_marker[:60])
                                m.d.sync += [
                                    cp_kind.eq(Opcode.COMMIT),
                                    cp_marker.eq(0),
                                    marker.magic.eq(MAGIC),
                                    marker.sequence.eq(sequence + 1),
                                    marker.resume.eq(p.commit.resume),
                                    marker.boundary.eq(p.commit.boundary),
                                ]
                                m.next = "STORE"
                            with m.Case(Opcode.RESUME):
                                m.d.sync += [cp_kind.eq(Opcode.RESUME), cp_left.eq(2)]
                                m.next = "STORE"
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
                    # While ops run, every cycle is a tick (the accelerator needs them).
                    self.delta.eq(Mux(running, 1, wait_until - now)),
                    self.idle.eq(wait_kind == 1),
                    self.asleep.eq(wait_kind == 2),
                ]
                take_done()
                with m.If(~running | (now + 1 >= wait_until)):
                    m.next = "EXEC"
            with m.State("LAUNCHED"):
                m.d.comb += self.delta.eq(1)
                m.d.sync += lead_left.eq(lead_left - 1)
                with m.If(take_done() | (lead_on & (lead_left == 1))):
                    m.next = "EXEC"
            if cfg.store:
                with m.State("STORE"):
                    # One tick per store word: a write lands at the tick's end, W cycles after it
                    # starts; a read takes R cycles. The tick's ``delta`` skips the cycles between.
                    writes = (cp_kind == Opcode.SAVE) | (cp_kind == Opcode.COMMIT)
                    m.d.comb += self.delta.eq(
                        Mux(writes, cfg.store_write_cycles, cfg.store_read_cycles)
                    )
                    with m.Switch(cp_kind):
                        with m.Case(Opcode.SAVE):
                            m.d.comb += self.store_write_event.eq(1)
                            with m.If(cp_inval):
                                m.d.comb += [
                                    self.store_write.en.eq(1),
                                    self.store_write.addr.eq(free),
                                    self.store_write.data.eq(0),
                                ]
                                m.d.sync += cp_inval.eq(0)
                                with m.If(cp_left == 0):
                                    m.next = "EXEC"
                            with m.Else():
                                m.d.comb += [
                                    self.copy_read.en.eq(1),
                                    self.copy_read.addr.eq(cp_spad),
                                    self.store_write.en.eq(1),
                                    self.store_write.addr.eq(cp_store),
                                    self.store_write.data.eq(self.copy_read.data),
                                ]
                                next_word()
                        with m.Case(Opcode.RESTORE):
                            m.d.comb += [
                                self.store_read_event.eq(1),
                                self.store_read.addr.eq(cp_store),
                                self.copy_write.en.eq(1),
                                self.copy_write.addr.eq(cp_spad),
                                self.copy_write.data.eq(self.store_read.data),
                            ]
                            next_word()
                        with m.Case(Opcode.COMMIT):
                            m.d.comb += [
                                self.store_write_event.eq(1),
                                self.store_write.en.eq(1),
                                self.store_write.addr.eq(free),
                                self.store_write.data.eq(cp_marker),
                            ]
                            m.d.sync += [current.eq(free), sequence.eq(sequence + 1)]
                            m.next = "EXEC"
                        with m.Case(Opcode.RESUME):
                            # Tick 1 reads marker 0 into cp_marker; tick 2 reads marker 1 and
                            # chooses (the newer valid one by serial-number arithmetic).
                            m.d.comb += [
                                self.store_read_event.eq(1),
                                self.store_read.addr.eq(cp_left == 1),
                            ]
                            m.d.sync += cp_left.eq(cp_left - 1)
                            with m.If(cp_left == 2):
                                m.d.sync += cp_marker.eq(self.store_read.data)
                            with m.Else():
                                m0, m1 = Marker(cp_marker[:60]), Marker(self.store_read.data[:60])
                                valid0 = Signal()
                                valid1 = Signal()
                                ahead = Signal(SEQUENCE_BITS)
                                m.d.comb += [
                                    valid0.eq((m0.magic == MAGIC) & (cp_marker[60:] == 0)),
                                    valid1.eq(
                                        (m1.magic == MAGIC) & (self.store_read.data[60:] == 0)
                                    ),
                                    ahead.eq(m1.sequence - m0.sequence),
                                ]
                                newer1 = (ahead != 0) & ~ahead[SEQUENCE_BITS - 1]
                                pick1 = valid1 & (~valid0 | newer1)
                                with m.If(pick1):
                                    m.d.sync += [
                                        current.eq(1),
                                        sequence.eq(m1.sequence),
                                        pc.eq(m1.resume),
                                    ]
                                with m.Elif(valid0):
                                    m.d.sync += [
                                        current.eq(0),
                                        sequence.eq(m0.sequence),
                                        pc.eq(m0.resume),
                                    ]
                                m.next = "EXEC"
            with m.State("STOPPED"):
                m.d.comb += self.delta.eq(0)
        return m
