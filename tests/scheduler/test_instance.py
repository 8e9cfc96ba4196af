"""Problem instances: construction, the level grid, restriction, and the JSON format's errors."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from voltflow.scheduler.instance import (
    InstanceError,
    LayerTable,
    Problem,
    load_instance,
    problem_to_json,
    restrict_to_levels,
    save_instance,
)

INSTANCES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "instances"


def _layer(name: str = "conv", volts: list[list[float]] | None = None) -> LayerTable:
    volts = volts or [[0.9, 0.9], [0.9, 1.1], [1.1, 0.9], [1.1, 1.1]]
    count = len(volts)
    return LayerTable(
        name=name,
        voltage_v=volts,
        energy_j=np.linspace(1e-6, 2e-6, count),
        time_s=np.linspace(2e-3, 1e-3, count),
        leakage_w=np.full(count, 1e-4),
    )


def _problem(**changes: object) -> Problem:
    fields: dict[str, object] = {
        "name": "tiny",
        "source": "hand-made",
        "domains": ("sys", "rram"),
        "transition_energy_j": 1e-10,
        "transition_latency_s": 1.5e-8,
        "sleep_power_w": 0.0,
        "sleep_entry_switches": 6,
        "wraparound": False,
        "layers": (_layer("a"), _layer("b"), _layer("c")),
    }
    fields.update(changes)
    return Problem(**fields)  # type: ignore[arg-type]


def _valid_json() -> dict:
    return problem_to_json(_problem())


def _write(tmp_path: Path, data: object, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_round_trip_is_exact(tmp_path: Path) -> None:
    problem = _problem(
        layers=(
            _layer("a", [[0.9, 1.0], [1.0 / 3.0 + 0.6, 1.1]]),
            _layer("b", [[0.95, 1.1], [1.3, 0.9]]),
        ),
        wraparound=True,
    )
    path = tmp_path / "p.json"
    save_instance(problem, path)
    again = load_instance(path)
    assert problem_to_json(again) == problem_to_json(problem)
    for a, b in zip(problem.layers, again.layers, strict=True):
        for name in ("voltage_v", "energy_j", "time_s", "leakage_w"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
    assert again.levels_v.tolist() == problem.levels_v.tolist()
    assert again.wraparound is True
    assert again.source == "hand-made"


def test_source_is_optional(tmp_path: Path) -> None:
    data = _valid_json()
    del data["source"]
    assert load_instance(_write(tmp_path, data)).source == ""


def test_levels_are_integers_into_a_sorted_grid() -> None:
    # 0.9 + 4 * 0.05 is 1.1000000000000003 in binary: the same level as 1.1.
    problem = _problem(layers=(_layer("a", [[1.3, 0.9 + 4 * 0.05], [1.1, 0.9]]),))
    assert problem.levels_v.tolist() == [0.9, 1.1, 1.3]
    assert problem.level_index[0].tolist() == [[2, 1], [1, 0]]
    assert problem.level_of(1.1) == 1
    with pytest.raises(
        InstanceError,
        match=r"^voltage must be one of the grid's levels \(0\.9, "
        r"1\.1, 1\.3 V\), not 1\.2$",
    ):
        problem.level_of(1.2)


def test_arrays_are_read_only_copies() -> None:
    energy = np.array([1.0, 2.0])
    layer = LayerTable(
        name="x", voltage_v=[[1.0], [1.1]], energy_j=energy, time_s=[1.0, 1.0], leakage_w=[0, 0]
    )
    energy[0] = 5.0
    assert layer.energy_j[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        layer.energy_j[0] = 3.0


def test_restriction_keeps_states_inside_the_levels_and_maps_back() -> None:
    problem = _problem()
    low = problem.level_of(0.9)
    restricted = restrict_to_levels(problem, [low])
    assert [layer.num_states for layer in restricted.problem.layers] == [1, 1, 1]
    assert restricted.to_original([0, 0, 0]) == (0, 0, 0)
    both = restrict_to_levels(problem, [problem.level_of(1.1)])
    assert both.to_original([0, 0, 0]) == (3, 3, 3)
    sparse = _problem(layers=(_layer("a"), _layer("b", [[1.1, 1.1]])))
    with pytest.raises(
        ValueError, match=r"^layer 1 \('b'\) has no state within levels \{0\.9\} V$"
    ):
        restrict_to_levels(sparse, [0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"domains": ("sys", "sys")}, r"^domains must not repeat a name, not \['sys', 'sys'\]$"),
        ({"domains": ()}, r"^domains must be a non-empty list of domain names, not \(\)$"),
        (
            {"transition_latency_s": -1.0},
            r"^transition_latency_s must be a non-negative finite number, not -1\.0$",
        ),
        ({"sleep_power_w": float("nan")}, r"^sleep_power_w must be a non-negative finite number"),
        (
            {"sleep_entry_switches": 1.5},
            r"^sleep_entry_switches must be a non-negative integer, not 1\.5$",
        ),
        ({"wraparound": 1}, r"^wraparound must be true or false, not 1$"),
        ({"layers": ()}, r"^layers must be a non-empty list of layers, not \(\)$"),
        (
            {"layers": (_layer("a", [[0.9], [1.1]]),)},
            r"^layers\[0\]\.voltage_v must have one column per domain \(2\), not 1$",
        ),
    ],
)
def test_problem_validation(change: dict, message: str) -> None:
    with pytest.raises(InstanceError, match=message):
        _problem(**change)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_s", [1.0, 0.0], r"^time_s\[1\] must be a positive finite number, not 0\.0$"),
        (
            "energy_j",
            [1.0, -2.0],
            r"^energy_j\[1\] must be a non-negative finite number, not -2\.0$",
        ),
        ("leakage_w", [1.0], r"^leakage_w must have one entry per state \(2\), not 1$"),
        ("voltage_v", [[0.9], [np.inf]], r"^voltage_v\[1\]\[0\] must be a positive finite voltage"),
        ("voltage_v", [0.9, 1.1], r"^voltage_v must be a table \(states x domains\) of numbers, "),
    ],
)
def test_layer_validation(field: str, value: object, message: str) -> None:
    args: dict[str, object] = {
        "name": "x",
        "voltage_v": [[0.9], [1.1]],
        "energy_j": [1.0, 1.0],
        "time_s": [1.0, 1.0],
        "leakage_w": [0.0, 0.0],
    }
    args[field] = value
    with pytest.raises(InstanceError, match=message):
        LayerTable(**args)  # type: ignore[arg-type]


def _bad(data: dict, path: str, value: object) -> dict:
    """``data`` with the field at ``path`` (dotted, [k] for list items) set to ``value``."""
    target: object = data
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    for part in parts[:-1]:
        target = target[int(part[1:-1])] if part.startswith("[") else target[part]  # type: ignore[index]
    last = parts[-1]
    if value is _DELETE:
        del target[last]  # type: ignore[union-attr]
    elif last.startswith("["):
        target[int(last[1:-1])] = value  # type: ignore[index]
    else:
        target[last] = value  # type: ignore[index]
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "extra",
            1,
            r"has unknown field\(s\) 'extra'; allowed: format, name, source, domains, "
            r"transition, sleep, wraparound, layers$",
        ),
        (
            "format",
            "voltflow-instance/2",
            r"format is 'voltflow-instance/2', which this version of "
            r"voltflow cannot read \(it reads 'voltflow-instance/1'\); upgrade voltflow$",
        ),
        ("format", "powerflow", r"format must be 'voltflow-instance/1', not 'powerflow'$"),
        ("layers", _DELETE, r"is missing field\(s\) 'layers'$"),
        (
            "layers.[2].time_s.[1]",
            -1.0,
            r"layers\[2\]\.time_s\[1\] must be a positive finite number, not -1\.0$",
        ),
        (
            "layers.[1].energy_j.[3]",
            "1e-6",
            r"layers\[1\]\.energy_j\[3\] must be a number, not '1e-6'$",
        ),
        (
            "layers.[0].voltage_v.[2]",
            [0.9],
            r"layers\[0\]\.voltage_v\[2\] must have one voltage per "
            r"domain \(2\), not 1$",
        ),
        (
            "layers.[0].leakage_w",
            [0.0],
            r"layers\[0\]\.leakage_w must have one entry per state "
            r"\(4\), not 1$",
        ),
        (
            "layers.[1].power",
            0.0,
            r"layers\[1\] has unknown field\(s\) 'power'; allowed: name, "
            r"voltage_v, energy_j, time_s, leakage_w, density$",
        ),
        (
            "sleep.entry_switches",
            -1,
            r"sleep\.entry_switches must be a non-negative integer, not -1$",
        ),
        (
            "sleep.entry_switches",
            True,
            r"sleep\.entry_switches must be a non-negative integer, not True$",
        ),
        (
            "transition.latency_s",
            -5e-9,
            r"transition\.latency_s must be a non-negative finite number, not -5e-09$",
        ),
        (
            "transition.energy",
            0.0,
            r"transition has unknown field\(s\) 'energy'; allowed: "
            r"energy_j, latency_s$",
        ),
        ("wraparound", "no", r"wraparound must be true or false, not 'no'$"),
        ("layers", [], r"layers must be a non-empty list, not \[\]$"),
    ],
)
def test_bad_instance_files_name_file_field_value(
    tmp_path: Path, path: str, value: object, message: str
) -> None:
    file = _write(tmp_path, _bad(_valid_json(), path, value))
    with pytest.raises(InstanceError, match="^" + re.escape(str(file)) + ": " + message):
        load_instance(file)


def test_nan_in_a_file_is_rejected(tmp_path: Path) -> None:
    data = _valid_json()
    text = json.dumps(data).replace('"leakage_w": [0.0001', '"leakage_w": [NaN', 1)
    file = tmp_path / "nan.json"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(
        InstanceError,
        match="^" + re.escape(str(file)) + r": layers\[0\]\.leakage_w\[0\] must be a "
        r"non-negative finite number, not nan$",
    ):
        load_instance(file)


def test_invalid_json_names_the_file_and_position(tmp_path: Path) -> None:
    file = tmp_path / "broken.json"
    file.write_text('{"format": "voltflow-instance/1",\n "name": }', encoding="utf-8")
    with pytest.raises(
        InstanceError,
        match="^" + re.escape(str(file)) + r": is not valid JSON: Expecting value at line 2 "
        r"column 10$",
    ):
        load_instance(file)


@pytest.mark.parametrize("levels", [3, 5, 6, 9])
def test_artifact_instances_load(levels: int) -> None:
    path = INSTANCES / f"squeezenet-pfdnn-{levels}lv.json"
    if not path.exists():
        pytest.skip(f"artifact instances not found at {INSTANCES} (they live in ../shared)")
    problem = load_instance(path)
    assert problem.num_layers == 26
    assert problem.num_levels == levels
    assert problem.domains == ("sys", "rram", "feeder")
    assert {layer.num_states for layer in problem.layers} == {levels**3}
    assert problem.wraparound is False
    assert problem.sleep_entry_switches == 6
    assert problem.levels_v[0] == 0.9 and problem.levels_v[-1] == 1.3
