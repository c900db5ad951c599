"""One contract for every vector backend of VideoIndex (exact numpy and hnswlib)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pytest
from numpy.typing import NDArray

import avajams
from avajams.errors import (
    ConfigError,
    EmbedderMismatchError,
    LibraryError,
    LibraryNotFoundError,
    VectorError,
    VideoNotFoundError,
)
from avajams.index import HnswBackend, VideoIndex, content_hash, default_library_dir

DIM = 16

Backend = Literal["exact", "hnsw"]
pytestmark = pytest.mark.parametrize("backend", ["exact", "hnsw"])


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> NDArray[np.float32]:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return cast(NDArray[np.float32], v / np.linalg.norm(v, axis=1, keepdims=True))


def make(tmp_path: Path, backend: Backend, **kw: Any) -> VideoIndex:
    return VideoIndex.create(
        tmp_path / "lib", dim=DIM, embedder_id="fake-16", backend=backend, **kw
    )


def exact_top(vectors: dict[str, NDArray[np.float32]], q: NDArray[np.float32], k: int) -> list[str]:
    keys = sorted(vectors, key=lambda key: -float(vectors[key] @ q))
    return keys[:k]


def test_add_search_len_contains(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(1)
    vecs = unit(rng, 40)
    with make(tmp_path, backend) as lib:
        assert lib.backend == backend
        assert len(lib) == 0
        assert lib.search(vecs[0], k=3) == []
        for i, v in enumerate(vecs):
            lib.add(f"v{i}", v, metadata={"i": i})
        assert len(lib) == 40
        assert "v7" in lib
        assert "nope" not in lib
        assert 7 not in lib
        res = lib.search(vecs[7], k=5)
        assert res[0].key == "v7"
        assert res[0].score == pytest.approx(1.0, abs=1e-5)
        assert res[0].metadata == {"i": 7}
        assert [m.score for m in res] == sorted((m.score for m in res), reverse=True)
        model = {f"v{i}": v for i, v in enumerate(vecs)}
        assert [m.key for m in res] == exact_top(model, vecs[7], 5)
        for m in res:
            assert m.score == m.signature_score
            assert m.score == pytest.approx(float(model[m.key] @ vecs[7]), abs=1e-5)
            assert m.aligned == ()


def test_k_larger_than_library_returns_everything(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(2)
    with make(tmp_path, backend) as lib:
        for i, v in enumerate(unit(rng, 7)):
            lib.add(f"v{i}", v)
        assert {m.key for m in lib.search(unit(rng, 1)[0], k=100)} == {f"v{i}" for i in range(7)}
        assert lib.search(unit(rng, 1)[0], k=0) == []
        with pytest.raises(ConfigError):
            lib.search(unit(rng, 1)[0], k=-1)


def test_upsert_replaces_vector_and_metadata(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(3)
    a, b, c = unit(rng, 3)
    with make(tmp_path, backend) as lib:
        lib.add("x", a, metadata={"v": 1}, path="/videos/x.mp4", content_hash="h1")
        lib.add("y", c)
        lib.add("x", b, metadata={"v": 2}, path="/videos/x.mp4", content_hash="h2")
        assert len(lib) == 2
        top = lib.search(b, k=1)[0]
        assert (top.key, top.metadata) == ("x", {"v": 2})
        assert top.score == pytest.approx(1.0, abs=1e-5)
        # the old vector is gone: searching for it finds x only through the new vector
        assert all(m.score < 0.999 for m in lib.search(a, k=2) if m.key == "x")
        assert lib.find_by_hash("h1") is None
        assert lib.find_by_hash("h2") == "x"
        assert lib.find_by_path("/videos/x.mp4") == "x"


def test_remove(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(4)
    vecs = unit(rng, 10)
    with make(tmp_path, backend) as lib:
        for i, v in enumerate(vecs):
            lib.add(f"v{i}", v)
        assert lib.remove("v3") is True
        assert lib.remove("v3") is False
        assert "v3" not in lib
        assert len(lib) == 9
        assert "v3" not in {m.key for m in lib.search(vecs[3], k=10)}
        with pytest.raises(KeyError):
            lib.get("v3")


def test_where_returns_k_when_k_match(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(5)
    vecs = unit(rng, 300)
    with make(tmp_path, backend) as lib, lib.transaction():
        for i, v in enumerate(vecs):
            lib.add(f"v{i}", v, metadata={"genre": "rare" if i % 50 == 0 else "pop", "i": i})
    with VideoIndex.open(tmp_path / "lib") as lib:
        rare = lib.search(vecs[1], k=4, where={"genre": "rare"})
        assert len(rare) == 4
        assert all(m.metadata["genre"] == "rare" for m in rare)
        # all six rare ones when asked for more than exist
        assert {m.key for m in lib.search(vecs[1], k=10, where={"genre": "rare"})} == {
            f"v{i}" for i in range(0, 300, 50)
        }
        pop = lib.search(vecs[0], k=25, where={"genre": "pop"})
        assert len(pop) == 25
        assert all(m.metadata["genre"] == "pop" for m in pop)
        model = {f"v{i}": v for i, v in enumerate(vecs) if i % 50}
        assert [m.key for m in pop][:5] == exact_top(model, vecs[0], 5)
        odd = lib.search(vecs[0], k=5, where=lambda md: md["i"] % 2 == 1)
        assert len(odd) == 5
        assert all(m.metadata["i"] % 2 == 1 for m in odd)
        assert lib.search(vecs[0], k=5, where={"genre": "jazz"}) == []
        assert lib.search(vecs[0], k=5, where={"missing": None}) == []
        with pytest.raises(ConfigError):
            lib.search(vecs[0], where=["genre"])  # type: ignore[arg-type]


def test_persistence_and_entry_roundtrip(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(6)
    sig = unit(rng, 1)[0]
    frames = unit(rng, 5)
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    with make(tmp_path, backend, sampler_settings={"fps": 2.0}) as lib:
        lib.add(
            "song",
            sig * 3.0,  # normalised on the way in
            frames=frames,
            times=times,
            path="/m/song.mp4",
            duration=2.5,
            content_hash="abc",
            metadata={"artist": "A", "tags": ["x", "y"]},
        )
        lib.add("bare", unit(rng, 1)[0])
    with VideoIndex.open(tmp_path / "lib", embedder_id="fake-16", readonly=True) as lib:
        assert lib.dim == DIM
        assert lib.embedder_id == "fake-16"
        assert lib.sampler_settings == {"fps": 2.0}
        assert lib.keys() == ["bare", "song"]
        e = lib.get("song")
        assert (e.key, e.path, e.duration, e.content_hash, e.num_frames) == (
            "song",
            "/m/song.mp4",
            2.5,
            "abc",
            5,
        )
        assert e.metadata == {"artist": "A", "tags": ["x", "y"]}
        assert e.signature is not None
        np.testing.assert_allclose(e.signature, sig, atol=1e-6)
        assert e.frames is not None
        assert e.times is not None
        np.testing.assert_allclose(e.frames, frames, atol=1e-3)  # float16 storage
        np.testing.assert_array_equal(e.times, times)
        assert e.added_at.tzinfo is not None
        bare = lib.get("bare")
        assert (bare.num_frames, bare.frames, bare.times) == (0, None, None)
        light = lib.get("song", vectors=False)
        assert light.signature is None
        assert light.frames is None
        assert [x.key for x in lib.entries()] == ["bare", "song"]
        assert lib.search(sig, k=1)[0].key == "song"
        with pytest.raises(LibraryError, match="read-only"):
            lib.add("z", sig)


def test_capacity_grows_and_removed_slots_are_reused(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(7)
    vecs = unit(rng, 3000)
    with make(tmp_path, backend) as lib:
        with lib.transaction():
            for i in range(2000):  # beyond hnswlib's initial capacity of 1024
                lib.add(f"v{i}", vecs[i])
        assert len(lib) == 2000
        for i in (0, 999, 1999):
            assert lib.search(vecs[i], k=1)[0].key == f"v{i}"
        hnsw = lib._backend if isinstance(lib._backend, HnswBackend) else None
        cap = hnsw.capacity if hnsw else 0
        with lib.transaction():
            for i in range(500):
                lib.remove(f"v{i}")
        with lib.transaction():
            for i in range(2000, 2500):
                lib.add(f"v{i}", vecs[i])
        if hnsw:
            assert hnsw.capacity == cap  # the 500 freed slots were reused
        assert len(lib) == 2000
        for i in (1000, 2100, 2499):
            assert lib.search(vecs[i], k=1)[0].key == f"v{i}"


def test_transaction_is_atomic(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(8)
    vecs = unit(rng, 4)
    with make(tmp_path, backend) as lib:
        lib.add("keep", vecs[0])

        def failing_batch() -> None:
            with lib.transaction():
                lib.add("a", vecs[1])
                lib.remove("keep")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            failing_batch()
        assert lib.keys() == ["keep"]
        assert [m.key for m in lib.search(vecs[1], k=5)] == ["keep"]
        lib.add("b", vecs[2])  # the rolled-back label is safely reused
        assert {m.key for m in lib.search(vecs[2], k=5)} == {"keep", "b"}
        lib.check()
    with VideoIndex.open(tmp_path / "lib") as lib:
        assert lib.keys() == ["b", "keep"]
        lib.check()


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(DIM - 1),
        np.zeros((2, DIM)),
        np.full(DIM, np.nan),
        np.r_[np.ones(DIM - 1), np.inf],
        np.zeros(DIM),
        np.array(["a"] * DIM),
        np.r_[np.ones(DIM - 1), 1e300],  # finite in float64; normalised before float32
    ],
    ids=["short", "matrix", "nan", "inf", "zero", "text", "huge"],
)
def test_bad_vectors_are_refused(tmp_path: Path, backend: Backend, bad: np.ndarray) -> None:
    rng = np.random.default_rng(9)
    with make(tmp_path, backend) as lib:
        lib.add("ok", unit(rng, 1)[0])
        if bad.dtype.kind == "f" and np.isfinite(bad).all() and np.abs(bad).max() > 1e200:
            lib.add("huge", bad)  # legitimate direction: accepted
            assert lib.search(bad, k=1)[0].key == "huge"
            return
        with pytest.raises(VectorError):
            lib.add("x", bad)
        with pytest.raises(VectorError):
            lib.search(bad)
        frames = np.vstack([unit(rng, 2), bad.reshape(1, -1)]) if bad.shape == (DIM,) else bad
        if bad.dtype.kind == "f":
            with pytest.raises(VectorError):
                lib.add("x", unit(rng, 1)[0], frames=frames)
            with pytest.raises(VectorError):
                lib.search(unit(rng, 1)[0], query_frames=frames)
        assert lib.keys() == ["ok"]
        lib.check()


def test_other_validation(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(10)
    v = unit(rng, 1)[0]
    with make(tmp_path, backend) as lib:
        with pytest.raises(VectorError, match="one time per frame"):
            lib.add("x", v, frames=unit(rng, 3), times=[0.0, 1.0])
        with pytest.raises(VectorError):
            lib.add("x", v, frames=unit(rng, 2), times=[0.0, np.nan])
        with pytest.raises(VectorError):
            lib.add("x", v, times=[0.0])
        with pytest.raises(ConfigError, match="JSON"):
            lib.add("x", v, metadata={"f": object()})
        with pytest.raises(ConfigError, match="JSON"):
            lib.add("x", v, metadata={"f": float("nan")})
        with pytest.raises(ConfigError):
            lib.add("", v)
        with pytest.raises(ConfigError):
            lib.add("x", v, duration=-1.0)
        assert len(lib) == 0


def test_embedder_mismatch_names_both_ids_and_the_fix(tmp_path: Path, backend: Backend) -> None:
    rng = np.random.default_rng(11)
    v = unit(rng, 1)[0]
    with make(tmp_path, backend) as lib:
        lib.add("a", v)
        with pytest.raises(EmbedderMismatchError) as info:
            lib.search(v, embedder_id="other-9")
        with pytest.raises(EmbedderMismatchError):
            lib.add("b", v, embedder_id="other-9")
        assert lib.search(v, embedder_id="fake-16")[0].key == "a"
    for readonly in (True, False):
        with pytest.raises(EmbedderMismatchError) as info:
            VideoIndex.open(tmp_path / "lib", embedder_id="other-9", readonly=readonly)
        msg = str(info.value)
        assert "fake-16" in msg
        assert "other-9" in msg
        assert "rebuild" in msg
        assert isinstance(info.value, avajams.LibraryError)
    # the failed writer open released the lock
    VideoIndex.open(tmp_path / "lib", embedder_id="fake-16").close()


def test_open_missing_and_create_twice(tmp_path: Path, backend: Backend) -> None:
    with pytest.raises(LibraryNotFoundError, match="create"):
        VideoIndex.open(tmp_path / "nothing")
    make(tmp_path, backend).close()
    with pytest.raises(LibraryError, match="already holds a library"):
        make(tmp_path, backend)
    lib = VideoIndex.open(tmp_path / "lib")
    lib.close()
    lib.close()  # idempotent
    assert lib.closed
    with pytest.raises(LibraryError, match="closed"):
        len(lib)


def test_open_or_create_and_default_dir(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path / "home"))
    assert default_library_dir() == tmp_path / "home" / "library"
    with VideoIndex.open_or_create(dim=DIM, embedder_id="e", backend=backend) as lib:
        assert lib.directory == tmp_path / "home" / "library"
        lib.add("a", np.ones(DIM))
    with VideoIndex.open_or_create(dim=DIM, embedder_id="e") as lib:
        assert lib.keys() == ["a"]
    with pytest.raises(EmbedderMismatchError):
        VideoIndex.open_or_create(dim=DIM, embedder_id="f")
    with pytest.raises(VectorError):
        VideoIndex.open_or_create(dim=DIM + 1, embedder_id="e")


def test_content_hash(tmp_path: Path, backend: Backend) -> None:
    a = tmp_path / "a.bin"
    b = tmp_path / "b.bin"
    a.write_bytes(b"x" * 3_000_000)
    b.write_bytes(b"x" * 3_000_000)
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 64
    b.write_bytes(b"x" * 2_999_999 + b"y")
    assert content_hash(a) != content_hash(b)
    with pytest.raises(VideoNotFoundError):
        content_hash(tmp_path / "missing.mp4")


def test_rerank_finds_excerpt_that_the_signature_misses(tmp_path: Path, backend: Backend) -> None:
    """A 6-frame excerpt of a 60-frame video: the long video's mean signature is diluted by
    54 other scenes, so a decoy ranks first by signature — frame re-ranking recovers it."""
    rng = np.random.default_rng(12)
    scenes = unit(rng, 60)
    long_frames = scenes + 0.05 * unit(rng, 60)
    excerpt = scenes[20:26] + 0.05 * unit(rng, 6)
    query_sig = excerpt.mean(axis=0)
    query_sig /= np.linalg.norm(query_sig)
    with make(tmp_path, backend) as lib:
        lib.add("long", long_frames.mean(axis=0), frames=long_frames, times=np.arange(60) * 2.0)
        # decoys: unrelated frames whose mean leans towards the query's mean
        for d in range(10):
            decoy = unit(rng, 8) + 0.6 * query_sig
            lib.add(f"decoy{d}", decoy.mean(axis=0), frames=decoy, times=np.arange(8) * 1.0)
        by_signature = lib.search(query_sig, k=3)
        assert by_signature[0].key.startswith("decoy")
        assert "long" not in [m.key for m in by_signature[:1]]
        sig_rank = [m.key for m in lib.search(query_sig, k=11)].index("long")
        assert sig_rank >= 1

        res = lib.search(query_sig, k=3, query_frames=excerpt, query_times=np.arange(6) * 0.5)
        top = res[0]
        assert top.key == "long"
        assert top.score > 0.95
        assert len(top.aligned) == 6
        # each query frame aligned to the scene it was cut from, at that scene's time
        assert [p.music_time for p in top.aligned] == [2.0 * s for s in range(20, 26)]
        assert [p.query_time for p in top.aligned] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
        assert all(p.similarity > 0.9 for p in top.aligned)
        assert [m.score for m in res] == sorted((m.score for m in res), reverse=True)

        # the symmetric variant penalises the 54 unmatched scenes of the long video
        sym = lib.search(query_sig, k=3, query_frames=excerpt, rerank="symmetric")
        long_sym = next(m for m in sym + lib.search(query_sig, k=11) if m.key == "long")
        assert long_sym.score < top.score


def test_logging_quiet_on_normal_use(
    tmp_path: Path, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(13)
    with caplog.at_level(logging.WARNING, logger="avajams"):
        with make(tmp_path, backend) as lib:
            lib.add("a", unit(rng, 1)[0])
        with VideoIndex.open(tmp_path / "lib") as lib:
            lib.add("b", unit(rng, 1)[0])
        with VideoIndex.open(tmp_path / "lib", readonly=True) as lib:
            assert len(lib) == 2
    assert [r for r in caplog.records if r.name.startswith("avajams")] == []


def test_where_through_the_graph_filter(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the hnswlib filter-callback path (normally taken above 2,048 eligible videos)."""
    monkeypatch.setattr(HnswBackend, "EXACT_FILTER_LIMIT", 0)
    rng = np.random.default_rng(14)
    vecs = unit(rng, 400)
    with make(tmp_path, backend) as lib:
        with lib.transaction():
            for i, v in enumerate(vecs):
                lib.add(f"v{i}", v, metadata={"third": i % 3 == 0})
        for i in range(0, 400, 40):  # removed videos never come back through the filter
            lib.remove(f"v{i}")
        model = {f"v{i}": v for i, v in enumerate(vecs) if i % 3 == 0 and i % 40}
        for q in unit(rng, 10):
            res = lib.search(q, k=10, where={"third": True})
            assert len(res) == 10
            assert all(m.metadata == {"third": True} for m in res)
            assert [m.key for m in res] == exact_top(model, q, 10)


def test_dropped_handle_releases_the_lock(tmp_path: Path, backend: Backend) -> None:
    import gc

    lib = make(tmp_path, backend)
    lib.add("a", np.ones(DIM))
    del lib
    gc.collect()
    with VideoIndex.open(tmp_path / "lib") as again:  # not LibraryLockedError
        assert again.keys() == ["a"]
