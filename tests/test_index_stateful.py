"""VideoIndex against a dict model: any sequence of operations, including close and reopen."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from avajams.errors import VectorError
from avajams.index import HnswParams, VideoIndex

DIM = 6
KEYS = st.sampled_from([f"key{i}" for i in range(8)])
COMPONENT = st.floats(-1.0, 1.0, allow_nan=False, width=32)
VECTORS = st.lists(COMPONENT, min_size=DIM, max_size=DIM).map(
    lambda xs: np.asarray(xs, dtype=np.float64)
)
TAGS = st.sampled_from(["a", "b"])


def _unit(v: np.ndarray) -> np.ndarray:
    return cast(np.ndarray, v / np.linalg.norm(v))


class LibraryMachine(RuleBasedStateMachine):
    backend = "exact"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="avajams-state-"))
        self.lib = VideoIndex.create(
            self.dir / "lib",
            dim=DIM,
            embedder_id="e",
            backend=self.backend,  # type: ignore[arg-type]
            hnsw=HnswParams(M=8, ef_construction=64, ef=64),
        )
        self.model: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}

    def teardown(self) -> None:
        self.lib.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(key=KEYS, v=VECTORS, tag=TAGS)
    def add(self, key: str, v: np.ndarray, tag: str) -> None:
        if not np.any(v):  # the documented contract: only an all-zero vector has no direction
            with pytest.raises(VectorError):
                self.lib.add(key, v, metadata={"tag": tag})
            return
        self.lib.add(key, v, metadata={"tag": tag})
        self.model[key] = (_unit(v), {"tag": tag})

    @rule(key=KEYS)
    def remove(self, key: str) -> None:
        assert self.lib.remove(key) == (key in self.model)
        self.model.pop(key, None)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=4), v=VECTORS, fail=st.booleans())
    def batch(self, keys: list[str], v: np.ndarray, fail: bool) -> None:
        """A transaction that adds under ``keys``, then commits or fails (rolls back)."""
        if not np.any(v):  # the documented contract: only an all-zero vector has no direction
            return
        staged = dict(self.model)
        try:
            with self.lib.transaction():
                for i, key in enumerate(keys):
                    w = np.roll(v, i)
                    self.lib.add(key, w, metadata={"tag": "batch"})
                    staged[key] = (_unit(w), {"tag": "batch"})
                if fail:
                    raise KeyboardInterrupt  # BaseException: rolled back too
        except KeyboardInterrupt:
            return
        self.model = staged

    @rule()
    def reopen(self) -> None:
        self.lib.close()
        self.lib = VideoIndex.open(self.dir / "lib", embedder_id="e")
        assert self.lib.backend == self.backend

    @rule()
    def crash_and_reopen(self) -> None:
        """Drop the handle as a killed process would: committed rows stay, the index file
        keeps whatever it held at the last flush (stale), nothing is saved."""
        lib = self.lib
        lib._cat.close()
        assert lib._lock is not None
        lib._lock.release()
        lib._closed = True
        self.lib = VideoIndex.open(self.dir / "lib", embedder_id="e")

    @rule()
    def flush(self) -> None:
        self.lib.flush()

    @precondition(lambda self: self.model)
    @rule(v=VECTORS, k=st.integers(1, 10), tag=st.none() | TAGS)
    def search(self, v: np.ndarray, k: int, tag: str | None) -> None:
        if not np.any(v):  # the documented contract: only an all-zero vector has no direction
            with pytest.raises(VectorError):
                self.lib.search(v, k=k)
            return
        q = _unit(v)
        where = None if tag is None else {"tag": tag}
        eligible = {
            key: float(vec @ q)
            for key, (vec, md) in self.model.items()
            if tag is None or md["tag"] == tag
        }
        res = self.lib.search(v, k=k, where=where)
        assert len(res) == min(k, len(eligible))
        expected = sorted(eligible.values(), reverse=True)[:k]
        np.testing.assert_allclose([m.score for m in res], expected, atol=1e-4)
        for m in res:
            assert m.score == pytest.approx(eligible[m.key], abs=1e-4)
            assert m.metadata == self.model[m.key][1]

    @invariant()
    def same_contents(self) -> None:
        assert len(self.lib) == len(self.model)
        assert self.lib.keys() == sorted(self.model)
        for key in ("key0", "key5"):
            assert (key in self.lib) == (key in self.model)

    @invariant()
    def backend_matches_catalogue(self) -> None:
        assert len(self.lib._backend) == len(self.model)


class ExactMachine(LibraryMachine):
    backend = "exact"


class HnswMachine(LibraryMachine):
    backend = "hnsw"


_settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestExactLibrary = ExactMachine.TestCase
TestExactLibrary.settings = _settings
TestHnswLibrary = HnswMachine.TestCase
TestHnswLibrary.settings = _settings
