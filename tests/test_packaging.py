"""The installed distribution adds exactly one top-level import name, ``voltflow``."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("voltflow-*.whl")
    return path


def test_wheel_has_one_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/", 1)[0] for n in names}
        declared = zf.read(next(n for n in names if n.endswith(".dist-info/top_level.txt")))
    assert {t for t in top if not t.endswith(".dist-info")} == {"voltflow"}
    assert declared.decode().split() == ["voltflow"]
    # The zoo and the chip files travel with the package.
    assert "voltflow/scheduler/networks/squeezenet.yaml" in names
    assert "voltflow/scheduler/hardware/powerflow_ref.yaml" in names


def test_installed_wheel_imports_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == [
        "bin",
        "voltflow",
    ]
    # -S: no site-packages processing, so neither the editable install's finder nor the checkout
    # can supply `voltflow`; the third-party dependencies come from this interpreter's
    # site-packages, put after the wheel's folder.
    code = (
        "import voltflow, voltflow.scheduler.chip as chip, voltflow.cosim.e2e\n"
        "print(voltflow.__file__)\n"
        "print(len(chip.load_chip('powerflow_ref').levels_v))\n"
        "import importlib.util\n"
        "folders = ('scheduler', 'hw', 'pmu', 'rtl', 'cosim')\n"
        "print([n for n in folders if importlib.util.find_spec(n)])\n"
    )
    site = sysconfig.get_paths()["purelib"]
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{target}:{site}"},
    )
    assert done.returncode == 0, done.stderr
    where, levels, stray = done.stdout.splitlines()
    assert Path(where).is_relative_to(target)
    assert int(levels) > 0
    assert stray == "[]"
