"""The PMU's behaviour in Python, cycle for cycle: the golden model of the PMU RTL.

:func:`predict` executes a command program the way ``pmu/sequencer.py`` does and returns, for
every command, LAUNCH and frame, the exact reference cycle, plus the end state (HALT code or
error), the counters and the overclock monitor. The RTL is checked against it to the cycle
(tests/pmu, tests/cosim/test_pmu.py); docs/pmu.md states the same timing in prose.

Timing (t = the reference cycle in which a command executes; every command's effects are visible
from t + 1; the next command executes at its continuation c):

- SET_PERIOD, SET_RAIL, SET_FREQ, GATE, WAKE, LOOP: c = t + 1.
- WAIT n: c = t + 1 + n.  CONNECT: c = t + 1 + transition_cycles (the PMU waits for the switch).
- WAIT_RAILS: c = max(t + 1, every rail's settle deadline); SET_RAIL's deadline is
  t + 1 + rail_settle_cycles.
- LAUNCH: the accelerator runs its ops in cycles t + 2 .. t + 1 + C (C = the ops' reference
  cycles at the present increments); the PMU sees ``done`` at d = t + 2 + C; c = t + 3 + C.
  With ``lead`` L in 1 .. C + 1 (look-ahead): c = t + 1 + L, and the ops are *running* through
  cycle d: only SET_RAIL, WAIT_RAILS, CONNECT, GATE, WAKE, WAIT and SYNC may execute in those
  cycles (any other command stops the PMU with BUSY); a larger L is an ordinary LAUNCH.
- SYNC: c = max(t + 1, d + 1) while a look-ahead LAUNCH's ops run, else t + 1.
- SAVE: c = t + 1 + (first + words) * W; RESTORE: c = t + 1 + words * R; COMMIT: c = t + 1 + W;
  RESUME: c = t + 1 + 2 * R (W, R: a checkpoint-store word write / read; pmu/store.py). RESUME
  then continues at the newer valid marker's ``resume`` command, or at pc + 1.
- IDLE / SLEEP: c = max(t + 1, deadline), then deadline += period (SET_PERIOD at t sets the
  period and deadline = t + period). SLEEP first powers every domain off (supply and clock) and
  gates every bank.
- HALT and errors: the PMU stops in cycle t; counters include cycle t.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from voltflow.pmu.config import COMMAND_WORDS, GROUP_BANKS, TRANSITION_KINDS, PmuConfig
from voltflow.pmu.isa import (
    HALT_POWER_OFF,
    LOOKAHEAD_COMMANDS,
    DomainCode,
    ErrorCode,
    Instr,
    IsaError,
    Opcode,
    decode,
)
from voltflow.pmu.store import marker_word, newest
from voltflow.scheduler.chip import BANK_DOMAIN, DOMAINS, BankKind

__all__ = [
    "LAUNCH_DONE_DELAY",
    "LAUNCH_OVERHEAD",
    "NO_FAILURE",
    "TRANSITION_KINDS",
    "Launch",
    "Outcome",
    "RunawayProgramError",
    "StoreState",
    "SupplyState",
    "predict",
    "predict_power_cycles",
    "random_failures",
]

#: A power-up's failure cycle that never comes (``predict_power_cycles``' ``failures``).
NO_FAILURE = (1 << 62) - 1

#: A LAUNCH executed at t sees the accelerator's ``done`` at t + LAUNCH_DONE_DELAY + C.
LAUNCH_DONE_DELAY = 2
#: Cycles a LAUNCH costs on top of its ops' cycles C (the next command executes at t + C + 3).
LAUNCH_OVERHEAD = 3
_DOMAIN_INDEX = {DomainCode.SYS.value: 0, DomainCode.RRAM.value: 1, DomainCode.FEEDER.value: 2}
#: Index (in DOMAINS) of the domain whose voltage each bank kind's leakage is charged at.
_KIND_DOMAINS = tuple(DOMAINS.index(BANK_DOMAIN[kind]) for kind in BankKind)
assert [d.name for d in DOMAINS] == ["SYS", "RRAM", "FEEDER"]
#: The commands that change what powers the chip (``predict``'s ``on_supply``).
_SUPPLY_COMMANDS = frozenset(
    {Opcode.SET_RAIL, Opcode.CONNECT, Opcode.GATE, Opcode.WAKE, Opcode.SLEEP}
)


#: The checkpoint commands (a build with the store only).
_STORE_COMMANDS = frozenset({Opcode.SAVE, Opcode.RESTORE, Opcode.COMMIT, Opcode.RESUME})


@dataclass(frozen=True, slots=True)
class SupplyState:
    """What powers the chip at one moment: the rails' voltage codes (0 off, k + 1 grid level k),
    the rail each domain is connected to (DOMAINS order; None: disconnected) and which banks
    are switched on."""

    rail_codes: tuple[int, ...]
    domain_rails: tuple[int | None, ...]
    banks_on: tuple[bool, ...]


@dataclass(slots=True)
class StoreState:
    """The checkpoint store's markers as the PMU model sees them (the data words are the RTL's;
    the model needs only what decides timing and jumps), and the PMU's store registers, which a
    power failure resets: ``current`` slot (1 after reset, so the first checkpoint goes to slot
    0), its ``sequence`` and the SAVE/RESTORE word offsets."""

    markers: list[int] = field(default_factory=lambda: [0, 0])
    current: int = 1
    sequence: int = 0
    save_offset: int = 0
    restore_offset: int = 0
    writes: int = 0  # store words written (markers included)
    reads: int = 0  # store words read (markers included)
    copy_reads: int = 0  # scratchpad words read by SAVE
    copy_writes: int = 0  # scratchpad words written by RESTORE


class RunawayProgramError(ValueError):
    """A program that executes more commands than the model's guard without stopping."""


@dataclass(frozen=True, slots=True)
class Launch:
    """One LAUNCH: the cycle it executed and the cycle the PMU saw the ops done."""

    first: int
    count: int
    exec_cycle: int
    done_cycle: int

    @property
    def cycles(self) -> int:
        """The accelerator's running cycles (== the ops' predicted reference cycles)."""
        return self.done_cycle - self.exec_cycle - LAUNCH_DONE_DELAY


@dataclass(slots=True)
class Outcome:
    """How a program ran (the RTL's counters and status, in the same units)."""

    end_cycle: int = 0  # the cycle of the HALT or of the offending command
    halt_code: int | None = None  # HALT's code; None when stopped by an error
    error: ErrorCode = ErrorCode.NONE
    error_pc: int | None = None
    commands: int = 0  # commands executed (the erroring one not included)
    launches: list[Launch] = field(default_factory=list)
    frames: int = 0  # IDLE/SLEEP completions (period timer fires)
    overruns: int = 0  # IDLE/SLEEP reached after the period had already ended
    level_cycles: list[list[int]] = field(default_factory=list)  # [domain][level]
    bank_on_cycles: list[int] = field(default_factory=list)
    #: [kind (BankKind order)][level]: bank-cycles of the kind's banks that are on while the
    #: kind's domain (feeder for the scratchpad, rram for RRAM) is at that level.
    bank_level_cycles: list[list[int]] = field(default_factory=list)
    bank_kind_wakes: list[int] = field(default_factory=list)  # banks woken, per kind
    transitions: dict[str, int] = field(default_factory=dict)
    asleep_cycles: int = 0
    idle_cycles: int = 0
    overclock_count: int = 0
    overclock_first: int | None = None
    command_cycles: list[tuple[int, int]] = field(default_factory=list)  # (pc, cycle) executed
    store: StoreState = field(default_factory=StoreState)
    failed_at: int | None = None  # the supply failed in this cycle (predict's ``fail_at``)

    @property
    def cycles(self) -> int:
        """Reference cycles the run took (cycle 0 .. end_cycle)."""
        return self.end_cycle + 1

    def counter_values(self) -> dict[str, int]:
        """The power counters by the RTL's port names (``pmu.unit.COUNTER_PORTS``), monitors
        aside."""
        values = {
            f"cycles_{d.value}_{k}": c
            for d, row in zip(DOMAINS, self.level_cycles, strict=True)
            for k, c in enumerate(row)
        }
        values |= dict(self.transitions)
        values |= {
            "asleep_cycles": self.asleep_cycles,
            "idle_cycles": self.idle_cycles,
            "frames": self.frames,
            "overruns": self.overruns,
        }
        for kind, row, wakes in zip(
            BankKind, self.bank_level_cycles, self.bank_kind_wakes, strict=True
        ):
            values |= {f"bank_cycles_{kind.value}_{k}": c for k, c in enumerate(row)}
            values[f"wakes_{kind.value}"] = wakes
        values |= {
            "store_writes": self.store.writes,
            "store_reads": self.store.reads,
            "copy_reads": self.store.copy_reads,
            "copy_writes": self.store.copy_writes,
        }
        return values


class _Pmu:
    def __init__(self, config: PmuConfig) -> None:
        self.cfg = config
        nd = len(DOMAINS)
        self.rail_code = [0] * config.rails  # 0 = off, k + 1 = level k
        self.rail_prev = [0] * config.rails
        self.rail_until = [0] * config.rails
        self.conn: list[int | None] = [None] * nd
        self.dom_prev = [0] * nd
        self.dom_until = [0] * nd
        self.inc = [0] * nd
        self.on = [True] * config.n_banks
        self.on_since = [0] * config.n_banks  # first cycle of the bank's present on-interval
        self.group_until = [0] * config.groups
        self.group_waking = [0] * config.groups
        self.out = Outcome(
            level_cycles=[[0] * len(config.levels_v) for _ in range(nd)],
            bank_on_cycles=[0] * config.n_banks,
            transitions=dict.fromkeys(TRANSITION_KINDS, 0),
            bank_level_cycles=[[0] * len(config.levels_v) for _ in BankKind],
            bank_kind_wakes=[0] * len(BankKind),
        )
        self.kind_index = [list(BankKind).index(b.kind) for b in config.banks]
        self.on_by_kind = [self.kind_index.count(j) for j in range(len(BankKind))]
        self.violating = False

    def supply_state(self) -> SupplyState:
        return SupplyState(tuple(self.rail_code), tuple(self.conn), tuple(self.on))

    # ---- state as seen in a cycle -------------------------------------------------------------
    def rail_safe(self, r: int, x: int) -> int:
        if x < self.rail_until[r]:
            return min(self.rail_prev[r], self.rail_code[r])
        return self.rail_code[r]

    def dom_safe(self, d: int, x: int) -> int:
        r = self.conn[d]
        if r is None:
            return 0
        safe = self.rail_safe(r, x)
        return min(self.dom_prev[d], safe) if x < self.dom_until[d] else safe

    def overclocked(self, x: int) -> bool:
        for d in range(len(DOMAINS)):
            code = self.dom_safe(d, x)
            limit = 0 if code == 0 else self.cfg.max_increment[d][code - 1]
            if self.inc[d] > limit:
                return True
        return False

    def account(self, start: int, stop: int) -> None:
        """Charge cycles [start, stop) to the state as it is (no command executes inside)."""
        n = stop - start
        if n <= 0:
            return
        for d, r in enumerate(self.conn):
            if r is not None and self.rail_code[r]:
                self.out.level_cycles[d][self.rail_code[r] - 1] += n
        # Per-bank on-time is kept as intervals (closed by gate() and close_banks()), so a
        # command costs the same however many banks the chip has.
        for j, domain in enumerate(_KIND_DOMAINS):
            r = self.conn[domain]
            if self.on_by_kind[j] and r is not None and self.rail_code[r]:
                self.out.bank_level_cycles[j][self.rail_code[r] - 1] += n * self.on_by_kind[j]
        # The monitor: rising edges only happen when a command takes effect (start); deadlines
        # inside the interval can only end a violation.
        points = [
            start,
            *sorted({u for u in (*self.rail_until, *self.dom_until) if start < u < stop}),
        ]
        for x in points:
            now = self.overclocked(x)
            if now and not self.violating:
                self.out.overclock_count += 1
                if self.out.overclock_first is None:
                    self.out.overclock_first = x
            self.violating = now

    def gate(self, b: int, t: int) -> None:
        """Gate bank ``b`` by a command executing in cycle ``t`` (on through ``t``)."""
        if self.on[b]:
            self.on[b] = False
            self.on_by_kind[self.kind_index[b]] -= 1
            self.out.bank_on_cycles[b] += t + 1 - self.on_since[b]
            self.out.transitions["bank_gates"] += 1

    def wake(self, b: int, t: int) -> bool:
        """Wake bank ``b`` by a command executing in cycle ``t`` (on from ``t + 1``)."""
        if self.on[b]:
            return False
        self.on[b] = True
        self.on_by_kind[self.kind_index[b]] += 1
        self.on_since[b] = t + 1
        return True

    def close_banks(self, end: int) -> None:
        """Close the on-intervals of the banks still on when the run ends in cycle ``end``."""
        for b, on in enumerate(self.on):
            if on:
                self.out.bank_on_cycles[b] += end + 1 - self.on_since[b]
                self.on_since[b] = end + 1


def _check_banks(config: PmuConfig, group: int, mask: int) -> bool:
    return all(
        group * GROUP_BANKS + i < config.n_banks for i in range(GROUP_BANKS) if mask >> i & 1
    )


def predict(
    words: Sequence[int],
    config: PmuConfig,
    launch_cycles: Callable[[int, int, tuple[int, int, int]], int],
    *,
    program_ops: int,
    budget: int = 0,
    max_commands: int = 10_000_000,
    on_supply: Callable[[int | None, SupplyState], None] | None = None,
    markers: Sequence[int] = (0, 0),
    fail_at: int | None = None,
) -> Outcome:
    """Run ``words`` on the PMU model.

    Parameters
    ----------
    words : sequence of int
        The command memory (its length is the loaded program: fetching beyond is an error).
    config : PmuConfig
        The PMU build the RTL has.
    launch_cycles : callable
        ``(first, count, (inc_sys, inc_rram, inc_feeder)) -> C``: the accelerator's running
        cycles for a LAUNCH (the sum of the ops' ``OpWork.ref_cycles``).
    program_ops : int
        Descriptors loaded in the layer program (LAUNCH beyond is an error).
    budget : int
        Commands the run may execute (0: unlimited); the next one stops with WATCHDOG.
    max_commands : int
        A Python-side guard for programs that loop forever without a budget: beyond it,
        :class:`RunawayProgramError` (about 11 us per command, so the default is 2 minutes).
    on_supply : callable, optional
        ``(pc, state)``: called with the reset state (``pc`` None), then after every executed
        command that can change what powers the chip (SET_RAIL, CONNECT, GATE, WAKE, SLEEP),
        with the command's address and the :class:`SupplyState` from the next cycle on.
    markers : (int, int)
        The checkpoint store's two marker words when the PMU starts (they survive power
        failures); the outcome's ``store`` holds them at the end.
    fail_at : int, optional
        The cycle at which the supply fails: the tick that covers it loses its effects (a store
        write lands at the end of its tick, so one that would land after ``fail_at`` is lost), and
        the model stops there with ``failed_at`` set (counters up to the interrupted command).
    """
    cfg = config
    pmu = _Pmu(cfg)
    out = pmu.out
    t = 0
    pc = 0
    period = 0
    deadline = 0
    loop_armed = False
    loop_pc = 0
    loop_left = 0
    store = out.store
    store.markers = list(markers)
    write, read = cfg.store_write_cycles, cfg.store_read_cycles
    spad_words = cfg.spad_words
    running = -1  # the done cycle of a look-ahead LAUNCH's ops (running through it)

    def stop(error: ErrorCode) -> Outcome:
        out.error = error
        out.error_pc = pc
        return finish()

    def finish() -> Outcome:
        out.end_cycle = t
        _drop_unfinished(out.launches, t + 1)  # a stopped PMU sees no later done
        pmu.account(t, t + 1)
        pmu.close_banks(t)
        return out

    decoded: dict[int, tuple[ErrorCode, Instr | None, dict[str, int]]] = {}
    if on_supply is not None:
        on_supply(None, pmu.supply_state())

    def fail() -> Outcome:
        assert fail_at is not None
        out.failed_at = out.end_cycle = fail_at  # the power cycle ends in the failing cycle
        _drop_unfinished(out.launches, fail_at)  # the failing tick's done never happens
        return out

    while True:
        if fail_at is not None and t >= fail_at:
            return fail()
        if out.commands >= max_commands:
            raise RunawayProgramError(
                f"the program ran {max_commands:,} commands without reaching HALT or an error "
                f"(a LOOP with count 0 repeats forever); give it a LOOP count or a budget"
            )
        if budget and out.commands >= budget:
            return stop(ErrorCode.WATCHDOG)
        if not 0 <= pc < min(len(words), COMMAND_WORDS):
            return stop(ErrorCode.END_OF_PROGRAM)
        if pc not in decoded:  # each word is decoded once: loops replay the cached fields
            error, instr = _decode(words[pc])
            decoded[pc] = (error, instr, dict(instr.args) if instr is not None else {})
        error, instr, a = decoded[pc]
        if error is not ErrorCode.NONE:
            return stop(error)
        assert instr is not None
        op = instr.opcode
        # Checks that need the chip.
        if op in (Opcode.SET_RAIL, Opcode.CONNECT) and a["rail"] >= cfg.rails:
            return stop(ErrorCode.RAIL_RANGE)
        if op is Opcode.SET_RAIL and a["level"] >= len(cfg.levels_v):
            return stop(ErrorCode.LEVEL_RANGE)
        if op is Opcode.SET_FREQ and a["increment"] >= 1 << cfg.phase_bits:
            return stop(ErrorCode.FREQ_RANGE)
        if op in (Opcode.GATE, Opcode.WAKE) and not _check_banks(cfg, a["group"], a["mask"]):
            return stop(ErrorCode.BANK_RANGE)
        if op is Opcode.LAUNCH and (a["count"] == 0 or a["first"] + a["count"] > program_ops):
            return stop(ErrorCode.LAUNCH_RANGE)
        if op is Opcode.LAUNCH and 0 in pmu.inc:
            return stop(ErrorCode.CLOCK_STOPPED)
        if op is Opcode.SET_PERIOD and a["cycles"] == 0:
            return stop(ErrorCode.PERIOD)
        if op in (Opcode.IDLE, Opcode.SLEEP) and period == 0:
            return stop(ErrorCode.PERIOD)
        if op is Opcode.LOOP and loop_armed and loop_pc != pc:
            return stop(ErrorCode.LOOP_NESTED)
        if op in _STORE_COMMANDS and not cfg.store:
            return stop(ErrorCode.NO_STORE)
        if op in (Opcode.SAVE, Opcode.RESTORE):
            offset = (
                0
                if a["first"]
                else (store.save_offset if op is Opcode.SAVE else store.restore_offset)
            )
            if a["base"] + a["words"] > spad_words or offset + a["words"] > cfg.slot_words:
                return stop(ErrorCode.STORE_RANGE)
        if t <= running and op not in LOOKAHEAD_COMMANDS:
            return stop(ErrorCode.BUSY)
        if op is Opcode.HALT:
            out.halt_code = a["code"]
            return finish()

        out.commands += 1
        out.command_cycles.append((pc, t))
        pmu.account(t, t + 1)  # the command's own cycle sees the state before its effects
        c = t + 1
        next_pc = pc + 1
        if op is Opcode.SET_PERIOD:
            period = a["cycles"]
            deadline = t + period
        elif op is Opcode.SET_RAIL:
            r = a["rail"]
            pmu.rail_prev[r] = pmu.rail_safe(r, t)
            pmu.rail_code[r] = a["level"] + 1
            pmu.rail_until[r] = t + 1 + cfg.rail_settle_cycles
            out.transitions["rail_sets"] += 1
        elif op is Opcode.WAIT_RAILS:
            c = max([t + 1, *pmu.rail_until])
        elif op is Opcode.CONNECT:
            d = _DOMAIN_INDEX[a["domain"]]
            pmu.dom_prev[d] = pmu.dom_safe(d, t)
            pmu.conn[d] = a["rail"]
            pmu.dom_until[d] = t + 1 + cfg.transition_cycles
            out.transitions["supply_switches"] += 1
            c = t + 1 + cfg.transition_cycles
        elif op is Opcode.SET_FREQ:
            pmu.inc[_DOMAIN_INDEX[a["domain"]]] = a["increment"]
            out.transitions["freq_changes"] += 1
        elif op is Opcode.GATE:
            for i in range(GROUP_BANKS):
                if a["mask"] >> i & 1:
                    pmu.gate(a["group"] * GROUP_BANKS + i, t)
        elif op is Opcode.WAKE:
            g = a["group"]
            new = 0
            for i in range(GROUP_BANKS):
                b = g * GROUP_BANKS + i
                if a["mask"] >> i & 1 and pmu.wake(b, t):
                    new |= 1 << i
                    out.transitions["bank_wakes"] += 1
                    out.bank_kind_wakes[pmu.kind_index[b]] += 1
            if new:
                if pmu.group_until[g] <= t + 1:
                    pmu.group_waking[g] = 0
                pmu.group_waking[g] |= new
                pmu.group_until[g] = max(pmu.group_until[g], t + 1 + cfg.group_wake_cycles(g, new))
        elif op is Opcode.LAUNCH:
            cycles = int(launch_cycles(a["first"], a["count"], tuple(pmu.inc)))  # type: ignore[arg-type]
            done = t + LAUNCH_DONE_DELAY + cycles
            out.launches.append(Launch(a["first"], a["count"], t, done))
            c = done + 1
            if 1 <= a["lead"] <= cycles + 1:  # look-ahead: go on while the ops run
                c = t + 1 + a["lead"]
                running = done
        elif op is Opcode.SYNC:
            c = max(t + 1, running + 1)
        elif op is Opcode.WAIT:
            c = t + 1 + a["cycles"]
        elif op in (Opcode.IDLE, Opcode.SLEEP):
            if op is Opcode.SLEEP:
                pmu.conn = [None] * len(DOMAINS)
                pmu.inc = [0] * len(DOMAINS)
                for b in range(cfg.n_banks):
                    pmu.gate(b, t)
                out.transitions["sleeps"] += 1
            if deadline < t + 1:
                out.overruns += 1
            c = max(t + 1, deadline)
            deadline += period
            out.frames += 1
            if op is Opcode.SLEEP:
                out.asleep_cycles += c - t
            else:
                out.idle_cycles += c - t
        elif op is Opcode.SAVE:
            if a["first"] and (fail_at is None or fail_at >= t + 1 + write):
                store.markers[1 - store.current] = 0
                store.save_offset = 0
                store.writes += 1
            store.save_offset += a["words"]
            store.writes += a["words"]
            store.copy_reads += a["words"]
            c = t + 1 + (a["first"] + a["words"]) * write
        elif op is Opcode.RESTORE:
            if a["first"]:
                store.restore_offset = 0
            store.restore_offset += a["words"]
            store.reads += a["words"]
            store.copy_writes += a["words"]
            c = t + 1 + a["words"] * read
        elif op is Opcode.COMMIT:
            free = 1 - store.current
            old_marker = store.markers[free]
            store.sequence = (store.sequence + 1) % (1 << 16)
            store.markers[free] = marker_word(store.sequence, a["resume"], a["boundary"])
            store.current = free
            store.writes += 1
            c = t + 1 + write
        elif op is Opcode.RESUME:
            store.reads += 2
            c = t + 1 + 2 * read
            chosen = newest(store.markers)
            if chosen is not None:
                store.current, store.sequence = chosen[0], chosen[1].sequence
                next_pc = chosen[1].resume
        elif op is Opcode.LOOP:
            if a["count"] == 0:
                next_pc = a["target"]
            elif not loop_armed:
                loop_armed, loop_pc, loop_left = True, pc, a["count"] - 1
                next_pc = a["target"]
            elif loop_left == 0:
                loop_armed = False
            else:
                loop_left -= 1
                next_pc = a["target"]
        if fail_at is not None and c > fail_at:
            # Interrupted: of the store writes, only those whose tick ended before the failure
            # landed. SAVE's invalidation ends at t + 1 + W, COMMIT's marker at t + 1 + W = c.
            if op is Opcode.COMMIT:
                store.markers[store.current] = old_marker
            return fail()
        if on_supply is not None and op in _SUPPLY_COMMANDS:
            on_supply(pc, pmu.supply_state())
        pmu.account(t + 1, c)
        t = c
        pc = next_pc


def _drop_unfinished(launches: list[Launch], end: int) -> None:
    """Forget the launches whose ``done`` the PMU would see at cycle ``end`` or later."""
    while launches and launches[-1].done_cycle >= end:
        launches.pop()


def _decode(word: int) -> tuple[ErrorCode, Instr | None]:
    """pmu.isa.decode, with its IsaError turned into the error code the RTL stops with."""
    try:
        return ErrorCode.NONE, decode(word)
    except IsaError as exc:
        assert exc.error is not None
        return exc.error, None


def predict_power_cycles(
    words: Sequence[int],
    config: PmuConfig,
    launch_cycles: Callable[[int, int, tuple[int, int, int]], int],
    *,
    program_ops: int,
    failures: Sequence[int] = (),
    markers: Sequence[int] = (0, 0),
    max_cycles: int = 100_000,
) -> list[Outcome]:
    """Run an intermittent program through its power-ups: each ends with HALT_POWER_OFF (the
    next one boots with the store's markers as they are), with a supply failure (power-up k
    fails at its cycle ``failures[k]``, as :func:`predict`'s ``fail_at``; a value beyond its end,
    such as :data:`NO_FAILURE`, or no entry lets it run), or with any other stop, which ends the
    run. One :class:`Outcome` per power-up."""
    outcomes: list[Outcome] = []
    state = list(markers)
    while len(outcomes) < max_cycles:
        k = len(outcomes)
        run = predict(
            words,
            config,
            launch_cycles,
            program_ops=program_ops,
            markers=state,
            fail_at=failures[k] if k < len(failures) else None,
        )
        outcomes.append(run)
        state = list(run.store.markers)
        if run.failed_at is None and (
            run.halt_code != HALT_POWER_OFF or run.error is not ErrorCode.NONE
        ):
            return outcomes
    raise RunawayProgramError(f"the program did not finish within {max_cycles:,} power cycles")


def _committed(markers: Sequence[int]) -> int:
    """The boundary of the newest valid marker (0: nothing committed)."""
    chosen = newest(markers)
    return 0 if chosen is None else chosen[1].boundary


def random_failures(
    words: Sequence[int],
    config: PmuConfig,
    launch_cycles: Callable[[int, int, tuple[int, int, int]], int],
    *,
    program_ops: int,
    count: int,
    seed: int,
) -> list[int]:
    """``count`` supply failures at random points of an intermittent program's run, as
    :func:`predict_power_cycles`' ``failures`` (one entry per power-up, :data:`NO_FAILURE` for
    those that run through): each hits a power cycle of the failure-free run chosen uniformly (a
    cycle hit several times fails on its retries), at a cycle drawn uniformly over that
    power-up's whole length (boot, restore, layers, checkpoint, HALT). Deterministic in
    ``seed``."""
    rng = np.random.default_rng(seed)
    clean = predict_power_cycles(words, config, launch_cycles, program_ops=program_ops)
    pending = sorted(int(c) for c in rng.integers(0, len(clean), size=count))
    failures: list[int] = []
    markers: list[int] = [0, 0]
    index = 0  # the failure-free run's power cycle now running
    while pending:
        run = predict(words, config, launch_cycles, program_ops=program_ops, markers=markers)
        if pending[0] <= index:  # (<: its cycle was passed by a failure after its COMMIT)
            pending.pop(0)
            at = int(rng.integers(0, run.end_cycle + 1))
            failures.append(at)
            failed = predict(
                words, config, launch_cycles, program_ops=program_ops, markers=markers, fail_at=at
            )
            # A failure after the COMMIT landed: the next power cycle runs next.
            index += int(_committed(failed.store.markers) != _committed(markers))
            markers = list(failed.store.markers)
            continue
        failures.append(NO_FAILURE)
        markers = list(run.store.markers)
        index += 1
    return failures
