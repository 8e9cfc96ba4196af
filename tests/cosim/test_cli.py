"""The `voltflow` command line: model reports and user errors."""

import json

import pytest

from cosim.cli import main
from scheduler.chip import load_chip
from scheduler.cost import build_cost_table
from scheduler.network import load_network


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_model_json_matches_the_cost_model(capsys) -> None:
    code, out, _ = run(capsys, "model", "--net", "squeezenet", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["format"] == "voltflow-model/1"
    assert len(report["layers"]) == 26
    assert report["totals"]["macs"] == load_network("squeezenet").macs
    table = build_cost_table(load_network("squeezenet"), load_chip())
    nominal = table.state_index([1.1, 1.1, 1.1])
    assert report["totals"]["ref_cycles"] == sum(int(x.ref_cycles[nominal]) for x in table.layers)
    assert report["totals"]["energy_j"] == pytest.approx(
        sum(float(x.energy_j[nominal]) for x in table.layers)
    )
    assert report["top"]["latency_s"] < report["nominal"]["latency_s"]
    assert report["nominal"]["max_fps"] == pytest.approx(1 / report["nominal"]["latency_s"])


def test_model_table_with_state_and_policy(capsys) -> None:
    code, out, _ = run(
        capsys, "model", "--net", "ds_cnn", "--state", "0.9,1.3,1.0", "--policy", "no_pg"
    )
    assert code == 0
    assert "sys 0.90 V / 287.5 MHz, rram 1.30 V / 138.4 MHz, feeder 1.00 V / 392.6 MHz" in out
    assert "policy no_pg" in out
    assert out.count("\ntotal ") == 1
    assert "nominal (1.10 V everywhere): latency" in out


def test_unknown_network_lists_the_zoo(capsys) -> None:
    code, _, err = run(capsys, "model", "--net", "alexnet")
    assert code == 2
    assert err.startswith("voltflow model: error: unknown network 'alexnet'; known networks: ")
    assert "squeezenet" in err and "resnet18" in err


def test_state_off_the_grid_is_a_clear_error(capsys) -> None:
    code, _, err = run(capsys, "model", "--net", "ds_cnn", "--state", "1.12,1.1,1.1")
    assert code == 2
    assert "--state: state [1.12, 1.1, 1.1] is not on the voltage grid" in err


def test_malformed_state_is_rejected_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["model", "--state", "1.1,fast"])
    assert "--state must be three voltages sys,rram,feeder" in capsys.readouterr().err
