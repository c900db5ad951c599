"""The optional torchvision source: export with class logits, and labels per frame and video.

These tests need torch (and, for the real weights, torchvision with network access to its
weights); they skip where those are absent, as in the default CI environment.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from avajams.embedding import OnnxEmbedder, fetch_model
from avajams.errors import ModelFetchError

HAS_TORCHVISION = all(importlib.util.find_spec(m) for m in ("torch", "torchvision"))


@pytest.mark.skipif(HAS_TORCHVISION, reason="torchvision is installed")
def test_torchvision_source_without_torchvision_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    with pytest.raises(ModelFetchError, match="pip install torch torchvision"):
        fetch_model("torchvision", show_progress=False)


def test_export_classifier_matches_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from avajams.embedding._model import install_exported
    from avajams.embedding._torchvision import export_classifier

    torch.manual_seed(0)

    # torch comes from importorskip (Any): mypy sees neither the module nor a typed base class
    class Net(torch.nn.Module):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, x: object) -> object:
            return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))

    net, reference = Net().eval(), Net().eval()
    reference.load_state_dict(net.state_dict())
    labels = ["ant", "bee", "cat", "dog", "eel"]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    blob, fields = export_classifier(net, labels, mean=mean, std=std, size=32)
    info = install_exported(tmp_path / "m", blob, fields)
    emb = OnnxEmbedder(info)
    assert emb.labels == tuple(labels)
    assert emb.id.startswith("inception_v3-torchvision-")
    assert emb.id.endswith("-stretch32")

    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = reference(x).double()
    expected = torch.softmax(logits, dim=1).numpy()
    result = emb.classify(images, top=2)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    assert result.frames[0][0][0] == labels[int(expected[0].argmax())]
    assert result.video[0][0] == labels[int(expected.mean(0).argmax())]
    assert emb.embed(images).shape == (3, 8)


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCHVISION, reason="needs torch and torchvision")
def test_torchvision_weights_label_a_cat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skimage import data

    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    try:
        info = fetch_model("torchvision", show_progress=False)
    except ModelFetchError as exc:  # torchvision's weights come from download.pytorch.org
        pytest.skip(f"torchvision weights unavailable: {exc}")
    emb = OnnxEmbedder(info)
    assert emb.dim == 2048
    assert emb.labels is not None
    assert len(emb.labels) == 1000
    result = emb.classify(np.stack([data.chelsea()[:, 60:360], data.chelsea()[:, 100:400]]))
    assert "cat" in result.video[0][0].lower()
    assert all("cat" in frame[0][0].lower() for frame in result.frames)
