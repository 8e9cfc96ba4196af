"""Disassembler: a ROM back to commands, and to the power state of every launched layer."""

from dataclasses import dataclass

from voltflow.pmu.isa import DomainCode, IsaError, Opcode, decode
from voltflow.scheduler.chip import DOMAINS, Chip

__all__ = ["LaunchState", "disassemble", "launch_states"]


@dataclass(frozen=True, slots=True)
class LaunchState:
    """What the PMU had set up when it launched a layer (first frame).

    A voltage or increment the program never set up (a LAUNCH before any CONNECT, a CONNECT to a
    rail never programmed, a level beyond the chip's grid) is None, and ``problems`` says why:
    the RTL would stop such a program or run the layer in an undefined state.
    """

    address: int
    first_op: int
    op_count: int
    voltage_v: tuple[float | None, ...]  # per domain, DOMAINS order
    increment: tuple[int | None, ...]  # per domain clock divider increment
    problems: tuple[str, ...] = ()


def disassemble(words: list[int]) -> str:
    """One line per word: address, word, command (or the reason it is illegal)."""
    lines = []
    for addr, word in enumerate(words):
        try:
            text = str(decode(word))
        except IsaError as exc:
            text = f"<illegal: {exc}>"
        lines.append(f"{addr:04x}  {word:016x}  {text}\n")
    return "".join(lines)


def launch_states(words: list[int], chip: Chip) -> list[LaunchState]:
    """Follow the program through its first frame and report the state at each LAUNCH.

    Illegal words are skipped (:func:`disassemble` shows them); nothing here raises on a hostile
    program.
    """
    rails: dict[int, float | None] = {}
    rail_problem: dict[int, str] = {}
    supply: dict[int, int] = {}
    increment: dict[int, int] = {}
    codes = [DomainCode[d.name].value for d in DOMAINS]
    out = []
    for addr, word in enumerate(words):
        try:
            instr = decode(word)
        except IsaError:
            continue
        op = instr.opcode
        if op is Opcode.SET_RAIL:
            level = instr["level"]
            if level < len(chip.levels_v):
                rails[instr["rail"]] = chip.levels_v[level]
                rail_problem.pop(instr["rail"], None)
            else:
                rails[instr["rail"]] = None
                rail_problem[instr["rail"]] = (
                    f"rail {instr['rail']} set to level {level} at {addr:04x}, beyond the chip's "
                    f"{len(chip.levels_v)} levels"
                )
        elif op is Opcode.CONNECT:
            supply[instr["domain"]] = instr["rail"]
        elif op is Opcode.SET_FREQ:
            increment[instr["domain"]] = instr["increment"]
        elif op is Opcode.LAUNCH:
            volts: list[float | None] = []
            problems: list[str] = []
            for d, c in zip(DOMAINS, codes, strict=True):
                rail = supply.get(c)
                if rail is None:
                    problems.append(f"{d.value} is connected to no rail")
                elif rail not in rails:
                    problems.append(f"{d.value} is connected to rail {rail}, never programmed")
                elif rail in rail_problem:
                    problems.append(f"{d.value}: {rail_problem[rail]}")
                volts.append(rails.get(rail) if rail is not None else None)
                if c not in increment:
                    problems.append(f"{d.value} has no clock set (no SET_FREQ)")
            out.append(
                LaunchState(
                    addr,
                    instr["first"],
                    instr["count"],
                    tuple(volts),
                    tuple(increment.get(c) for c in codes),
                    tuple(problems),
                )
            )
        elif op in (Opcode.LOOP, Opcode.HALT):
            break
    return out
