"""The 1000 ImageNet-1k class names, in the standard class index order, shipped as package data.

``imagenet_labels.json`` is ``gradio/media_assets/data/imagenet_labels.json`` from the PyPI wheel
``gradio==6.31.0`` (Apache-2.0), byte for byte (SHA-256 :data:`IMAGENET_LABELS_SHA256`): the
short readable names (``"tench"``, ``"goldfish"``, ..., ``"toilet paper"``), one per class and
all distinct, that torchvision and CLIP's notebooks use. A list of names is a fact, not a work;
the order is the one every ImageNet-1k classifier's logits follow, and the tests check it
against the class indices in the file names of foolbox's labelled ImageNet photos.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources

from avajams.errors import ModelIntegrityError

__all__ = ["IMAGENET_LABELS_SHA256", "IMAGENET_LABELS_SOURCE", "imagenet_labels"]

IMAGENET_LABELS_SHA256 = "70e15c20d97ba3deb59d46419738be26d2ae3c39d555393b2d1ae585c9de3dff"
IMAGENET_LABELS_SOURCE = "gradio==6.31.0:gradio/media_assets/data/imagenet_labels.json"


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 class names, index ``i`` naming logit ``i``."""
    data = resources.files("avajams.embedding").joinpath("imagenet_labels.json").read_bytes()
    if hashlib.sha256(data).hexdigest() != IMAGENET_LABELS_SHA256:
        raise ModelIntegrityError(
            "avajams/embedding/imagenet_labels.json is damaged (SHA-256 mismatch); "
            "reinstall avajams"
        )
    labels = json.loads(data)
    return tuple(str(x) for x in labels)
