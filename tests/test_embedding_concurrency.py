"""OnnxEmbedder's default CPU mode: concurrent single-threaded runs over shares of each batch.

On the tiny linear model (milliseconds): the split changes no vector, every image is embedded
exactly once, explicit ``threads`` keeps one run, and ``close`` releases the worker threads.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from test_embedding_onnx import SIDE, write_tiny_model

from avajams.embedding import OnnxEmbedder
from avajams.embedding import _onnx as onnx_module


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "tiny")


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, SIDE, SIDE, 3), dtype=np.uint8)


@pytest.mark.parametrize(("n", "batch_size"), [(1, 16), (3, 16), (16, 16), (37, 16), (11, 5)])
def test_concurrent_runs_give_the_single_run_vectors(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, n: int, batch_size: int
) -> None:
    monkeypatch.setattr(onnx_module, "_usable_cores", lambda: 3)
    concurrent = OnnxEmbedder(tiny, batch_size=batch_size)
    single = OnnxEmbedder(tiny, batch_size=batch_size, threads=1)
    assert concurrent._workers == 3
    assert single._workers == 1
    images = _images(n)
    np.testing.assert_allclose(concurrent.embed(images), single.embed(images), atol=1e-6)


def test_each_run_is_single_threaded_and_sees_a_share_of_the_batch(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_module, "_usable_cores", lambda: 2)
    emb = OnnxEmbedder(tiny, batch_size=16)
    session = emb._get_session()
    assert session.get_session_options().intra_op_num_threads == 1
    sizes: list[int] = []
    callers: set[str] = set()
    real_run = session.run

    class Spy:
        def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            sizes.append(len(feeds["images"]))
            callers.add(threading.current_thread().name)
            return list(real_run(outputs, feeds))

    emb._session = Spy()
    emb.embed(_images(40))
    assert sorted(sizes) == [8, 8, 8, 8, 8]  # every image once, in shares of 16 / 2
    assert all(name.startswith("avajams-onnx") for name in callers)
    emb.close()
    assert emb._pool is None
    assert emb.embed(_images(2)).shape == (2, 6)  # a new session and pool after close


def test_explicit_threads_or_other_providers_keep_one_run(tiny: Path) -> None:
    emb = OnnxEmbedder(tiny, threads=2)
    assert emb._workers == 1
    assert emb._get_session().get_session_options().intra_op_num_threads == 2
