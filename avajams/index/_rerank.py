"""Frame-level re-ranking: how well a candidate video's frames cover the query's frames, or
align with them in time (:func:`align_tracks`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from avajams.index._align import Alignment, align, frame_baseline, trim


def rerank_scores(
    query: NDArray[np.float32], candidate: NDArray[np.float32], *, symmetric: bool = False
) -> tuple[float, NDArray[np.intp], NDArray[np.float32]]:
    """Chamfer similarity of two sets of unit frame vectors.

    Returns ``(score, best, best_sim)``: for each query frame ``i``, ``best[i]`` is the index
    of its most similar candidate frame and ``best_sim[i]`` that cosine. The one-sided score
    (the default) is ``mean(best_sim)``: every query moment found somewhere in the candidate,
    so a short query inside a long video scores as high as the whole video would. With
    ``symmetric=True`` it is averaged with the candidate-to-query direction, which instead
    rewards videos that are similar *throughout*.
    """
    sims = query @ candidate.T  # (m, n)
    best = sims.argmax(axis=1)
    best_sim = sims[np.arange(len(query)), best].astype(np.float32)
    score = float(best_sim.mean())
    if symmetric:
        score = (score + float(sims.max(axis=0).mean())) / 2
    return score, best, best_sim


@dataclass(frozen=True)
class TrackResult:
    """The best alignment of one video over all query tracks."""

    track: int
    alignment: Alignment
    best: NDArray[np.intp]  # per frame of that track: its most similar video frame
    best_sim: NDArray[np.float32]
    sims: NDArray[np.float32]  # that track's frames x the video's frames


def _interval(times: NDArray[np.float64] | None) -> float:
    if times is None or len(times) < 2:
        return 1.0
    step = float(np.median(np.diff(times)))
    return step if step > 0 else 1.0


def align_tracks(
    tracks: Sequence[NDArray[np.float32]],
    videos: Sequence[NDArray[np.float32]],
    *,
    track_times: Sequence[NDArray[np.float64]] | None = None,
    video_times: Sequence[NDArray[np.float64]] | None = None,
) -> list[TrackResult]:
    """For each video (its unit frame vectors), the query track that aligns with it best.

    Each track's frames are compared with every video's; a frame's baseline is how well the
    median video explains it (:func:`frame_baseline`), so a pair counts only by how far it
    stands above what unrelated videos reach. The video keeps the track whose best run
    (:func:`align`) earns the most. Times (seconds, default one frame a second) set how many
    video frames one query step covers in real time.
    """
    if not videos:
        return []
    # one product per track against every video's frames at once, then split per video
    bounds = np.cumsum([0, *(len(v) for v in videos)])
    stacked = np.concatenate(videos, axis=0)
    sims = []  # [track][video] (m_t, n_v)
    for t in tracks:
        whole = t @ stacked.T
        sims.append([whole[:, a:b] for a, b in pairwise(bounds.tolist())])
    results: list[TrackResult | None] = [None] * len(videos)
    for ti, per_video in enumerate(sims):
        best_per_video = np.stack([s.max(axis=1) for s in per_video])
        baseline = frame_baseline(best_per_video)
        q_step = _interval(None if track_times is None else track_times[ti])
        for vi, s in enumerate(per_video):
            v_step = _interval(None if video_times is None else video_times[vi])
            alignment = trim(align(s, baseline, ratio=q_step / v_step), s)
            current = results[vi]
            if current is None or alignment.score > current.alignment.score:
                best = s.argmax(axis=1)
                best_sim = s[np.arange(len(s)), best].astype(np.float32)
                results[vi] = TrackResult(ti, alignment, best, best_sim, s)
    return [r for r in results if r is not None]
