"""The buses of the PMU hardware, with their widths from the ISA and the PMU configuration.

The buses shared with the accelerator are the signatures of :mod:`voltflow.hw.signatures`; this
module fixes their ISA widths (:class:`LaunchPort`, :class:`CommandMemory`) and declares the
PMU's own buses: run limits, status, bank commands, voltage codes and counter bundles.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from voltflow.hw.signatures import ClockIncrements, Counters, Launch, MemoryRead, MemoryWrite
from voltflow.hw.widths import ADDR_BITS, CLOCK_DOMAINS, GROUP_BANKS, TIME_BITS
from voltflow.pmu.config import (
    BUDGET_BITS,
    COMMAND_ADDR_BITS,
    COMMAND_WORDS,
    PROGRAM_OPS,
    TRANSITION_KINDS,
    PmuConfig,
)
from voltflow.pmu.isa import WORD_BITS, ErrorCode, Opcode, payload_fields
from voltflow.scheduler.chip import BankKind

__all__ = [
    "STORE_ADDR_BITS",
    "STORE_EVENTS",
    "VIOLATION_COUNTERS",
    "VOLTAGE_CODE_BITS",
    "BankCommand",
    "CommandMemory",
    "LaunchPort",
    "PmuCounters",
    "RunLimits",
    "Status",
    "SupplySwitches",
    "VoltageCodes",
    "power_counter_names",
    "sequencer_buses",
]

#: A checkpoint-store word address: two markers and two slots of up to 2^ADDR_BITS words.
STORE_ADDR_BITS = ADDR_BITS + 2
#: The checkpoint store's event counters: store words written and read (markers included), and
#: the scratchpad words the copies read (SAVE) and write (RESTORE).
STORE_EVENTS = ("store_writes", "store_reads", "copy_reads", "copy_writes")
#: A voltage code: 0 = unpowered, k + 1 = grid level k (at most 16 levels).
VOLTAGE_CODE_BITS = 5
#: The violation monitors' counters (``*_first``: the cycle of the first one).
VIOLATION_COUNTERS = ("overclock_count", "overclock_first", "access_count", "access_first")


def power_counter_names(config: PmuConfig) -> tuple[str, ...]:
    """The power counters' outputs, in output order: time per domain per level, transitions,
    sleep / idle / frames / overruns, bank-cycles per kind per level, wakes per kind."""
    levels = range(len(config.levels_v))
    names = [f"cycles_{d}_{k}" for d in CLOCK_DOMAINS for k in levels]
    names += [*TRANSITION_KINDS, "asleep_cycles", "idle_cycles", "frames", "overruns"]
    names += [f"bank_cycles_{kind.value}_{k}" for kind in BankKind for k in levels]
    names += [f"wakes_{kind.value}" for kind in BankKind]
    names += STORE_EVENTS
    return tuple(names)


class CommandMemory(MemoryRead):
    """The command memory's read port (one ISA word per command address)."""

    def __init__(self) -> None:
        super().__init__(addr_bits=COMMAND_ADDR_BITS, data_bits=WORD_BITS)


class LaunchPort(Launch):
    """A :class:`~voltflow.hw.signatures.Launch` with the widths of the ISA's LAUNCH fields."""

    def __init__(self) -> None:
        fields = payload_fields(Opcode.LAUNCH)
        super().__init__(first_bits=fields["first"], count_bits=fields["count"])


class RunLimits(wiring.Signature):
    """What the host loads with the programs: words of the command program, descriptors of the
    layer program, and the command budget (0: unlimited; then WATCHDOG)."""

    def __init__(self) -> None:
        super().__init__(
            {
                "cmd_words": Out(COMMAND_WORDS.bit_length()),
                "prog_ops": Out(PROGRAM_OPS.bit_length()),
                "budget": Out(BUDGET_BITS),
            }
        )


class Status(wiring.Signature):
    """The PMU's status, from the PMU.

    Members
    -------
    now : Out(64)
        The present reference cycle.
    halted : Out(1), halt_code : Out(8), error : Out(ErrorCode), error_pc : Out(12),
    end_cycle : Out(64)
        The PMU has stopped (HALT or error) in cycle ``end_cycle``.
    launch_exec : Out(64), launch_done : Out(1)
        The cycle of the last LAUNCH; its ops are done (one-cycle pulse).
    period_set : Out(1)
        SET_PERIOD executes (one-cycle pulse): a period starts in this cycle.
    tick_end : Out(64)
        ``now`` + the present tick's length: the tick covers cycles ``now .. tick_end - 1`` and its
        effects (a checkpoint-store write among them) land at its end, so a power failure in a
        cycle below ``tick_end`` loses them.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "now": Out(TIME_BITS),
                "halted": Out(1),
                "halt_code": Out(payload_fields(Opcode.HALT)["code"]),
                "error": Out(ErrorCode),
                "error_pc": Out(COMMAND_ADDR_BITS),
                "end_cycle": Out(TIME_BITS),
                "launch_exec": Out(TIME_BITS),
                "launch_done": Out(1),
                "period_set": Out(1),
                "tick_end": Out(TIME_BITS),
            }
        )


class BankCommand(wiring.Signature):
    """A GATE / WAKE of ``mask`` in ``group`` (one-cycle pulses), or SLEEP's ``gate_all``, from
    the sequencer (validated there)."""

    def __init__(self) -> None:
        fields = payload_fields(Opcode.GATE)
        assert fields["mask"] == GROUP_BANKS
        super().__init__(
            {
                "gate": Out(1),
                "wake": Out(1),
                "group": Out(fields["group"]),
                "mask": Out(GROUP_BANKS),
                "gate_all": Out(1),
            }
        )


class VoltageCodes(wiring.Signature):
    """Per clock domain a voltage code (0: unpowered, k + 1: grid level k)."""

    def __init__(self) -> None:
        super().__init__({d: Out(VOLTAGE_CODE_BITS) for d in CLOCK_DOMAINS})


class SupplySwitches(wiring.Signature):
    """The enables of the supply switches that connect each DVFS domain to a rail, from the PMU
    (CONNECT closes one, SLEEP opens every one; at reset all are open).

    Members
    -------
    <domain> : Out(Signature)
        Per clock domain (``sys``, ``rram``, ``feeder``): ``select`` : Out(rails), one-hot, bit
        r closes the switch from rail r; ``on`` : Out(1), the domain is connected to a rail
        (any ``select`` bit), which releases the isolation of its outputs.
    """

    def __init__(self, *, rails: int) -> None:
        if not isinstance(rails, int) or isinstance(rails, bool) or rails < 1:
            raise TypeError(f"rails must be a positive integer, not {rails!r}")
        switches = wiring.Signature({"select": Out(rails), "on": Out(1)})
        super().__init__({d: Out(switches) for d in CLOCK_DOMAINS})


class PmuCounters(wiring.Signature):
    """Every counter of the PMU, from the PMU: ``power`` (:func:`power_counter_names`) and
    ``violations`` (:data:`VIOLATION_COUNTERS`)."""

    def __init__(self, config: PmuConfig) -> None:
        super().__init__(
            {
                "power": Out(Counters(power_counter_names(config), bits=TIME_BITS)),
                "violations": Out(Counters(VIOLATION_COUNTERS, bits=TIME_BITS)),
            }
        )


def sequencer_buses(config: PmuConfig) -> dict[str, wiring.Member]:
    """The PMU sequencer's buses that the power-management unit passes on as they are: command
    memory, run limits, launches, clock increments, supply switches, status, the checkpoint
    store's ports and the scratchpad ports of its copies (SAVE reads, RESTORE writes)."""
    return {
        "store_read": Out(MemoryRead(addr_bits=STORE_ADDR_BITS, data_bits=WORD_BITS)),
        "store_write": Out(MemoryWrite(addr_bits=STORE_ADDR_BITS, data_bits=WORD_BITS)),
        "copy_read": Out(MemoryRead(addr_bits=ADDR_BITS, data_bits=WORD_BITS, strobe=True)),
        "copy_write": Out(MemoryWrite(addr_bits=ADDR_BITS, data_bits=WORD_BITS)),
        "cmd": Out(CommandMemory()),
        "limits": In(RunLimits()),
        "launch": Out(LaunchPort()),
        "clocks": Out(ClockIncrements(phase_bits=config.phase_bits)),
        "supply": Out(SupplySwitches(rails=config.rails)),
        "status": Out(Status()),
    }
