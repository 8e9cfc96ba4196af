"""`voltflow compile` and `disasm`: a schedule into a PMU command ROM, and back into states."""

import argparse
import sys

from voltflow.cli.console import CliError, check_writable, emit
from voltflow.pmu.compiler import CompileError, compile_schedule, verify_timing
from voltflow.pmu.disasm import disassemble, launch_states
from voltflow.pmu.limits import check_chip
from voltflow.pmu.rom import read_rom, write_bin, write_hex, write_listing
from voltflow.scheduler.chip import DOMAINS, GatingPolicy, load_chip
from voltflow.scheduler.network import load_network
from voltflow.scheduler.problem import ProblemOptions, build_problem
from voltflow.scheduler.schedule import load_schedule
from voltflow.scheduler.texttable import format_table

__all__ = ["cmd_compile", "cmd_disasm"]


def cmd_compile(args: argparse.Namespace) -> int:
    for path in (args.output, args.bin, args.listing):
        if path:
            check_writable(path)
    schedule = load_schedule(args.schedule)
    prov = dict(schedule.provenance or {})
    net = args.net or prov.get("network")
    if not net:
        raise CliError(
            f"{args.schedule}: the schedule does not say which network it is for "
            "(no provenance); pass --net and --hw"
        )
    chip = load_chip(args.hw or prov.get("chip") or "powerflow_ref")
    check_chip(chip, args.hw or prov.get("chip"))
    policy = GatingPolicy(args.policy or prov.get("policy") or "rram_pg")
    options = ProblemOptions(
        policy=policy, levels_v=tuple(prov["levels_v"]) if prov.get("levels_v") else None
    )
    _, table = build_problem(load_network(net), chip, options)
    program = compile_schedule(schedule, table, frames=args.frames, lookahead=args.lookahead)
    # Replayed on the exact PMU model before anything is written: a ROM that would overrun its
    # period, overclock a domain or stop the PMU is refused naming the layer.
    try:
        verify_timing(program, table)
    except CompileError as exc:
        if not args.force:
            raise CompileError(f"{exc} (--force writes the ROM anyway)") from None
        print(
            f"voltflow compile: WARNING: --force: writing a ROM that fails: {exc}", file=sys.stderr
        )
    write_hex(args.output, program.words)
    if args.bin:
        write_bin(args.bin, program.words)
    if args.listing:
        write_listing(args.listing, program.listing())
    report = {
        "format": "voltflow-rom/1",
        "words": [f"{w:016x}" for w in program.words],
        "frame_start": program.frame_start,
        "rails_v": list(program.rails_v),
        "hex": str(args.output),
    }
    text = program.listing() + f"\n{len(program.words)} commands written to {args.output}"
    emit(args, report, text)
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    words = read_rom(args.rom)
    chip = load_chip(args.hw)
    states = launch_states(words, chip)
    report = {
        "format": "voltflow-disasm/1",
        "commands": disassemble(words).splitlines(),
        "launches": [
            {
                "address": s.address,
                "first_op": s.first_op,
                "op_count": s.op_count,
                "voltage_v": dict(zip([d.value for d in DOMAINS], s.voltage_v, strict=True)),
                "increment": dict(zip([d.value for d in DOMAINS], s.increment, strict=True)),
                "problems": list(s.problems),
            }
            for s in states
        ],
    }
    rows = [
        [i, s.first_op, s.op_count, *("?" if v is None else f"{v:.2f}" for v in s.voltage_v)]
        for i, s in enumerate(states)
    ]
    table = format_table(["layer", "first op", "ops", *(f"V {d.value}" for d in DOMAINS)], rows)
    problems = [
        f"layer {i} (LAUNCH at {s.address:04x}): {p}"
        for i, s in enumerate(states)
        for p in s.problems
    ]
    text = disassemble(words) + "\nstates at each launch (first frame):\n" + table
    if problems:
        text += "\nproblems (the PMU would stop or run these layers undefined):\n" + "\n".join(
            problems
        )
    emit(args, report, text)
    return 0
