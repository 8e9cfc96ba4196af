"""Instructions per simulated inference, counted by valgrind's callgrind: deterministic, unlike
wall time on a shared machine (which moves by 15 % from run to run here).

    python -m bench.instructions resnet8 [--build own|full]

Runs one inference of the network at nominal voltage on the reference chip's build (``own``:
the network's own, whose attention engines are empty when it has no attention ops; ``full``:
the chip's) under callgrind, and prints the instructions of the whole simulator process and of
the Verilated model's functions alone. Needs ``valgrind`` on the PATH (not a pip package; this
tool is for measuring, not part of the test suite).
"""

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from voltflow.cosim.accel_run import chip_build, run_network
from voltflow.cosim.sim_top import uses_attention
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.network import load_network

#: The model's functions in callgrind_annotate's output (Verilator's generated classes).
MODEL = re.compile(r"Vtop___024root|Vtop::")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("network")
    parser.add_argument("--build", choices=("own", "full"), default="own")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("valgrind (with callgrind_annotate) is not installed: apt install valgrind")
        return 2
    chip = load_chip()
    network = load_network(args.network)
    attention = args.build == "full" or uses_attention(network)
    chosen = chip_build(chip, attention=attention)
    with tempfile.TemporaryDirectory(prefix="voltflow-ir-") as scratch:
        copy = Path(scratch) / "build"
        shutil.copytree(
            chosen.directory, copy, symlinks=True, ignore=shutil.ignore_patterns("runs")
        )
        exe = copy / "accel_sim"
        real = copy / "accel_sim.real"
        exe.rename(real)
        out = Path(scratch) / "callgrind.out"
        exe.write_text(
            f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {real} "$@"\n'
        )
        exe.chmod(0o755)
        result = run_network(
            network,
            chip,
            [chip.nominal_v] * 3,
            verilator_build=dataclasses.replace(chosen, directory=copy),
        )
        summary = re.search(r"^summary:\s*(\d+)", out.read_text(errors="replace"), re.M)
        if summary is None:
            print(f"callgrind wrote no summary line into {out}")
            return 1
        total = int(summary[1])
        annotated = subprocess.run(
            ["callgrind_annotate", str(out)], capture_output=True, text=True, check=True
        ).stdout
    model = sum(
        int(line.split()[0].replace(",", ""))
        for line in annotated.splitlines()
        if MODEL.search(line) and line.strip()[:1].isdigit()
    )
    cycles = result.total_cycles
    print(
        f"{args.network} on {chip.name} ({args.build} build, attention engines "
        f"{'with' if attention else 'without'} logic): {cycles:,} cycles, "
        f"{'exact' if result.passed else 'NOT exact'}"
    )
    print(f"  simulator process {total:.4e} instructions ({total / cycles:,.0f} per cycle)")
    print(f"  model functions   {model:.4e} instructions ({model / cycles:,.0f} per cycle)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
