"""Bad ONNX input: one line each, naming the file, the node or tensor and the fix."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.onnx.graphs import Builder, light
from voltflow.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str, lines: int = 1) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == lines - 1, err
    assert "Traceback" not in err
    return err


def _small(tmp_path: Path, opset: int = 13, dims: list[int | str] | None = None) -> Path:
    b = Builder([1, 3, 8, 8], opset=opset)
    out = b.node("Relu", [b.conv("x", 3, 8, 3)])
    return b.save(tmp_path / "small.onnx", out, dims)


def test_not_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    err = _run(capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"))
    assert f"{path}: " in err and "not a readable ONNX model" in err
    assert not (tmp_path / "n.yaml").exists()


def test_truncated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = light("squeezenet").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    err = _run(capsys, "model", "--net", str(path))
    assert f"{path}: " in err and "truncated" in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _run(capsys, "model", "--net", str(tmp_path / "nope.onnx"))
    assert err == f"voltflow model: error: {tmp_path / 'nope.onnx'}: no such file"


@pytest.mark.parametrize("opset", [8, 22])
def test_opset_outside_9_to_21(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opset: int
) -> None:
    path = _small(tmp_path)
    model = onnx.load(str(path))
    model.opset_import[0].version = opset
    onnx.save(model, str(path))
    err = _run(capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"))
    assert f"opset {opset} is outside the 9..21 voltflow reads" in err
    assert "onnx.version_converter.convert_version" in err


def test_dynamic_input_needs_input_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _small(tmp_path, dims=["N", 3, "H", "W"])
    err = _run(capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"))
    assert (
        "input 'x' has the dynamic shape [N, 3, H, W]; give its size with --input-shape C,H,W"
        in err
    )
    out = tmp_path / "n.yaml"
    assert main(["import", str(path), "-o", str(out), "--input-shape", "3,16,12"]) == 0
    capsys.readouterr()
    assert "shape: [3, 16, 12]" in out.read_text()
    err = _run(capsys, "import", str(path), "-o", str(out), "--input-shape", "3,x")
    assert "--input-shape must be C,H,W of positive ints" in err


def test_missing_external_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Builder([1, 3, 8, 8])
    out = b.node("Relu", [b.conv("x", 3, 64, 3)])
    model = b.model(out)
    path = tmp_path / "ext.onnx"
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="ext.data",
        size_threshold=0,
    )
    (tmp_path / "ext.data").unlink()
    err = _run(capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"))
    assert "keeps its data in the external file 'ext.data'" in err and "copy the data file" in err


def test_two_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 4, 4]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])],
    )
    path = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    err = _run(capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"))
    assert "the graph has 2 inputs ('a', 'b'); a voltflow network takes exactly one input" in err


def test_unsupported_nodes_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _run(
        capsys, "import", str(light("bvlc_alexnet")), "-o", str(tmp_path / "n.yaml"), lines=4
    )
    assert err.splitlines() == [
        f"voltflow import: error: {light('bvlc_alexnet')}: 2 nodes cannot run on the accelerator:",
        "  node 18 'n2' (LRN): local response normalisation has no unit on the accelerator",
        "  node 22 'n6' (LRN): local response normalisation has no unit on the accelerator",
        err.splitlines()[3],
    ]
    assert err.splitlines()[3].startswith("Supported operators: Add, AveragePool,")


def test_asymmetric_zero_point_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = Builder([1, 3, 8, 8])
    q = b.node("QuantizeLinear", ["x", b.const(np.float32(0.05)), b.const(np.uint8(100))])
    d = b.node("DequantizeLinear", [q, b.const(np.float32(0.05)), b.const(np.uint8(100))])
    path = b.save(tmp_path / "asym.onnx", b.node("Relu", [b.conv(d, 3, 8, 3)]))
    err = _run(capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"))
    assert "zero point 100 (uint8)" in err and "ActivationSymmetric" in err


def test_output_must_be_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _run(capsys, "import", str(_small(tmp_path)), "-o", str(tmp_path / "n.json"))
    assert "must end in .yaml" in err
    err = _run(capsys, "import", str(_small(tmp_path)))
    assert "-o FILE.yaml" in err


def test_bad_calibration_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _small(tmp_path)
    wrong = tmp_path / "cal.npy"
    np.save(wrong, np.zeros((2, 3, 4, 4), np.float32))
    err = _run(
        capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"), "--calibration", str(wrong)
    )
    assert f"{wrong}: shape [2, 3, 4, 4]; the network input is [3, 8, 8]" in err
    np.save(wrong, np.zeros((3, 8, 8), np.int8))
    err = _run(
        capsys, "import", str(path), "-o", str(tmp_path / "n.yaml"), "--calibration", str(wrong)
    )
    assert "holds int8 values; calibration inputs are float" in err
    assert not (tmp_path / "n.yaml").exists()


def test_invalid_model_refused_by_the_checker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = onnx.load(str(_small(tmp_path)))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    group = next(a for a in conv.attribute if a.name == "group")
    conv.attribute.remove(group)
    conv.attribute.append(helper.make_attribute("group", [1, 2]))
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    err = _run(capsys, "model", "--net", str(path))
    assert f"{path}: is not a valid ONNX model: " in err
    assert "onnx.checker.check_model shows the problem" in err
