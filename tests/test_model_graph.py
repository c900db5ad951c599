"""The torch-free ONNX builder on a small synthetic TorchScript archive, against numpy.

The archive is written the way ``torch.jit.save`` writes one (a protocol-2 ``data.pkl`` whose
globals are ``__torch__`` module classes and torch's tensor rebuild helpers, raw ``data/N``
storages, module code under ``code/``), but with a tiny network that uses every block kind of
Inception v3: strided and padded convolutions with beta-only batch norm, Inception A, D and E
blocks, max and average pooling with and without padding counted. Its ONNX output is compared
with an independent numpy implementation of the same network. No torch, no network.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from avajams.embedding._archive import TorchScriptArchive
from avajams.embedding._build import build_inception_onnx
from avajams.errors import ModelIntegrityError

EPS = 0.001
CONV_CODE = """class Conv2dLayer(Module):
  def forward(self: __torch__.inceptionv3.Conv2dLayer,
    x: Tensor) -> Tensor:
    _0 = __torch__.torch.nn.functional.batch_norm
    x1 = _0(x0, mean, var, None, beta, False, 0.10000000000000001, 0.001, )
    return x2
"""
POOL_CODE = """class MaxPool2d(Module):
  __parameters__ = []
  padding : Final[int] = {mp}
  kernel_size : Final[int] = 3
  dilation : Final[int] = 1
  stride : Final[int] = {ms}
  ceil_mode : Final[bool] = False
class AvgPool2d(Module):
  padding : Final[int] = {ap}
  divisor_override : Final[NoneType] = None
  kernel_size : Final[int] = {ak}
  stride : Final[int] = {as_}
  ceil_mode : Final[bool] = False
  count_include_pad : Final[bool] = {aci}
"""


class _Mod:
    def __init__(self, qualname: str, **attrs: Any) -> None:
        self.qualname = qualname
        self.attrs = {"training": False, "_is_full_backward_hook": None, **attrs}


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...]) -> None:
        self.storage, self.shape = storage, shape


_FLOAT_STORAGE = object()


if TYPE_CHECKING:

    class _PurePickler(pickle._Pickler):
        """The pure-Python pickler's undocumented internals that typeshed leaves out."""

        write: Callable[[bytes], object]

        def save(self, obj: object, save_persistent_id: bool = True) -> None: ...

else:
    _PurePickler = pickle._Pickler


class _TorchLikePickler(_PurePickler):
    """The pure-Python pickler, writing torch's globals for our stand-in objects."""

    def _global(self, module: str, name: str) -> None:
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _Storage):
            return ("storage", _FLOAT_STORAGE, obj.key, "cpu", obj.numel)
        return None

    def save(self, obj: object, save_persistent_id: bool = True) -> None:
        if obj is _FLOAT_STORAGE:
            self._global("torch", "FloatStorage")
        elif isinstance(obj, _Mod):
            module, _, name = obj.qualname.rpartition(".")
            self._global(module, name)
            self.write(pickle.EMPTY_TUPLE + pickle.NEWOBJ)
            super().save(obj.attrs)
            self.write(pickle.BUILD)
        elif isinstance(obj, _Tensor):
            self._global("torch._utils", "_rebuild_tensor_v2")
            strides = tuple(int(np.prod(obj.shape[i + 1 :])) for i in range(len(obj.shape)))
            super().save((obj.storage, 0, obj.shape, strides, False, OrderedDict()))
            self.write(pickle.REDUCE)
        else:
            super().save(obj, save_persistent_id)


class _Net:
    """Builds the synthetic module tree, its storages, and a numpy reference forward."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.storages: dict[str, bytes] = {}

    def _tensor(self, array: npt.NDArray[np.float32]) -> _Tensor:
        key = str(len(self.storages))
        self.storages[key] = array.astype("<f4").tobytes()
        return _Tensor(_Storage(key, array.size), array.shape)

    def conv(
        self, cin: int, cout: int, k: tuple[int, int], stride: int = 1, pad: Any = 0
    ) -> tuple[_Mod, dict[str, Any]]:
        # mostly positive weights keep every channel of this small random network alive
        fan_in = cin * k[0] * k[1]
        w = (self.rng.uniform(-0.5, 1.0, (cout, cin, *k)) / fan_in).astype(np.float32)
        beta = self.rng.uniform(0.2, 0.6, cout).astype(np.float32)  # keeps the ReLUs alive
        mean = self.rng.normal(0, 0.1, cout).astype(np.float32)
        var = self.rng.uniform(0.5, 1.5, cout).astype(np.float32)
        qual = "__torch__.inceptionv3.Conv2dLayer"
        if isinstance(pad, list):
            qual = "__torch__.inceptionv3.___torch_mangle_2.Conv2dLayer"
        mod = _Mod(
            qual,
            weight=self._tensor(w),
            beta=self._tensor(beta),
            mean=self._tensor(mean),
            var=self._tensor(var),
            stride=stride,
            padding=pad,
        )
        pads = (pad, pad) if isinstance(pad, int) else tuple(pad)
        return mod, {"w": w, "beta": beta, "mean": mean, "var": var, "s": stride, "p": pads}


def _seq(*named: tuple[str, _Mod], mangle: str = "") -> _Mod:
    return _Mod(f"__torch__.torch.nn.modules.container{mangle}.Sequential", **dict(named))


MAXPOOL = "__torch__.torch.nn.modules.pooling.MaxPool2d"  # 3x3 stride 2, no padding
MAXPOOL_S1 = "__torch__.torch.nn.modules.pooling.___torch_mangle_6.MaxPool2d"  # stride 1, pad 1
AVGPOOL = "__torch__.torch.nn.modules.pooling.AvgPool2d"  # 3x3 s1 p1, padding not counted
AVGPOOL_FINAL = "__torch__.torch.nn.modules.pooling.___torch_mangle_8.AvgPool2d"  # 36x36


def _synthetic_archive() -> tuple[bytes, Any]:
    net = _Net()
    c0, r0 = net.conv(3, 4, (3, 3), stride=2)
    c1, r1 = net.conv(4, 4, (1, 3), pad=[0, 1])
    a = {n: net.conv(cin, co, k, pad=p) for n, cin, co, k, p in [
        ("conv", 4, 2, (1, 1), 0), ("t0", 4, 2, (1, 1), 0), ("t1", 2, 3, (3, 3), 1),
        ("u0", 4, 2, (1, 1), 0), ("u1", 2, 2, (3, 3), 1), ("u2", 2, 2, (3, 3), 1),
        ("v", 4, 1, (1, 1), 0),
    ]}  # fmt: skip
    mixed_a = _Mod(
        "__torch__.inceptionv3.InceptionA",
        conv=a["conv"][0],
        tower=_seq(("conv", a["t0"][0]), ("conv_1", a["t1"][0])),
        tower_1=_seq(
            ("conv", a["u0"][0]), ("conv_1", a["u1"][0]), ("conv_2", a["u2"][0]),
            mangle=".___torch_mangle_0",
        ),
        tower_2=_seq(("pool", _Mod(AVGPOOL)), ("conv", a["v"][0]), mangle=".___torch_mangle_1"),
    )  # fmt: skip
    d = {n: net.conv(cin, co, k, stride=s) for n, cin, co, k, s in [
        ("t0", 8, 2, (1, 1), 1), ("t1", 2, 2, (3, 3), 2),
        ("u0", 8, 2, (1, 1), 1), ("u1", 2, 2, (3, 3), 2),
    ]}  # fmt: skip
    mixed_d = _Mod(
        "__torch__.inceptionv3.InceptionD",
        tower=_seq(("conv", d["t0"][0]), ("conv_1", d["t1"][0])),
        tower_1=_seq(("conv", d["u0"][0]), ("conv_1", d["u1"][0]), mangle=".___torch_mangle_5"),
        pool=_Mod(MAXPOOL),
    )
    e = {n: net.conv(cin, co, k, pad=p) for n, cin, co, k, p in [
        ("conv", 12, 2, (1, 1), 0), ("tc", 12, 2, (1, 1), 0), ("tm", 2, 1, (1, 3), [0, 1]),
        ("tm1", 2, 1, (3, 1), [1, 0]), ("t1c", 12, 2, (1, 1), 0), ("t1c1", 2, 2, (3, 3), 1),
        ("t1m", 2, 1, (1, 3), [0, 1]), ("t1m1", 2, 1, (3, 1), [1, 0]), ("t2c", 12, 1, (1, 1), 0),
    ]}  # fmt: skip
    mixed_e = _Mod(
        "__torch__.inceptionv3.___torch_mangle_7.InceptionE",
        conv=e["conv"][0], tower_conv=e["tc"][0], tower_mixed_conv=e["tm"][0],
        tower_mixed_conv_1=e["tm1"][0], tower_1_conv=e["t1c"][0], tower_1_conv_1=e["t1c1"][0],
        tower_1_mixed_conv=e["t1m"][0], tower_1_mixed_conv_1=e["t1m1"][0],
        tower_2_pool=_Mod(MAXPOOL_S1), tower_2_conv=e["t2c"][0],
    )  # fmt: skip
    layers = _seq(
        ("conv", c0), ("pool0", _Mod(MAXPOOL)), ("conv_1", c1), ("mixed", mixed_a),
        ("mixed_1", mixed_d), ("mixed_2", mixed_e), ("pool2", _Mod(AVGPOOL_FINAL)),
        mangle=".___torch_mangle_9",
    )  # fmt: skip
    root = _Mod(
        "__torch__.wrap_net.WrapNet",
        net=_Mod("__torch__.inceptionv3.InceptionV3", layers=layers),
    )
    buf = io.BytesIO()
    _TorchLikePickler(buf, protocol=2).dump(root)
    files = {"data.pkl": buf.getvalue(), **{f"data/{k}": v for k, v in net.storages.items()}}
    files["code/__torch__/inceptionv3.py"] = CONV_CODE.encode()
    files["code/__torch__/inceptionv3/___torch_mangle_2.py"] = CONV_CODE.encode()
    pooling = "code/__torch__/torch/nn/modules/pooling"
    files[f"{pooling}.py"] = POOL_CODE.format(mp=0, ms=2, ap=1, ak=3, as_=1, aci=False).encode()
    files[f"{pooling}/___torch_mangle_6.py"] = POOL_CODE.format(
        mp=1, ms=1, ap=0, ak=3, as_=1, aci=False
    ).encode()
    files[f"{pooling}/___torch_mangle_8.py"] = POOL_CODE.format(
        mp=0, ms=2, ap=0, ak=36, as_=36, aci=True
    ).encode()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"synthetic/{name}", data)

    def forward(images: npt.NDArray[np.uint8]) -> dict[str, npt.NDArray[np.float64]]:
        out = {}
        x = (images.astype(np.float64).transpose(0, 3, 1, 2) - 128) / 128
        x = _maxpool(_conv(x, r0), 3, 2, 0)
        x = _conv(x, r1)
        x = np.concatenate(
            [
                _conv(x, a["conv"][1]),
                _conv(_conv(x, a["t0"][1]), a["t1"][1]),
                _conv(_conv(_conv(x, a["u0"][1]), a["u1"][1]), a["u2"][1]),
                _conv(_avgpool(x, 3, 1, 1, count_pad=False), a["v"][1]),
            ],
            axis=1,
        )
        out["layers.mixed/Concat"] = x
        x = np.concatenate(
            [
                _conv(_conv(x, d["t0"][1]), d["t1"][1]),
                _conv(_conv(x, d["u0"][1]), d["u1"][1]),
                _maxpool(x, 3, 2, 0),
            ],
            axis=1,
        )
        out["layers.mixed_1/Concat"] = x
        ta = _conv(x, e["tc"][1])
        tb = _conv(_conv(x, e["t1c"][1]), e["t1c1"][1])
        x = np.concatenate(
            [
                _conv(x, e["conv"][1]),
                _conv(ta, e["tm"][1]),
                _conv(ta, e["tm1"][1]),
                _conv(tb, e["t1m"][1]),
                _conv(tb, e["t1m1"][1]),
                _conv(_maxpool(x, 3, 1, 1), e["t2c"][1]),
            ],
            axis=1,
        )
        assert x.shape[2:] == (36, 36)
        out["layers.mixed_2/Concat"] = x
        out["features"] = x.mean(axis=(2, 3))
        return out

    return zbuf.getvalue(), forward


def _conv(x: npt.NDArray[np.float64], r: dict[str, Any]) -> npt.NDArray[np.float64]:
    ph, pw = r["p"]
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = r["w"].shape[2:]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, :: r["s"], :: r["s"]]
    y = np.einsum("nchwij,ocij->nohw", win, r["w"].astype(np.float64))
    y = (y - r["mean"][None, :, None, None]) / np.sqrt(r["var"][None, :, None, None] + EPS)
    return cast(npt.NDArray[np.float64], np.maximum(y + r["beta"][None, :, None, None], 0))


def _maxpool(x: npt.NDArray[np.float64], k: int, s: int, p: int) -> npt.NDArray[np.float64]:
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return cast(npt.NDArray[np.float64], windows[:, :, ::s, ::s].max(axis=(4, 5)))


def _avgpool(
    x: npt.NDArray[np.float64], k: int, s: int, p: int, *, count_pad: bool
) -> npt.NDArray[np.float64]:
    pad = ((0, 0), (0, 0), (p, p), (p, p))
    sums = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad), (k, k), axis=(2, 3))
    ones = np.pad(np.ones_like(x[:1, :1]), pad)
    counts = np.lib.stride_tricks.sliding_window_view(ones, (k, k), axis=(2, 3)).sum(axis=(4, 5))
    total = sums[:, :, ::s, ::s].sum(axis=(4, 5))
    return cast(npt.NDArray[np.float64], total / (k * k if count_pad else counts[:, :, ::s, ::s]))


@pytest.fixture(scope="module")
def synthetic() -> tuple[bytes, Any]:
    return _synthetic_archive()


def test_builder_matches_numpy_reference(synthetic: tuple[bytes, Any]) -> None:
    data, forward = synthetic
    model = build_inception_onnx(TorchScriptArchive(data), doc="synthetic", metadata={})
    names = ["layers.mixed/Concat", "layers.mixed_1/Concat", "layers.mixed_2/Concat"]
    for name in names:  # expose each block's output to compare it with the reference too
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 299, 299, 3), dtype=np.uint8)
    images[1] = np.linspace(0, 255, 299, dtype=np.uint8)[None, :, None]  # a plain gradient
    results = dict(
        zip(
            ["features", *names], session.run(["features", *names], {"images": images}), strict=True
        )
    )
    expected = forward(images)
    assert results["features"].shape == expected["features"].shape == (2, 7)
    assert [results[n].shape[1:] for n in names] == [(8, 74, 74), (12, 36, 36), (7, 36, 36)]
    for name, value in results.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert float(expected["features"].min()) > 1e-3  # no dead channel hides a wrong branch


def test_builder_output_is_deterministic(synthetic: tuple[bytes, Any]) -> None:
    data, _ = synthetic
    first = build_inception_onnx(TorchScriptArchive(data), doc="d", metadata={"k": "v"})
    again = build_inception_onnx(TorchScriptArchive(data), doc="d", metadata={"k": "v"})
    assert first.SerializeToString() == again.SerializeToString()
    assert first.opset_import[0].version == 17
    assert first.producer_name == "avajams-inception-builder"


def test_builder_refuses_unknown_modules() -> None:
    buf = io.BytesIO()
    root = _Mod("__torch__.wrap_net.WrapNet", net=_Mod("__torch__.other.Transformer"))
    _TorchLikePickler(buf, protocol=2).dump(root)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("x/data.pkl", buf.getvalue())
    with pytest.raises(
        ModelIntegrityError, match=r"unexpected module __torch__\.other\.Transformer"
    ):
        build_inception_onnx(TorchScriptArchive(zbuf.getvalue()), doc="", metadata={})
