"""`voltflow schedule --intermittent`: the report against the library, the written file, the
trace flag and the policies."""

import json
from pathlib import Path

import pytest
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.cost import build_cost_table
from voltflow.scheduler.intermittent import intermittent_problem
from voltflow.scheduler.intermittent_evaluate import evaluate_intermittent
from voltflow.scheduler.network import load_network
from voltflow.scheduler.supply import Harvest

from voltflow.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_report_matches_an_independent_evaluation(capsys) -> None:
    code, out, _ = run(
        capsys, "schedule", "--net", "squeezenet", "--intermittent", "--harvest-uw", "1000",
        "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["format"] == "voltflow-intermittent/1"
    assert report["status"] == "proven-optimal" and report["objective"] == "latency"
    layers = report["layers"]
    assert len(layers) == 26
    problem = intermittent_problem(build_cost_table(load_network("squeezenet"), load_chip()))
    states = [layer["state"] for layer in layers]
    cuts = [layer["checkpoint_after"] for layer in layers[:-1]]
    judged = evaluate_intermittent(problem, Harvest.constant(1e-3), states, cuts)
    totals = report["totals"]
    assert totals["power_cycles"] == len(judged.cycles) == len(report["cycles"]) >= 3
    assert totals["latency_s"] == pytest.approx(judged.latency_s, rel=1e-12)
    assert totals["energy_j"] == pytest.approx(judged.energy_j, rel=1e-12)
    parts = ("compute_j", "switch_j", "checkpoint_j", "restore_j", "boot_j", "leakage_j")
    assert sum(totals[p] for p in parts) == pytest.approx(totals["energy_j"], rel=1e-12)
    assert totals["on_time_s"] + totals["recharge_s"] == pytest.approx(totals["latency_s"])
    assert all(c["energy_j"] <= report["capacitor"]["charge_j"] for c in report["cycles"])
    saved = [layer for layer in layers if layer["checkpoint_after"]]
    assert len(saved) == totals["power_cycles"] - 1
    assert all(layer["checkpoint_tensors"] and layer["checkpoint_bits"] > 0 for layer in saved)
    names = {b["name"]: b for b in report["baselines"]}
    assert names["every-layer"]["feasible"] is False
    assert names["every-layer"]["needed_capacitance_f"] > report["capacitor"]["capacitance_f"]
    assert names["battery"]["feasible"] is False


def test_table_and_written_file(capsys, tmp_path: Path) -> None:
    target = tmp_path / "i.json"
    code, out, _ = run(
        capsys, "schedule", "--net", "ds_cnn", "--intermittent", "--harvest-uw", "100",
        "--objective", "energy", "-o", str(target),
    )  # fmt: skip
    assert code == 0
    assert "1 power cycles per inference" in out
    assert "latency" in out and "recharging" in out and "checkpoint" in out
    assert "every-layer" in out and "battery" in out
    assert f"schedule written to {target}" in out
    written = json.loads(target.read_text())
    assert written["objective"] == "energy" and written["totals"]["power_cycles"] == 1
    every = next(b for b in written["baselines"] if b["name"] == "every-layer")
    assert every["feasible"] and every["power_cycles"] == 10 and every["objective_ratio"] > 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_harvest_trace_delays_the_recharge(capsys, tmp_path: Path) -> None:
    trace = tmp_path / "h.csv"
    # 100 uW for 1 s, then 1 mW: SqueezeNet's first recharge waits for the stronger harvest.
    trace.write_text("time_s,power_w\n0,0.0001\n1,0.001\n")
    code, out, _ = run(
        capsys, "schedule", "--net", "squeezenet", "--intermittent", "--harvest-trace",
        str(trace), "--json", "--no-baselines",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["harvest"]["kind"] == "trace" and report["harvest"]["rows"] == 2
    assert report["baselines"] == []
    constant = json.loads(
        run(capsys, "schedule", "--net", "squeezenet", "--intermittent", "--harvest-uw", "1000",
            "--json", "--no-baselines")[1]
    )  # fmt: skip
    slow = json.loads(
        run(capsys, "schedule", "--net", "squeezenet", "--intermittent", "--harvest-uw", "100",
            "--json", "--no-baselines")[1]
    )  # fmt: skip
    lat = report["totals"]["latency_s"]
    assert constant["totals"]["latency_s"] < lat < slow["totals"]["latency_s"]


def test_policy_auto_keeps_the_best_objective(capsys) -> None:
    code, out, _ = run(
        capsys, "schedule", "--net", "ds_cnn", "--intermittent", "--harvest-uw", "500",
        "--policy", "auto", "--json", "--no-baselines",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    values = report["policy_auto"]
    assert set(values) == {"no_pg", "layer_pg", "rram_pg"}
    assert values[report["policy"]] == min(values.values())
    assert report["totals"]["latency_s"] == pytest.approx(values[report["policy"]])
