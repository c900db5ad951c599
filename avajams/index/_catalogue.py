"""The SQLite catalogue: the library's source of truth.

One row per video (key, label, path, duration, content hash, frame count, time added, metadata
JSON, float32 signature) plus its per-frame matrix (float16) and timestamps (float64) in a side
table, and a ``meta`` table describing the library. WAL journal, ``synchronous=FULL``: a
committed add survives a crash of the process *and* of the machine, which costs one fsync per
commit — nothing next to embedding the video that produced it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from avajams.errors import (
    LibraryCorruptError,
    LibraryError,
    LibraryLockedError,
)

SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE videos (
    key TEXT PRIMARY KEY,
    label INTEGER NOT NULL UNIQUE,
    path TEXT,
    duration REAL,
    content_hash TEXT,
    num_frames INTEGER NOT NULL,
    added_at REAL NOT NULL,
    metadata TEXT NOT NULL,
    signature BLOB NOT NULL
);
CREATE INDEX videos_content_hash ON videos(content_hash);
CREATE INDEX videos_path ON videos(path);
CREATE TABLE frames (label INTEGER PRIMARY KEY, times BLOB NOT NULL, vectors BLOB NOT NULL);
"""

logger = logging.getLogger(__name__)

#: Labels (added in avajams 0.2): created in new catalogues, and by the first writable open of
#: an older one; a read-only handle on a library that has not got them reads "no labels".
#: ``video_labels`` holds each video's top classes (one row each, searchable by name);
#: ``frame_labels`` each sampled frame's top classes as indices into the labeller's names
#: (kept in the ``labeller`` meta entry) with their probabilities.
LABELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS video_labels (
    label INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    name TEXT NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY (label, rank)
);
CREATE INDEX IF NOT EXISTS video_labels_name ON video_labels(name, probability);
CREATE TABLE IF NOT EXISTS frame_labels (
    label INTEGER PRIMARY KEY,
    times BLOB NOT NULL,
    classes BLOB NOT NULL,
    probabilities BLOB NOT NULL
);
"""

_SIG = np.dtype("<f4")
_FRAME = np.dtype("<f2")
_TIME = np.dtype("<f8")
_CLASS = np.dtype("<u2")
_PROB = np.dtype("<f4")


@dataclass(frozen=True)
class StoredLabels:
    """One video's labels as stored: its top (name, probability) pairs and per-frame classes."""

    video: list[tuple[str, float]]
    times: NDArray[np.float64]
    classes: NDArray[np.int64]  # (N, k) indices into the labeller's names
    probabilities: NDArray[np.float32]  # (N, k)


def corrupt_hint(path: Path) -> str:
    return (
        f"The catalogue {path} holds the library's data and cannot be rebuilt from the index "
        "file. Restore it from a backup, or salvage what is readable with "
        f"`sqlite3 {path.name} .recover | sqlite3 recovered.sqlite` and put recovered.sqlite "
        f"in its place (the index file is rebuilt from it on the next open)."
    )


@contextmanager
def translate(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors (and the OSErrors around them) into the library's typed errors."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise LibraryLockedError(
                f"the catalogue {path} is busy ({text}); another process holds it — retry "
                "when it is done",
                path=path,
            ) from exc
        if any(
            s in text for s in ("malformed", "not a database", "no such table", "no such column")
        ):
            raise LibraryCorruptError(
                f"the catalogue {path} is damaged ({text}). {corrupt_hint(path)}", path=path
            ) from exc
        raise LibraryError(
            f"the catalogue {path} could not be used: {text}{_hint(text, path)}", path=path
        ) from exc
    except sqlite3.IntegrityError as exc:
        raise LibraryCorruptError(
            f"the catalogue {path} contradicts itself ({exc}); VideoIndex.check() lists what "
            f"is wrong. {corrupt_hint(path)}",
            path=path,
        ) from exc
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.ProgrammingError):
            raise
        raise LibraryCorruptError(
            f"the catalogue {path} is damaged ({exc}). {corrupt_hint(path)}", path=path
        ) from exc
    except json.JSONDecodeError as exc:
        raise LibraryCorruptError(
            f"the catalogue {path} holds a value that is not JSON ({exc}). {corrupt_hint(path)}",
            path=path,
        ) from exc
    except OSError as exc:
        raise LibraryError(
            f"the catalogue {path} could not be used: {exc.strerror or exc}"
            f"{_hint(exc.strerror or '')}",
            path=path,
        ) from exc


def _hint(text: str, path: Path | None = None) -> str:
    """What to do about an SQLite or OS error message (about a file at ``path``)."""
    text = text.lower()
    if path is not None and ("i/o" in text or "unable to open" in text) and _full(path):
        text = "full"
    if "readonly" in text or "read-only" in text:
        return (
            "; the library is read-only here (a read-only mount, file permissions or an "
            "immutable file): matching still works, indexing needs a writable library"
        )
    if "full" in text or "no space" in text:
        return "; the disk is full: free some space and retry (nothing was lost)"
    if "unable to open" in text or "permission" in text:
        return "; check that the library directory and its files are readable and writable"
    if "i/o" in text:
        return "; the disk reported an error: check it, then run VideoIndex.check()"
    return ""


def _full(path: Path) -> bool:
    """Whether the file system holding ``path`` has (almost) no space left."""
    import shutil

    try:
        return shutil.disk_usage(path.parent).free < 1 << 16
    except OSError:
        return False


def _writable_directory(directory: Path) -> bool:
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return False
    except (OSError, AttributeError):  # no statvfs (Windows)
        pass
    return os.access(directory, os.W_OK)


@dataclass(frozen=True)
class Row:
    key: str
    label: int
    path: str | None
    duration: float | None
    content_hash: str | None
    num_frames: int
    added_at: float
    metadata: dict[str, Any]
    signature: NDArray[np.float32] | None


def sig_to_blob(v: NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(v, dtype=_SIG).tobytes()


def blob_to_sig(blob: bytes, dim: int, where: str) -> NDArray[np.float32]:
    if len(blob) != dim * _SIG.itemsize:
        raise ValueError(f"{where}: signature has {len(blob)} bytes, expected {dim * 4}")
    return np.frombuffer(blob, dtype=_SIG).astype(np.float32)


class Catalogue:
    """Thin typed wrapper over the SQLite connection; callers serialise access."""

    def __init__(self, path: Path, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._depth = 0
        with translate(path):
            if readonly:
                self.conn = self._connect_readonly(path)
            else:
                self.conn = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=10.0
                )
            if not readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        self.has_labels = False

    def migrate(self) -> None:
        """Bring an older catalogue up to this schema (adds the label tables); idempotent."""
        with translate(self.path):
            if not self.readonly and not self._labels_tables_exist():
                self.conn.executescript(LABELS_SCHEMA)
            self.has_labels = self._labels_tables_exist()

    def _labels_tables_exist(self) -> bool:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('video_labels', 'frame_labels')"
        ).fetchall()
        return len(rows) == 2

    @staticmethod
    def _connect_readonly(path: Path) -> sqlite3.Connection:
        """A read-only connection; ``immutable`` on a read-only medium, where SQLite cannot
        create the shared-memory file a WAL database needs (and nothing can be writing)."""
        uri = Path(path).resolve().as_uri()
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                uri + "?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=10.0,
            )
            conn.execute("PRAGMA schema_version").fetchone()
            return conn
        except sqlite3.OperationalError:
            if conn is not None:
                conn.close()
            if _writable_directory(path.parent):
                raise
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            logger.warning(
                "%s is on a read-only medium with a write-ahead log; changes still in %s are "
                "not visible (open the library once where it is writable to fold them in)",
                path,
                wal.name,
            )
        return sqlite3.connect(
            uri + "?mode=ro&immutable=1",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )

    def check_writable(self) -> None:
        """Raise LibraryError now, before any work, if the catalogue cannot be written (a
        read-only mount, an immutable file): SQLite only says so at the first write."""
        with translate(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute(
                    "UPDATE meta SET value = value WHERE name = (SELECT min(name) FROM meta)"
                )
            finally:
                self.conn.execute("ROLLBACK")

    @classmethod
    def initialise(cls, path: Path, meta: dict[str, Any]) -> None:
        """Create a catalogue at ``path`` atomically: built aside, then renamed into place."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            with translate(tmp):
                conn = sqlite3.connect(tmp, isolation_level=None)
                try:
                    # no transaction needed: the file only becomes the catalogue when renamed
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.executescript(SCHEMA + LABELS_SCHEMA)
                    conn.executemany(
                        "INSERT INTO meta(name, value) VALUES (?, ?)",
                        [(k, json.dumps(v)) for k, v in meta.items()],
                    )
                finally:
                    conn.close()
            with translate(path):  # an OSError (a full disk) becomes a LibraryError
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction; nested uses join the outermost one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with translate(self.path):
            self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with translate(self.path):
                self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        with translate(self.path):
            self.conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    # -- meta ---------------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any]:
        with translate(self.path):
            rows = self.conn.execute("SELECT name, value FROM meta").fetchall()
        return {name: json.loads(value) for name, value in rows}

    def write_meta(self, **items: Any) -> None:
        with translate(self.path):
            self.conn.executemany(
                "INSERT INTO meta(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in items.items()],
            )

    # -- rows ---------------------------------------------------------------------------
    _COLS = "key, label, path, duration, content_hash, num_frames, added_at, metadata"

    def _row(self, r: Sequence[Any], dim: int | None) -> Row:
        """A typed row; LibraryCorruptError naming the video when a value is not what the
        schema promises (a hand-edited or damaged catalogue)."""
        key = r[0]
        try:
            if not isinstance(key, str) or not isinstance(r[1], int):
                raise ValueError("its key or label has the wrong type")
            if not isinstance(r[5], int) or r[5] < 0:
                raise ValueError(f"its frame count {r[5]!r} is not a count")
            for what, value in (("duration", r[3]), ("time added", r[6])):
                if value is not None and not isinstance(value, int | float):
                    raise ValueError(f"its {what} {value!r} is not a number")
            metadata = json.loads(r[7])
            if not isinstance(metadata, dict):
                raise ValueError("its metadata is not a JSON object")
            sig = blob_to_sig(r[8], dim, f"video {key!r}") if dim is not None else None
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            raise LibraryCorruptError(
                f"the catalogue {self.path} holds a damaged row for video {key!r} ({exc}). "
                f"Remove that video (VideoIndex.remove) and index it again, or: "
                f"{corrupt_hint(self.path)}",
                path=self.path,
            ) from exc
        return Row(key, r[1], r[2], r[3], r[4], r[5], float(r[6] or 0.0), metadata, sig)

    def get(self, key: str, dim: int | None = None) -> Row | None:
        cols = self._COLS + (", signature" if dim is not None else "")
        with translate(self.path):
            r = self.conn.execute(f"SELECT {cols} FROM videos WHERE key = ?", (key,)).fetchone()
        return None if r is None else self._row(r, dim)

    def by_labels(self, labels: Sequence[int]) -> dict[int, Row]:
        out: dict[int, Row] = {}
        with translate(self.path):
            for i in range(0, len(labels), 500):
                chunk = [int(x) for x in labels[i : i + 500]]
                marks = ",".join("?" * len(chunk))
                for r in self.conn.execute(
                    f"SELECT {self._COLS} FROM videos WHERE label IN ({marks})", chunk
                ):
                    row = self._row(r, None)
                    out[row.label] = row
        return out

    def frames(
        self, label: int, dim: int
    ) -> tuple[NDArray[np.float32], NDArray[np.float64]] | None:
        with translate(self.path):
            r = self.conn.execute(
                "SELECT times, vectors FROM frames WHERE label = ?", (label,)
            ).fetchone()
        if r is None:
            return None
        times = np.frombuffer(r[0], dtype=_TIME).astype(np.float64)
        if len(r[1]) != len(times) * dim * _FRAME.itemsize:
            raise ValueError(
                f"frames of label {label}: {len(r[1])} bytes for {len(times)} frames of dim {dim}"
            )
        vectors = np.frombuffer(r[1], dtype=_FRAME).astype(np.float32).reshape(len(times), dim)
        return vectors, times

    def upsert(
        self,
        row: Row,
        frames: NDArray[np.float32] | None,
        times: NDArray[np.float64] | None,
    ) -> int | None:
        """Insert or replace ``row`` (inside a transaction); returns the replaced label."""
        assert row.signature is not None
        with translate(self.path):
            old = self.conn.execute("SELECT label FROM videos WHERE key = ?", (row.key,)).fetchone()
            if old is not None:
                self.conn.execute("DELETE FROM frames WHERE label = ?", (old[0],))
                self._delete_labels(int(old[0]))
                self.conn.execute("DELETE FROM videos WHERE key = ?", (row.key,))
            self.conn.execute(
                "INSERT INTO videos(key, label, path, duration, content_hash, num_frames, "
                "added_at, metadata, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.key,
                    row.label,
                    row.path,
                    row.duration,
                    row.content_hash,
                    row.num_frames,
                    row.added_at,
                    json.dumps(row.metadata, allow_nan=False),
                    sig_to_blob(row.signature),
                ),
            )
            if frames is not None and times is not None:
                self.conn.execute(
                    "INSERT INTO frames(label, times, vectors) VALUES (?, ?, ?)",
                    (
                        row.label,
                        np.ascontiguousarray(times, dtype=_TIME).tobytes(),
                        np.ascontiguousarray(frames, dtype=_FRAME).tobytes(),
                    ),
                )
        return None if old is None else int(old[0])

    def delete(self, key: str) -> int | None:
        with translate(self.path):
            old = self.conn.execute("SELECT label FROM videos WHERE key = ?", (key,)).fetchone()
            if old is None:
                return None
            self.conn.execute("DELETE FROM frames WHERE label = ?", (old[0],))
            self._delete_labels(int(old[0]))
            self.conn.execute("DELETE FROM videos WHERE key = ?", (key,))
        return int(old[0])

    # -- labels -------------------------------------------------------------------------
    def _delete_labels(self, label: int) -> None:
        if self.has_labels:
            self.conn.execute("DELETE FROM video_labels WHERE label = ?", (label,))
            self.conn.execute("DELETE FROM frame_labels WHERE label = ?", (label,))

    def put_labels(self, label: int, stored: StoredLabels) -> None:
        """Replace the labels of video ``label`` (inside a transaction)."""
        with translate(self.path):
            self._delete_labels(label)
            self.conn.executemany(
                "INSERT INTO video_labels(label, rank, name, probability) VALUES (?, ?, ?, ?)",
                [(label, rank, name, float(p)) for rank, (name, p) in enumerate(stored.video)],
            )
            self.conn.execute(
                "INSERT INTO frame_labels(label, times, classes, probabilities) "
                "VALUES (?, ?, ?, ?)",
                (
                    label,
                    np.ascontiguousarray(stored.times, dtype=_TIME).tobytes(),
                    np.ascontiguousarray(stored.classes, dtype=_CLASS).tobytes(),
                    np.ascontiguousarray(stored.probabilities, dtype=_PROB).tobytes(),
                ),
            )

    def get_labels(self, label: int) -> StoredLabels | None:
        """The stored labels of video ``label``, or None when it has none."""
        if not self.has_labels:
            return None
        with translate(self.path):
            video = self.conn.execute(
                "SELECT name, probability FROM video_labels WHERE label = ? ORDER BY rank",
                (label,),
            ).fetchall()
            r = self.conn.execute(
                "SELECT times, classes, probabilities FROM frame_labels WHERE label = ?", (label,)
            ).fetchone()
        if r is None:
            return None
        times = np.frombuffer(r[0], dtype=_TIME).astype(np.float64)
        classes = np.frombuffer(r[1], dtype=_CLASS).astype(np.int64)
        probs = np.frombuffer(r[2], dtype=_PROB).astype(np.float32)
        n = len(times)
        if n == 0 or len(classes) != len(probs) or len(classes) % n:
            raise ValueError(f"labels of label {label}: {len(classes)} classes for {n} frames")
        k = len(classes) // n
        return StoredLabels(
            [(str(a), float(b)) for a, b in video],
            times,
            classes.reshape(n, k),
            probs.reshape(n, k),
        )

    def video_labels(self, labels: Sequence[int]) -> dict[int, list[tuple[str, float]]]:
        """The top (name, probability) pairs of each video in ``labels`` that has them."""
        out: dict[int, list[tuple[str, float]]] = {}
        if not self.has_labels:
            return out
        with translate(self.path):
            for i in range(0, len(labels), 500):
                chunk = [int(x) for x in labels[i : i + 500]]
                marks = ",".join("?" * len(chunk))
                for label, name, p in self.conn.execute(
                    f"SELECT label, name, probability FROM video_labels WHERE label IN ({marks}) "
                    "ORDER BY label, rank",
                    chunk,
                ):
                    out.setdefault(int(label), []).append((str(name), float(p)))
        return out

    def with_label(self, name: str, min_probability: float = 0.0) -> dict[int, float]:
        """Videos whose top classes include ``name`` (at least ``min_probability``)."""
        if not self.has_labels:
            return {}
        with translate(self.path):
            rows = self.conn.execute(
                "SELECT label, probability FROM video_labels WHERE name = ? AND probability >= ?",
                (name, float(min_probability)),
            ).fetchall()
        return {int(label): float(p) for label, p in rows}

    def unlabelled(self) -> list[str]:
        """Keys of the videos without labels, sorted."""
        with translate(self.path):
            if not self.has_labels:
                return [r[0] for r in self.conn.execute("SELECT key FROM videos ORDER BY key")]
            return [
                r[0]
                for r in self.conn.execute(
                    "SELECT key FROM videos WHERE label NOT IN (SELECT label FROM frame_labels) "
                    "ORDER BY key"
                )
            ]

    def label_names(self) -> list[str]:
        """Every label name some video has among its top classes, most videos first."""
        if not self.has_labels:
            return []
        with translate(self.path):
            return [
                r[0]
                for r in self.conn.execute(
                    "SELECT name FROM video_labels GROUP BY name ORDER BY count(*) DESC, name"
                )
            ]

    def count(self) -> int:
        with translate(self.path):
            return int(self.conn.execute("SELECT count(*) FROM videos").fetchone()[0])

    def labels(self) -> dict[int, str]:
        with translate(self.path):
            return dict(self.conn.execute("SELECT label, key FROM videos").fetchall())

    def keys(self) -> list[str]:
        with translate(self.path):
            return [r[0] for r in self.conn.execute("SELECT key FROM videos ORDER BY key")]

    def rows(self) -> Iterator[Row]:
        with translate(self.path):
            cur = self.conn.execute(f"SELECT {self._COLS} FROM videos ORDER BY key")
            for r in cur:
                yield self._row(r, None)

    def metadata(self) -> dict[int, dict[str, Any]]:
        with translate(self.path):
            return {
                label: json.loads(md)
                for label, md in self.conn.execute("SELECT label, metadata FROM videos")
            }

    def max_label(self) -> int | None:
        """The highest label in use (None for an empty library)."""
        with translate(self.path):
            value = self.conn.execute("SELECT max(label) FROM videos").fetchone()[0]
        return None if value is None else int(value)

    def signatures(
        self, dim: int, labels: set[int] | None = None, batch: int = 4096
    ) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
        """Yield (labels, signatures) in batches, optionally only for ``labels``."""
        buf_l: list[int] = []
        buf_v: list[bytes] = []
        size = dim * _SIG.itemsize

        def flush() -> tuple[NDArray[np.int64], NDArray[np.float32]]:
            lab = np.asarray(buf_l, dtype=np.int64)
            vec = np.frombuffer(b"".join(buf_v), dtype=_SIG).astype(np.float32)
            buf_l.clear()
            buf_v.clear()
            return lab, vec.reshape(len(lab), dim)

        with translate(self.path):
            for label, key, blob in self.conn.execute("SELECT label, key, signature FROM videos"):
                if labels is not None and label not in labels:
                    continue
                if not isinstance(blob, bytes) or len(blob) != size:
                    raise LibraryCorruptError(
                        f"the catalogue {self.path} holds a damaged signature for video "
                        f"{key!r}. " + corrupt_hint(self.path),
                        path=self.path,
                    )
                buf_l.append(label)
                buf_v.append(blob)
                if len(buf_l) >= batch:
                    yield flush()
        if buf_l:
            yield flush()

    def find(self, column: str, value: str) -> str | None:
        assert column in ("content_hash", "path")
        with translate(self.path):
            r = self.conn.execute(
                f"SELECT key FROM videos WHERE {column} = ? ORDER BY added_at DESC LIMIT 1",
                (value,),
            ).fetchone()
        return None if r is None else str(r[0])

    def integrity_problems(self) -> list[str]:
        with translate(self.path):
            result = [r[0] for r in self.conn.execute("PRAGMA integrity_check")]
        return [] if result == ["ok"] else result
