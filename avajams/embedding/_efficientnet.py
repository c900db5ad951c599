"""Emit the ONNX graph of EfficientNet-Lite0 (features + ImageNet logits) from its state dict.

The architecture is EfficientNet-Lite0 as the Apache-2.0 package ``efficientnet-lite-pytorch``
0.1.0 defines it (after Google's ``efficientnet_lite_builder.py``), written out here with
``onnx.helper``:

- stem: 3x3 stride-2 convolution (32 channels), batch norm, ReLU6;
- 16 MBConv blocks in 7 stages (:data:`STAGES`): an optional 1x1 expansion convolution (ratio 6),
  a depthwise kxk convolution carrying the stage's stride, a 1x1 projection without activation,
  and the input added back when the block keeps its stride 1 and its channel count (every block
  but the first of a stage); no squeeze-and-excitation (the "lite" variant drops it);
- head: 1x1 convolution to 1280 channels, batch norm, ReLU6, global average pool (``features``)
  and the 1000-class linear layer (``logits``).

Convolutions pad like TensorFlow's ``SAME`` (asymmetric: the extra row/column goes after), for
the fixed 224x224 input; batch norm (eps 1e-3) is folded into each convolution in float64.

Preprocessing is part of the graph: ``images`` is uint8 RGB NHWC of any size; the graph casts
it, resizes it so its shorter side is 256 (bilinear, antialiased, aspect ratio kept), crops the
centre 224x224 (offsets rounded down), and maps pixels by ``(x - 127) / 128`` (the Lite models'
normalisation, close to [-1, 1]). The serialised model is byte-for-byte deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from avajams.errors import ModelIntegrityError

__all__ = [
    "FEATURES",
    "IMAGES",
    "INPUT_SIZE",
    "IR_VERSION",
    "LOGITS",
    "OPSET",
    "RESIZE_TO",
    "build_efficientnet_onnx",
    "count_layers",
]

OPSET = 18  # Resize with antialias and keep_aspect_ratio_policy
IR_VERSION = 8
PRODUCER = "avajams-efficientnet-builder"
PRODUCER_VERSION = "1"  # bump when the emitted graph changes
IMAGES = "images"
FEATURES = "features"
LOGITS = "logits"
INPUT_SIZE = 224
RESIZE_TO = 256
PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0
BN_EPS = 1e-3

#: (repeats, kernel, stride, expand ratio, input channels, output channels) per stage
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
HEAD_CHANNELS = 1280
STEM_CHANNELS = 32


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow ``SAME`` padding: (before, after, output size)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class _Builder:
    def __init__(
        self, state: Mapping[str, npt.NDArray[Any]], on_layer: Callable[[], None] | None
    ) -> None:
        self.state = state
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._on_layer = on_layer

    def tensor(self, key: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
        array = self.state.get(key)
        if array is None:
            raise ModelIntegrityError(f"the checkpoint has no tensor {key!r}")
        if tuple(array.shape) != shape:
            raise ModelIntegrityError(
                f"tensor {key!r} has shape {tuple(array.shape)}, EfficientNet-Lite0 needs {shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ModelIntegrityError(f"tensor {key!r} holds NaN or infinite values")
        self.used.add(key)
        return np.asarray(array, dtype=np.float64)

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, name: str, array: npt.NDArray[Any]) -> str:
        self.initializers.append(numpy_helper.from_array(array, name=name))
        return name

    def conv_bn(
        self,
        x: str,
        conv: str,
        bn: str,
        *,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        size: int,
        depthwise: bool = False,
        relu6: bool = True,
    ) -> tuple[str, int]:
        """Convolution + folded batch norm (+ ReLU6); returns the output and its spatial size."""
        per_group = 1 if depthwise else cin
        weight = self.tensor(f"{conv}.weight", (cout, per_group, kernel, kernel))
        gamma = self.tensor(f"{bn}.weight", (cout,))
        beta = self.tensor(f"{bn}.bias", (cout,))
        mean = self.tensor(f"{bn}.running_mean", (cout,))
        var = self.tensor(f"{bn}.running_var", (cout,))
        if np.any(var < 0):
            raise ModelIntegrityError(f"batch norm {bn} has a negative variance")
        self.used.add(f"{bn}.num_batches_tracked")
        scale = gamma / np.sqrt(var + BN_EPS)
        w = self.const(f"{conv}.weight", (weight * scale[:, None, None, None]).astype(np.float32))
        b = self.const(f"{conv}.bias", (beta - mean * scale).astype(np.float32))
        before, after, out = _same_pads(size, kernel, stride)
        y = self.node(
            "Conv",
            [x, w, b],
            f"{conv}/Conv",
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[before, before, after, after],
            group=cin if depthwise else 1,
        )
        if self._on_layer is not None:
            self._on_layer()
        if relu6:
            y = self.node("Clip", [y, "relu6.min", "relu6.max"], f"{conv}/Relu6")
        return y, out


def count_layers() -> int:
    """How many convolution layers the graph has (the build's progress total)."""
    blocks = sum((2 if expand == 1 else 3) * repeats for repeats, _, _, expand, _, _ in STAGES)
    return 1 + blocks + 1


def _preprocess(b: _Builder) -> str:
    x = b.node("Cast", [IMAGES], "preprocess/Cast", to=TensorProto.FLOAT)
    x = b.node("Transpose", [x], "preprocess/Transpose", perm=[0, 3, 1, 2])
    sizes = b.const("preprocess.resize_to", np.array([RESIZE_TO, RESIZE_TO], np.int64))
    x = b.node(
        "Resize",
        [x, "", "", sizes],
        "preprocess/Resize",
        mode="linear",
        antialias=1,
        axes=[2, 3],
        keep_aspect_ratio_policy="not_smaller",
        coordinate_transformation_mode="half_pixel",
    )
    # centre crop: starts = (H, W) - 224 halved and rounded down
    shape = b.node("Shape", [x], "preprocess/Shape", start=2, end=4)
    crop = b.const("preprocess.crop", np.array([INPUT_SIZE, INPUT_SIZE], np.int64))
    two = b.const("preprocess.two", np.array([2, 2], np.int64))
    margin = b.node("Sub", [shape, crop], "preprocess/Margin")
    starts = b.node("Div", [margin, two], "preprocess/Starts")  # int64: floor for >= 0
    ends = b.node("Add", [starts, crop], "preprocess/Ends")
    axes = b.const("preprocess.axes", np.array([2, 3], np.int64))
    x = b.node("Slice", [x, starts, ends, axes], "preprocess/Crop")
    mean = b.const("preprocess.mean", np.array(PIXEL_MEAN, np.float32))
    scale = b.const("preprocess.scale", np.array(PIXEL_SCALE, np.float32))
    x = b.node("Sub", [x, mean], "preprocess/Sub")
    return b.node("Div", [x, scale], "preprocess/Div")


def build_efficientnet_onnx(
    state: Mapping[str, npt.NDArray[Any]],
    labels: Sequence[str],
    *,
    doc: str,
    metadata: dict[str, str],
    on_layer: Callable[[], None] | None = None,
) -> onnx.ModelProto:
    """The ONNX model (uint8 NHWC ``images`` -> ``features`` (N, 1280), ``logits`` (N, 1000))."""
    b = _Builder(state, on_layer)
    b.const("relu6.min", np.array(0.0, np.float32))
    b.const("relu6.max", np.array(6.0, np.float32))
    x = _preprocess(b)
    x, size = b.conv_bn(
        x, "_conv_stem", "_bn0", cin=3, cout=STEM_CHANNELS, kernel=3, stride=2, size=INPUT_SIZE
    )
    index = 0
    for repeats, kernel, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            block_in = cin if r == 0 else cout
            block_stride = stride if r == 0 else 1
            p = f"_blocks.{index}"
            inputs = x
            hidden = block_in * expand
            if expand != 1:
                x, _ = b.conv_bn(
                    x, f"{p}._expand_conv", f"{p}._bn0",
                    cin=block_in, cout=hidden, kernel=1, stride=1, size=size,
                )  # fmt: skip
            x, out = b.conv_bn(
                x, f"{p}._depthwise_conv", f"{p}._bn1",
                cin=hidden, cout=hidden, kernel=kernel, stride=block_stride, size=size,
                depthwise=True,
            )  # fmt: skip
            x, _ = b.conv_bn(
                x, f"{p}._project_conv", f"{p}._bn2",
                cin=hidden, cout=cout, kernel=1, stride=1, size=out, relu6=False,
            )  # fmt: skip
            if block_stride == 1 and block_in == cout:
                x = b.node("Add", [x, inputs], f"{p}/Add")
            size = out
            index += 1
    x, _ = b.conv_bn(
        x, "_conv_head", "_bn1", cin=STAGES[-1][5], cout=HEAD_CHANNELS, kernel=1, stride=1,
        size=size,
    )  # fmt: skip
    pooled = b.node("GlobalAveragePool", [x], "_avg_pooling/GlobalAveragePool")
    b.node("Flatten", [pooled], FEATURES, axis=1)
    fc_w = b.tensor("_fc.weight", (len(labels), HEAD_CHANNELS)).astype(np.float32)
    fc_b = b.tensor("_fc.bias", (len(labels),)).astype(np.float32)
    b.node(
        "Gemm", [FEATURES, b.const("_fc.weight", fc_w), b.const("_fc.bias", fc_b)], LOGITS, transB=1
    )
    unused = sorted(set(state) - b.used)
    if unused:
        raise ModelIntegrityError(
            f"the checkpoint holds tensors EfficientNet-Lite0 does not use: {unused[:5]}; "
            "it is a different network"
        )
    graph = helper.make_graph(
        b.nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info(IMAGES, TensorProto.UINT8, ["N", "H", "W", 3])],
        [
            helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["N", HEAD_CHANNELS]),
            helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["N", len(labels)]),
        ],
        initializer=b.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version=PRODUCER_VERSION,
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, dict(sorted(metadata.items())))
    onnx.checker.check_model(model)
    return model
