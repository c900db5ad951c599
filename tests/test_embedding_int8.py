"""The int8 option: a QDQ-quantised copy of the model with its own manifest and embedder id.

Quantisation itself is exercised on the tiny linear model (milliseconds); the real Inception
int8 build is one ``model`` + ``slow`` test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest
from test_embedding_onnx import SIDE, write_tiny_model

from avajams.embedding import OnnxEmbedder
from avajams.embedding import _quantize as quantize
from avajams.embedding._model import read_model_info
from avajams.errors import ConfigError


def _images(n: int, seed: int = 1) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (n, SIDE, SIDE, 3), dtype=np.uint8)


def _row_cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
    out: npt.NDArray[Any] = np.sum(a * b, axis=1)
    return out


def test_quantize_model_writes_an_int8_qdq_copy(tmp_path: Path) -> None:
    fp32 = read_model_info(write_tiny_model(tmp_path / "tiny"))
    int8 = quantize.quantize_model(fp32, tmp_path / "tiny-int8q1", _images(32))
    int8.verify()
    assert int8.embedder_id == "tiny-linear" + quantize.INT8_SUFFIX
    assert int8.manifest["quantization"]["from_sha256"] == fp32.manifest["onnx"]["sha256"]
    assert int8.manifest["input"] == fp32.manifest["input"]
    graph = onnx.load(str(int8.path)).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)
    images = _images(16, seed=2)
    exact = OnnxEmbedder(fp32.directory).embed(images)
    approx = OnnxEmbedder(int8.directory).embed(images)
    assert approx.dtype == np.float32
    assert _row_cosines(exact, approx).min() > 0.99


def test_ensure_int8_model_builds_once_per_fp32_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp32 = read_model_info(write_tiny_model(tmp_path / "tiny"))
    monkeypatch.setattr(quantize, "calibration_images", lambda size, limit=None: _images(16))
    built = quantize.ensure_int8_model(fp32, show_progress=False)
    assert built.directory == tmp_path / ("tiny" + quantize.INT8_SUFFIX)

    calls: list[str] = []

    def refuse(*args: Any) -> None:
        calls.append("quantize")
        raise AssertionError("rebuilt an up-to-date int8 model")

    monkeypatch.setattr(quantize, "quantize_model", refuse)
    again = quantize.ensure_int8_model(fp32, show_progress=False)
    assert again.manifest == built.manifest
    assert calls == []
    # new fp32 weights: the cached int8 copy is stale and is rebuilt
    changed = type(fp32)(fp32.directory, {**fp32.manifest, "onnx": {"sha256": "0" * 64}})
    with pytest.raises(AssertionError, match="rebuilt"):
        quantize.ensure_int8_model(changed, show_progress=False)
    assert calls == ["quantize"]


def test_calibration_images_are_fixed_photo_crops() -> None:
    first = quantize.calibration_images(size=64)
    assert first.shape == (48, 64, 64, 3)
    assert first.dtype == np.uint8
    np.testing.assert_array_equal(first, quantize.calibration_images(size=64))
    assert len(quantize.calibration_images(size=64, limit=5)) == 5
    assert len({image.tobytes() for image in first}) == len(first)


def test_precision_is_validated_before_any_model_work() -> None:
    with pytest.raises(ConfigError, match="precision must be 'fp32', 'int8' or 'fp16'"):
        OnnxEmbedder.inception_v3(precision="bf16")


@pytest.mark.model
@pytest.mark.slow
def test_real_int8_embedder_is_close_to_fp32() -> None:
    from avajams import load_embedder

    fp32 = load_embedder("inception_v3")
    int8 = load_embedder("inception_v3", precision="int8")
    assert int8.id == fp32.id + quantize.INT8_SUFFIX
    assert int8.dim == fp32.dim
    photos = quantize.calibration_images()[::8]
    assert _row_cosines(fp32.embed(photos), int8.embed(photos)).min() > 0.95
