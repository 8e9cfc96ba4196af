"""`voltflow cosim --net N --fps F` (the end-to-end flow through the command line) on the small
chip: a failed check is exit status 1 with the reason; `make figures`' RTL points. The flow itself
is tested from Python in test_flow.py."""

from pathlib import Path

import pytest
from voltflow.cosim import e2e

from voltflow.cli import main

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"


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
    # Every zoo network runs on the RTL (attention included); none is skipped.
    assert {"ds_cnn", "mobilevit_xxs"} <= set(runnable) and skipped == {}
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
    table = "\n".join(markdown(rows, {"generic": "a generic matmul"}, 1))
    assert (
        "| ds_cnn | 1000 | sleep |" in table and "| generic | - | - | not run: a generic" in table
    )
