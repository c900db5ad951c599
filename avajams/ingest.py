"""Indexing: find video files, decode them, embed their frames, write them to the library.

    files = find_videos(["music-videos/"])
    summary = Indexer(library, embedder, sampler).run(files)

An indexing pass has three parts, each its own object:

- :class:`_Decoders`: background threads that hash, probe and sample one file at a time into a
  bounded queue of events (the PySceneDetect pattern);
- :class:`Indexer`: the consumer, one method per event, batching frames *across* videos so
  every inference call is full;
- :class:`LibraryWriter`: the one writer, deciding what each file needs (new, changed, a copy,
  moved) and committing every finished video as it completes, so an interrupted run keeps what
  it did. Other executors (a cluster) reuse it with their own decoding and inference.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from avajams._progress import Progress, ProgressCallback
from avajams.errors import (
    AvajamsError,
    VideoError,
    VideoNotFoundError,
    VideoTooLargeError,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from avajams.embedding import Embedder
    from avajams.index import VideoIndex
    from avajams.labels import Labeller, VideoLabels
    from avajams.sampling import Sampler

__all__ = [
    "VIDEO_EXTENSIONS",
    "IndexInterrupted",
    "IndexSummary",
    "Indexer",
    "LabelPass",
    "LabelSummary",
    "LibraryWriter",
    "VideoJob",
    "find_videos",
    "no_videos_message",
    "warn_if_settings_differ",
]

logger = logging.getLogger(__name__)

#: How a video's frame vectors become its signature (see :func:`avajams.video_signature`).
Signature = Literal["mean", "median"]

#: File name extensions indexing picks up when it walks a directory.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
        ".wmv", ".flv", ".3gp", ".ts", ".mts", ".m2ts", ".ogv",
    }
)  # fmt: skip


def find_videos(
    paths: Iterable[str | os.PathLike[str]],
    *,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
) -> list[Path]:
    """The video files named by ``paths``: files as given, directories walked recursively.

    In directories only files with a video extension (case-insensitive) are taken, hidden
    files and folders are skipped; the result is sorted, without duplicates. A path that does
    not exist raises :class:`avajams.VideoNotFoundError`.

    Discovery never reads a file and never fails on one: a symlink loop, a dangling symlink or
    a FIFO is returned under its own (absolute) name, and indexing then reports and skips it.
    A sub-folder that cannot be listed is logged and skipped.
    """
    suffixes = {e.lower() for e in extensions}
    found: dict[Path, None] = {}

    def unreadable(error: OSError) -> None:
        logger.warning("skipped folder %s: %s", error.filename, error.strerror or error)

    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=unreadable):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                        found.setdefault(real_path(Path(root, name)), None)
        elif path.exists() or path.is_symlink():
            found.setdefault(real_path(path), None)
        else:
            raise VideoNotFoundError(
                f"{path} does not exist; give video files or folders that hold them", path=path
            )
    return sorted(found)


def real_path(path: Path) -> Path:
    """``path`` with symlinks resolved; a link that loops or dangles stays as it is (made
    absolute), so that it is reported under its own name."""
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # a symlink loop is a RuntimeError before Python 3.13
        return path.absolute()


def check_storable_name(path: Path) -> None:
    """Raise :class:`VideoError` when ``path`` cannot be stored in a library: its name holds
    bytes that are not UTF-8 (Python carries them as lone surrogates, which SQLite refuses)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("utf-8", "surrogateescape")
        raise VideoError(
            f"{text.encode('utf-8', 'backslashreplace').decode()}: the file name is not valid "
            f"UTF-8 (byte(s) {bad!r}); rename the file (e.g. with convmv) to index it",
            path=path,
        ) from exc


def no_videos_message(paths: Sequence[Path]) -> str:
    """Why an indexing run found nothing: where it looked and for which extensions."""
    where = ", ".join(str(p) for p in paths) or "(no path given)"
    looked_for = ", ".join(sorted(VIDEO_EXTENSIONS))
    return (
        f"no videos found under {where} (looked for: {looked_for}); give video files or "
        "folders that hold them"
    )


@dataclass(frozen=True)
class IndexSummary:
    """What an indexing pass did. ``failed`` maps a file to the reason it was skipped."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    """Files already indexed under a path that no longer exists: re-keyed, not re-embedded."""
    removed: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: ``hash``, ``decode`` (summed over decoder threads), ``embed``,
    ``label`` (when a labeller ran), ``write``, ``wait`` (inference waiting for frames) and
    ``total``."""

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed

    @property
    def saved(self) -> int:
        """How many of the files are in the library now: added, updated, moved or unchanged."""
        return len(self.added) + len(self.updated) + len(self.moved) + len(self.skipped)


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another KeyboardInterrupt) stopped an indexing pass; what it kept is saved.

    A ``KeyboardInterrupt``, so code that does not know it still stops as before. ``summary``
    is what the pass did until then (every written video is durable), ``total`` the number
    of files it was given; running the same pass again continues where this one stopped.
    """

    def __init__(self, summary: IndexSummary, total: int) -> None:
        super().__init__(f"indexing interrupted: {summary.saved} of {total} videos saved")
        self.summary = summary
        self.total = total

    @property
    def saved(self) -> int:
        """How many of the ``total`` files are in the library now (new, updated or unchanged)."""
        return self.summary.saved


@dataclass
class VideoJob:
    """One file of an indexing pass, from its discovery until it is written or skipped."""

    number: int
    path: Path
    key: str
    content_hash: str = ""
    duration: float | None = None
    existing: str | None = None
    """The library key already holding this path, when the file changed."""
    times: list[float] = field(default_factory=list)
    vectors: list[Any] = field(default_factory=list)
    probabilities: list[Any] = field(default_factory=list)
    """Class probabilities of the embedded frames, when a labeller runs beside the embedder."""
    pending: int = 0
    """Frames queued for inference but not embedded yet."""
    ended: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def for_file(cls, number: int, path: Path) -> VideoJob:
        """The job for ``path``, keyed by its absolute path with forward slashes."""
        return cls(number, path, real_path(path).as_posix())


class LibraryWriter:
    """The one writer of an indexing pass: admits files and commits finished videos.

    :meth:`admit` decides what a hashed file needs (already indexed, a copy of another file
    of this run, moved from a path that is gone, changed, or new); :meth:`commit` writes a
    finished video in one transaction. Each commit is durable on its own.
    """

    def __init__(self, library: VideoIndex, *, signature: Signature = "mean") -> None:
        self.library = library
        self.signature = signature
        self.added: list[str] = []
        self.updated: list[str] = []
        self.skipped: list[str] = []
        self.moved: list[str] = []
        self.removed: list[str] = []
        self.failed: dict[str, str] = {}
        self.write_seconds = 0.0
        self._started_hashes: set[str] = set()

    def admit(self, job: VideoJob) -> bool:
        """Whether ``job`` (hashed) needs sampling and embedding; records it when it does not."""
        known = self.library.find_by_hash(job.content_hash)
        if job.content_hash in self._started_hashes:  # a copy of a file in this run
            self.skipped.append(str(job.path))
            return False
        if known is not None:
            if known != job.key and self._move_if_gone(known, job):
                self.moved.append(str(job.path))
            else:
                self.skipped.append(str(job.path))
            return False
        if job.key in self.library:
            job.existing = job.key
        self._started_hashes.add(job.content_hash)
        return True

    def commit(
        self,
        job: VideoJob,
        times: NDArray[np.float64],
        vectors: NDArray[np.float32],
        labels: VideoLabels | None = None,
    ) -> bool:
        """Write ``job``'s frame vectors, signature (and labels); False (and recorded) when it
        failed."""
        from avajams.embedding import video_signature

        if len(vectors) == 0:
            self.fail(job, f"{job.path} has no frames to sample; is it a video?")
            return False
        started = time.perf_counter()
        try:
            if job.existing is not None and job.existing != job.key:
                self.library.remove(job.existing)
            self.library.add(
                job.key,
                video_signature(vectors, method=self.signature),
                frames=vectors,
                times=times,
                path=str(job.path),
                duration=job.duration,
                content_hash=job.content_hash,
                metadata={"name": job.path.name},
                labels=labels,
            )
        except AvajamsError as exc:
            self.fail(job, str(exc))
            return False
        finally:
            self.write_seconds += time.perf_counter() - started
        (self.updated if job.existing is not None else self.added).append(str(job.path))
        return True

    def fail(self, job: VideoJob, reason: str) -> None:
        """Record that ``job`` was skipped because of ``reason``."""
        self.failed[str(job.path)] = reason
        logger.info("skipped %s: %s", job.path, reason)

    def remove_missing(self, roots: Sequence[Path]) -> None:
        """Drop entries whose file was under one of the folders in ``roots`` but is gone."""
        folders = [r.resolve() for r in roots if r.is_dir()]
        for entry in list(self.library.entries()):
            path = entry.path
            if path is None or Path(path).exists():
                continue
            if any(Path(path).is_relative_to(folder) for folder in folders):
                self.library.remove(entry.key)
                self.removed.append(path)

    def summary(self, *, frames: int, timings: dict[str, float]) -> IndexSummary:
        """What was done so far."""
        return IndexSummary(
            added=tuple(self.added),
            updated=tuple(self.updated),
            skipped=tuple(self.skipped),
            moved=tuple(self.moved),
            removed=tuple(self.removed),
            failed=dict(self.failed),
            frames=frames,
            timings={**timings, "write": self.write_seconds},
        )

    def _move_if_gone(self, known: str, job: VideoJob) -> bool:
        """Re-key entry ``known`` to ``job``'s path when its own file is gone (it moved)."""
        entry = self.library.get(known)
        if entry.path is None or Path(entry.path).exists() or entry.signature is None:
            return False  # a copy of a video already indexed: keep the one entry
        labels = self.library.labels(known)
        with self.library.transaction():
            self.library.add(
                job.key,
                entry.signature,
                frames=entry.frames,
                times=entry.times,
                path=str(job.path),
                duration=entry.duration,
                content_hash=entry.content_hash,
                metadata={**entry.metadata, "name": job.path.name},
                labels=labels,
            )
            self.library.remove(known)
        return True


class _Event(enum.Enum):
    """What a decoder thread tells the inference loop."""

    START = enum.auto()  # the file is hashed and probed
    FRAME = enum.auto()  # payload: (time, image)
    END = enum.auto()  # every sample of the file was queued
    ERROR = enum.auto()  # payload: the error that ends this file
    DONE = enum.auto()  # the thread has no more files
    FATAL = enum.auto()  # payload: an unexpected exception (a bug) to re-raise


_Message = tuple[_Event, VideoJob | None, Any]


class _Decoders:
    """Decoder threads feeding a bounded queue (the PySceneDetect pattern).

    Each thread takes the next file, hashes it, probes it and streams its sampled frames into
    the queue; a per-file error becomes an ``ERROR`` event, anything unexpected a ``FATAL``
    one (re-raised by the consumer). :meth:`stop` always ends and joins the threads.
    """

    def __init__(self, jobs: Sequence[VideoJob], sampler: Sampler, workers: int, size: int) -> None:
        self.queue: queue.Queue[_Message] = queue.Queue(maxsize=size)
        self._jobs = iter(jobs)
        self._lock = threading.Lock()
        self._sampler = sampler
        self._stop = threading.Event()
        self.hash_seconds = 0.0
        self.decode_seconds = 0.0
        self._threads = [
            threading.Thread(target=self._run, name=f"avajams-decode-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def count(self) -> int:
        """How many decoder threads were started."""
        return len(self._threads)

    def _put(self, item: _Message) -> float | None:
        """Queue ``item``; the seconds spent waiting for room, or None once stopped."""
        started = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return time.perf_counter() - started
            except queue.Full:
                continue
        return None

    def _next(self) -> VideoJob | None:
        with self._lock:
            return next(self._jobs, None)

    def _run(self) -> None:
        try:
            while (job := self._next()) is not None:
                try:
                    if not self._decode(job):
                        return
                except (AvajamsError, OSError) as exc:
                    if self._put((_Event.ERROR, job, exc)) is None:
                        return
        except BaseException as exc:  # a bug: hand it to the consumer to re-raise
            self._put((_Event.FATAL, None, exc))
        finally:
            self._put((_Event.DONE, None, None))

    def _decode(self, job: VideoJob) -> bool:
        """Hash, probe and sample one file into the queue; False once the decoders stopped."""
        from avajams.index import content_hash
        from avajams.media import check_path, probe

        t0 = time.perf_counter()
        # Checked before anything reads it: a FIFO or a device would block the hash forever.
        check_path(job.path)
        check_storable_name(job.path)
        job.content_hash = content_hash(job.path)
        t1 = time.perf_counter()
        job.duration = probe(job.path).duration
        if self._put((_Event.START, job, None)) is None:
            return False
        count, blocked, used = 0, 0.0, 0
        budget = getattr(self._sampler, "max_bytes", None)  # the limit match() applies
        frames = self._sampler.iter_frames(job.path)
        try:
            for t, image in frames:
                if job.cancelled.is_set():
                    break
                used += getattr(image, "nbytes", 0)
                if isinstance(budget, int) and used > budget:
                    raise VideoTooLargeError(
                        f"{job.path}: sampled images exceed max_bytes={budget}; lower fps, "
                        "size or max_duration, or raise max_bytes",
                        path=job.path,
                    )
                waited = self._put((_Event.FRAME, job, (t, image)))
                if waited is None:
                    return False
                blocked += waited
                count += 1
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # release the decoder now, not when collected
        t2 = time.perf_counter()
        with self._lock:
            self.hash_seconds += t1 - t0
            self.decode_seconds += t2 - t1 - blocked  # not waiting for room
        return self._put((_Event.END, job, count)) is not None

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the threads (they may be blocked on a full queue) and join them; idempotent.

        Waits at most ``timeout`` seconds: a thread stuck in a call that never returns (a read
        from a file system that hangs) is left behind as the daemon it is, never joined
        forever, so Ctrl-C always ends a run.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            for thread in self._threads:
                thread.join(timeout=0.05)
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            logger.warning(
                "decoder thread(s) %s did not stop within %.1f s; left behind",
                ", ".join(stuck),
                timeout,
            )


class Indexer:
    """One local indexing pass: decoder threads -> batched inference -> :class:`LibraryWriter`.

    Frames of several videos share an inference batch of ``batch_size``; a video is written as
    soon as its last frame is embedded. A ``labeller`` labels the same batches beside the
    embedder; the labels are written with the video. Progress: bars for ``videos`` (done of
    total) and ``frames`` (embedded) when ``show_progress`` (None: when standard error is a
    terminal), and ``progress(stage, done, total)`` calls for the same two stages.
    """

    def __init__(
        self,
        library: VideoIndex,
        embedder: Embedder,
        sampler: Sampler,
        *,
        signature: Signature = "mean",
        batch_size: int = 16,
        workers: int = 1,
        queue_frames: int = 64,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
        labeller: Labeller | None = None,
    ) -> None:
        self.writer = LibraryWriter(library, signature=signature)
        self.embedder = embedder
        self.labeller = labeller
        self.sampler = sampler
        self.batch_size = batch_size
        self.workers = workers
        self.queue_frames = queue_frames
        self.show_progress = show_progress
        self.progress = progress
        self.frames = 0
        self.timings = {"embed": 0.0, "wait": 0.0}
        if labeller is not None:
            self.timings["label"] = 0.0
        self._batch: list[tuple[VideoJob, float, Any]] = []
        self._videos_bar: Progress | None = None
        self._frames_bar: Progress | None = None

    def run(self, files: Sequence[Path], *, prune: Sequence[Path] = ()) -> IndexSummary:
        """Index ``files``; then drop entries of files gone from the folders in ``prune``."""
        started = time.perf_counter()
        jobs = [VideoJob.for_file(i, path) for i, path in enumerate(files)]
        self._videos_bar = Progress(
            "videos", len(jobs), unit="video", show=self.show_progress, callback=self.progress
        )
        self._frames_bar = Progress(
            "frames", None, unit="frame", show=self.show_progress, callback=self.progress
        )
        decoders = _Decoders(jobs, self.sampler, workers=self.workers, size=self.queue_frames)
        handlers: dict[_Event, Callable[[VideoJob, Any], None]] = {
            _Event.START: self._on_start,
            _Event.FRAME: self._on_frame,
            _Event.END: self._on_end,
            _Event.ERROR: self._on_error,
        }
        interrupted: KeyboardInterrupt | None = None
        try:
            running = decoders.count
            while running:
                t0 = time.perf_counter()
                try:
                    event, job, payload = decoders.queue.get(timeout=0.1)
                except queue.Empty:  # wake up now and then so Ctrl-C gets through
                    continue
                finally:
                    self.timings["wait"] += time.perf_counter() - t0
                if event is _Event.DONE:
                    running -= 1
                elif event is _Event.FATAL:
                    raise payload
                elif job is not None:
                    handlers[event](job, payload)
            self._flush()
        except KeyboardInterrupt as exc:  # every committed video stays; say how many
            interrupted = exc
        finally:
            decoders.stop()
            self._videos_bar.close()
            self._frames_bar.close()
        if interrupted is not None:
            summary = self.writer.summary(frames=self.frames, timings=dict(self.timings))
            raise IndexInterrupted(summary, total=len(jobs)) from interrupted
        if prune:
            self.writer.remove_missing(prune)
        timings = {
            **self.timings,
            "hash": decoders.hash_seconds,
            "decode": decoders.decode_seconds,
            "total": time.perf_counter() - started,
        }
        return self.writer.summary(frames=self.frames, timings=timings)

    # one method per decoder event

    def _on_start(self, job: VideoJob, _: None) -> None:
        if not self.writer.admit(job):
            job.cancelled.set()
            self._video_done()

    def _on_frame(self, job: VideoJob, payload: tuple[float, Any]) -> None:
        if job.cancelled.is_set():
            return
        job.pending += 1
        self.frames += 1
        self._batch.append((job, payload[0], payload[1]))
        if len(self._batch) >= self.batch_size:
            self._flush()

    def _on_end(self, job: VideoJob, _: int) -> None:
        if job.cancelled.is_set():
            return
        job.ended = True
        if job.pending == 0:
            self._finish(job)

    def _on_error(self, job: VideoJob, error: Exception) -> None:
        job.cancelled.set()
        self.writer.fail(job, str(error))
        self._video_done()

    # inference and writing

    def _flush(self) -> None:
        """Embed the batched frames of the videos still wanted; finish videos now complete."""
        import numpy as np

        live = [item for item in self._batch if not item[0].cancelled.is_set()]
        self._batch.clear()
        if not live:
            return
        t0 = time.perf_counter()
        images = np.stack([image for _, _, image in live])
        probabilities = None
        if self.labeller is not None and self.labeller.shares_model_with(self.embedder):
            # EfficientNet-Lite0 as the embedder: one run of it gives the labels too
            vectors, probabilities = self.labeller.embed_with_probabilities(images)
            self.timings["embed"] += time.perf_counter() - t0
        else:
            vectors = self.embedder.embed(images)
            t1 = time.perf_counter()
            self.timings["embed"] += t1 - t0
            if self.labeller is not None:
                probabilities = self.labeller.probabilities(images)
                self.timings["label"] += time.perf_counter() - t1
        if self._frames_bar is not None:
            self._frames_bar.update(len(live))
        for row, (job, t, _) in enumerate(live):
            job.times.append(t)
            job.vectors.append(vectors[row : row + 1])
            if probabilities is not None:
                job.probabilities.append(probabilities[row : row + 1])
            job.pending -= 1
            if job.ended and job.pending == 0:
                self._finish(job)

    def _finish(self, job: VideoJob) -> None:
        import numpy as np

        if job.vectors:
            vectors = np.concatenate(job.vectors, axis=0)
        else:
            vectors = np.zeros((0, self.embedder.dim), dtype=np.float32)
        times = np.asarray(job.times, dtype=np.float64)
        labels = None
        if self.labeller is not None and job.probabilities:
            from avajams.labels import labels_from_probabilities

            probabilities = np.concatenate(job.probabilities, axis=0)
            labels = labels_from_probabilities(
                probabilities, times, self.labeller.names, self.labeller.id
            )
        self.writer.commit(job, times, vectors, labels)
        self._video_done()

    def _video_done(self) -> None:
        if self._videos_bar is not None:
            self._videos_bar.update()


@dataclass(frozen=True)
class LabelSummary:
    """What a labels-only pass (:class:`LabelPass`) did, by library key."""

    labelled: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    """Videos whose file is gone (or was never recorded): nothing to decode."""
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: ``decode`` (summed over decoder threads), ``label``, ``write``, ``total``."""

    @property
    def ok(self) -> bool:
        """True when no video failed."""
        return not self.failed


class LabelPass:
    """Labels for videos already in a library: re-decode each file, label its frames with
    ``labeller`` and store the labels — no embedding, vectors and signatures stay as they are.

    A file whose content changed since it was indexed is reported in ``failed`` (index it
    again instead); one that is gone is reported in ``missing``. Decoding runs in background
    threads, as for indexing; progress goes to the ``videos`` and ``frames`` stages.
    """

    def __init__(
        self,
        library: VideoIndex,
        labeller: Labeller,
        sampler: Sampler,
        *,
        batch_size: int = 16,
        workers: int = 1,
        queue_frames: int = 64,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.library = library
        self.labeller = labeller
        self.sampler = sampler
        self.batch_size = batch_size
        self.workers = workers
        self.queue_frames = queue_frames
        self.show_progress = show_progress
        self.progress = progress

    def run(self, keys: Sequence[str] | None = None) -> LabelSummary:
        """Label the videos under ``keys`` (default: every video without labels)."""
        import numpy as np

        from avajams.labels import labels_from_probabilities

        started = time.perf_counter()
        wanted = self.library.unlabelled() if keys is None else list(keys)
        jobs: list[VideoJob] = []
        expected: dict[str, str | None] = {}
        missing: list[str] = []
        for key in wanted:
            entry = self.library.get(key, vectors=False)
            if entry.path is None or not Path(entry.path).is_file():
                missing.append(key)
                continue
            jobs.append(VideoJob(len(jobs), Path(entry.path), key))
            expected[key] = entry.content_hash
        labelled: list[str] = []
        failed: dict[str, str] = {}
        timings = {"label": 0.0, "write": 0.0}
        batch: list[tuple[VideoJob, float, Any]] = []
        frames = 0
        videos_bar = Progress(
            "videos", len(jobs), unit="video", show=self.show_progress, callback=self.progress
        )
        frames_bar = Progress(
            "frames", None, unit="frame", show=self.show_progress, callback=self.progress
        )

        def finish(job: VideoJob) -> None:
            t0 = time.perf_counter()
            try:
                labels = labels_from_probabilities(
                    np.concatenate(job.probabilities, axis=0),
                    np.asarray(job.times, dtype=np.float64),
                    self.labeller.names,
                    self.labeller.id,
                )
                self.library.set_labels(job.key, labels)
            except (AvajamsError, KeyError) as exc:
                failed[job.key] = str(exc)
            else:
                labelled.append(job.key)
            timings["write"] += time.perf_counter() - t0
            videos_bar.update()

        def flush() -> None:
            live = [item for item in batch if not item[0].cancelled.is_set()]
            batch.clear()
            if not live:
                return
            t0 = time.perf_counter()
            probabilities = self.labeller.probabilities(np.stack([im for _, _, im in live]))
            timings["label"] += time.perf_counter() - t0
            frames_bar.update(len(live))
            for row, (job, t, _) in enumerate(live):
                job.times.append(t)
                job.probabilities.append(probabilities[row : row + 1])
                job.pending -= 1
                if job.ended and job.pending == 0:
                    finish(job)

        decoders = _Decoders(jobs, self.sampler, workers=self.workers, size=self.queue_frames)
        try:
            running = decoders.count
            while running:
                try:
                    event, job, payload = decoders.queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if event is _Event.DONE:
                    running -= 1
                elif event is _Event.FATAL:
                    raise payload
                elif job is None or job.cancelled.is_set():
                    continue
                elif event is _Event.START:
                    known = expected.get(job.key)
                    if known is not None and known != job.content_hash:
                        job.cancelled.set()
                        failed[job.key] = (
                            f"{job.path} changed since it was indexed; index it again "
                            "(avajams index) to embed and label it"
                        )
                        videos_bar.update()
                elif event is _Event.FRAME:
                    job.pending += 1
                    frames += 1
                    batch.append((job, payload[0], payload[1]))
                    if len(batch) >= self.batch_size:
                        flush()
                elif event is _Event.END:
                    job.ended = True
                    if job.pending == 0:
                        if job.probabilities:
                            finish(job)
                        else:
                            failed[job.key] = f"{job.path} has no frames to sample"
                            videos_bar.update()
                elif event is _Event.ERROR:
                    job.cancelled.set()
                    failed[job.key] = str(payload)
                    videos_bar.update()
            flush()
        finally:
            decoders.stop()
            videos_bar.close()
            frames_bar.close()
        timings["decode"] = decoders.decode_seconds
        timings["total"] = time.perf_counter() - started
        return LabelSummary(
            labelled=tuple(labelled),
            missing=tuple(missing),
            failed=failed,
            frames=frames,
            timings=timings,
        )


def warn_if_settings_differ(library: VideoIndex, sampler: Sampler) -> None:
    """Log a warning when ``sampler`` samples differently from how ``library`` was built."""
    from avajams.sampling import sampler_settings

    stored = library.sampler_settings
    current = sampler_settings(sampler)
    if not stored or current is None:
        return
    current = json.loads(json.dumps(current))  # as stored: tuples become lists
    if current != stored:
        changed = sorted(
            k for k in stored.keys() | current.keys() if stored.get(k) != current.get(k)
        )
        logger.warning(
            "the library in %s was built with sampler settings %s but this run samples with %s "
            "(differs in: %s); new videos will be sampled differently from the rest — use the "
            "library's settings ([sampler] in --config) or index into a new library",
            library.directory,
            stored,
            current,
            ", ".join(changed),
        )
