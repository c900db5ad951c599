"""Test doubles the workers of the tests' Ray cluster load, and helpers for those tests.

Workers import this module (``PYTHONPATH`` points at ``tests/`` in the nodes' environment), so
the embedder below can be named in a config: ``kind = "ray_cluster:PidEmbedder"``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from avajams._testing.cluster import LocalCluster
from avajams.testing import FakeEmbedder

__all__ = ["TESTS", "LocalCluster", "PidEmbedder", "cluster_for_tests", "entries", "pids"]

TESTS = Path(__file__).resolve().parent


def cluster_for_tests(nodes: list[tuple[int, int]]) -> LocalCluster:
    """A cluster whose workers can import the test modules."""
    return LocalCluster(nodes, pythonpath=[str(TESTS)])


class PidEmbedder(FakeEmbedder):
    """:class:`FakeEmbedder` that records its process id in ``pid_dir`` and takes ``delay``
    seconds per call, so a test can find the actor's process and kill it mid-run."""

    def __init__(self, pid_dir: str, delay: float = 0.0, dim: int = 64) -> None:
        super().__init__(dim=dim)
        self.delay = delay
        Path(pid_dir, str(os.getpid())).touch()

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        time.sleep(self.delay)
        return super().embed(images)


def pids(pid_dir: Path) -> list[int]:
    """The process ids :class:`PidEmbedder` recorded, oldest first."""
    files = sorted(pid_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    return [int(p.name) for p in files]


def entries(library: Path, *, vectors: bool = True) -> list[Any]:
    """Every entry of the library at ``library`` (opened read-only), with its arrays."""
    from avajams.index import VideoIndex

    with VideoIndex.open(library, readonly=True) as index:
        return [index.get(e.key, vectors=vectors) for e in index.entries()]
