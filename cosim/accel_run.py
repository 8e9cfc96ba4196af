"""Run a network on the RTL accelerator: build once per chip, load, simulate, compare.

``run_network`` maps the network (``op_work``, ``plan_memory``), draws a seeded case from the
golden model, writes the memory images and the layer program, runs the cached Verilator build
through cocotb and returns, per op, the measured reference cycles and counters next to the cost
model's prediction, and whether each op's output is bit-exact.
"""

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from voltflow.cosim.build import (
    BuildError,
    TraceFormat,
    VerilatorBuild,
    build,
    follow_lines,
    run_cocotb,
)
from voltflow.cosim.golden import Case, make_case
from voltflow.cosim.images import (
    descriptor_quant,
    from_words,
    read_readmemh,
    rram_image,
    scratchpad_image,
    write_readmemh,
)
from voltflow.cosim.operands import case_works
from voltflow.cosim.sim_top import (
    BankCounts,
    SimSizes,
    accel_build_spec,
    default_bank_counts,
    sim_bank_counts,
    uses_attention,
)
from voltflow.cosim.tb_accel import output_digest
from voltflow.hw.readmemh import readmemh_text
from voltflow.pmu.compiler import state_program
from voltflow.pmu.rom import write_hex
from voltflow.rtl.activity_counters import COUNTERS
from voltflow.rtl.config import ADDR_BITS
from voltflow.rtl.program import DESCRIPTOR_BITS, Program, compile_program
from voltflow.scheduler.chip import DOMAINS, Chip, Domain
from voltflow.scheduler.dataflow import Activity, Mode, OpWork, op_work
from voltflow.scheduler.memory import BankLayout, plan_memory
from voltflow.scheduler.network import Network, load_network

__all__ = [
    "PGO_ENV",
    "TRAINING_NETWORK",
    "OpResult",
    "PreparedRun",
    "RunResult",
    "accelerator_build",
    "chip_build",
    "dump_plan",
    "measured_activity",
    "prepare_run",
    "run_network",
    "testbench_expectation",
    "write_words_hex",
]

TB_MODULE = "voltflow.cosim.tb_accel"


@dataclass(frozen=True, slots=True)
class OpResult:
    """One op: measured against predicted."""

    name: str
    mode: Mode
    measured_cycles: int
    predicted_cycles: int
    measured: Activity
    predicted: Activity
    bit_exact: bool | None  # None: the output is not observable (no dump covers it)

    @property
    def cycles_match(self) -> bool:
        return self.measured_cycles == self.predicted_cycles

    @property
    def activity_match(self) -> bool:
        return self.measured == self.predicted


@dataclass(frozen=True, slots=True)
class RunResult:
    """A network run on the RTL."""

    network: str
    state_v: tuple[float, float, float]  # sys, rram, feeder
    increments: tuple[int, int, int]
    ops: tuple[OpResult, ...]
    counters: dict[str, int]  # run totals, by rtl.activity_counters.COUNTERS name
    outputs: dict[str, np.ndarray]  # observed int8 op outputs
    wall_s: float  # whole run_cocotb call (process start, loading, simulation, dumps)
    sim_wall_s: float  # from start to finish inside the simulator
    build_seconds: float
    built: bool
    #: What the testbench found different from the expectation it was given (it then fails).
    testbench_mismatches: tuple[str, ...] = ()

    @property
    def total_cycles(self) -> int:
        return sum(op.measured_cycles for op in self.ops)

    @property
    def cycles_per_s(self) -> float:
        return self.total_cycles / self.sim_wall_s if self.sim_wall_s > 0 else 0.0

    @property
    def passed(self) -> bool:
        return not self.testbench_mismatches and all(
            op.cycles_match and op.activity_match and op.bit_exact is not False for op in self.ops
        )


#: The network whose inference trains a profile-guided build (``cosim.build.build``'s
#: ``train``): 0.4 M cycles at nominal voltage, with every engine but attention's and the PMU.
#: SqueezeNet runs as fast on a build trained on it as on one trained on SqueezeNet itself.
TRAINING_NETWORK = "resnet8"
#: ``VOLTFLOW_PGO=0`` builds without profile-guided optimisation: a first build about 30 s
#: shorter, simulations about 1.3x slower.
PGO_ENV = "VOLTFLOW_PGO"


def chip_build(
    chip: Chip,
    counts: BankCounts | None = None,
    trace: TraceFormat | None = None,
    *,
    attention: bool = True,
    store: bool = False,
) -> VerilatorBuild:
    """The chip's (cached) Verilator build with ``counts`` banks per kind (default: the build
    that most networks use; see cosim.sim_top.sim_bank_counts), with the attention engines'
    logic if ``attention`` and the checkpoint store if ``store`` (the intermittent build); with
    a trace format, the separate build that dumps it.

    The default size class without store or trace is profile-guided: trained on one inference
    of :data:`TRAINING_NETWORK` while it is built (docs/rtl.md, "Speed"). Other builds, and
    every build with ``VOLTFLOW_PGO=0``, are compiled without a profile."""
    counts = default_bank_counts(chip) if counts is None else counts
    spec = accel_build_spec(chip, counts, store=store, attention=attention)
    if trace is not None and trace is not TraceFormat.NONE:
        return build(dataclasses.replace(spec, trace=trace))
    guided = not store and counts == default_bank_counts(chip)
    if not guided or os.environ.get(PGO_ENV, "1") == "0":
        return build(spec)
    return build(spec, train=lambda instrumented: _train(chip, instrumented))


def _train(chip: Chip, instrumented: VerilatorBuild) -> None:
    """The training run of a profile-guided build: one inference of :data:`TRAINING_NETWORK`
    at nominal voltage, which must be exact like any other."""
    network = load_network(TRAINING_NETWORK)
    result = run_network(network, chip, [chip.nominal_v] * 3, verilator_build=instrumented)
    if not result.passed:
        ops = [
            op.name
            for op in result.ops
            if not (op.cycles_match and op.activity_match and op.bit_exact is not False)
        ]
        raise BuildError(
            f"the training run of {chip.name}'s profile-guided build ({network.name}) differs "
            f"from the cost and golden models: ops {ops[:5]}, testbench "
            f"{list(result.testbench_mismatches)[:5]}"
        )


def accelerator_build(chip: Chip, counts: BankCounts | None = None) -> VerilatorBuild:
    """The chip's full build (attention engines included) with ``counts`` banks per kind (see
    :func:`chip_build`)."""
    return chip_build(chip, counts)


def measured_activity(delta: dict[str, int], rows: int, cols: int, word_bits: int) -> Activity:
    """Counter differences as an :class:`Activity` (PE cycles = R * C * sys ticks, lane bits =
    words * word bits)."""
    return Activity(
        sys_ticks=delta["sys_ticks"],
        feeder_ticks=delta["feeder_ticks"],
        rram_ticks=delta["rram_ticks"],
        macs=delta["macs"],
        pe_cycles=rows * cols * delta["sys_ticks"],
        spad_reads=delta["spad_reads"],
        spad_writes=delta["spad_writes"],
        lane_bits=word_bits * delta["lane_words"],
        wbuf_reads=delta["wbuf_reads"],
        wbuf_writes=delta["wbuf_writes"],
        rram_reads=delta["rram_reads"],
        dma_beats=delta["dma_beats"],
        steps=delta["steps"],
        epochs=delta["epochs"],
        gated_macs=delta["gated_macs"],
        zero_detects=delta["zero_detects"],
        skipped_steps=delta["skipped_steps"],
    )


def dump_plan(
    network: Network, works: Sequence[OpWork], layout: BankLayout, program: Program
) -> tuple[list[tuple[int, int]], dict[str, tuple[int, int, int]]]:
    """Per descriptor the word range dumped after it, and per op where its output is found:
    (descriptor index, first word, words)."""
    base = {p.tensor: (p.base_word, p.words) for p in layout.placements}
    desc_of = {op_i: k for k, op_i in enumerate(program.op_index)}
    index = {op.name: i for i, op in enumerate(network.ops)}

    def producer(name: str) -> int | None:
        """The descriptor after which tensor ``name`` is complete."""
        if name not in index:
            return None  # the network input
        i = index[name]
        if works[i].mode is not Mode.ALIAS:
            return desc_of[i]
        found = [producer(x) for x in network.ops[i].inputs]
        return None if None in found else max(k for k in found if k is not None)

    ranges = [list(base[network.ops[i].name]) for i in program.op_index]
    ranges = [[b, b + n] for b, n in ranges]
    where: dict[str, tuple[int, int, int]] = {}
    for op in network.ops:
        k = producer(op.name)
        if k is None:
            continue
        b, n = base[op.name]
        ranges[k] = [min(ranges[k][0], b), max(ranges[k][1], b + n)]
        where[op.name] = (k, b, n)
    return [(lo, hi - 1) for lo, hi in ranges], where


def testbench_expectation(
    network: Network,
    chip: Chip,
    prepared: "PreparedRun",
    predicted_cycles: Sequence[int],
    ranges: Sequence[tuple[int, int]],
    where: dict[str, tuple[int, int, int]],
) -> dict[str, object]:
    """What the testbench (``cosim/tb_accel.py``, ``+expect=``) checks, as JSON: per descriptor
    the cycles and counters the cost model predicts, and a digest of every observed output of
    the golden model (``check_expectation`` there)."""
    ops = []
    for k in range(len(prepared.program.descriptors)):
        i = prepared.program.op_index[k]
        a = prepared.works[i].activity
        ops.append(
            {
                "cycles": int(predicted_cycles[i]),
                "sys_ticks": a.sys_ticks,
                "feeder_ticks": a.feeder_ticks,
                "rram_ticks": a.rram_ticks,
                "macs": a.macs,
                "spad_reads": a.spad_reads,
                "spad_writes": a.spad_writes,
                "lane_words": a.lane_bits // chip.word_bits,
                "wbuf_reads": a.wbuf_reads,
                "wbuf_writes": a.wbuf_writes,
                "rram_reads": a.rram_reads,
                "dma_beats": a.dma_beats,
                "steps": a.steps,
                "epochs": a.epochs,
            }
        )
    outputs = {
        name: {
            "op": k,
            "offset": b - ranges[k][0],
            "words": n,
            "shape": [
                network.shape(name).channels,
                network.shape(name).height,
                network.shape(name).width,
            ],
            "digest": output_digest(prepared.case.outputs[name]),
        }
        for name, (k, b, n) in where.items()
    }
    return {"counters": [name for name, _ in COUNTERS], "ops": ops, "outputs": outputs}


def write_words_hex(path: Path, values: Sequence[int], bits: int) -> None:
    """``values`` as a ``$readmemh`` image of ``bits``-bit words."""
    path.write_bytes(readmemh_text(values, bits))


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """What every RTL run of a network needs: mapping, memory plan, layer program and images."""

    case: Case
    works: tuple[OpWork, ...]
    layout: BankLayout
    program: Program
    spad: np.ndarray
    rram: np.ndarray
    counts: BankCounts  # the build's banks per kind (cosim.sim_top.sim_bank_counts)
    attention: bool  # the network uses the attention engines (cosim.sim_top.uses_attention)

    def build(
        self, chip: Chip, given: VerilatorBuild | None = None, *, store: bool = False
    ) -> VerilatorBuild:
        """The Verilator build that runs this network: ``given`` after checking it is the
        build of this size class, else the (cached) one; ``store``: the intermittent build.
        A network without attention ops runs on the build without the attention engines' logic
        (same results, less to simulate), or on the full build if that is the one given."""
        if given is None:
            return chip_build(chip, self.counts, attention=self.attention, store=store)
        spec = accel_build_spec(chip, self.counts, store=store, attention=self.attention)
        full = accel_build_spec(chip, self.counts, store=store)
        if given.spec.sources not in (spec.sources, full.sources):
            raise ValueError(
                f"the given Verilator build is not {chip.name}'s build for this network (banks "
                f"{ {k.value: n for k, n in self.counts.items()} }): pass none to use the right one"
            )
        return given


def prepare_run(network: Network, chip: Chip, case: Case) -> PreparedRun:
    """Map ``network``, plan its memory, compile its layer program and build the memory images,
    checking that they fit the chip's simulation."""
    dense = tuple(op_work(op, chip, network) for op in network.ops)
    # A sparsity-aware array's activity depends on this input's zeros (exact, per op).
    works = case_works(case, chip, dense)
    layout = plan_memory(network, chip, works)
    quant = {op.name: descriptor_quant(case, op.name) for op in network.ops}
    program = compile_program(network, chip, layout, works, quant)
    counts = sim_bank_counts(chip, layout)
    sizes = SimSizes.for_chip(chip, counts)
    spad = scratchpad_image(case, chip, layout)
    rram = rram_image(case, chip, layout, works)
    if spad.size > sizes.spad_words or rram.size > sizes.rram_words:
        raise ValueError(
            f"{network.name} needs {spad.size} scratchpad and {rram.size} RRAM words; the "
            f"simulation of {chip.name} has {sizes.spad_words} and {sizes.rram_words}"
        )
    return PreparedRun(case, works, layout, program, spad, rram, counts, uses_attention(network))


def run_network(
    network: Network,
    chip: Chip,
    state_v: Sequence[float],
    *,
    seed: int = 0,
    sparsity: float = 0.0,
    case: Case | None = None,
    run_dir: Path | None = None,
    verilator_build: VerilatorBuild | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Run one inference of ``network`` on the RTL at the power state ``state_v`` (sys, rram,
    feeder voltages) and compare it with the cost model and the golden model.
    ``progress(done, total)`` is called from a second thread as ops finish."""
    if len(state_v) != len(DOMAINS):
        raise ValueError(f"state_v must hold sys, rram, feeder voltages, not {list(state_v)!r}")
    volts = dict(zip(DOMAINS, (float(v) for v in state_v), strict=True))
    inc = {d: int(chip.divider_increment(d, volts[d])) for d in DOMAINS}
    prepared = prepare_run(
        network, chip, case if case is not None else make_case(network, seed, sparsity)
    )
    works, layout, case, program = prepared.works, prepared.layout, prepared.case, prepared.program
    spad, rram = prepared.spad, prepared.rram
    verilator_build = prepared.build(chip, verilator_build)
    predicted = [
        int(
            w.ref_cycles(
                chip,
                np.array(inc[Domain.SYS]),
                np.array(inc[Domain.RRAM]),
                np.array(inc[Domain.FEEDER]),
            )
        )
        for w in works
    ]
    with tempfile.TemporaryDirectory(prefix="voltflow-accel-") as scratch:
        work_dir = Path(scratch) if run_dir is None else Path(run_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        write_readmemh(work_dir / "spad.hex", spad)
        write_readmemh(work_dir / "rram.hex", rram)
        write_words_hex(work_dir / "prog.hex", program.words(), DESCRIPTOR_BITS)
        pmu_program = state_program(chip, tuple(volts[d] for d in DOMAINS), len(program.words()))
        write_hex(work_dir / "cmd.hex", pmu_program.words)
        ranges, where = dump_plan(network, works, layout, program)
        write_words_hex(work_dir / "dump_first.hex", [lo for lo, _ in ranges], ADDR_BITS)
        write_words_hex(work_dir / "dump_last.hex", [hi for _, hi in ranges], ADDR_BITS)
        expectation = testbench_expectation(network, chip, prepared, predicted, ranges, where)
        (work_dir / "expect.json").write_text(json.dumps(expectation))
        # The PMU's prologue waits for the rails (one skipped tick each); the rest is one tick
        # per reference cycle.
        max_ticks = 2 * sum(predicted) + 1000 * len(works) + 10_000
        plusargs = (
            f"+spad={work_dir / 'spad.hex'}",
            f"+rram={work_dir / 'rram.hex'}",
            f"+prog={work_dir / 'prog.hex'}",
            f"+cmd={work_dir / 'cmd.hex'}",
            f"+cmd_words={len(pmu_program.words)}",
            f"+prog_ops={len(program.words())}",
            f"+dump_first={work_dir / 'dump_first.hex'}",
            f"+dump_last={work_dir / 'dump_last.hex'}",
            f"+dump_prefix={work_dir / 'out_'}",
            f"+stats={work_dir / 'stats.txt'}",
            f"+result={work_dir / 'result.json'}",
            f"+expect={work_dir / 'expect.json'}",
            f"+max_ticks={max_ticks}",
        )
        wall = time.perf_counter()
        total = len(program.descriptors)

        def op_done(lines: list[str]) -> None:
            assert progress is not None
            progress(len(lines), total)

        with follow_lines(work_dir / "stats.txt", op_done if progress else None):
            run = run_cocotb(
                verilator_build, TB_MODULE, plusargs=plusargs, run_dir=work_dir / "sim"
            )
        wall = time.perf_counter() - wall
        # The testbench fails when the RTL differs from the expectation; it then still records
        # the run, so the comparison below reports the differences too.
        result_file = work_dir / "result.json"
        recorded = json.loads(result_file.read_text()) if result_file.is_file() else {}
        mismatches = tuple(recorded.get("mismatches", ()))
        if not run.passed and not mismatches:
            raise RuntimeError(f"the accelerator simulation failed:\n{run.log_tail()}")
        names = [name for name, _ in COUNTERS]
        lines = (work_dir / "stats.txt").read_text().split()
        rows = np.array(lines, dtype=np.int64).reshape(-1, len(names) + 1)
        sim_wall = recorded["sim_wall_s"]
        outputs: dict[str, np.ndarray] = {}
        dumps: dict[int, tuple[int, np.ndarray]] = {}
        for k, (lo, _hi) in enumerate(ranges):
            path = work_dir / f"out_0_{k}.hex"
            if path.is_file():
                dumps[k] = (lo, read_readmemh(path))
        for name, (k, b, n) in where.items():
            if k in dumps:
                lo, words = dumps[k]
                outputs[name] = from_words(words[b - lo : b - lo + n], network.shape(name))
    if len(rows) != len(program.descriptors) or list(rows[:, 0]) != list(range(len(rows))):
        raise RuntimeError(f"expected one stats line per descriptor, got op indices {rows[:, 0]}")
    per_desc = {program.op_index[k]: k for k in range(len(rows))}
    previous = np.zeros(len(names), dtype=np.int64)
    results = []
    for i, (op, work) in enumerate(zip(network.ops, works, strict=True)):
        if i in per_desc:
            current = rows[per_desc[i], 1:]
            delta = dict(zip(names, (int(x) for x in current - previous), strict=True))
            previous = current
        else:
            delta = dict.fromkeys(names, 0)
        exact = None
        if op.name in outputs:
            exact = bool(np.array_equal(outputs[op.name], case.outputs[op.name]))
        results.append(
            OpResult(
                name=op.name,
                mode=work.mode,
                measured_cycles=delta["cycles"],
                predicted_cycles=predicted[i],
                measured=measured_activity(delta, chip.rows, chip.cols, chip.word_bits),
                predicted=work.activity,
                bit_exact=exact,
            )
        )
    totals = dict(zip(names, (int(x) for x in rows[-1, 1:]), strict=True))
    return RunResult(
        network=network.name,
        state_v=(volts[Domain.SYS], volts[Domain.RRAM], volts[Domain.FEEDER]),
        increments=(inc[Domain.SYS], inc[Domain.RRAM], inc[Domain.FEEDER]),
        ops=tuple(results),
        counters=totals,
        outputs=outputs,
        wall_s=wall,
        sim_wall_s=float(sim_wall),
        build_seconds=verilator_build.build_seconds,
        built=verilator_build.built,
        testbench_mismatches=mismatches,
    )


def activity_diff(a: Activity, b: Activity) -> dict[str, tuple[int, int]]:
    """Fields where two activities differ: name -> (a, b)."""
    return {
        f.name: (getattr(a, f.name), getattr(b, f.name))
        for f in fields(Activity)
        if getattr(a, f.name) != getattr(b, f.name)
    }
