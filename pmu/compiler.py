"""Compiler back-end: a schedule -> a PMU command program (words plus an annotated listing).

Program shape (docs/pmu-isa.md has the commands):

    prologue   SET_RAIL for every rail, WAIT_RAILS, GATE every bank a frame does not start
               with (all banks are on after reset, holding the preloaded memories), then
               (stay-on) the last layer's supplies, clocks and banks, so every frame, the
               first included, starts from the state the previous frame ended in; SET_PERIOD
               last, so the first period starts with the first frame
    frame:     transition into layer 0's state (from the last layer's, or from power-down)
               for each layer: switch the domains that change, gate banks no longer needed,
               wake the banks it needs and wait out their wake-up latency, LAUNCH its ops
               IDLE (stay-on) or SLEEP until the period timer fires
               LOOP frame (frames - 1 more times; no LOOP for one frame: count 0 loops forever)
               HALT 0

LAUNCH counts layer-program descriptors (``rtl.program``: one per op that is not a
concatenation), not network ops.

Safety rules the compiler enforces: a domain's frequency is lowered before its supply is
lowered, and raised only after its supply has been raised (CONNECT waits until the domain's
voltage has settled); a bank is woken just before the layer that needs it, with a WAIT for its
wake-up latency before the LAUNCH, and gated as soon as no later layer of the frame needs its
contents. (The first version woke banks a layer ahead to hide the 20 ns latency; that leaked them
through the whole previous layer, 0.7-2.7 % of a frame's energy at 1.1 V.)
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from voltflow.pmu.config import COMMAND_WORDS, GROUP_BANKS, PmuConfig, ns_to_cycles
from voltflow.pmu.isa import DomainCode, ErrorCode, Opcode, decode, encode, payload_fields
from voltflow.pmu.timing import Outcome, predict
from voltflow.scheduler.chip import DOMAINS, BankKind, Chip, Domain
from voltflow.scheduler.cost import CostTable, schedule_layers
from voltflow.scheduler.dataflow import Mode, OpWork
from voltflow.scheduler.evaluate import SlackMode
from voltflow.scheduler.memory import BankLayout
from voltflow.scheduler.schedule import ScheduleFile

__all__ = [
    "CompileError",
    "Program",
    "check_period",
    "check_schedule",
    "compile_schedule",
    "descriptor_works",
    "launch_cycles",
    "state_program",
    "verify_timing",
]

_DOMAIN_CODE = {
    Domain.SYS: DomainCode.SYS,
    Domain.RRAM: DomainCode.RRAM,
    Domain.FEEDER: DomainCode.FEEDER,
}


class CompileError(ValueError):
    """A schedule that cannot be compiled for this chip and network."""


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled PMU program."""

    words: tuple[int, ...]
    comments: tuple[str, ...]  # one per word: what the command is for
    frame_start: int  # index of the first command of a frame
    rails_v: tuple[float, ...]  # rail index -> voltage
    launch_layers: tuple[str, ...] = ()  # the schedule layer of each LAUNCH of a frame, in order

    def listing(self) -> str:
        """Annotated listing: address, word, disassembly, comment."""
        lines = []
        for addr, (word, note) in enumerate(zip(self.words, self.comments, strict=True)):
            label = "frame:" if addr == self.frame_start else ""
            text = f"{label:<7}{addr:04x}  {word:016x}  {decode(word)!s:<34}"
            lines.append((text + (f" ; {note}" if note else "")).rstrip())
        return "\n".join(lines) + "\n"


class _Emitter:
    def __init__(self, expand: Callable[[np.ndarray, bool], np.ndarray]) -> None:
        self.words: list[int] = []
        self.comments: list[str] = []
        self.expand = expand  # layout bank mask -> the PMU's banks (extra banks: the fill)

    def __call__(self, opcode: Opcode, note: str = "", **args: int | DomainCode) -> None:
        self.words.append(encode(opcode, **args))
        self.comments.append(note)

    def banks(self, opcode: Opcode, mask: np.ndarray, note: str, extra: bool = False) -> None:
        """GATE or WAKE the banks set in ``mask`` (the layout's banks; the PMU's banks beyond
        them: ``extra``), one command per 32-bank group."""
        mask = self.expand(mask, extra)
        for group in range(0, len(mask), GROUP_BANKS):
            bits = mask[group : group + GROUP_BANKS]
            value = int(sum(1 << i for i, on in enumerate(bits) if on))
            if value:
                self(opcode, note, group=group // GROUP_BANKS, mask=value)


def _bank_expander(
    layout: BankLayout, hardware: Mapping[BankKind, int] | None
) -> Callable[[np.ndarray, bool], np.ndarray]:
    """Map a mask over ``layout``'s banks to the hardware's banks, kind by kind (both ordered
    ifmap, ofmap, RRAM), the hardware's extra banks of each kind set to a fill value."""
    if hardware is None:
        return lambda mask, extra: mask
    for kind, n in layout.counts:
        if hardware.get(kind, 0) < n:
            raise CompileError(
                f"the hardware has {hardware.get(kind, 0)} {kind.value} banks; the network's "
                f"memory layout needs {n}"
            )

    def expand(mask: np.ndarray, extra: bool) -> np.ndarray:
        parts = []
        first = 0
        for kind, n in layout.counts:
            parts += [mask[first : first + n], np.full(hardware[kind] - n, extra, dtype=bool)]
            first += n
        return np.concatenate(parts)

    return expand


def compile_schedule(
    schedule: ScheduleFile,
    table: CostTable,
    frames: int = 1,
    hardware_counts: Mapping[BankKind, int] | None = None,
    *,
    lookahead: bool = False,
) -> Program:
    """Compile ``schedule`` (solved on ``table``'s network and chip) for ``frames`` frames.

    ``lookahead``: use the PMU's look-ahead queue. While layer i runs, the supplies that layer
    i + 1 raises are switched and its banks woken, timed (the LAUNCH's ``lead``) so that these
    latencies end as layer i's ops end; the clocks rise after SYNC. Falling supplies cannot
    overlap (a clock must fall before its supply, and layer i needs its clock), nor the frame's
    first layer (the idle or sleeping slack comes between).

    ``hardware_counts``: banks per kind the PMU switches (``PmuConfig``'s banks), when the
    hardware has more than the network's layout uses (an ``auto`` count is simulated with a
    few fixed sizes): every bank mask is placed kind by kind into the hardware's bank order
    (ifmap, ofmap, RRAM), and the prologue gates the extra banks, which are on after reset and
    would otherwise leak in every frame (found by the co-simulation's energy model).
    """
    chip: Chip = table.chip
    groups = schedule_layers(table.network)
    check_schedule(schedule, table)
    if not 1 <= frames <= 1 << 16:
        raise CompileError(f"frames must be in 1..65536, not {frames}")
    rails = tuple(sorted({round(v, 6) for layer in schedule.layers for v in layer.voltage_v}))
    level = {v: _level(chip, v) for v in rails}
    rail_of = {v: i for i, v in enumerate(rails)}
    period = round(schedule.period_s * chip.reference_mhz * 1e6)

    emit = _Emitter(_bank_expander(table.memory, hardware_counts))
    for v, r in rail_of.items():
        emit(Opcode.SET_RAIL, f"rail {r} = {v:.2f} V", rail=r, level=level[v])
    emit(Opcode.WAIT_RAILS)

    last = len(groups) - 1
    # Descriptor index of every op: concatenations (ALIAS) have none.
    descriptor = np.cumsum([0] + [w.mode is not Mode.ALIAS for w in table.works])
    wake_cycles = max(
        ns_to_cycles(chip.bank(k).wake_latency_ns, chip.reference_mhz)
        for k, _ in table.memory.counts
    )
    states = [tuple(round(v, 6) for v in layer.voltage_v) for layer in schedule.layers]
    sleep = schedule.slack_mode is SlackMode.SLEEP

    def set_state(prev: tuple[float, ...] | None, new: tuple[float, ...], why: str) -> None:
        emit_state(emit, chip, rail_of, prev, new, why)

    on = [layer.banks_on for layer in table.layers]
    start_banks = on[0] if sleep else on[last]
    emit.banks(Opcode.GATE, ~start_banks, "prologue: banks a frame does not start with", True)
    if not sleep:
        set_state(None, states[last], "prologue (stay-on): state of the last layer")
        emit.banks(Opcode.WAKE, on[last], "prologue: banks of the last layer")

    # The period timer starts with the first frame: the prologue (rail settling, the first
    # supply switches) does not eat into it.
    emit(Opcode.SET_PERIOD, f"period {schedule.period_s * 1e3:.6g} ms", cycles=period)
    frame_start = len(emit.words)
    launch_layers: list[str] = []
    transition_cycles = ns_to_cycles(chip.transition_latency_ns, chip.reference_mhz)
    # The domains the previous layer's look-ahead connected (None: it had no look-ahead).
    prepared: frozenset[Domain] | None = None
    for i, group in enumerate(groups):
        name = table.layers[i].name
        if i == 0:
            set_state(None if sleep else states[last], states[0], f"layer 0 {name}")
            before = np.zeros_like(on[0]) if sleep else on[last]
        else:
            emit_state(emit, chip, rail_of, states[i - 1], states[i], f"layer {i} {name}", prepared)
            before = on[i - 1]
        woken = on[i] & ~before
        emit.banks(Opcode.GATE, before & ~on[i], f"layer {i}: contents no longer needed")
        if prepared is None:
            emit.banks(Opcode.WAKE, woken, f"layer {i}: needed now")
            if woken.any():
                # Woken just in time: wait out the wake-up latency before the LAUNCH.
                emit(Opcode.WAIT, f"bank wake-up latency {wake_cycles} cycles", cycles=wake_cycles)
        first = int(descriptor[group[0]])
        count = int(descriptor[group[-1] + 1]) - first
        if count > 255:
            raise CompileError(f"layer {name} has {count} ops; LAUNCH runs at most 255")
        prepared = None
        if not count:
            continue
        note = f"layer {i} {name}: {' '.join(table.layers[i].ops)}"
        launch_layers.append(name)
        if not lookahead or i == last:
            emit(Opcode.LAUNCH, note, first=first, count=count, lead=0)
            continue
        section, rising, section_cycles = _lookahead_section(
            emit.expand, rail_of, states[i], states[i + 1], on[i + 1] & ~on[i], i + 1,
            wake_cycles, transition_cycles,
        )  # fmt: skip
        if not section.words:
            emit(Opcode.LAUNCH, note, first=first, count=count, lead=0)
            continue
        # A LAUNCH at t sees done at t + 2 + C; the section starts at t + 1 + lead, so with this
        # lead its SYNC executes in the cycle done is seen.
        cycles = int(table.layers[i].ref_cycles[schedule.layers[i].state])
        lead = max(1, cycles + 1 - section_cycles)
        widest = (1 << payload_fields(Opcode.LAUNCH)["lead"]) - 1
        if lead > widest:  # a longer layer: the section starts with a WAIT for the rest
            section.words.insert(0, encode(Opcode.WAIT, cycles=lead - widest - 1))
            section.comments.insert(0, "look-ahead: the rest of the lead")
            lead = widest
        emit(
            Opcode.LAUNCH, f"{note} (look-ahead {lead} cycles)", first=first, count=count, lead=lead
        )
        emit.words += section.words
        emit.comments += section.comments
        emit(Opcode.SYNC, f"layer {i} {name} done")
        prepared = frozenset(rising)
    if sleep:
        emit(Opcode.SLEEP, "power down until the period ends")
    else:
        emit(Opcode.IDLE, "stay on in the last layer's state until the period ends")
    if frames > 1:
        emit(Opcode.LOOP, f"{frames} frames in all", target=frame_start, count=frames - 1)
    emit(Opcode.HALT, "end", code=0)
    if len(emit.words) > COMMAND_WORDS:
        raise CompileError(
            f"the program has {len(emit.words)} commands; the PMU's command memory holds "
            f"{COMMAND_WORDS} (fewer layers or fewer state changes)"
        )
    return Program(
        tuple(emit.words), tuple(emit.comments), frame_start, rails, tuple(launch_layers)
    )


def _lookahead_section(
    expand: Callable[[np.ndarray, bool], np.ndarray],
    rail_of: Mapping[float, int],
    state: tuple[float, ...],
    following: tuple[float, ...],
    wake: np.ndarray,
    layer: int,
    wake_cycles: int,
    transition_cycles: int,
) -> tuple["_Emitter", list[Domain], int]:
    """The look-ahead commands run while a layer in ``state`` ends, for ``layer`` in
    ``following``: WAKE the banks in ``wake``, CONNECT every domain whose voltage rises to its
    higher rail, and WAIT for what is left of the banks' wake-up latency. Returns the commands,
    the domains raised and the cycles the commands take."""
    section = _Emitter(expand)
    section.banks(Opcode.WAKE, wake, f"look-ahead: layer {layer} needs them")
    cycles = len(section.words)
    woken = bool(section.words)
    rising = [d for d, old, new in zip(DOMAINS, state, following, strict=True) if new > old]
    for d in rising:
        v = following[DOMAINS.index(d)]
        section(
            Opcode.CONNECT,
            f"look-ahead: {d.value} up to {v:.2f} V for layer {layer}, supply first",
            domain=_DOMAIN_CODE[d],
            rail=rail_of[v],
        )
    busy = len(rising) * (1 + transition_cycles)
    if woken and busy < wake_cycles:  # the banks are usable wake_cycles after the last WAKE
        rest = wake_cycles - busy - 1
        section(Opcode.WAIT, f"rest of the bank wake-up latency {rest} cycles", cycles=rest)
        busy += 1 + rest
    return section, rising, cycles + busy


def emit_state(
    emit: "_Emitter",
    chip: Chip,
    rail_of: Mapping[float, int],
    prev: tuple[float, ...] | None,
    new: tuple[float, ...],
    why: str,
    connected: frozenset[Domain] | None = None,
) -> None:
    """Switch domains from ``prev`` (None: powered down) to ``new`` in a safe order: a domain's
    clock is lowered before its supply, and raised only after its supply (CONNECT waits for it).
    ``connected``: domains whose supply a look-ahead already raised (their clock only)."""
    for d, v_old, v_new in zip(DOMAINS, prev or (None,) * len(DOMAINS), new, strict=True):
        code = _DOMAIN_CODE[d]
        inc = int(chip.divider_increment(d, v_new))
        if v_old == v_new:
            continue
        if connected and d in connected:
            emit(
                Opcode.SET_FREQ,
                f"{why}: {d.value} clock (supply raised ahead)",
                domain=code,
                increment=inc,
            )
            continue
        if v_old is not None and v_new < v_old:
            emit(
                Opcode.SET_FREQ,
                f"{why}: {d.value} down to {v_new:.2f} V, clock first",
                domain=code,
                increment=inc,
            )
            emit(
                Opcode.CONNECT,
                f"{why}: {d.value} to rail {rail_of[v_new]}",
                domain=code,
                rail=rail_of[v_new],
            )
        else:
            verb = "power up at" if v_old is None else "up to"
            emit(
                Opcode.CONNECT,
                f"{why}: {d.value} {verb} {v_new:.2f} V, supply first",
                domain=code,
                rail=rail_of[v_new],
            )
            emit(Opcode.SET_FREQ, f"{why}: {d.value} clock", domain=code, increment=inc)


def check_schedule(schedule: ScheduleFile, table: CostTable) -> None:
    """Refuse a schedule that was not solved on ``table``'s network, chip and voltage grid.

    A schedule file is the user's input: the compiler checks every layer's name, voltages (on
    the grid, one per domain), state index and time (re-derived from the cost model), the rails
    it uses against the chip's, and the period against the latency and the PMU's timer field.
    Raises :class:`CompileError` naming the layer, the field, the value and what was expected.
    """
    chip = table.chip
    network = table.network.name
    if len(schedule.layers) != len(table.layers):
        raise CompileError(
            f"the schedule has {len(schedule.layers)} layers but {network} has "
            f"{len(table.layers)} schedule layers on this chip: was it solved for another network?"
        )
    if tuple(schedule.domains) != tuple(d.value for d in DOMAINS):
        raise CompileError(
            f"schedule domains {list(schedule.domains)} differ from the chip's "
            f"{[d.value for d in DOMAINS]}"
        )
    for i, (layer, cost) in enumerate(zip(schedule.layers, table.layers, strict=True)):
        where = f"layers[{i}]"
        if layer.name != cost.name:
            raise CompileError(
                f"{where}.name is {layer.name!r} but layer {i} of {network} is {cost.name!r}: "
                "was the schedule solved for another network? (pass the right --net)"
            )
        try:
            state = table.state_index(layer.voltage_v)
        except ValueError as exc:
            raise CompileError(f"{where} ({layer.name}).voltage_v: {exc}") from None
        if layer.state != state:
            raise CompileError(
                f"{where} ({layer.name}).state is {layer.state}, but its voltages "
                f"{list(layer.voltage_v)} are state {state} of this chip's table "
                "(was it solved with other --levels?)"
            )
        expected_s = float(cost.time_s[state])
        if not math.isclose(layer.time_s, expected_s, rel_tol=1e-9):
            raise CompileError(
                f"{where} ({layer.name}).time_s is {layer.time_s:.9g} s, but the cost model "
                f"gives {expected_s:.9g} s at {', '.join(f'{v:g}' for v in layer.voltage_v)} V: "
                "the schedule was edited or solved for another chip"
            )
    used = {round(v, 6) for layer in schedule.layers for v in layer.voltage_v}
    if schedule.rails > chip.rails:
        raise CompileError(
            f"rails is {schedule.rails}, but chip {chip.name!r} has {chip.rails} rails "
            f"(solve with --rails {chip.rails} or fewer)"
        )
    if len(used) > chip.rails:
        raise CompileError(
            f"the schedule uses {len(used)} voltages ({', '.join(f'{v:g}' for v in sorted(used))} "
            f"V) but chip {chip.name!r} has {chip.rails} rails"
        )
    check_period(schedule.period_s, chip)
    busy_s = sum(layer.time_s for layer in schedule.layers)
    if busy_s > schedule.period_s:
        raise CompileError(
            f"the layers take {busy_s * 1e3:.6g} ms, longer than the period "
            f"{schedule.period_s * 1e3:.6g} ms: every frame would overrun"
        )


def check_period(period_s: float, chip: Chip) -> None:
    """Refuse a period the PMU's frame timer cannot count (at least one reference cycle)."""
    cycles = period_s * chip.reference_mhz * 1e6
    widest = (1 << payload_fields(Opcode.SET_PERIOD)["cycles"]) - 1
    if not 0.5 <= cycles < widest + 0.5:
        f_ref = chip.reference_mhz * 1e6
        raise CompileError(
            f"period_s {period_s:g} s is {cycles:.3g} reference cycles; the PMU's period "
            f"timer takes 1 to {widest:,} ({1 / f_ref:.3g} s to {widest / f_ref:.3g} s, "
            f"{f_ref / widest:.3g} to {f_ref:.3g} FPS)"
        )


def launch_cycles(
    chip: Chip, descriptors: Sequence[OpWork]
) -> Callable[[int, int, tuple[int, int, int]], int]:
    """``launch_cycles`` for :func:`pmu.timing.predict`: the launched ops' reference cycles.

    ``descriptors``: the work of each layer-program descriptor, in descriptor order (the ops
    that are not concatenations).
    """

    def cycles(first: int, count: int, incs: tuple[int, int, int]) -> int:
        increments = [np.array(x) for x in incs]
        return sum(int(w.ref_cycles(chip, *increments)) for w in descriptors[first : first + count])

    return cycles


def descriptor_works(table: CostTable) -> list[OpWork]:
    """The work of each layer-program descriptor of ``table``'s network (ALIAS ops have none)."""
    return [w for w in table.works if w.mode is not Mode.ALIAS]


def verify_timing(
    program: Program,
    table: CostTable,
    hardware_counts: Mapping[BankKind, int] | None = None,
) -> Outcome:
    """Replay ``program`` on the exact PMU model; refuse it if the PMU would stop or a frame
    overrun its period or a domain run above its voltage's frequency.

    Replays at most two frames (the later frames repeat the second). Returns the outcome; raises
    :class:`CompileError` naming the layer that breaks the deadline or the clock limit.
    """
    words = list(program.words)
    loop = [a for a, w in enumerate(words) if decode(w).opcode is Opcode.LOOP]
    if loop and decode(words[loop[0]])["count"] > 1:
        instr = decode(words[loop[0]])
        words[loop[0]] = encode(Opcode.LOOP, target=instr["target"], count=1)
    counts = dict(hardware_counts) if hardware_counts else dict(table.memory.counts)
    config = PmuConfig.from_chip(table.chip, counts)
    descriptors = descriptor_works(table)
    outcome = predict(
        words, config, launch_cycles(table.chip, descriptors), program_ops=len(descriptors)
    )
    launched = program.launch_layers
    if not launched:
        raise ValueError("verify_timing replays programs from compile_schedule (with layers)")
    if outcome.error is not ErrorCode.NONE:
        pc = outcome.error_pc if outcome.error_pc is not None else 0
        raise CompileError(
            f"the PMU would stop with {outcome.error.name} at command {pc:04x} "
            f"({program.comments[pc] if pc < len(program.comments) else 'beyond the program'})"
        )

    def layer_at(cycle: int) -> str:
        for k, launch in enumerate(outcome.launches):
            if cycle <= launch.done_cycle:
                return launched[k % len(launched)]
        return "the frame's end"

    if outcome.overclock_count:
        first = outcome.overclock_first or 0
        raise CompileError(
            f"a domain would run above the frequency its voltage allows in {layer_at(first)} "
            f"(cycle {first:,}; {outcome.overclock_count:,} cycles in all)"
        )
    if outcome.overruns:
        # SET_PERIOD is the last command before the frame; at cycle t it sets deadline t + period.
        set_period = program.frame_start - 1
        period = decode(program.words[set_period])["cycles"]
        start = next(c for pc, c in outcome.command_cycles if pc == set_period)
        late = next(
            (k, launch)
            for k, launch in enumerate(outcome.launches)
            if launch.done_cycle > start + period * (k // len(launched) + 1)
        )
        k, launch = late
        raise CompileError(
            f"frame {k // len(launched)} overruns its period of {period:,} reference cycles: "
            f"layer {launched[k % len(launched)]} ends at cycle "
            f"{launch.done_cycle - start - period * (k // len(launched)):,} of the frame "
            "(the schedule's times do not leave room for the PMU's own cycles; solve for a "
            "slightly higher rate)"
        )
    return outcome


def _level(chip: Chip, voltage_v: float) -> int:
    for i, v in enumerate(chip.levels_v):
        if abs(v - voltage_v) < 1e-6:
            return i
    raise CompileError(
        f"voltage {voltage_v:g} V of the schedule is not on chip {chip.name!r}'s grid "
        f"({', '.join(f'{v:g}' for v in chip.levels_v)} V)"
    )


def state_program(chip: Chip, state_v: tuple[float, ...], descriptors: int) -> Program:
    """A program that runs the whole layer program once in one power state (no gating).

    Rails for the state's distinct voltages, WAIT_RAILS, every domain connected and clocked,
    then LAUNCHes of at most 255 descriptors each, HALT 0. The accelerator-only runs
    (``cosim.accel_run.run_network``) use it.
    """
    rails = tuple(sorted({round(float(v), 6) for v in state_v}))
    if len(rails) > chip.rails:
        raise CompileError(f"{len(rails)} distinct voltages need more than {chip.rails} rails")
    emit = _Emitter(lambda mask, extra: mask)
    for r, v in enumerate(rails):
        emit(Opcode.SET_RAIL, f"rail {r} = {v:.2f} V", rail=r, level=_level(chip, v))
    emit(Opcode.WAIT_RAILS)
    for d, v in zip(DOMAINS, state_v, strict=True):
        v = round(float(v), 6)
        emit(Opcode.CONNECT, f"{d.value} at {v:.2f} V", domain=_DOMAIN_CODE[d], rail=rails.index(v))
        inc = int(chip.divider_increment(d, v))
        emit(Opcode.SET_FREQ, f"{d.value} clock", domain=_DOMAIN_CODE[d], increment=inc)
    frame_start = len(emit.words)
    for first in range(0, descriptors, 255):
        count = min(255, descriptors - first)
        emit(Opcode.LAUNCH, f"ops {first}..{first + count - 1}", first=first, count=count, lead=0)
    emit(Opcode.HALT, "end", code=0)
    return Program(tuple(emit.words), tuple(emit.comments), frame_start, rails)
