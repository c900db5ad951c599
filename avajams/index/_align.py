"""Temporal alignment: the best diagonal run of high similarities between two frame sequences.

A query that shows a library video only for a few seconds (an excerpt inside unrelated
footage) or only in part of its frame has most of its frames unlike the video; averaging every
query frame's best similarity drowns the few that match. Alignment looks instead for the best
*run*: consecutive query frames matched to consecutive video frames, in order, at a speed
between half and double — a local alignment (Smith-Waterman) on the similarity matrix.

Each pair earns its similarity above a per-query-frame baseline (how well an unrelated video
explains that frame); the run is the stretch whose earnings add up to the most, so a short run
of strong matches beats a long drift of ordinary ones and unrelated frames end the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Alignment", "align", "frame_baseline"]

#: Steps (query frames, video frames) a run may take between two matched pairs, and the cost
#: of each: (1, 1) is real time; the others allow a speed change or a dropped frame.
_STEPS: tuple[tuple[int, int, float], ...] = (
    (1, 1, 0.0),
    (1, 2, 0.02),  # video plays faster than the query: speed up to 2x
    (1, 0, 0.02),  # the same video frame for two query frames: slower, down to ~0.5x
    (2, 1, 0.04),  # skip a query frame (a flash, a cut in the host)
    (1, 3, 0.08),  # a video frame skipped (sampling phase at speed ~2)
)


@dataclass(frozen=True)
class Alignment:
    """The best run: ``pairs`` of (query index, video index) in order, and what it earned.

    ``score`` is the run's total gain (similarity above the baseline, summed over its pairs);
    ``similarity`` the mean cosine of its pairs. An empty run has score 0.
    """

    pairs: tuple[tuple[int, int], ...]
    score: float
    similarity: float

    @property
    def length(self) -> int:
        return len(self.pairs)


def frame_baseline(best_per_video: NDArray[np.float32]) -> NDArray[np.float32]:
    """Per query frame, the similarity an unrelated video reaches: the median over videos.

    ``best_per_video`` (videos, query frames) holds each candidate video's best cosine for each
    query frame; with one video (nothing to compare with) the baseline is that video's median.
    """
    b = np.asarray(best_per_video, dtype=np.float32)
    if b.ndim != 2 or b.shape[0] == 0:
        raise ValueError(f"best_per_video must be (videos, frames) with videos >= 1, not {b.shape}")
    if b.shape[0] == 1:
        return np.full(b.shape[1], float(np.median(b)), np.float32)
    # the median of the *others* for the best video: with few candidates the plain median
    # would be the matching video itself when it is one of two
    out: NDArray[np.float32] = np.median(b, axis=0).astype(np.float32)
    if b.shape[0] == 2:
        out = b.min(axis=0).astype(np.float32)
    return out


def align(
    sims: NDArray[np.float32],
    baseline: NDArray[np.float32] | float,
    *,
    margin: float = 0.03,
) -> Alignment:
    """The best local alignment of a (query frames, video frames) similarity matrix.

    A pair (i, j) gains ``sims[i, j] - baseline[i] - margin``; a run follows the steps in
    ``_STEPS`` (real time, up to 2x faster or slower, an occasional skipped frame), paying each
    step's small cost, and may start and end anywhere. Returns the run of greatest total gain
    (an empty :class:`Alignment` when no pair gains anything).
    """
    s = np.asarray(sims, dtype=np.float32)
    if s.ndim != 2:
        raise ValueError(f"sims must be a 2-d matrix, not shape {s.shape}")
    m, n = s.shape
    if m == 0 or n == 0:
        return Alignment((), 0.0, 0.0)
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float32), (m,))
    gain = s - base[:, None] - np.float32(margin)
    value = np.zeros((m, n), np.float32)
    # back[i, j]: index into _STEPS of the step that reached (i, j), or -1 for a run start
    back = np.full((m, n), -1, np.int8)
    neg = np.float32(-np.inf)
    for i in range(m):
        best = np.zeros(n, np.float32)  # starting a new run here
        arg = np.full(n, -1, np.int8)
        for k, (di, dj, cost) in enumerate(_STEPS):
            if i - di < 0:
                continue
            prev = value[i - di]
            if dj > 0:
                shifted = np.full(n, neg, np.float32)
                shifted[dj:] = prev[:-dj]
            else:
                shifted = prev
            cand = shifted - np.float32(cost)
            better = cand > best
            best = np.where(better, cand, best)
            arg = np.where(better, np.int8(k), arg)
        value[i] = gain[i] + best
        back[i] = arg
    end = int(np.argmax(value))
    ei, ej = divmod(end, n)
    total = float(value[ei, ej])
    if total <= 0:
        return Alignment((), 0.0, 0.0)
    pairs = [(ei, ej)]
    i, j = ei, ej
    while back[i, j] >= 0:
        di, dj, _ = _STEPS[int(back[i, j])]
        i, j = i - di, j - dj
        pairs.append((i, j))
    pairs.reverse()
    sim = float(np.mean([s[a, b] for a, b in pairs]))
    return Alignment(tuple(pairs), total, sim)
