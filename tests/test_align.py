"""The temporal alignment: best diagonal run of high similarities, tolerant to speed changes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from avajams.index._align import align, fit_line, frame_baseline, steps, trim
from avajams.index._rerank import align_tracks


def _noise(m: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.3, 0.6, (m, n)).astype(np.float32)


def test_a_planted_run_is_found_exactly() -> None:
    s = _noise(20, 50)
    for k in range(5):
        s[8 + k, 30 + k] = 0.95
    a = align(s, 0.6)
    assert a.pairs == tuple((8 + k, 30 + k) for k in range(5))
    assert a.similarity == pytest.approx(0.95)
    assert a.score == pytest.approx(5 * (0.95 - 0.6 - 0.03), abs=1e-5)


@pytest.mark.parametrize("speed", [0.8, 1.25, 1.5, 2.0])
def test_a_run_at_another_speed_is_followed(speed: float) -> None:
    s = _noise(30, 80, seed=1)
    truth = {i: 10 + round(speed * (i - 5)) for i in range(5, 20)}
    for i, j in truth.items():
        s[i, j] = 0.9
    a = align(s, 0.6)
    assert len(a.pairs) >= 12
    for i, j in a.pairs:
        assert abs(j - truth[i]) <= 1, (i, j)


@pytest.mark.parametrize("ratio", [2.0, 3.0])
def test_a_track_sampled_sparsely_keeps_real_time(ratio: float) -> None:
    # query frames every `ratio` seconds, video frames every second: real time is a slope
    s = _noise(10, 60, seed=4)
    for i in range(2, 9):
        s[i, 5 + round(ratio * (i - 2))] = 0.9
    a = align(s, 0.6, ratio=ratio)
    assert a.pairs == tuple((i, 5 + round(ratio * (i - 2))) for i in range(2, 9))
    assert a.score == pytest.approx(7 * (0.9 - 0.6 - 0.03), abs=1e-5)  # no step cost paid
    with pytest.raises(ValueError, match="ratio"):
        align(s, 0.6, ratio=0.0)


def test_a_short_strong_run_beats_a_long_weak_drift() -> None:
    s = _noise(40, 60, seed=2)
    for k in range(30):  # long, barely above the baseline
        s[k, k] = 0.62
    for k in range(4):  # short, clearly above it
        s[32 + k, 50 + k] = 0.97
    a = align(s, 0.6, margin=0.03)
    assert a.pairs[0] == (32, 50)
    assert a.length == 4


def test_trimming_drops_the_weak_tail_of_a_run_but_keeps_its_score() -> None:
    s = (_noise(20, 40, seed=5) * 0.8).astype(np.float32)
    for k in range(5):
        s[5 + k, 10 + k] = 0.95  # the excerpt
    for k in range(5, 9):
        s[5 + k, 10 + k] = 0.62  # unrelated frames the video explains a little
    a = align(s, 0.5)
    assert a.length == 9
    t = trim(a, s)
    assert t.pairs == tuple((5 + k, 10 + k) for k in range(5))
    assert t.score == a.score
    assert t.similarity == pytest.approx(0.95)
    # an even run is left alone
    even = np.full((6, 6), 0.2, np.float32)
    np.fill_diagonal(even, 0.8)
    b = align(even, 0.5)
    assert trim(b, even) == b


@pytest.mark.parametrize(("start", "speed"), [(4.3, 1.0), (2.6, 1.25), (10.2, 0.8), (1.0, 1.5)])
def test_the_line_through_a_run_is_finer_than_the_frames(start: float, speed: float) -> None:
    qt = np.arange(10, dtype=np.float64)
    vt = np.arange(40, dtype=np.float64)
    truth = start + speed * qt
    s = np.exp(-((vt[None, :] - truth[:, None]) ** 2) / 0.8).astype(np.float32)
    pairs = tuple((i, int(np.argmax(s[i]))) for i in range(10))  # whole frames: +-0.5 s
    got_start, got_speed = fit_line(pairs, s, qt, vt)
    assert got_speed == pytest.approx(speed, abs=0.051)
    assert got_start == pytest.approx(start, abs=0.3)
    with pytest.raises(ValueError, match="at least one"):
        fit_line((), s, qt, vt)


def test_where_frames_look_alike_the_line_keeps_real_time() -> None:
    s = np.full((6, 20), 0.8, np.float32)
    pairs = ((0, 3), (1, 5), (2, 6), (3, 9), (4, 10), (5, 13))  # wandering: all frames equal
    _, speed = fit_line(pairs, s, np.arange(6.0), np.arange(20.0))
    assert speed == 1.0


def test_nothing_above_the_baseline_is_no_run() -> None:
    a = align(_noise(10, 10), 0.9)
    assert a.pairs == ()
    assert a.score == 0.0
    assert align(np.zeros((0, 5), np.float32), 0.5).pairs == ()


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="2-d"):
        align(np.zeros(5, np.float32), 0.5)
    with pytest.raises(ValueError, match="videos"):
        frame_baseline(np.zeros((0, 3), np.float32))


def test_the_baseline_is_what_an_unrelated_video_reaches() -> None:
    # ten candidates: the 80th percentile, so the best two stand above it
    best = np.linspace(0.4, 0.9, 10, dtype=np.float32)[:, None]
    assert float(frame_baseline(best)[0]) == pytest.approx(0.4 + 0.8 * 0.5, abs=1e-6)
    # a second copy of the matching video does not raise the bar above either copy
    twins = np.array([0.95, 0.95, 0.6, 0.55, 0.5, 0.5, 0.45, 0.45, 0.4, 0.4], np.float32)
    assert float(frame_baseline(twins[:, None])[0]) < 0.95 - 0.2
    # up to three candidates: the weakest is the baseline, so the strongest stands out
    few = np.array([[0.9, 0.5], [0.5, 0.55], [0.4, 0.6]], np.float32)
    np.testing.assert_allclose(frame_baseline(few), [0.4, 0.5])
    np.testing.assert_allclose(frame_baseline(few[:2]), [0.5, 0.5])
    assert frame_baseline(few[:1]).shape == (2,)


def test_tracks_pick_the_region_that_shows_the_video() -> None:
    rng = np.random.default_rng(3)
    videos = [rng.normal(size=(12, 16)).astype(np.float32) for _ in range(4)]
    videos = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in videos]
    whole = rng.normal(size=(8, 16)).astype(np.float32)
    whole /= np.linalg.norm(whole, axis=1, keepdims=True)
    region = videos[2][3:11] + 0.1 * rng.normal(size=(8, 16)).astype(np.float32)
    region /= np.linalg.norm(region, axis=1, keepdims=True)
    results = align_tracks([whole, region], videos)
    best = max(range(4), key=lambda v: results[v].alignment.score)
    assert best == 2
    assert results[2].track == 1
    assert results[2].alignment.pairs == tuple((k, 3 + k) for k in range(8))


matrices = st.integers(1, 12).flatmap(
    lambda m: st.integers(1, 12).flatmap(
        lambda n: arrays(np.float32, (m, n), elements=st.floats(-1, 1, width=32))
    )
)


@settings(max_examples=150, deadline=None)
@given(s=matrices, base=st.floats(-1, 1, width=32))
def test_any_run_is_ordered_made_of_allowed_steps_and_scores_what_it_earns(
    s: np.ndarray, base: float
) -> None:
    a = align(s, base)
    gains = s - np.float32(base) - np.float32(0.03)
    if not a.pairs:
        assert a.score == 0.0
        # no single pair earns anything (a one-pair run would otherwise be better)
        assert float(gains.max()) <= 1e-6
        return
    allowed = {(di, dj): cost for di, dj, cost in steps(1.0)}
    earned = sum(float(gains[i, j]) for i, j in a.pairs)
    paid = 0.0
    for (i0, j0), (i1, j1) in zip(a.pairs, a.pairs[1:], strict=False):
        assert (i1 - i0, j1 - j0) in allowed
        paid += allowed[(i1 - i0, j1 - j0)]
    assert a.score == pytest.approx(earned - paid, abs=1e-4)
    # the best run is at least as good as the best single pair
    assert a.score >= float(gains.max()) - 1e-5
    assert a.similarity == pytest.approx(np.mean([s[i, j] for i, j in a.pairs]), abs=1e-5)
