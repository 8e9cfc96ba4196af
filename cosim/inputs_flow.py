"""``voltflow cosim --inputs K``: one schedule, many inputs, each on the RTL (docs/sparsity.md,
"Many inputs on the RTL").

The schedule is solved once on a profile (the given ``--profile``, else the K inputs' own, made
by the golden model first): expected energy, the deadline on the chosen bound. Then every input
runs one period of that schedule's PMU program on the chip's one build (the runs go through the
executor: the local process pool, or a Dask cluster) and is checked against its own exact
prediction: every layer's cycles, the frame's energy, the output bit for bit. The report gives,
over the inputs, the latency, the slack and the energy against the schedule's expectation.
"""

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from voltflow.cosim.e2e import ENERGY_TOLERANCE, chip_build, default_rate, measure, plan
from voltflow.cosim.golden import Case, case_from_params
from voltflow.cosim.model_case import case_of
from voltflow.cosim.operands import case_operands
from voltflow.cosim.profile import load_inputs, measure_profile, random_inputs
from voltflow.cosim.sim_top import sim_bank_counts, uses_attention
from voltflow.pmu.compiler import check_period
from voltflow.pmu.limits import check_chip
from voltflow.scheduler.chip import Chip, GatingPolicy, Sparsity, load_chip
from voltflow.scheduler.cost import CostTable, build_cost_table
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.documents import write_atomic
from voltflow.scheduler.evaluate import evaluate
from voltflow.scheduler.executor import open_executor
from voltflow.scheduler.network import Network
from voltflow.scheduler.onnx_model import load_model
from voltflow.scheduler.problem import ProblemOptions, check_rails, problem_from_table
from voltflow.scheduler.profile import load_profile, parse_deadline_on, profile_table
from voltflow.scheduler.schedule import ScheduleFile
from voltflow.scheduler.texttable import format_table

__all__ = ["FORMAT", "InputRow", "InputsReport", "InputsRequest", "run_inputs_flow"]

FORMAT = "voltflow-cosim-inputs/1"
#: ``cosim --inputs``: an input's energy is "within" the expectation when within this share.
WITHIN = 0.01
#: Random inputs when neither a count nor a folder is given.
DEFAULT_INPUTS = 32


class InputsError(ValueError):
    """A request ``cosim --inputs`` cannot run."""


@dataclass(frozen=True, slots=True)
class InputsRequest:
    network: str | os.PathLike[str] = "ds_cnn"
    chip: str | os.PathLike[str] = "powerflow_ref_skip"
    inputs: int | None = None  # random inputs (default 32 when input_dir is None)
    input_dir: str | None = None
    profile: str | None = None  # voltflow-profile/1; None: profile the inputs themselves
    deadline_on: str = "worst"
    fps: float | None = None
    rails: int = 3
    method: str = "dp"
    policy: GatingPolicy = GatingPolicy.RRAM_PG
    seed: int = 0
    out_dir: str | os.PathLike[str] | None = None
    workers: int | None = None
    cluster: str | None = None
    progress: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class InputRow:
    """One input's period on the RTL."""

    name: str
    latency_s: float
    slack_s: float
    measured_j: float
    predicted_j: float  # this input's exact prediction
    expected_j: float  # the schedule's expectation
    layers: int
    layers_exact: int
    bit_exact: bool
    deadline_met: bool
    failures: tuple[str, ...]

    @property
    def prediction_error(self) -> float:
        return self.measured_j / self.predicted_j - 1.0

    @property
    def expectation_error(self) -> float:
        return self.measured_j / self.expected_j - 1.0


@dataclass(frozen=True, slots=True)
class InputsReport:
    rows: tuple[InputRow, ...]
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def _run_input(
    network: Network,
    bound: CostTable,
    schedule: ScheduleFile,
    case: Case,
    name: str,
    seed: int,
) -> InputRow:
    """One input, one period (a job of the executor)."""
    chip = bound.chip
    works = tuple(op_work(op, chip, network) for op in network.ops)
    exact = build_cost_table(
        network, chip, bound.policy, bound.levels_v, case_operands(case, chip, works)
    )
    run, _ = measure(network, exact, schedule, 1, seed, None, case=case, solved_on=bound)
    frame = run.frames[0]
    f_ref = chip.reference_mhz * 1e6
    # This input's exact frame energy: the schedule's states priced on its own table.
    states = [layer.state for layer in schedule.layers]
    problem = problem_from_table(exact, ProblemOptions(policy=bound.policy))
    predicted = evaluate(problem, states, schedule.period_s, schedule.rails).energy_j
    failures = []
    if run.error != "NONE":
        failures.append(f"the PMU stopped with error {run.error}")
    bad = [r for r in run.layers if not r.cycles_exact]
    if bad:
        failures.append(
            f"{len(bad)} layers not cycle-exact, first {bad[0].name}: measured "
            f"{bad[0].measured_cycles}, predicted {bad[0].predicted_cycles}"
        )
    if not run.timing_exact:
        failures.append("the LAUNCH or end cycles differ from pmu.timing's prediction")
    if abs(run.total.total_j / predicted - 1) > ENERGY_TOLERANCE:
        failures.append(
            f"energy {run.total.total_j * 1e6:.4f} uJ differs from its prediction "
            f"{predicted * 1e6:.4f} uJ by more than {ENERGY_TOLERANCE:.1%}"
        )
    return InputRow(
        name=name,
        latency_s=frame.latency_cycles / f_ref,
        slack_s=frame.slack_cycles / f_ref,
        measured_j=run.total.total_j,
        predicted_j=predicted,
        expected_j=schedule.energy_j,
        layers=len(run.layers),
        layers_exact=len(run.layers) - len(bad),
        bit_exact=frame.bit_exact,
        deadline_met=frame.deadline_met,
        failures=tuple(failures),
    )


def run_inputs_flow(request: InputsRequest) -> InputsReport:
    """Solve on the profile, run every input on the RTL, report (see the module)."""
    say = request.progress or (lambda text: None)
    model = load_model(request.network, seed=request.seed)
    network = model.network
    chip = load_chip(request.chip)
    check_chip(chip, request.chip)
    if chip.sparsity is Sparsity.NONE:
        raise InputsError(
            f"--inputs: chip {chip.name!r} has array.sparsity: none, so every input costs the "
            "same; use --hw powerflow_ref_gate or powerflow_ref_skip (or a chip with "
            "array.sparsity)"
        )
    check_rails(request.rails, chip)
    deadline = parse_deadline_on(request.deadline_on)
    if request.input_dir is not None:
        inputs = load_inputs(request.input_dir, network)
    else:
        inputs = random_inputs(
            network, 32 if request.inputs is None else request.inputs, request.seed
        )
    base = case_of(model, request.seed)
    if request.profile is not None:
        profile = load_profile(request.profile, network, chip)
        source = request.profile
    else:
        say(f"[1/4] profile: {len(inputs)} inputs through the golden model...")
        profile = measure_profile(network, chip, base, inputs)
        source = f"the {len(inputs)} inputs themselves"
    bound = profile_table(network, chip, profile, deadline[0], deadline[1], request.policy)
    problem = problem_from_table(bound, ProblemOptions(policy=request.policy))
    fps = request.fps if request.fps is not None else default_rate(bound)
    check_period(1.0 / fps, chip)
    say(
        f"[2/4] schedule: {network.name} at {fps:g} FPS, expected energy, deadline on "
        f"{request.deadline_on}..."
    )
    provenance = {
        "network": os.fspath(request.network),
        "chip": os.fspath(request.chip),
        "policy": request.policy.value,
        "profile": source,
        "deadline_on": request.deadline_on,
    }
    planned = plan(bound, problem, fps, request.rails, request.method, 1, provenance)
    out = Path(request.out_dir or f"build/cosim/{network.name}-inputs")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "schedule.json", json.dumps(planned.schedule_json, indent=2) + "\n")
    say(f"[3/4] Verilator build of {chip.name} (once, cached)...")
    chip_build(chip, sim_bank_counts(chip, bound.memory), attention=uses_attention(network))
    say(f"[4/4] {len(inputs)} inputs on the RTL, one period each...")
    cases = [
        (name, case_from_params(network, image, base.params, seed=base.seed))
        for name, image in inputs
    ]
    rows: dict[str, InputRow] = {}
    with open_executor(request.cluster, request.workers) as executor:
        futures = {
            executor.submit(
                _run_input, network, bound, planned.schedule, case, name, request.seed
            ): name
            for name, case in cases
        }
        for future in executor.as_completed(futures):
            row = future.result()
            rows[row.name] = row
            say(f"      {len(rows)}/{len(cases)} inputs done")
    ordered = tuple(rows[name] for name, _ in cases)
    data = _report(ordered, network, chip, fps, request, source, planned.schedule.energy_j)
    write_atomic(out / "report.json", json.dumps(data, indent=2) + "\n")
    _write_csv(out / "inputs.csv", ordered)
    return InputsReport(ordered, data, _text(data, ordered, out))


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}


def _report(
    rows: Sequence[InputRow],
    network: Network,
    chip: Chip,
    fps: float,
    request: InputsRequest,
    source: str,
    expected_j: float,
) -> dict[str, Any]:
    errors = [r.expectation_error for r in rows]
    failures = []
    for r in rows:
        if r.failures or not r.bit_exact:
            failures.append(f"{r.name}: {'; '.join(r.failures) or 'output not bit-exact'}")
    misses = sum(not r.deadline_met for r in rows)
    if misses and request.deadline_on in ("worst", "dense"):
        failures.append(f"{misses} deadline misses with the deadline on {request.deadline_on}")
    layers = sum(r.layers for r in rows)
    return {
        "format": FORMAT,
        "network": network.name,
        "chip": chip.name,
        "sparsity": chip.sparsity.value,
        "fps": fps,
        "period_s": 1.0 / fps,
        "profile": source,
        "deadline_on": request.deadline_on,
        "inputs": len(rows),
        "expected_energy_j": expected_j,
        "latency_s": _stats([r.latency_s for r in rows]),
        "slack_s": _stats([r.slack_s for r in rows]),
        "energy_j": _stats([r.measured_j for r in rows]),
        "expectation_error": {
            "mean": float(np.mean(errors)),
            "mean_abs": float(np.mean(np.abs(errors))),
            "worst": float(max(errors, key=abs)),
            "within_1pct": float(np.mean(np.abs(errors) <= WITHIN)),
        },
        "prediction_error_worst": float(max((r.prediction_error for r in rows), key=abs)),
        "layers_cycle_exact": sum(r.layers_exact for r in rows) / layers,
        "deadline_misses": misses,
        "failures": failures,
        "rows": [
            {
                "input": r.name,
                "latency_s": r.latency_s,
                "slack_s": r.slack_s,
                "measured_j": r.measured_j,
                "predicted_j": r.predicted_j,
                "expectation_error": r.expectation_error,
                "layers_exact": r.layers_exact,
                "layers": r.layers,
                "bit_exact": r.bit_exact,
                "deadline_met": r.deadline_met,
            }
            for r in rows
        ],
    }


def _write_csv(path: Path, rows: Sequence[InputRow]) -> None:
    lines = [
        "input,latency_s,slack_s,measured_j,predicted_j,expected_j,layers_exact,layers,"
        "bit_exact,deadline_met"
    ]
    for r in rows:
        lines.append(
            f"{r.name},{r.latency_s:.9g},{r.slack_s:.9g},{r.measured_j:.9g},{r.predicted_j:.9g},"
            f"{r.expected_j:.9g},{r.layers_exact},{r.layers},{int(r.bit_exact)},"
            f"{int(r.deadline_met)}"
        )
    write_atomic(path, "\n".join(lines) + "\n")


def _text(data: dict[str, Any], rows: Sequence[InputRow], out: Path) -> str:
    table = format_table(
        [
            "input",
            "latency us",
            "slack us",
            "energy uJ",
            "vs exact",
            "vs expected",
            "layers exact",
            "deadline",
        ],
        [
            [
                r.name,
                f"{r.latency_s * 1e6:.2f}",
                f"{r.slack_s * 1e6:.2f}",
                f"{r.measured_j * 1e6:.4f}",
                f"{r.prediction_error:+.4%}",
                f"{r.expectation_error:+.3%}",
                f"{r.layers_exact}/{r.layers}",
                "met" if r.deadline_met else "MISSED",
            ]
            for r in rows
        ],
    )
    err = data["expectation_error"]
    lat, e = data["latency_s"], data["energy_j"]
    lines = [
        f"{data['network']} on {data['chip']} (array.sparsity {data['sparsity']}): "
        f"{data['inputs']} inputs at {data['fps']:g} FPS, one period each on the RTL",
        f"schedule: expected energy over {data['profile']}, deadline on {data['deadline_on']}: "
        f"{data['expected_energy_j'] * 1e6:.4f} uJ per frame",
        "",
        table,
        "",
        f"latency: mean {lat['mean'] * 1e6:.2f} us, min {lat['min'] * 1e6:.2f}, max "
        f"{lat['max'] * 1e6:.2f} (period {data['period_s'] * 1e6:.2f} us); deadline misses: "
        f"{data['deadline_misses']}",
        f"energy: mean {e['mean'] * 1e6:.4f} uJ, min {e['min'] * 1e6:.4f}, max "
        f"{e['max'] * 1e6:.4f}; against the expectation: mean {err['mean']:+.3%}, worst "
        f"{err['worst']:+.3%}, {err['within_1pct']:.0%} within +-1 %",
        f"each input against its exact prediction: {data['layers_cycle_exact']:.1%} of layers "
        f"cycle-exact, worst energy {data['prediction_error_worst']:+.4%} (tolerance "
        f"{ENERGY_TOLERANCE:.1%})",
    ]
    if data["failures"]:
        lines += ["", "FAIL:", *(f"  {f}" for f in data["failures"])]
    else:
        lines.append(
            f"PASS: every input cycle-exact, bit-exact and within its prediction; files in {out}"
        )
    return "\n".join(lines)
