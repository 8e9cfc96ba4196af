"""The seeded random layers of the RTL tests, attention blocks included, on the Python side only:
each builds, maps on tests/data/chip_small.yaml, has a golden case and compiles to a layer
program (the RTL runs are tests/cosim/test_accel.py's)."""

from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.golden import make_case
from voltflow.cosim.images import descriptor_quant, rram_image, scratchpad_image
from voltflow.rtl.program import OpMode, compile_program
from voltflow.scheduler.chip import load_chip
from voltflow.scheduler.dataflow import op_work
from voltflow.scheduler.memory import plan_memory
from voltflow.scheduler.network import OpKind

from tests.cosim.random_layers import ATTENTION_KINDS, layer_network, random_layer

SMALL_CHIP = Path(__file__).resolve().parents[1] / "data" / "chip_small.yaml"
SEEDS = range(40)


@pytest.fixture(scope="module")
def chip():
    return load_chip(SMALL_CHIP)


def test_attention_is_drawn_among_the_random_layers() -> None:
    drawn = [random_layer(np.random.default_rng(1000 + seed), ATTENTION_KINDS) for seed in SEEDS]
    with_attention = [ops for _, ops in drawn if "attention: scores" in ops]
    assert 3 <= len(with_attention) < len(drawn)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_layer_builds_runs_and_compiles(seed: int, chip) -> None:
    spec = random_layer(np.random.default_rng(1000 + seed), ATTENTION_KINDS)
    network = layer_network(f"random{seed}", spec)
    works = tuple(op_work(op, chip, network) for op in network.ops)
    layout = plan_memory(network, chip, works)
    case = make_case(network, seed=seed)
    assert set(case.outputs) == {op.name for op in network.ops}
    scratchpad_image(case, chip, layout)
    rram_image(case, chip, layout, works)
    quant = {op.name: descriptor_quant(case, op.name) for op in network.ops}
    program = compile_program(network, chip, layout, works, quant)
    pairs = zip(program.descriptors, program.op_index, strict=True)
    modes = {network.ops[i].kind: d.mode for d, i in pairs}
    if OpKind.SOFTMAX in modes:
        assert modes[OpKind.SOFTMAX] is OpMode.SOFTMAX
        assert {OpMode.SCORES, OpMode.CONTEXT} <= {d.mode for d in program.descriptors}
