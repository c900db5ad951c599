"""hnswlib is an extra: without it every library searches exactly, and says when the graph
would pay off; an explicit ``backend="hnsw"`` asks for the extra."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from avajams.errors import ConfigError
from avajams.index import VideoIndex, _library


@pytest.fixture
def no_hnswlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hnswlib", None)  # ``import hnswlib`` now fails


def _vectors(n: int, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    unit: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit


@pytest.mark.usefixtures("no_hnswlib")
def test_auto_searches_exactly_and_says_when_hnswlib_pays_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_library, "AUTO_EXACT_LIMIT", 20)
    vectors = _vectors(30)
    with VideoIndex.create(tmp_path / "lib", dim=8, embedder_id="e") as lib:
        for i, v in enumerate(vectors[:20]):
            lib.add(f"v{i}", v)
    with caplog.at_level(logging.WARNING), VideoIndex.open(tmp_path / "lib") as lib:
        assert lib.backend == "exact"  # 20 videos: exact by choice, nothing to say
        assert not caplog.records
        for i, v in enumerate(vectors[20:], 20):
            lib.add(f"v{i}", v)
    with caplog.at_level(logging.WARNING), VideoIndex.open(tmp_path / "lib") as lib:
        assert lib.backend == "exact"
        assert [m.key for m in lib.search(vectors[25], k=1)] == ["v25"]
    (record,) = caplog.records
    assert "holds 30 videos; without hnswlib each search scores all of them" in record.message
    assert "pip install 'avajams[hnsw]'" in record.message


@pytest.mark.usefixtures("no_hnswlib")
def test_explicit_hnsw_without_hnswlib_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs hnswlib.*pip install 'avajams\[hnsw\]'"):
        VideoIndex.create(tmp_path / "lib", dim=8, embedder_id="e", backend="hnsw")
    assert not (tmp_path / "lib").exists()
    VideoIndex.create(tmp_path / "lib", dim=8, embedder_id="e").close()
    with pytest.raises(ConfigError, match=r"avajams\[hnsw\]"):
        VideoIndex.open(tmp_path / "lib", backend="hnsw")


def test_a_library_built_with_hnswlib_opens_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("hnswlib")  # the dev extra installs it
    vectors = _vectors(5)
    with VideoIndex.create(tmp_path / "lib", dim=8, embedder_id="e", backend="hnsw") as lib:
        for i, v in enumerate(vectors):
            lib.add(f"v{i}", v)
        assert lib.backend == "hnsw"
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    with caplog.at_level(logging.WARNING), VideoIndex.open(tmp_path / "lib") as lib:
        assert lib.backend == "exact"
        assert [m.key for m in lib.search(vectors[3], k=1)] == ["v3"]
    assert "is set to the hnsw backend" in caplog.text
