"""Imported models on the RTL: the model's own weights, end to end, cycle- and bit-exact."""

from pathlib import Path

import numpy as np
import pytest
from voltflow.cosim.flow import FlowRequest, StateRequest, run_fixed_state, run_flow
from voltflow.cosim.model_case import model_case
from voltflow.cosim.onnx_reference import compare_with_onnxruntime
from voltflow.scheduler.onnx_model import load_model

from bench.onnx_reference import reference_model
from tests.onnx.graphs import light


def test_qdq_model_end_to_end_equals_onnxruntime(tmp_path: Path) -> None:
    """onnxruntime's QDQ model of a small CNN: the RTL run is cycle-exact and bit-exact against
    the golden model, whose every tensor equals onnxruntime's, so the RTL computes what
    onnxruntime computes, element for element."""
    path = reference_model("small_cnn", tmp_path, share=True)
    report = run_flow(FlowRequest(network=path, frames=1, out_dir=tmp_path / "run"))
    assert report.passed, report.failures
    assert report.data["weights"] == "file"
    assert report.data["quantisation"] == "the model's own (QDQ/QOperator) scales"
    assert "weights: the model's own (small_cnn_qdq.onnx)" in report.text
    comparison = compare_with_onnxruntime(load_model(path))
    assert all(row.equal == row.elements for row in comparison.layers)


def test_float_model_at_a_fixed_state(tmp_path: Path) -> None:
    """A float model quantised by voltflow, one inference at a fixed state: every op
    cycle-exact, counters equal, outputs bit-exact; the golden case uses the file's weights."""
    from bench.onnx_reference import small_cnn

    path = small_cnn(tmp_path / "float.onnx")
    report = run_fixed_state(StateRequest(network=path, state_v=(0.9, 1.3, 1.0)))
    assert report.passed
    assert report.data["weights"] == "file"
    model = load_model(path)
    case = model_case(model)
    assert model.quantised is not None
    first = model.network.ops[0].name
    assert np.array_equal(case.params[first].weight, model.quantised.weights[first])


def test_sparsity_is_refused_with_real_weights(tmp_path: Path) -> None:
    from voltflow.cosim.flow import FlowError

    from bench.onnx_reference import small_cnn

    path = small_cnn(tmp_path / "float.onnx")
    with pytest.raises(FlowError, match=r"--sparsity zeroes random weights; .* brings its own"):
        run_fixed_state(StateRequest(network=path, sparsity=0.5))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["squeezenet", "resnet50"])
def test_light_model_end_to_end(tmp_path: Path, name: str) -> None:
    report = run_flow(FlowRequest(network=light(name), frames=1, out_dir=tmp_path / "run"))
    assert report.passed, report.failures
    assert report.data["weights"] == "file" and report.data["host_softmax"]
