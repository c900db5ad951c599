"""VideoIndex.search_tracks: candidate search by track and window signatures, then alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avajams import ConfigError, VectorError, VideoIndex
from avajams.index import QueryTrack

DIM = 48


def _unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)
    return out


@pytest.fixture(params=["exact", "hnsw"])
def library(request: pytest.FixtureRequest, tmp_path: Path) -> VideoIndex:
    rng = np.random.default_rng(11)
    lib = VideoIndex.create(tmp_path / "lib", dim=DIM, embedder_id="t", backend=request.param)
    with lib.transaction():
        for i in range(300):
            frames = _unit(rng.standard_normal((30, DIM)))
            lib.add(f"v{i}", frames.mean(axis=0), frames=frames, metadata={"even": i % 2 == 0})
        lib.add("no-frames", _unit(rng.standard_normal(DIM)))
    return lib


def _excerpt_query(lib: VideoIndex, key: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    source = lib.get(key).frames
    assert source is not None
    host = _unit(rng.standard_normal((50, DIM)))
    return np.concatenate([host[:25], source[10:14], host[25:]])  # 4 s at 25-28 s


def test_a_short_excerpt_in_a_long_query_is_found_through_its_window(
    library: VideoIndex,
) -> None:
    with library:
        query = _excerpt_query(library, "v17", seed=5)
        times = np.arange(len(query), dtype=np.float64)
        # the whole query's signature alone does not even make v17 a candidate
        whole = library.search(query.mean(axis=0), k=20)
        assert "v17" not in [m.key for m in whole]
        best = library.search_tracks([QueryTrack(query, times)], k=3)[0]
        assert best.key == "v17"
        assert best.span is not None
        assert (best.span.query_start, best.span.query_end) == (25.0, 28.0)
        assert (best.span.music_start, best.span.music_end) == (10.0, 13.0)
        assert best.span.speed == pytest.approx(1.0)
        assert best.box is None
        inside = [p for p in best.aligned if 25.0 <= p.query_time <= 28.0]
        assert [p.music_time for p in inside] == [10.0, 11.0, 12.0, 13.0]
        assert len(best.aligned) == len(query)


def test_the_region_track_that_shows_the_video_wins_and_gives_its_box(
    library: VideoIndex,
) -> None:
    rng = np.random.default_rng(6)
    with library:
        source = library.get("v40").frames
        assert source is not None
        whole = _unit(rng.standard_normal((12, DIM)))
        region = _unit(source[5:17] + 0.3 * rng.standard_normal((12, DIM)))
        times = np.arange(12, dtype=np.float64)
        box = (0.5, 0.1, 0.9, 0.5)
        matches = library.search_tracks(
            [QueryTrack(whole, times), QueryTrack(region[::2], times[::2], box)], k=5
        )
        assert matches[0].key == "v40"
        assert matches[0].box == box
        span = matches[0].span
        assert span is not None
        assert span.music_start - span.query_start == pytest.approx(5.0, abs=0.5)
        # the region track has one frame every 2 s: pairs follow real time all the same
        assert span.speed == pytest.approx(1.0, abs=0.1)
        assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


def test_where_filters_and_videos_without_frames_score_zero(library: VideoIndex) -> None:
    with library:
        query = _excerpt_query(library, "v17", seed=7)
        times = np.arange(len(query), dtype=np.float64)
        odd = library.search_tracks([QueryTrack(query, times)], k=4, where={"even": False})
        assert odd[0].key == "v17"
        assert all(int(m.key[1:]) % 2 == 1 for m in odd)
        bare = library.get("no-frames").signature
        assert bare is not None
        hits = library.search_tracks(
            [QueryTrack(np.stack([bare, bare]), np.array([0.0, 1.0]))], k=400
        )
        by_key = {m.key: m for m in hits}
        assert by_key["no-frames"].score == 0.0
        assert by_key["no-frames"].span is None
        assert library.search_tracks([QueryTrack(query, times)], k=0) == []


def test_bad_tracks_are_refused_with_what_to_do(library: VideoIndex) -> None:
    with library:
        frames = np.ones((3, DIM), np.float32)
        times = np.arange(3.0)
        with pytest.raises(ConfigError, match="at least one"):
            library.search_tracks([])
        with pytest.raises(ConfigError, match="QueryTrack"):
            library.search_tracks([frames])  # type: ignore[list-item]
        with pytest.raises(VectorError, match="expected"):
            library.search_tracks([QueryTrack(np.ones((3, DIM + 1), np.float32), times)])
        with pytest.raises(VectorError, match="one time per frame"):
            library.search_tracks([QueryTrack(frames, np.arange(4.0))])
        for box in [(0.5, 0.1, 0.4, 0.5), (0.0, 0.0, 1.2, 1.0), ("a", 0, 1, 1), (0, 1)]:
            with pytest.raises(ConfigError, match="box of track 0"):
                library.search_tracks([QueryTrack(frames, times, box)])  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="k must be"):
            library.search_tracks([QueryTrack(frames, times)], k=-1)
