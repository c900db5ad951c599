"""Choosing cut times on beats or shot changes, clear of other shot changes. Pure.

One greedy pass over the output: from the current cut it scores every candidate for the next
one (beats about N beats on, or music-video shot changes about ``segment_seconds`` on) and
keeps the cheapest. Cost, in beats off the ideal grid (or fractions of the interval):

- distance from the ideal position (every N beats on the grid; or ``segment_seconds``);
- 0.5 when downbeats are known and the candidate is not one;
- 10 for every shot left on screen for less than :data:`MIN_SHOT_SECONDS` next to the cut:
  the end of the segment before it, the start of the one after it (the music video's shots
  in its own time, the user's in the user's video's time).

A candidate within :data:`SNAP_SECONDS` of a music-video shot change is moved onto it; it
stays on its beat only when the move would leave a sliver of a shot (cost 3 for not moving).
Candidates lie within N/2 beats of the ideal one, or up to N beats (cost 2 more) when that is
what keeps a shot from being a sliver. Each segment lasts at least ``MIN_SHOT_SECONDS`` and at
least half the interval; the last one runs to the end (ending early costs 0.5 plus its distance
from the interval).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avajams.mashup.analysis import MomentSimilarity
from avajams.mashup.plan import (
    MIN_SHOT_SECONDS,
    SNAP_SECONDS,
    CutAnalysis,
    CutReason,
    Source,
    UserEnd,
)

#: Beats per cut the automatic choice picks from (musical phrase lengths).
_BEAT_COUNTS = (1, 2, 4, 8, 16, 32)
_SHORT_SHOT_COST = 10.0
_OFF_DOWNBEAT_COST = 0.5
_SNAP_COST = 0.2
_GRID_IN_SHOTS_MODE_COST = 1.0
_UNSNAPPED_COST = 3.0
_FAR_BEAT_COST = 2.0
_END_COST = 0.5


@dataclass(frozen=True)
class Choice:
    """The chosen cuts (seconds, with reasons) and where the user's video resumes after each."""

    reasons: tuple[CutReason, ...]
    first_user_start: float | None
    beats_per_cut: int | None


def beats_per_cut(segment_seconds: float, period: float) -> int:
    """N: the phrase length (1, 2, 4, 8 ... beats) closest to ``segment_seconds`` (in log)."""
    if period <= 0:
        return 1
    ratio = segment_seconds / period
    return min(_BEAT_COUNTS, key=lambda n: abs(math.log(n / ratio)))


def _between(values: Sequence[float], lo: float, hi: float) -> bool:
    """Whether any value lies strictly inside ``(lo, hi)`` (``values`` sorted)."""
    i = bisect.bisect_right(values, lo)
    return i < len(values) and values[i] < hi


class _Chooser:
    def __init__(
        self,
        *,
        mode: str,
        total: float,
        fps: float,
        target: float,
        start_with: Source,
        user_duration: float,
        user_end: UserEnd,
        analysis: CutAnalysis,
        match_moments: bool,
        n_beats: int | None,
    ) -> None:
        self.mode = mode
        self.total = total
        self.fps = fps
        self.target = target
        self.start_with = start_with
        self.user_duration = user_duration
        self.user_end = user_end
        self.user_frames = max(1, math.floor(user_duration * fps + 1e-6))
        self.music_shots = sorted(analysis.music_shots)
        self.user_shots = sorted(analysis.user_shots)
        self.similarity = analysis.similarity if match_moments else None
        self.eps = 0.5 / fps  # a shot change on the cut's own frame leaves no fragment
        self.min_len = max(MIN_SHOT_SECONDS, 0.5 * target)
        self.max_len = max(2.0 * target, self.min_len + 1.0 / fps)
        beats = analysis.beats
        self.beats: list[float] = list(beats.times) if beats is not None else []
        self.downbeats = set(beats.downbeats) if beats is not None else set()
        self.n = n_beats or 1

    # -- where the user's video is ----------------------------------------------------------

    def _user_position(self, start: float, t: float, c: float) -> float | None:
        """Where the user's video is after being on screen from output ``t`` to ``c``.

        Counted in whole frames, as the plan will show it (rounding each cut to a frame), so a
        shot change is measured against the frame the user's video really stops on. None when
        it has ended and is held or handed over to the music video.
        """
        fps = self.fps
        end = round(start * fps) + round(c * fps) - round(t * fps)
        if end <= self.user_frames:
            return end / fps
        if self.user_end == "loop":
            return (end % self.user_frames) / fps
        return None

    # -- candidates --------------------------------------------------------------------------

    def _snap(self, t: float) -> float | None:
        i = bisect.bisect_left(self.music_shots, t)
        near = [s for s in self.music_shots[max(0, i - 1) : i + 1] if abs(s - t) <= SNAP_SECONDS]
        return min(near, key=lambda s: abs(s - t)) if near else None

    def _short_shots(self, t: float, c: float, source: Source, user_from: float) -> int:
        """Shots shown for less than MIN_SHOT_SECONDS next to a cut at ``c``."""
        m, e = MIN_SHOT_SECONDS, self.eps
        count = 0
        if source == "music":
            count += _between(self.music_shots, max(t, c - m) + e, c - e)
            # the user's video comes back where it stopped (checked when it stopped) or at
            # a matched moment chosen clear of its shot changes
            return count
        u = self._user_position(user_from, t, c)
        if u is not None:
            count += _between(self.user_shots, max(u - m, user_from) + e, u - e)
            if self.similarity is None:  # it resumes here at its next turn
                count += _between(self.user_shots, u + e, u + m - e)
        return count + _between(self.music_shots, c + e, c + m - e)

    def _candidates(self, t: float, k_ideal: int) -> list[tuple[float, str, int | None, float]]:
        """``(time, why, beat index, base cost)`` for the cut after ``t``."""
        lo, hi = t + self.min_len, min(t + self.max_len, self.total - self.min_len)
        found: list[tuple[float, str, int | None, float]] = []
        if self.mode == "beats":
            width = max(1, self.n // 2)
            for k in range(max(0, k_ideal - self.n), min(len(self.beats), k_ideal + self.n + 1)):
                b = self.beats[k]
                if lo - 1e-9 <= b <= hi + 1e-9:
                    down = b in self.downbeats
                    cost = abs(k - k_ideal) + (
                        _OFF_DOWNBEAT_COST if self.downbeats and not down else 0.0
                    )
                    if abs(k - k_ideal) > width:  # only to keep a shot from being a sliver
                        cost += _FAR_BEAT_COST
                    found.append((b, "downbeat" if down else "beat", k, cost))
        else:  # shots
            for s in self.music_shots[bisect.bisect_left(self.music_shots, lo) :]:
                if s > hi + 1e-9:
                    break
                found.append((s, "shot", None, abs(s - t - self.target) / self.target))
        step = max(self.target, self.min_len)
        if not found and t + step <= self.total - self.min_len:
            # no beat (the music stopped) or no shot change in reach: keep the interval
            cost = _GRID_IN_SHOTS_MODE_COST if self.mode == "shots" else float(self.n)
            found.append((t + step, "grid", None, cost))
        return found

    def _period(self) -> float:
        return self.target / self.n if self.n else self.target

    # -- matched moments ---------------------------------------------------------------------

    def _moment(self, c: float) -> tuple[float, float]:
        assert self.similarity is not None
        return best_moment(
            self.similarity, c, self.target, self.user_duration, self.user_shots, self.eps
        )

    # -- the pass ----------------------------------------------------------------------------

    def choose(self) -> Choice:
        reasons: list[CutReason] = []
        t = 0.0
        source = self.start_with
        user_from = 0.0  # where the user's video is (or will resume)
        first_user_start: float | None = None
        if self.similarity is not None and source == "user":
            first_user_start, _ = self._moment(0.0)
            user_from = first_user_start
        # the beat grid: every N beats from the first beat (or the first downbeat)
        anchor = 0
        if self.downbeats:
            anchor = next(i for i, b in enumerate(self.beats) if b in self.downbeats)
        k_ideal = anchor
        while k_ideal < len(self.beats) and self.beats[k_ideal] < self.min_len - 1e-9:
            k_ideal += self.n
        while True:
            best: tuple[float, float, str, int | None, float | None] | None = None
            options: list[tuple[float, float, str, int | None, float | None]] = []
            for time, why, beat, cost in self._candidates(t, k_ideal):
                shot = self._snap(time) if why != "shot" else time
                if why != "shot" and shot is not None:
                    if t + self.min_len <= shot <= self.total - self.min_len:
                        snap_cost = _SNAP_COST * abs(shot - time) / SNAP_SECONDS
                        options.append((cost + snap_cost, shot, f"{why}+shot", beat, shot))
                        # staying on the beat only wins when the shot change would leave a
                        # sliver of a shot next to the cut
                        cost += _UNSNAPPED_COST
                    shot = None
                options.append((cost, time, why, beat, shot))
            if self.total - t <= self.max_len:  # the rest can be the last segment (on a tie)
                rest = self.total - t
                length = self.n * self._period() if self.mode == "beats" else self.target
                ending = abs(rest - length) / (self._period() if self.mode == "beats" else length)
                options.insert(0, (ending + _END_COST, self.total, "end", None, None))
            slivers = 0
            for cost, c, why, beat, shot in options:
                short = 0 if why == "end" else self._short_shots(t, c, source, user_from)
                cost += _SHORT_SHOT_COST * short
                if best is None or cost < best[0] - 1e-9:
                    best, slivers = (cost, c, why, beat, shot), short
            if best is None or best[2] == "end":
                break
            _, c, why, beat, shot = best
            clear = slivers == 0
            user_start: float | None = None
            similarity: float | None = None
            if source == "user":
                position = self._user_position(user_from, t, c)
                user_from = position if position is not None else self.user_duration
            elif self.similarity is not None:
                user_start, similarity = self._moment(c)
                user_from = user_start
            reasons.append(
                CutReason(
                    frame=round(c * self.fps),
                    time=c,
                    why=why,
                    beat=beat,
                    shot=shot,
                    clear=clear,
                    user_start=user_start,
                    similarity=similarity,
                )
            )
            if beat is not None:
                while k_ideal <= beat:
                    k_ideal += self.n
            elif self.mode == "beats":  # a grid cut: go on from the beat grid after it
                while k_ideal < len(self.beats) and self.beats[k_ideal] < c + self.min_len:
                    k_ideal += self.n
            t = c
            source = "music" if source == "user" else "user"
        return Choice(tuple(reasons), first_user_start, self.n if self.mode == "beats" else None)


def best_moment(
    similarity: MomentSimilarity,
    t: float,
    length: float,
    user_duration: float,
    user_shots: Sequence[float],
    eps: float = 1e-6,
) -> tuple[float, float]:
    """The user moment most like the music video's picture at output time ``t``.

    Prefers moments from which ``length`` seconds fit before the user's video ends and that
    are not followed by a user shot change within MIN_SHOT_SECONDS; returns ``(moment,
    similarity)``.
    """
    column = similarity.matrix[:, similarity.music_column(t)]
    times = similarity.user_times
    shots = sorted(user_shots)
    fits = times + length <= user_duration + 1e-9
    clear = np.array([not _between(shots, m + eps, m + MIN_SHOT_SECONDS) for m in times])
    for allowed in (fits & clear, clear, fits):
        if allowed.any():
            i = int(np.argmax(np.where(allowed, column, -np.inf)))
            return float(times[i]), float(column[i])
    i = int(np.argmax(column))
    return float(times[i]), float(column[i])


def choose_cuts(
    *,
    mode: str,
    total: float,
    fps: float,
    target: float,
    start_with: Source,
    user_duration: float,
    user_end: UserEnd,
    analysis: CutAnalysis,
    match_moments: bool,
    n_beats: int | None,
) -> Choice:
    """The cuts of a beats- or shots-mode plan of ``total`` output seconds; see the module."""
    return _Chooser(
        mode=mode,
        total=total,
        fps=fps,
        target=target,
        start_with=start_with,
        user_duration=user_duration,
        user_end=user_end,
        analysis=analysis,
        match_moments=match_moments,
        n_beats=n_beats,
    ).choose()
