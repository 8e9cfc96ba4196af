"""`voltflow cosim --intermittent` end to end: the schedule run through its power cycles on the
chip's RTL, every power cycle's measured energy against the schedule's, and supply failures by
the hundred (CI) and the thousand (slow set) at random points: outputs wrong 0, corrupt resume
states 0 (a resume from a torn checkpoint would show as a cycle or output mismatch)."""

import json
from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.intermittent_flow import IntermittentRequest, run_intermittent_flow
from voltflow.scheduler.intermittent import Checkpointing
from voltflow.scheduler.supply import Harvest

from tests.cosim.test_intermittent_rtl import NETWORK, SMALL_CHIP, STORE
from voltflow.cli import main

pytestmark = pytest.mark.cosim


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("intermittent_flow")
    chip = folder / "chip_small_store.yaml"
    chip.write_text(SMALL_CHIP.read_text() + STORE)
    network = folder / "tiny_intermittent.yaml"
    network.write_text(NETWORK)
    return network, chip


def _run(files, tmp_path: Path, rule: Checkpointing, failures: int, seed: int = 0):  # type: ignore[no-untyped-def]
    network, chip = files
    return run_intermittent_flow(
        IntermittentRequest(
            network=network,
            chip=chip,
            harvest=Harvest.constant(50e-6),
            checkpoints=rule,
            inject_failures=failures,
            failure_seed=seed,
            out_dir=tmp_path / "out",
        )
    )


def test_every_power_cycle_matches_its_prediction(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = _run(files, tmp_path, Checkpointing.EVERY_LAYER, 0)
    assert report.passed, report.failures
    data = json.loads((report.out_dir / "report.json").read_text())
    assert data["format"] == "voltflow-cosim-intermittent/1" and data["passed"]
    ups = data["power_ups"]
    assert len(ups) == data["schedule"]["power_cycles"] == 3
    for up in ups:
        assert up["exact"] and up["end"] in ("off", "done")
        assert abs(up["difference"]) < 1e-4  # the cost model prices what the RTL does
        assert up["drawn_j"] <= data["timeline"]["charge_j"]
    # The measured energies through the capacitor give the schedule's latency (the scheduler
    # counts no single command ticks: a few nanoseconds per power cycle).
    assert data["timeline"]["latency_s"] == pytest.approx(data["schedule"]["latency_s"], rel=1e-4)
    for name in ("power_cycles.csv", "capacitor.png", "schedule.json", "rom.hex", "rom.lst"):
        assert (report.out_dir / name).stat().st_size > 0
    assert len((report.out_dir / "power_cycles.csv").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    "failures", [pytest.param(300, id="300"), pytest.param(3000, id="3000", marks=pytest.mark.slow)]
)
def test_random_power_failures_never_corrupt_the_result(files, tmp_path: Path, failures) -> None:  # type: ignore[no-untyped-def]
    """Failures anywhere (boots, restores, layers, checkpoints): the output stays bit-exact and
    committed, every power-up (failed ones included) ends at the cycle the PMU model predicts
    for those failure points, and so the work redone is the model's."""
    report = _run(files, tmp_path, Checkpointing.EVERY_LAYER, failures, seed=failures)
    assert report.passed, report.failures
    data = report.data
    assert data["failures_happened"] == failures
    assert data["re_executed_cycles"] == data["re_executed_cycles_predicted"] > 0
    phases = {up["phase"] for up in data["power_ups"] if up["end"] == "failed"}
    assert {"boot", "restore", "layer", "checkpoint"} <= phases
    # The completed power cycles still cost what the schedule says.
    assert all(abs(up["difference"]) < 1e-4 for up in data["power_ups"] if "difference" in up)


def test_the_cli_runs_the_flow_and_writes_the_report(files, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    network, chip = files
    out = tmp_path / "cli"
    code = main(
        [
            "cosim", "--net", str(network), "--hw", str(chip), "--intermittent", "--harvest-uw",
            "50", "--checkpoints", "every-layer", "--inject-failures", "5", "--seed", "2",
            "--out-dir", str(out), "--json",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["passed"] and data["failures_happened"] == 5
    assert json.loads((out / "report.json").read_text())["power_ups"] == data["power_ups"]


def test_a_harvest_trace_drives_the_timeline(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A piecewise harvest: the recharges follow the trace, as the scheduler's do."""
    network, chip = files
    trace = Harvest(np.array([0.0, 0.05, 0.2]), np.array([20e-6, 200e-6, 50e-6]), "trace")
    report = run_intermittent_flow(
        IntermittentRequest(
            network=network,
            chip=chip,
            harvest=trace,
            checkpoints=Checkpointing.EVERY_LAYER,
            out_dir=tmp_path / "trace",
        )
    )
    assert report.passed, report.failures
    timeline = report.data["timeline"]
    assert timeline["latency_s"] == pytest.approx(report.data["schedule"]["latency_s"], rel=1e-4)
    # Each recharge delivers what the power-up drew, at the trace's power at the time.
    for row in timeline["power_ups"]:
        assert row["recharged_s"] > row["start_s"] + row["on_s"]
