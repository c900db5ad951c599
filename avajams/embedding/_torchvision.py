"""The optional ``torchvision`` model source: ImageNet Inception v3 with its 1000 class logits.

Used only when torch and torchvision are importable (``avajams model fetch --source
torchvision``). torchvision downloads its ``IMAGENET1K_V1`` weights through ``torch.hub`` (its
own cache), and the network is exported with ``torch.onnx.export`` behind the same input contract
as the default model: uint8 RGB NHWC at 299x299 in, normalisation inside the graph. Outputs are
``features`` (2048-d pool) and ``logits`` (1000 ImageNet classes); the class names go into the
manifest, so the embedder can label frames and videos.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avajams._progress import Progress, ProgressCallback
from avajams.errors import ModelFetchError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "export_classifier", "export_torchvision"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DESCRIPTION = "torchvision's Inception v3 with ImageNet-1k weights (IMAGENET1K_V1) and class logits"


def torchvision_available() -> bool:
    """Whether torch and torchvision can be imported here."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))


def export_torchvision(
    *, show_progress: bool | None, progress: ProgressCallback | None
) -> tuple[bytes, dict[str, Any]]:
    """Export torchvision's ImageNet Inception v3; returns the ONNX bytes and manifest fields."""
    if not torchvision_available():
        raise ModelFetchError(
            "the torchvision model source needs torch and torchvision: "
            "pip install torch torchvision (or use the default source, which needs neither)"
        )
    torchvision: Any = importlib.import_module("torchvision")
    weights = torchvision.models.Inception_V3_Weights.IMAGENET1K_V1
    with Progress("download", 1, unit="file", show=False, callback=progress) as bar:
        try:
            net = torchvision.models.inception_v3(weights=weights)
        except Exception as exc:  # torch.hub raises URLError, RuntimeError, HTTPError...
            raise ModelFetchError(
                f"torchvision could not load its Inception v3 weights ({weights.url}): {exc}"
            ) from exc
        bar.update()
    return export_classifier(
        net,
        list(weights.meta["categories"]),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        show_progress=show_progress,
        progress=progress,
    )


def export_classifier(
    net: Any,
    labels: Sequence[str],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    size: int = 299,
    show_progress: bool | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """Export a torch classifier whose last layer is ``net.fc`` as features + logits ONNX.

    The graph takes uint8 RGB NHWC images, scales them to [0, 1], normalises by ``mean``/``std``
    and returns ``features`` (the input of ``fc``) and ``logits`` (its output).
    """
    torch: Any = importlib.import_module("torch")  # optional; never imported at module level
    fc = net.fc
    net.fc = torch.nn.Identity()
    net.eval()

    def forward(self: Any, images: Any) -> tuple[Any, Any]:
        x = images.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        features = self.body((x - self.mean) / self.std)
        return features, self.fc(features)

    model = type("InceptionWithLogits", (torch.nn.Module,), {"forward": forward})()
    model.body = net
    model.fc = fc
    model.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
    model.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
    model.eval()
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for tensor in (fc.weight, fc.bias):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    example = torch.zeros((1, size, size, 3), dtype=torch.uint8)
    with Progress("build", 1, unit="model", show=show_progress, callback=progress) as bar:
        with tempfile.TemporaryDirectory(prefix="avajams-export-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            with torch.no_grad(), warnings.catch_warnings():
                # the TorchScript-based exporter needs no extra packages (the newer one needs
                # onnxscript); torch >= 2.9 flags it and its internals as deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(
                    model,
                    (example,),
                    path,
                    input_names=["images"],
                    output_names=["features", "logits"],
                    dynamic_axes={"images": {0: "N"}, "features": {0: "N"}, "logits": {0: "N"}},
                    opset_version=17,
                    dynamo=False,
                )
            blob = Path(path).read_bytes()
        bar.update()
        with torch.no_grad():
            dim = int(model(example)[0].shape[1])
    fields: dict[str, Any] = {
        "weights_sha256": digest.hexdigest(),
        "dim": dim,
        "labels": list(labels),
        "input": {
            "name": "images",
            "dtype": "uint8",
            "layout": "NHWC",
            "shape": ["N", size, size, 3],
            "color": "RGB",
            "normalisation": f"(x / 255 - {list(mean)}) / {list(std)}, then NCHW; inside the graph",
            "resize": f"stretch to {size}x{size} (bilinear, antialiased) when sizes differ",
        },
        "outputs": [
            {"name": "features", "dtype": "float32", "shape": ["N", dim]},
            {"name": "logits", "dtype": "float32", "shape": ["N", len(labels)]},
        ],
    }
    return blob, fields
