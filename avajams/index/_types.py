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


#: A part of the query frame: (x0, y0, x1, y1) as fractions of its width and height.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Span:
    """The stretch of the query that aligned with the video, and the video's stretch it shows.

    Times are in seconds: the query's first and last aligned sample, and where the straight
    line through the aligned pairs puts them in the music video (finer than the one-second
    frame spacing); ``speed`` is that line's slope (music seconds per query second, 1.0 in
    real time); ``similarity`` is the mean cosine of the aligned frame pairs, ``frames`` how
    many pairs there are.
    """

    query_start: float
    query_end: float
    music_start: float
    music_end: float
    similarity: float
    frames: int
    speed: float = 1.0


@dataclass(frozen=True)
class Match:
    """One search result.

    ``score`` is what results are ranked by: the frame-level re-ranking score when the query
    passed ``query_frames`` (and the video has stored frames), else the signature cosine; for
    :meth:`VideoIndex.search_tracks` it is ``1 - exp(-evidence)`` of the best time alignment
    (0: nothing aligned; see docs/library.md).
    ``signature_score`` is always the signature cosine. ``aligned`` holds, for every query
    frame in time order, its best-matching frame of this video (empty without query frames);
    within ``span`` it is the frame the time alignment paired it with, its time read off the
    span's line. ``labels`` are the video's stored ImageNet labels, best first (empty when it
    has none).

    ``span`` (alignment only) says which stretch of the query matched which stretch of the
    video; ``box`` the part of the query frame that matched, None when it was the whole frame.
    """

    key: str
    score: float
    path: str | None
    metadata: dict[str, Any]
    signature_score: float
    aligned: tuple[AlignedPair, ...] = ()
    labels: tuple[Label, ...] = ()
    span: Span | None = None
    box: Box | None = None


@dataclass(frozen=True, eq=False)
class QueryTrack:
    """One sequence of query frame vectors for :meth:`VideoIndex.search_tracks`.

    ``frames`` (n, dim) and ``times`` (n,) seconds are a region's (or the whole frame's)
    vectors over the query; ``box`` the region, None for the whole frame.
    """

    frames: NDArray[np.float32] = field(repr=False)
    times: NDArray[np.float64] = field(repr=False)
    box: Box | None = None


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
