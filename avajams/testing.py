"""Helpers for testing avajams and plugins written for it.

- generated media whose every frame encodes its own index (``make_clip``, ``read_frame_code``);
- generated "music videos" from real photographs with music (``make_photo_video``) and re-shot
  excerpts of them (``make_excerpt``), as the demo and the benchmarks use;
- queries that show a video in part of the frame or of the clip, with known truth
  (``make_picture_in_picture``, ``make_inserted_excerpt``);
- ``FakeEmbedder``, a fast deterministic embedder for unit tests;
- ``check_embedder``, the contract any embedder plugin must meet.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "FakeEmbedder",
    "check_embedder",
    "make_clip",
    "make_excerpt",
    "make_inserted_excerpt",
    "make_photo_video",
    "make_picture_in_picture",
    "read_frame_code",
]

_LAZY = {
    "make_clip": "avajams._testing.media",
    "read_frame_code": "avajams._testing.media",
    "make_photo_video": "avajams.photo",
    "make_excerpt": "avajams.photo",
    "make_picture_in_picture": "avajams._testing.compose",
    "make_inserted_excerpt": "avajams._testing.compose",
    "FakeEmbedder": "avajams._testing.fake",
    "check_embedder": "avajams._testing.contracts",
}

if TYPE_CHECKING:
    from avajams._testing.compose import make_inserted_excerpt, make_picture_in_picture
    from avajams._testing.contracts import check_embedder
    from avajams._testing.fake import FakeEmbedder
    from avajams._testing.media import make_clip, read_frame_code
    from avajams.photo import make_excerpt, make_photo_video


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avajams.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
