"""Small transformer-block networks for the attention tests (docs/attention.md).

`attention_block` builds one attention block on a ``[C, H, W]`` map: a 1x1 conv computes Q, K and V
into one map, then scores (Q K^T), softmax, context (A V), a 1x1 projection and the residual add.
`ATTENTION_BLOCKS` names a set that covers heads 1 and 2, head widths 8, 12 (heads that straddle
channel blocks) and 16, patches 1, 2 and 2x1, and token counts N that are and are not multiples
of 8; `random_attention_block` draws one from a seeded generator. Every block maps on
tests/data/chip_small.yaml and runs through `make_case` and `compile_program`.
"""

from dataclasses import dataclass

import numpy as np
import yaml
from voltflow.scheduler.network import Network, network_from_document

__all__ = [
    "ATTENTION_BLOCKS",
    "GENERIC_MATMUL",
    "AttentionBlock",
    "attention_block",
    "attention_layer",
    "generic_matmul_network",
    "random_attention_block",
]

_L = 8  # lanes per word: the channel block


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@dataclass(frozen=True)
class AttentionBlock:
    """The parameters of one attention block.

    ``q_channel`` is Q's first channel in the qkv map; K follows at the next channel whose lane
    equals Q's (scores need ``a_channel = b_channel mod 8``) and V at the next channel block
    (context needs ``b_channel mod 8 = 0``).
    """

    channels: int = 16
    height: int = 4
    width: int = 4
    heads: int = 1
    head_channels: int = 8
    patch: tuple[int, int] = (1, 1)
    q_channel: int = 0
    residual: bool = True

    @property
    def tokens(self) -> int:
        return (self.height // self.patch[0]) * (self.width // self.patch[1])

    @property
    def k_channel(self) -> int:
        return self.q_channel + _round_up(self.heads * self.head_channels, _L)

    @property
    def v_channel(self) -> int:
        return _round_up(self.k_channel + self.heads * self.head_channels, _L)

    @property
    def qkv_channels(self) -> int:
        return self.v_channel + self.heads * self.head_channels


def _ops(block: AttentionBlock) -> list[dict[str, object]]:
    """The block's ops on the input ``x``: qkv, qk, softmax, av, proj (and the residual add)."""
    layout = {
        "heads": block.heads,
        "head_channels": block.head_channels,
        "patch": list(block.patch),
    }
    ops: list[dict[str, object]] = [
        {
            "name": "qkv",
            "op": "conv",
            "input": "x",
            "out_channels": block.qkv_channels,
            "kernel": 1,
        },
        {
            "name": "qk",
            "op": "matmul",
            "inputs": ["qkv", "qkv"],
            "attention": "scores",
            **layout,
            "a_channel": block.q_channel,
            "b_channel": block.k_channel,
        },
        {"name": "softmax", "op": "softmax", "input": "qk"},
        {
            "name": "av",
            "op": "matmul",
            "inputs": ["softmax", "qkv"],
            "attention": "context",
            **layout,
            "b_channel": block.v_channel,
        },
        {"name": "proj", "op": "conv", "input": "av", "out_channels": block.channels, "kernel": 1},
    ]
    if block.residual:
        ops.append({"name": "add", "op": "add", "inputs": ["x", "proj"]})
    return ops


def attention_block(block: AttentionBlock, name: str = "attention") -> Network:
    """The network of one attention block (input ``x``, the last op the residual add or proj)."""
    document = {
        "format": "voltflow-network/1",
        "name": name,
        "title": f"attention block {block}",
        "source": "tests/cosim/attention_nets.py",
        "input": {"name": "x", "shape": [block.channels, block.height, block.width]},
        "ops": _ops(block),
    }
    return network_from_document(document, f"{name}.yaml")


def attention_layer(block: AttentionBlock) -> tuple[str, str]:
    """The block as ``(input shape, ops)`` YAML text, the form of the single-layer networks of
    tests/cosim/test_accel.py (ops as flow mappings, one per line, indented for ``ops:``)."""
    lines = [
        yaml.safe_dump(op, default_flow_style=True, sort_keys=False, width=1 << 16).strip()
        for op in _ops(block)
    ]
    return f"[{block.channels}, {block.height}, {block.width}]", "\n  ".join(
        f"- {line}" for line in lines
    )


#: Named blocks: N = 16, 16, 24 (multiples of 8) and 6, 9, 12, 15 (not), misaligned heads
#: (dh = 12: the second head starts in the middle of a block; Q from channel 4).
ATTENTION_BLOCKS = {
    "h1_d8_p1_4x4": AttentionBlock(),
    "h2_d8_p2_8x8": AttentionBlock(height=8, width=8, heads=2, patch=(2, 2)),
    "h2_d12_p1_6x4": AttentionBlock(height=6, width=4, heads=2, head_channels=12),
    "h2_d12_p2_6x4_q4": AttentionBlock(
        channels=12, height=6, width=4, heads=2, head_channels=12, patch=(2, 2), q_channel=4
    ),
    "h1_d16_p2_6x6": AttentionBlock(channels=24, height=6, width=6, head_channels=16, patch=(2, 2)),
    "h2_d16_p1_5x3": AttentionBlock(height=5, width=3, heads=2, head_channels=16, residual=False),
    "h1_d12_p2x1_4x6": AttentionBlock(
        channels=8, height=4, width=6, head_channels=12, patch=(2, 1), q_channel=4
    ),
}


def random_attention_block(rng: np.random.Generator) -> AttentionBlock:
    """A seeded random block: heads 1-2, dh 8/12/16, Q from channel 0 or 4, patch 1, 2 or 2x1,
    maps up to 8x8 (every such head layout keeps the lane rules of docs/attention.md)."""
    patch = [(1, 1), (2, 2), (2, 1)][int(rng.integers(0, 3))]
    return AttentionBlock(
        channels=int(rng.integers(1, 25)),
        height=patch[0] * int(rng.integers(1, 8 // patch[0] + 1)),
        width=patch[1] * int(rng.integers(1, 8 // patch[1] + 1)),
        heads=int(rng.integers(1, 3)),
        head_channels=int(rng.choice([8, 12, 16])),
        patch=patch,
        q_channel=int(rng.choice([0, 4])),
        residual=bool(rng.integers(0, 2)),
    )


#: A network file with one generic matmul (no ``attention`` layout): the cost model maps it, the
#: golden model, the program compiler and the RTL flow refuse it.
GENERIC_MATMUL = (
    "format: voltflow-network/1\nname: generic\ntitle: t\nsource: s\n"
    "input: {name: x, shape: [8, 4, 4]}\nops:\n"
    "  - {name: m, op: matmul, inputs: [x, x], batch: 2, m: 4, k: 8, n: 4, out_shape: [2, 4, 4]}\n"
)


def generic_matmul_network() -> Network:
    """:data:`GENERIC_MATMUL` as a network."""
    return network_from_document(yaml.safe_load(GENERIC_MATMUL), "generic.yaml")
