"""Intermittent inference end to end: schedule -> compile -> RTL with power cycles -> energy.

:func:`run_intermittent_flow` solves the network's intermittent schedule for the chip file's
capacitor and a harvest (``scheduler.intermittent_dp``), compiles it into a PMU program with
checkpoints (``pmu.intermittent_compiler``), runs it on the chip's intermittent Verilator build
through every power cycle (optionally with supply failures injected at random points), prices
each power-up's counters with the co-simulation's own energy model and compares it with the
schedule's prediction for that power cycle, then replays the measured energies through the
capacitor and the harvest (the timeline). ``voltflow cosim --intermittent`` wraps it.
"""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voltflow.cosim.e2e import chip_build
from voltflow.cosim.flow import SILENT, FlowError, FlowProgress, require_rtl_support
from voltflow.cosim.intermittent_analysis import ENERGY_TOLERANCE, PowerUp, analyse_power_ups
from voltflow.cosim.intermittent_report import (
    capacitor_timeline,
    report_json,
    report_text,
    write_csv,
    write_timeline_plot,
)
from voltflow.cosim.model_case import model_case
from voltflow.cosim.pmu_run import PmuRunResult, run_program
from voltflow.cosim.sim_top import sim_bank_counts, uses_attention
from voltflow.pmu.intermittent_compiler import IntermittentProgram, compile_intermittent
from voltflow.pmu.limits import check_chip
from voltflow.pmu.rom import write_hex, write_listing
from voltflow.pmu.store import newest
from voltflow.scheduler.chip import DOMAINS, Chip, GatingPolicy, load_chip
from voltflow.scheduler.cost import CostTable, build_cost_table
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.intermittent import (
    Checkpointing,
    IntermittentProblem,
    Objective,
    intermittent_problem,
    require_intermittent,
)
from voltflow.scheduler.intermittent_dp import (
    IntermittentInfeasibleError,
    IntermittentResult,
    solve_intermittent,
)
from voltflow.scheduler.intermittent_report import intermittent_json
from voltflow.scheduler.network import Network
from voltflow.scheduler.onnx_model import load_model
from voltflow.scheduler.problem import check_rails
from voltflow.scheduler.supply import Harvest

__all__ = ["IntermittentReport", "IntermittentRequest", "run_intermittent_flow"]

#: What a run writes into its folder (removed first, so a folder never mixes two runs).
RUN_FILES = (
    "report.json",
    "power_cycles.csv",
    "capacitor.png",
    "schedule.json",
    "rom.hex",
    "rom.lst",
)


@dataclass(frozen=True, slots=True)
class IntermittentRequest:
    """What to run.

    Parameters
    ----------
    network, chip : str or path-like
        Zoo network or network file; chip name or chip file (with an ``intermittent`` section).
    harvest : Harvest
        The harvested power (constant or a trace).
    objective : Objective
        What the schedule minimises.
    checkpoints : Checkpointing
        ``optimal`` (the solver's), ``every-layer`` or ``battery`` (the baselines).
    policy : GatingPolicy or None
        Bank power gating; None (``--policy auto``): the best schedule over the chip's policies.
    rails : int
        Distinct supply voltages.
    seed : int
        Random weights and input.
    inject_failures : int
        Supply failures at random points of the run (``pmu.timing.random_failures``).
    failure_seed : int
        Their seed.
    out_dir : path-like or None
        Where the files go; None: ``build/cosim/<net>-intermittent``.
    """

    network: str | os.PathLike[str] = "ds_cnn"
    chip: str | os.PathLike[str] = "powerflow_ref"
    harvest: Harvest = field(default_factory=lambda: Harvest.constant(1e-3))
    objective: Objective = Objective.LATENCY
    checkpoints: Checkpointing = Checkpointing.OPTIMAL
    policy: GatingPolicy | None = GatingPolicy.RRAM_PG
    rails: int = 3
    seed: int = 0
    inject_failures: int = 0
    failure_seed: int = 0
    out_dir: str | os.PathLike[str] | None = None
    progress: FlowProgress | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class IntermittentReport:
    """The outcome: ``data`` is the ``voltflow-cosim-intermittent/1`` object (report.json),
    ``text`` the terminal report; ``failures`` why the run does not match (empty: it passes)."""

    network: Network
    chip: Chip
    table: CostTable
    problem: IntermittentProblem
    schedule: IntermittentResult
    program: IntermittentProgram
    run: PmuRunResult
    power_ups: list[PowerUp]
    out_dir: Path
    data: dict[str, Any]
    text: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_intermittent_flow(request: IntermittentRequest) -> IntermittentReport:
    """Schedule, compile, run through the power cycles on the RTL, price, compare, report.

    Raises
    ------
    FlowError
        The chip has no intermittent section, the network has ops the RTL cannot run, or
        ``inject_failures`` is negative.
    IntermittentInfeasibleError
        No schedule of the chosen kind fits one charge (the message names what would).
    """
    wall = time.perf_counter()
    progress = request.progress or SILENT
    model = load_model(request.network, seed=request.seed)
    network = model.network
    chip = load_chip(request.chip)
    check_chip(chip, request.chip)
    require_rtl_support(network, request.network)
    require_intermittent(chip, request.chip)
    if request.inject_failures < 0:
        raise FlowError(f"--inject-failures must be 0 or more, not {request.inject_failures}")
    check_rails(request.rails, chip)
    out = Path(request.out_dir or f"build/cosim/{network.name}-intermittent")
    if out.is_file():
        raise FlowError(f"--out-dir {out}: is a file; give a folder")
    progress.step(
        f"[1/5] schedule: {network.name}, intermittent ({request.checkpoints.value} checkpoints, "
        f"{request.objective.value}), {request.harvest.describe()}..."
    )
    policies = list(chip.gating_policies) if request.policy is None else [request.policy]
    solved: dict[GatingPolicy, tuple[IntermittentResult, IntermittentProblem, CostTable]] = {}
    closest: IntermittentInfeasibleError | None = None
    for pol in policies:
        table = build_cost_table(network, chip, pol)
        problem = intermittent_problem(table, rails=request.rails)
        try:
            found = solve_intermittent(
                problem, request.harvest, request.objective, request.checkpoints
            )
            solved[pol] = (found, problem, table)
        except IntermittentInfeasibleError as exc:  # --policy auto: report the closest to fit
            if closest is None or exc.needed_j < closest.needed_j:
                closest = exc
    if not solved:
        assert closest is not None
        raise closest
    policy = min(solved, key=lambda p: solved[p][0].value)
    schedule, problem, table = solved[policy]
    if len(policies) > 1:
        progress.step(f"      policy auto: {policy.value}")
    cycles = len(schedule.evaluation.cycles)
    progress.step(
        f"      {cycles} power cycle{'s' * (cycles != 1)}, solved in {schedule.solve_time_s:.3f} s"
    )
    counts = sim_bank_counts(chip, table.memory)
    program = compile_intermittent(table, schedule.states, schedule.checkpoint_after, counts)
    out.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    schedule_data = intermittent_json(
        schedule,
        problem,
        request.harvest,
        domains=[d.value for d in DOMAINS],
        checkpoints=program.checkpoints,
        baselines=[],
        provenance={"network": os.fspath(request.network), "chip": os.fspath(request.chip),
                    "policy": policy.value},
    )  # fmt: skip
    write_atomic(out / "schedule.json", json.dumps(schedule_data, indent=2) + "\n")
    words = program.program.words
    progress.step(f"[2/5] compile: {len(words)} PMU commands -> {out}/rom.hex")
    write_hex(out / "rom.hex", words)
    write_listing(out / "rom.lst", program.program.listing())
    progress.step(f"[3/5] Verilator build of {chip.name} with the checkpoint store (cached)...")
    built = chip_build(chip, counts, attention=uses_attention(network), store=True)
    progress.step(f"      built in {built.build_seconds:.1f} s" if built.built else "      cached")
    failures_text = (
        f", {request.inject_failures} supply failures injected (seed {request.failure_seed})"
        if request.inject_failures
        else ""
    )
    progress.step(f"[4/5] run: every power cycle on the RTL{failures_text}...")

    def launched(done: int, total: int, cycle: int) -> None:
        progress.status(f"{done}/{total} launches over all power-ups, {cycle / 1e6:.1f} M cycles")

    run = run_program(
        network,
        chip,
        words,
        seed=request.seed,
        case=model_case(model, request.seed) if model.quantised is not None else None,
        verilator_build=built,
        progress=launched,
        intermittent=True,
        random_failure_count=request.inject_failures,
        failure_seed=request.failure_seed,
    )
    progress.step("[5/5] energy per power cycle, capacitor timeline, report...")
    ups = analyse_power_ups(run, chip, table, program)
    timeline = capacitor_timeline(ups, chip, request.harvest)
    failures = _failures(run, ups, schedule, program, timeline)
    head = {
        "network": network.name,
        "title": network.title,
        "chip": chip.name,
        "policy": policy.value,
        "rails": request.rails,
        "objective": request.objective.value,
        "checkpoints": request.checkpoints.value,
        "harvest": request.harvest.describe(),
        "seed": request.seed,
        "inject_failures": request.inject_failures,
        "failure_seed": request.failure_seed,
        "out_dir": str(out),
        "build": {"key": built.key, "built": built.built, "build_seconds": built.build_seconds},
    }
    data = report_json(head, schedule, problem, program, run, ups, timeline, chip, failures)
    data["total_wall_s"] = time.perf_counter() - wall
    write_csv(out / "power_cycles.csv", data)
    write_timeline_plot(out / "capacitor.png", data, chip)
    write_atomic(out / "report.json", json.dumps(data, indent=2) + "\n")
    text = report_text(data)
    if not failures:
        text += (
            f"\nPASS: every power-up cycle-exact (pmu.timing), every power cycle's energy within "
            f"{ENERGY_TOLERANCE * 100:g} % of the schedule's and within one charge, output "
            f"bit-exact and committed ({data['total_wall_s']:.1f} s; files in {out})"
        )
    return IntermittentReport(
        network, chip, table, problem, schedule, program, run, ups, out, data, text, failures
    )


def _failures(
    run: PmuRunResult,
    ups: list[PowerUp],
    schedule: IntermittentResult,
    program: IntermittentProgram,
    timeline: dict[str, Any],
) -> list[str]:
    """Why the run does not match (empty: it passes)."""
    out = []
    if run.error.name != "NONE" or run.halt_code != 0:
        out.append(f"the PMU stopped with error {run.error.name} (halt code {run.halt_code})")
    if not run.timing_exact or not all(up.exact for up in ups):
        bad = [up.index for up in ups if not up.exact]
        out.append(f"power-ups {bad or '(LAUNCH stamps)'} differ from pmu.timing's cycles")
    if not run.bit_exact:
        out.append("the output is not bit-exact")
    committed = newest(run.store[:2])
    last = program.cycles[-1].commits
    if last is not None and (committed is None or committed[1].boundary != last):
        out.append("the store does not end with the output committed")
    charge = timeline["charge_j"]
    for up in ups:
        if up.end == "failed" or up.cycle is None:
            continue
        predicted = schedule.evaluation.cycles[up.cycle]
        expected = predicted.energy_j - predicted.leakage_j
        diff = up.measured.total_j / expected - 1
        if abs(diff) > ENERGY_TOLERANCE:
            out.append(
                f"power cycle {up.cycle} (power-up {up.index}): measured "
                f"{up.measured.total_j * 1e6:.4f} uJ, predicted {expected * 1e6:.4f} uJ "
                f"({diff:+.4%}; tolerance {ENERGY_TOLERANCE:.1%})"
            )
        drawn = timeline["power_ups"][up.index]["drawn_j"]
        if drawn > charge * (1 + 1e-9):
            out.append(
                f"power cycle {up.cycle} drew {drawn * 1e6:.4f} uJ, more than one charge "
                f"({charge * 1e6:.4f} uJ): the capacitor would brown out and the cycle never end"
            )
    return out
