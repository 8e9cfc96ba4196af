"""Run a PMU command program on the chip (accelerator + PMU) and compare it with its prediction.

``run_program`` loads a network's layer program, weights and input (as ``run_network`` does),
plus a PMU command program (e.g. from ``pmu.compiler.compile_schedule``), simulates the chip's
one Verilator build until the PMU stops, and returns the PMU's counters and violations, every
LAUNCH's measured cycles next to ``pmu.timing.predict``'s, and whether every frame's outputs are
bit-exact.
"""

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from voltflow.cosim.accel_run import (
    TB_MODULE,
    dump_plan,
    prepare_run,
    write_words_hex,
)
from voltflow.cosim.build import VerilatorBuild, follow_lines, run_cocotb
from voltflow.cosim.golden import Case, make_case
from voltflow.cosim.images import (
    from_words,
    read_readmemh,
    to_words,
    write_readmemh,
)
from voltflow.cosim.sim_top import MAX_FAILURES, chip_configs
from voltflow.pmu.compiler import launch_cycles
from voltflow.pmu.isa import ErrorCode
from voltflow.pmu.rom import write_hex
from voltflow.pmu.store import DATA_BASE
from voltflow.pmu.timing import Outcome, predict, predict_power_cycles, random_failures
from voltflow.pmu.unit import COUNTER_PORTS
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.rtl.config import ADDR_BITS
from voltflow.rtl.program import DESCRIPTOR_BITS
from voltflow.scheduler.chip import Chip
from voltflow.scheduler.network import Network

__all__ = ["LaunchResult", "PmuRunResult", "Snapshot", "run_program"]


@dataclass(frozen=True, slots=True)
class LaunchResult:
    """One LAUNCH: measured (RTL) and predicted (pmu.timing) reference cycles."""

    first: int
    count: int
    exec_cycle: int
    done_cycle: int
    predicted_exec_cycle: int
    predicted_done_cycle: int

    @property
    def cycles(self) -> int:
        return self.done_cycle - self.exec_cycle - 2

    @property
    def predicted_cycles(self) -> int:
        return self.predicted_done_cycle - self.predicted_exec_cycle - 2

    @property
    def exact(self) -> bool:
        return (self.exec_cycle, self.done_cycle) == (
            self.predicted_exec_cycle,
            self.predicted_done_cycle,
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The PMU's power counters at an event: ``B`` SET_PERIOD (a period starts), ``S`` a
    LAUNCH's first cycle, ``C`` the cycle
    after a supply or rail change while its ops run (a look-ahead), ``D`` its done, ``F`` a
    period boundary (after IDLE/SLEEP); ``P``/``O`` a power cycle's end. A ``C`` snapshot also
    has the accelerator's activity counters (``rtl.activity_counters.COUNTERS`` order): the
    ops' activity up to the change."""

    event: str
    now: int
    counters: dict[str, int]
    activity: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PmuRunResult:
    """A PMU program run on the chip."""

    network: str
    error: ErrorCode
    halt_code: int
    end_cycle: int
    predicted: Outcome
    launches: tuple[LaunchResult, ...]
    counters: dict[str, int]  # the PMU's counters (pmu.unit.COUNTER_PORTS) and status
    bank_on_cycles: tuple[int, ...]
    frame_exact: tuple[bool, ...]  # per frame: every observed op output equals the golden one
    outputs: dict[tuple[int, str], np.ndarray]  # (frame, op) -> observed output
    snapshots: tuple[Snapshot, ...]  # in simulation order
    op_stats: np.ndarray  # per op done: descriptor index, then rtl COUNTERS (cumulative)
    wall_s: float
    sim_wall_s: float
    trace: Path | None = None  # the waveform, when the build has a trace format
    #: An intermittent run: the model's outcome of every power cycle (``predicted`` is the
    #: last), and the checkpoint store's words at the end.
    power_cycles: tuple[Outcome, ...] = ()
    store: tuple[int, ...] = ()
    failures: tuple[int, ...] = ()  # the supply failures the run was given

    @property
    def overclock_violations(self) -> int:
        return self.counters["overclock_count"]

    @property
    def access_violations(self) -> int:
        return self.counters["access_count"]

    @property
    def violations(self) -> int:
        return self.overclock_violations + self.access_violations

    @property
    def bit_exact(self) -> bool:
        return bool(self.frame_exact) and all(self.frame_exact)

    @property
    def timing_exact(self) -> bool:
        """Every LAUNCH (of every power cycle) and the end at exactly the predicted cycles, and
        the power cycles (their ends and failures) as predicted."""
        cycles = self.power_cycles or (self.predicted,)
        ends = [s.now for s in self.snapshots if s.event in "PO"]
        return (
            len(self.launches) == sum(len(c.launches) for c in cycles)
            and all(x.exact for x in self.launches)
            and self.end_cycle == self.predicted.end_cycle
            and len(ends) == len(cycles) - 1
        )

    @property
    def cycles_per_s(self) -> float:
        """Simulated reference cycles per wall second (skipped waits included)."""
        return (self.end_cycle + 1) / self.sim_wall_s if self.sim_wall_s > 0 else 0.0


def run_program(
    network: Network,
    chip: Chip,
    words: Sequence[int],
    *,
    seed: int = 0,
    case: Case | None = None,
    budget: int = 0,
    run_dir: Path | None = None,
    verilator_build: VerilatorBuild | None = None,
    waves: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
    intermittent: bool = False,
    failures: Sequence[int] = (),
    random_failure_count: int = 0,
    failure_seed: int = 0,
) -> PmuRunResult:
    """Run the PMU program ``words`` with ``network``'s layer program on the chip's build.

    ``intermittent``: on the build with the checkpoint store (an erased store at the start),
    through power cycles (``pmu.timing.predict_power_cycles``); power cycle k fails at its
    cycle ``failures[k]``; ``random_failure_count`` more at random points
    (``pmu.timing.random_failures`` with ``failure_seed``: boots, copies and layers alike).

    ``waves``: write a waveform (the build must have a trace format); keep it by giving a
    ``run_dir`` (the trace is in ``run_dir / "sim"``). ``progress(done, total, cycle)`` is
    called from a second thread as LAUNCHes finish (``cycle``: the PMU's cycle counter).
    """
    prepared = prepare_run(network, chip, case if case is not None else make_case(network, seed))
    works, layout, case, program = prepared.works, prepared.layout, prepared.case, prepared.program
    spad, rram = prepared.spad, prepared.rram
    _, pmu_config = chip_configs(chip, prepared.counts, store=intermittent)
    verilator_build = prepared.build(chip, verilator_build, store=intermittent)
    n_desc = len(program.descriptors)
    cycles_of = launch_cycles(chip, [works[i] for i in program.op_index])
    power_cycles: tuple[Outcome, ...] = ()
    if random_failure_count:
        if not intermittent or failures:
            raise ValueError("random failures need an intermittent run without given failures")
        failures = random_failures(
            list(words),
            pmu_config,
            cycles_of,
            program_ops=n_desc,
            count=random_failure_count,
            seed=failure_seed,
        )
    if len(failures) > MAX_FAILURES:
        raise ValueError(f"at most {MAX_FAILURES} power-ups' failures per run, not {len(failures)}")
    if intermittent:
        power_cycles = tuple(
            predict_power_cycles(
                list(words), pmu_config, cycles_of, program_ops=n_desc, failures=failures
            )
        )
        predicted = power_cycles[-1]
    else:
        if failures:
            raise ValueError("power failures need an intermittent run")
        predicted = predict(list(words), pmu_config, cycles_of, program_ops=n_desc, budget=budget)
    input_place = next(p for p in layout.placements if p.tensor == network.input_name)
    with tempfile.TemporaryDirectory(prefix="voltflow-pmu-") as scratch:
        work_dir = Path(scratch) if run_dir is None else Path(run_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        write_readmemh(work_dir / "spad.hex", spad)
        write_readmemh(work_dir / "rram.hex", rram)
        write_readmemh(work_dir / "sensor.hex", to_words(case.input))
        write_words_hex(work_dir / "prog.hex", program.words(), DESCRIPTOR_BITS)
        write_hex(work_dir / "cmd.hex", list(words))
        ranges, where = dump_plan(network, works, layout, program)
        write_words_hex(work_dir / "dump_first.hex", [lo for lo, _ in ranges], ADDR_BITS)
        write_words_hex(work_dir / "dump_last.hex", [hi for _, hi in ranges], ADDR_BITS)
        # Ticks: one per running cycle, two per skipped wait, the bank read-out at the end; an
        # intermittent run's power cycles at most one per reference cycle (a failed one never
        # reports its last LAUNCH), and the resets between them.
        max_ticks = (
            2 * sum(x.cycles for x in predicted.launches)
            + 4 * (predicted.commands + 10)
            + 4 * pmu_config.n_banks
            + 10_000
            + sum(c.end_cycle + 1 + 4 * (c.commands + 10) for c in power_cycles)
        )
        plusargs: tuple[str, ...] = (
            f"+spad={work_dir / 'spad.hex'}",
            f"+rram={work_dir / 'rram.hex'}",
            f"+prog={work_dir / 'prog.hex'}",
            f"+cmd={work_dir / 'cmd.hex'}",
            f"+cmd_words={len(words)}",
            f"+prog_ops={n_desc}",
            f"+budget={budget}",
            f"+sensor={work_dir / 'sensor.hex'}",
            f"+sensor_base={input_place.base_word}",
            f"+sensor_words={input_place.words}",
            f"+dump_first={work_dir / 'dump_first.hex'}",
            f"+dump_last={work_dir / 'dump_last.hex'}",
            f"+dump_prefix={work_dir / 'out_'}",
            f"+stats={work_dir / 'stats.txt'}",
            f"+launches={work_dir / 'launches.txt'}",
            f"+pmu_stats={work_dir / 'pmu.txt'}",
            f"+snapshots={work_dir / 'snapshots.txt'}",
            f"+result={work_dir / 'result.json'}",
            f"+max_ticks={max_ticks}",
        )
        if intermittent:
            write_hex(work_dir / "store.hex", [0] * DATA_BASE)  # erased markers
            write_hex(work_dir / "failures.hex", list(failures) or [0])
            plusargs += (
                f"+store={work_dir / 'store.hex'}",
                f"+failures={work_dir / 'failures.hex'}",
                f"+fail_count={len(failures)}",
                f"+store_out={work_dir / 'store_out.hex'}",
            )
        total = sum(len(c.launches) for c in power_cycles or (predicted,))

        def launched(lines: list[str]) -> None:
            assert progress is not None
            progress(len(lines), total, int(lines[-1].split()[3]))

        wall = time.perf_counter()
        with follow_lines(work_dir / "launches.txt", launched if progress else None):
            run = run_cocotb(
                verilator_build,
                TB_MODULE,
                plusargs=plusargs,
                run_dir=work_dir / "sim",
                waves=waves,
            )
        wall = time.perf_counter() - wall
        if not run.passed:
            raise RuntimeError(f"the chip simulation failed:\n{run.log_tail()}")
        sim_wall = float(json.loads((work_dir / "result.json").read_text())["sim_wall_s"])
        store = (
            tuple(int(w) for w in read_readmemh(work_dir / "store_out.hex")) if intermittent else ()
        )
        counters: dict[str, int] = {}
        bank_on = [0] * pmu_config.n_banks
        for line in (work_dir / "pmu.txt").read_text().splitlines():
            parts = line.split()
            if parts[0] == "bank_on":
                bank_on[int(parts[1])] = int(parts[2])
            else:
                counters[parts[0]] = int(parts[1])
        names = list(COUNTER_PORTS(pmu_config))
        snapshots = []
        for line in (work_dir / "snapshots.txt").read_text().splitlines():
            parts = line.split()
            values = [int(x) for x in parts[2:]]
            power, activity = values[: len(names)], tuple(values[len(names) :])
            snapshots.append(
                Snapshot(parts[0], int(parts[1]), dict(zip(names, power, strict=True)), activity)
            )
        stats = np.array((work_dir / "stats.txt").read_text().split(), dtype=np.int64).reshape(
            -1, len(COUNTERS) + 1
        )
        measured = [
            tuple(int(x) for x in line.split())
            for line in (work_dir / "launches.txt").read_text().splitlines()
        ]
        outputs: dict[tuple[int, str], np.ndarray] = {}
        dumps = {}
        for path in work_dir.glob("out_*_*.hex"):
            frame, k = (int(x) for x in path.stem.split("_")[1:])
            dumps[frame, k] = read_readmemh(path)
        for (frame, k), data in dumps.items():
            lo = ranges[k][0]
            for name, (kk, b, n) in where.items():
                if kk == k:
                    outputs[(frame, name)] = from_words(
                        data[b - lo : b - lo + n], network.shape(name)
                    )
    launches = tuple(
        LaunchResult(
            first=m[0],
            count=m[1],
            exec_cycle=m[2],
            done_cycle=m[3],
            predicted_exec_cycle=p.exec_cycle,
            predicted_done_cycle=p.done_cycle,
        )
        for m, p in zip(
            measured,
            [x for c in power_cycles or (predicted,) for x in c.launches],
            strict=False,
        )
    )
    by_frame: dict[int, bool] = {}
    for (frame, name), value in outputs.items():
        same = bool(np.array_equal(value, case.outputs[name]))
        by_frame[frame] = by_frame.get(frame, True) and same
    # A frame must show the network's output to count.
    last = network.ops[-1].name
    frame_exact = tuple(by_frame[f] and (f, last) in outputs for f in sorted(by_frame))
    return PmuRunResult(
        network=network.name,
        error=ErrorCode(counters["error"]),
        halt_code=counters["halt_code"],
        end_cycle=counters["end_cycle"],
        predicted=predicted,
        launches=launches
        + tuple(LaunchResult(m[0], m[1], m[2], m[3], -1, -1) for m in measured[len(launches) :]),
        counters=counters,
        bank_on_cycles=tuple(bank_on),
        frame_exact=frame_exact,
        outputs=outputs,
        snapshots=tuple(snapshots),
        op_stats=stats,
        wall_s=wall,
        sim_wall_s=sim_wall,
        trace=run.trace if run_dir is not None else None,
        power_cycles=power_cycles,
        store=store,
        failures=tuple(failures),
    )
