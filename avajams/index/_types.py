"""Value types returned by :class:`~avajams.index.VideoIndex`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from avajams.labels import Label


@dataclass(frozen=True)
class AlignedPair:
    """One query frame and the library-video frame that matches it best.

    Times are in seconds on each video's own timeline; ``similarity`` is their cosine.
    """

    query_time: float
    music_time: float
    similarity: float


@dataclass(frozen=True)
class Match:
    """One search result.

    ``score`` is what results are ranked by: the frame-level re-ranking score when the query
    passed ``query_frames`` (and the video has stored frames), else the signature cosine.
    ``signature_score`` is always the signature cosine. ``aligned`` holds, for every query
    frame in time order, its best-matching frame of this video (empty without query frames).
    ``labels`` are the video's stored ImageNet labels, best first (empty when it has none).
    """

    key: str
    score: float
    path: str | None
    metadata: dict[str, Any]
    signature_score: float
    aligned: tuple[AlignedPair, ...] = ()
    labels: tuple[Label, ...] = ()


@dataclass(frozen=True, eq=False)
class Entry:
    """Everything the catalogue holds about one video.

    ``signature`` is the stored unit vector (float32). ``frames`` (float32, unit rows, stored
    as float16) and ``times`` (seconds) are ``None`` when the video was added without frames,
    or when the entry was read with ``vectors=False``.
    """

    key: str
    path: str | None
    duration: float | None
    content_hash: str | None
    num_frames: int
    added_at: datetime
    metadata: dict[str, Any]
    signature: NDArray[np.float32] | None = field(default=None, repr=False)
    frames: NDArray[np.float32] | None = field(default=None, repr=False)
    times: NDArray[np.float64] | None = field(default=None, repr=False)
