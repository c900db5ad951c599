"""The real Inception v3: parity with the TorchScript original, semantics, contract, end to end.

Every test here uses the session ``inception`` fixture (built once per machine into the cache,
from PyPI). About 40 images go through the network in total.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest

from avajams.embedding import OnnxEmbedder, load_embedder, video_signature
from avajams.embedding._model import FID_SHA256
from avajams.testing import check_embedder

pytestmark = pytest.mark.model

GOLDEN = Path(__file__).parent / "golden"


def _golden_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_inception_golden", GOLDEN / "make_inception_golden.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden() -> tuple[npt.NDArray[np.uint8], dict[str, Any]]:
    maker = _golden_module()
    images = maker.golden_inputs()
    with np.load(GOLDEN / "inception_fid2015.npz") as z:
        reference = {k: z[k] for k in z.files}
    assert maker.inputs_sha256(images) == str(reference["inputs_sha256"]), (
        "the regenerated golden inputs differ from the ones torch saw"
    )
    assert str(reference["archive_sha256"]) == FID_SHA256
    return images, reference


def test_onnx_matches_torchscript_features(inception: OnnxEmbedder, golden: Any) -> None:
    import onnxruntime as ort

    images, reference = golden
    session = ort.InferenceSession(inception.model_path, providers=["CPUExecutionProvider"])
    (features,) = session.run(["features"], {"images": images})
    expected = reference["features"]
    assert features.shape == expected.shape == (4, 2048)
    assert float(np.abs(features - expected).max()) <= 1e-4
    assert float(np.abs(expected).max()) > 1.0  # the reference is not trivially small

    # embed() at 299x299 is the model on (x - 128) / 128 of the pixels, rows normalised
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert float(np.abs(inception.embed(images) - unit).max()) <= 1e-5


def test_model_file_and_manifest(inception: OnnxEmbedder) -> None:
    path = Path(inception.model_path)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["onnx"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["source"]["archive_sha256"] == FID_SHA256
    assert manifest["input"]["dtype"] == "uint8"
    assert manifest["outputs"] == [{"name": "features", "dtype": "float32", "shape": ["N", 2048]}]
    model = onnx.load(str(path), load_external_data=False)
    assert model.opset_import[0].version >= 17
    assert inception.id == f"inception_v3-fid2015-{FID_SHA256[:12]}-stretch299"
    assert (inception.dim, inception.input_size) == (2048, (299, 299))
    ops = {n.op_type for n in model.graph.node}
    assert ops == {
        "Cast",
        "Sub",
        "Div",
        "Transpose",
        "Conv",
        "Relu",
        "MaxPool",
        "AveragePool",
        "Concat",
        "Reshape",
    }
    assert sum(n.op_type == "Conv" for n in model.graph.node) == 94


def test_load_embedder_default_is_inception(inception: OnnxEmbedder) -> None:
    emb = load_embedder("inception_v3", batch_size=4, threads=1)
    assert isinstance(emb, OnnxEmbedder)
    assert emb.id == inception.id
    assert emb.batch_size == 4


def test_semantic_sanity_on_photographs(inception: OnnxEmbedder) -> None:
    """A flipped and a cropped copy of each photo is nearer to it than to any other photo."""
    from skimage import data

    photos = [getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket")]
    originals = [p for p in photos]
    flipped = [p[:, ::-1] for p in photos]
    cropped = []
    for p in photos:
        h, w = p.shape[:2]
        cropped.append(p[h // 10 : h - h // 8, w // 8 : w - w // 10])
    vecs = [
        inception.embed(np.stack([_resize(im) for im in group]))
        for group in (originals, flipped, cropped)
    ]
    base = vecs[0]
    for variant in vecs[1:]:
        sims = variant @ base.T  # (variant, original)
        for i in range(len(photos)):
            others = np.delete(sims[i], i)
            assert sims[i, i] > others.max() + 0.2, sims
        assert np.all(np.diag(sims) > 0.85)


def test_contract_on_real_model(inception: OnnxEmbedder) -> None:
    from avajams._testing.contracts import contract_images

    check_embedder(inception, contract_images(3, (299, 299), seed=4))


def test_resized_input_equals_pillow_resize(inception: OnnxEmbedder) -> None:
    from skimage import data

    photo = data.coffee()[None]  # 400 x 600
    np.testing.assert_allclose(
        inception.embed(photo), inception.embed(_resize(photo[0])[None]), atol=1e-6
    )


def test_concurrent_embeds_agree(inception: OnnxEmbedder) -> None:
    from avajams._testing.contracts import contract_images

    images = contract_images(2, (299, 299), seed=9)
    expected = inception.embed(images)
    results: list[npt.NDArray[np.float32]] = []
    lock = threading.Lock()

    def work() -> None:
        v = inception.embed(images)
        with lock:
            results.append(v)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    for v in results:
        np.testing.assert_allclose(v, expected, atol=1e-5)


def test_end_to_end_generated_clip(inception: OnnxEmbedder, tmp_path: Path) -> None:
    from avajams.sampling import FrameSampler
    from avajams.testing import make_clip

    clip = make_clip(tmp_path / "clip.mp4", duration=2.0, fps=12.0, size=(160, 120), tag=3)
    frames = FrameSampler(fps=2.0, size=299).sample(clip)
    assert len(frames) >= 3
    vectors = inception.embed(frames.images)
    assert vectors.shape == (len(frames), 2048)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    signature = video_signature(vectors)
    assert signature.shape == (2048,)
    # frames of one short clip are alike
    assert float((vectors @ signature).min()) > 0.8


def _resize(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    from PIL import Image

    return np.asarray(
        Image.fromarray(np.ascontiguousarray(image)).resize((299, 299), Image.Resampling.BILINEAR)
    )
