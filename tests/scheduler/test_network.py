"""Tests for scheduler.network: the zoo against independent MAC goldens, shapes, and the loader.

The golden MAC totals are computed here from the published architecture tables, without the YAML
files, and pinned as integers; each is also checked against the published figure.
"""

import itertools
import pathlib
import pickle
import re

import pytest
from voltflow.scheduler.network import (
    FORMAT,
    Attention,
    AttentionKind,
    MatmulDims,
    Network,
    NetworkError,
    Op,
    OpKind,
    Shape,
    known_networks,
    load_network,
)

ZOO = (
    "autoencoder",
    "ds_cnn",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilevit_xxs",
    "resnet18",
    "resnet8",
    "squeezenet",
    "squeezenet1_0",
    "vww",
)
ROOT = pathlib.Path(__file__).parents[2]
DOCS = ROOT / "docs" / "network-format.md"
ZOO_DIR = ROOT / "scheduler" / "networks"


# --------------------------------------------------------------------------------------------------
# Independent goldens: MACs of the weighted layers, from the architecture tables.


def _conv(cin: int, cout: int, k: int | tuple[int, int], out: int | tuple[int, int]) -> int:
    kh, kw = (k, k) if isinstance(k, int) else k
    ho, wo = (out, out) if isinstance(out, int) else out
    return cout * ho * wo * cin * kh * kw


def _dw(channels: int, k: int, out: int) -> int:
    return channels * out * out * k * k


def _squeezenet(version: str) -> int:
    # Fire(size, in, squeeze, expand): squeeze 1x1, expand1x1 and expand3x3 (padding 1).
    def fire(size: int, cin: int, sq: int, ex: int) -> int:
        return _conv(cin, sq, 1, size) + _conv(sq, ex, 1, size) + _conv(sq, ex, 3, size)

    if version == "1_1":
        # 224 -> conv 3x3/2: (224-3)//2+1 = 111 -> pool 3/2 ceil: 55 -> 27 -> 13.
        first = _conv(3, 64, 3, 111)
        fires = [(55, 64, 16, 64), (55, 128, 16, 64), (27, 128, 32, 128), (27, 256, 32, 128)]
        fires += [(13, 256, 48, 192), (13, 384, 48, 192), (13, 384, 64, 256), (13, 512, 64, 256)]
    else:
        # 224 -> conv 7x7/2: (224-7)//2+1 = 109 -> pool ceil: 54 -> ceil(51/2)+1 = 27 -> 13.
        first = _conv(3, 96, 7, 109)
        fires = [(54, 96, 16, 64), (54, 128, 16, 64), (54, 128, 32, 128), (27, 256, 32, 128)]
        fires += [(27, 256, 48, 192), (27, 384, 48, 192), (27, 384, 64, 256), (13, 512, 64, 256)]
    return first + sum(fire(*f) for f in fires) + _conv(512, 1000, 1, 13)


def _resnet18() -> int:
    macs = _conv(3, 64, 7, 112) + 4 * _conv(64, 64, 3, 56)  # conv1, layer1
    for cin, width, size in ((64, 128, 28), (128, 256, 14), (256, 512, 7)):
        macs += _conv(cin, width, 3, size) + 3 * _conv(width, width, 3, size)
        macs += _conv(cin, width, 1, size)  # downsample.0
    return macs + 512 * 1000


def _mobilenet_v2() -> int:
    macs, cin, size = _conv(3, 32, 3, 112), 32, 112
    # Sandler et al. 2018, Table 2: expansion t, channels c, repeats n, first stride s.
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
    for t, c, n, s in [*table, (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            hidden, size_in = cin * t, size
            size //= s if i == 0 else 1
            macs += (_conv(cin, hidden, 1, size_in) if t != 1 else 0) + _dw(hidden, 3, size)
            macs += _conv(hidden, c, 1, size)
            cin = c
    return macs + _conv(320, 1280, 1, 7) + 1280 * 1000


def _mobilenet_v3_small_without_se() -> int:
    macs, size = _conv(3, 16, 3, 112), 112
    # Howard et al. 2019, Table 2: in, kernel, expanded, out, stride (SE left out).
    table = [(16, 3, 16, 16, 2), (16, 3, 72, 24, 2), (24, 3, 88, 24, 1), (24, 5, 96, 40, 2)]
    table += [(40, 5, 240, 40, 1)] * 2 + [(40, 5, 120, 48, 1), (48, 5, 144, 48, 1)]
    table += [(48, 5, 288, 96, 2)] + [(96, 5, 576, 96, 1)] * 2
    for cin, k, exp, cout, stride in table:
        expand = _conv(cin, exp, 1, size) if exp != cin else 0
        size //= stride
        macs += expand + _dw(exp, k, size) + _conv(exp, cout, 1, size)
    return macs + _conv(96, 576, 1, 7) + 576 * 1024 + 1024 * 1000


def _mobilenet_v1(width: float, resolution: int, classes: int) -> int:
    # Howard et al. 2017, Table 1 scaled by the width multiplier; 'same' padding: ceil(size/stride).
    def ch(c: int) -> int:
        return int(c * width)

    size = -(-resolution // 2)
    macs, cin = _conv(3, ch(32), 3, size), ch(32)
    plan = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5
    for stride, cout in [*plan, (2, 1024), (1, 1024)]:
        size = -(-size // stride)
        macs += _dw(cin, 3, size) + _conv(cin, ch(cout), 1, size)
        cin = ch(cout)
    return macs + cin * classes


def _ds_cnn() -> int:
    # 49x10 -> conv 10x4/2 'same' -> 25x5x64; 4 x (dw 3x3 + pw 64); fc 64 -> 12.
    return _conv(1, 64, (10, 4), (25, 5)) + 4 * (64 * 25 * 5 * 9 + _conv(64, 64, 1, (25, 5))) + 768


def _resnet8() -> int:
    macs = _conv(3, 16, 3, 32) + 2 * _conv(16, 16, 3, 32)
    for cin, width, size in ((16, 32, 16), (32, 64, 8)):
        macs += (
            _conv(cin, width, 3, size) + _conv(width, width, 3, size) + _conv(cin, width, 1, size)
        )
    return macs + 64 * 10


def _autoencoder() -> int:
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    return sum(a * b for a, b in itertools.pairwise(widths))


def _mobilevit_xxs(resolution: int) -> int:
    """MobileViT-XXS (timm): transformer Linears as 1x1 convs, QK^T and AV as attention matmuls.

    A map whose side is odd is resized to the next even side for the transformer (timm), so at 224
    stage 4 runs its transformer on 8x8 = 64 tokens.
    """

    def mv2(size: int, cin: int, cout: int, stride: int) -> tuple[int, int]:
        out = size // stride
        return _conv(cin, 2 * cin, 1, size) + _dw(2 * cin, 3, out) + _conv(
            2 * cin, cout, 1, out
        ), out

    size = resolution // 2
    macs = _conv(3, 16, 3, size)
    for cin, cout, stride in ((16, 16, 1), (16, 24, 2), (24, 24, 1), (24, 24, 1)):
        block, size = mv2(size, cin, cout, stride)
        macs += block
    cin = 24
    for cout, d, ffn, depth in ((48, 64, 128, 2), (64, 80, 160, 4), (80, 96, 192, 3)):
        block, size = mv2(size, cin, cout, 2)
        macs += block + _conv(cout, cout, 3, size) + _conv(cout, d, 1, size)
        side = size + size % 2
        patches = side * side // 4
        linears = _conv(d, 3 * d, 1, side) + _conv(d, d, 1, side) + 2 * _conv(d, ffn, 1, side)
        attention = 2 * 4 * patches * patches * d  # QK^T and AV over 4 pixel positions, all heads
        macs += depth * (linears + attention)
        macs += _conv(d, cout, 1, size) + _conv(2 * cout, cout, 3, size)
        cin = cout
    return macs + _conv(80, 320, 1, size) + 320 * 1000


GOLDEN_FORMULAS = {
    "autoencoder": _autoencoder,
    "ds_cnn": _ds_cnn,
    "mobilenet_v1": lambda: _mobilenet_v1(1.0, 224, 1000),
    "mobilenet_v2": _mobilenet_v2,
    "mobilenet_v3_small": _mobilenet_v3_small_without_se,
    "mobilevit_xxs": lambda: _mobilevit_xxs(224),
    "resnet18": _resnet18,
    "resnet8": _resnet8,
    "squeezenet": lambda: _squeezenet("1_1"),
    "squeezenet1_0": lambda: _squeezenet("1_0"),
    "vww": lambda: _mobilenet_v1(0.25, 96, 2),
}

# name: (exact MACs, published MACs in millions as printed, weighted ops, output shape).
# Published figures count the weighted layers including the classifier fc (ResNet-18's 1814 M
# includes its 0.5 M fc; MobileNetV2's 300.8 M and 53 layers include the 1.28 M fc).
GOLDEN: dict[str, tuple[int, str | None, int, Shape]] = {
    "autoencoder": (264_192, "0.26", 10, Shape(640, 1, 1)),
    "ds_cnn": (2_656_768, "2.66", 10, Shape(12, 1, 1)),
    "mobilenet_v1": (568_740_352, "568.7", 28, Shape(1000, 1, 1)),
    "mobilenet_v2": (300_774_272, "300.8", 53, Shape(1000, 1, 1)),
    # Without SE. Howard et al. 2019 publish 56 M MAdds for the network with SE; the SE blocks'
    # two fcs per block would add 458_752 MACs (56_510_400 in all, 0.9 % above the paper's figure,
    # which torchvision-based counters also report as 56.5 M).
    "mobilenet_v3_small": (56_051_648, "56", 36, Shape(1000, 1, 1)),
    # No published figure at 224x224: see test_mobilevit_at_256_is_near_its_published_figure.
    "mobilevit_xxs": (301_495_296, None, 90, Shape(1000, 1, 1)),
    "resnet18": (1_814_073_344, "1814", 21, Shape(1000, 1, 1)),
    "resnet8": (12_501_632, "12.5", 10, Shape(10, 1, 1)),
    "squeezenet": (349_151_936, "349.2", 26, Shape(1000, 1, 1)),
    "squeezenet1_0": (818_924_576, "818.9", 26, Shape(1000, 1, 1)),
    "vww": (7_489_664, "7.49", 28, Shape(2, 1, 1)),
}


def test_known_networks_lists_the_zoo() -> None:
    assert known_networks() == ZOO


@pytest.mark.parametrize("name", ZOO)
def test_golden_formula_gives_the_pinned_integer(name: str) -> None:
    assert GOLDEN_FORMULAS[name]() == GOLDEN[name][0]


@pytest.mark.parametrize("name", [name for name in ZOO if GOLDEN[name][1] is not None])
def test_pinned_integer_agrees_with_the_published_figure(name: str) -> None:
    exact, published, _, _ = GOLDEN[name]
    assert published is not None
    # The exact count, rounded to the published figure's digits, is the published figure.
    decimals = len(published.partition(".")[2])
    assert f"{exact / 1e6:.{decimals}f}" == published


@pytest.mark.parametrize("name", ZOO)
def test_zoo_network_matches_golden(name: str) -> None:
    net = load_network(name)
    macs, _, weighted, output = GOLDEN[name]
    assert net.name == name
    assert net.source.strip()
    assert net.macs == macs
    assert len(net.weighted_ops) == weighted
    assert net.output.out == output
    assert net.output is net.ops[-1]
    assert net.consumers(net.output.name) == ()


def test_mobilevit_at_256_is_near_its_published_figure() -> None:
    # mmpretrain: MobileViT-XXSmall 0.42 GFLOPs at 256x256 (its counter also counts norms).
    assert _mobilevit_xxs(256) == 407_364_096
    assert _mobilevit_xxs(256) == pytest.approx(0.42e9, rel=0.04)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_files_cite_their_source_in_a_header_comment(name: str) -> None:
    text = (ZOO_DIR / f"{name}.yaml").read_text()
    assert text.startswith("# ")
    assert "Source: " in text.split("\nformat:")[0]


# --------------------------------------------------------------------------------------------------
# Shapes and structure of zoo networks.


def test_squeezenet_shapes() -> None:
    net = load_network("squeezenet")
    assert net.input == Shape(3, 224, 224)
    assert net.shape("features.0") == Shape(64, 111, 111)
    assert net.shape("features.2") == Shape(64, 55, 55)
    fires = {3: 128, 4: 128, 6: 256, 7: 256, 9: 384, 10: 384, 11: 512, 12: 512}
    for index, channels in fires.items():
        assert net.shape(f"features.{index}").channels == channels
    assert net.shape("features.12") == Shape(512, 13, 13)
    assert net.shape("classifier.1") == Shape(1000, 13, 13)
    # The PowerFlow-DNN artifact's 26 layer names (its instances name layers this way).
    fire_layers = [
        f"features.{i}.{part}"
        for i in (3, 4, 6, 7, 9, 10, 11, 12)
        for part in ("squeeze", "expand1x1", "expand3x3")
    ]
    expected = ["features.0", *fire_layers, "classifier.1"]
    assert [op.name for op in net.weighted_ops] == expected


def test_squeezenet1_0_ceil_mode_pool_pads_at_the_end() -> None:
    net = load_network("squeezenet1_0")
    pool = net.op("features.6")
    assert pool.in_shapes == (Shape(256, 54, 54),)
    assert pool.out == Shape(256, 27, 27)  # floor mode would give 26x26
    assert pool.padding == (0, 0, 1, 1)


def test_resnet18_downsamples_and_fc() -> None:
    net = load_network("resnet18")
    downsamples = [op for op in net.ops if "downsample" in op.name]
    assert [op.name for op in downsamples] == [f"layer{i}.0.downsample.0" for i in (2, 3, 4)]
    assert all(op.kernel == (1, 1) and op.stride == (2, 2) for op in downsamples)
    assert net.shape("maxpool") == Shape(64, 56, 56)
    assert net.shape("layer4.1") == Shape(512, 7, 7)
    fc = net.op("fc")
    assert fc.kind is OpKind.FC and fc.in_shapes == (Shape(512, 1, 1),)
    assert (fc.weight_count, fc.bias_count, fc.macs) == (512_000, 1000, 512_000)
    add = net.op("layer2.0")
    assert add.inputs == ("layer2.0.conv2", "layer2.0.downsample.0") and add.relu


def test_keras_same_padding_is_asymmetric() -> None:
    kws = load_network("ds_cnn").op("conv2d")
    # 49 rows, kernel 10, stride 2: 25 outputs need 24*2 + 10 - 49 = 9 rows of padding: 4 + 5.
    assert kws.padding == (4, 1, 5, 1) and kws.out == Shape(64, 25, 5)
    cifar = load_network("resnet8").op("conv2d_3")
    assert cifar.padding == (0, 0, 1, 1) and cifar.out == Shape(32, 16, 16)
    assert load_network("resnet8").op("conv2d_5").padding == (0, 0, 0, 0)


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "vww"])
def test_depthwise_convs_are_grouped_per_channel(name: str) -> None:
    net = load_network(name)
    depthwise = [op for op in net.ops if op.kind is OpKind.CONV and op.groups > 1]
    assert depthwise
    for op in depthwise:
        assert op.groups == op.in_shapes[0].channels == op.out.channels
        kh, kw = op.kernel
        assert op.weight_count == op.groups * kh * kw
        assert op.macs == op.out.elements * kh * kw


def test_mobilenet_v3_small_has_no_se() -> None:
    net = load_network("mobilenet_v3_small")
    convs = [op for op in net.weighted_ops if op.kind is OpKind.CONV]
    assert len(convs) == 34  # the PowerFlow-DNN paper's count: the convs, no classifier fcs
    assert all(op.out.height > 1 for op in convs)  # SE fcs would run on 1x1 maps


def test_mobilevit_attention() -> None:
    net = load_network("mobilevit_xxs")
    matmuls = [op for op in net.ops if op.kind is OpKind.MATMUL]
    assert len(matmuls) == 18
    assert len([op for op in net.weighted_ops if op.kind is not OpKind.FC]) == 89  # the paper's
    assert all(op.weight_count == 0 and op.bias_count == 0 for op in matmuls)
    qk = net.op("stages.2.1.transformer.0.attn.qk")
    assert qk.matmul == MatmulDims(batch=16, m=196, k=16, n=196)
    assert qk.inputs == ("stages.2.1.transformer.0.attn.qkv",) * 2
    assert qk.attention == Attention(AttentionKind.SCORES, 4, 16, (2, 2), 0, 64)
    assert qk.out == Shape(16 * 200, 1, 196)  # the scores tensor: N8 = 200 channels per batch
    assert qk.macs == 16 * 196 * 16 * 196
    softmax = net.op("stages.2.1.transformer.0.attn.softmax")
    assert softmax.kind is OpKind.SOFTMAX and softmax.inputs == (qk.name,)
    assert softmax.out == qk.out and net.consumers(qk.name) == (softmax,)
    av = net.op("stages.2.1.transformer.0.attn.av")
    assert av.matmul == MatmulDims(batch=16, m=196, k=196, n=16)
    assert av.attention == Attention(AttentionKind.CONTEXT, 4, 16, (2, 2), 0, 128)
    assert av.inputs == (softmax.name, "stages.2.1.transformer.0.attn.qkv")
    assert av.out == Shape(64, 28, 28)
    assert net.consumers(av.name) == (net.op("stages.2.1.transformer.0.attn.proj"),)
    assert len([op for op in net.ops if op.kind is OpKind.SOFTMAX]) == 9
    # Stage 3: heads of 20 channels, V from channel 160 of the 240-channel qkv map.
    av3 = net.op("stages.3.1.transformer.3.attn.av")
    assert av3.attention == Attention(AttentionKind.CONTEXT, 4, 20, (2, 2), 0, 160)
    assert av3.matmul == MatmulDims(16, 49, 49, 20) and av3.out == Shape(80, 14, 14)
    # Stage 4 (7x7) runs its transformer on the 8x8 map timm resizes to.
    assert net.shape("stages.4.1.resize_in") == Shape(96, 8, 8)
    assert net.op("stages.4.1.transformer.0.attn.qk").matmul == MatmulDims(16, 16, 24, 16)
    assert net.shape("stages.4.1.resize_out") == Shape(96, 7, 7)
    assert net.shape("stages.4.1.cat") == Shape(160, 7, 7)


def test_network_lookups() -> None:
    net = load_network("squeezenet")
    assert net.shape("image") == Shape(3, 224, 224)
    assert [op.name for op in net.consumers("image")] == ["features.0"]
    squeeze = [op.name for op in net.consumers("features.3.squeeze")]
    assert squeeze == ["features.3.expand1x1", "features.3.expand3x3"]
    with pytest.raises(KeyError, match="has no tensor 'nope'"):
        net.shape("nope")
    with pytest.raises(KeyError, match="has no op 'image'"):
        net.op("image")


def test_shape_elements_and_op_counts() -> None:
    assert Shape(64, 111, 111).elements == 64 * 111 * 111
    conv = load_network("squeezenet").op("features.3.expand3x3")
    assert (conv.weight_count, conv.bias_count) == (64 * 16 * 9, 64)
    assert conv.macs == 64 * 55 * 55 * 16 * 9
    assert conv.weighted and not load_network("squeezenet").op("features.3").weighted


def test_network_pickles_for_process_pools() -> None:
    net = load_network("mobilevit_xxs")
    copy = pickle.loads(pickle.dumps(net))
    assert copy == net and copy.shape("stages.4.1.cat") == Shape(160, 7, 7)


def test_load_by_path_equals_load_by_name() -> None:
    path = ZOO_DIR / "resnet8.yaml"
    assert load_network(path) == load_network("resnet8")
    assert load_network(str(path)) == load_network("resnet8")


def test_docs_example_loads(tmp_path: pathlib.Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    example = next(block for block in blocks if block.startswith("format:"))
    path = tmp_path / "example.yaml"
    path.write_text(example)
    net = load_network(path)
    assert net.output.out == Shape(10, 1, 1)
    assert net.shape("pool") == Shape(16, 8, 8) and net.op("pool").padding == (0, 0, 1, 1)
    assert net.macs == 218_272  # the sum worked out in the docs


def test_attention_spec_example_loads(tmp_path: pathlib.Path) -> None:
    """The block of docs/attention.md on a 64x28x28 map (MobileViT-XXS stage 2)."""
    spec = ROOT / "docs" / "attention.md"
    (example,) = re.findall(r"```yaml\n(.*?)```", spec.read_text(), flags=re.DOTALL)
    path = tmp_path / "attention.yaml"
    path.write_text(
        f"format: {FORMAT}\nname: a\ntitle: a\nsource: docs/attention.md\n"
        "input: {name: x, shape: [64, 28, 28]}\nops:\n" + example
    )
    net = load_network(path)
    assert net.op("blk.qk").out == Shape(16 * 200, 1, 196)
    assert net.op("blk.av").matmul == MatmulDims(16, 196, 196, 16)
    assert net.output.out == Shape(64, 28, 28)


# --------------------------------------------------------------------------------------------------
# The loader: ordering, pooling rules, and the pinned error messages.

HEADER = f"""\
format: {FORMAT}
name: tiny
title: Tiny
source: tests
input: {{name: x, shape: [4, 8, 8]}}
ops:
"""


def _write(tmp_path: pathlib.Path, ops: str, header: str = HEADER) -> pathlib.Path:
    path = tmp_path / "bad.yaml"
    path.write_text(header + ops)
    return path


def _pinned(path: pathlib.Path, message: str) -> str:
    return "^" + re.escape(f"{path}: {message}") + "$"


def test_ops_are_sorted_topologically_and_stably(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path,
        """\
  - {name: sum, op: add, inputs: [b, a]}
  - {name: b, op: conv, input: a, out_channels: 4, kernel: 1}
  - {name: a, op: conv, input: x, out_channels: 4, kernel: 1}
  - {name: c, op: conv, input: x, out_channels: 4, kernel: 1}
  - {name: out, op: concat, inputs: [sum, c]}
""",
    )
    net = load_network(path)
    assert [op.name for op in net.ops] == ["a", "b", "sum", "c", "out"]
    assert net.output.out == Shape(8, 8, 8)


@pytest.mark.parametrize(
    ("size", "padding", "out", "pads"),
    [
        (6, 0, 3, (0, 0, 1, 1)),  # ceil((6-3)/2)+1 = 3; floor would give 2
        (5, 1, 3, (1, 1, 1, 1)),  # naive ceil gives 4, but that window would start in the padding
    ],
)
def test_ceil_mode_follows_pytorch(
    tmp_path: pathlib.Path, size: int, padding: int, out: int, pads: tuple[int, ...]
) -> None:
    kernel = 3 if size == 6 else 2
    header = HEADER.replace("[4, 8, 8]", f"[4, {size}, {size}]")
    op = f"  - {{name: p, op: maxpool, input: x, kernel: {kernel}, stride: 2, padding: {padding}, "
    net = load_network(_write(tmp_path, op + "ceil_mode: true}\n", header))
    assert net.output.out == Shape(4, out, out)
    assert net.output.padding == pads


def test_pool_stride_defaults_to_kernel_and_global_pool_spans_the_map(
    tmp_path: pathlib.Path,
) -> None:
    path = _write(
        tmp_path,
        """\
  - {name: p, op: avgpool, input: x, kernel: [2, 4]}
  - {name: g, op: maxpool, input: p, global: true}
""",
    )
    net = load_network(path)
    assert net.op("p").stride == (2, 4) and net.shape("p") == Shape(4, 4, 2)
    assert net.op("g").kernel == (4, 2) and net.output.out == Shape(4, 1, 1)


def test_per_channel_is_read_for_conv_and_fc(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path,
        """\
  - {name: c, op: conv, input: x, out_channels: 8, kernel: 3, padding: 1, per_channel: true}
  - {name: d, op: conv, input: c, out_channels: 8, kernel: 3, groups: 8, per_channel: false}
  - {name: f, op: fc, input: d, out_features: 10, relu: true, per_channel: true}
""",
    )
    net = load_network(path)
    assert [op.per_channel for op in net.ops] == [True, False, True]
    # The default, and the zoo: one multiplier and shift per op.
    assert not any(op.per_channel for op in load_network("resnet8").ops)


def test_unknown_network_lists_known_ones() -> None:
    known = ", ".join(ZOO)
    with pytest.raises(NetworkError, match=f"^unknown network 'foo'; known networks: {known}$"):
        load_network("foo")


QKV = "{name: q, op: conv, input: x, out_channels: 24, kernel: 1}"
SCORES = "attention: scores, heads: 2, head_channels: 4, b_channel: 8"
#: (keys of an attention matmul on q = 24x8x8, message): each bad value of the attention form.
BAD_ATTENTION = [
    (
        "attention: keys, heads: 2, head_channels: 4",
        "ops[1] (m).attention: must be 'scores' or 'context', not 'keys'",
        "attention-kind",
    ),
    (
        "attention: [scores], heads: 2, head_channels: 4",
        "ops[1] (m).attention: must be 'scores' or 'context', not ['scores']",
        "attention-list",
    ),
    (
        "attention: scores, head_channels: 4",
        "ops[1] (m): missing key 'heads'; required keys for an attention matmul: inputs, "
        "attention, heads, head_channels",
        "attention-no-heads",
    ),
    (
        "attention: scores, heads: 0, head_channels: 4",
        "ops[1] (m).heads: must be a positive int, not 0",
        "attention-heads-zero",
    ),
    (
        "attention: scores, heads: 2, head_channels: 2.5",
        "ops[1] (m).head_channels: must be a positive int, not 2.5",
        "attention-dh-float",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, patch: [2, 0]",
        "ops[1] (m).patch: must be a positive int or [ph, pw], not [2, 0]",
        "attention-patch-zero",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, patch: 3",
        "ops[1] (m).patch: [3, 3] must tile the 8x8 map (height a multiple of 3, width a multiple "
        "of 3)",
        "attention-patch-untiled",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, a_channel: -1",
        "ops[1] (m).a_channel: must be a non-negative int, not -1",
        "attention-a-negative",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, b_channel: true",
        "ops[1] (m).b_channel: must be a non-negative int, not True",
        "attention-b-bool",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, a_channel: 20",
        "ops[1] (m).a_channel: a_channel 20 + heads 2 x head_channels 4 = 28 must be at most the "
        "24 channels of input a (24x8x8)",
        "attention-a-beyond",
    ),
    (
        "attention: scores, heads: 4, head_channels: 4, b_channel: 12",
        "ops[1] (m).b_channel: b_channel 12 + heads 4 x head_channels 4 = 28 must be at most the "
        "24 channels of input b (24x8x8)",
        "attention-b-beyond",
    ),
    (
        "attention: context, heads: 2, head_channels: 4, a_channel: 0",
        "ops[1] (m).a_channel: must be left out of a context matmul: its a input is the scores "
        "tensor; b_channel gives V's first channel",
        "context-a-channel",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, batch: 2",
        "ops[1] (m).batch: must be left out of an attention matmul: batch, m, k, n and the output "
        "shape follow from heads, head_channels, patch and the input shapes",
        "attention-batch",
    ),
    (
        "batch: 1, m: 64, k: 4, n: 64, out_shape: [64, 8, 8], heads: 2",
        "ops[1] (m).heads: belongs to the attention form of matmul: give 'attention: scores' or "
        "'attention: context' too, or leave it out for a generic matmul",
        "generic-heads",
    ),
    (
        "batch: 1, m: 64, k: 4, n: 64",
        "ops[1] (m): missing key 'out_shape'; required keys for a generic matmul: inputs, batch, "
        "m, k, n, out_shape (or give 'attention: scores' or 'attention: context' and its keys, "
        "docs/attention.md)",
        "generic-no-out-shape",
    ),
    (
        "attention: scores, heads: 2, head_channels: 4, keys: 3",
        "ops[1] (m): unknown key 'keys'; allowed keys for op kind 'matmul': name, op, inputs, "
        "batch, m, k, n, out_shape, attention, heads, head_channels, patch, a_channel, b_channel",
        "attention-unknown-key",
    ),
]

BAD_FILES = [
    pytest.param(
        "  - {name: c1, op: conv, input: x, out_channels: 4, kernel: 1}\n"
        "  - {name: c2, op: conv, input: c1, out_channels: 4, kernel: -1}\n",
        "ops[1] (c2).kernel: must be a positive int or [kh, kw], not -1",
        id="bad-kernel",
    ),
    pytest.param(
        "  - {name: c1, op: conv, input: x, out_channels: 4, kernel: [3, 0]}\n",
        "ops[0] (c1).kernel: must be a positive int or [kh, kw], not [3, 0]",
        id="bad-kernel-pair",
    ),
    pytest.param(
        "  - {name: c1, op: conv, input: x, out_channels: 4, kernal: 3}\n",
        "ops[0] (c1): unknown key 'kernal'; allowed keys for op kind 'conv': name, op, input, "
        "out_channels, kernel, stride, padding, groups, relu, per_channel",
        id="unknown-op-key",
    ),
    pytest.param(
        "  - {name: f, op: fc, input: x, out_features: 10, per_channel: 1}\n",
        "ops[0] (f).per_channel: must be true or false, not 1",
        id="bad-per-channel",
    ),
    pytest.param(
        "  - {name: p, op: maxpool, input: x, kernel: 2, per_channel: true}\n",
        "ops[0] (p): unknown key 'per_channel'; allowed keys for op kind 'maxpool': name, op, "
        "input, kernel, stride, padding, ceil_mode, global",
        id="per-channel-on-a-pool",
    ),
    pytest.param(
        "  - {name: c, op: conv, input: x, out_channels: 4, kernel: 1}\n"
        "  - {name: s, op: add, inputs: [c, x], per_channel: false}\n",
        "ops[1] (s): unknown key 'per_channel'; allowed keys for op kind 'add': name, op, inputs, "
        "relu",
        id="per-channel-on-an-add",
    ),
    pytest.param(
        "  - {name: c1, op: conv, input: y, out_channels: 4, kernel: 1}\n",
        "ops[0] (c1).input: must name the network input 'x' or an op, not 'y'",
        id="unknown-input",
    ),
    pytest.param(
        "  - {name: c1, op: conv, input: x, out_channels: 4, kernel: 1}\n"
        "  - {name: s, op: add, inputs: [c1, c3]}\n",
        "ops[1] (s).inputs[1]: must name the network input 'x' or an op, not 'c3'",
        id="unknown-input-in-list",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: x, out_channels: 4, kernel: 1}\n"
        "  - {name: b, op: add, inputs: [a, d]}\n"
        "  - {name: d, op: conv, input: b, out_channels: 4, kernel: 1}\n",
        "ops: the ops form a cycle: b -> d -> b",
        id="cycle",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: a, out_channels: 4, kernel: 1}\n",
        "ops: the ops form a cycle: a -> a",
        id="self-loop",
    ),
    pytest.param(
        "  - {name: dw, op: conv, input: x, out_channels: 4, kernel: 3, padding: 1, groups: 2}\n",
        "ops[0] (dw).groups: must be 1, or the input's 4 channels for a depthwise conv, not 2",
        id="depthwise-wrong-groups",
    ),
    pytest.param(
        "  - {name: dw, op: conv, input: x, out_channels: 8, kernel: 3, padding: 1, groups: 4}\n",
        "ops[0] (dw).out_channels: must equal the input's 4 channels for a depthwise conv "
        "(groups 4), not 8",
        id="depthwise-wrong-out-channels",
    ),
    pytest.param(
        "  - {name: c, op: conv, input: x, out_channels: 4, kernel: 1}\n"
        "  - {name: c, op: conv, input: c, out_channels: 4, kernel: 1}\n",
        "ops[1].name: duplicate op name 'c' (also ops[0])",
        id="duplicate-name",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: x, out_channels: 4, kernel: 1}\n"
        "  - {name: b, op: conv, input: x, out_channels: 4, kernel: 1}\n",
        "ops[0] (a): its output is read by no op; only the network output (the last op of the "
        "chain, here 'b') may be unused",
        id="dead-op",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: x, out_channels: 4, kernel: 9}\n",
        "ops[0] (a).kernel: 9x9 does not fit the input 8x8 padded by [0, 0, 0, 0] "
        "(top, left, bottom, right)",
        id="kernel-too-large",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: x, out_channels: 4, kernel: 3, padding: [1, 2, 3]}\n",
        "ops[0] (a).padding: must be a non-negative int, [ph, pw], [top, left, bottom, right] "
        "or 'same', not [1, 2, 3]",
        id="bad-padding",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: x, out_channels: 4, kernel: 3, padding: 3}\n",
        "ops[0] (a).padding: each side must be smaller than the 3x3 kernel, not [3, 3, 3, 3]",
        id="padding-too-large",
    ),
    pytest.param(
        "  - {name: a, op: conv, input: x, out_channels: 4, kernel: 1, stride: 2}\n"
        "  - {name: s, op: add, inputs: [a, x]}\n",
        "ops[1] (s).inputs: must have equal shapes, not 4x4x4 and 4x8x8",
        id="add-shape-mismatch",
    ),
    pytest.param(
        "  - {name: s, op: concat, inputs: [x]}\n",
        "ops[0] (s).inputs: must list at least 2 tensors, not 1",
        id="concat-one-input",
    ),
    pytest.param(
        "  - {name: m, op: matmul, inputs: [x, x], batch: 2, m: 4, k: 8, n: 8,"
        " out_shape: [2, 4, 9]}\n",
        "ops[0] (m).out_shape: must hold batch*m*n = 64 elements, not 72 (2x4x9)",
        id="matmul-elements",
    ),
    pytest.param(
        "  - {name: g, op: avgpool, input: x, global: true, kernel: 2}\n",
        "ops[0] (g).kernel: must be left out of a global pool",
        id="global-pool-with-kernel",
    ),
    pytest.param(
        "  - {name: f, op: fc, input: x, out_features: 10, relu: yes please}\n",
        "ops[0] (f).relu: must be true or false, not 'yes please'",
        id="bad-relu",
    ),
    pytest.param(
        "  - {name: f, op: layernorm, input: x}\n",
        "ops[0] (f).op: must be one of conv, fc, matmul, maxpool, avgpool, add, concat, "
        "softmax, not 'layernorm'",
        id="unknown-op-kind",
    ),
    *(
        pytest.param(
            f"  - {QKV}\n  - {{name: m, op: matmul, inputs: [q, q], {keys}}}\n", message, id=id
        )
        for keys, message, id in BAD_ATTENTION
    ),
    pytest.param(
        f"  - {QKV}\n"
        "  - {name: a, op: matmul, inputs: [q, q], attention: context, heads: 2, "
        "head_channels: 4}\n",
        "ops[1] (a).inputs: a must be the scores tensor [batch * N8, 1, N] = [128, 1, 64] of "
        "heads 2, patch [1, 1] over the 8x8 map of input b (64 tokens), not 24x8x8",
        id="context-a-not-scores",
    ),
    pytest.param(
        f"  - {QKV}\n  - {{name: m, op: matmul, inputs: [q, q], {SCORES}}}\n"
        "  - {name: s, op: softmax, input: m}\n"
        "  - {name: a, op: matmul, inputs: [s, q], attention: context, heads: 2, "
        "head_channels: 4, patch: 2}\n",
        "ops[3] (a).inputs: a must be the scores tensor [batch * N8, 1, N] = [128, 1, 16] of "
        "heads 2, patch [2, 2] over the 8x8 map of input b (16 tokens), not 128x1x64",
        id="context-other-patch",
    ),
    pytest.param(
        "  - {name: s, op: softmax, input: x}\n",
        "ops[0] (s).input: must be a scores tensor [G * n8, 1, n] (height 1, channels a multiple "
        "of n8 = ceil(n / 8) * 8 = 8 for n = 8 keys), not 4x8x8",
        id="softmax-not-scores",
    ),
    pytest.param(
        "  - {name: s, op: softmax, input: x, relu: true}\n",
        "ops[0] (s): unknown key 'relu'; allowed keys for op kind 'softmax': name, op, input",
        id="softmax-relu",
    ),
    pytest.param(
        "  - {name: f, op: fc, out_features: 10}\n",
        "ops[0] (f): missing key 'input'; required keys for op kind 'fc': input, out_features",
        id="missing-key",
    ),
    pytest.param(
        "  - {name: x, op: fc, input: x, out_features: 10}\n",
        "ops[0].name: 'x' is already the network input's name",
        id="op-named-like-input",
    ),
    pytest.param("  []\n", "ops: must be a non-empty list of ops, not []", id="no-ops"),
]


@pytest.mark.parametrize(("ops", "message"), BAD_FILES)
def test_malformed_file_is_rejected(tmp_path: pathlib.Path, ops: str, message: str) -> None:
    path = _write(tmp_path, ops)
    with pytest.raises(NetworkError, match=_pinned(path, message)):
        load_network(path)


BAD_HEADERS = [
    pytest.param(
        HEADER.replace(FORMAT, "voltflow-network/2"),
        "format: must be 'voltflow-network/1', not 'voltflow-network/2'",
        id="wrong-format",
    ),
    pytest.param(
        HEADER.replace(f"format: {FORMAT}\n", ""),
        "missing key 'format'; the first line should be 'format: voltflow-network/1'",
        id="no-format",
    ),
    pytest.param(
        HEADER.replace("title: Tiny\n", "title: Tiny\nauthor: me\n"),
        "unknown key 'author'; allowed keys: format, name, title, source, input, ops, parameters",
        id="unknown-top-key",
    ),
    pytest.param(
        HEADER.replace("[4, 8, 8]", "[4, 8]"),
        "input.shape: must be [channels, height, width] of positive ints, not [4, 8]",
        id="bad-input-shape",
    ),
    pytest.param(
        HEADER.replace("source: tests\n", ""),
        "missing key 'source'; required keys: format, name, title, source, input, ops",
        id="missing-top-key",
    ),
]


@pytest.mark.parametrize(("header", "message"), BAD_HEADERS)
def test_malformed_header_is_rejected(tmp_path: pathlib.Path, header: str, message: str) -> None:
    path = _write(tmp_path, "  - {name: f, op: fc, input: x, out_features: 10}\n", header)
    with pytest.raises(NetworkError, match=_pinned(path, message)):
        load_network(path)


def test_invalid_yaml_and_missing_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "  - {name: f, op: fc\n")
    with pytest.raises(NetworkError, match="^" + re.escape(f"{path}: line ") + r"\d+, column \d+"):
        load_network(path)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(
        NetworkError, match=_pinned(missing, "cannot read the file: No such file or directory")
    ):
        load_network(missing)


def test_yaml_safe_load_refuses_python_tags(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "  - !!python/object/apply:os.system ['true']\n")
    with pytest.raises(NetworkError, match="not valid YAML"):
        load_network(path)


# --------------------------------------------------------------------------------------------------
# Programmatic construction is validated too.


def test_op_checks_its_output_shape() -> None:
    with pytest.raises(NetworkError, match=r"^op 'c': out: must be 8x6x6, not 8x8x8$"):
        Op("c", OpKind.CONV, ("x",), (Shape(4, 8, 8),), Shape(8, 8, 8), kernel=(3, 3))
    with pytest.raises(NetworkError, match=r"^op 'p': relu: must be False for op kind 'maxpool'$"):
        Op(
            "p",
            OpKind.MAXPOOL,
            ("x",),
            (Shape(4, 8, 8),),
            Shape(4, 4, 4),
            (2, 2),
            (2, 2),
            relu=True,
        )
    with pytest.raises(NetworkError, match=r"^op 'f': kernel: must be a tuple of 2 positive ints"):
        Op("f", OpKind.FC, ("x",), (Shape(4, 8, 8),), Shape(10, 1, 1), kernel=[1, 1])  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match=r"^op 'm': matmul: must be MatmulDims for a matmul op"):
        Op("m", OpKind.MATMUL, ("x", "x"), (Shape(4, 8, 8),) * 2, Shape(4, 8, 8))
    x = Shape(4, 8, 8)
    with pytest.raises(
        NetworkError, match=r"^op 'a': per_channel: must be False for op kind 'add'$"
    ):
        Op("a", OpKind.ADD, ("x", "x"), (x, x), x, per_channel=True)
    with pytest.raises(NetworkError, match=r"^op 'c': per_channel: must be a bool, not 1$"):
        Op("c", OpKind.CONV, ("x",), (x,), x, per_channel=1)  # type: ignore[arg-type]
    assert Op("c", OpKind.CONV, ("x",), (x,), x, per_channel=True).per_channel


def test_attention_layout_gives_dims_and_shapes(tmp_path: pathlib.Path) -> None:
    """docs/attention.md: N tokens per patch position, batch = P * heads, the scores tensor
    [batch * N8, 1, N] (N8 = ceil(N / 8) * 8), the context map [heads * dh, H, W]."""
    header = HEADER.replace("[4, 8, 8]", "[16, 6, 4]")
    path = _write(
        tmp_path,
        "  - {name: q, op: conv, input: x, out_channels: 52, kernel: 1}\n"
        "  - {name: s, op: matmul, inputs: [q, q], attention: scores, heads: 2, "
        "head_channels: 12, patch: [2, 1], a_channel: 1, b_channel: 25}\n"
        "  - {name: p, op: softmax, input: s}\n"
        "  - {name: c, op: matmul, inputs: [p, q], attention: context, heads: 2, "
        "head_channels: 12, patch: [2, 1], b_channel: 16}\n",
        header,
    )
    net = load_network(path)
    scores, softmax, context = net.op("s"), net.op("p"), net.op("c")
    n = (6 // 2) * (4 // 1)  # 12 tokens per position; 2 positions; N8 = 16
    assert scores.attention == Attention(AttentionKind.SCORES, 2, 12, (2, 1), 1, 25)
    assert scores.matmul == MatmulDims(batch=4, m=n, k=12, n=n)
    assert scores.out == Shape(4 * 16, 1, n) == softmax.out
    assert context.attention == Attention(AttentionKind.CONTEXT, 2, 12, (2, 1), 0, 16)
    assert context.matmul == MatmulDims(batch=4, m=n, k=n, n=12)
    assert context.out == Shape(24, 6, 4)
    assert scores.attention_map == Shape(52, 6, 4) == context.attention_map
    assert scores.macs == context.macs == 4 * n * n * 12
    assert scores.weighted and not softmax.weighted and softmax.macs == 0
    assert scores.weight_count == scores.bias_count == softmax.bias_count == 0
    assert net.macs == 16 * 52 * 24 + 2 * 4 * n * n * 12


def test_attention_is_validated_when_built_in_code() -> None:
    q = Shape(24, 8, 8)
    layout = Attention(AttentionKind.SCORES, heads=2, head_channels=4)
    dims = MatmulDims(2, 64, 4, 64)
    scores = Op(
        "s", OpKind.MATMUL, ("q", "q"), (q, q), Shape(128, 1, 64), matmul=dims, attention=layout
    )
    assert scores.out == Shape(128, 1, 64)
    with pytest.raises(
        NetworkError,
        match=r"^op 's': matmul: must be MatmulDims\(batch=2, m=64, k=4, n=64\) for this scores "
        r"layout, not MatmulDims\(batch=1, m=64, k=4, n=64\)$",
    ):
        Op(
            "s",
            OpKind.MATMUL,
            ("q", "q"),
            (q, q),
            Shape(128, 1, 64),
            matmul=MatmulDims(1, 64, 4, 64),
            attention=layout,
        )
    with pytest.raises(NetworkError, match=r"^op 's': out: must be 128x1x64, not 128x8x8$"):
        Op("s", OpKind.MATMUL, ("q", "q"), (q, q), Shape(128, 8, 8), matmul=dims, attention=layout)
    with pytest.raises(NetworkError, match=r"^op 'c': attention: must be an Attention of a matmul"):
        Op("c", OpKind.CONV, ("q",), (q,), q, attention=layout)
    with pytest.raises(NetworkError, match=r"^Attention.heads must be a positive int, not 0$"):
        Attention(AttentionKind.SCORES, heads=0, head_channels=4)
    with pytest.raises(NetworkError, match=r"^Attention.patch must be a tuple of 2 positive ints"):
        Attention(AttentionKind.SCORES, heads=1, head_channels=4, patch=[2, 2])  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match=r"^Attention.a_channel must be 0 for a context matmul"):
        Attention(AttentionKind.CONTEXT, heads=1, head_channels=4, a_channel=8)
    with pytest.raises(NetworkError, match=r"^Attention.kind must be an AttentionKind, not"):
        Attention("scores", heads=1, head_channels=4)  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match=r"^op 'p': inputs: must be a scores tensor"):
        Op("p", OpKind.SOFTMAX, ("q",), (q,), q)
    with pytest.raises(NetworkError, match=r"^op 'p': relu: must be False for op kind 'softmax'$"):
        Op("p", OpKind.SOFTMAX, ("s",), (Shape(8, 1, 5),), Shape(8, 1, 5), relu=True)


def test_shape_and_matmul_dims_are_validated() -> None:
    with pytest.raises(NetworkError, match=r"^Shape.height must be a positive int, not 0$"):
        Shape(3, 0, 4)
    with pytest.raises(NetworkError, match=r"^MatmulDims.k must be a positive int, not True$"):
        MatmulDims(1, 2, True, 3)  # type: ignore[arg-type]


def test_network_checks_its_chain() -> None:
    x, y = Shape(4, 8, 8), Shape(4, 1, 1)
    a = Op("a", OpKind.CONV, ("x",), (x,), Shape(4, 8, 8))
    b = Op("b", OpKind.ADD, ("a", "x"), (x, x), x)
    assert Network("n", "N", "test", "x", x, (a, b)).macs == 4 * 4 * 64
    with pytest.raises(
        NetworkError,
        match=r"^network 'n': ops\[0\] \(b\)\.inputs: 'a' must be the network input or an earlier"
        r" op$",
    ):
        Network("n", "N", "test", "x", x, (b, a))
    with pytest.raises(NetworkError, match=r"^network 'n': 'a' is read by no op"):
        Network("n", "N", "test", "x", x, (a, Op("c", OpKind.CONV, ("x",), (x,), x)))
    with pytest.raises(NetworkError, match=r"in_shapes: 'x' is 4x8x8, not 4x4x4$"):
        Network("n", "N", "test", "x", x, (Op("d", OpKind.FC, ("x",), (Shape(4, 4, 4),), y),))
