"""`voltflow cosim --inputs K` on the RTL (docs/sparsity.md, "Many inputs on the RTL"): one schedule
solved on the inputs' profile, every input one period on the reduced chip with skipping, each
cycle-exact, bit-exact and within its exact energy prediction, no deadline missed on the worst
bound."""

import json
from pathlib import Path

import pytest

from voltflow.cli import main

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"

pytestmark = pytest.mark.cosim


@pytest.fixture(scope="module")
def skip_chip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chip") / "chip_small_skip.yaml"
    path.write_text(f"extends: {SMALL_CHIP}\nname: chip_small_skip\narray: {{sparsity: skip}}\n")
    return path


@pytest.mark.parametrize("deadline", ["worst", pytest.param("p50", marks=pytest.mark.slow)])
def test_many_inputs_on_the_rtl(
    deadline: str, skip_chip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "cosim", "--net", "ds_cnn", "--hw", str(skip_chip), "--inputs", "3", "--seed", "4",
        "--deadline-on", deadline, "--workers", "2", "--out-dir", str(out), "--json",
    ]  # fmt: skip
    status = main(argv)
    data = json.loads(capsys.readouterr().out)
    assert status == 0, data["failures"]
    assert data["format"] == "voltflow-cosim-inputs/1"
    assert (data["inputs"], data["deadline_on"], data["layers_cycle_exact"]) == (3, deadline, 1.0)
    assert abs(data["prediction_error_worst"]) < 1e-3
    assert all(row["bit_exact"] for row in data["rows"])
    # The inputs differ, and so do their cycles and energies.
    assert len({row["measured_j"] for row in data["rows"]}) == 3
    if deadline == "worst":
        assert data["deadline_misses"] == 0
    assert (out / "inputs.csv").read_text().count("\n") == 4
    schedule = json.loads((out / "schedule.json").read_text())
    assert schedule["provenance"]["deadline_on"] == deadline
