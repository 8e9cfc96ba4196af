"""`python -m bench.figures --quick` regenerates every figure, CSV and headline file anew."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    "fig1_squeezenet_rate",
    "fig2_networks",
    "fig3_rails",
    "fig4_solver_time",
    "fig5_transition",
    "fig6_breakdown",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_quick_run_writes_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.figures", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in FIGURES:
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, png
        assert png.stat().st_size > 10_000, png
    csvs = sorted(tmp_path.glob("*.csv"))
    assert {p.stem for p in csvs} == set(FIGURES) | {"fig6_saving", "sweep_all_networks"}
    for path in csvs:
        with path.open() as f:
            rows = list(csv.DictReader(f))
        assert rows, f"{path.name} has no rows"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quick"] is True
    # The exact DP and CBC's proven optimum agree on every instance the quick run solves.
    assert summary["dp_vs_ilp"]
    assert summary["dp_vs_ilp_max_relative_difference"] < 1e-9
    # Energy never grows from the nominal baseline to the exact solver on the gated chip.
    for name, net in summary["networks"].items():
        saving = net["nominal_max_rate"]["saving_vs_nominal"]
        assert saving["dp"] >= saving["gating-greedy"] - 1e-12, name
    results = (tmp_path / "results.md").read_text()
    assert results.startswith("## Results")
    assert "RTL-validated points" in results


def test_a_malformed_cluster_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.figures.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["--quick", "--cluster", "localhost:8786"])
    assert stop.value.code == 2
    assert "argument --cluster: --cluster must be 'local' or" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_on_a_local_cluster_writes_the_pools_numbers(tmp_path: Path) -> None:
    """`--cluster local`: every CSV has the process pool's rows, but for the measured times."""
    outs = {}
    for name, flags in (("pool", []), ("cluster", ["--cluster", "local"])):
        outs[name] = tmp_path / name
        done = subprocess.run(
            [sys.executable, "-m", "bench.figures", "--quick", "--out", str(outs[name]), *flags],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    assert "figures: jobs on Dask LocalCluster" in done.stderr
    for path in sorted(outs["pool"].glob("*.csv")):
        rows = {}
        for name in outs:
            with (outs[name] / path.name).open() as f:
                table = list(csv.DictReader(f))
            timed = {k for k in table[0] if k.endswith("_s") or k == "pruning_speedup"}
            rows[name] = sorted(
                sorted((k, v) for k, v in row.items() if k not in timed) for row in table
            )
        assert rows["pool"] == rows["cluster"], path.name
