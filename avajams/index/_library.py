"""VideoIndex: a library of videos on disk — SQLite catalogue plus a derived vector index."""

from __future__ import annotations

import errno
import hashlib
import json
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
    VideoError,
)
from avajams.index._align import fit_line
from avajams.index._backends import (
    HNSW_INSTALL,
    ExactBackend,
    HnswBackend,
    HnswParams,
    VectorBackend,
    file_digest,
    hnswlib_available,
)
from avajams.index._catalogue import Catalogue, Row, corrupt_hint, translate
from avajams.index._rerank import align_tracks, rerank_scores
from avajams.index._types import AlignedPair, Box, Entry, Match, QueryTrack, Span
from avajams.labels import Label, VideoLabels

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
    from avajams.media import check_mode, check_path

    p = Path(path)
    h = hashlib.blake2b(digest_size=32)
    try:
        # O_NONBLOCK: opening a FIFO never waits for a writer; the mode is then checked on
        # the open descriptor itself, so a path swapped for a FIFO or device is never read.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError:
        check_path(p)  # the typed error for a missing path, a loop, a directory ...
        raise
    try:
        info = os.fstat(fd)
        check_mode(info.st_mode, info.st_size, os.fspath(p))
    except BaseException:
        os.close(fd)
        raise
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise VideoError(
            f"{p}: reading it failed ({exc.strerror or exc}); check the file and its disk",
            path=p,
        ) from exc
    finally:
        os.close(fd)
    return h.hexdigest()


class _WriteLock:
    """An exclusive, non-blocking advisory lock on a file; released by the OS if we die."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as exc:
            raise _lock_error(path, exc) from exc
        try:
            self._lock(self._fd)
        except OSError as exc:
            try:
                text = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            except OSError:
                text = ""
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
        try:  # who holds the lock, for the message above; the lock works without it
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            logger.debug("could not record the lock holder in %s: %s", path, exc)

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


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _lock_error(path: Path, exc: OSError) -> LibraryError:
    """The typed error for a write lock file that cannot be opened."""
    directory = path.parent
    reason = exc.strerror or str(exc)
    if isinstance(exc, IsADirectoryError) or exc.errno == errno.ELOOP:
        what = "a directory" if isinstance(exc, IsADirectoryError) else "a symbolic link"
        return LibraryCorruptError(
            f"the library's lock file {path} is {what}; remove it (no avajams process "
            "uses it that way) and retry",
            path=directory,
        )
    if exc.errno == errno.EROFS:
        return LibraryError(
            f"the library {directory} is on a read-only file system; matching works "
            "(it opens read-only), indexing needs a writable directory",
            path=directory,
        )
    if exc.errno == errno.ENOSPC:
        return LibraryError(
            f"no space left on the device of {directory}; free some space and retry",
            path=directory,
        )
    return LibraryError(
        f"cannot open the library's lock file {path} for writing ({reason}); check the "
        "permissions of the directory and of the file (and `lsattr` for an immutable flag)",
        path=directory,
    )


def _check_hnswlib(backend: str) -> None:
    if backend == "hnsw" and not hnswlib_available():
        raise ConfigError(
            f"backend 'hnsw' needs hnswlib, which is not installed: {HNSW_INSTALL}; or use "
            "backend 'auto', which searches exactly without it"
        )


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


def _is_text(value: str) -> bool:
    """Whether SQLite can store ``value``: no lone surrogates (undecodable file-name bytes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(value: str, what: str) -> None:
    if not _is_text(value):
        shown = value.encode("utf-8", "backslashreplace").decode()
        raise ConfigError(
            f"{what} {shown!r} is not valid UTF-8 text (a file name with undecodable bytes?); "
            "rename the file or pass a key that is text"
        )


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
        self._unusable: set[int] = set()  # labels whose stored vectors are not finite
        if lock is not None:  # temp files of saves cut short by a crash; no one else saves
            for stale in directory.glob(f".{INDEX_NAME}.*.tmp"):
                try:
                    stale.unlink(missing_ok=True)
                except OSError as exc:
                    logger.debug("could not remove %s: %s", stale, exc)
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
        _check_hnswlib(backend)
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
            cat = Catalogue(path, readonly=False)
            cat.migrate()
            return cls(d, cat, lock, meta)
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
        if backend is not None:
            _check_hnswlib(backend)
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
            meta = cat.read_meta()
            missing = {"format_version", "dim", "embedder_id", "backend", "hnsw"} - meta.keys()
            if missing:
                raise LibraryCorruptError(
                    f"the catalogue {path} lacks {sorted(missing)} — it is not a complete "
                    f"avajams library. {corrupt_hint(path)}",
                    path=path,
                )
            _check_meta(meta, cat)
            if not readonly:
                cat.check_writable()
            if meta["format_version"] > FORMAT_VERSION:
                raise LibraryError(
                    f"the library {d} has format {meta['format_version']}, newer than this "
                    f"avajams understands ({FORMAT_VERSION}); upgrade avajams",
                    path=d,
                )
            if embedder_id is not None:
                _check_embedder(meta["embedder_id"], embedder_id, d)
            cat.migrate()  # adds the label tables to a library made before them
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
        choice = self._backend_choice
        if choice == "exact" or (choice == "auto" and n <= AUTO_EXACT_LIMIT):
            return "exact"
        if hnswlib_available():
            return "hnsw"
        # exact search gives the same answers, only slower: say when the graph would pay off
        logger.warning(
            "the library in %s holds %d videos%s; without hnswlib each search scores all of "
            "them (about %d ms a query at this size, growing with the library) where the "
            "hnswlib graph takes under a millisecond: %s",
            self._directory,
            n,
            " and is set to the hnsw backend" if choice == "hnsw" else "",
            max(1, round(n / 1000)),
            HNSW_INSTALL,
        )
        return "exact"

    def _load_backend(self) -> VectorBackend:
        labels = set(self._cat.labels())
        if self._resolve_backend(len(labels)) == "exact":
            exact = ExactBackend(self._dim)
            for lab, vec in self._cat.signatures(self._dim):
                exact.add(*self._finite(lab, vec))
            return exact
        backend = self._load_hnsw_file(labels - self._unusable)
        if backend is None:
            backend = HnswBackend(self._dim, self._hnsw_params, capacity=len(labels) + 1024)
            for lab, vec in self._cat.signatures(self._dim):
                backend.add(*self._finite(lab, vec))
        return backend

    def _finite(
        self, labels: NDArray[np.int64], vectors: NDArray[np.float32]
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The rows of a batch whose signature is finite; the others are skipped by search
        (and reported by :meth:`check`), never handed to the vector backend."""
        ok = np.isfinite(vectors).all(axis=1)
        if not ok.all():
            bad = [int(x) for x in labels[~ok]]
            self._unusable.update(bad)
            keys = self._cat.labels()
            logger.warning(
                "the library %s holds %d video(s) with a NaN or infinite signature (%s); search "
                "skips them: VideoIndex.check() reports them, remove and re-index them",
                self._directory,
                len(bad),
                ", ".join(repr(keys.get(x, x)) for x in bad[:5]),
            )
        return labels[ok], vectors[ok]

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
        except OSError as exc:
            logger.warning(
                "index file %s cannot be read (%s); rebuilding it from the catalogue %s",
                path,
                exc.strerror or exc,
                later,
            )
            return None
        problem = None
        try:
            if not path.is_file():
                problem = "not a regular file"
            elif size != rec["size"]:
                problem = f"{size} bytes, expected {rec['size']}"
            elif file_digest(path)[1] != rec["digest"]:
                problem = "checksum mismatch"
        except OSError as exc:
            problem = f"unreadable: {exc.strerror or exc}"
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
            labs, vecs = self._finite(
                np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
            )
        backend.reconcile(in_file, labels - self._unusable, (labs, vecs))
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

    def _repr_html_(self) -> str:
        """The notebook display: size, embedder and first videos."""
        from avajams.display import library_html

        return library_html(self)

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
                    stored = self._cat.read_meta().get("next_label")
                    self._meta["next_label"] = stored if isinstance(stored, int) else 0
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
        labels: VideoLabels | None = None,
    ) -> None:
        """Add a video, or replace the one stored under ``key``.

        ``signature`` (dim,) and ``frames`` (n, dim) are normalised to unit length; frames are
        stored as float16. ``times`` are the frames' times in seconds (default 0, 1, 2, ...).
        ``metadata`` must be JSON-serialisable. ``embedder_id``, when given, must match.
        ``labels`` (from :class:`avajams.Labeller`) are stored with it, in the same commit.
        """
        self._check_writable()
        if embedder_id is not None:
            self.check_embedder(embedder_id)
        if not isinstance(key, str) or not key:
            raise ConfigError(f"key must be a non-empty string, not {key!r}")
        _storable(key, "key")
        if path is not None:
            _storable(os.fspath(path), "path")
        if content_hash is not None:
            _storable(content_hash, "content_hash")
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
            # max(): a counter edited behind the labels in use would collide with one
            highest = self._cat.max_label()
            label = max(int(self._meta["next_label"]), 0 if highest is None else highest + 1)
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
            if labels is not None:
                self._put_labels(label, key, labels)
            if old is not None:
                self._pending.append(("remove", old, None, None))
            self._pending.append(("add", label, sig, md))

    def set_labels(self, key: str, labels: VideoLabels) -> None:
        """Store (or replace) the labels of the video under ``key`` (KeyError if absent)."""
        self._check_writable()
        with self._mutex, self.transaction():
            row = self._cat.get(key)
            if row is None:
                raise KeyError(key)
            self._put_labels(row.label, key, labels)

    def _put_labels(self, label: int, key: str, labels: VideoLabels) -> None:
        """Write ``labels`` of row ``label`` (inside a transaction), growing the name list."""
        from avajams.index._catalogue import StoredLabels

        stored_by = self._meta.get("labeller")
        if stored_by is not None and stored_by != labels.labeller:
            raise LibraryError(
                f"the library {self._directory} holds labels made by {stored_by!r}, not "
                f"{labels.labeller!r}; labels of different models do not mix — label it with "
                f"{stored_by!r}, or index into a new library",
                path=self._directory,
            )
        n = len(labels.frames)
        if n == 0 or len(labels.times) != n:
            raise VectorError(f"labels of {key!r} need one entry per frame, at least one frame")
        if len({len(f) for f in labels.frames}) != 1:
            raise VectorError(f"labels of {key!r} have a varying number of labels per frame")
        names: list[str] = list(self._meta.get("label_names") or [])
        index = {name: i for i, name in enumerate(names)}
        for frame in labels.frames:
            for item in frame:
                if item.name not in index:
                    index[item.name] = len(names)
                    names.append(item.name)
        classes = np.array([[index[x.name] for x in f] for f in labels.frames], dtype=np.int64)
        probs = np.array([[x.probability for x in f] for f in labels.frames], dtype=np.float32)
        if not (np.isfinite(probs).all() and np.isfinite(labels.times).all()):
            raise VectorError(f"labels of {key!r} contain NaN or infinite values")
        stored = StoredLabels(
            [(x.name, float(x.probability)) for x in labels.video],
            np.asarray(labels.times, dtype=np.float64),
            classes,
            probs,
        )
        self._cat.put_labels(label, stored)
        if stored_by is None or len(names) != len(self._meta.get("label_names") or []):
            self._cat.write_meta(labeller=labels.labeller, label_names=names)
            self._meta["labeller"] = labels.labeller
            self._meta["label_names"] = names

    def labels(self, key: str) -> VideoLabels | None:
        """The stored labels of the video under ``key`` (None when it has none; KeyError if
        there is no such video)."""
        self._check_open()
        with self._mutex:
            row = self._cat.get(key)
            if row is None:
                raise KeyError(key)
            try:
                stored = self._cat.get_labels(row.label)
            except ValueError as exc:
                raise LibraryCorruptError(
                    f"the stored labels of video {key!r} are damaged ({exc}). "
                    + corrupt_hint(self._cat.path),
                    path=self._cat.path,
                ) from exc
            names = list(self._meta.get("label_names") or [])
            labeller = str(self._meta.get("labeller") or "")
        if stored is None:
            return None
        if stored.classes.size and int(stored.classes.max()) >= len(names):
            raise LibraryCorruptError(
                f"the stored labels of video {key!r} name classes the library does not list. "
                + corrupt_hint(self._cat.path),
                path=self._cat.path,
            )
        frames = tuple(
            tuple(Label(names[c], float(p)) for c, p in zip(cs, ps, strict=True))
            for cs, ps in zip(stored.classes.tolist(), stored.probabilities.tolist(), strict=True)
        )
        return VideoLabels(
            labeller=labeller,
            video=tuple(Label(n, p) for n, p in stored.video),
            times=stored.times,
            frames=frames,
        )

    def find_by_label(self, name: str, *, min_probability: float = 0.0) -> list[tuple[str, float]]:
        """``(key, probability)`` of the videos with label ``name`` among their top classes,
        most probable first (ties by key)."""
        self._check_open()
        with self._mutex:
            found = self._cat.with_label(name, min_probability)
            rows = self._cat.by_labels(list(found))
        pairs = [(rows[label].key, p) for label, p in found.items() if label in rows]
        return sorted(pairs, key=lambda item: (-item[1], item[0]))

    def label_names(self) -> list[str]:
        """Every label some video of the library has among its top classes, commonest first."""
        self._check_open()
        with self._mutex:
            return self._cat.label_names()

    def unlabelled(self) -> list[str]:
        """Keys of the videos that have no labels yet (e.g. indexed before labels existed)."""
        self._check_open()
        with self._mutex:
            return self._cat.unlabelled()

    @property
    def labeller(self) -> str | None:
        """The id of the model whose labels this library holds (None: no labels yet)."""
        value = self._meta.get("labeller")
        return None if value is None else str(value)

    def remove(self, key: str) -> bool:
        """Remove the video stored under ``key``; returns whether there was one."""
        self._check_writable()
        if not isinstance(key, str) or not _is_text(key):
            return False
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
        if not isinstance(key, str) or not _is_text(key):
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
        if not isinstance(key, str) or not _is_text(key):
            raise KeyError(key)
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
        if not _is_text(content_hash):
            return None
        with self._mutex:
            return self._cat.find("content_hash", content_hash)

    def find_by_path(self, path: str | os.PathLike[str]) -> str | None:
        """The key of the latest video added from this path, or None."""
        self._check_open()
        if not _is_text(os.fspath(path)):
            return None
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
        label: str | Sequence[str] | None = None,
    ) -> list[Match]:
        """The ``k`` videos most similar to ``vector`` (a signature), best first.

        ``where`` keeps only videos whose metadata has every given key equal to the given
        value (or, if callable, for which ``where(metadata)`` is true); ``label`` keeps only
        videos that have this ImageNet label (every one of these labels) among their top
        classes; ``k`` results are returned whenever ``k`` videos qualify. With
        ``query_frames`` (n, dim) the top ``candidates`` (default ``max(4*k, 20)``) by
        signature are re-ranked by frame-level similarity (see docs/library.md) and each match
        carries its aligned frame pairs; ``query_times`` are the query frames' times in seconds
        (default 0, 1, 2, ...). Each match carries its stored labels.
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
            if label is not None:
                names = [label] if isinstance(label, str) else list(label)
                for name in names:
                    having = set(self._cat.with_label(name))
                    allowed = having if allowed is None else set(allowed) & having
            n = k if qf is None else max(candidates or max(4 * k, 20), k)
            found, sims = self._backend.search(q, n, allowed)
            rows = self._cat.by_labels(found.tolist())
            tags = self._cat.video_labels(found.tolist())
            results: list[Match] = []
            for row_label, sim in zip(found.tolist(), sims.tolist(), strict=True):
                row = rows.get(row_label)
                if row is None:  # removed by a writer since this read-only handle loaded
                    continue
                score: float = sim
                aligned: tuple[AlignedPair, ...] = ()
                if qf is not None and qt is not None:
                    stored = self._frames(row)
                    if stored is not None and not self._usable_frames(row, stored):
                        continue
                    if stored is not None:
                        score, aligned = _rerank(qf, qt, stored, rerank)
                if not math.isfinite(score):  # never hand NaN or inf to a caller
                    continue
                video_labels = tuple(Label(n, p) for n, p in tags.get(row_label, ()))
                results.append(
                    Match(row.key, score, row.path, row.metadata, sim, aligned, video_labels)
                )
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
        label: str | Sequence[str] | None = None,
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
        without frames score 0 (ranked by signature among themselves). ``where`` and ``label``
        filter as in :meth:`search`.
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
            if label is not None:
                for name in [label] if isinstance(label, str) else list(label):
                    having = set(self._cat.with_label(name))
                    allowed = having if allowed is None else set(allowed) & having
            pool = self._candidates([fr for fr, _, _ in prepared], n, allowed)
            rows = self._cat.by_labels(list(pool))
            tags = self._cat.video_labels(list(pool))
            found = [(lab, row) for lab, row in rows.items() if row is not None]
            stored = [(lab, row, self._frames(row)) for lab, row in found]
            stored = [(lb, r, f) for lb, r, f in stored if f is None or self._usable_frames(r, f)]
        with_frames = [(lab, row, f) for lab, row, f in stored if f is not None]
        ranked = align_tracks(
            [fr for fr, _, _ in prepared],
            [f[0] for _, _, f in with_frames],
            track_times=[tm for _, tm, _ in prepared],
            video_times=[f[1] for _, _, f in with_frames],
        )
        results: list[Match] = []
        for (lab, row, (vframes, vtimes)), result in zip(with_frames, ranked, strict=True):
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
            video_labels = tuple(Label(n, p) for n, p in tags.get(lab, ()))
            results.append(
                Match(row.key, score, row.path, row.metadata, pool[lab], tuple(aligned),
                      video_labels, span=span, box=box if span is not None else None)
            )  # fmt: skip
        for lab, row, f in stored:
            if f is None:
                video_labels = tuple(Label(n, p) for n, p in tags.get(lab, ()))
                results.append(
                    Match(row.key, 0.0, row.path, row.metadata, pool[lab], labels=video_labels)
                )
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

    def _usable_frames(
        self, row: Row, stored: tuple[NDArray[np.float32], NDArray[np.float64]]
    ) -> bool:
        """Whether a video's stored frames are finite; warns (once) about one that is not."""
        if row.label in self._unusable:
            return False
        if np.isfinite(stored[0]).all() and np.isfinite(stored[1]).all():
            return True
        self._unusable.add(row.label)
        logger.warning(
            "video %r in the library %s has NaN or infinite frame vectors; search skips it "
            "(VideoIndex.check() reports it: remove it and index it again)",
            row.key,
            self._directory,
        )
        return False

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
            new = labels - live - self._unusable
            for lab, vec in self._cat.signatures(self._dim, labels=new):
                self._backend.add(*self._finite(lab, vec))
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
            try:
                size, digest = backend.save(path)
            except OSError as exc:
                raise LibraryError(
                    f"could not save the index file {path}: {exc.strerror or exc}. The "
                    "library's data is safe in the catalogue; free some disk space (the index "
                    "is brought up to date on the next open)",
                    path=path,
                ) from exc
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
            for key in sorted(labels.values()):
                try:
                    row = self._cat.get(key, self._dim)
                    assert row is not None
                    sig = row.signature
                    stored = self._cat.frames(row.label, self._dim)
                except LibraryCorruptError as exc:
                    problems.append(f"video {key!r}: {exc.message.split('. ')[0]}")
                    continue
                except ValueError as exc:
                    problems.append(f"video {key!r}: {exc}")
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
                try:
                    tags = self._cat.get_labels(row.label)
                except ValueError as exc:
                    problems.append(f"video {row.key!r}: {exc}")
                    continue
                names = self._meta.get("label_names") or []
                if tags is not None and tags.classes.size and tags.classes.max() >= len(names):
                    problems.append(f"video {row.key!r}: labels name unknown classes")
            live = set(self._backend.labels())
            if live != set(labels) - self._unusable:
                problems.append(
                    f"the {self._backend.name} index holds {len(live)} vectors, the catalogue "
                    f"{len(labels)} (call refresh() if another process is writing)"
                )
            next_label = self._cat.read_meta().get("next_label")
            if not isinstance(next_label, int):
                problems.append(f"label counter {next_label!r} is not a number")
            elif labels and max(labels) >= next_label:
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
            except LibraryError as exc:  # the index file is a cache: nothing is lost
                logger.warning("%s", exc)
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


def _check_meta(meta: dict[str, Any], cat: Catalogue) -> None:
    """Raise LibraryCorruptError naming the first ``meta`` entry that is not what the format
    promises, with the command that repairs it; lenient about the entries that are caches."""
    path = cat.path

    def count(value: Any, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    def bad(name: str, expected: str, repair: Any) -> LibraryCorruptError:
        value = json.dumps(repair).replace("'", "''")
        return LibraryCorruptError(
            f"the catalogue {path} has a damaged {name!r} entry in its meta table "
            f"({json.dumps(meta.get(name))}, expected {expected}). Repair it with: sqlite3 "
            f"'{path}' \"UPDATE meta SET value = '{value}' WHERE name = '{name}'\" — or, "
            f"if unsure: {corrupt_hint(path)}",
            path=path,
        )

    if not count(meta["format_version"], 1):
        raise bad("format_version", "a positive integer", FORMAT_VERSION)
    if not count(meta["dim"], 1):
        raise bad("dim", "a positive integer", _stored_dim(cat) or "<dimension>")
    if not isinstance(meta["embedder_id"], str) or not meta["embedder_id"]:
        raise bad("embedder_id", "the name of the embedder that built it", "<embedder id>")
    if meta["backend"] not in ("auto", "exact", "hnsw"):
        raise bad("backend", '"auto", "exact" or "hnsw"', "auto")
    hnsw = meta["hnsw"]
    if not (
        isinstance(hnsw, dict)
        and all(count(hnsw.get(k), 1) for k in ("M", "ef_construction", "ef"))
    ):
        raise bad("hnsw", "the graph parameters M, ef_construction and ef", HnswParams().to_json())
    # The label counter is repaired, not refused: labels are never reused, so moving it past
    # the highest label in use is always safe.
    highest = cat.max_label()
    floor = 0 if highest is None else highest + 1
    if not count(meta.get("next_label"), floor):
        if "next_label" in meta:
            logger.warning(
                "the catalogue %s has a label counter %s behind its labels; using %d",
                path,
                json.dumps(meta["next_label"]),
                floor,
            )
        meta["next_label"] = floor
    record = meta.get("index_file")
    if record is not None and not (
        isinstance(record, dict)
        and count(record.get("size"), 0)
        and isinstance(record.get("digest"), str)
    ):
        logger.warning(
            "the catalogue %s has a damaged index-file record %s; the index file is rebuilt",
            path,
            json.dumps(record),
        )
        meta["index_file"] = None
    if not isinstance(meta.get("sampler_settings") or {}, dict):
        logger.warning("the catalogue %s has damaged sampler settings; ignoring them", path)
        meta["sampler_settings"] = {}


def _stored_dim(cat: Catalogue) -> int | None:
    """The dimension the stored signatures have, to suggest when ``dim`` is damaged."""
    try:
        with translate(cat.path):
            row = cat.conn.execute("SELECT length(signature) FROM videos LIMIT 1").fetchone()
    except LibraryError:
        return None
    return None if row is None or not row[0] else int(row[0]) // 4


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
