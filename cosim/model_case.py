"""Golden cases of real models: an imported model's int8 parameters in the golden model's terms.

`model_case` is `cosim.golden.make_case` for a network that brings its own weights
(`scheduler.onnx_model.Model`): the model's int8 weights and biases, each conv's and fc's float32
requantisation scales as exact per-channel multipliers (`golden.pick_channel_multiplier`), the
16-bit multipliers of average pools and adds (`golden.pick_multiplier`), and the seeded float input
quantised with the model's input scale.
"""

import numpy as np
from voltflow.cosim.golden import (
    Case,
    OpParams,
    add_multipliers,
    case_from_params,
    make_case,
    pick_channel_multiplier,
    pick_multiplier,
)
from voltflow.scheduler.network import Network, OpKind
from voltflow.scheduler.onnx_model import Model
from voltflow.scheduler.quantise import Quantised, seeded_input

__all__ = ["case_of", "model_case", "model_params"]


def model_params(network: Network, quantised: Quantised) -> dict[str, OpParams]:
    """The golden model's parameters of every requantised op of ``network``."""
    params: dict[str, OpParams] = {}
    for op in network.ops:
        if op.kind in (OpKind.CONV, OpKind.FC):
            weight = quantised.weights[op.name]
            if op.kind is OpKind.FC:
                src = op.in_shapes[0]
                weight = weight.reshape(op.out.channels, src.channels, src.height, src.width)
            pairs = [
                pick_channel_multiplier(np.float32(v)) for v in quantised.channel_scales[op.name]
            ]
            params[op.name] = OpParams(
                weight=np.ascontiguousarray(weight, dtype=np.int8),
                bias=np.ascontiguousarray(quantised.biases[op.name], dtype=np.int32),
                m=1,
                s=0,
                channel_m=np.array([m for m, _ in pairs], dtype=np.int64),
                channel_s=np.array([s for _, s in pairs], dtype=np.int64),
            )
        elif op.kind is OpKind.AVGPOOL:
            m, s = pick_multiplier(quantised.op_scales[op.name][0])
            params[op.name] = OpParams(None, None, m, s)
        elif op.kind is OpKind.ADD:
            m_a, m_b, s = add_multipliers(*quantised.op_scales[op.name])
            params[op.name] = OpParams(None, None, m_a, s, m_b)
    return params


def model_case(model: Model, seed: int = 0, x: np.ndarray | None = None) -> Case:
    """The golden case of a model with its own parameters, on the seeded float input of ``seed``
    (or the float (C, H, W) input ``x``), quantised with the model's input scale."""
    if model.quantised is None:
        raise ValueError(f"network {model.network.name!r} has no parameters of its own")
    network = model.network
    image = seeded_input(network, seed) if x is None else x
    return case_from_params(
        network,
        model.quantised.quantise_input(image),
        model_params(network, model.quantised),
        seed=seed,
    )


def case_of(model: Model, seed: int) -> Case:
    """The golden case of ``model``: its own parameters (`model_case`), or seeded random ones for
    a network without weights (`golden.make_case`)."""
    return (
        model_case(model, seed) if model.quantised is not None else make_case(model.network, seed)
    )
