"""Emit the ONNX graph of the 2015 Inception v3 from a TorchScript archive, without torch.

The graph follows the module code stored in the archive (``code/__torch__/inceptionv3.py``):
each ``Conv2dLayer`` is a bias-free convolution, a batch norm with ``beta`` only and the ``eps``
written in that code, and a ReLU; the ``Inception A-D`` blocks concatenate their towers applied
to the same input; ``InceptionE`` splits two of its towers in 1x3 / 3x1 halves; pooling constants
come from the ``Final`` class constants of the stored pooling modules.

Batch norm is folded into the convolution in float64 before rounding to float32 (one Conv +
ReLU per layer). The preprocessing is part of the graph: the input is uint8 RGB in NHWC order,
the graph casts it, maps pixels by ``(x - 128) / 128`` and transposes to NCHW. The output
``features`` is the raw (not normalised) 2048-d pool feature per image.

The serialised model is byte-for-byte deterministic: node and tensor names come from module
paths, the IR version, opset and producer strings are fixed, and nothing records a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from avajams.embedding._archive import ScriptModule, TorchScriptArchive
from avajams.errors import ModelIntegrityError

__all__ = ["FEATURES", "IMAGES", "IR_VERSION", "OPSET", "build_inception_onnx"]

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; fixed so onnx upgrades change nothing
PRODUCER = "avajams-inception-builder"
PRODUCER_VERSION = "1"  # bump when the emitted graph changes
IMAGES = "images"
FEATURES = "features"
INPUT_SIZE = 299

_BN_CALL = re.compile(r"_0\(x0, mean, var, None, beta, False, [0-9.e-]+, ([0-9.e-]+), \)")


class _GraphBuilder:
    def __init__(self, archive: TorchScriptArchive, on_layer: Callable[[], None] | None) -> None:
        self.archive = archive
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._on_layer = on_layer
        self._eps: dict[str, float] = {}
        self.channels: dict[str, int] = {}

    def _node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def module(self, m: ScriptModule, x: str, path: str) -> tuple[str, int]:
        """Emit ``m`` applied to ``x``; return the output name and its channel count."""
        y, channels = self._module(m, x, path)
        self.channels[y] = channels
        return y, channels

    def _const(self, name: str, array: npt.NDArray[Any]) -> str:
        self.initializers.append(numpy_helper.from_array(array, name=name))
        return name

    def _batchnorm_eps(self, qualname: str) -> float:
        if qualname not in self._eps:
            match = _BN_CALL.search(self.archive.code(qualname))
            if match is None:
                raise ModelIntegrityError(
                    f"{self.archive.name}: {qualname} is not conv + beta-only batch norm + relu"
                )
            self._eps[qualname] = float(match.group(1))
        return self._eps[qualname]

    def _module(self, m: ScriptModule, x: str, path: str) -> tuple[str, int]:
        kind = m.kind
        if kind == "WrapNet":
            return self.module(_child(m, "net"), x, path)
        if kind == "InceptionV3":
            y, channels = self.module(_child(m, "layers"), x, _join(path, "layers"))
            shape = self._const(f"{path or 'net'}.shape", np.array([-1, channels], np.int64))
            return self._node("Reshape", [y, shape], FEATURES), channels
        if kind == "Sequential":
            channels = -1
            for name, child in m.children():
                x, channels = self.module(child, x, _join(path, name))
            return x, channels
        if kind == "Conv2dLayer":
            return self._conv(m, x, path)
        if kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
            outs = [self.module(child, x, _join(path, name)) for name, child in m.children()]
            return self._concat(outs, path)
        if kind == "InceptionE":
            a, _ = self.module(_child(m, "tower_conv"), x, _join(path, "tower_conv"))
            b, _ = self.module(_child(m, "tower_1_conv"), x, _join(path, "tower_1_conv"))
            b, _ = self.module(_child(m, "tower_1_conv_1"), b, _join(path, "tower_1_conv_1"))
            p, _ = self.module(_child(m, "tower_2_pool"), x, _join(path, "tower_2_pool"))
            branches = [
                ("conv", x),
                ("tower_mixed_conv", a),
                ("tower_mixed_conv_1", a),
                ("tower_1_mixed_conv", b),
                ("tower_1_mixed_conv_1", b),
                ("tower_2_conv", p),
            ]
            outs = [self.module(_child(m, n), inp, _join(path, n)) for n, inp in branches]
            return self._concat(outs, path)
        if kind in ("MaxPool2d", "AvgPool2d"):
            return self._pool(m, x, path), self.channels[x]
        raise ModelIntegrityError(
            f"{self.archive.name}: unexpected module {m.qualname} at {path or '<root>'}; "
            "this archive is not the Inception v3 avajams knows how to convert"
        )

    def _concat(self, outs: list[tuple[str, int]], path: str) -> tuple[str, int]:
        y = self._node("Concat", [o for o, _ in outs], f"{path}/Concat", axis=1)
        return y, sum(c for _, c in outs)

    def _conv(self, m: ScriptModule, x: str, path: str) -> tuple[str, int]:
        try:
            weight = m.attrs["weight"].astype(np.float64)
            beta = m.attrs["beta"].astype(np.float64)
            mean = m.attrs["mean"].astype(np.float64)
            var = m.attrs["var"].astype(np.float64)
            stride = int(m.attrs["stride"])
            padding = m.attrs["padding"]
        except (KeyError, AttributeError, TypeError) as exc:
            raise ModelIntegrityError(f"{self.archive.name}: layer {path} is incomplete") from exc
        pads = [int(padding)] * 2 if isinstance(padding, int) else [int(p) for p in padding]
        out_channels = weight.shape[0]
        if weight.ndim != 4 or not (beta.shape == mean.shape == var.shape == (out_channels,)):
            raise ModelIntegrityError(f"{self.archive.name}: layer {path} has inconsistent shapes")
        inv_std = 1.0 / np.sqrt(var + self._batchnorm_eps(m.qualname))
        folded = weight * inv_std[:, None, None, None]
        w = self._const(f"{path}.weight", folded.astype(np.float32))
        b = self._const(f"{path}.bias", (beta - mean * inv_std).astype(np.float32))
        conv = self._node(
            "Conv",
            [x, w, b],
            f"{path}/Conv",
            kernel_shape=list(weight.shape[2:]),
            strides=[stride, stride],
            pads=pads + pads,
        )
        if self._on_layer is not None:
            self._on_layer()
        return self._node("Relu", [conv], f"{path}/Relu"), out_channels

    def _pool(self, m: ScriptModule, x: str, path: str) -> str:
        c = self.archive.constants(m.qualname)
        if c.get("dilation", 1) != 1 or c.get("divisor_override") is not None:
            raise ModelIntegrityError(f"{self.archive.name}: unsupported pooling at {path}")
        k, s, p = int(c["kernel_size"] or 0), int(c["stride"] or 0), int(c["padding"] or 0)
        attrs: dict[str, Any] = {
            "kernel_shape": [k, k],
            "strides": [s, s],
            "pads": [p, p, p, p],
            "ceil_mode": int(bool(c["ceil_mode"])),
        }
        if m.kind == "AvgPool2d":
            attrs["count_include_pad"] = int(bool(c["count_include_pad"]))
            return self._node("AveragePool", [x], f"{path}/AveragePool", **attrs)
        return self._node("MaxPool", [x], f"{path}/MaxPool", **attrs)


def _child(m: ScriptModule, name: str) -> ScriptModule:
    child = m.attrs.get(name)
    if not isinstance(child, ScriptModule):
        raise ModelIntegrityError(f"module {m.qualname} has no sub-module {name!r}")
    return child


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def count_conv_layers(archive: TorchScriptArchive) -> int:
    """How many convolution layers the archive holds (the build's progress total)."""

    def count(m: ScriptModule) -> int:
        return (m.kind == "Conv2dLayer") + sum(count(c) for _, c in m.children())

    return count(archive.root)


def build_inception_onnx(
    archive: TorchScriptArchive,
    *,
    doc: str,
    metadata: dict[str, str],
    on_layer: Callable[[], None] | None = None,
) -> onnx.ModelProto:
    """The ONNX model (uint8 NHWC ``images`` -> float32 ``features``) for ``archive``."""
    builder = _GraphBuilder(archive, on_layer)
    x = builder._node("Cast", [IMAGES], "preprocess/Cast", to=TensorProto.FLOAT)
    centre = builder._const("preprocess.centre", np.array(128.0, np.float32))
    scale = builder._const("preprocess.scale", np.array(128.0, np.float32))
    x = builder._node("Sub", [x, centre], "preprocess/Sub")
    x = builder._node("Div", [x, scale], "preprocess/Div")
    x = builder._node("Transpose", [x], "preprocess/Transpose", perm=[0, 3, 1, 2])
    builder.channels[x] = 3
    out, channels = builder.module(archive.root, x, "")
    if out != FEATURES or channels <= 0:
        raise ModelIntegrityError(f"{archive.name}: the module does not end in pooled features")
    graph = helper.make_graph(
        builder.nodes,
        "inception_v3",
        [
            helper.make_tensor_value_info(
                IMAGES, TensorProto.UINT8, ["N", INPUT_SIZE, INPUT_SIZE, 3]
            )
        ],
        [helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["N", channels])],
        initializer=builder.initializers,
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
