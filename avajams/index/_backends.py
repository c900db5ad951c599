"""Vector backends: exact numpy search and an hnswlib graph, behind one small protocol.

hnswlib is optional (the ``hnsw`` extra): without it every library searches exactly.

A backend holds unit vectors under integer labels and answers cosine top-k queries. It knows
nothing about keys, files or the catalogue; :class:`~avajams.index.VideoIndex` owns those.
Labels are never reused by the library, so a removed label is gone for good.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
from collections.abc import Iterable, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["ExactBackend", "HnswBackend", "HnswParams", "VectorBackend", "hnswlib_available"]

#: how to get the graph backend, which is an extra: hnswlib publishes no wheels, so installing it
#: needs a C++ compiler and the Python headers
HNSW_INSTALL = "pip install 'avajams[hnsw]' (builds hnswlib: needs a C++ compiler)"


def hnswlib_available() -> bool:
    """Whether the optional hnswlib package (the ``hnsw`` extra) can be imported."""
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


Labels = NDArray[np.int64]
Scores = NDArray[np.float32]


class VectorBackend(Protocol):
    """What :class:`VideoIndex` needs from a vector store.

    ``search`` returns at most ``k`` (label, cosine) pairs, best first, drawn only from live
    labels and, when ``allowed`` is given, only from it; it returns ``min(k, #eligible)`` pairs.
    """

    name: str
    dim: int

    def __len__(self) -> int: ...

    def labels(self) -> Set[int]:
        """The live labels."""
        ...

    def add(self, labels: Labels, vectors: NDArray[np.float32]) -> None:
        """Add unit ``vectors`` (n, dim) under new ``labels`` (n,)."""
        ...

    def remove(self, labels: Iterable[int]) -> None:
        """Forget ``labels``; unknown labels are ignored."""
        ...

    def search(
        self, vector: NDArray[np.float32], k: int, allowed: Set[int] | None = None
    ) -> tuple[Labels, Scores]: ...


def _top_k(scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Indices of the ``k`` largest scores, best first (ties broken by position)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class ExactBackend:
    """Brute-force cosine search over a float32 matrix: exact, no build time, O(n·dim) a query."""

    name = "exact"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix = np.empty((0, dim), dtype=np.float32)
        self._labels = np.empty(0, dtype=np.int64)
        self._row: dict[int, int] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def labels(self) -> Set[int]:
        return self._row.keys()

    def add(self, labels: Labels, vectors: NDArray[np.float32]) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        need = self._n + len(labels)
        if need > len(self._matrix):
            cap = max(need, 2 * len(self._matrix), 64)
            matrix = np.empty((cap, self.dim), dtype=np.float32)
            matrix[: self._n] = self._matrix[: self._n]
            lab = np.empty(cap, dtype=np.int64)
            lab[: self._n] = self._labels[: self._n]
            self._matrix, self._labels = matrix, lab
        for label, vector in zip(labels.tolist(), vectors, strict=True):
            row = self._row.get(label)
            if row is None:
                row = self._n
                self._n += 1
                self._row[label] = row
                self._labels[row] = label
            self._matrix[row] = vector

    def remove(self, labels: Iterable[int]) -> None:
        for label in labels:
            row = self._row.pop(int(label), None)
            if row is None:
                continue
            last = self._n - 1
            if row != last:  # move the last row into the hole
                moved = int(self._labels[last])
                self._matrix[row] = self._matrix[last]
                self._labels[row] = moved
                self._row[moved] = row
            self._n = last

    def vectors(self, labels: Iterable[int]) -> NDArray[np.float32]:
        rows = [self._row[int(label)] for label in labels]
        return self._matrix[rows]

    def search(
        self, vector: NDArray[np.float32], k: int, allowed: Set[int] | None = None
    ) -> tuple[Labels, Scores]:
        scores = self._matrix[: self._n] @ vector
        labels = self._labels[: self._n]
        if allowed is not None:
            mask = np.fromiter((int(x) in allowed for x in labels), dtype=bool, count=self._n)
            scores, labels = scores[mask], labels[mask]
        if k <= 0 or len(scores) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        order = _top_k(scores, k)
        return labels[order].copy(), scores[order].astype(np.float32)


@dataclass(frozen=True)
class HnswParams:
    """hnswlib graph parameters.

    The defaults reach recall@10 >= 0.99 against exact search on embedding-like data (clustered
    2048-d vectors of low intrinsic dimension); see docs/library.md for what they cost and why
    no setting cheaper than brute force does so on uniformly random 2048-d vectors.
    """

    M: int = 16
    ef_construction: int = 100
    ef: int = 64

    def to_json(self) -> dict[str, int]:
        return {"M": self.M, "ef_construction": self.ef_construction, "ef": self.ef}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HnswParams:
        return cls(
            M=int(data["M"]), ef_construction=int(data["ef_construction"]), ef=int(data["ef"])
        )


class HnswBackend:
    """An hnswlib cosine graph. Removed slots are reused by later additions.

    Not thread-safe on its own; :class:`VideoIndex` serialises calls.
    """

    name = "hnsw"
    #: with a filter matching at most this many labels, search them exactly instead
    EXACT_FILTER_LIMIT = 2048

    def __init__(
        self,
        dim: int,
        params: HnswParams | None = None,
        *,
        capacity: int = 1024,
        num_threads: int = -1,
        _index: Any = None,
    ) -> None:
        import hnswlib

        self.dim = dim
        self.params = params or HnswParams()
        self.num_threads = num_threads
        if _index is None:
            _index = hnswlib.Index(space="cosine", dim=dim)
            _index.init_index(
                max_elements=max(capacity, 16),
                M=self.params.M,
                ef_construction=self.params.ef_construction,
                allow_replace_deleted=True,
            )
        self._index = _index
        self._index.set_ef(self.params.ef)
        self._live: set[int] = set()
        self.dirty = True

    @classmethod
    def load(
        cls, path: Path, dim: int, params: HnswParams, *, num_threads: int = -1
    ) -> tuple[HnswBackend, set[int]]:
        """Load a saved graph; returns it with every label the file holds, deleted or not.

        The caller must have verified the file (size and digest) first: hnswlib trusts it.
        The live set starts empty; the caller reconciles it with :meth:`reconcile`.
        """
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=dim)
        index.load_index(os.fspath(path), max_elements=0, allow_replace_deleted=True)
        if index.dim != dim:
            raise ValueError(f"index file has dim {index.dim}, expected {dim}")
        backend = cls(dim, params, num_threads=num_threads, _index=index)
        backend.dirty = False
        return backend, {int(x) for x in index.get_ids_list()}

    def reconcile(
        self, in_file: set[int], live: set[int], add: tuple[Labels, NDArray[np.float32]]
    ) -> None:
        """After :meth:`load`: delete file labels not in ``live``, then add the missing ones."""
        for label in in_file - live:
            try:
                self._index.mark_deleted(label)
            except RuntimeError:  # already deleted in the file
                pass
            else:
                self.dirty = True
        self._live = live & in_file
        if len(add[0]):
            self.add(*add)

    def __len__(self) -> int:
        return len(self._live)

    def labels(self) -> Set[int]:
        return self._live

    @property
    def capacity(self) -> int:
        return int(self._index.get_max_elements())

    def add(self, labels: Labels, vectors: NDArray[np.float32]) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return
        need = len(self._live) + len(labels)
        if need > self.capacity:
            self._index.resize_index(max(need, 2 * self.capacity))
        # replace_deleted fills slots of removed labels first, so removals do not leak capacity
        self._index.add_items(vectors, labels, num_threads=self.num_threads, replace_deleted=True)
        self._live.update(labels.tolist())
        self.dirty = True

    def remove(self, labels: Iterable[int]) -> None:
        for label in labels:
            label = int(label)
            if label in self._live:
                self._index.mark_deleted(label)
                self._live.discard(label)
                self.dirty = True

    def vectors(self, labels: Iterable[int]) -> NDArray[np.float32]:
        ids = [int(x) for x in labels]
        if not ids:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.get_items(ids), dtype=np.float32).reshape(len(ids), self.dim)

    def _exact(
        self, vector: NDArray[np.float32], k: int, labels: Iterable[int]
    ) -> tuple[Labels, Scores]:
        lab = np.fromiter(labels, dtype=np.int64)
        scores = self.vectors(lab) @ vector
        order = _top_k(scores, k)
        return lab[order], scores[order].astype(np.float32)

    def search(
        self, vector: NDArray[np.float32], k: int, allowed: Set[int] | None = None
    ) -> tuple[Labels, Scores]:
        eligible: Set[int] = self._live if allowed is None else (allowed & self._live)
        k = min(k, len(eligible))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if allowed is not None and len(eligible) <= max(self.EXACT_FILTER_LIMIT, 4 * k):
            # a selective filter starves the graph walk; scoring the few eligible is cheaper
            return self._exact(vector, k, eligible)
        self._index.set_ef(max(self.params.ef, k))
        filt = None if allowed is None else eligible.__contains__
        try:
            labels, dist = self._index.knn_query(vector, k=k, num_threads=1, filter=filt)
        except RuntimeError:
            # hnswlib could not gather k results (a sparse, heavily-deleted neighbourhood)
            return self._exact(vector, k, eligible)
        return labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)

    def save(self, path: Path) -> tuple[int, str]:
        """Write the graph to ``path`` atomically and verified; return its (size, digest).

        Temp file, fsync, a structural check of the whole file (hnswlib writes through a C++
        stream that ignores a full disk), rename, fsync of the directory. Raises OSError when
        the file could not be written completely; the previous file is then untouched.
        """
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            try:
                self._index.save_index(os.fspath(tmp))
            except RuntimeError as exc:  # hnswlib could not open the file
                raise OSError(errno.EIO, f"hnswlib could not write {tmp.name}: {exc}") from exc
            _fsync_file(tmp)
            try:
                check_hnsw_file(tmp, self.dim)
            except ValueError as exc:
                raise OSError(
                    errno.EIO, f"{exc} (written incompletely: is the disk full?)"
                ) from exc
            record = file_digest(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        self.dirty = False
        return record


# hnswlib's saveIndex header: offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData (size_t); maxlevel (int); enterpoint_node
# (uint32); maxM, maxM0, M (size_t); mult (double); ef_construction (size_t).
_HNSW_HEADER = struct.Struct("<6QiI3QdQ")


def check_hnsw_file(path: Path, dim: int) -> None:
    """Raise ValueError unless ``path`` is a complete hnswlib index file of ``dim``-d float32
    vectors.

    Walks the file as hnswlib's loader does — header, level-0 block, one link list per
    element — without loading it, so a file cut short by a full disk is caught by its size.
    """
    size = path.stat().st_size
    with open(path, "rb", buffering=1 << 20) as f:
        header = f.read(_HNSW_HEADER.size)
        if len(header) < _HNSW_HEADER.size:
            raise ValueError(f"{path.name} is {size} bytes, shorter than an hnswlib header")
        fields = _HNSW_HEADER.unpack(header)
        elements, per_element, offset_data = fields[2], fields[3], fields[5]
        if per_element < offset_data + dim * 4:
            raise ValueError(f"{path.name} is not an index of {dim}-d vectors")
        position = _HNSW_HEADER.size + elements * per_element
        if position > size:
            raise ValueError(f"{path.name} is {size} bytes, its vectors alone need {position}")
        f.seek(position)
        for _ in range(elements):
            raw = f.read(4)
            if len(raw) < 4:
                raise ValueError(f"{path.name} is {size} bytes: its link lists are cut short")
            (links,) = struct.unpack("<I", raw)
            if links:
                position = f.tell() + links
                if position > size:
                    raise ValueError(f"{path.name} is {size} bytes: a link list runs past it")
                f.seek(links, io.SEEK_CUR)
        if f.tell() != size:
            raise ValueError(f"{path.name} is {size} bytes, {size - f.tell()} too many")


def file_digest(path: Path) -> tuple[int, str]:
    """(size, blake2b hex digest) of a file, streamed."""
    h = hashlib.blake2b(digest_size=32)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be fsynced on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
