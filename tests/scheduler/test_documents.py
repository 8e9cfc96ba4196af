"""User files are read strictly: every malformed file is one clear error naming it."""

import re
from pathlib import Path

import pytest
from voltflow.scheduler.documents import (
    MAX_DEPTH,
    DocumentError,
    parse_json,
    parse_yaml,
    short,
)
from voltflow.scheduler.instance import InstanceError, load_instance
from voltflow.scheduler.network import NetworkError, load_network
from voltflow.scheduler.schedule import ScheduleError, load_schedule

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: 1\na: 2\n",
            "f.yaml: line 2, column 1: not valid YAML: duplicate key 'a' (first on line 1)",
        ),
        ("x: " + "[" * 100 + "]" * 100, f"f.yaml: line 1: nested deeper than {MAX_DEPTH} levels"),
        ("x: " + "[" * 5000 + "]" * 5000, "f.yaml: nested too deeply to read"),
        (BOMB, "f.yaml: expands to more than 2,000,000 values once its aliases"),
        ("a: [1, 2\n", "f.yaml: line 2, column 1: not valid YAML: expected ',' or ']'"),
    ],
)
def test_yaml_errors(text: str, message: str) -> None:
    with pytest.raises(DocumentError, match="^" + re.escape(message)):
        parse_yaml(text, "f.yaml")


def test_yaml_that_is_fine_reads_as_safe_load_does() -> None:
    assert parse_yaml("a: {b: [1, 2.5, x]}\nc: &k 3\nd: *k\n", "f") == {
        "a": {"b": [1, 2.5, "x"]},
        "c": 3,
        "d": 3,
    }
    assert parse_yaml("", "f") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1, "a": 2}', "f.json: duplicate key 'a'; each key may appear once"),
        ("[" * 100 + "]" * 100, f"f.json: nested deeper than {MAX_DEPTH} levels"),
        ("[" * 100_000 + "]" * 100_000, "f.json: nested too deeply to read"),
        ("{", "f.json: is not valid JSON: Expecting property name"),
    ],
)
def test_json_errors(text: str, message: str) -> None:
    with pytest.raises(DocumentError, match="^" + re.escape(message)):
        parse_json(text, "f.json")


def test_short_bounds_any_value() -> None:
    assert short("abc") == "'abc'" and short(1.5) == "1.5" and short([1, 2]) == "[1, 2]"
    long = short("x" * 10_000_000)
    assert len(long) < 100 and long.endswith("(10,000,000 characters)")
    nested: list = []
    for _ in range(10):
        nested = [nested] * 10  # 10**10 leaves if expanded
    assert len(short(nested)) < 200


@pytest.mark.parametrize(
    ("loader", "error"),
    [(load_network, NetworkError), (load_instance, InstanceError), (load_schedule, ScheduleError)],
)
def test_every_loader_reports_file_system_errors(tmp_path: Path, loader, error) -> None:
    suffix = ".yaml" if loader is load_network else ".json"
    missing = tmp_path / f"missing{suffix}"
    with pytest.raises(error, match="^" + re.escape(f"{missing}: cannot read the file: ")):
        loader(missing)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(error, match="^" + re.escape(f"{folder}: is a folder, not a file")):
        loader(folder)
    binary = tmp_path / f"latin1{suffix}"
    binary.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(
        error, match="^" + re.escape(f"{binary}: is not UTF-8 text (byte 9 is 0xe9)")
    ):
        loader(binary)


def test_loaders_refuse_duplicate_keys(tmp_path: Path) -> None:
    net = tmp_path / "n.yaml"
    net.write_text("format: voltflow-network/1\nformat: voltflow-network/1\n")
    with pytest.raises(
        NetworkError,
        match=re.escape(f"{net}: line 2, column 1: not valid YAML: duplicate key 'format'"),
    ):
        load_network(net)
    sched = tmp_path / "s.json"
    sched.write_text('{"format": "x", "format": "y"}')
    with pytest.raises(ScheduleError, match=re.escape(f"{sched}: duplicate key 'format'")):
        load_schedule(sched)


# -- sweeps: bounded, validated before writing, stoppable ---------------------------------------


def test_sweep_rates_are_bounded() -> None:
    from voltflow.scheduler.sweep import MAX_POINTS, parse_rates

    assert parse_rates("1:3") == (1.0, 2.0, 3.0)
    with pytest.raises(
        ValueError,
        match=re.escape(f"--fps '1:1e9' gives 1e+09 rates; a sweep takes at most {MAX_POINTS:,}"),
    ):
        parse_rates("1:1e9")
    for text in ("1:inf", "1:nan", "inf", "0,1", "-1:3"):
        with pytest.raises(ValueError, match=f"^--fps must be LO:HI.*, not '{re.escape(text)}'$"):
            parse_rates(text)


def test_sweep_arguments_are_checked_before_anything_is_written() -> None:
    import io

    from voltflow.scheduler.solve import Method
    from voltflow.scheduler.sweep import run_sweep

    out = io.StringIO()
    with pytest.raises(ValueError, match=r"^workers must be a positive integer, not -1$"):
        run_sweep({}, {}, [1.0], [Method.DP], 3, None, out, workers=-1)
    assert out.getvalue() == ""
