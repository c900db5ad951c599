"""VideoIndex: a library of videos on disk — SQLite catalogue plus a derived vector index."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from avajams.errors import (
    ConfigError,
    EmbedderMismatchError,
    LibraryCorruptError,
    LibraryError,
    LibraryLockedError,
    LibraryNotFoundError,
    VectorError,
    VideoNotFoundError,
)
from avajams.index._align import fit_line
from avajams.index._backends import (
    ExactBackend,
    HnswBackend,
    HnswParams,
    VectorBackend,
    file_digest,
)
from avajams.index._catalogue import Catalogue, Row, corrupt_hint
from avajams.index._rerank import align_tracks, rerank_scores
from avajams.index._types import AlignedPair, Box, Entry, Match, QueryTrack, Span

__all__ = [
    "AUTO_EXACT_LIMIT",
    "FORMAT_VERSION",
    "VideoIndex",
    "content_hash",
    "default_library_dir",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CATALOGUE_NAME = "catalogue.sqlite"
INDEX_NAME = "signatures.hnsw"
LOCK_NAME = "write.lock"
#: ``backend="auto"`` searches exactly while the library holds at most this many videos
AUTO_EXACT_LIMIT = 10_000
#: ``search_tracks`` also looks up windows of this many frames of each query track ...
WINDOW_FRAMES = 4
#: ... each window's nearest videos (seated round-robin after the whole query's)
WINDOW_CANDIDATES = 5

BackendName = Literal["auto", "exact", "hnsw"]
Where = Mapping[str, Any] | Callable[[dict[str, Any]], bool]


def default_library_dir() -> Path:
    """Where a library lives when none is given: ``$AVAJAMS_HOME/library`` if that variable
    is set, else ``library`` under the platform's user data directory."""
    home = os.environ.get("AVAJAMS_HOME")
    if home:
        return Path(home).expanduser() / "library"
    import platformdirs

    return platformdirs.user_data_path("avajams") / "library"


def content_hash(path: str | os.PathLike[str]) -> str:
    """Hex BLAKE2b-256 digest of a file's bytes, streamed (identical files, identical hash)."""
    p = Path(path)
    h = hashlib.blake2b(digest_size=32)
    try:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except FileNotFoundError as exc:
        raise VideoNotFoundError(f"no such file: {p}", path=p) from exc
    except IsADirectoryError as exc:
        raise VideoNotFoundError(f"{p} is a directory, not a file", path=p) from exc
    return h.hexdigest()


class _WriteLock:
    """An exclusive, non-blocking advisory lock on a file; released by the OS if we die."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._lock(self._fd)
        except OSError as exc:
            text = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            self._fd = None
            holder = int(text) if text.isdigit() else None
            who = f" (process {holder})" if holder is not None else ""
            raise LibraryLockedError(
                f"the library {path.parent} is open for writing by another process{who}; "
                "close it there first, or open this one with readonly=True",
                path=path.parent,
                write_lock=True,
                holder=holder,
            ) from exc
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    @staticmethod
    def _lock(fd: int) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def _unit_rows(value: ArrayLike, dim: int, what: str, *, matrix: bool) -> NDArray[np.float32]:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise VectorError(f"{what} is not numeric: {exc}") from exc
    want = f"(n, {dim})" if matrix else f"({dim},)"
    if (matrix and (a.ndim != 2 or a.shape[1] != dim)) or (not matrix and a.shape != (dim,)):
        raise VectorError(
            f"{what} has shape {a.shape}, expected {want}; the library holds {dim}-d vectors "
            "— was it built with another embedder?"
        )
    if matrix and a.shape[0] == 0:
        raise VectorError(f"{what} has no rows")
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise VectorError(f"{what} contains {bad} NaN or infinite value(s)")
    scale = np.abs(a).max(axis=-1, keepdims=True)
    if (scale == 0).any():
        raise VectorError(f"{what} has a zero vector, which has no direction to compare")
    a = a / scale  # the norm of very large finite values would overflow
    norms = np.linalg.norm(a, axis=-1, keepdims=True)
    unit: NDArray[np.float32] = (a / norms).astype(np.float32)
    return unit


def _times(value: ArrayLike | None, n: int, what: str) -> NDArray[np.float64]:
    if value is None:
        return np.arange(n, dtype=np.float64)
    t = np.asarray(value, dtype=np.float64)
    if t.shape != (n,):
        raise VectorError(f"{what} has shape {t.shape}, expected ({n},) — one time per frame")
    if not np.isfinite(t).all():
        raise VectorError(f"{what} contains NaN or infinite times")
    return t


def _matcher(where: Where) -> Callable[[dict[str, Any]], bool]:
    if callable(where):
        return where
    if not isinstance(where, Mapping):
        raise ConfigError(f"where must be a mapping or a callable, not {type(where).__name__}")
    items = list(where.items())

    def match(md: dict[str, Any]) -> bool:
        return all(k in md and md[k] == v for k, v in items)

    return match


class VideoIndex:
    """A library of videos in one directory: search by signature, re-rank by frames.

    Create one with :meth:`create`, reopen it with :meth:`open`. The SQLite catalogue
    (``catalogue.sqlite``) is the source of truth; the hnswlib graph (``signatures.hnsw``) is a
    cache rebuilt from it whenever it is missing, stale or damaged. One process may write at a
    time (others get :class:`~avajams.LibraryLockedError`); any number may read with
    ``readonly=True``. Not for concurrent use from several threads without care: calls are
    serialised by an internal lock.
    """

    def __init__(
        self,
        directory: Path,
        catalogue: Catalogue,
        lock: _WriteLock | None,
        meta: dict[str, Any],
        backend_choice: BackendName | None = None,
    ) -> None:
        # private: use create() / open()
        self._directory = directory
        self._cat = catalogue
        self._lock = lock
        self._meta = meta
        self._mutex = threading.RLock()
        self._closed = False
        self._pending: list[tuple[str, int, NDArray[np.float32] | None, dict[str, Any] | None]] = []
        self._md_cache: dict[int, dict[str, Any]] | None = None
        if lock is not None:  # temp files of saves cut short by a crash; no one else saves
            for stale in directory.glob(f".{INDEX_NAME}.*.tmp"):
                stale.unlink(missing_ok=True)
        self._dim = int(meta["dim"])
        self._hnsw_params = HnswParams.from_json(meta["hnsw"])
        self._backend_choice: BackendName = backend_choice or meta["backend"]
        # a handle dropped without close() still gives back its connection and lock
        self._finalizer = weakref.finalize(self, _release, catalogue, lock)
        self._backend: VectorBackend = self._load_backend()

    # -- construction ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        dim: int,
        embedder_id: str,
        backend: BackendName = "auto",
        sampler_settings: Mapping[str, Any] | None = None,
        hnsw: HnswParams | None = None,
    ) -> VideoIndex:
        """Create an empty library in ``directory`` (made if missing) and open it for writing.

        ``backend``: ``"exact"`` (brute force), ``"hnsw"`` (graph), or ``"auto"`` — exact while
        the library holds at most :data:`AUTO_EXACT_LIMIT` videos, hnsw beyond, decided at
        each open. ``hnsw`` overrides the graph parameters.
        """
        if not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"dim must be a positive integer, not {dim!r}")
        if not embedder_id or not isinstance(embedder_id, str):
            raise ConfigError(f"embedder_id must be a non-empty string, not {embedder_id!r}")
        if backend not in ("auto", "exact", "hnsw"):
            raise ConfigError(f"backend must be 'auto', 'exact' or 'hnsw', not {backend!r}")
        d = Path(directory)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(
                f"cannot create the library directory {d}: {exc.strerror or exc}; choose a "
                "directory path that is not a file and is writable",
                path=d,
            ) from exc
        lock = _WriteLock(d / LOCK_NAME)
        try:
            path = d / CATALOGUE_NAME
            if path.exists():
                raise LibraryError(
                    f"{d} already holds a library; open it with VideoIndex.open({str(d)!r}) "
                    "or choose an empty directory",
                    path=d,
                )
            meta: dict[str, Any] = {
                "format_version": FORMAT_VERSION,
                "library_id": uuid.uuid4().hex,
                "created_at": time.time(),
                "embedder_id": embedder_id,
                "dim": dim,
                "backend": backend,
                "hnsw": (hnsw or HnswParams()).to_json(),
                "sampler_settings": dict(sampler_settings or {}),
                "next_label": 0,
                "index_file": None,
            }
            Catalogue.initialise(path, meta)
            return cls(d, Catalogue(path, readonly=False), lock, meta)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        embedder_id: str | None = None,
        readonly: bool = False,
        backend: BackendName | None = None,
    ) -> VideoIndex:
        """Open an existing library.

        ``embedder_id``, when given, must equal the library's (else
        :class:`~avajams.EmbedderMismatchError`). ``readonly=True`` takes no lock and never
        writes; such a handle searches the vectors present when it was opened (see
        :meth:`refresh`). ``backend`` overrides the stored choice for this handle.
        """
        d = Path(directory)
        path = d / CATALOGUE_NAME
        if d.exists() and not d.is_dir():
            hint = (
                f"pass the folder that holds it, {d.parent}"
                if d.name == CATALOGUE_NAME
                else "pass the library's folder (the one holding catalogue.sqlite)"
            )
            raise LibraryError(f"{d} is a file, not a library directory; {hint}", path=d)
        if not path.is_file():
            raise LibraryNotFoundError(
                f"no library in {d} (no {CATALOGUE_NAME}); create one with "
                "VideoIndex.create(directory, dim=..., embedder_id=...)",
                path=d,
            )
        lock = None if readonly else _WriteLock(d / LOCK_NAME)
        cat: Catalogue | None = None
        try:
            cat = Catalogue(path, readonly=readonly)
            try:
                meta = cat.read_meta()
            except LibraryError:
                raise
            except Exception as exc:  # undecodable JSON in meta
                raise LibraryCorruptError(
                    f"the catalogue {path} has unreadable metadata ({exc}). {corrupt_hint(path)}",
                    path=path,
                ) from exc
            missing = {"format_version", "dim", "embedder_id", "backend", "hnsw"} - meta.keys()
            if missing:
                raise LibraryCorruptError(
                    f"the catalogue {path} lacks {sorted(missing)} — it is not a complete "
                    f"avajams library. {corrupt_hint(path)}",
                    path=path,
                )
            if int(meta["format_version"]) > FORMAT_VERSION:
                raise LibraryError(
                    f"the library {d} has format {meta['format_version']}, newer than this "
                    f"avajams understands ({FORMAT_VERSION}); upgrade avajams",
                    path=d,
                )
            if embedder_id is not None:
                _check_embedder(meta["embedder_id"], embedder_id, d)
            return cls(d, cat, lock, meta, backend)
        except BaseException:
            if cat is not None:
                cat.close()
            if lock is not None:
                lock.release()
            raise

    @classmethod
    def open_or_create(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        dim: int,
        embedder_id: str,
        backend: BackendName = "auto",
        sampler_settings: Mapping[str, Any] | None = None,
    ) -> VideoIndex:
        """Open the library in ``directory`` (default: :func:`default_library_dir`) for
        writing, creating it if there is none. An existing one must match ``embedder_id``."""
        d = Path(directory) if directory is not None else default_library_dir()
        if (d / CATALOGUE_NAME).is_file():
            lib = cls.open(d, embedder_id=embedder_id)
            if lib.dim != dim:
                lib.close()
                raise VectorError(f"the library {d} holds {lib.dim}-d vectors, not {dim}-d")
            return lib
        return cls.create(
            d, dim=dim, embedder_id=embedder_id, backend=backend, sampler_settings=sampler_settings
        )

    # -- the vector backend ------------------------------------------------------------
    def _resolve_backend(self, n: int) -> Literal["exact", "hnsw"]:
        if self._backend_choice == "auto":
            return "exact" if n <= AUTO_EXACT_LIMIT else "hnsw"
        return self._backend_choice

    def _load_backend(self) -> VectorBackend:
        labels = set(self._cat.labels())
        if self._resolve_backend(len(labels)) == "exact":
            exact = ExactBackend(self._dim)
            for lab, vec in self._cat.signatures(self._dim):
                exact.add(lab, self._checked(vec))
            return exact
        backend = self._load_hnsw_file(labels)
        if backend is None:
            backend = HnswBackend(self._dim, self._hnsw_params, capacity=len(labels) + 1024)
            for lab, vec in self._cat.signatures(self._dim):
                backend.add(lab, self._checked(vec))
        return backend

    def _checked(self, vec: NDArray[np.float32]) -> NDArray[np.float32]:
        if not np.isfinite(vec).all():
            raise LibraryCorruptError(
                f"the catalogue {self._cat.path} holds a non-finite signature. "
                + corrupt_hint(self._cat.path),
                path=self._cat.path,
            )
        return vec

    def _load_hnsw_file(self, labels: set[int]) -> HnswBackend | None:
        path = self._directory / INDEX_NAME
        rec = self._meta.get("index_file")
        later = "in memory for this read-only handle" if self.readonly else "and saving it"
        if rec is None:
            if labels:
                logger.info("building the ANN index of %s for %d videos", path, len(labels))
            return None
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            logger.warning(
                "index file %s is missing; rebuilding it from the catalogue %s", path, later
            )
            return None
        problem = None
        if size != rec["size"]:
            problem = f"{size} bytes, expected {rec['size']}"
        elif file_digest(path)[1] != rec["digest"]:
            problem = "checksum mismatch"
        backend = None
        if problem is None:
            try:
                backend, in_file = HnswBackend.load(path, self._dim, self._hnsw_params)
            except (RuntimeError, ValueError, MemoryError) as exc:
                problem = f"hnswlib could not load it: {exc}"
        if backend is None:
            logger.warning(
                "index file %s is stale or damaged (%s); rebuilding it from the catalogue %s",
                path,
                problem,
                later,
            )
            return None
        missing = labels - in_file
        labs = np.fromiter(missing, dtype=np.int64, count=len(missing))
        vecs = np.empty((0, self._dim), dtype=np.float32)
        if missing:
            parts = list(self._cat.signatures(self._dim, labels=missing))
            labs = np.concatenate([p[0] for p in parts])
            vecs = self._checked(np.concatenate([p[1] for p in parts]))
        backend.reconcile(in_file, labels, (labs, vecs))
        return backend

    # -- properties --------------------------------------------------------------------
    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def embedder_id(self) -> str:
        return str(self._meta["embedder_id"])

    @property
    def sampler_settings(self) -> dict[str, Any]:
        return dict(self._meta.get("sampler_settings") or {})

    @property
    def backend(self) -> str:
        """The backend this handle searches with: ``"exact"`` or ``"hnsw"``."""
        return self._backend.name

    @property
    def readonly(self) -> bool:
        return self._lock is None

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writable"
        state = "closed" if self._closed else f"{self._backend.name}, {mode}"
        return f"<VideoIndex {str(self._directory)!r} ({state})>"

    # -- guards ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise LibraryError(f"the library {self._directory} is closed", path=self._directory)

    def _check_writable(self) -> None:
        self._check_open()
        if self._lock is None:
            raise LibraryError(
                f"the library {self._directory} was opened read-only; open it with "
                "readonly=False to change it",
                path=self._directory,
            )

    def check_embedder(self, embedder_id: str) -> None:
        """Raise :class:`~avajams.EmbedderMismatchError` unless ``embedder_id`` is the library's."""
        _check_embedder(self.embedder_id, embedder_id, self._directory)

    # -- writing -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic, durable commit (much faster for bulk adds).

        Either every change inside the block lands or none does. Searches inside the block
        do not see its changes until it ends.
        """
        self._check_writable()
        with self._mutex:
            outer = not self._cat.in_transaction
            try:
                with self._cat.transaction():
                    yield
            except BaseException:
                if outer:
                    self._pending.clear()
                    self._meta["next_label"] = self._cat.read_meta()["next_label"]
                raise
            if outer:
                self._apply_pending()

    def _apply_pending(self) -> None:
        added: dict[int, tuple[NDArray[np.float32], dict[str, Any]]] = {}
        removed: list[int] = []
        for op, label, vec, md in self._pending:
            if op == "add":
                assert vec is not None
                assert md is not None
                added[label] = (vec, md)
            elif label in added:
                del added[label]
            else:
                removed.append(label)
        self._pending.clear()
        self._backend.remove(removed)
        if added:
            labels = np.fromiter(added, dtype=np.int64, count=len(added))
            self._backend.add(labels, np.stack([v for v, _ in added.values()]))
        if self._md_cache is not None:
            for label in removed:
                self._md_cache.pop(label, None)
            for label, (_, md) in added.items():
                self._md_cache[label] = md

    def add(
        self,
        key: str,
        signature: ArrayLike,
        *,
        frames: ArrayLike | None = None,
        times: ArrayLike | None = None,
        path: str | os.PathLike[str] | None = None,
        duration: float | None = None,
        content_hash: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        embedder_id: str | None = None,
    ) -> None:
        """Add a video, or replace the one stored under ``key``.

        ``signature`` (dim,) and ``frames`` (n, dim) are normalised to unit length; frames are
        stored as float16. ``times`` are the frames' times in seconds (default 0, 1, 2, ...).
        ``metadata`` must be JSON-serialisable. ``embedder_id``, when given, must match.
        """
        self._check_writable()
        if embedder_id is not None:
            self.check_embedder(embedder_id)
        if not isinstance(key, str) or not key:
            raise ConfigError(f"key must be a non-empty string, not {key!r}")
        sig = _unit_rows(signature, self._dim, f"signature of {key!r}", matrix=False)
        fr: NDArray[np.float32] | None = None
        tm: NDArray[np.float64] | None = None
        if frames is not None:
            fr = _unit_rows(frames, self._dim, f"frames of {key!r}", matrix=True)
            tm = _times(times, len(fr), f"times of {key!r}")
        elif times is not None:
            raise VectorError(f"times of {key!r} given without frames")
        if duration is not None and not (math.isfinite(duration) and duration >= 0):
            raise ConfigError(f"duration of {key!r} must be a finite number >= 0, not {duration!r}")
        md = dict(metadata or {})
        try:
            import json

            md = json.loads(json.dumps(md, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"metadata of {key!r} is not JSON-serialisable: {exc}") from exc
        with self._mutex, self.transaction():
            label = int(self._meta["next_label"])
            row = Row(
                key=key,
                label=label,
                path=os.fspath(path) if path is not None else None,
                duration=float(duration) if duration is not None else None,
                content_hash=content_hash,
                num_frames=0 if fr is None else len(fr),
                added_at=time.time(),
                metadata=md,
                signature=sig,
            )
            old = self._cat.upsert(row, fr, tm)
            self._meta["next_label"] = label + 1
            self._cat.write_meta(next_label=label + 1)
            if old is not None:
                self._pending.append(("remove", old, None, None))
            self._pending.append(("add", label, sig, md))

    def remove(self, key: str) -> bool:
        """Remove the video stored under ``key``; returns whether there was one."""
        self._check_writable()
        with self._mutex, self.transaction():
            old = self._cat.delete(key)
            if old is not None:
                self._pending.append(("remove", old, None, None))
        return old is not None

    # -- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        self._check_open()
        with self._mutex:
            return self._cat.count()

    def __contains__(self, key: object) -> bool:
        self._check_open()
        if not isinstance(key, str):
            return False
        with self._mutex:
            return self._cat.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        """Every key, sorted."""
        self._check_open()
        with self._mutex:
            return self._cat.keys()

    def get(self, key: str, *, vectors: bool = True) -> Entry:
        """The catalogue entry for ``key`` (KeyError if absent); ``vectors=False`` skips arrays."""
        self._check_open()
        with self._mutex:
            row = self._cat.get(key, self._dim if vectors else None)
            if row is None:
                raise KeyError(key)
            frames = self._frames(row) if vectors else None
        return _entry(row, frames)

    def entries(self) -> Iterator[Entry]:
        """Every entry without its arrays, sorted by key."""
        self._check_open()
        with self._mutex:
            rows = list(self._cat.rows())
        return (_entry(r, None) for r in rows)

    def _frames(self, row: Row) -> tuple[NDArray[np.float32], NDArray[np.float64]] | None:
        try:
            return self._cat.frames(row.label, self._dim)
        except ValueError as exc:
            raise LibraryCorruptError(
                f"the stored frames of video {row.key!r} are damaged ({exc}). "
                + corrupt_hint(self._cat.path),
                path=self._cat.path,
            ) from exc

    def find_by_hash(self, content_hash: str) -> str | None:
        """The key of a video whose file had this :func:`content_hash`, or None."""
        self._check_open()
        with self._mutex:
            return self._cat.find("content_hash", content_hash)

    def find_by_path(self, path: str | os.PathLike[str]) -> str | None:
        """The key of the latest video added from this path, or None."""
        self._check_open()
        with self._mutex:
            return self._cat.find("path", os.fspath(path))

    def search(
        self,
        vector: ArrayLike,
        k: int = 5,
        where: Where | None = None,
        *,
        query_frames: ArrayLike | None = None,
        query_times: ArrayLike | None = None,
        candidates: int | None = None,
        rerank: Literal["chamfer", "symmetric"] = "chamfer",
        embedder_id: str | None = None,
    ) -> list[Match]:
        """The ``k`` videos most similar to ``vector`` (a signature), best first.

        ``where`` keeps only videos whose metadata has every given key equal to the given
        value (or, if callable, for which ``where(metadata)`` is true); ``k`` results are
        returned whenever ``k`` videos qualify. With ``query_frames`` (n, dim) the top
        ``candidates`` (default ``max(4*k, 20)``) by signature are re-ranked by frame-level
        similarity (see docs/library.md) and each match carries its aligned frame pairs;
        ``query_times`` are the query frames' times in seconds (default 0, 1, 2, ...).
        """
        self._check_open()
        if embedder_id is not None:
            self.check_embedder(embedder_id)
        if not isinstance(k, int) or k < 0:
            raise ConfigError(f"k must be a non-negative integer, not {k!r}")
        if rerank not in ("chamfer", "symmetric"):
            raise ConfigError(f"rerank must be 'chamfer' or 'symmetric', not {rerank!r}")
        q = _unit_rows(vector, self._dim, "query vector", matrix=False)
        qf: NDArray[np.float32] | None = None
        qt: NDArray[np.float64] | None = None
        if query_frames is not None:
            qf = _unit_rows(query_frames, self._dim, "query_frames", matrix=True)
            qt = _times(query_times, len(qf), "query_times")
        if k == 0:
            return []
        with self._mutex:
            allowed = None if where is None else self._allowed(where)
            n = k if qf is None else max(candidates or max(4 * k, 20), k)
            labels, sims = self._backend.search(q, n, allowed)
            rows = self._cat.by_labels(labels.tolist())
            results: list[Match] = []
            for label, sim in zip(labels.tolist(), sims.tolist(), strict=True):
                row = rows.get(label)
                if row is None:  # removed by a writer since this read-only handle loaded
                    continue
                score: float = sim
                aligned: tuple[AlignedPair, ...] = ()
                if qf is not None and qt is not None:
                    stored = self._frames(row)
                    if stored is not None:
                        score, aligned = _rerank(qf, qt, stored, rerank)
                results.append(Match(row.key, score, row.path, row.metadata, sim, aligned))
        results.sort(key=lambda m: (-m.score, -m.signature_score))
        return results[:k]

    def search_tracks(
        self,
        tracks: Sequence[QueryTrack],
        k: int = 5,
        where: Where | None = None,
        *,
        candidates: int | None = None,
        embedder_id: str | None = None,
    ) -> list[Match]:
        """The ``k`` videos that best align in time with any of the query's ``tracks``.

        Each :class:`QueryTrack` is one sequence of query frame vectors: the whole frame, or a
        region of it (its ``box``). Stage one: the first track's signature (the mean of its
        frames) finds its ``candidates`` nearest videos (default ``max(4*k, 20)``), and the
        signatures of every track and of short windows of each add as many more, round-robin
        (see :meth:`_candidates`). Stage two, on those alone: each track is aligned with each
        candidate's stored frames — the best run of consecutive frames matched in order at
        half to double speed, each pair counted by how far it beats what most candidates
        reach for that query frame — and a
        video scores its best track's run (its evidence, the summed gain ``e``, as
        ``score = 1 - exp(-e)``: 0 for no run, near 1 for a long clear one). Each match carries
        the ``span`` that aligned, the
        ``box`` of its track, and per query frame of that track the aligned pair. Videos added
        without frames score 0 (ranked by signature among themselves).
        """
        self._check_open()
        if embedder_id is not None:
            self.check_embedder(embedder_id)
        if not isinstance(k, int) or k < 0:
            raise ConfigError(f"k must be a non-negative integer, not {k!r}")
        if not tracks:
            raise ConfigError("search_tracks needs at least one query track")
        prepared: list[tuple[NDArray[np.float32], NDArray[np.float64], Box | None]] = []
        for i, track in enumerate(tracks):
            if not isinstance(track, QueryTrack):
                raise ConfigError(f"track {i} is a {type(track).__name__}, not a QueryTrack")
            fr = _unit_rows(track.frames, self._dim, f"frames of track {i}", matrix=True)
            tm = _times(track.times, len(fr), f"times of track {i}")
            prepared.append((fr, tm, _box(track.box, i)))
        if k == 0:
            return []
        n = max(candidates or max(4 * k, 20), k)
        with self._mutex:
            allowed = None if where is None else self._allowed(where)
            pool = self._candidates([fr for fr, _, _ in prepared], n, allowed)
            rows = self._cat.by_labels(list(pool))
            found = [(label, row) for label, row in rows.items() if row is not None]
            stored = [(label, row, self._frames(row)) for label, row in found]
        with_frames = [(label, row, f) for label, row, f in stored if f is not None]
        ranked = align_tracks(
            [fr for fr, _, _ in prepared],
            [f[0] for _, _, f in with_frames],
            track_times=[tm for _, tm, _ in prepared],
            video_times=[f[1] for _, _, f in with_frames],
        )
        results: list[Match] = []
        for (label, row, (vframes, vtimes)), result in zip(with_frames, ranked, strict=True):
            qf, qt, box = prepared[result.track]
            run = dict(result.alignment.pairs)
            line = None
            if result.alignment.pairs:
                start, speed = fit_line(result.alignment.pairs, result.sims, qt, vtimes)
                bounds = (float(vtimes[0]), float(vtimes[-1]))
                line = _Line(float(qt[result.alignment.pairs[0][0]]), start, speed, bounds)
            aligned = []
            for i in range(len(qf)):
                j = run.get(i, int(result.best[i]))
                sim = float(qf[i] @ vframes[j])
                t = float(vtimes[j]) if line is None or i not in run else line(float(qt[i]))
                aligned.append(AlignedPair(float(qt[i]), t, sim))
            span = None
            if result.alignment.pairs and line is not None:
                q0 = float(qt[result.alignment.pairs[0][0]])
                q1 = float(qt[result.alignment.pairs[-1][0]])
                span = Span(
                    q0, q1, line(q0), line(q1), result.alignment.similarity,
                    result.alignment.length, line.speed,
                )  # fmt: skip
            score = _confidence(result.alignment.score)
            results.append(
                Match(row.key, score, row.path, row.metadata, pool[label], tuple(aligned), span,
                      box if span is not None else None)
            )  # fmt: skip
        for label, row, f in stored:
            if f is None:
                results.append(Match(row.key, 0.0, row.path, row.metadata, pool[label]))
        results.sort(key=lambda m: (-m.score, -m.signature_score))
        return results[:k]

    def _candidates(
        self, tracks: Sequence[NDArray[np.float32]], n: int, allowed: Set[int] | None
    ) -> dict[int, float]:
        """Stage one of :meth:`search_tracks`: at most ``2 * n`` videos (label -> best
        signature cosine) worth aligning.

        The whole first track's signature seats its ``n`` nearest videos. A short excerpt
        barely moves the mean of a long query, so every track's windows of
        :data:`WINDOW_FRAMES` frames also search by their own mean, and the remaining seats go
        round-robin: each list's nearest video first, then each one's second, and so on.
        """
        lists: list[tuple[list[int], list[float]]] = []
        for t, frames in enumerate(tracks):
            means = [frames.mean(axis=0)]
            if len(frames) > 2 * WINDOW_FRAMES:
                step = WINDOW_FRAMES // 2
                for start in range(0, len(frames) - WINDOW_FRAMES + 1, step):
                    means.append(frames[start : start + WINDOW_FRAMES].mean(axis=0))
            for w, mean in enumerate(means):
                sig = _unit_rows(mean, self._dim, "track signature", matrix=False)
                size = n if (t, w) == (0, 0) else min(n, WINDOW_CANDIDATES)
                found, sims = self._backend.search(sig, size, allowed)
                lists.append((found.tolist(), sims.tolist()))
        pool: dict[int, float] = {}
        first_labels, first_sims = lists[0]
        for label, sim in zip(first_labels, first_sims, strict=True):
            pool[label] = sim
        cap = 2 * n
        rank = 0
        while len(pool) < cap and any(rank < len(ls) for ls, _ in lists[1:]):
            for ls, ss in lists[1:]:
                if rank < len(ls) and len(pool) < cap:
                    pool[ls[rank]] = max(ss[rank], pool.get(ls[rank], -2.0))
            rank += 1
        for ls, ss in lists:  # the best cosine any list saw, for signature_score
            for label, sim in zip(ls, ss, strict=True):
                if label in pool:
                    pool[label] = max(sim, pool[label])
        return pool

    def _allowed(self, where: Where) -> Set[int]:
        match = _matcher(where)
        if self._md_cache is None:
            self._md_cache = self._cat.metadata()
        return {label for label, md in self._md_cache.items() if match(md)}

    # -- maintenance -------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the in-memory vectors up to date with the catalogue (for read-only handles
        whose library another process is writing)."""
        self._check_open()
        with self._mutex:
            labels = set(self._cat.labels())
            live = set(self._backend.labels())
            self._backend.remove(live - labels)
            new = labels - live
            for lab, vec in self._cat.signatures(self._dim, labels=new):
                self._backend.add(lab, self._checked(vec))
            self._md_cache = None

    def flush(self) -> None:
        """Save the hnswlib index file if it changed (``close`` does this too).

        Committed adds are durable without it — the file is only a cache — but a fresh file
        spares the next open from replaying the changes since the last save.
        """
        self._check_writable()
        with self._mutex:
            if self._cat.in_transaction:
                raise LibraryError("flush() cannot run inside a transaction", path=self._directory)
            backend = self._backend
            if not isinstance(backend, HnswBackend) or not backend.dirty:
                return
            path = self._directory / INDEX_NAME
            backend.save(path)
            size, digest = file_digest(path)
            record = {"size": size, "digest": digest}
            with self._cat.transaction():
                self._cat.write_meta(index_file=record)
            self._meta["index_file"] = record

    def check(self) -> None:
        """Verify the whole library; raise :class:`~avajams.LibraryCorruptError` listing what
        is wrong. Reads every row: use it after a crash or before a backup, not per query."""
        self._check_open()
        problems: list[str] = []
        with self._mutex:
            problems += self._cat.integrity_problems()
            labels = self._cat.labels()
            for row in self._cat.rows():
                try:
                    sig = self._cat.get(row.key, self._dim).signature  # type: ignore[union-attr]
                    stored = self._cat.frames(row.label, self._dim)
                except ValueError as exc:
                    problems.append(f"video {row.key!r}: {exc}")
                    continue
                assert sig is not None
                if not np.isfinite(sig).all() or abs(float(np.linalg.norm(sig)) - 1) > 1e-3:
                    problems.append(f"video {row.key!r}: signature is not a finite unit vector")
                n = 0 if stored is None else len(stored[1])
                if n != row.num_frames:
                    problems.append(
                        f"video {row.key!r}: {n} frames stored, {row.num_frames} recorded"
                    )
                if stored is not None and not (
                    np.isfinite(stored[0]).all() and np.isfinite(stored[1]).all()
                ):
                    problems.append(f"video {row.key!r}: non-finite frame vectors or times")
            live = set(self._backend.labels())
            if live != set(labels):
                problems.append(
                    f"the {self._backend.name} index holds {len(live)} vectors, the catalogue "
                    f"{len(labels)} (call refresh() if another process is writing)"
                )
            next_label = int(self._cat.read_meta()["next_label"])
            if labels and max(labels) >= next_label:
                problems.append(f"label counter {next_label} is behind label {max(labels)}")
        if problems:
            raise LibraryCorruptError(
                f"the library {self._directory} failed its check: "
                + "; ".join(problems[:10])
                + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
                + ". "
                + corrupt_hint(self._cat.path),
                path=self._directory,
            )

    def close(self) -> None:
        """Save the index file if needed and release the library; idempotent."""
        with self._mutex:
            if self._closed:
                return
            try:
                if self._lock is not None and not self._cat.in_transaction:
                    self.flush()
            finally:
                self._closed = True
                self._finalizer()
                self._lock = None

    def __enter__(self) -> VideoIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _release(catalogue: Catalogue, lock: _WriteLock | None) -> None:
    catalogue.close()
    if lock is not None:
        lock.release()


def _check_embedder(stored: str, given: str, directory: Path) -> None:
    if stored != given:
        raise EmbedderMismatchError(
            f"the library {directory} was built with embedder {stored!r}, but {given!r} is in "
            f"use; vectors from different embedders are not comparable. Use embedder "
            f"{stored!r}, or rebuild the library with {given!r} (index the videos again into "
            "a new directory)",
            path=directory,
        )


def _rerank(
    qf: NDArray[np.float32],
    qt: NDArray[np.float64],
    stored: tuple[NDArray[np.float32], NDArray[np.float64]],
    method: Literal["chamfer", "symmetric"],
) -> tuple[float, tuple[AlignedPair, ...]]:
    frames, times = stored
    score, best, best_sim = rerank_scores(qf, frames, symmetric=method == "symmetric")
    aligned = tuple(
        AlignedPair(float(qt[i]), float(times[j]), float(s))
        for i, (j, s) in enumerate(zip(best.tolist(), best_sim.tolist(), strict=True))
    )
    return score, aligned


def _confidence(evidence: float) -> float:
    """An alignment's evidence (summed gain, >= 0) as a score in [0, 1): ``1 - exp(-e)``.

    The same order as the evidence; 0 when nothing aligned, about 0.6 for one second's worth of
    clear gain, above 0.95 for a long stretch of the same pictures.
    """
    return float(1.0 - np.exp(-max(0.0, evidence)))


class _Line:
    """music time = ``start + speed * (query time - origin)``, read off an aligned run, kept
    within the video's sampled times ``bounds``."""

    def __init__(
        self, origin: float, start: float, speed: float, bounds: tuple[float, float]
    ) -> None:
        self.origin, self.start, self.speed, self.bounds = origin, start, speed, bounds

    def __call__(self, query_time: float) -> float:
        t = self.start + self.speed * (query_time - self.origin)
        return round(min(max(t, self.bounds[0]), self.bounds[1]), 3)


def _box(box: object, i: int) -> Box | None:
    """A track's box, checked: four finite fractions with x0 < x1 and y0 < y1."""
    if box is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in box)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"box of track {i} must be (x0, y0, x1, y1), not {box!r}") from exc
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ConfigError(
            f"box of track {i} is {box!r}; it must be fractions of the frame with "
            "0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1"
        )
    return (x0, y0, x1, y1)


def _entry(row: Row, frames: tuple[NDArray[np.float32], NDArray[np.float64]] | None) -> Entry:
    return Entry(
        key=row.key,
        path=row.path,
        duration=row.duration,
        content_hash=row.content_hash,
        num_frames=row.num_frames,
        added_at=datetime.fromtimestamp(row.added_at, tz=timezone.utc),
        metadata=row.metadata,
        signature=row.signature,
        frames=None if frames is None else frames[0],
        times=None if frames is None else frames[1],
    )
