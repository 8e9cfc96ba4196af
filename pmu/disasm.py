"""Disassembler: a ROM back to commands, and to the power state of every launched layer."""

from dataclasses import dataclass

from voltflow.pmu.isa import DomainCode, IsaError, Opcode, decode
from voltflow.scheduler.chip import DOMAINS, Chip

__all__ = ["LaunchState", "disassemble", "launch_states"]


@dataclass(frozen=True, slots=True)
class LaunchState:
    """What the PMU had set up when it launched a layer (first frame)."""

    address: int
    first_op: int
    op_count: int
    voltage_v: tuple[float, ...]  # per domain, DOMAINS order
    increment: tuple[int, ...]  # per domain clock divider increment


def disassemble(words: list[int]) -> str:
    """One line per word: address, word, command (or the reason it is illegal)."""
    lines = []
    for addr, word in enumerate(words):
        try:
            text = str(decode(word))
        except IsaError as exc:
            text = f"<illegal: {exc}>"
        lines.append(f"{addr:04x}  {word:016x}  {text}")
    return "\n".join(lines) + "\n"


def launch_states(words: list[int], chip: Chip) -> list[LaunchState]:
    """Follow the program through its first frame and report the state at each LAUNCH."""
    rails: dict[int, float] = {}
    supply: dict[int, int] = {}
    increment: dict[int, int] = {}
    out = []
    for addr, word in enumerate(words):
        instr = decode(word)
        op = instr.opcode
        if op is Opcode.SET_RAIL:
            rails[instr["rail"]] = chip.levels_v[instr["level"]]
        elif op is Opcode.CONNECT:
            supply[instr["domain"]] = instr["rail"]
        elif op is Opcode.SET_FREQ:
            increment[instr["domain"]] = instr["increment"]
        elif op is Opcode.LAUNCH:
            codes = [DomainCode[d.name].value for d in DOMAINS]
            out.append(
                LaunchState(
                    addr,
                    instr["first"],
                    instr["count"],
                    tuple(rails[supply[c]] for c in codes),
                    tuple(increment[c] for c in codes),
                )
            )
        elif op in (Opcode.LOOP, Opcode.HALT):
            break
    return out
