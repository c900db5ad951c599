"""OnnxEmbedder on a tiny ONNX model with the same contract as the Inception build.

The tiny model (uint8 NHWC 8x8 in, a fixed linear map of the normalised pixels out) exercises
providers, batching, resizing, lazy sessions, threads and integrity checks in milliseconds; the
real model is covered by test_model_inception.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from avajams.embedding import OnnxEmbedder, l2_normalize
from avajams.errors import (
    ConfigError,
    EmbedderError,
    ModelError,
    ModelIntegrityError,
    ProviderError,
)
from avajams.testing import check_embedder

SIDE = 8
DIM = 6
WEIGHTS = np.random.default_rng(0).standard_normal((SIDE * SIDE * 3, DIM)).astype(np.float32)


def _reference(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    x = (images.astype(np.float32) - 128) / 128
    return l2_normalize(x.reshape(len(x), -1) @ WEIGHTS)


def write_tiny_model(directory: Path, *, logits: bool = False) -> Path:
    """A model dir like the built ones; with ``logits`` it also outputs them (= the features)."""
    nodes = [
        helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["f", "c"], ["centred"]),
        helper.make_node("Div", ["centred", "c"], ["x"]),
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["features"]),
    ]
    outputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", DIM])]
    if logits:
        nodes.append(helper.make_node("Identity", ["features"], ["logits"]))
        outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", DIM]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", SIDE, SIDE, 3])],
        outputs,
        initializer=[
            numpy_helper.from_array(np.array(128.0, np.float32), "c"),
            numpy_helper.from_array(np.array([-1, SIDE * SIDE * 3], np.int64), "shape"),
            numpy_helper.from_array(WEIGHTS, "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    blob = model.SerializeToString()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(blob)
    manifest: dict[str, Any] = {
        "format": 1,
        "name": "tiny",
        "embedder_id": "tiny-linear",
        "dim": DIM,
        "onnx": {
            "file": "model.onnx",
            "sha256": hashlib.sha256(blob).hexdigest(),
            "size": len(blob),
            "opset": 17,
        },
        "input": {"name": "images", "dtype": "uint8", "shape": ["N", SIDE, SIDE, 3]},
        "outputs": [{"name": "features", "dtype": "float32", "shape": ["N", DIM]}],
    }
    if logits:
        manifest["outputs"].append({"name": "logits", "dtype": "float32", "shape": ["N", DIM]})
        manifest["labels"] = list("abcdef")
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "tiny")


def _images(n: int, h: int = SIDE, w: int = SIDE, seed: int = 0) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_embed_at_input_size_is_the_model_on_normalised_pixels(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny, batch_size=3)
    assert (emb.id, emb.dim, emb.input_size) == ("tiny-linear", DIM, (SIDE, SIDE))
    images = _images(7)
    np.testing.assert_allclose(emb.embed(images), _reference(images), atol=1e-6)
    assert emb.embed(images[:0]).shape == (0, DIM)
    check_embedder(emb)


def test_other_sizes_are_resized(tiny: Path) -> None:
    from PIL import Image

    emb = OnnxEmbedder(tiny)
    big = _images(2, 40, 24, seed=1)
    resized = np.stack(
        [
            np.asarray(Image.fromarray(im).resize((SIDE, SIDE), Image.Resampling.BILINEAR))
            for im in big
        ]
    )
    np.testing.assert_allclose(emb.embed(big), _reference(resized), atol=1e-6)


def test_session_is_lazy_and_close_is_idempotent(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny)
    assert emb._session is None
    emb.embed(_images(1))
    assert emb._session is not None
    assert emb.session_providers() == ["CPUExecutionProvider"]
    with emb:
        pass
    emb.close()
    assert emb._session is None
    assert emb.embed(_images(1)).shape == (1, DIM)


def test_embed_is_thread_safe(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny, batch_size=2)
    batches = [_images(5, seed=s) for s in range(8)]
    results: dict[int, npt.NDArray[np.float32]] = {}
    barrier = threading.Barrier(len(batches))

    def work(i: int) -> None:
        barrier.wait()  # every thread races to create the session
        results[i] = emb.embed(batches[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, batch in enumerate(batches):
        np.testing.assert_allclose(results[i], _reference(batch), atol=1e-6)


def test_unavailable_provider_is_refused_up_front(tiny: Path) -> None:
    with pytest.raises(ProviderError, match=r"'NoSuchExecutionProvider'.*CPUExecutionProvider"):
        OnnxEmbedder(tiny, providers=["NoSuchExecutionProvider"])
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ProviderError, match=r"avajams\[cuda\]"):
            OnnxEmbedder(tiny, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ProviderError, match="at least one"):
        OnnxEmbedder(tiny, providers=[])


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA really is available"
)
def test_cuda_falling_back_to_cpu_warns(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime-gpu lists CUDA as available yet falls back to CPU when the CUDA libraries are
    # missing; simulate the listing so the session creation meets the fallback.
    available = [*ort.get_available_providers(), "CUDAExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    emb = OnnxEmbedder(tiny, providers=[("CUDAExecutionProvider", {}), "CPUExecutionProvider"])
    with pytest.warns(RuntimeWarning, match="did not enable CUDAExecutionProvider"):
        vectors = emb.embed(_images(2))
    np.testing.assert_allclose(vectors, _reference(_images(2)), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"threads": -1}, "threads"),
    ],
)
def test_bad_options(tiny: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OnnxEmbedder(tiny, **options)


def test_threads_option_reaches_the_session(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny, threads=1)
    np.testing.assert_allclose(emb.embed(_images(3)), _reference(_images(3)), atol=1e-6)


def test_input_validation(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny)
    with pytest.raises(EmbedderError, match="uint8"):
        emb.embed(_images(1).astype(np.float32))
    with pytest.raises(EmbedderError, match=r"\(N, H, W, 3\)"):
        emb.embed(_images(1)[0])
    with pytest.raises(EmbedderError, match="empty"):
        emb.embed(np.zeros((1, 0, 4, 3), np.uint8))


def test_damaged_model_file_is_detected(tiny: Path) -> None:
    blob = bytearray((tiny / "model.onnx").read_bytes())
    blob[-5] ^= 0xFF
    (tiny / "model.onnx").write_bytes(bytes(blob))
    emb = OnnxEmbedder(tiny)  # cheap: the check happens with the session
    with pytest.raises(ModelIntegrityError, match=r"does not match its manifest.*--force"):
        emb.embed(_images(1))
    (tiny / "model.onnx").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        OnnxEmbedder(tiny).embed(_images(1))


def test_missing_or_bad_manifest(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(ModelError, match="avajams model fetch"):
        OnnxEmbedder(tmp_path / "nowhere")
    (tiny / "manifest.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="cannot read model manifest"):
        OnnxEmbedder(tiny)
    (tiny / "manifest.json").write_text(json.dumps({"format": 1, "dim": 3}))
    with pytest.raises(ModelError, match="incomplete"):
        OnnxEmbedder(tiny)


def test_tiny_model_is_valid_onnx(tiny: Path) -> None:
    onnx.checker.check_model(onnx.load(str(tiny / "model.onnx")))


def test_classify_uses_logits_and_labels(tmp_path: Path) -> None:
    directory = write_tiny_model(tmp_path / "tiny-logits", logits=True)
    emb = OnnxEmbedder(directory, batch_size=2)
    assert emb.labels == ("a", "b", "c", "d", "e", "f")
    images = _images(5)
    x = (images.astype(np.float64) - 128) / 128
    logits = x.reshape(5, -1) @ WEIGHTS.astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    result = emb.classify(images, top=3)
    np.testing.assert_allclose(result.probabilities, probs, atol=1e-5)
    assert [len(f) for f in result.frames] == [3] * 5
    for frame, p in zip(result.frames, probs, strict=True):
        assert [label for label, _ in frame] == [emb.labels[i] for i in np.argsort(-p)[:3]]
    assert result.video[0][0] == emb.labels[int(probs.mean(0).argmax())]
    with pytest.raises(ConfigError, match="top"):
        emb.classify(images, top=0)


def test_classify_without_logits_is_an_error(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny)
    assert emb.labels is None
    with pytest.raises(EmbedderError, match=r"no class logits.*--source torchvision"):
        emb.classify(_images(1))
