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

__all__ = ["Alignment", "align", "fit_line", "frame_baseline", "steps", "trim"]

Step = tuple[int, int, float]

#: Speeds (video seconds per query second) a run may follow: half to double.
MIN_SPEED, MAX_SPEED = 0.5, 2.0
#: Cost of a step away from real time, per video frame of difference (a tie-breaker: a run
#: keeps real time unless the similarities say otherwise).
SPEED_COST = 0.005
#: Cost of skipping one query frame (a flash, a cut in the host).
SKIP_COST = 0.04


def steps(ratio: float = 1.0) -> tuple[Step, ...]:
    """The steps (query frames, video frames, cost) a run may take between two pairs.

    ``ratio`` is the query's sampling interval over the video's (1 when both are sampled at the
    same rate, 2 when the query track has every other frame): one query step covers ``ratio``
    video frames in real time, from ``MIN_SPEED`` to ``MAX_SPEED`` times that.
    """
    if not (ratio > 0 and np.isfinite(ratio)):
        raise ValueError(f"ratio must be a positive number, not {ratio!r}")
    lo = max(0, int(np.floor(ratio * MIN_SPEED)))
    hi = max(1, int(np.ceil(ratio * MAX_SPEED)))
    out: list[Step] = []
    for dj in range(lo, hi + 1):
        off = max(0.0, abs(dj - ratio) - (0.5 if ratio % 1 else 0.0))
        out.append((1, dj, 0.0 if off < 1e-9 else SPEED_COST * max(1.0, off)))
    out.append((2, max(1, round(2 * ratio)), SKIP_COST))
    out.sort(key=lambda s: s[2])  # ties go to the cheapest step
    return tuple(out)


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


#: the baseline is this quantile of the candidates' best similarities for a query frame
BASELINE_QUANTILE = 0.8


def frame_baseline(best_per_video: NDArray[np.float32]) -> NDArray[np.float32]:
    """Per query frame, the similarity an unrelated video reaches.

    ``best_per_video`` (videos, query frames) holds each candidate video's best cosine for each
    query frame. The baseline is their :data:`BASELINE_QUANTILE` quantile: a frame counts
    for a video only where that video explains it better than all but the few best
    candidates (so a second copy of the same video in the library does not cancel the
    first). With one or two candidates, nothing to compare with, it is the lowest one.
    """
    b = np.asarray(best_per_video, dtype=np.float32)
    if b.ndim != 2 or b.shape[0] == 0:
        raise ValueError(f"best_per_video must be (videos, frames) with videos >= 1, not {b.shape}")
    if b.shape[0] == 1:
        return np.full(b.shape[1], float(np.median(b)), np.float32)
    if b.shape[0] <= 3:
        low: NDArray[np.float32] = b.min(axis=0).astype(np.float32)
        return low
    out: NDArray[np.float32] = np.quantile(b, BASELINE_QUANTILE, axis=0).astype(np.float32)
    return out


def align(
    sims: NDArray[np.float32],
    baseline: NDArray[np.float32] | float,
    *,
    margin: float = 0.03,
    ratio: float = 1.0,
) -> Alignment:
    """The best local alignment of a (query frames, video frames) similarity matrix.

    A pair (i, j) gains ``sims[i, j] - baseline[i] - margin``; a run follows the
    :func:`steps` for ``ratio`` (real time, up to 2x faster or slower, an occasional skipped
    query frame), paying each step's small cost, and may start and end anywhere. Returns the
    run of greatest total gain (an empty :class:`Alignment` when no pair gains anything).
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
    moves = steps(ratio)
    # back[i, j]: index into moves of the step that reached (i, j), or -1 for a run start
    back = np.full((m, n), -1, np.int8)
    neg = np.float32(-np.inf)
    for i in range(m):
        best = np.zeros(n, np.float32)  # starting a new run here
        arg = np.full(n, -1, np.int8)
        for k, (di, dj, cost) in enumerate(moves):
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
        di, dj, _ = moves[int(back[i, j])]
        i, j = i - di, j - dj
        pairs.append((i, j))
    pairs.reverse()
    sim = float(np.mean([s[a, b] for a, b in pairs]))
    return Alignment(tuple(pairs), total, sim)


#: :func:`trim` drops end pairs this far below the run's strong part (its upper quartile)
TRIM_DROP = 0.15


def trim(alignment: Alignment, sims: NDArray[np.float32], drop: float = TRIM_DROP) -> Alignment:
    """The run without the weak pairs at its ends, for reporting *where* it matched.

    A run may carry on a few frames past the end of an excerpt, through unrelated frames that
    its video happens to explain a little better than most; those pairs sit far below the
    run's strong part. Pairs at either end more than ``drop`` below the upper quartile of the
    run's similarities are dropped (never the inside of the run, never all of it). The score
    is kept: it ranks the video; the trimmed pairs say where.
    """
    pairs = list(alignment.pairs)
    if len(pairs) < 3:
        return alignment
    values = np.array([sims[i, j] for i, j in pairs], np.float32)
    floor = float(np.quantile(values, 0.75)) - drop
    lo, hi = 0, len(pairs)
    while hi - lo > 1 and values[lo] < floor:
        lo += 1
    while hi - lo > 1 and values[hi - 1] < floor:
        hi -= 1
    if (lo, hi) == (0, len(pairs)):
        return alignment
    kept = tuple(pairs[lo:hi])
    return Alignment(kept, alignment.score, float(values[lo:hi].mean()))


#: the speeds :func:`fit_line` tries, and how much mean similarity a speed other than real
#: time must gain per unit of difference to be preferred
_SPEEDS = np.round(np.arange(MIN_SPEED, MAX_SPEED + 1e-9, 0.05), 2)
_SPEED_PRIOR = 0.02


def fit_line(
    pairs: tuple[tuple[int, int], ...],
    sims: NDArray[np.float32],
    query_times: NDArray[np.float64],
    video_times: NDArray[np.float64],
) -> tuple[float, float]:
    """The straight line ``music = start + speed * (query - query_times[first])`` along which
    a run's query frames are most similar to the video, as ``(start, speed)``.

    The run's pairs are whole video frames, a sampling interval apart, and where neighbouring
    frames look alike the alignment may pick either; the line is finer. Each speed from
    :data:`MIN_SPEED` to :data:`MAX_SPEED` in steps of 0.05, with its least-squares start and
    small shifts of it, is scored by the mean similarity along the line (interpolated between
    video frames); real time is preferred unless another speed is clearly better.
    """
    if not pairs:
        raise ValueError("a line needs at least one aligned pair")
    rows = np.asarray([i for i, _ in pairs])
    q = np.asarray(query_times, np.float64)[rows]
    m = np.asarray(video_times, np.float64)[[j for _, j in pairs]]
    vt = np.asarray(video_times, np.float64)
    if len(pairs) < 2 or len(vt) < 2 or float(q[-1] - q[0]) <= 0:
        return float(m[0]), 1.0
    s = np.asarray(sims, np.float32)[rows]
    dq = q - q[0]
    best: tuple[float, float, float] | None = None
    for speed in _SPEEDS:
        start0 = float(np.mean(m - speed * dq))
        for shift in (-0.5, -0.25, 0.0, 0.25, 0.5):
            t = np.clip(start0 + shift + speed * dq, vt[0], vt[-1])
            hi = np.clip(np.searchsorted(vt, t), 1, len(vt) - 1)
            lo = hi - 1
            span = vt[hi] - vt[lo]
            w = np.where(span > 0, (t - vt[lo]) / np.where(span > 0, span, 1.0), 0.0)
            k = np.arange(len(rows))
            along = s[k, lo] * (1 - w) + s[k, hi] * w
            value = float(along.mean()) - _SPEED_PRIOR * abs(float(speed) - 1.0)
            if best is None or value > best[0] + 1e-9:
                best = (value, start0 + shift, float(speed))
    assert best is not None
    return best[1], best[2]
