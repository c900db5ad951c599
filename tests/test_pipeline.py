"""Pipeline: indexing (skip/update/fail/remove, batching across videos, overlap), match, mashup.

FakeEmbedder keeps these fast; tests/test_cli_model.py runs the same path with the real model.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from avajams import (
    EmbedderMismatchError,
    LibraryNotFoundError,
    Pipeline,
    PipelineConfig,
    VideoNotFoundError,
)
from avajams.index import VideoIndex
from avajams.photo import make_excerpt, make_photo_video
from avajams.pipeline import FrameSamplerConfig, IndexSummary, find_videos
from avajams.sampling import FrameSampler, SampledFrames
from avajams.testing import FakeEmbedder

PHOTOS = [("chelsea", "coffee"), ("astronaut", "rocket"), ("motorcycle", "hubble"), ("moon",)]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 4 s photo videos (fps 12, 160x120) and a clip re-shot from the second one."""
    root = tmp_path_factory.mktemp("media")
    (root / "mv").mkdir()
    for i, photos in enumerate(PHOTOS):
        make_photo_video(
            root / "mv" / f"mv{i}.mp4",
            photos=photos,
            duration=4.0,
            fps=12,
            size=(160, 120),
            seed=10 + i,
        )
    make_excerpt(
        root / "mv" / "mv1.mp4", root / "clip.mp4", start=1.0, duration=2.5, zoom=1.2, fps=10
    )
    return root


def _copy_videos(media: Path, dest: Path) -> Path:
    shutil.copytree(media / "mv", dest)
    return dest


def _pipe(tmp_path: Path, **config: Any) -> Pipeline:
    cfg = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}, **config})
    return Pipeline(cfg, embedder=FakeEmbedder(dim=48))


class RecordingEmbedder(FakeEmbedder):
    """FakeEmbedder that records each batch and can sleep or fail on a given call."""

    def __init__(self, *, delay: float = 0.0, fail_on: int | None = None) -> None:
        super().__init__(dim=48)
        self.batches: list[int] = []
        self.busy: list[tuple[float, float]] = []  # (start, end) of each simulated inference
        self.delay = delay
        self.fail_on = fail_on

    def embed(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        if self.fail_on is not None and len(self.batches) + 1 == self.fail_on:
            raise RuntimeError("inference blew up")
        self.batches.append(len(images))
        start = time.perf_counter()
        time.sleep(self.delay * len(images))
        self.busy.append((start, time.perf_counter()))
        return super().embed(images)


class SlowSampler:
    """A sampler that takes ``delay`` seconds per frame (like a slow decoder)."""

    def __init__(
        self,
        delay: float,
        *,
        broken: str | None = None,
        before_frame: Callable[[int], object] | None = None,
    ) -> None:
        self.inner = FrameSampler(fps=1.0, size=64)
        self.delay = delay
        self.broken = broken
        self.before_frame = before_frame
        self.busy: list[tuple[float, float]] = []  # (start, end) of each simulated decode

    def sample(self, path: Any) -> SampledFrames:
        return self.inner.sample(path)

    def iter_frames(self, path: Any) -> Iterator[tuple[float, NDArray[np.uint8]]]:
        for n, (t, image) in enumerate(self.inner.iter_frames(path)):
            if self.broken is not None and Path(path).name == self.broken:
                raise KeyError("a bug in the sampler")
            if self.before_frame is not None:
                self.before_frame(n)
            start = time.perf_counter()
            time.sleep(self.delay)
            self.busy.append((start, time.perf_counter()))
            yield t, image


def _decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("avajams-decode")]


def test_find_videos_walks_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for name in ["a/x.mp4", "a/b/y.MOV", "a/b/z.mkv", "a/notes.txt", "a/.h.mp4", "a/.hidden/w.mp4"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "explicit.data").write_bytes(b"")
    found = find_videos([tmp_path / "a", tmp_path / "explicit.data", tmp_path / "a" / "x.mp4"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/b/y.MOV",
        "a/b/z.mkv",
        "a/x.mp4",
        "explicit.data",
    ]
    with pytest.raises(VideoNotFoundError, match="nope"):
        find_videos([tmp_path / "nope"])


def test_index_adds_skips_updates_and_reports_failures(media: Path, tmp_path: Path) -> None:
    videos = _copy_videos(media, tmp_path / "mv")
    (videos / "broken.mp4").write_bytes(b"not a video at all" * 50)
    events: list[tuple[str, int, int | None]] = []
    with _pipe(tmp_path) as pipe:
        summary = pipe.index(videos, progress=lambda *e: events.append(e))
    assert isinstance(summary, IndexSummary)
    assert sorted(Path(p).name for p in summary.added) == [f"mv{i}.mp4" for i in range(4)]
    assert list(summary.failed) == [str(videos.resolve() / "broken.mp4")]
    assert "broken.mp4" in summary.failed[str(videos.resolve() / "broken.mp4")]
    assert not summary.ok
    assert summary.frames == 16  # 4 videos x 4 s at 1 frame/s
    assert {"hash", "decode", "embed", "write", "wait", "total"} <= summary.timings.keys()
    assert ("videos", 5, 5) in events  # 4 added + 1 failed
    assert ("frames", 16, None) in events

    # the library was written: a fresh pipeline sees the four videos with their frames
    with VideoIndex.open(tmp_path / "lib", readonly=True) as lib:
        assert len(lib) == 4
        entry = lib.get(str((videos / "mv2.mp4").resolve()))
        assert entry.num_frames == 4
        assert entry.duration == pytest.approx(4.0, abs=0.1)
        assert entry.times is not None
        assert list(entry.times) == [0.0, 1.0, 2.0, 3.0]

    # unchanged files are skipped; a changed file is updated; a copy (same bytes) is skipped
    make_photo_video(videos / "mv3.mp4", photos=("brick",), duration=3.0, fps=12, size=(160, 120))
    shutil.copy(videos / "mv0.mp4", videos / "copy-of-mv0.mp4")
    (videos / "broken.mp4").unlink()
    with _pipe(tmp_path) as pipe:
        again = pipe.index([videos])
    assert again.added == ()
    assert [Path(p).name for p in again.updated] == ["mv3.mp4"]
    assert sorted(Path(p).name for p in again.skipped) == [
        "copy-of-mv0.mp4",
        "mv0.mp4",
        "mv1.mp4",
        "mv2.mp4",
    ]
    assert again.ok
    assert again.frames == 3
    with VideoIndex.open(tmp_path / "lib", readonly=True) as lib:
        assert len(lib) == 4
        assert lib.get(str((videos / "mv3.mp4").resolve())).num_frames == 3


def test_index_remove_missing(media: Path, tmp_path: Path) -> None:
    videos = _copy_videos(media, tmp_path / "mv")
    with _pipe(tmp_path) as pipe:
        pipe.index([videos])
        (videos / "mv0.mp4").unlink()
        kept = pipe.index([videos])
        assert kept.removed == ()
        assert len(pipe.open_library()) == 4
        summary = pipe.index([videos], remove_missing=True)
        assert summary.removed == (str((videos / "mv0.mp4").resolve()),)
        assert len(pipe.open_library()) == 3


def test_frames_are_batched_across_videos(media: Path, tmp_path: Path) -> None:
    embedder = RecordingEmbedder()
    config = PipelineConfig.model_validate(
        {
            "library": {"directory": str(tmp_path / "lib")},
            "embedder": {"kind": "avajams.testing:FakeEmbedder", "batch_size": 6},
        }
    )
    with Pipeline(config, embedder=embedder) as pipe:
        summary = pipe.index([media / "mv"])
    # 16 frames of 4-frame videos in batches of 6: batches span videos
    assert embedder.batches == [6, 6, 4]
    assert summary.frames == 16


def test_decoding_overlaps_inference(media: Path, tmp_path: Path) -> None:
    """The decoder thread works while inference runs, not in turns.

    Two frames fill the first batch; before decoding the third, the sampler waits for
    inference to start. A design that decodes and embeds in turns never starts inference while
    the decoder waits, so the wait times out; nothing depends on the machine's speed or load.
    """
    delay = 0.04
    inference_started = threading.Event()
    overlapped: list[bool] = []

    def before_frame(n: int) -> None:
        if n == 2 and not overlapped:
            overlapped.append(inference_started.wait(timeout=30))

    class HandshakeEmbedder(RecordingEmbedder):
        def embed(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
            inference_started.set()
            return super().embed(images)

    embedder = HandshakeEmbedder(delay=delay)
    sampler = SlowSampler(delay, before_frame=before_frame)
    config = PipelineConfig.model_validate(
        {
            "library": {"directory": str(tmp_path / "lib")},
            "embedder": {"kind": "avajams.testing:FakeEmbedder", "batch_size": 2},
        }
    )
    with Pipeline(config, embedder=embedder, sampler=sampler) as pipe:
        summary = pipe.index([media / "mv"])
    assert summary.frames == 16
    assert summary.timings["decode"] >= delay * 16 * 0.9
    assert summary.timings["embed"] >= delay * 16 * 0.9
    assert overlapped == [True], "inference did not start while the decoder was working"


def test_worker_bug_is_reraised_and_threads_joined(media: Path, tmp_path: Path) -> None:
    config = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}})
    sampler = SlowSampler(0.0, broken="mv2.mp4")
    with (
        Pipeline(config, embedder=FakeEmbedder(dim=48), sampler=sampler) as pipe,
        pytest.raises(KeyError, match="a bug in the sampler"),
    ):
        pipe.index([media / "mv"])
    assert _decoder_threads() == []


def test_inference_failure_stops_decoders_and_keeps_finished_videos(
    media: Path, tmp_path: Path
) -> None:
    embedder = RecordingEmbedder(fail_on=3)
    config = PipelineConfig.model_validate(
        {
            "library": {"directory": str(tmp_path / "lib")},
            "embedder": {"kind": "avajams.testing:FakeEmbedder", "batch_size": 4},
            "sampler": {"queue_frames": 1},
        }
    )
    with Pipeline(config, embedder=embedder) as pipe, pytest.raises(RuntimeError, match="blew"):
        pipe.index([media / "mv"])
    assert _decoder_threads() == []
    # two batches of 4 = the first two videos, committed before the failure
    with VideoIndex.open(tmp_path / "lib", readonly=True) as lib:
        assert len(lib) == 2


def test_match_finds_the_source_with_aligned_pairs(media: Path, tmp_path: Path) -> None:
    with _pipe(tmp_path) as pipe:
        pipe.index([media / "mv"])
        matches = pipe.match(media / "clip.mp4", k=3)
        assert len(matches) == 3
        assert Path(matches[0].path or "").name == "mv1.mp4"
        assert matches[0].score >= matches[1].score >= matches[2].score
        best = matches[0]
        assert len(best.aligned) == 3  # 2.5 s clip sampled at 1 frame/s
        assert [p.query_time for p in best.aligned] == [0.0, 1.0, 2.0]
        assert all(0.0 <= p.music_time < 4.0 for p in best.aligned)
        assert all(-1.0 <= p.similarity <= 1.0 for p in best.aligned)
        # k beyond the library returns everything; where filters on metadata
        assert len(pipe.match(media / "clip.mp4", k=50)) == 4
        only = pipe.match(media / "clip.mp4", k=5, where={"name": "mv3.mp4"})
        assert [Path(m.path or "").name for m in only] == ["mv3.mp4"]


def test_match_without_library_says_what_to_do(tmp_path: Path, media: Path) -> None:
    with _pipe(tmp_path) as pipe, pytest.raises(LibraryNotFoundError, match="avajams index"):
        pipe.match(media / "clip.mp4")


def test_library_built_with_another_embedder_is_refused(media: Path, tmp_path: Path) -> None:
    with _pipe(tmp_path) as pipe:
        pipe.index([media / "mv" / "mv0.mp4"])
    config = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}})
    with (
        Pipeline(config, embedder=FakeEmbedder(dim=48, seed=7)) as other,
        pytest.raises(EmbedderMismatchError),
    ):
        other.match(media / "clip.mp4")


def test_from_config_file_builds_custom_backends(tmp_path: Path, media: Path) -> None:
    path = tmp_path / "avajams.toml"
    path.write_text(
        '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 24, seed = 2 }\n'
        '[library]\ndirectory = "lib"\n[sampler]\nfps = 2.0\nsize = 64\n',
        encoding="utf-8",
    )
    pipe = Pipeline.from_config(path)
    assert isinstance(pipe.embedder, FakeEmbedder)
    assert pipe.embedder.dim == 24
    assert pipe.library_directory == tmp_path / "lib"
    with pipe:
        summary = pipe.index(media / "mv" / "mv0.mp4")
        assert summary.frames == 8  # 4 s at 2 frames/s
    sampler_config = Pipeline.from_config({"sampler": {"fps": 3}}).config.sampler
    assert isinstance(sampler_config, FrameSamplerConfig)
    assert sampler_config.fps == 3
    # nothing was built before it was needed
    lazy = Pipeline.from_config(path)
    assert lazy._embedder is None
    assert lazy._library is None


def test_mashup_picks_the_best_match(media: Path, tmp_path: Path) -> None:
    import av

    with _pipe(tmp_path, mashup={"max_size": [160, 120], "fps": 12}) as pipe:
        pipe.index([media / "mv"])
        result = pipe.mashup(media / "clip.mp4", tmp_path / "out.mp4")
    assert result.path == tmp_path / "out.mp4"
    assert result.duration == pytest.approx(4.0, abs=0.1)  # as long as the music video (mv1)
    with av.open(str(result.path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert len(container.streams.audio) == 1


def test_two_decoder_threads_give_the_same_library(media: Path, tmp_path: Path) -> None:
    one = _pipe(tmp_path / "one")
    two = _pipe(tmp_path / "two", sampler={"workers": 2, "queue_frames": 3})
    with one, two:
        a = one.index([media / "mv"])
        b = two.index([media / "mv"])
        assert sorted(a.added) == sorted(b.added)
        assert a.frames == b.frames == 16
        for key in one.open_library():
            ea, eb = one.open_library().get(key), two.open_library().get(key)
            assert ea.times is not None
            assert eb.times is not None
            assert list(ea.times) == list(eb.times)
            assert np.allclose(ea.signature, eb.signature, atol=1e-3)  # type: ignore[arg-type]
