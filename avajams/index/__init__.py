"""The video library: a persistent, searchable collection of video signatures.

    >>> from avajams.index import VideoIndex
    >>> lib = VideoIndex.create(directory, dim=2048, embedder_id=embedder.id)  # doctest: +SKIP

See docs/library.md for the on-disk layout, guarantees and tuning.
"""

from __future__ import annotations

from avajams.index._backends import ExactBackend, HnswBackend, HnswParams, VectorBackend
from avajams.index._library import (
    AUTO_EXACT_LIMIT,
    FORMAT_VERSION,
    VideoIndex,
    content_hash,
    default_library_dir,
)
from avajams.index._types import AlignedPair, Box, Entry, Match, QueryTrack, Span

__all__ = [
    "AUTO_EXACT_LIMIT",
    "FORMAT_VERSION",
    "AlignedPair",
    "Box",
    "Entry",
    "ExactBackend",
    "HnswBackend",
    "HnswParams",
    "Match",
    "QueryTrack",
    "Span",
    "VectorBackend",
    "VideoIndex",
    "content_hash",
    "default_library_dir",
]
