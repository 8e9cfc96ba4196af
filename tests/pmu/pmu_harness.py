"""The PMU alone in Amaranth's simulator: a stub accelerator, a command memory, many programs
per simulation (a reset between programs), each run compared with ``pmu.timing.predict``."""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import ClockDomain, Elaboratable, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In
from amaranth.sim import Simulator
from voltflow.hw.widths import CLOCK_DOMAINS
from voltflow.pmu.config import PmuConfig
from voltflow.pmu.isa import ErrorCode
from voltflow.pmu.ports import VIOLATION_COUNTERS
from voltflow.pmu.store import DATA_BASE
from voltflow.pmu.unit import COUNTER_PORTS, PowerManagementUnit
from voltflow.scheduler.chip import BankKind, load_chip

__all__ = ["PowerCycles", "RtlOutcome", "run_programs", "run_with_failures", "stub_cycles"]

DEPTH = 64


def store_config() -> PmuConfig:
    """A small PMU with the checkpoint store, its word writes and reads longer than a tick (so
    that failures land inside them): chip_small's, 2 ifmap, 1 ofmap and 4 RRAM banks."""
    small = PmuConfig.from_chip(
        load_chip(Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"),
        {BankKind.IFMAP: 2, BankKind.OFMAP: 1, BankKind.RRAM: 4},
    )
    return dataclasses.replace(small, store=True, store_write_cycles=3, store_read_cycles=2)


def stub_cycles(first: int, count: int, incs: tuple[int, int, int]) -> int:
    """The stub accelerator's running cycles for a LAUNCH (known to the model too)."""
    return (first + count) % 5 + 1


def _counter(pmu: PowerManagementUnit, name: str) -> Signal:
    """The unit's counter output ``name``."""
    bundle = pmu.counters.violations if name in VIOLATION_COUNTERS else pmu.counters.power
    return getattr(bundle, name)


class _StubAccelerator(Elaboratable):
    """IDLE sees start -> runs ``stub_cycles`` cycles -> DONE (done high) until start drops."""

    def __init__(self, pmu: PowerManagementUnit) -> None:
        self.pmu = pmu

    def elaborate(self, platform: object) -> Module:
        m = Module()
        pmu = self.pmu
        left = Signal(8)
        with m.FSM(name="stub"):
            with m.State("IDLE"), m.If(pmu.launch.start):
                m.d.sync += left.eq((pmu.launch.first + pmu.launch.count) % 5 + 1)
                m.next = "RUN"
            with m.State("RUN"):
                m.d.sync += left.eq(left - 1)
                with m.If(left == 1):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += pmu.launch.done.eq(1)
                with m.If(~pmu.launch.start):
                    m.next = "IDLE"
        return m


class _Harness(wiring.Component):
    def __init__(self, config: PmuConfig) -> None:
        self.config = config
        super().__init__({"restart": In(1), "cmd_words": In(13), "budget": In(32)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        # ``restart`` is the chip's reset: the clock domain's own, so that the PMU's gated
        # domains (hw.clock_gating), which follow it, restart with the rest.
        m.domains.sync = ClockDomain()
        m.d.comb += ResetSignal().eq(self.restart)
        pmu = PowerManagementUnit(self.config)
        m.submodules.pmu = pmu
        self.pmu = pmu
        m.submodules.cmd = self.mem = mem = Memory(shape=64, depth=DEPTH, init=[])
        rd = mem.read_port(domain="comb")
        m.d.comb += [
            rd.addr.eq(pmu.cmd.addr),
            pmu.cmd.data.eq(rd.data),
            pmu.limits.cmd_words.eq(self.cmd_words),
            pmu.limits.prog_ops.eq(200),
            pmu.limits.budget.eq(self.budget),
        ]
        m.submodules.stub = _StubAccelerator(pmu)
        # The checkpoint store (non-volatile) and a scratchpad for the PMU's copies. A restart is
        # a power failure: the write of the tick it ends is lost (the bench scrambles the
        # scratchpad afterwards; the store keeps its words).
        cfg = self.config
        m.submodules.store = self.store = store = Memory(
            shape=64, depth=DATA_BASE + 2 * cfg.slot_words, init=[]
        )
        m.submodules.spad = self.spad = spad = Memory(shape=64, depth=cfg.spad_words, init=[])
        store_rd = store.read_port(domain="comb")
        store_wr = store.write_port()
        spad_rd = spad.read_port(domain="comb")
        spad_wr = spad.write_port()
        m.d.comb += [
            store_rd.addr.eq(pmu.store_read.addr),
            pmu.store_read.data.eq(store_rd.data),
            store_wr.addr.eq(pmu.store_write.addr),
            store_wr.data.eq(pmu.store_write.data),
            store_wr.en.eq(pmu.store_write.en & ~self.restart),
            spad_rd.addr.eq(pmu.copy_read.addr),
            pmu.copy_read.data.eq(spad_rd.data),
            spad_wr.addr.eq(pmu.copy_write.addr),
            spad_wr.data.eq(pmu.copy_write.data),
            spad_wr.en.eq(pmu.copy_write.en & ~self.restart),
        ]
        return m


@dataclass
class RtlOutcome:
    """What the RTL reported for one program (fields named as in pmu.timing.Outcome)."""

    ticks: int
    end_cycle: int
    halt_code: int | None
    error: ErrorCode
    error_pc: int | None
    launches: list[tuple[int, int]]  # (exec cycle, done cycle)
    counters: dict[str, int]
    bank_on_cycles: list[int]
    supply: dict[str, tuple[int, int]]  # per domain: the switch enables (select, on) at the end


async def _power_on(ctx, dut: _Harness) -> None:  # type: ignore[no-untyped-def]
    """A reset tick: registers to their initial values. It does not clear the PMU's on-time
    memories (SRAM), which power-on leaves at 0: set here."""
    ctx.set(dut.restart, 1)
    await ctx.tick()
    ctx.set(dut.restart, 0)
    for memory in dut.pmu.switches.on_time_memories:
        for i in range(memory.depth):
            ctx.set(memory.data[i], 0)


def run_programs(
    config: PmuConfig,
    programs: Sequence[Sequence[int]],
    *,
    budget: int,
    max_ticks: int,
    check: Callable[[int, RtlOutcome], None] | None = None,
) -> list[RtlOutcome]:
    """Run each program from reset; stop a program after ``max_ticks`` simulator ticks."""
    dut = _Harness(config)
    results: list[RtlOutcome] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        pmu = dut.pmu
        for k, words in enumerate(programs):
            assert len(words) <= DEPTH
            for i, w in enumerate(words):
                ctx.set(dut.mem.data[i], w)
            ctx.set(dut.cmd_words, len(words))
            ctx.set(dut.budget, budget)
            await _power_on(ctx, dut)
            ticks = 0
            launches = []
            while not ctx.get(pmu.status.halted) and ticks < max_ticks:
                if ctx.get(pmu.status.launch_done):
                    launches.append((ctx.get(pmu.status.launch_exec), ctx.get(pmu.status.now)))
                await ctx.tick()
                ticks += 1
            halted = bool(ctx.get(pmu.status.halted))
            error = ErrorCode(ctx.get(pmu.status.error))
            stopped = halted and error is ErrorCode.NONE
            on = []
            for b in range(config.n_banks):
                ctx.set(pmu.banks.sel, b)
                on.append(ctx.get(pmu.banks.on_cycles))
            outcome = RtlOutcome(
                ticks=ticks,
                end_cycle=ctx.get(pmu.status.end_cycle) if halted else -1,
                halt_code=ctx.get(pmu.status.halt_code) if stopped else None,
                error=error,
                error_pc=ctx.get(pmu.status.error_pc) if error is not ErrorCode.NONE else None,
                launches=launches,
                counters={n: ctx.get(_counter(pmu, n)) for n in COUNTER_PORTS(config)},
                bank_on_cycles=on,
                supply={
                    d: (ctx.get(getattr(pmu.supply, d).select), ctx.get(getattr(pmu.supply, d).on))
                    for d in CLOCK_DOMAINS
                },
            )
            results.append(outcome)
            if check is not None:
                check(k, outcome)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results


#: What a powered-off scratchpad word holds when power returns (as the simulation wrapper does).
SCRAMBLE = 0xA5A5_A5A5_A5A5_A5A5


@dataclass
class PowerCycles:
    """One program run through power failures: per power cycle the cycle it failed at (None for
    the last, which stopped), the store's marker words seen after every failure, and the final
    scratchpad and store contents (the words asked for)."""

    failed_at: list[int | None]
    markers_after_failure: list[tuple[int, int]]
    slot_words_after_failure: list[tuple[list[int], list[int]]]
    outcome: RtlOutcome
    spad: list[int]
    store: list[int]


def run_with_failures(
    config: PmuConfig,
    words: Sequence[int],
    *,
    sensor: dict[int, int],
    runs: Sequence[Sequence[int]],
    watch: int,
    max_ticks: int = 100_000,
) -> list[PowerCycles]:
    """Run ``words`` once per entry of ``runs`` (one simulation; the store starts erased each
    time). In a run, power cycle k fails at its cycle ``failures[k]`` (the PMU's ``now``, which
    restarts at 0 after every boot); failures the program does not live to see are not used. At
    each power-up the input sensor writes ``sensor`` (scratchpad word -> value). A failure at
    cycle f ends the tick that covers f without its effects (a store write included) and
    scrambles the scratchpad's first ``watch`` words (the program must use no others), which are
    also the scratchpad and slot words reported."""
    dut = _Harness(config)
    results: list[PowerCycles] = []

    async def bench(ctx) -> None:  # type: ignore[no-untyped-def]
        pmu = dut.pmu
        for i, w in enumerate(words):
            ctx.set(dut.mem.data[i], w)
        ctx.set(dut.cmd_words, len(words))
        ctx.set(dut.budget, 0)

        async def power_up() -> None:
            await _power_on(ctx, dut)
            for i in range(watch):  # the words the program uses (all of them: slow here)
                ctx.set(dut.spad.data[i], SCRAMBLE ^ i)
            for addr, value in sensor.items():
                ctx.set(dut.spad.data[addr], value)

        def slot(s: int) -> list[int]:
            base = DATA_BASE + s * config.slot_words
            return [ctx.get(dut.store.data[base + i]) for i in range(watch)]

        for failures in runs:
            for i in range(DATA_BASE):
                ctx.set(dut.store.data[i], 0)
            failed_at: list[int | None] = []
            markers: list[tuple[int, int]] = []
            slots: list[tuple[list[int], list[int]]] = []
            pending = list(failures)
            ticks = 0
            await power_up()
            while not ctx.get(pmu.status.halted) and ticks < max_ticks:
                if pending and pending[0] < ctx.get(pmu.status.tick_end):
                    failed_at.append(pending.pop(0))
                    await power_up()  # the restart ends this tick without its effects
                    markers.append((ctx.get(dut.store.data[0]), ctx.get(dut.store.data[1])))
                    slots.append((slot(0), slot(1)))
                    continue
                await ctx.tick()
                ticks += 1
            failed_at.append(None)
            halted = bool(ctx.get(pmu.status.halted))
            error = ErrorCode(ctx.get(pmu.status.error))
            results.append(
                PowerCycles(
                    failed_at=failed_at,
                    markers_after_failure=markers,
                    slot_words_after_failure=slots,
                    outcome=RtlOutcome(
                        ticks=ticks,
                        end_cycle=ctx.get(pmu.status.end_cycle) if halted else -1,
                        halt_code=ctx.get(pmu.status.halt_code) if halted else None,
                        error=error,
                        error_pc=ctx.get(pmu.status.error_pc)
                        if error is not ErrorCode.NONE
                        else None,
                        launches=[],
                        counters={n: ctx.get(_counter(pmu, n)) for n in COUNTER_PORTS(config)},
                        bank_on_cycles=[],
                        supply={},
                    ),
                    spad=[ctx.get(dut.spad.data[i]) for i in range(watch)],
                    store=[ctx.get(dut.store.data[i]) for i in range(DATA_BASE)],
                )
            )

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return results
