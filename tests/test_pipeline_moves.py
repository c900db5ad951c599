"""Pipeline.index follows a video file that moved instead of leaving a stale entry."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from avajams import Pipeline, PipelineConfig
from avajams.testing import FakeEmbedder, make_clip


def _pipe(tmp_path: Path) -> Pipeline:
    cfg = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}})
    return Pipeline(cfg, embedder=FakeEmbedder(dim=32))


def test_moved_file_is_rekeyed_without_reembedding(tmp_path: Path) -> None:
    mv = tmp_path / "mv"
    mv.mkdir()
    make_clip(mv / "a.mp4", tag=1, duration=3.0, fps=12)
    make_clip(mv / "b.mp4", tag=2, duration=3.0, fps=12)
    with _pipe(tmp_path) as pipe:
        first = pipe.index(mv)
        assert len(first.added) == 2
        before = pipe.open_library().get(pipe.open_library().find_by_path(mv / "a.mp4") or "")

    (mv / "renamed").mkdir()
    shutil.move(mv / "a.mp4", mv / "renamed" / "a2.mp4")
    with _pipe(tmp_path) as pipe:
        summary = pipe.index(mv)
        library = pipe.open_library()
        assert summary.moved == (str(mv / "renamed" / "a2.mp4"),)
        assert summary.skipped == (str(mv / "b.mp4"),)
        assert summary.added == summary.updated == ()
        assert summary.frames == 0  # nothing was embedded again
        assert len(library) == 2
        assert library.find_by_path(mv / "a.mp4") is None
        key = library.find_by_path(mv / "renamed" / "a2.mp4")
        assert key is not None
        after = library.get(key)
        assert after.content_hash == before.content_hash
        assert after.metadata["name"] == "a2.mp4"
        assert after.frames is not None
        assert before.frames is not None
        np.testing.assert_allclose(after.frames, before.frames, atol=1e-3)
        assert after.times is not None
        assert before.times is not None
        np.testing.assert_array_equal(after.times, before.times)


def test_copy_of_an_indexed_file_is_skipped(tmp_path: Path) -> None:
    mv = tmp_path / "mv"
    mv.mkdir()
    make_clip(mv / "a.mp4", tag=1, duration=2.0, fps=12)
    with _pipe(tmp_path) as pipe:
        pipe.index(mv)
    shutil.copy(mv / "a.mp4", mv / "copy.mp4")
    with _pipe(tmp_path) as pipe:
        summary = pipe.index(mv)
        assert set(summary.skipped) == {str(mv / "a.mp4"), str(mv / "copy.mp4")}
        assert summary.moved == ()
        assert len(pipe.open_library()) == 1


def test_match_works_while_another_handle_writes(tmp_path: Path) -> None:
    mv = tmp_path / "mv"
    mv.mkdir()
    make_clip(mv / "a.mp4", tag=1, duration=2.0, fps=12)
    make_clip(mv / "b.mp4", tag=2, duration=2.0, fps=12)
    with _pipe(tmp_path) as pipe:
        pipe.index(mv)
    with _pipe(tmp_path) as writer:
        writer.open_library()  # holds the write lock
        with _pipe(tmp_path) as reader:
            matches = reader.match(mv / "a.mp4", k=2)
            assert matches[0].path == str(mv / "a.mp4")
            assert reader.open_library(readonly=True).readonly
    with _pipe(tmp_path) as pipe:
        pipe.match(mv / "b.mp4", k=1)
        summary = pipe.index(mv)  # reopens the read-only handle for writing
        assert len(summary.skipped) == 2
        assert not pipe.open_library().readonly


def test_copies_within_one_run_are_indexed_once(tmp_path: Path) -> None:
    mv = tmp_path / "mv"
    mv.mkdir()
    make_clip(mv / "a.mp4", tag=1, duration=2.0, fps=12)
    shutil.copy(mv / "a.mp4", mv / "a-copy.mp4")
    make_clip(mv / "b.mp4", tag=2, duration=2.0, fps=12)
    with _pipe(tmp_path) as pipe:
        summary = pipe.index(mv)
        assert len(summary.added) == 2
        assert len(summary.skipped) == 1
        assert len(pipe.open_library()) == 2


def test_indexing_with_other_sampler_settings_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mv = tmp_path / "mv"
    mv.mkdir()
    make_clip(mv / "a.mp4", tag=1, duration=2.0, fps=12)
    with _pipe(tmp_path) as pipe:
        pipe.index(mv)
    with caplog.at_level(logging.WARNING, logger="avajams"), _pipe(tmp_path) as pipe:
        pipe.index(mv)  # same settings: quiet
    assert not [r for r in caplog.records if "sampler settings" in r.getMessage()]

    make_clip(mv / "b.mp4", tag=2, duration=2.0, fps=12)
    cfg = PipelineConfig.model_validate(
        {"library": {"directory": str(tmp_path / "lib")}, "sampler": {"fps": 4.0}}
    )
    with (
        caplog.at_level(logging.WARNING, logger="avajams"),
        Pipeline(cfg, embedder=FakeEmbedder(dim=32)) as pipe,
    ):
        pipe.index(mv)
    messages = [r.getMessage() for r in caplog.records if "sampler settings" in r.getMessage()]
    assert len(messages) == 1
    assert "differs in: fps" in messages[0]
