"""The `voltflow` command's arguments: one subparser per command, their types and choices."""

import argparse

from voltflow.scheduler.chip import GatingPolicy
from voltflow.scheduler.executor import ClusterError, check_cluster
from voltflow.scheduler.intermittent import Checkpointing, Objective
from voltflow.scheduler.solve import Method

__all__ = ["AUTO", "METHODS", "OBJECTIVES", "POLICIES", "build_parser"]

# The CLI spellings are the enums' values: one source for the choices and their meaning.
METHODS = [m.value for m in Method]
POLICIES = [p.value for p in GatingPolicy]
OBJECTIVES = [o.value for o in Objective]
CHECKPOINT_RULES = [c.value for c in Checkpointing]
#: ``--policy auto`` (schedule, cosim): solve on every gating policy and keep the least energy.
AUTO = "auto"


def _parse_state(text: str) -> list[float]:
    try:
        volts = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--state must be three voltages sys,rram,feeder such as 1.1,1.1,1.1, not {text!r}"
        ) from None
    if len(volts) != 3:
        raise argparse.ArgumentTypeError(
            f"--state must be three voltages sys,rram,feeder such as 1.1,1.1,1.1, not {text!r}"
        )
    return volts


def _cluster(text: str) -> str:
    try:
        return check_cluster(text)
    except ClusterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(text: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 if positive else value >= 0) or value == float("inf"):
        allowed = "a positive finite number" if positive else "a finite number >= 0"
        raise argparse.ArgumentTypeError(f"must be {allowed}, not {text!r}")
    return value


def _positive(text: str) -> float:
    return _number(text, positive=True)


def _non_negative(text: str) -> float:
    return _number(text, positive=False)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; the chosen one is `args.command`."""
    parser = argparse.ArgumentParser(
        prog="voltflow",
        description="Energy-minimal power-state schedules for DNN accelerators, proven on RTL.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser, auto: bool = False) -> None:
        p.add_argument(
            "--net",
            default="squeezenet",
            help="zoo network name, a network .yaml file or an .onnx model",
        )
        p.add_argument("--hw", default="powerflow_ref", help="chip name or a chip .yaml file")
        p.add_argument(
            "--policy",
            default="rram_pg",
            choices=[*POLICIES, AUTO] if auto else POLICIES,
            help="bank power-gating policy (default rram_pg"
            + ("; auto: solve with each, keep the least energy)" if auto else ")"),
        )
        p.add_argument("--json", action="store_true", help="print a JSON object instead of a table")

    def problem_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--levels", help="voltage levels: a count (3, 5, 9) or 0.9,1.1,1.3")
        p.add_argument(
            "--transition-energy-j",
            type=_non_negative,
            default=None,
            help="energy per domain switch (default: the chip's)",
        )
        p.add_argument(
            "--transition-latency-s",
            type=_non_negative,
            default=None,
            help="latency per domain switch (default: the chip's)",
        )
        p.add_argument(
            "--no-wraparound",
            action="store_true",
            help="do not charge the last-to-first switch (the paper's formulation)",
        )

    def solver_flags(p: argparse.ArgumentParser) -> None:
        problem_flags(p)
        p.add_argument("--rails", type=int, default=3, help="distinct voltages allowed (default 3)")
        p.add_argument("--time-limit", type=_positive, default=60.0, help="solver limit, seconds")
        p.add_argument(
            "--nominal-v",
            type=_positive,
            default=1.1,
            help="nominal voltage for baselines on --instance files (default 1.1)",
        )

    def intermittent_flags(p: argparse.ArgumentParser, what: str) -> argparse._ArgumentGroup:
        inter = p.add_argument_group(
            "intermittent power (docs/intermittent.md)",
            "run from the chip's storage capacitor in power cycles, with checkpoints between them",
        )
        inter.add_argument(
            "--intermittent",
            action="store_true",
            help=f"{what} (needs the chip file's intermittent section and one of --harvest-uw, "
            "--harvest-trace)",
        )
        inter.add_argument(
            "--harvest-uw",
            type=_positive,
            default=None,
            metavar="P",
            help="constant harvested power",
        )
        inter.add_argument(
            "--harvest-trace", metavar="FILE", help="harvested power over time: CSV time_s,power_w"
        )
        inter.add_argument(
            "--objective",
            choices=OBJECTIVES,
            default=None,
            help="minimise latency per inference (recharges included; default) or energy",
        )
        return inter

    model = sub.add_parser("model", help="per-layer cycles, time and energy of one power state")
    common(model)
    model.add_argument(
        "--state",
        type=_parse_state,
        default=None,
        metavar="VSYS,VRRAM,VFEEDER",
        help="voltages of the sys, rram and feeder domains (default: nominal)",
    )
    model.add_argument(
        "--export-instance", metavar="FILE", help="also write the voltflow-instance/1 JSON here"
    )
    problem_flags(model)

    sched = sub.add_parser("schedule", help="energy-minimal power-state schedule for a rate")
    common(sched, auto=True)
    sched.add_argument(
        "--instance", metavar="FILE", help="solve a voltflow-instance/1 file instead"
    )
    sched.add_argument(
        "--fps",
        type=_positive,
        default=None,
        help="target rate (frames/s); not with --intermittent",
    )
    solver_flags(sched)
    sched.add_argument("--method", default="dp", choices=METHODS, help="solver or baseline")
    sched.add_argument("-o", "--output", metavar="FILE", help="write the schedule JSON here")
    sched.add_argument("--no-baselines", action="store_true", help="skip the baseline comparison")
    sched.add_argument(
        "--profile",
        metavar="FILE",
        help="voltflow-profile/1 JSON (voltflow profile): minimise the expected energy over its "
        "inputs on a sparsity-aware chip (docs/sparsity.md)",
    )
    sched.add_argument(
        "--deadline-on",
        default=None,
        metavar="worst|pNN|dense",
        help="with --profile: the cycles the deadline is guaranteed on: the worst input seen "
        "(default), a percentile such as p95, or the dense bound",
    )
    intermittent_flags(sched, "schedule power states and checkpoints for a capacitor-powered chip")

    sweep = sub.add_parser("sweep", help="energy versus rate for several methods (CSV)")
    common(sweep)
    sweep.add_argument("--instance", metavar="FILE", help="sweep a voltflow-instance/1 file")
    sweep.add_argument("--fps", required=True, help="LO:HI[:STEP] or a comma list")
    solver_flags(sweep)
    sweep.add_argument("--methods", default=",".join(METHODS), help="comma list of methods")
    sweep.add_argument("-o", "--output", metavar="FILE", help="CSV file (default: stdout)")
    sweep.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes of the local pool or of --cluster local (default: cores)",
    )
    sweep.add_argument(
        "--cluster",
        metavar="ADDR",
        type=_cluster,
        default=None,
        help="solve on Dask: 'local' (a LocalCluster here) or tcp://HOST:PORT of a running "
        "`dask scheduler` (docs/scale.md; needs pip install 'voltflow[cluster]')",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar and summary")

    comp = sub.add_parser("compile", help="compile a schedule JSON into a PMU command ROM")
    comp.add_argument("schedule", help="voltflow-schedule/1 JSON (from voltflow schedule -o)")
    comp.add_argument("-o", "--output", required=True, metavar="ROM.hex", help="$readmemh image")
    comp.add_argument("--listing", metavar="FILE", help="annotated listing")
    comp.add_argument("--bin", metavar="FILE", help="binary image (little-endian words)")
    comp.add_argument("--frames", type=int, default=1, help="frames the program runs (default 1)")
    comp.add_argument(
        "--lookahead",
        action="store_true",
        help="use the PMU's look-ahead queue: raise the next layer's supplies and wake its banks "
        "while the present layer runs (docs/pmu.md)",
    )
    comp.add_argument("--net", help="override the schedule's network")
    comp.add_argument("--hw", help="override the schedule's chip")
    comp.add_argument("--policy", choices=POLICIES, help="override")
    comp.add_argument(
        "--force",
        action="store_true",
        help="write the ROM even if the PMU model says it overruns, overclocks or stops "
        "(for tests of the monitors; prints a warning)",
    )
    comp.add_argument("--json", action="store_true", help="print a JSON object")

    cos = sub.add_parser("cosim", help="run a network on the cycle-accurate RTL and check it")
    common(cos, auto=True)
    cos.add_argument(
        "--state",
        type=_parse_state,
        default=None,
        metavar="VSYS,VRRAM,VFEEDER",
        help="one inference at this fixed power state instead of the end-to-end flow",
    )
    cos.add_argument(
        "--fps",
        type=_positive,
        default=None,
        help="frame rate (default: half the highest rate the chip reaches at its top voltage, "
        "rounded: met with slack; 50 FPS for squeezenet on powerflow_ref)",
    )
    cos.add_argument("--rails", type=int, default=3, help="distinct voltages (default 3)")
    cos.add_argument("--method", default="dp", choices=METHODS, help="solver or baseline")
    cos.add_argument("--frames", type=int, default=2, help="periods to run (default 2)")
    cos.add_argument(
        "--waves", choices=["fst", "vcd", "saif"], help="also dump waves (a separate build)"
    )
    cos.add_argument("--out-dir", help="default build/cosim/<net>-<fps>fps")
    cos.add_argument("--seed", type=int, default=0, help="seed of the random weights and input")
    cos.add_argument("--sparsity", type=float, default=0.0, help="fraction of zero weights")
    cos.add_argument(
        "--lookahead",
        action="store_true",
        help="compile for the PMU's look-ahead queue (the next layer's supplies raised and banks "
        "woken while a layer runs); reports the latency it hides",
    )
    many = cos.add_argument_group("many inputs (a chip with array.sparsity; docs/sparsity.md)")
    many.add_argument(
        "--inputs",
        type=int,
        default=None,
        metavar="K",
        help="run K seeded random inputs, one period each, against one schedule",
    )
    many.add_argument(
        "--input-dir", metavar="DIR", help="run every int8 .npy input of this folder instead"
    )
    many.add_argument(
        "--profile",
        metavar="FILE",
        help="solve on this voltflow-profile/1 (default: profile the inputs themselves)",
    )
    many.add_argument(
        "--deadline-on",
        default=None,
        metavar="worst|pNN|dense",
        help="the cycles the deadline is guaranteed on (default worst)",
    )
    many.add_argument(
        "--workers", type=int, default=None, help="simulations at once (default: cores)"
    )
    many.add_argument(
        "--cluster",
        metavar="ADDR",
        type=_cluster,
        default=None,
        help="run the inputs on Dask: 'local' or tcp://HOST:PORT (docs/scale.md)",
    )
    inter = intermittent_flags(
        cos, "run the intermittent schedule through its power cycles on the RTL"
    )
    inter.add_argument(
        "--checkpoints",
        choices=CHECKPOINT_RULES,
        default="optimal",
        help="where power cycles end: the solver's choice (default), after every layer, or "
        "never (battery: the whole inference in one charge)",
    )
    inter.add_argument(
        "--inject-failures",
        type=int,
        default=0,
        metavar="K",
        help="K supply failures at random points (boots, restores, layers, checkpoints; "
        "placed by --seed)",
    )

    imp = sub.add_parser("import", help="an ONNX model into a network file (int8 scales included)")
    imp.add_argument("model", help="the .onnx file")
    imp.add_argument("-o", "--output", metavar="FILE.yaml", help="the network file to write")
    imp.add_argument(
        "--list-ops",
        action="store_true",
        help="print what each ONNX operator maps to, write nothing",
    )
    imp.add_argument(
        "--input-shape",
        metavar="C,H,W",
        help="the input's shape, for a model whose shape is dynamic",
    )
    imp.add_argument(
        "--calibration",
        metavar="FILE.npy",
        help="float inputs [N, C, H, W] to calibrate activation scales on (default: one seeded "
        "standard-normal input)",
    )
    imp.add_argument("--seed", type=int, default=0, help="seed of the calibration input")
    imp.add_argument("--name", help="the network's name (default: the file's stem)")
    imp.add_argument("--json", action="store_true", help="print a JSON object")

    prof = sub.add_parser(
        "profile", help="sparsity profile: what many inputs do on a gating or skipping chip"
    )
    prof.add_argument(
        "--net", default="squeezenet", help="zoo network name, a network .yaml or an .onnx model"
    )
    prof.add_argument(
        "--hw",
        default="powerflow_ref_skip",
        help="chip with array.sparsity gate or skip (default powerflow_ref_skip)",
    )
    inputs = prof.add_mutually_exclusive_group()
    inputs.add_argument(
        "--inputs", type=int, default=None, metavar="K", help="K seeded random inputs (default 32)"
    )
    inputs.add_argument(
        "--input-dir", metavar="DIR", help="a folder of int8 .npy inputs of the network's shape"
    )
    prof.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    prof.add_argument("-o", "--output", required=True, metavar="FILE", help="profile JSON")
    prof.add_argument("--json", action="store_true", help="print a JSON summary")

    upf = sub.add_parser("upf", help="the chip's power intent as IEEE 1801 UPF (2.1)")
    upf.add_argument(
        "--hw",
        default=None,
        help="chip name or a chip .yaml file (default: the schedule's chip, else powerflow_ref)",
    )
    upf.add_argument(
        "-o", "--output", metavar="FILE.upf", help="write the UPF here (default: standard output)"
    )
    upf.add_argument(
        "--schedule",
        metavar="FILE",
        help="voltflow-schedule/1 JSON: the power states are those its PMU program passes through",
    )
    upf.add_argument("--net", help="the schedule's network (default: its provenance)")
    upf.add_argument("--json", action="store_true", help="print a JSON object")

    dis = sub.add_parser("disasm", help="disassemble a PMU ROM and show each layer's state")
    dis.add_argument("rom", help="ROM image (.hex or .bin)")
    dis.add_argument("--hw", default="powerflow_ref", help="chip (for voltages)")
    dis.add_argument("--json", action="store_true", help="print a JSON object")
    return parser
