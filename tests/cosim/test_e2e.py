"""The end-to-end flow (`voltflow cosim --net N --fps F`) on the small chip: schedule, compile,
two periodic frames on the RTL, counters -> energy; exact cycles, energy within 0.1 %, no
violations, bit-exact, files written; one rate that sleeps and one that stays on."""

import json
from pathlib import Path

import pytest
from voltflow.cosim import e2e

from voltflow.cli import main

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"


@pytest.mark.cosim
@pytest.mark.parametrize(
    ("net", "fps", "mode"),
    [
        ("ds_cnn", 1000, "sleep"),
        ("ds_cnn", 2600, "stay-on"),
        ("resnet8", 600, "sleep"),
        ("resnet8", 1700, "stay-on"),
    ],
)
def test_end_to_end_flow_matches_prediction(
    net: str, fps: int, mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["cosim", "--net", net, "--hw", str(SMALL_CHIP), "--fps", str(fps), "--frames", "2"]
    status = main([*argv, "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "PASS" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["slack_mode"] == mode
    assert len(report["frames"]) == 2
    for layer in report["layers"]:
        assert layer["measured_cycles"] == layer["predicted_cycles"] == layer["timing_cycles"]
    assert abs(report["totals"]["difference"]) <= 1e-3
    for frame in report["frames"]:
        assert frame["deadline_met"] and frame["bit_exact"] and frame["violations"] == 0
    assert report["baseline"]["saving_measured"] > 0
    for name in ("schedule.json", "rom.hex", "rom.lst", "layers.csv", "timeline.png", "energy.png"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.cosim
def test_an_energy_mismatch_fails_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(e2e, "ENERGY_TOLERANCE", -1.0)  # nothing can be within it
    argv = ["cosim", "--net", "ds_cnn", "--hw", str(SMALL_CHIP), "--fps", "1000", "--frames", "1"]
    status = main([*argv, "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1
    assert "FAIL: energy differs by" in err


@pytest.mark.cosim
def test_rtl_points_table_and_figure(tmp_path: Path) -> None:
    """`make figures`' figure 7: a real `voltflow cosim` run per network, tabulated and plotted."""
    from bench.rtl_points import markdown, plot_fig7, rtl_networks, run_points

    runnable, skipped = rtl_networks()
    assert "ds_cnn" in runnable and "mobilevit_xxs" in skipped
    steps: list[str] = []
    rows = run_points(
        ["ds_cnn"], tmp_path, 1, steps.append, ("--hw", str(SMALL_CHIP), "--fps", "1000")
    )
    (row,) = rows
    assert row["passed"] and row["bit_exact"] and row["deadlines_met"]
    assert row["layers_cycle_exact"] == row["layers"] > 0
    assert row["saving_measured"] > 0
    assert steps and "pass" in steps[0]
    plot_fig7(rows, skipped, tmp_path)
    assert (tmp_path / "fig7_rtl_validation.png").stat().st_size > 10_000
    table = "\n".join(markdown(rows, skipped, 1))
    assert "| ds_cnn | 1000 | sleep |" in table and "mobilevit_xxs" in table


@pytest.mark.slow
@pytest.mark.cosim
def test_a_network_needing_more_ofmap_banks_runs_on_its_size_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SqueezeNet 1.0 needs 12 ofmap banks, more than the default build's 6: it runs on the
    16-ofmap build with every bank mask placed kind by kind (reference chip, one frame)."""
    from voltflow.cosim.sim_top import default_bank_counts, sim_bank_counts
    from voltflow.scheduler.chip import BankKind, load_chip
    from voltflow.scheduler.network import load_network
    from voltflow.scheduler.problem import build_problem

    chip = load_chip()
    _, table = build_problem(load_network("squeezenet1_0"), chip)
    counts = sim_bank_counts(chip, table.memory)
    assert counts[BankKind.OFMAP] == 16 > default_bank_counts(chip)[BankKind.OFMAP]
    status = main(["cosim", "--net", "squeezenet1_0", "--frames", "1", "--out-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] and report["frames"][0]["violations"] == 0


@pytest.mark.cosim
def test_policy_auto_runs_the_least_energy_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["cosim", "--net", "ds_cnn", "--hw", str(SMALL_CHIP), "--fps", "1000", "--frames", "1"]
    status = main([*argv, "--policy", "auto", "--out-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "policy auto: " in captured.err
    report = json.loads((tmp_path / "report.json").read_text())
    energies = {}
    for line in captured.err.splitlines():
        if "policy auto: " in line:
            for part in line.split("(", 1)[1].rstrip(")").split(", "):
                name, value, _ = part.split()
                energies[name] = float(value)
    assert report["policy"] == min(energies, key=energies.__getitem__)
    assert report["passed"]
