"""`voltflow upf`: the chip's power intent as IEEE 1801 UPF, checked against its Verilog."""

import argparse
import json
import sys

from voltflow.cli.console import check_writable, emit
from voltflow.cosim.upf import UpfReport, UpfRequest, generate_upf, write_upf

__all__ = ["cmd_upf"]


def _summary(report: UpfReport, output: str) -> str:
    intent = report.intent
    banks = ", ".join(f"{n} {kind.value}" for kind, n in intent.bank_counts)
    chip_domains = [d for d in intent.domains if not d.banks]
    bank_domains = [d for d in intent.domains if d.banks]
    domain_switches = [s for s in intent.switches if s.bank is None]
    lines = [
        f"power intent of chip {intent.chip} (top module {intent.top}; {banks} banks) "
        f"written to {output}: {report.text.count(chr(10)):,} lines of UPF 2.1",
        "  domains: "
        + ", ".join(f"{d.name} ({len(d.elements)} scope(s))" for d in chip_domains)
        + f"; {len(bank_domains)} bank-group domains",
        f"  switches: {len(domain_switches)} rail switches (one per DVFS domain), "
        f"{len(intent.switches) - len(domain_switches)} bank switches",
        f"  isolation strategies: {len(intent.isolation)}; level-shifter strategies: "
        f"{len(intent.level_shifters)}",
        f"  power states: {len(intent.pst.rows):,} in table {intent.pst.name} over "
        f"{len(intent.pst.supplies)} supplies",
    ]
    if report.names is not None:
        names = report.names
        lines.append(
            f"  checked against the generated Verilog: {len(names.instances)} instances, "
            f"{len(names.ports)} ports and {len(names.signals)} control signals exist"
        )
    return "\n".join(lines)


def cmd_upf(args: argparse.Namespace) -> int:
    if args.output:
        check_writable(args.output)
    report = generate_upf(UpfRequest(chip=args.hw, schedule=args.schedule, network=args.net))
    if args.output:
        write_upf(args.output, report.text)
        emit(args, {**report.data, "output": args.output}, _summary(report, args.output))
    elif args.json:
        json.dump({**report.data, "output": None, "upf": report.text}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.text)
    return 0
