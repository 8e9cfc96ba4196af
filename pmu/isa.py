"""The PMU command ISA: the single source of truth for the command word.

One 64-bit word per command: a 5-bit opcode and a 59-bit payload whose meaning depends on the
opcode (a union of small structs). The layout is an Amaranth ``data.Struct``; Python encodes and
decodes through that struct only (:func:`encode`, :func:`decode`), the RTL decodes through the same
struct, and the disassembler formats what :func:`decode` returns. docs/pmu-isa.md is generated from
this module (:func:`isa_markdown`).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from amaranth import unsigned
from amaranth.lib import data

if TYPE_CHECKING:
    # Amaranth ships no type information. Its shaped Enum is a standard enum.Enum that also takes
    # the `shape=` class keyword, so mypy checks the enums below as standard enums.
    import enum
else:
    from amaranth.lib import enum

__all__ = [
    "HALT_POWER_OFF",
    "LOOKAHEAD_COMMANDS",
    "MEANING",
    "OPCODE_BITS",
    "WORD_BITS",
    "Command",
    "DomainCode",
    "ErrorCode",
    "Instr",
    "IsaError",
    "Opcode",
    "Payload",
    "decode",
    "encode",
    "isa_markdown",
    "payload_fields",
]

WORD_BITS = 64
#: HALT's code for "power me off": the end of a power cycle of an intermittent program. The
#: supply (the simulation wrapper) cuts the power; at the next power-up the PMU starts again
#: from its ROM (and RESUMEs from the last checkpoint). Any other non-zero code is an error.
HALT_POWER_OFF = 0xFE
#: Bits of the opcode (bits 0 .. OPCODE_BITS - 1 of a word); the payload follows.
OPCODE_BITS = 5


class IsaError(ValueError):
    """A command that cannot be encoded, or a word that is not a valid command.

    ``error`` is the :class:`ErrorCode` the PMU stops with on such a word (decode errors only).
    """

    def __init__(self, message: str, error: "ErrorCode | None" = None) -> None:
        super().__init__(message)
        self.error = error


class Opcode(enum.Enum, shape=OPCODE_BITS):
    """What a command does (meanings in ``MEANING``). Values 18..31 are illegal."""

    HALT = 0
    SET_PERIOD = 1
    SET_RAIL = 2
    WAIT_RAILS = 3
    CONNECT = 4
    SET_FREQ = 5
    GATE = 6
    WAKE = 7
    LAUNCH = 8
    WAIT = 9
    IDLE = 10
    SLEEP = 11
    LOOP = 12
    SAVE = 13
    RESTORE = 14
    COMMIT = 15
    RESUME = 16
    SYNC = 17


#: What each opcode does; the PMU RTL implements exactly this.
MEANING: dict[Opcode, str] = {
    Opcode.HALT: (
        "stop; code 0 is the normal end of a program, 254 (`HALT_POWER_OFF`) the end of a power "
        "cycle (the supply powers the chip off), any other value an error code"
    ),
    Opcode.SET_PERIOD: "program the frame period timer (reference cycles) and restart it",
    Opcode.SET_RAIL: (
        "program rail `rail` to voltage level `level` (index into the chip's grid); "
        "it settles after the rail settling time"
    ),
    Opcode.WAIT_RAILS: "wait until every rail has settled",
    Opcode.CONNECT: (
        "connect `domain`'s supply to rail `rail`; the domain's voltage settles after the "
        "transition latency, during which the PMU waits"
    ),
    Opcode.SET_FREQ: (
        "set `domain`'s clock divider increment (frequency = f_ref * increment / 2^phase_bits)"
    ),
    Opcode.GATE: "power off the banks `32 * group + i` for every set bit i of `mask`",
    Opcode.WAKE: (
        "power on the banks `32 * group + i` for every set bit i of `mask` "
        "(usable after the wake-up latency)"
    ),
    Opcode.LAUNCH: (
        "run `count` ops of the layer program from op `first`; `lead` 0: continue when they are "
        "done; `lead` > 0 (look-ahead): continue `lead` reference cycles after the LAUNCH (or when "
        "the ops are done, if that is earlier) while they run, up to a SYNC; only SET_RAIL, "
        "WAIT_RAILS, CONNECT, GATE, WAKE, WAIT and SYNC may execute while they run"
    ),
    Opcode.WAIT: "wait `cycles` reference cycles",
    Opcode.IDLE: "stay powered with the domain clocks stopped until the period timer fires",
    Opcode.SLEEP: "power down the domains and gate every bank until the period timer fires",
    Opcode.LOOP: (
        "jump to command `target` `count` more times (0: forever); one loop register, so a "
        "different LOOP met while one is counting is an error (no nesting)"
    ),
    Opcode.SAVE: (
        "copy `words` scratchpad words from `base` to the checkpoint store's free slot (the one "
        "the last COMMIT or RESUME did not make current), after those of the previous SAVEs; "
        "`first` starts a checkpoint: it first writes the free slot's marker invalid"
    ),
    Opcode.RESTORE: (
        "copy `words` words of the current slot's checkpoint to the scratchpad from `base`, "
        "after those of the previous RESTOREs; `first` starts from the slot's first word"
    ),
    Opcode.COMMIT: (
        "write the free slot's marker (the next sequence number, `resume`, `boundary`) in one "
        "store write: the checkpoint is committed and its slot becomes the current one"
    ),
    Opcode.RESUME: (
        "read both slots' markers; if one is valid, make the newer one current and jump to "
        "its `resume` command, else go on with the next command (nothing committed yet)"
    ),
    Opcode.SYNC: (
        "wait until the ops of a look-ahead LAUNCH are done (go on at once if none are running)"
    ),
}


#: The commands that may execute while a look-ahead LAUNCH's ops run (the look-ahead queue):
#: they change supplies and banks, not the clocks the ops run at nor the scratchpad.
LOOKAHEAD_COMMANDS = frozenset(
    {
        Opcode.SET_RAIL,
        Opcode.WAIT_RAILS,
        Opcode.CONNECT,
        Opcode.GATE,
        Opcode.WAKE,
        Opcode.WAIT,
        Opcode.SYNC,
    }
)


class ErrorCode(enum.Enum, shape=8):
    """Why the PMU stopped on its own (its ``error`` output; 0: it did not). The PMU checks each
    command when it executes it and never hangs: every command finishes in a bounded number of
    PMU clock ticks (docs/pmu.md)."""

    NONE = 0
    ILLEGAL_OPCODE = 1  # opcode 18..31
    ILLEGAL_DOMAIN = 2  # domain code 3
    UNUSED_BITS = 3  # non-zero bits above the opcode's payload
    RAIL_RANGE = 4  # rail index >= the chip's rails
    LEVEL_RANGE = 5  # voltage level >= the chip's grid
    FREQ_RANGE = 6  # increment >= 2^phase_bits (a divider cannot fire twice per cycle)
    BANK_RANGE = 7  # GATE/WAKE mask bit beyond the chip's banks
    LAUNCH_RANGE = 8  # LAUNCH of 0 ops or beyond the loaded layer program
    PERIOD = 9  # SET_PERIOD 0, or IDLE/SLEEP before any SET_PERIOD
    LOOP_NESTED = 10  # a LOOP met while another LOOP is counting
    END_OF_PROGRAM = 11  # fetch beyond the loaded command words
    WATCHDOG = 12  # the command budget of the run (simulation plusarg) is used up
    CLOCK_STOPPED = 13  # LAUNCH while a domain's increment is 0 (the ops could never finish)
    STORE_RANGE = 14  # SAVE/RESTORE beyond the scratchpad or beyond a checkpoint-store slot
    NO_STORE = 15  # a checkpoint command on a build without the checkpoint store
    BUSY = 16  # a command other than the look-ahead ones while a look-ahead LAUNCH's ops run


class DomainCode(enum.Enum, shape=2):
    """A DVFS domain as encoded in commands (value 3 is illegal)."""

    SYS = 0
    RRAM = 1
    FEEDER = 2


#: The fields of each opcode's payload (name -> unsigned width), in bit order from bit 5.
_PAYLOAD_FIELDS: dict[Opcode, dict[str, int]] = {
    Opcode.HALT: {"code": 8},
    Opcode.SET_PERIOD: {"cycles": 48},
    Opcode.SET_RAIL: {"rail": 3, "level": 4},
    Opcode.WAIT_RAILS: {},
    Opcode.CONNECT: {"domain": 2, "rail": 3},
    Opcode.SET_FREQ: {"domain": 2, "increment": 24},
    Opcode.GATE: {"group": 12, "mask": 32},
    Opcode.WAKE: {"group": 12, "mask": 32},
    Opcode.LAUNCH: {"first": 16, "count": 8, "lead": 24},
    Opcode.WAIT: {"cycles": 48},
    Opcode.IDLE: {},
    Opcode.SLEEP: {},
    Opcode.LOOP: {"target": 12, "count": 16},
    Opcode.SAVE: {"first": 1, "base": 24, "words": 24},
    Opcode.RESTORE: {"first": 1, "base": 24, "words": 24},
    Opcode.COMMIT: {"resume": 12, "boundary": 16},
    Opcode.RESUME: {},
    Opcode.SYNC: {},
}


def payload_fields(opcode: Opcode) -> dict[str, int]:
    """The payload fields of ``opcode`` (name -> width), in bit order from bit OPCODE_BITS."""
    return dict(_PAYLOAD_FIELDS[opcode])


def _struct(opcode: Opcode) -> data.StructLayout:
    members: dict[str, object] = {}
    for name, width in _PAYLOAD_FIELDS[opcode].items():
        members[name] = DomainCode if name == "domain" else unsigned(width)
    return data.StructLayout(members)


Payload = data.UnionLayout(
    {op.name.lower(): _struct(op) for op in Opcode} | {"raw": unsigned(WORD_BITS - OPCODE_BITS)}
)


class Command(data.Struct):
    """A PMU command word: bits 0..4 opcode, bits 5..63 payload."""

    opcode: Opcode
    payload: Payload  # type: ignore[valid-type]  # an Amaranth layout (a shape), not a type


assert Command.as_shape().size == WORD_BITS


@dataclass(frozen=True, slots=True)
class Instr:
    """A decoded command: the opcode and its payload fields (unused fields are 0)."""

    opcode: Opcode
    args: tuple[tuple[str, int], ...] = ()

    def __getitem__(self, name: str) -> int:
        return dict(self.args)[name]

    def __str__(self) -> str:
        parts = []
        for name, value in self.args:
            if name == "domain":
                parts.append(DomainCode(value).name.lower())
            elif name == "mask":
                parts.append(f"mask=0x{value:08x}")
            else:
                parts.append(f"{name}={value}")
        return self.opcode.name + (" " + ", ".join(parts) if parts else "")


def encode(opcode: Opcode, **args: int | DomainCode) -> int:
    """Encode one command through the :class:`Command` layout. Every payload field must be given."""
    expected = _PAYLOAD_FIELDS[opcode]
    if set(args) != set(expected):
        raise IsaError(
            f"{opcode.name} takes fields {', '.join(expected) or 'none'}, "
            f"not {', '.join(args) or 'none'}"
        )
    payload: dict[str, int | DomainCode] = {}
    for name, width in expected.items():
        value = args[name]
        if name == "domain":
            value = DomainCode(value)
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << width:
            raise IsaError(
                f"{opcode.name}.{name} must be an integer in 0..{(1 << width) - 1}, not {value!r}"
            )
        payload[name] = value
    const = Command.const({"opcode": opcode, "payload": {opcode.name.lower(): payload}})
    return int(const.as_bits())


def decode(word: int) -> Instr:
    """Decode one command word through the :class:`Command` layout; illegal words raise IsaError."""
    if not 0 <= word < 1 << WORD_BITS:
        raise IsaError(f"a command word has {WORD_BITS} bits, not {word!r}")
    const = Command.as_shape().from_bits(word)
    code = word & ((1 << OPCODE_BITS) - 1)
    try:
        opcode = Opcode(code)
    except ValueError:
        raise IsaError(
            f"illegal opcode {code} in word 0x{word:016x}", ErrorCode.ILLEGAL_OPCODE
        ) from None
    view = getattr(const.payload, opcode.name.lower())
    args = []
    used = OPCODE_BITS
    for name, width in _PAYLOAD_FIELDS[opcode].items():
        try:
            value = getattr(view, name)
        except ValueError:
            raise IsaError(
                f"illegal {name} code in word 0x{word:016x}", ErrorCode.ILLEGAL_DOMAIN
            ) from None
        number = value.value if isinstance(value, DomainCode) else int(value)
        args.append((name, number))
        used += width
    if word >> used:
        raise IsaError(
            f"word 0x{word:016x}: bits above bit {used - 1} must be 0 for {opcode.name}",
            ErrorCode.UNUSED_BITS,
        )
    return Instr(opcode, tuple(args))


def isa_markdown() -> str:
    """The ISA reference (docs/pmu-isa.md), generated from the layout above."""
    lines = [
        "# PMU command ISA",
        "",
        "Generated from `pmu/isa.py` (`python -m voltflow.pmu.isa > docs/pmu-isa.md`); "
        "do not edit.",
        "",
        f"One {WORD_BITS}-bit word per command: bits 0..{OPCODE_BITS - 1} the opcode, the "
        f"payload from bit {OPCODE_BITS} up",
        "(fields in the order listed, each an unsigned integer). Unused high bits must be 0; a",
        "word with an illegal opcode, domain code or non-zero unused bits stops the PMU with an",
        "error code.",
        "",
        "| opcode | value | payload (bit range) | meaning |",
        "|---|---|---|---|",
    ]
    for op in Opcode:
        bit = OPCODE_BITS
        parts = []
        for name, width in _PAYLOAD_FIELDS[op].items():
            parts.append(f"`{name}` [{bit}:{bit + width - 1}]")
            bit += width
        lines.append(f"| `{op.name}` | {op.value} | {', '.join(parts) or '-'} | {MEANING[op]} |")
    lines += [
        "",
        "Domain codes: " + ", ".join(f"{d.name.lower()} = {d.value}" for d in DomainCode) + ".",
        "",
        "## Error codes",
        "",
        "When a command cannot be executed the PMU stops with `error` set (HALT's own `code` is",
        "reported separately), at the cycle of the offending command:",
        "",
        "| error | value |",
        "|---|---|",
        *(f"| `{e.name}` | {e.value} |" for e in ErrorCode),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(isa_markdown(), end="")
