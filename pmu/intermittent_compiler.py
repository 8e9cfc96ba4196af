"""Compiler back-end for intermittent schedules: power cycles with checkpoints -> a PMU program.

Program shape (docs/intermittent.md, "On the RTL"):

    boot       SET_RAIL for every rail, WAIT_RAILS, GATE every bank (all are on after reset),
               RESUME: jump to the power cycle after the newest committed checkpoint, or go on
    cycle 0    for each layer: switch the domains that change (from powered down before the
               cycle's first layer), gate banks no longer needed, wake the banks it needs and
               wait out their wake-up latency, LAUNCH its ops;
               then SAVE the live tensors of the boundary, COMMIT (resume: cycle 1),
               HALT_POWER_OFF
    cycle k    connect and clock the domains for the first layer (the scratchpad banks' supply
               is the feeder domain's), WAKE the banks the checkpoint fills, WAIT, RESTORE the
               checkpoint, WAKE the first layer's other banks, WAIT, then the layers and the
               checkpoint as in cycle 0 (GATE every bank but the checkpoint's, SAVE, COMMIT)
    last cycle ... the output committed (if the chip file says so), HALT 0
    end        HALT 0 (where a power-up after the output's commit resumes)

The checkpoint's tensors and their scratchpad ranges come from ``scheduler.checkpoint``; each
range is one SAVE (and one RESTORE), the first of a checkpoint with ``first`` set.
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from voltflow.pmu.compiler import (
    CompileError,
    Program,
    _bank_expander,
    _Emitter,
    _level,
    emit_state,
)
from voltflow.pmu.config import COMMAND_WORDS, ns_to_cycles
from voltflow.pmu.isa import HALT_POWER_OFF, Opcode, decode, encode
from voltflow.scheduler.checkpoint import Checkpoint, plan_checkpoints
from voltflow.scheduler.chip import BankKind
from voltflow.scheduler.cost import CostTable, schedule_layers
from voltflow.scheduler.dataflow import Mode

__all__ = ["IntermittentProgram", "PowerCycleCode", "compile_intermittent"]


@dataclass(frozen=True, slots=True)
class PowerCycleCode:
    """One power cycle of the program: schedule layers ``first .. last - 1``, its first command
    (where RESUME jumps to after the checkpoint at boundary ``first``), and the boundary its
    checkpoint commits (``last``; None for the last cycle without an output commit)."""

    first: int
    last: int
    start: int
    commits: int | None


@dataclass(frozen=True, slots=True)
class IntermittentProgram:
    """A compiled intermittent program and where its power cycles are."""

    program: Program
    cycles: tuple[PowerCycleCode, ...]
    checkpoints: tuple[Checkpoint, ...]  # boundary k at index k - 1


def compile_intermittent(
    table: CostTable,
    states: Sequence[int],
    checkpoint_after: Sequence[bool],
    hardware_counts: Mapping[BankKind, int] | None = None,
) -> IntermittentProgram:
    """Compile an intermittent schedule: ``states`` (one index into ``table``'s power states
    per schedule layer) and ``checkpoint_after`` (for layers 0..N-2: the power cycle ends with a
    checkpoint after it), as ``scheduler.intermittent_dp`` gives them.

    ``hardware_counts``: the PMU's banks per kind, as for ``compile_schedule``.
    """
    chip = table.chip
    spec = chip.intermittent
    if spec is None:
        raise CompileError(f"chip {chip.name!r} has no intermittent section")
    n = len(table.layers)
    if len(states) != n or len(checkpoint_after) != n - 1:
        raise CompileError(
            f"an intermittent schedule of {n} layers has {n} states and {n - 1} checkpoint "
            f"flags, not {len(states)} and {len(checkpoint_after)}"
        )
    groups = schedule_layers(table.network)
    voltages = [tuple(round(float(v), 6) for v in table.voltages_v[s]) for s in states]
    rails = tuple(sorted({v for state in voltages for v in state}))
    if len(rails) > chip.rails:
        raise CompileError(f"{len(rails)} distinct voltages need more than {chip.rails} rails")
    rail_of = {v: i for i, v in enumerate(rails)}
    checkpoints = plan_checkpoints(table, spec)
    descriptor = np.cumsum([0] + [w.mode is not Mode.ALIAS for w in table.works])
    wake_cycles = max(
        ns_to_cycles(chip.bank(k).wake_latency_ns, chip.reference_mhz)
        for k, _ in table.memory.counts
    )
    on = [layer.banks_on for layer in table.layers]
    bounds = [0, *(k + 1 for k, cut in enumerate(checkpoint_after) if cut), n]

    emit = _Emitter(_bank_expander(table.memory, hardware_counts))
    for v, r in rail_of.items():
        emit(Opcode.SET_RAIL, f"boot: rail {r} = {v:.2f} V", rail=r, level=_level(chip, v))
    emit(Opcode.WAIT_RAILS, "boot")
    emit.banks(Opcode.GATE, np.ones_like(on[0]), "boot: every bank off until needed", True)
    emit(Opcode.RESUME, "boot: resume after the newest committed checkpoint")

    def copies(opcode: Opcode, checkpoint: Checkpoint, why: str) -> None:
        for i, (base, words) in enumerate(checkpoint.spans):
            emit(opcode, why, first=int(i == 0), base=base, words=words)

    cycles: list[PowerCycleCode] = []
    commits: list[tuple[int, int]] = []  # (command index of a COMMIT, the cycle it resumes)
    launch_layers: list[str] = []
    for c, (a, b) in enumerate(itertools.pairwise(bounds)):
        start = len(emit.words)
        held = np.zeros_like(on[a])
        if a > 0:
            held = table.memory.banks_holding(checkpoints[a - 1].spans, chip)
        # The domains first: the scratchpad banks take their supply from the feeder domain, so
        # they can be woken and restored into only once it is connected. Only the banks the
        # checkpoint fills are on while it is read back; the first layer's others wake after.
        emit_state(emit, chip, rail_of, None, voltages[a], f"cycle {c}, layer {a}")
        if a > 0:
            emit.banks(Opcode.WAKE, held, f"cycle {c}: banks of checkpoint {a}")
            emit(Opcode.WAIT, f"bank wake-up latency {wake_cycles} cycles", cycles=wake_cycles)
            copies(Opcode.RESTORE, checkpoints[a - 1], f"cycle {c}: restore boundary {a}")
        rest = on[a] & ~held
        emit.banks(Opcode.WAKE, rest, f"cycle {c}: banks of layer {a}")
        if rest.any():
            emit(Opcode.WAIT, f"bank wake-up latency {wake_cycles} cycles", cycles=wake_cycles)
        needed = on[a] | held
        before = needed
        for i in range(a, b):
            name = table.layers[i].name
            if i > a:
                emit_state(emit, chip, rail_of, voltages[i - 1], voltages[i], f"layer {i} {name}")
            woken = on[i] & ~before
            emit.banks(Opcode.GATE, before & ~on[i], f"layer {i}: contents no longer needed")
            emit.banks(Opcode.WAKE, woken, f"layer {i}: needed now")
            if woken.any():
                emit(Opcode.WAIT, f"bank wake-up latency {wake_cycles} cycles", cycles=wake_cycles)
            before = on[i]
            group = groups[i]
            first = int(descriptor[group[0]])
            count = int(descriptor[group[-1] + 1]) - first
            if count > 255:
                raise CompileError(f"layer {name} has {count} ops; LAUNCH runs at most 255")
            if count:
                emit(Opcode.LAUNCH, f"layer {i} {name}", first=first, count=count, lead=0)
                launch_layers.append(name)
        checkpoint = checkpoints[b - 1]
        commit: int | None = b
        if b < n or checkpoint.tensors:
            keep = table.memory.banks_holding(checkpoint.spans, chip)
            emit.banks(Opcode.GATE, before & ~keep, f"cycle {c}: only the checkpoint's banks on")
            copies(Opcode.SAVE, checkpoint, f"cycle {c}: checkpoint boundary {b}")
            commits.append((len(emit.words), c + 1))
            emit(Opcode.COMMIT, f"cycle {c}: commit boundary {b}", resume=0, boundary=b)
        else:
            commit = None
        if b < n:
            emit(Opcode.HALT, f"cycle {c}: power off until recharged", code=HALT_POWER_OFF)
        else:
            emit(Opcode.HALT, "the inference is done", code=0)
        cycles.append(PowerCycleCode(a, b, start, commit))
    end = len(emit.words)
    emit(Opcode.HALT, "end: the output is committed", code=0)
    for index, resume_cycle in commits:
        target = cycles[resume_cycle].start if resume_cycle < len(cycles) else end
        boundary = decode(emit.words[index])["boundary"]
        emit.words[index] = encode(Opcode.COMMIT, resume=target, boundary=boundary)
    if len(emit.words) > COMMAND_WORDS:
        raise CompileError(
            f"the program has {len(emit.words)} commands; the PMU's command memory holds "
            f"{COMMAND_WORDS} (fewer power cycles or fewer state changes)"
        )
    program = Program(
        tuple(emit.words), tuple(emit.comments), cycles[0].start, rails, tuple(launch_layers)
    )
    return IntermittentProgram(program, tuple(cycles), checkpoints)
