"""The legacy torch checkpoint reader (no code runs, only tensors come out) and the
EfficientNet-Lite0 graph builder's checks, on hand-written files. No torch, no network."""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest

from avajams.embedding._checkpoint import MAGIC_NUMBER, read_legacy_checkpoint
from avajams.embedding._efficientnet import STAGES, build_efficientnet_onnx
from avajams.errors import ModelIntegrityError

if TYPE_CHECKING:

    class _PurePickler(pickle._Pickler):
        write: Callable[[bytes], object]

        def save(self, obj: object, save_persistent_id: bool = True) -> None: ...

else:
    _PurePickler = pickle._Pickler


class _Storage:
    def __init__(self, key: str, array: npt.NDArray[Any]) -> None:
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.shape, self.stride = storage, shape, stride


class _TorchLikePickler(_PurePickler):
    """Writes our stand-ins the way ``torch.save`` (legacy format) writes tensors."""

    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _Storage):
            kind = "LongStorage" if obj.array.dtype == np.int64 else "FloatStorage"
            return ("storage", _Global("torch", kind), obj.key, "cpu", obj.array.size, None)
        return None

    def save(self, obj: object, save_persistent_id: bool = True) -> None:
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, _Tensor):
            self.save(_Global("torch._utils", "_rebuild_tensor_v2"))
            super().save((obj.storage, 0, obj.shape, obj.stride, False, OrderedDict()))
            self.write(pickle.REDUCE)
        else:
            super().save(obj, save_persistent_id)


class _Global:
    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


def _checkpoint(state: dict[str, Any], *, header: bytes | None = None) -> bytes:
    """A legacy ``torch.save`` file of ``state`` (tensors given as ``_Tensor``)."""
    storages = [v.storage for v in state.values() if isinstance(v, _Tensor)]
    buf = io.BytesIO()
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    buf.write(header or pickle.dumps(MAGIC_NUMBER, protocol=2))
    buf.write(pickle.dumps(1001, protocol=2))
    buf.write(pickle.dumps(info, protocol=2))
    _TorchLikePickler(buf, protocol=2).dump(OrderedDict(state))
    buf.write(pickle.dumps([s.key for s in storages], protocol=2))
    for s in storages:
        buf.write(np.int64(s.array.size).tobytes())
        buf.write(s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
    return buf.getvalue()


def _tensor(key: str, array: npt.NDArray[Any]) -> _Tensor:
    strides = tuple(int(np.prod(array.shape[i + 1 :])) for i in range(array.ndim))
    return _Tensor(_Storage(key, array.ravel()), array.shape, strides)


def test_reads_tensors_with_strides_and_scalars() -> None:
    # a 2x3 tensor stored transposed (as TensorFlow-converted weights are) and a scalar count
    stored = np.arange(6, dtype=np.float32)
    state = {
        "layer.weight": _Tensor(_Storage("0", stored), (2, 3), (1, 2)),
        "layer.bias": _tensor("1", np.array([0.5, -1.5], np.float32)),
        "bn.num_batches_tracked": _Tensor(_Storage("2", np.array([7], np.int64)), (), ()),
    }
    out = read_legacy_checkpoint(_checkpoint(state))
    assert list(out) == ["layer.weight", "layer.bias", "bn.num_batches_tracked"]
    assert out["layer.weight"].tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    assert out["layer.weight"].flags.c_contiguous
    assert out["layer.bias"].tolist() == [0.5, -1.5]
    assert out["bn.num_batches_tracked"].shape == ()
    assert int(out["bn.num_batches_tracked"]) == 7


def test_refuses_any_other_global_and_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    state = {"w": _tensor("0", np.ones(2, np.float32)), "evil": Evil()}
    with pytest.raises(ModelIntegrityError, match=r"refusing global (posix|nt|os)\.system"):
        read_legacy_checkpoint(_checkpoint(state))
    assert not marker.exists()
    # the small pickles around the state dict may name no global at all
    header = b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R."
    with pytest.raises(ModelIntegrityError, match=r"refusing global builtins\.eval"):
        read_legacy_checkpoint(
            _checkpoint({"w": _tensor("0", np.ones(1, np.float32))}, header=header)
        )
    # a global torch really has, but that no checkpoint of tensors needs
    state = {"w": _Global("torch", "load")}
    with pytest.raises(ModelIntegrityError, match=r"refusing global torch\.load"):
        read_legacy_checkpoint(_checkpoint(state))


def test_rejects_damaged_files() -> None:
    good = _checkpoint({"w": _tensor("0", np.ones(4, np.float32))})
    with pytest.raises(ModelIntegrityError, match="magic number"):
        read_legacy_checkpoint(_checkpoint({}, header=pickle.dumps(42, protocol=2)))
    with pytest.raises(ModelIntegrityError, match=r"cut short|does not hold"):
        read_legacy_checkpoint(good[:-3])
    with pytest.raises(ModelIntegrityError, match="unexpected bytes"):
        read_legacy_checkpoint(good + b"\0")
    with pytest.raises(ModelIntegrityError, match="cannot read"):
        read_legacy_checkpoint(b"\x80\x02")
    overrun = {"w": _Tensor(_Storage("0", np.ones(4, np.float32)), (3, 3), (3, 1))}
    with pytest.raises(ModelIntegrityError, match="overruns"):
        read_legacy_checkpoint(_checkpoint(overrun))
    with pytest.raises(ModelIntegrityError, match="state dict of tensors"):
        read_legacy_checkpoint(_checkpoint({"w": 3}))


def _lite0_state(seed: int = 0) -> dict[str, npt.NDArray[Any]]:
    """Random weights with every tensor EfficientNet-Lite0's state dict has, in its shapes."""
    rng = np.random.default_rng(seed)
    state: dict[str, npt.NDArray[Any]] = {}

    def conv_bn(conv: str, bn: str, shape: tuple[int, ...]) -> None:
        state[f"{conv}.weight"] = rng.normal(0, 0.1, shape).astype(np.float32)
        n = shape[0]
        state[f"{bn}.weight"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        state[f"{bn}.bias"] = rng.normal(0, 0.1, n).astype(np.float32)
        state[f"{bn}.running_mean"] = rng.normal(0, 0.1, n).astype(np.float32)
        state[f"{bn}.running_var"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        state[f"{bn}.num_batches_tracked"] = np.zeros((), np.int64)

    conv_bn("_conv_stem", "_bn0", (32, 3, 3, 3))
    index = 0
    for repeats, k, _, expand, cin, cout in STAGES:
        for r in range(repeats):
            i = cin if r == 0 else cout
            hidden = i * expand
            p = f"_blocks.{index}"
            if expand != 1:
                conv_bn(f"{p}._expand_conv", f"{p}._bn0", (hidden, i, 1, 1))
            conv_bn(f"{p}._depthwise_conv", f"{p}._bn1", (hidden, 1, k, k))
            conv_bn(f"{p}._project_conv", f"{p}._bn2", (cout, hidden, 1, 1))
            index += 1
    conv_bn("_conv_head", "_bn1", (1280, 320, 1, 1))
    state["_fc.weight"] = rng.normal(0, 0.01, (3, 1280)).astype(np.float32)
    state["_fc.bias"] = np.zeros(3, np.float32)
    return state


def test_builder_is_deterministic_and_runs() -> None:
    import onnxruntime as ort

    state = _lite0_state()
    labels = ["a", "b", "c"]
    first = build_efficientnet_onnx(state, labels, doc="d", metadata={"k": "v"})
    again = build_efficientnet_onnx(_lite0_state(), labels, doc="d", metadata={"k": "v"})
    assert first.SerializeToString() == again.SerializeToString()
    session = ort.InferenceSession(first.SerializeToString(), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(1).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    features, logits = session.run(["features", "logits"], {"images": images})
    assert features.shape == (2, 1280)
    assert logits.shape == (2, 3)
    assert np.isfinite(features).all()
    # the logits are the linear layer on the features
    expected = features @ state["_fc.weight"].T + state["_fc.bias"]
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)


def test_builder_refuses_other_networks() -> None:
    state = _lite0_state()
    with pytest.raises(ModelIntegrityError, match="does not use"):
        build_efficientnet_onnx(
            {**state, "_extra.weight": np.ones(1, np.float32)}, ["a", "b", "c"], doc="", metadata={}
        )
    missing = dict(state)
    del missing["_blocks.3._expand_conv.weight"]
    with pytest.raises(ModelIntegrityError, match=r"no tensor '_blocks\.3\._expand_conv\.weight'"):
        build_efficientnet_onnx(missing, ["a", "b", "c"], doc="", metadata={})
    wrong = {**state, "_conv_head.weight": np.ones((1280, 320, 3, 3), np.float32)}
    with pytest.raises(ModelIntegrityError, match="has shape"):
        build_efficientnet_onnx(wrong, ["a", "b", "c"], doc="", metadata={})
