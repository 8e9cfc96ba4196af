"""Seeded random single-layer networks for the RTL tests (tests/cosim/test_accel.py) and their
Python-side checks (tests/cosim/test_random_layers.py)."""

import numpy as np
import yaml
from voltflow.scheduler.network import Network, network_from_document

from tests.cosim.attention_nets import attention_layer, random_attention_block

__all__ = ["ATTENTION_KINDS", "LAYER_KINDS", "layer_network", "random_layer"]

#: The kinds of the original random layers (conv twice as likely).
LAYER_KINDS = ("conv", "conv", "depthwise", "fc", "maxpool", "avgpool", "add")
#: The same with attention blocks (scores, softmax, context between 1x1 convs).
ATTENTION_KINDS = (*LAYER_KINDS, "attention")


def random_layer(rng: np.random.Generator, kinds: tuple[str, ...] = LAYER_KINDS) -> tuple[str, str]:
    """A random single-op network (input shape, ops): kind, channels, odd sizes, kernels, strides
    and padding; with ``"attention"`` among ``kinds``, also a random attention block
    (`attention_nets.random_attention_block`). The default kinds draw the same networks as before
    attention existed, seed for seed."""
    kind = rng.choice(list(kinds))
    if kind == "attention":
        return attention_layer(random_attention_block(rng))
    c = int(rng.integers(1, 24))
    h, w = int(rng.integers(3, 12)), int(rng.integers(3, 12))
    kh, kw = int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1))
    sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    pad = [int(rng.integers(0, k)) for k in (kh, kw, kh, kw)]  # top, left, bottom, right < kernel
    relu = bool(rng.integers(0, 2))
    common = f"kernel: [{kh}, {kw}], stride: [{sh}, {sw}], padding: {pad}"
    if kind == "conv":
        out = int(rng.integers(1, 40))
        op = f"- {{name: c, op: conv, input: x, out_channels: {out}, {common}, relu: {relu}}}"
    elif kind == "depthwise":
        op = (
            f"- {{name: c, op: conv, input: x, out_channels: {c}, {common}, groups: {c}, "
            f"relu: {relu}}}"
        )
    elif kind == "fc":
        # The whole input is one reduction: keep it within the small chip's weight buffer.
        h, w = min(h, 4), min(w, 4)
        op = f"- {{name: c, op: fc, input: x, out_features: {int(rng.integers(1, 30))}}}"
    elif kind in ("maxpool", "avgpool"):
        pad = [min(p, k // 2) for p, k in zip(pad, (kh, kw, kh, kw), strict=True)]
        ceil = bool(rng.integers(0, 2))
        op = (
            f"- {{name: c, op: {kind}, input: x, kernel: [{kh}, {kw}], stride: [{sh}, {sw}], "
            f"padding: {pad}, ceil_mode: {ceil}}}"
        )
    else:
        op = (
            f"- {{name: a, op: conv, input: x, out_channels: {c}, kernel: 1}}\n"
            f"  - {{name: c, op: add, inputs: [x, a], relu: {relu}}}"
        )
    return f"[{c}, {h}, {w}]", op


def layer_network(name: str, spec: tuple[str, str]) -> Network:
    """The network of a ``(input shape, ops)`` pair of `random_layer` (input ``x``)."""
    shape, ops = spec
    text = (
        f"format: voltflow-network/1\nname: {name}\ntitle: {name}\nsource: test\n"
        f"input: {{name: x, shape: {shape}}}\nops:\n  {ops}\n"
    )
    return network_from_document(yaml.safe_load(text), f"{name}.yaml")
