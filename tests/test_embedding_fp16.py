"""The fp16 option: a half-precision copy of the model with its own manifest and embedder id.

Conversion is exercised on the tiny linear model (milliseconds); the parity of the real
Inception v3 fp16 copy with fp32 is one ``model`` + ``slow`` test, run on the CPU provider
(onnxruntime's CPU provider runs the float16 graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from test_embedding_onnx import SIDE, write_tiny_model

from avajams.embedding import OnnxEmbedder
from avajams.embedding import _fp16 as fp16
from avajams.embedding._model import read_model_info
from avajams.embedding._onnx import AUTO_PROVIDERS, auto_providers
from avajams.errors import ConfigError


def test_convert_model_writes_a_float16_copy(tmp_path: Path) -> None:
    fp32 = read_model_info(write_tiny_model(tmp_path / "tiny"))
    half = fp16.convert_model(fp32, tmp_path / ("tiny" + fp16.FP16_SUFFIX))
    half.verify()
    assert half.embedder_id == "tiny-linear" + fp16.FP16_SUFFIX
    assert half.manifest["fp16"]["from_sha256"] == fp32.manifest["onnx"]["sha256"]
    assert half.manifest["input"] == fp32.manifest["input"]
    graph = onnx.load(str(half.path)).graph
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    images = np.random.default_rng(3).integers(0, 256, (8, SIDE, SIDE, 3), dtype=np.uint8)
    exact = OnnxEmbedder(fp32.directory).embed(images)
    approx = OnnxEmbedder(half.directory).embed(images)
    assert approx.dtype == np.float32
    assert np.sum(exact * approx, axis=1).min() > 0.999


def test_ensure_fp16_model_converts_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fp32 = read_model_info(write_tiny_model(tmp_path / "tiny"))
    built = fp16.ensure_fp16_model(fp32, show_progress=False)
    calls: list[object] = []
    monkeypatch.setattr(fp16, "convert_model", lambda *a: calls.append(a))
    again = fp16.ensure_fp16_model(fp32, show_progress=False)
    assert again.directory == built.directory
    assert not calls


def test_precision_is_checked() -> None:
    with pytest.raises(ConfigError, match="fp16"):
        OnnxEmbedder.inception_v3(precision="bf16")


@pytest.mark.model
@pytest.mark.slow
def test_inception_fp16_matches_fp32(inception: OnnxEmbedder) -> None:
    from avajams.embedding import video_signature
    from avajams.embedding._quantize import calibration_images

    half = OnnxEmbedder.inception_v3(precision="fp16", show_progress=False)
    assert half.id == inception.id + fp16.FP16_SUFFIX
    images = calibration_images(299, limit=12)  # real photographs
    exact, approx = inception.embed(images), half.embed(images)
    assert np.sum(exact * approx, axis=1).min() >= 0.9999
    cosine = float(np.dot(video_signature(exact), video_signature(approx)))
    assert cosine >= 0.9999


def test_auto_providers_take_the_best_available(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    assert auto_providers()[-1] == "CPUExecutionProvider"
    for offered, expected in [
        (list(AUTO_PROVIDERS), AUTO_PROVIDERS),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], AUTO_PROVIDERS[1:]),
        (["TensorrtExecutionProvider", "CPUExecutionProvider"], ("CPUExecutionProvider",)),
        (["CPUExecutionProvider"], ("CPUExecutionProvider",)),
    ]:
        monkeypatch.setattr(ort, "get_available_providers", lambda offered=offered: offered)
        assert auto_providers() == expected


def test_auto_providers_on_this_machine(tmp_path: Path) -> None:
    import onnxruntime as ort

    embedder = OnnxEmbedder(write_tiny_model(tmp_path / "tiny"), providers=["auto"])
    assert embedder.providers == auto_providers()
    assert set(embedder.session_providers()) <= set(ort.get_available_providers())
