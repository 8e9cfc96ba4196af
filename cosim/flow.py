"""The end-to-end flow as a library: schedule -> compile -> RTL -> energy -> report.

:func:`run_flow` takes a :class:`FlowRequest` (network, chip, rate, rails, method, gating policy,
frames, ...) and returns a :class:`FlowReport`: the schedule met on the RTL, frame by frame, next
to the scheduler's prediction and the nominal baseline, with the report files written.
:func:`run_fixed_state` runs one inference at a fixed power state instead and checks every op.
``voltflow cosim`` is a thin wrapper around these two functions.
"""

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voltflow.cosim.accel_run import RunResult, accelerator_build, activity_diff, run_network
from voltflow.cosim.build import TraceFormat
from voltflow.cosim.e2e import (
    ENERGY_TOLERANCE,
    Plan,
    RunAnalysis,
    SecondProcess,
    chip_build,
    default_rate,
    measure,
    plan,
)
from voltflow.cosim.e2e_report import report_json, report_text, write_csv, write_plots
from voltflow.cosim.golden import Case
from voltflow.cosim.model_case import case_of, model_case
from voltflow.cosim.operands import case_operands
from voltflow.cosim.sim_top import sim_bank_counts, uses_attention
from voltflow.pmu.compiler import check_period
from voltflow.pmu.limits import check_chip
from voltflow.pmu.planning import lookahead_program
from voltflow.pmu.rom import write_hex, write_listing
from voltflow.scheduler.auto_policy import least_energy
from voltflow.scheduler.chip import DOMAINS, Chip, GatingPolicy, Sparsity, load_chip
from voltflow.scheduler.cost import CostTable
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.instance import Problem
from voltflow.scheduler.memory import plan_memory
from voltflow.scheduler.network import Network, OpKind
from voltflow.scheduler.onnx_model import Model, load_model
from voltflow.scheduler.problem import ProblemOptions, build_problem, check_rails
from voltflow.scheduler.solve import InfeasibleError, Method
from voltflow.scheduler.sparsity import OpOperands
from voltflow.scheduler.texttable import format_table

__all__ = [
    "SILENT",
    "FlowError",
    "FlowProgress",
    "FlowReport",
    "FlowRequest",
    "StateReport",
    "StateRequest",
    "require_rtl_support",
    "run_fixed_state",
    "run_flow",
]

#: What a run writes into its folder (removed first, so a folder never mixes two runs).
RUN_FILES = (
    "report.json",
    "layers.csv",
    "timeline.png",
    "energy.png",
    "schedule.json",
    "rom.hex",
    "rom.lst",
    "waves.fst",
    "waves.vcd",
    "waves.saif",
)


class FlowError(ValueError):
    """The request cannot run (a network the RTL cannot run, no frames)."""


class FlowProgress(Protocol):
    """Where the flow reports what it is doing."""

    def step(self, text: str) -> None:
        """A new step or a fact about it: one line of its own."""

    def status(self, text: str) -> None:
        """Progress within a step (frames, launches, ops done): may overwrite the last status."""


class _Silent:
    def step(self, text: str) -> None:
        pass

    def status(self, text: str) -> None:
        pass


#: A :class:`FlowProgress` that reports nothing (a request without ``progress``).
SILENT: FlowProgress = _Silent()


@dataclass(frozen=True, slots=True)
class FlowRequest:
    """What to run end to end.

    Parameters
    ----------
    network, chip : str or path-like
        Zoo network name or a network ``.yaml``; chip name or a chip ``.yaml``.
    fps : float or None
        Frame rate; None: half the highest rate the chip reaches at its top voltage, rounded.
    rails : int
        Distinct supply voltages the schedule may use.
    method : Method
        Solver or baseline that makes the schedule.
    policy : GatingPolicy or None
        Bank power-gating policy; None (``--policy auto``): solve with each, keep the least energy.
    frames : int
        Periods run on the RTL.
    seed : int
        Seed of the random weights and input.
    waves : TraceFormat or None
        Also dump waves (a separate build) into ``out_dir``.
    out_dir : path-like or None
        Where the files go; None: ``build/cosim/<net>-<fps>fps``.
    lookahead : bool
        Compile for the PMU's look-ahead queue (supplies raised and banks woken while the
        previous layer runs); the report says how many cycles per frame it hides.
    progress : FlowProgress or None
        Receives the steps and the frames' progress; None: silent.
    """

    network: str | os.PathLike[str] = "squeezenet"
    chip: str | os.PathLike[str] = "powerflow_ref"
    fps: float | None = None
    rails: int = 3
    method: Method = Method.DP
    policy: GatingPolicy | None = GatingPolicy.RRAM_PG
    frames: int = 2
    seed: int = 0
    waves: TraceFormat | None = None
    out_dir: str | os.PathLike[str] | None = None
    lookahead: bool = False
    progress: FlowProgress | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class FlowReport:
    """The outcome of :func:`run_flow`.

    ``data`` is the ``voltflow-cosim/1`` object written to ``report.json``; ``text`` the terminal
    report (tables, totals and, when the run passes, the verdict).
    """

    network: Network
    chip: Chip
    fps: float
    policy: GatingPolicy
    #: ``--policy auto``: the energy of each candidate policy's schedule (None: infeasible).
    policy_energies_j: dict[str, float | None] | None
    plan: Plan
    run: RunAnalysis
    baseline: RunAnalysis | None  # None: the nominal baseline cannot meet the rate
    out_dir: Path
    data: dict[str, Any]
    text: str

    @property
    def failures(self) -> list[str]:
        """Why the run does not match the prediction (empty: it passes)."""
        return self.run.failures()

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class StateRequest:
    """One inference on the RTL at a fixed power state (no schedule, no PMU program)."""

    network: str | os.PathLike[str] = "squeezenet"
    chip: str | os.PathLike[str] = "powerflow_ref"
    #: Voltages of the sys, rram and feeder domains.
    state_v: tuple[float, ...] = (1.1, 1.1, 1.1)
    seed: int = 0
    #: Fraction of zero weights.
    sparsity: float = 0.0
    progress: FlowProgress | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StateReport:
    """The outcome of :func:`run_fixed_state`: ``data`` is the ``voltflow-cosim-state/1`` object,
    ``text`` the terminal report."""

    network: Network
    chip: Chip
    result: RunResult
    data: dict[str, Any]
    text: str

    @property
    def passed(self) -> bool:
        return bool(self.data["passed"])


def require_rtl_support(network: Network, name: str | os.PathLike[str]) -> None:
    """Raise `FlowError` before any work when ``network`` has ops the RTL cannot run: a generic
    matmul (its operand layout is open; attention matmuls have theirs, docs/attention.md)."""
    generic = [op.name for op in network.ops if op.kind is OpKind.MATMUL and op.attention is None]
    if generic:
        raise FlowError(
            f"{network.name} has {len(generic)} generic matmul op(s) (the first {generic[0]!r}): "
            "the RTL cannot run a matmul whose operand layout is open; give it 'attention: "
            "scores' or 'attention: context' (docs/attention.md). "
            f"`voltflow schedule --net {os.fspath(name)}` schedules it without the RTL."
        )


def run_flow(request: FlowRequest) -> FlowReport:
    """Schedule, compile, run ``request.frames`` periods on the RTL, price the counters, report.

    The nominal baseline (nominal voltage everywhere, no gating) runs on the same build in a
    second process, for the measured saving. The files (``schedule.json``, ``rom.hex``,
    ``rom.lst``, ``report.json``, ``layers.csv``, ``timeline.png``, ``energy.png`` and the waves)
    are written to the output folder.

    Raises
    ------
    FlowError
        The network has ops the RTL cannot run, or ``frames`` is below 1.
    InfeasibleError
        No schedule of the method meets the rate.
    """
    wall = time.perf_counter()
    progress = request.progress or SILENT
    model = load_model(request.network, seed=request.seed)
    network = model.network
    chip = load_chip(request.chip)
    check_chip(chip, request.chip)
    require_rtl_support(network, request.network)
    if request.frames < 1:
        raise FlowError(f"--frames must be at least 1, not {request.frames}")
    check_rails(request.rails, chip)
    if request.out_dir is not None and Path(request.out_dir).is_file():
        raise FlowError(f"--out-dir {request.out_dir}: is a file; give a folder")
    net_name, chip_name = os.fspath(request.network), os.fspath(request.chip)
    candidates = (
        [p.value for p in GatingPolicy] if request.policy is None else [request.policy.value]
    )
    case = _model_case(model, request.seed)
    operands = None
    if chip.sparsity is not Sparsity.NONE:
        # The schedule is made for this input's exact cost: which MACs the array gates.
        case = case_of(model, request.seed)
        dense = [op_work(op, chip, network) for op in network.ops]
        operands = case_operands(case, chip, dense)
    instances = {
        pol: build_problem(
            network, chip, ProblemOptions(policy=GatingPolicy(pol), operands=operands)
        )
        for pol in candidates
    }
    fps = request.fps if request.fps is not None else default_rate(instances[candidates[-1]][1])
    check_period(1.0 / fps, chip)
    policy_name = "auto" if request.policy is None else request.policy.value
    method = request.method.value
    progress.step(
        f"[1/5] schedule: {network.name} at {fps:g} FPS, {method}, policy {policy_name}..."
    )

    def provenance(pol: str) -> dict[str, Any]:
        return {"network": net_name, "chip": chip_name, "policy": pol}

    def attempt(pol: str) -> Plan:
        problem, table = instances[pol]
        return plan(table, problem, fps, request.rails, method, request.frames, provenance(pol))

    chosen, plans, energies = least_energy(candidates, attempt, lambda p: p.schedule.energy_j)
    policy, main_plan = GatingPolicy(chosen), plans[chosen]
    table = instances[chosen][1]
    if len(candidates) > 1:
        progress.step(f"      policy auto: {chosen} ({energies})")
    baseline = _nominal_baseline(network, chip, instances, fps, request, net_name, operands)
    out = Path(request.out_dir or f"build/cosim/{network.name}-{fps:g}fps")
    out.mkdir(parents=True, exist_ok=True)
    # A folder holds one run: an earlier run's files go first, and report.json is written last,
    # so a run that fails or is interrupted leaves no report (no stale PASS beside new files).
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    write_atomic(out / "schedule.json", json.dumps(main_plan.schedule_json, indent=2) + "\n")
    program, hidden = main_plan.program, None
    if request.lookahead:
        counts = sim_bank_counts(chip, table.memory)
        program, hidden = lookahead_program(main_plan, table, request.frames, counts)
    progress.step(f"[2/5] compile: {len(program.words)} PMU commands -> {out}/rom.hex")
    write_hex(out / "rom.hex", program.words)
    write_listing(out / "rom.lst", program.listing())
    progress.step(f"[3/5] Verilator build of {chip.name} (once per chip, cached)...")
    built = chip_build(
        chip,
        sim_bank_counts(chip, table.memory),
        request.waves,
        attention=uses_attention(table.network),
    )
    progress.step(f"      built in {built.build_seconds:.1f} s" if built.built else "      cached")
    frames = request.frames
    periods = f"{frames} period" + "s" * (frames != 1)
    progress.step(
        f"[4/5] frames: {periods} on the RTL, and the nominal baseline beside them (second "
        "process)..."
    )
    second = None
    if not isinstance(baseline, str):
        base_table, base_plan = baseline
        second = SecondProcess(
            measure, network, base_table, base_plan.schedule, frames, request.seed, None,
            case=case,
        )  # fmt: skip
    run_dir = out / "sim" if request.waves else None

    def launched(done: int, total: int, cycle: int) -> None:
        frame = min(frames, 1 + done * frames // max(total, 1)) if done < total else frames
        progress.status(
            f"frame {frame}/{frames}: {done}/{total} launches, {cycle / 1e6:.1f} M cycles"
        )

    try:
        run, _ = measure(
            network, table, main_plan.schedule, frames, request.seed, run_dir, request.waves,
            launched, case=case, lookahead=request.lookahead,
        )  # fmt: skip
        base = second.result()[0] if second is not None else None
    finally:  # Ctrl-C or a failure: the baseline's process and simulator end with this one
        if second is not None:
            second.stop()
    if run.trace:
        trace = Path(run.trace)
        shutil.copy(trace, out / f"waves{trace.suffix}")
        shutil.rmtree(out / "sim", ignore_errors=True)
    progress.step("[5/5] report...")
    head = {
        "network": network.name,
        "title": network.title,
        "chip": chip.name,
        "fps": fps,
        "period_s": 1.0 / fps,
        "method": method,
        "rails": request.rails,
        "policy": policy.value,
        "frames": frames,
        "slack_mode": main_plan.schedule.slack_mode.value,
        "schedule_energy_j": main_plan.schedule.energy_j,
        "out_dir": str(out),
        # Where the chip's Verilator build is and whether this run made it (a cluster worker
        # builds once per chip configuration into its own cache; docs/scale.md).
        "build": {
            "key": built.key,
            "directory": str(built.directory),
            "built": built.built,
            "build_seconds": built.build_seconds,
        },
        **_weights_report(model),
    }
    data = report_json(head, run, base, main_plan)
    if hidden is not None:
        data["lookahead"] = {
            "hidden_cycles_per_frame": hidden,
            "hidden_ns_per_frame": hidden * 1e3 / chip.reference_mhz,
            "commands": len(program.words),
            "commands_without": len(main_plan.program.words),
        }
    if isinstance(baseline, str):
        data["baseline_infeasible"] = baseline
    data["total_wall_s"] = time.perf_counter() - wall
    write_csv(out / "layers.csv", run)
    write_plots(out, run, chip, data)
    write_atomic(out / "report.json", json.dumps(data, indent=2) + "\n")
    text = report_text(data, run, chip) + _weights_text(model)
    if hidden is not None:
        text += (
            f"\nlook-ahead: {hidden} reference cycles ({hidden * 1e3 / chip.reference_mhz:.0f} ns)"
            " of supply-switch and bank wake-up latency hidden per frame (pmu.timing)"
        )
    if not run.failures():
        text += (
            "\nPASS: every layer and frame cycle-exact, energy within "
            f"{ENERGY_TOLERANCE * 100:g} %, deadlines met, no violations, bit-exact "
            f"({data['total_wall_s']:.1f} s; files in {out})"
        )
    energies_j: dict[str, float | None] | None = None
    if len(candidates) > 1:
        energies_j = {
            pol: plans[pol].schedule.energy_j if pol in plans else None for pol in candidates
        }
    return FlowReport(network, chip, fps, policy, energies_j, main_plan, run, base, out, data, text)


def _nominal_baseline(
    network: Network,
    chip: Chip,
    instances: dict[str, tuple[Problem, CostTable]],
    fps: float,
    request: FlowRequest,
    net_name: str,
    operands: Mapping[str, OpOperands] | None,
) -> tuple[CostTable, Plan] | str:
    """The nominal race-to-sleep schedule without gating, the saving's reference; or why it
    cannot meet the rate (an optimal schedule can run faster than nominal voltage allows)."""
    no_pg = GatingPolicy.NO_PG.value
    problem, table = instances.get(no_pg) or build_problem(
        network, chip, ProblemOptions(policy=GatingPolicy.NO_PG, operands=operands)
    )
    provenance = {"network": net_name, "chip": os.fspath(request.chip), "policy": no_pg}
    try:
        base = plan(
            table, problem, fps, request.rails, Method.NOMINAL.value, request.frames, provenance
        )
    except InfeasibleError as exc:
        return f"infeasible at {fps:g} FPS (its highest rate is {exc.max_rate_fps:.1f} FPS)"
    return table, base


def _model_case(model: Model, seed: int) -> Case | None:
    """The golden case of a model with its own weights; None: the flow draws random ones."""
    return model_case(model, seed) if model.quantised is not None else None


def _weights_report(model: Model) -> dict[str, Any]:
    """What the report says of the weights: the model's own, or generated (seeded random)."""
    data: dict[str, Any] = {"weights": model.weights}
    if model.quantised is not None and model.imported is not None:
        data["quantisation"] = model.quantised.scheme
        data["host_softmax"] = model.imported.host_softmax
        data["arithmetic_notes"] = list(model.quantised.notes)
    return data


def _weights_text(model: Model) -> str:
    if model.quantised is None or model.imported is None:
        return "\nweights: generated (seeded random int8)"
    text = f"\nweights: the model's own ({model.imported.graph.path.name}); scales: "
    text += model.quantised.scheme
    if model.imported.host_softmax:
        text += "\nthe model's final Softmax is left to the host (not run on the chip)"
    return text


def run_fixed_state(request: StateRequest) -> StateReport:
    """Run one inference at ``request.state_v`` on the RTL; compare every op's cycles and
    counters with the cost model and its output with the golden model."""
    progress = request.progress or SILENT
    model = load_model(request.network, seed=request.seed)
    network = model.network
    case = _model_case(model, request.seed)
    if case is not None and request.sparsity:
        raise FlowError(
            f"--sparsity zeroes random weights; {os.fspath(request.network)} brings its own"
        )
    chip = load_chip(request.chip)
    check_chip(chip, request.chip)
    require_rtl_support(network, request.network)
    progress.step(f"[1/2] Verilator model for {chip.name} (built once, cached)...")
    works = tuple(op_work(op, chip, network) for op in network.ops)
    build = accelerator_build(chip, sim_bank_counts(chip, plan_memory(network, chip, works)))
    progress.step(f"      built in {build.build_seconds:.1f} s" if build.built else "      cached")
    progress.step(f"[2/2] {network.name}: {len(network.ops)} ops on the RTL...")
    result = run_network(
        network,
        chip,
        request.state_v,
        seed=request.seed,
        sparsity=request.sparsity,
        case=case,
        verilator_build=build,
        progress=lambda done, total: progress.status(f"{done}/{total} ops done"),
    )
    data, table = _state_report(network, chip, result)
    data.update(_weights_report(model))
    speed = (
        f"{result.total_cycles:,} reference cycles in {result.sim_wall_s:.2f} s of simulation "
        f"({result.cycles_per_s / 1e3:,.0f} k cycles/s); {result.wall_s:.2f} s with loading"
    )
    verdict = (
        "PASS: every op cycle-exact, counters equal, outputs bit-exact"
        if data["passed"]
        else ("FAIL: see the rows marked NO or a non-zero diff")
    )
    state = ", ".join(f"{d.value} {v:.2f} V" for d, v in zip(DOMAINS, request.state_v, strict=True))
    weights = _weights_text(model)
    text = (
        f"{network.title} on {chip.name} RTL at {state}\n\n{table}\n\n{speed}{weights}\n{verdict}"
    )
    return StateReport(network, chip, result, data, text)


def _state_report(network: Network, chip: Chip, result: RunResult) -> tuple[dict[str, Any], str]:
    """The ``voltflow-cosim-state/1`` object and the per-op table."""
    rows: list[Sequence[object]] = []
    ops = []
    for op in result.ops:
        diff = activity_diff(op.measured, op.predicted)
        exact = {True: "yes", False: "NO", None: "-"}[op.bit_exact]
        rows.append(
            [
                op.name,
                op.mode.value,
                op.measured_cycles,
                op.predicted_cycles,
                op.measured_cycles - op.predicted_cycles,
                "yes" if not diff else "NO",
                exact,
            ]
        )
        ops.append(
            {
                "name": op.name,
                "mode": op.mode.value,
                "measured_cycles": op.measured_cycles,
                "predicted_cycles": op.predicted_cycles,
                "counters_match": not diff,
                "counter_differences": {k: list(v) for k, v in diff.items()},
                "bit_exact": op.bit_exact,
            }
        )
    measured = sum(op.measured_cycles for op in result.ops)
    predicted = sum(op.predicted_cycles for op in result.ops)
    footer = ["total", "", measured, predicted, measured - predicted, "", ""]
    table = format_table(
        ["op", "mode", "measured cycles", "predicted cycles", "diff", "counters", "bit-exact"],
        rows,
        footer,
    )
    data = {
        "format": "voltflow-cosim-state/1",
        "network": network.name,
        "chip": chip.name,
        "state_v": list(result.state_v),
        "increments": list(result.increments),
        "ops": ops,
        "counters": result.counters,
        "measured_cycles": measured,
        "predicted_cycles": predicted,
        "passed": result.passed,
        "sim_wall_s": result.sim_wall_s,
        "wall_s": result.wall_s,
        "cycles_per_s": result.cycles_per_s,
    }
    return data, table
