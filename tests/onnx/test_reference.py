"""voltflow's int8 arithmetic against onnxruntime on QDQ models made by `quantize_static`."""

from pathlib import Path

import pytest
from voltflow.cosim.onnx_reference import OrtComparison
from voltflow.scheduler.onnx_model import load_model

from bench.onnx_reference import compare, reference_model


def _all_ops_agree(result: OrtComparison) -> None:
    """Each op alone, given onnxruntime's int8 inputs, computes onnxruntime's int8 output."""
    for row in result.layers:
        if row.local_equal is not None:
            assert row.local_equal == row.elements, row


def test_small_cnn_shared_scales_every_element_equal(tmp_path: Path) -> None:
    result = compare("small_cnn", tmp_path, share=True)
    assert not result.notes
    for row in result.layers:
        assert row.equal == row.elements and row.max_lsb == 0, row
    _all_ops_agree(result)
    assert result.top1_agrees


def test_small_cnn_defaults_differ_only_by_the_double_rounding(tmp_path: Path) -> None:
    """quantize_static's defaults give a concat input its own scale: onnxruntime rounds twice,
    the accelerator once (noted). Every op alone still agrees; the run differs by 1 LSB at most."""
    result = compare("small_cnn", tmp_path)
    assert any("e3" in note and "rounds once" in note for note in result.notes)
    _all_ops_agree(result)
    assert max(row.max_lsb for row in result.layers) == 1
    before = {"x", "c1", "p1", "d1", "e1"}
    for row in result.layers:
        if row.tensor in before:
            assert row.equal == row.elements, row
    assert result.top1_agrees


def test_qoperator_model(tmp_path: Path) -> None:
    """The QOperator form (QLinearConv, QLinearConcat, QLinearAdd, QGemm) of the same CNN."""
    from voltflow.cosim.onnx_reference import compare_with_onnxruntime, quantize_qdq

    from bench.onnx_reference import small_cnn

    path = quantize_qdq(small_cnn(tmp_path / "f.onnx"), tmp_path / "qop.onnx", operators=True)
    result = compare_with_onnxruntime(load_model(path))
    _all_ops_agree(result)
    assert sum(row.local_equal is not None for row in result.layers) >= 3
    assert result.top1_agrees


def test_report_names_weights_and_scales(tmp_path: Path) -> None:
    model = load_model(reference_model("small_cnn", tmp_path, share=True))
    assert model.weights == "file"
    assert model.quantised is not None
    assert model.quantised.scheme == "the model's own (QDQ/QOperator) scales"


@pytest.mark.slow
def test_squeezenet_against_onnxruntime(tmp_path: Path) -> None:
    """SqueezeNet 1.1 (the onnx package's topology, seeded random weights), QDQ with shared concat
    scales: each op alone agrees except where onnxruntime's float32 kernels land within float
    error of a rounding boundary (a handful of elements, 1 LSB); top-1 agrees."""
    result = compare("squeezenet", tmp_path, share=True)
    for row in result.layers:
        if row.local_equal is not None:
            assert row.local_equal >= row.elements - 3 and (row.local_max_lsb or 0) <= 1, row
    assert result.top1_agrees
