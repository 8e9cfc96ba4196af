"""Quantisation of imported models and the network file's `parameters`: reproducible runs."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from voltflow.cosim.onnx_reference import quantize_qdq
from voltflow.scheduler.network import NetworkError, load_network
from voltflow.scheduler.onnx_graph import read_onnx
from voltflow.scheduler.onnx_import import import_onnx
from voltflow.scheduler.onnx_model import load_model
from voltflow.scheduler.quantise import share_groups

from tests.onnx.graphs import Builder
from voltflow.cli import main


def _float_model(tmp_path: Path) -> Path:
    b = Builder([1, 3, 12, 12])
    c1 = b.node("Relu", [b.conv("x", 3, 8, 3, pads=[1, 1, 1, 1])])
    p = b.node("MaxPool", [c1], kernel_shape=[2, 2], strides=[2, 2])
    c2 = b.node("Relu", [b.conv(p, 8, 8, 1)])
    c3 = b.node("Relu", [b.conv(p, 8, 8, 3, pads=[1, 1, 1, 1])])
    cat = b.node("Concat", [c2, c3], axis=1)
    c4 = b.conv(cat, 16, 16, 1)
    a = b.node("Relu", [b.node("Add", [c4, cat])])
    g = b.node("GlobalAveragePool", [a])
    f = b.node("Flatten", [g])
    return b.save(
        tmp_path / "float.onnx", b.node("Gemm", [f, b.weight(10, 16), b.weight(10)], transB=1)
    )


def test_float_model_is_calibrated_with_shared_scales(tmp_path: Path) -> None:
    model = load_model(_float_model(tmp_path))
    q = model.quantised
    assert q is not None and model.weights == "file"
    assert "seeded standard-normal input (seed 0)" in q.scheme
    for group in share_groups(model.network):
        assert len({q.scales[name] for name in group}) == 1
    for name, weight in q.weights.items():
        assert weight.dtype == np.int8 and np.abs(weight).max() == 127, name
        assert q.channel_scales[name].dtype == np.float32


def test_network_file_reproduces_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _float_model(tmp_path)
    out = tmp_path / "net.yaml"
    assert main(["import", str(path), "-o", str(out), "--seed", "3"]) == 0
    capsys.readouterr()
    direct = load_model(path, seed=3)
    again = load_model(out)
    assert again.network.ops == direct.network.ops
    assert again.quantised is not None and direct.quantised is not None
    assert dict(again.quantised.scales) == dict(direct.quantised.scales)
    for name in direct.quantised.weights:
        assert np.array_equal(again.quantised.weights[name], direct.quantised.weights[name])
        assert np.array_equal(
            again.quantised.channel_scales[name], direct.quantised.channel_scales[name]
        )
    assert load_network(out).ops == direct.network.ops


def test_network_file_refuses_a_changed_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _float_model(tmp_path)
    out = tmp_path / "net.yaml"
    assert main(["import", str(path), "-o", str(out)]) == 0
    capsys.readouterr()
    model = onnx.load(str(path))
    model.producer_name = "edited"
    onnx.save(model, str(path))
    with pytest.raises(
        NetworkError,
        match=r"net.yaml: parameters.sha256: .* changed since the "
        r"import; import it again",
    ):
        load_model(out)
    path.unlink()
    with pytest.raises(NetworkError, match=r"parameters.onnx: .* does not exist"):
        load_model(out)


def test_network_file_refuses_edited_ops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _float_model(tmp_path)
    out = tmp_path / "net.yaml"
    assert main(["import", str(path), "-o", str(out)]) == 0
    capsys.readouterr()
    text = out.read_text().replace("relu: true", "relu: false", 1)
    out.write_text(text)
    with pytest.raises(NetworkError, match=r"ops: differ from the ops of 'float.onnx'"):
        load_model(out)


def test_calibration_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _float_model(tmp_path)
    inputs = np.random.default_rng(9).standard_normal((3, 3, 12, 12)).astype(np.float32) * 2
    np.save(tmp_path / "cal.npy", inputs)
    out = tmp_path / "net.yaml"
    assert (
        main(["import", str(path), "-o", str(out), "--calibration", str(tmp_path / "cal.npy")]) == 0
    )
    capsys.readouterr()
    assert "calibrated on 3 input(s) of" in out.read_text()
    model = load_model(out)
    assert model.quantised is not None
    assert model.quantised.input_scale == pytest.approx(np.abs(inputs).max() / 127, rel=1e-6)


def test_qdq_model_keeps_its_own_weights_and_scales(tmp_path: Path) -> None:
    qdq = quantize_qdq(_float_model(tmp_path), tmp_path / "qdq.onnx")
    imported = import_onnx(read_onnx(qdq))
    assert imported.quantised
    model = load_model(qdq)
    q = model.quantised
    assert q is not None and q.scheme == "the model's own (QDQ/QOperator) scales"
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(qdq)).graph.initializer}
    int8 = [v for k, v in inits.items() if v.dtype == np.int8 and v.ndim == 4]
    ours = [w for w in q.weights.values() if w.ndim == 4]
    assert any(np.array_equal(w, o) for w in int8 for o in ours)
    # the two expand convs have their own scales in the model and are rounded to the concat's
    assert any("requantised to" in note for note in q.notes)
