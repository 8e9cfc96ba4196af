"""Zero gating and skipping on the RTL (chip ``array.sparsity: gate | skip``, docs/sparsity.md):
per op, the cycles and every counter of the input's exact prediction (cosim/operands.py), every
output bit-exact against the golden model; gating keeps the dense cycles, skipping never adds
any."""

from dataclasses import replace

import numpy as np
import pytest
from voltflow.cosim.accel_run import RunResult, accelerator_build, run_network
from voltflow.cosim.build import VerilatorBuild
from voltflow.cosim.golden import case_from_params, make_case
from voltflow.cosim.operands import case_operands
from voltflow.scheduler.chip import Chip, Sparsity, load_chip
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.network import Network, load_network
from voltflow.scheduler.sparsity import OpOperands, operand_pairs

from tests.cosim.attention_nets import ATTENTION_BLOCKS, attention_block
from tests.cosim.random_layers import ATTENTION_KINDS, layer_network, random_layer
from tests.cosim.test_accel import LAYERS, PER_CHANNEL_LAYERS, SMALL_CHIP, STATES

pytestmark = pytest.mark.cosim


CHIPS = {kind: replace(load_chip(SMALL_CHIP), sparsity=kind) for kind in Sparsity}


@pytest.fixture(scope="module", params=[Sparsity.GATE, Sparsity.SKIP], ids=lambda s: s.value)
def sparse(request: pytest.FixtureRequest) -> tuple[Chip, VerilatorBuild]:
    chip = CHIPS[request.param]
    return chip, accelerator_build(chip)


@pytest.fixture(scope="module")
def gate_chip() -> Chip:
    return CHIPS[Sparsity.GATE]


@pytest.fixture(scope="module")
def gate_build(gate_chip: Chip) -> VerilatorBuild:
    return accelerator_build(gate_chip)


@pytest.fixture(scope="module")
def skip_chip() -> Chip:
    return CHIPS[Sparsity.SKIP]


@pytest.fixture(scope="module")
def skip_build(skip_chip: Chip) -> VerilatorBuild:
    return accelerator_build(skip_chip)


def _assert_sparse_exact(result: RunResult, network: Network, chip: Chip) -> None:
    """Cycles and every counter as the input's exact prediction, outputs bit-exact; gating keeps
    the dense cycles and skipping never adds a cycle."""
    dense = CHIPS[Sparsity.NONE]
    for op in result.ops:
        assert op.measured_cycles == op.predicted_cycles, (op.name, op.measured_cycles)
        assert op.measured == op.predicted, (op.name, op.measured, op.predicted)
        assert op.bit_exact is not False, op.name
        work = op_work(network.op(op.name), dense, network)
        if chip.sparsity is Sparsity.GATE:
            assert op.predicted.sys_ticks == work.activity.sys_ticks, op.name
        assert op.measured.sys_ticks <= work.activity.sys_ticks, op.name
        if chip.sparsity is Sparsity.GATE:
            pairs = operand_pairs(op_work(network.op(op.name), chip, network), chip)
            ticks = pairs // (chip.rows * chip.cols)  # valid elements: R + C operands each
            assert op.measured.zero_detects == ticks * (chip.rows + chip.cols), op.name
    assert result.ops[-1].bit_exact is True


@pytest.mark.parametrize(
    "name", ["conv3x3_relu", "conv5x3_s2_asym", "depthwise5x5", "fc", "conv_epochs", "add_relu"]
)
def test_sparse_layer_is_exact(name: str, sparse: tuple[Chip, VerilatorBuild]) -> None:
    """Half of every layer's weights zero, at each state in turn."""
    chip, build = sparse
    network = layer_network(name, LAYERS[name])
    case = make_case(network, seed=11, sparsity=0.5)
    state = STATES[sorted(LAYERS).index(name) % 3]
    result = run_network(network, chip, state, case=case, verilator_build=build)
    _assert_sparse_exact(result, network, chip)
    assert sum(op.measured.gated_macs for op in result.ops) > 0


def test_gated_macs_of_a_known_zero_pattern(gate_chip: Chip, gate_build: VerilatorBuild) -> None:
    """A 1x1 conv of 8 -> 8 channels on a 4 x 4 map whose input is zero on a known pattern and
    whose weights have no zero: each non-zero input value meets the 8 output channels' weights
    in one PE each, so 8 x nnz(x) MACs are done and the rest of the pairs are gated."""
    network = layer_network(
        "known", ("[8, 4, 4]", "- {name: c, op: conv, input: x, out_channels: 8, kernel: 1}")
    )
    base = make_case(network, seed=3)
    weight = np.where(base.params["c"].weight == 0, 1, base.params["c"].weight).astype(np.int8)
    x = (np.arange(1, 8 * 16 + 1).reshape(8, 4, 4) % 5).astype(np.int8)  # every fifth is 0
    x[2] = 0  # a whole channel
    x[:, 3, :] = 0  # a whole row of pixels
    params = dict(base.params)
    params["c"] = replace(params["c"], weight=weight)
    case = case_from_params(network, x, params)
    nonzero = int(np.count_nonzero(x))
    work = op_work(network.ops[0], gate_chip, network)
    pairs = operand_pairs(work, gate_chip)
    assert pairs == 64 * 2 * 1 * 8  # R x C PEs x 2 tiles x 1 pass x K_pad 8
    assert case_operands(case, gate_chip, [work]) == {"c": OpOperands(8 * nonzero)}
    result = run_network(network, gate_chip, STATES[0], case=case, verilator_build=gate_build)
    _assert_sparse_exact(result, network, gate_chip)
    assert result.ops[0].measured.gated_macs == pairs - 8 * nonzero


def test_skipped_steps_of_a_known_zero_pattern(skip_chip: Chip, skip_build: VerilatorBuild) -> None:
    """A 3x3 conv (no padding) of 8 -> 8 channels on 6 x 6: 16 output pixels in 2 tiles, K_pad =
    9 taps x 8 lanes = 72. Only input channels 0 and 1 are non-zero, and everywhere: each tap's
    block streams 2 elements, so a tile streams 18 of 72 (S = max(18, C + 1) = 18 ticks, the
    step's last sub-tile max(18, R + C) = 18) and the op has 2 x 18 + flush 16 = 52 sys ticks
    instead of 2 x 72 + 16 = 160."""
    network = layer_network(
        "known_skip",
        ("[8, 6, 6]", "- {name: c, op: conv, input: x, out_channels: 8, kernel: 3}"),
    )
    base = make_case(network, seed=3)
    x = np.zeros((8, 6, 6), dtype=np.int8)
    x[:2] = (np.arange(2 * 36).reshape(2, 6, 6) % 7 + 1).astype(np.int8)
    case = case_from_params(network, x, base.params)
    result = run_network(network, skip_chip, STATES[1], case=case, verilator_build=skip_build)
    _assert_sparse_exact(result, network, skip_chip)
    measured = result.ops[0].measured
    assert (measured.sys_ticks, measured.skipped_steps) == (52, 2 * (72 - 18))
    assert op_work(network.ops[0], skip_chip, network).activity.sys_ticks == 160


@pytest.mark.parametrize("name", ["pc_depthwise3x3_s2", "pc_conv_many_passes"])
def test_sparse_per_channel_layer_is_exact(name: str, sparse: tuple[Chip, VerilatorBuild]) -> None:
    chip, build = sparse
    network = layer_network(name, PER_CHANNEL_LAYERS[name])
    case = make_case(network, seed=5, sparsity=0.3)
    result = run_network(network, chip, STATES[1], case=case, verilator_build=build)
    _assert_sparse_exact(result, network, chip)


@pytest.mark.parametrize("name", ["h2_d12_p2_6x4_q4", "h1_d12_p2x1_4x6"])
def test_sparse_attention_block_is_exact(name: str, sparse: tuple[Chip, VerilatorBuild]) -> None:
    """Q K^T and A V gate on the zeros of Q, K, the probabilities and V (softmax outputs of
    small scores are 0) and skip keys whose probabilities are all 0."""
    chip, build = sparse
    network = attention_block(ATTENTION_BLOCKS[name], name)
    result = run_network(network, chip, STATES[2], seed=4, verilator_build=build)
    _assert_sparse_exact(result, network, chip)
    matmuls = [op for op in result.ops if network.op(op.name).attention is not None]
    assert matmuls and any(op.measured.gated_macs for op in matmuls)


def test_sparse_network_is_exact(sparse: tuple[Chip, VerilatorBuild]) -> None:
    """A whole network (ReLU activations: the zeros come from the data)."""
    chip, build = sparse
    network = load_network("ds_cnn")
    result = run_network(network, chip, STATES[0], seed=2, verilator_build=build)
    _assert_sparse_exact(result, network, chip)
    gated = sum(op.measured.gated_macs for op in result.ops)
    assert gated > 0.2 * sum(op.measured.macs for op in result.ops)
    if chip.sparsity is Sparsity.SKIP:
        assert sum(op.measured.skipped_steps for op in result.ops) > 0


@pytest.mark.parametrize("seed", range(6))
def test_sparsity_never_changes_outputs_or_adds_cycles(
    seed: int, sparse: tuple[Chip, VerilatorBuild]
) -> None:
    """Property over seeded random layers (attention blocks among them), random weight sparsity
    and inputs with random zeros: outputs are the golden (dense) ones; gating keeps the dense
    cycles, skipping never adds one (`_assert_sparse_exact`)."""
    chip, build = sparse
    rng = np.random.default_rng(3000 + seed)
    network = layer_network(f"sparse_random{seed}", random_layer(rng, ATTENTION_KINDS))
    base = make_case(network, seed=seed, sparsity=float(rng.uniform(0, 0.9)))
    x = base.input.copy()
    x[rng.random(x.shape) < rng.uniform(0, 0.9)] = 0
    case = case_from_params(network, x, base.params, seed=seed)
    result = run_network(network, chip, STATES[seed % 3], case=case, verilator_build=build)
    _assert_sparse_exact(result, network, chip)
