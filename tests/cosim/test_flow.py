"""`run_flow` called from Python on the small chip: schedule, compile, two periodic frames on the
RTL, counters -> energy; exact cycles, energy within 0.1 %, no violations, bit-exact, files
written; one rate that sleeps and one that stays on; `--policy auto`; the errors raised before
any RTL work."""

import json
import re
from pathlib import Path

import pytest
from voltflow.cosim.build import TraceFormat
from voltflow.cosim.e2e import ENERGY_TOLERANCE
from voltflow.cosim.flow import RUN_FILES, FlowError, FlowReport, FlowRequest, run_flow
from voltflow.scheduler.chip import GatingPolicy
from voltflow.scheduler.solve import InfeasibleError

from tests.cosim.attention_nets import GENERIC_MATMUL

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"


class Recorder:
    """A `FlowProgress` that keeps what the flow reports."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.statuses: list[str] = []

    def step(self, text: str) -> None:
        self.steps.append(text)

    def status(self, text: str) -> None:
        self.statuses.append(text)


@pytest.mark.cosim
@pytest.mark.parametrize(
    ("net", "fps", "mode", "lookahead"),
    [
        ("ds_cnn", 1000, "sleep", True),  # look-ahead wakes banks
        ("ds_cnn", 2600, "stay-on", False),
        ("resnet8", 600, "sleep", False),
        ("resnet8", 1700, "stay-on", True),  # look-ahead wakes banks and raises two supplies
    ],
)
def test_end_to_end_flow_matches_prediction(
    net: str, fps: int, mode: str, lookahead: bool, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    progress = Recorder()
    request = FlowRequest(
        network=net,
        chip=SMALL_CHIP,
        fps=fps,
        frames=2,
        out_dir=out,
        lookahead=lookahead,
        progress=progress,
    )
    result = run_flow(request)
    assert result.passed, result.failures
    assert "PASS" in result.text
    assert [s[:5] for s in progress.steps if s.startswith("[")] == [f"[{i}/5]" for i in range(1, 6)]
    assert progress.statuses and progress.statuses[-1].startswith("frame 2/2: ")
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(result.data))
    assert report["slack_mode"] == mode
    assert len(report["frames"]) == 2
    for layer in report["layers"]:
        assert layer["measured_cycles"] == layer["predicted_cycles"] == layer["timing_cycles"]
    assert abs(report["totals"]["difference"]) <= ENERGY_TOLERANCE
    for frame in report["frames"]:
        assert frame["deadline_met"] and frame["bit_exact"] and frame["violations"] == 0
    assert report["baseline"]["saving_measured"] > 0
    for name in ("schedule.json", "rom.hex", "rom.lst", "layers.csv", "timeline.png", "energy.png"):
        assert (out / name).stat().st_size > 0, name
    # The schedule file names what it was made from, as the request spelled it.
    provenance = json.loads((out / "schedule.json").read_text())["provenance"]
    assert provenance == {"network": net, "chip": str(SMALL_CHIP), "policy": "rram_pg"}
    assert result.policy is GatingPolicy.RRAM_PG and result.policy_energies_j is None
    listing = (out / "rom.lst").read_text()
    if lookahead:
        # Every inner layer boundary is prepared ahead; the hidden latency is pmu.timing's, and
        # the RTL met it to the cycle (the layer and frame checks above).
        sections = listing.count("(look-ahead ")
        assert sections >= 8 and listing.count("SYNC") == sections
        assert report["lookahead"]["hidden_cycles_per_frame"] >= 16 * sections
        assert ("up to" in listing) == (net == "resnet8")
        assert "look-ahead" in result.text
    else:
        assert "SYNC" not in listing and "lookahead" not in report


@pytest.mark.slow
@pytest.mark.cosim
def test_a_network_needing_more_ofmap_banks_runs_on_its_size_class(tmp_path: Path) -> None:
    """SqueezeNet 1.0 needs 12 ofmap banks, more than the default build's 6: it runs on the
    16-ofmap build with every bank mask placed kind by kind (reference chip, one frame)."""
    from voltflow.cosim.sim_top import default_bank_counts, sim_bank_counts
    from voltflow.scheduler.chip import BankKind, load_chip
    from voltflow.scheduler.network import load_network
    from voltflow.scheduler.problem import build_problem

    chip = load_chip()
    _, table = build_problem(load_network("squeezenet1_0"), chip)
    counts = sim_bank_counts(chip, table.memory)
    assert counts[BankKind.OFMAP] == 16 > default_bank_counts(chip)[BankKind.OFMAP]
    result = run_flow(FlowRequest(network="squeezenet1_0", frames=1, out_dir=tmp_path))
    assert result.passed, result.failures
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] and report["frames"][0]["violations"] == 0


@pytest.mark.slow
@pytest.mark.cosim
def test_mobilevit_xxs_runs_its_attention_on_the_rtl(tmp_path: Path) -> None:
    """MobileViT-XXS (9 transformer blocks: Q K^T, softmax and A V in each, 4 heads of 16, 20
    and 24 channels, 2x2 patches) end to end on the reference chip: every layer cycle-exact,
    bit-exact, energy within the tolerance (docs/attention.md; about 100 s)."""
    result = run_flow(FlowRequest(network="mobilevit_xxs", frames=1, out_dir=tmp_path))
    assert result.passed, result.failures
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] and report["frames"][0]["violations"] == 0
    assert abs(report["totals"]["difference"]) <= ENERGY_TOLERANCE
    assert report["baseline"]["saving_measured"] > 0


@pytest.mark.cosim
def test_policy_auto_runs_the_least_energy_schedule(tmp_path: Path) -> None:
    progress = Recorder()
    request = FlowRequest(
        network="ds_cnn", chip=SMALL_CHIP, fps=1000, frames=1, policy=None, out_dir=tmp_path,
        progress=progress,
    )  # fmt: skip
    result: FlowReport = run_flow(request)
    assert result.passed, result.failures
    (line,) = [s for s in progress.steps if "policy auto: " in s]
    energies = {}
    for part in line.split("(", 1)[1].rstrip(")").split(", "):
        name, value, _ = part.split()
        energies[name] = float(value)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["policy"] == min(energies, key=energies.__getitem__)
    assert report["passed"]
    assert result.policy_energies_j is not None
    feasible = {p: e for p, e in result.policy_energies_j.items() if e is not None}
    assert result.policy.value == min(feasible, key=feasible.__getitem__)


def test_a_network_with_a_generic_matmul_is_refused_before_any_work(tmp_path: Path) -> None:
    net = tmp_path / "generic.yaml"
    net.write_text(GENERIC_MATMUL)
    out = tmp_path / "out"
    progress = Recorder()
    with pytest.raises(FlowError, match=r"^generic has 1 generic matmul op\(s\)"):
        run_flow(FlowRequest(network=str(net), out_dir=out, progress=progress))
    assert progress.steps == [] and not out.exists()


def test_frames_below_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match=r"^--frames must be at least 1, not 0$"):
        run_flow(FlowRequest(network="ds_cnn", chip=SMALL_CHIP, frames=0, out_dir=tmp_path))


def test_a_rate_the_chip_cannot_meet_names_the_limit(tmp_path: Path) -> None:
    with pytest.raises(InfeasibleError, match=re.escape("dp: no schedule meets")) as info:
        run_flow(FlowRequest(network="ds_cnn", fps=100000, out_dir=tmp_path))
    assert 0 < info.value.max_rate_fps < 100000
    assert not any(tmp_path.iterdir())


def test_a_new_run_removes_every_trace_format_a_previous_run_wrote() -> None:
    """A folder holds one run: the waves of each format are in the list removed first (the
    SAIF file was missing from it, so a run without --waves kept an old waves.saif)."""
    waves = {f"waves.{t.value}" for t in TraceFormat if t is not TraceFormat.NONE}
    assert waves <= set(RUN_FILES)
