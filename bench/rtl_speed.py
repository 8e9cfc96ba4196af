"""RTL simulation speed, this tree's build against a baseline's, in one run (issue 17).

``python -m bench.rtl_speed`` runs one inference of resnet8 and of SqueezeNet on the full chip
(accelerator and PMU, each network on its own build, nominal voltage) with this tree's code and
with the baseline commit's code, alternately, ``--repeats`` times, and prints the reference
cycles per second of both and their ratio. The baseline is :data:`BASELINE` (the RTL and build
as they were when issue 17's speed work began), checked out with ``git archive`` into
``build/bench/baseline-<commit>/`` and imported from there in its own process; its Verilator
build is cached like any other. Each run's results (cycles per op, activity counters, outputs)
are digested and must be identical between the two: the speed-up may not change an answer.
"""

import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

#: The commit whose RTL and build are "today's build" in issue 17 (2026-12-07, before the
#: speed work).
BASELINE = "d9a2589"
#: Where each package of the voltflow distribution lives in a source tree (pyproject's
#: package-dir).
PACKAGE_DIRS = {
    "voltflow.scheduler": "scheduler",
    "voltflow.hw": "hw",
    "voltflow.pmu": "pmu",
    "voltflow.rtl": "rtl",
    "voltflow.cosim": "cosim",
}
NETWORKS = ("resnet8", "squeezenet")
_ROOT = Path(__file__).resolve().parents[1]


class _TreeFinder:
    """Imports ``voltflow`` from another source tree, laid out as pyproject's package-dir says."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(
        self, name: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name == "voltflow":
            folder = self.root / "voltflow"
        elif name in PACKAGE_DIRS:
            folder = self.root / PACKAGE_DIRS[name]
        else:
            return None
        return importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def _use_tree(root: Path) -> None:
    """Make this process import voltflow from ``root`` (before anything imported it)."""
    assert "voltflow" not in sys.modules, "the tree must be chosen before voltflow is imported"
    sys.meta_path.insert(0, _TreeFinder(root))


def baseline_tree(commit: str = BASELINE) -> Path:
    """The baseline commit's source tree under build/bench (extracted once)."""
    full = subprocess.run(
        ["git", "rev-parse", f"{commit}^{{commit}}"],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    root = _ROOT / "build" / "bench" / f"baseline-{full[:12]}"
    if not (root / "voltflow" / "__init__.py").is_file():
        partial = root.with_name(root.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", full], cwd=_ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        partial.rename(root)
    return root


def _digest(result: Any) -> str:
    """What a run answered: cycles and activity per op, counters, outputs."""
    h = hashlib.sha256()
    for op in result.ops:
        h.update(repr((op.name, op.measured_cycles, op.measured)).encode())
    h.update(repr(sorted(result.counters.items())).encode())
    for name in sorted(result.outputs):
        h.update(name.encode())
        h.update(result.outputs[name].tobytes())
    return h.hexdigest()[:16]


def worker(network_name: str, volts: float | None) -> dict[str, object]:
    """One inference on the RTL with whatever voltflow this process imports, every domain at
    ``volts`` (default: nominal)."""
    from voltflow.cosim.accel_run import run_network
    from voltflow.scheduler.chip import load_chip
    from voltflow.scheduler.network import load_network

    chip = load_chip()
    v = chip.nominal_v if volts is None else volts
    result = run_network(load_network(network_name), chip, [v] * 3)
    return {
        "cycles": result.total_cycles,
        "sim_s": result.sim_wall_s,
        "run_s": result.wall_s,
        "passed": result.passed,
        "digest": _digest(result),
    }


def _run(tree: Path | None, network: str, volts: float | None) -> dict[str, object]:
    cmd = [sys.executable, "-m", "bench.rtl_speed", "--worker", network]
    if volts is not None:
        cmd += ["--volts", str(volts)]
    if tree is not None:
        cmd += ["--tree", str(tree)]
    env = dict(os.environ, PYTHONPATH=str(_ROOT))
    done = subprocess.run(cmd, cwd=_ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--volts", type=float, help="every domain's voltage (default: nominal)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.tree is not None:
            _use_tree(args.tree)
        print(json.dumps(worker(args.worker, args.volts)))
        return 0

    from voltflow.scheduler.texttable import format_table

    old_tree = baseline_tree(args.baseline)
    print(f"RTL speed: this tree vs {args.baseline} ({old_tree}), {args.repeats} runs each")
    rows, failed = [], False
    for name in args.networks:
        got: dict[str, list[dict[str, object]]] = {"baseline": [], "new": []}
        for _ in range(args.repeats):
            for which, tree in (("baseline", old_tree), ("new", None)):
                got[which].append(_run(tree, name, args.volts))
        speed = {
            w: statistics.median(float(r["cycles"]) / float(r["sim_s"]) for r in runs)  # type: ignore[arg-type]
            for w, runs in got.items()
        }
        same = len({r["digest"] for r in got["baseline"] + got["new"]}) == 1
        passed = all(r["passed"] for r in got["baseline"] + got["new"])
        failed |= not (same and passed)
        ratio = speed["new"] / speed["baseline"]
        rows.append(
            [
                name,
                got["new"][0]["cycles"],
                speed["baseline"] / 1e3,
                speed["new"] / 1e3,
                f"{ratio:.2f}x",
                statistics.median(float(r["run_s"]) for r in got["baseline"]),  # type: ignore[arg-type]
                statistics.median(float(r["run_s"]) for r in got["new"]),  # type: ignore[arg-type]
                "yes" if same else "NO",
                "yes" if passed else "NO",
            ]
        )
    print(
        format_table(
            [
                "network",
                "ref cycles",
                "baseline k cyc/s",
                "new k cyc/s",
                "ratio",
                "baseline run s",
                "new run s",
                "same answers",
                "exact",
            ],
            rows,
        )
    )
    print(f"(median of {args.repeats}; goal ratio >= 1.5 on each network)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
