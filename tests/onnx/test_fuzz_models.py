"""Fuzzed ONNX files: corrupted bytes and mutated attributes either import or raise the loader's
one error type (`NetworkError`, with a message), never anything else."""

import os
from pathlib import Path

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper
from voltflow.scheduler.network import NetworkError, load_network

from tests.onnx.graphs import Builder

FAST = settings(
    max_examples=int(os.environ.get("VOLTFLOW_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _model() -> onnx.ModelProto:
    b = Builder([1, 4, 9, 9])
    c = b.node("Relu", [b.conv("x", 4, 8, 3, pads=[1, 1, 1, 1])])
    p = b.node("MaxPool", [c], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    d = b.conv(p, 8, 8, 3, groups=8, pads=[1, 1, 1, 1])
    a = b.node("Add", [d, p])
    g = b.node("GlobalAveragePool", [a])
    f = b.node("Flatten", [g])
    return b.model(b.node("Gemm", [f, b.weight(5, 8), b.weight(5)], transB=1))


MODEL = _model()
BYTES = MODEL.SerializeToString()


def _loads_or_refuses(path: Path) -> None:
    try:
        load_network(path)
    except NetworkError as exc:
        assert str(exc).startswith(str(path)), exc


@FAST
@given(data=st.data())
def test_corrupted_bytes(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(BYTES)
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    flips = data.draw(st.lists(st.integers(0, len(raw) - 1), max_size=6), label="flips")
    for index in flips:
        raw[index] ^= data.draw(st.integers(1, 255))
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(bytes(raw[:cut] if data.draw(st.booleans()) else raw))
    _loads_or_refuses(path)


ints = st.lists(st.integers(-3, 12), min_size=1, max_size=5)


@FAST
@given(data=st.data())
def test_mutated_attributes(tmp_path: Path, data: st.DataObject) -> None:
    model = onnx.ModelProto()
    model.CopyFrom(MODEL)
    nodes = [n for n in model.graph.node if n.attribute]
    node = nodes[data.draw(st.integers(0, len(nodes) - 1), label="node")]
    attribute = node.attribute[data.draw(st.integers(0, len(node.attribute) - 1), label="attr")]
    value = data.draw(st.one_of(ints, st.integers(-3, 12)), label="value")
    node.attribute.remove(attribute)
    node.attribute.append(helper.make_attribute(attribute.name, value))
    if data.draw(st.booleans(), label="drop an input"):
        victim = model.graph.node[data.draw(st.integers(0, len(model.graph.node) - 1))]
        if len(victim.input) > 1:
            del victim.input[-1]
    path = tmp_path / "fuzz.onnx"
    onnx.save(model, str(path))
    _loads_or_refuses(path)


@FAST
@given(shape=st.lists(st.integers(-1, 6), min_size=1, max_size=5))
def test_mutated_weights(tmp_path: Path, shape: list[int]) -> None:
    """A weight initializer of another shape (or rank)."""
    model = onnx.ModelProto()
    model.CopyFrom(MODEL)
    first = model.graph.initializer[0]
    dims = [max(d, 0) for d in shape]
    replacement = onnx.numpy_helper.from_array(np.zeros(dims, np.float32), first.name)
    model.graph.initializer.remove(first)
    model.graph.initializer.append(replacement)
    path = tmp_path / "fuzz.onnx"
    onnx.save(model, str(path))
    _loads_or_refuses(path)
