"""The RTL accelerator on Verilator: bit-exact against the golden model, cycles and counters equal
to the cost model's prediction (scheduler/dataflow.py), per op, at several frequency settings."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from voltflow.cosim import accel_run
from voltflow.cosim.accel_run import RunResult, accelerator_build, run_network
from voltflow.cosim.build import VerilatorBuild, lint
from voltflow.cosim.golden import make_case
from voltflow.cosim.sim_top import accel_build_spec, uses_attention
from voltflow.scheduler.chip import Chip, load_chip
from voltflow.scheduler.dataflow import OpWork
from voltflow.scheduler.network import Network, OpKind, load_network

from tests.cosim import rtl_reference
from tests.cosim.attention_nets import ATTENTION_BLOCKS, attention_block, random_attention_block
from tests.cosim.random_layers import ATTENTION_KINDS, random_layer

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"
STATES = [(1.1, 1.1, 1.1), (0.9, 1.3, 1.0), (1.3, 0.9, 1.2)]

#: Single-layer networks: (input shape, ops). Strides 1/2, kernels 1/3/5 and non-square,
#: asymmetric padding, depthwise, fc, max/avg pool (ceil_mode, global), add, concat.
LAYERS = {
    "conv3x3_relu": (
        "[8, 6, 6]",
        "- {name: c, op: conv, input: x, out_channels: 16, kernel: 3, padding: 1, relu: true}",
    ),
    "conv5x3_s2_asym": (
        "[5, 11, 9]",
        (
            "- {name: c, op: conv, input: x, out_channels: 11, kernel: [5, 3], "
            "stride: 2, padding: [2, 1, 1, 0]}"
        ),
    ),
    "conv1x1": (
        "[20, 5, 7]",
        "- {name: c, op: conv, input: x, out_channels: 24, kernel: 1, relu: true}",
    ),
    "conv_many_passes": (
        "[8, 6, 6]",
        "- {name: c, op: conv, input: x, out_channels: 100, kernel: 3, padding: 1}",
    ),
    "conv_epochs": (
        "[64, 4, 4]",
        "- {name: c, op: conv, input: x, out_channels: 40, kernel: 3, padding: 1}",
    ),
    "depthwise5x5": (
        "[16, 9, 9]",
        "- {name: c, op: conv, input: x, out_channels: 16, kernel: 5, padding: 2, groups: 16}",
    ),
    "fc": ("[13, 3, 2]", "- {name: c, op: fc, input: x, out_features: 19, relu: true}"),
    "maxpool_ceil": (
        "[10, 7, 7]",
        "- {name: c, op: maxpool, input: x, kernel: 3, stride: 2, ceil_mode: true}",
    ),
    "avgpool_pad": (
        "[9, 6, 5]",
        "- {name: c, op: avgpool, input: x, kernel: [2, 3], stride: [2, 1], padding: [1, 1, 0, 1]}",
    ),
    "avgpool_global": ("[16, 4, 4]", "- {name: c, op: avgpool, input: x, global: true}"),
    "add_relu": (
        "[16, 5, 5]",
        (
            "- {name: a, op: conv, input: x, out_channels: 16, "
            "kernel: 1}\n  - {name: c, op: add, inputs: [x, a], relu: true}"
        ),
    ),
    "concat": (
        "[8, 5, 5]",
        (
            "- {name: a, op: conv, input: x, out_channels: 8, kernel: 3, "
            "padding: 1}\n  - {name: b, op: conv, input: x, out_channels: 16, "
            "kernel: 1}\n  - {name: c, op: concat, inputs: [a, b]}\n  - {name: d, "
            "op: maxpool, input: c, kernel: 2, stride: 2}"
        ),
    ),
}
#: Layers whose stream steps have fewer than R + C sys ticks: the step is extended so the tile
#: drains before it is written (docs/rtl.md, "Drain within the step").
DRAIN_LAYERS = {
    "depthwise3x3_s2": (
        "[12, 7, 6]",
        (
            "- {name: c, op: conv, input: x, out_channels: 12, kernel: 3, stride: 2, "
            "padding: 1, groups: 12, relu: true}"
        ),
    ),
    "conv1x1_k8": ("[8, 5, 5]", "- {name: c, op: conv, input: x, out_channels: 5, kernel: 1}"),
}
#: Per-channel requantisation (``per_channel: true``): every pass carries 4 more words (m_c, s_c
#: of its 8 channels), read while tile 0 streams. K_pad 8 (1x1 conv on 8 channels) and 9 (3x3
#: depthwise) are the shortest streams, where these reads run past the weights' K_pad ticks; 13
#: passes of 80 words fit the small chip's 1024-word buffer half 12 at a time (per tensor: all 13);
#: 576-word reductions make one pass per epoch; the last network follows a per-channel op with a
#: per-tensor one.
PER_CHANNEL_LAYERS = {
    "pc_conv3x3_relu": (
        "[8, 6, 6]",
        (
            "- {name: c, op: conv, input: x, out_channels: 16, kernel: 3, padding: 1, "
            "relu: true, per_channel: true}"
        ),
    ),
    "pc_conv1x1_k8": (
        "[8, 5, 5]",
        "- {name: c, op: conv, input: x, out_channels: 5, kernel: 1, per_channel: true}",
    ),
    "pc_depthwise3x3_s2": (
        "[12, 7, 6]",
        (
            "- {name: c, op: conv, input: x, out_channels: 12, kernel: 3, stride: 2, "
            "padding: 1, groups: 12, relu: true, per_channel: true}"
        ),
    ),
    "pc_fc": (
        "[13, 3, 2]",
        "- {name: c, op: fc, input: x, out_features: 19, relu: true, per_channel: true}",
    ),
    "pc_conv_many_passes": (
        "[8, 6, 6]",
        (
            "- {name: c, op: conv, input: x, out_channels: 100, kernel: 3, padding: 1, "
            "per_channel: true}"
        ),
    ),
    "pc_conv_epochs": (
        "[64, 4, 4]",
        (
            "- {name: c, op: conv, input: x, out_channels: 40, kernel: 3, padding: 1, "
            "per_channel: true}"
        ),
    ),
    "pc_then_per_tensor": (
        "[16, 5, 5]",
        (
            "- {name: a, op: conv, input: x, out_channels: 16, kernel: 3, padding: 1, "
            "per_channel: true}\n  - {name: c, op: conv, input: a, out_channels: 8, "
            "kernel: 1, relu: true}"
        ),
    ),
}


def _network(tmp_path: Path, name: str, spec: tuple[str, str]) -> Network:
    shape, ops = spec
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"format: voltflow-network/1\nname: {name}\ntitle: {name}\nsource: test\n"
        f"input: {{name: x, shape: {shape}}}\nops:\n  {ops}\n"
    )
    return load_network(str(path))


@pytest.fixture(scope="module")
def chip() -> Chip:
    return load_chip(SMALL_CHIP)


@pytest.fixture(scope="module")
def spec_build(chip: Chip) -> VerilatorBuild:
    return accelerator_build(chip)


def _assert_exact(result: RunResult, *, data: bool = True) -> None:
    for op in result.ops:
        assert op.measured_cycles == op.predicted_cycles, (
            op.name,
            op.measured_cycles,
            op.predicted_cycles,
        )
        assert op.measured == op.predicted, (op.name, op.measured, op.predicted)
        if data:
            assert op.bit_exact is not False, op.name
    if data:
        assert result.ops[-1].bit_exact is True


# ---- single layers ---------------------------------------------------------------------------


@pytest.mark.cosim
@pytest.mark.parametrize("state", STATES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_is_bit_exact_and_cycle_exact(
    name: str,
    state: tuple[float, float, float],
    chip: Chip,
    spec_build: VerilatorBuild,
    tmp_path: Path,
) -> None:
    network = _network(tmp_path, name, LAYERS[name])
    result = run_network(network, chip, state, seed=7, verilator_build=spec_build)
    _assert_exact(result)


@pytest.mark.cosim
@pytest.mark.parametrize("state", STATES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(DRAIN_LAYERS))
def test_short_streams_drain_within_their_step(
    name: str,
    state: tuple[float, float, float],
    chip: Chip,
    spec_build: VerilatorBuild,
    tmp_path: Path,
) -> None:
    """Streams shorter than R + C ticks (3x3 depthwise, K_pad = 8): the step is extended by
    X = R + C - S ticks so the tile has left the array before it is written (docs/rtl.md)."""
    network = _network(tmp_path, name, DRAIN_LAYERS[name])
    result = run_network(network, chip, state, seed=7, verilator_build=spec_build)
    _assert_exact(result)
    assert any(_work(network, chip, op.name).drain_ticks > 0 for op in result.ops)


@pytest.mark.cosim
@pytest.mark.parametrize("state", STATES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(PER_CHANNEL_LAYERS))
def test_per_channel_layer_is_bit_exact_and_cycle_exact(
    name: str,
    state: tuple[float, float, float],
    chip: Chip,
    spec_build: VerilatorBuild,
    tmp_path: Path,
) -> None:
    """Each column requantised with its own m_c, s_c (docs/arithmetic.md); the 4 requantisation
    words per pass in the DMA beats, weight-buffer reads and cycles, as predicted."""
    network = _network(tmp_path, name, PER_CHANNEL_LAYERS[name])
    case = make_case(network, seed=7)
    result = run_network(network, chip, state, case=case, verilator_build=spec_build)
    _assert_exact(result)
    for op in network.ops:
        work = _work(network, chip, op.name)
        side = 4 + (4 if op.per_channel else 0)  # bias words, requantisation words
        assert work.load_beats == work.reduction + side, op.name
        params = case.params[op.name]
        if op.per_channel and op.kind is OpKind.CONV:
            assert params.channel_m is not None and np.unique(params.channel_m).size > 1
        assert (params.channel_m is not None) == op.per_channel


def _work(network: Network, chip: Chip, name: str) -> OpWork:
    from voltflow.scheduler.dataflow import op_work

    return op_work(network.op(name), chip, network)


# ---- randomised layers -------------------------------------------------------------------


@pytest.mark.cosim
@pytest.mark.parametrize("seed", range(8))
def test_random_layers_are_bit_exact_and_cycle_exact(
    seed: int, chip: Chip, spec_build: VerilatorBuild, tmp_path: Path
) -> None:
    """Seeded random shapes (reproducible in CI); each runs at one of the three states."""
    rng = np.random.default_rng(1000 + seed)
    spec = random_layer(rng)
    network = _network(tmp_path, f"random{seed}", spec)
    result = run_network(network, chip, STATES[seed % 3], seed=seed, verilator_build=spec_build)
    _assert_exact(result)


@pytest.mark.cosim
@pytest.mark.parametrize("seed", range(6))
def test_random_layers_with_attention_are_bit_exact_and_cycle_exact(
    seed: int, chip: Chip, spec_build: VerilatorBuild, tmp_path: Path
) -> None:
    """The seeded random layers with attention blocks among the kinds, plus one random attention
    block per seed (so every seed runs the three attention ops)."""
    rng = np.random.default_rng(2000 + seed)
    network = _network(tmp_path, f"random_attention{seed}", random_layer(rng, ATTENTION_KINDS))
    result = run_network(network, chip, STATES[seed % 3], seed=seed, verilator_build=spec_build)
    _assert_exact(result)
    block = attention_block(random_attention_block(rng), f"random_block{seed}")
    result = run_network(block, chip, STATES[(seed + 1) % 3], seed=seed, verilator_build=spec_build)
    _assert_exact(result)


# ---- attention -------------------------------------------------------------------------------


@pytest.mark.cosim
@pytest.mark.parametrize("state", STATES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(ATTENTION_BLOCKS))
def test_attention_block_is_bit_exact_and_cycle_exact(
    name: str, state: tuple[float, float, float], chip: Chip, spec_build: VerilatorBuild
) -> None:
    """A transformer block (qkv 1x1 conv, Q K^T, softmax, A V, projection, residual add) with one
    and two heads, heads that straddle channel blocks, patches 1, 2 and 2x1 and token counts
    that are and are not multiples of 8 (tests/cosim/attention_nets.py): every op's cycles and
    counters as predicted, every op's output bit-exact (docs/attention.md)."""
    network = attention_block(ATTENTION_BLOCKS[name], name)
    result = run_network(network, chip, state, seed=7, verilator_build=spec_build)
    _assert_exact(result)
    kinds = {op.kind for op in network.ops}
    assert {OpKind.MATMUL, OpKind.SOFTMAX} <= kinds
    assert all(op.bit_exact is True for op in result.ops)


# ---- whole networks --------------------------------------------------------------------------


@pytest.mark.cosim
@pytest.mark.parametrize("build", ["full", "own"])
@pytest.mark.parametrize("state", STATES, ids=lambda s: ",".join(map(str, s)))
@pytest.mark.parametrize("name", ["resnet8", "ds_cnn"])
def test_mlperf_tiny_network_is_exact(
    name: str,
    state: tuple[float, float, float],
    build: str,
    chip: Chip,
    spec_build: VerilatorBuild,
    tmp_path: Path,
) -> None:
    """Also equal to the recorded run (tests/cosim/rtl_reference.py): every op's cycles and raw
    counter line, the run's counters and a digest of every observed output. On the chip's full
    build and on the network's own, whose attention engines are empty (no attention ops): the
    same run to the counter."""
    given = spec_build if build == "full" else None
    network = load_network(name)
    assert not uses_attention(network)
    result = run_network(network, chip, state, seed=1, verilator_build=given, run_dir=tmp_path)
    _assert_exact(result)
    lines = (tmp_path / "stats.txt").read_text().splitlines()
    stats = [[int(x) for x in line.split()] for line in lines]
    rtl_reference.check(
        f"accel/{name}/{','.join(map(str, state))}",
        {
            "cycles": [[op.name, op.measured_cycles] for op in result.ops],
            "stats": rtl_reference.dense_columns(stats),
            "counters": rtl_reference.dense_counters(result.counters),
            "outputs": rtl_reference.digest(result.outputs),
        },
    )


@pytest.mark.cosim
@pytest.mark.slow
@pytest.mark.parametrize("state", STATES, ids=lambda s: ",".join(map(str, s)))
def test_squeezenet_on_the_reference_chip_is_exact(state: tuple[float, float, float]) -> None:
    chip = load_chip()
    result = run_network(load_network("squeezenet"), chip, state, seed=0)
    _assert_exact(result)


# ---- lint ------------------------------------------------------------------------------------


@pytest.mark.cosim
def test_generated_verilog_passes_lint_wall(chip: Chip) -> None:
    report = lint(accel_build_spec(chip))
    assert report.passed, report.output


# ---- the testbench's own check ----------------------------------------------------------------


@pytest.mark.cosim
def test_testbench_fails_when_the_rtl_differs_from_the_expectation(
    chip: Chip, spec_build: VerilatorBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cocotb test itself fails (not only the host's later comparison) when what it is told
    to expect differs from what the RTL does: here one op's cycles and one output's digest."""
    real = accel_run.testbench_expectation

    def wrong(*args: Any, **kwargs: Any) -> dict[str, Any]:
        expectation: dict[str, Any] = real(*args, **kwargs)
        expectation["ops"][0]["cycles"] += 1
        expectation["outputs"]["c"]["digest"] = "0" * 64
        return expectation

    network = _network(tmp_path, "conv1x1", LAYERS["conv1x1"])
    good = run_network(network, chip, STATES[0], seed=7, verilator_build=spec_build)
    assert good.passed and good.testbench_mismatches == ()
    monkeypatch.setattr(accel_run, "testbench_expectation", wrong)
    run_dir = tmp_path / "run"
    bad = run_network(network, chip, STATES[0], seed=7, verilator_build=spec_build, run_dir=run_dir)
    assert any(m.startswith("op 0: cycles ") for m in bad.testbench_mismatches)
    assert "output c differs from the golden model" in bad.testbench_mismatches
    assert not bad.passed
    # The RTL did the same as before; only the expectation was wrong.
    assert [op.measured_cycles for op in bad.ops] == [op.measured_cycles for op in good.ops]
    # cocotb recorded the test as failed.
    results = (run_dir / "sim" / "results.xml").read_text()
    assert "<failure" in results and "differs from the expectation" in results


def test_only_networks_with_attention_ops_get_the_attention_engines_logic() -> None:
    """A build for a network without attention matmuls or softmax leaves the B loader and the
    softmax unit empty (docs/attention.md, "What it costs the other networks")."""
    assert uses_attention(load_network("mobilevit_xxs"))
    assert not any(uses_attention(load_network(n)) for n in ("squeezenet", "resnet8", "ds_cnn"))
