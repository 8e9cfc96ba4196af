"""ONNX import: the light_* topologies, float semantics op by op against onnxruntime, opsets."""

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from voltflow.scheduler.network import OpKind, load_network
from voltflow.scheduler.onnx_graph import OnnxError, read_onnx
from voltflow.scheduler.onnx_import import census, import_onnx
from voltflow.scheduler.quantise import float_forward

from tests.onnx.graphs import LIGHT, Builder, light, ort_run
from voltflow.cli import main

IMPORTS = ["squeezenet", "resnet50", "inception_v2"]
#: Imports, but its first fc (25088 x 4096) does not fit the reference chip's weight buffer.
TOO_BIG = "vgg19"
#: Refused models and the unsupported nodes each error must list.
REFUSED = {
    "bvlc_alexnet": ["node 18 'n2' (LRN)", "node 22 'n6' (LRN)"],
    "zfnet512": ["node 18 'n2' (LRN)", "node 22 'n6' (LRN)"],
    "inception_v1": ["node 96 'n3' (LRN)", "node 101 'n8' (LRN)"],
    "densenet121": ["(BatchNormalization): BatchNormalization must follow a conv or fc"],
    "shufflenet": ["(Conv): group 4", "(Transpose): a transpose of activations"],
}


def test_every_light_model_is_covered() -> None:
    names = {p.name.removeprefix("light_").removesuffix(".onnx") for p in LIGHT.glob("*.onnx")}
    assert names == {*IMPORTS, TOO_BIG, *REFUSED}


def _onnx_macs(path: Path) -> int:
    """MACs of the Conv and Gemm nodes, from onnx shape inference alone (independent of the
    importer): out elements x (C_in / group) x kh x kw, and N x K."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)
    }
    consts = {}
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape":
            consts[node.output[0]] = node.input[0]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}

    def wshape(name: str) -> list[int]:
        return [int(v) for v in inits[consts[name]]] if name in consts else list(inits[name].shape)

    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            out = shapes[node.output[0]]
            _, c_in_g, kh, kw = wshape(node.input[1])
            total += math.prod(out) * c_in_g * kh * kw
        elif node.op_type == "Gemm":
            n, k = wshape(node.input[1])
            total += n * k
    return total


@pytest.mark.parametrize("name", IMPORTS)
def test_light_model_imports_with_exact_macs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = light(name)
    assert main(["model", "--net", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    network = load_network(path)
    macs = sum(layer["macs"] for layer in report["layers"])
    assert macs == network.macs == _onnx_macs(path)
    for layer in report["layers"]:
        op = network.op(layer["ops"][0])
        assert layer["out_shape"] == [op.out.channels, op.out.height, op.out.width]


def test_model_too_big_for_the_chip_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    network = load_network(light(TOO_BIG))
    assert network.macs == _onnx_macs(light(TOO_BIG))
    assert main(["model", "--net", str(light(TOO_BIG))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert (
        "network 'light_vgg19' on chip 'powerflow_ref': op r38: one pass needs 25096 words of "
        "the weight buffer, but half of it holds 5120" in err
    )


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_light_model_refused_naming_every_node(name: str) -> None:
    with pytest.raises(OnnxError) as info:
        import_onnx(read_onnx(light(name)))
    text = str(info.value)
    assert text.startswith(f"{light(name)}: ")
    for fragment in REFUSED[name]:
        assert fragment in text
    assert "upported operators: " in text


def test_light_squeezenet_is_the_zoo_squeezenet() -> None:
    zoo = load_network("squeezenet")
    imported = load_network(light("squeezenet"))
    assert imported.macs == zoo.macs == 349_151_936
    assert len(imported.ops) == len(zoo.ops)
    for a, b in zip(zoo.ops, imported.ops, strict=True):
        assert (a.kind, a.out, a.kernel, a.stride, a.padding, a.groups, a.relu) == (
            b.kind,
            b.out,
            b.kernel,
            b.stride,
            b.padding,
            b.groups,
            b.relu,
        ), (a.name, b.name)


def test_census_counts_every_node(capsys: pytest.CaptureFixture[str]) -> None:
    rows, problems = census(read_onnx(light("shufflenet")))
    graph = read_onnx(light("shufflenet"))
    assert sum(n for _, _, n in rows) == len(graph.nodes)
    assert len(problems) == 17
    assert main(["import", "--list-ops", str(light("squeezenet"))]) == 0
    out = capsys.readouterr().out
    assert "every node maps onto the accelerator" in out
    assert "Softmax" in out and "left to the host" in out


# ---- op by op: the imported float network computes what onnxruntime computes ---------------------


def _check_float(tmp_path: Path, b: Builder, out: str, dims: list[int] | None = None) -> None:
    path = b.save(tmp_path / "m.onnx", out)
    imported = import_onnx(read_onnx(path))
    x = np.random.default_rng(5).standard_normal(b.input_shape).astype(np.float32)
    expected = ort_run(path, x)[0]
    ours = float_forward(imported, x[0])[imported.network.output.name]
    if imported.host_softmax:  # the host's part
        ours = np.exp(ours - ours.max()) / np.exp(ours - ours.max()).sum()
    np.testing.assert_allclose(ours.reshape(-1), expected.reshape(-1), rtol=1e-4, atol=1e-4)


def _graph(kind: str, opset: int = 13) -> tuple[Builder, str]:
    b = Builder([1, 6, 11, 9], opset=opset)
    x = "x"
    if kind == "asym_pads":
        return b, b.conv(x, 6, 10, (3, 5), strides=[2, 1], pads=[0, 1, 2, 2])
    if kind == "same_upper":
        return b, b.conv(x, 6, 8, 3, strides=[2, 2], auto_pad="SAME_UPPER")
    if kind == "same_lower":
        return b, b.conv(x, 6, 8, 4, strides=[2, 2], auto_pad="SAME_LOWER")
    if kind == "depthwise_bn_relu":
        c = b.conv(x, 6, 6, 3, groups=6, pads=[1, 1, 1, 1])
        bn = b.node(
            "BatchNormalization",
            [
                c,
                b.const(np.abs(b.rng.standard_normal(6)).astype(np.float32) + 0.5),
                b.weight(6),
                b.weight(6),
                b.const((np.abs(b.rng.standard_normal(6)) + 0.3).astype(np.float32)),
            ],
            epsilon=1e-3,
        )
        return b, b.node("Relu", [bn])
    if kind == "affine_relu6":
        c = b.conv(x, 6, 8, 1, bias=False)
        m = b.node("Mul", [c, b.const(b.rng.standard_normal((8, 1, 1)).astype(np.float32))])
        a = b.node("Add", [m, b.const(b.rng.standard_normal((1, 8, 1, 1)).astype(np.float32))])
        if opset < 11:
            return b, b.node("Clip", [a], min=0.0, max=6.0)
        return b, b.node("Clip", [a, b.const(np.float32(0.0)), b.const(np.float32(6.0))])
    if kind == "pools":
        p = b.node(
            "MaxPool",
            [x],
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 0, 1, 1],
            **({"ceil_mode": 1} if opset >= 10 else {}),
        )
        q = b.node(
            "AveragePool",
            [p],
            kernel_shape=[2, 3],
            strides=[1, 2],
            pads=[1, 1, 0, 1],
            count_include_pad=1,
        )
        return b, b.node("GlobalMaxPool", [q])
    if kind == "residual_concat":
        c1 = b.conv(x, 6, 6, 3, pads=[1, 1, 1, 1])
        r = b.node("Relu", [c1])
        s = b.node("Sum", [r, x]) if opset < 13 else b.node("Add", [r, x])
        c2 = b.conv(s, 6, 4, 1)
        cat = b.node("Concat", [s, c2], axis=1)
        d = b.node("Dropout", [cat])
        return b, b.node("Identity", [d])
    if kind == "classifier":
        c = b.node("Relu", [b.conv(x, 6, 8, 3)])
        g = b.node("GlobalAveragePool", [c])
        f = b.node("Flatten", [g], axis=1)
        h = b.node("Gemm", [f, b.weight(16, 8), b.weight(16)], transB=1, alpha=0.5, beta=2.0)
        r = b.node("Relu", [h])
        k = b.node("Gemm", [r, b.weight(16, 5), b.weight(5)])
        m = b.node("MatMul", [k, b.weight(5, 4)])
        a = b.node("Add", [m, b.weight(4)])
        return b, b.node("Softmax", [a], axis=1)
    if kind == "reshape_by_shape":
        c = b.node("Relu", [b.conv(x, 6, 4, 3, strides=[2, 2])])
        shape = b.node("Shape", [c])
        n = b.node("Gather", [shape, b.const(np.array(0, np.int64))], axis=0)
        nn = (
            b.node("Unsqueeze", [n, b.const(np.array([0], np.int64))])
            if opset >= 13
            else b.node("Unsqueeze", [n], axes=[0])
        )
        target = b.node("Concat", [nn, b.const(np.array([-1], np.int64))], axis=0)
        flat = b.node("Reshape", [c, target])
        return b, b.node("Gemm", [flat, b.weight(3, 4 * 5 * 4), b.weight(3)], transB=1)
    raise AssertionError(kind)


KINDS = [
    "asym_pads",
    "same_upper",
    "same_lower",
    "depthwise_bn_relu",
    "affine_relu6",
    "pools",
    "residual_concat",
    "classifier",
    "reshape_by_shape",
]


@pytest.mark.parametrize("kind", KINDS)
def test_float_semantics_match_onnxruntime(tmp_path: Path, kind: str) -> None:
    b, out = _graph(kind)
    _check_float(tmp_path, b, out)


@pytest.mark.parametrize("opset", [9, 10, 11, 12, 13, 15, 17, 18, 19, 21])
@pytest.mark.parametrize("kind", ["affine_relu6", "pools", "residual_concat", "classifier"])
def test_opsets_9_to_21(tmp_path: Path, kind: str, opset: int) -> None:
    b, out = _graph(kind, opset)
    _check_float(tmp_path, b, out)


def test_final_softmax_is_left_to_the_host(tmp_path: Path) -> None:
    b, out = _graph("classifier")
    imported = import_onnx(read_onnx(b.save(tmp_path / "m.onnx", out)))
    assert imported.host_softmax
    assert imported.network.output.kind is OpKind.FC


def test_matmul_of_two_activations_maps_to_matmul(tmp_path: Path) -> None:
    b = Builder([1, 4, 6, 6])
    q = b.conv("x", 4, 2, 1)
    k = b.conv("x", 4, 2, 1)
    kt = b.node("Transpose", [k], perm=[0, 1, 3, 2])
    path = b.save(tmp_path / "m.onnx", b.node("MatMul", [q, kt]))
    with pytest.raises(OnnxError, match=r"\(Transpose\): a transpose of activations"):
        import_onnx(read_onnx(path))
    b = Builder([1, 4, 6, 6])
    q = b.conv("x", 4, 2, 1)
    v = b.conv("x", 4, 2, 1)
    path = b.save(tmp_path / "m2.onnx", b.node("MatMul", [q, v]))
    op = import_onnx(read_onnx(path)).network.output
    assert op.kind is OpKind.MATMUL and op.matmul is not None
    assert (op.matmul.batch, op.matmul.m, op.matmul.k, op.matmul.n) == (2, 6, 6, 6)
    assert (op.out.channels, op.out.height, op.out.width) == (2, 6, 6)


@pytest.mark.parametrize("name", IMPORTS)
def test_import_schedule_compile(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The user's path: import the model, schedule it, compile the PMU ROM."""
    net = tmp_path / f"{name}.yaml"
    assert main(["import", str(light(name)), "-o", str(net)]) == 0
    schedule = tmp_path / "schedule.json"
    assert (
        main(["schedule", "--net", str(net), "--fps", "2", "-o", str(schedule), "--no-baselines"])
        == 0
    )
    assert main(["compile", str(schedule), "-o", str(tmp_path / "rom.hex")]) == 0
    out = capsys.readouterr().out
    assert "commands written to" in out
    assert json.loads(schedule.read_text())["provenance"]["network"] == str(net)


def test_fold_refused_when_the_conv_output_has_another_reader(tmp_path: Path) -> None:
    """A per-channel Add (constant first) or a BatchNormalization cannot fold into a conv whose
    output another node also reads: the fold would change what that node sees."""
    b = Builder([1, 4, 6, 6])
    c = b.conv("x", 4, 4, 1)
    a = b.node("Add", [b.const(np.ones((1, 4, 1, 1), np.float32)), c])
    path = b.save(tmp_path / "m.onnx", b.node("Add", [a, c]))
    with pytest.raises(OnnxError, match=r"\(Add\): Add's input is also read elsewhere"):
        import_onnx(read_onnx(path))
    b = Builder([1, 4, 6, 6])
    c = b.conv("x", 4, 4, 1)
    ident = b.node("Identity", [c])
    ones = b.const(np.ones(4, np.float32))
    bn = b.node("BatchNormalization", [c, ones, b.weight(4), b.weight(4), ones])
    path = b.save(tmp_path / "m2.onnx", b.node("Add", [bn, ident]))
    with pytest.raises(OnnxError, match=r"BatchNormalization's input is also read elsewhere"):
        import_onnx(read_onnx(path))
