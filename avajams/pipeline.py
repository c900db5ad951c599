"""``Pipeline``: the stages wired together, configured by a pydantic ``PipelineConfig``.

    >>> from avajams import Pipeline
    >>> pipe = Pipeline()                      # defaults: 1 frame/s, Inception v3, local library
    >>> # summary = pipe.index(["music-videos/"]); matches = pipe.match("me.mp4")

The configuration is plain, frozen data (it never holds open files or sessions); the live
objects (sampler, embedder, library, mashup) are built lazily from it on first use.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from avajams._progress import Progress, ProgressCallback
from avajams.errors import AvajamsError, ConfigError, LibraryNotFoundError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from avajams.embedding import Embedder
    from avajams.index import Match, VideoIndex
    from avajams.mashup import Mashup, RenderResult
    from avajams.sampling import Sampler

__all__ = [
    "VIDEO_EXTENSIONS",
    "CustomConfig",
    "CustomEmbedderConfig",
    "CustomMashupConfig",
    "CustomSamplerConfig",
    "EmbedderConfig",
    "FrameSamplerConfig",
    "InceptionConfig",
    "IndexSummary",
    "LibraryConfig",
    "MashupConfig",
    "MoviePyMashupConfig",
    "Pipeline",
    "PipelineConfig",
    "RegisteredEmbedderConfig",
    "SamplerConfig",
    "find_videos",
    "import_object",
]

logger = logging.getLogger(__name__)

#: File name extensions ``Pipeline.index`` picks up when it walks a directory.
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
        ".wmv", ".flv", ".3gp", ".ts", ".mts", ".m2ts", ".ogv",
    }
)  # fmt: skip

_IMPORT_STRING = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CustomConfig(_Section):
    """A backend of your own: ``kind = "package.module:Name"`` is called with ``options``.

    ``Name`` may be a class or a factory function; the object it returns must meet the stage's
    protocol (e.g. :class:`avajams.Embedder` for the embedder section).
    """

    kind: Annotated[str, Field(pattern=_IMPORT_STRING)]
    """Import string of the class or factory: ``"package.module:Name"``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments it is called with."""

    def build(self) -> Any:
        """Import ``kind`` and call it with ``options``; check the result meets the protocol."""
        factory = import_object(self.kind)
        try:
            built = factory(**self.options)
        except TypeError as exc:
            raise ConfigError(
                f"{self.kind} does not accept the options {sorted(self.options)}: {exc}; "
                "fix the section's options table"
            ) from exc
        protocol = self._protocol()
        if protocol is not None and not isinstance(built, protocol):
            raise ConfigError(
                f"{self.kind} made a {type(built).__name__}, which is not an avajams "
                f"{protocol.__name__} (see the protocol's required attributes and methods); "
                "point kind at a class or factory that implements it"
            )
        return built

    def _protocol(self) -> type | None:
        """The runtime-checkable protocol the built object must meet (None: no check)."""
        return None


# --- sampler -------------------------------------------------------------------------------


class FrameSamplerConfig(_Section):
    """The default PyAV sampler (:class:`avajams.FrameSampler`) and how indexing feeds it."""

    kind: Literal["pyav"] = "pyav"
    """The PyAV sampler (the default)."""
    fps: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Frames sampled per second of video."""
    size: int | tuple[int, int] | None = 299
    """Output size: an int (square), (width, height), or None for the native size."""
    fit: Literal["stretch", "crop", "letterbox"] = "stretch"
    """How a non-square frame becomes the requested size."""
    max_duration: Annotated[float, Field(gt=0)] | None = None
    """Sample at most this many seconds of each video."""
    max_frames: Annotated[int, Field(gt=0)] | None = None
    """Sample at most this many frames of each video."""
    threads: Annotated[int, Field(ge=0)] = 1
    """FFmpeg threads per video; 1 spends the least CPU per frame, which indexing needs while
    inference keeps every core busy; 0 = FFmpeg decides (lower latency for one video)."""
    workers: Annotated[int, Field(ge=1, le=16)] = 1
    """Decoder threads feeding inference while indexing."""
    queue_frames: Annotated[int, Field(ge=1)] = 64
    """Decoded frames buffered between the decoders and inference (bounds memory)."""

    def build(self) -> Sampler:
        from avajams.sampling import FrameSampler

        return FrameSampler(
            fps=self.fps,
            size=self.size,
            fit=self.fit,
            max_duration=self.max_duration,
            max_frames=self.max_frames,
            threads=self.threads,
        )


_NOT_A_TABLE = "must be a table of options (a [section] in TOML), not a single value"


def _kind_discriminator(
    default: str, builtin: Iterable[str], other: str | None = None
) -> Discriminator:
    """Picks a section's model from its ``kind``; a section that is not a table is an error."""
    names = frozenset(builtin)

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            kind = value.get("kind", default)
        elif isinstance(value, BaseModel):
            kind = getattr(value, "kind", default)
        else:
            return None  # not a table: pydantic reports the section as invalid
        if isinstance(kind, str) and ":" in kind:
            return "custom"
        if other is not None and kind not in names:
            return other
        return str(kind)

    return Discriminator(tag, custom_error_type="section", custom_error_message=_NOT_A_TABLE)


class CustomSamplerConfig(CustomConfig):
    """A sampler of your own: ``kind = "package.module:Class"`` (an :class:`avajams.Sampler`)
    called with ``options``."""

    workers: Annotated[int, Field(ge=1, le=16)] = 1
    """Decoder threads feeding inference while indexing."""
    queue_frames: Annotated[int, Field(ge=1)] = 64
    """Decoded frames buffered between the decoders and inference (bounds memory)."""

    def _protocol(self) -> type | None:
        from avajams.sampling import Sampler

        return Sampler


SamplerConfig = Annotated[
    Annotated[FrameSamplerConfig, Tag("pyav")] | Annotated[CustomSamplerConfig, Tag("custom")],
    _kind_discriminator("pyav", ["pyav"]),
]

# --- embedder ------------------------------------------------------------------------------


class InceptionConfig(_Section):
    """The default embedder: Google's Inception v3 (2048-d pool features) as ONNX."""

    kind: Literal["inception_v3"] = "inception_v3"
    """Inception v3 on onnxruntime (the default)."""
    source: str = "fid2015"
    """Where the weights come from (see ``avajams model fetch --source``)."""
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    """onnxruntime execution providers in order of preference."""
    batch_size: Annotated[int, Field(ge=1)] = 16
    """Frames per inference call; indexing batches frames across videos to fill it."""
    threads: Annotated[int, Field(ge=0)] = 0
    """Threads of one onnxruntime run; 0: one single-threaded run per core, sharing each batch."""
    precision: Literal["fp32", "int8"] = "fp32"
    """`int8`: a quantised copy of the model, about 1.6x faster on a CPU (docs/performance.md)."""

    def build(self, *, show_progress: bool | None = None) -> Embedder:
        """The embedder; ``show_progress`` is for the one-off model build on first use."""
        from avajams.embedding import load_embedder

        return load_embedder("inception_v3", **self.build_options(), show_progress=show_progress)

    def build_options(self) -> dict[str, Any]:
        """The keyword arguments :meth:`build` passes to ``load_embedder("inception_v3")``."""
        return {
            "source": self.source,
            "providers": list(self.providers),
            "batch_size": self.batch_size,
            "threads": self.threads,
            "precision": self.precision,
        }


class RegisteredEmbedderConfig(_Section):
    """An embedder registered by name (entry point group ``avajams.embedders``)."""

    kind: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.-]*$")]
    """The registered name (``avajams model`` lists what is available)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the embedder."""
    batch_size: Annotated[int, Field(ge=1)] = 16
    """Frames per ``embed`` call while indexing."""

    def build(self) -> Embedder:
        from avajams.embedding import load_embedder

        return load_embedder(self.kind, **self.options)


class CustomEmbedderConfig(CustomConfig):
    """An embedder of your own: ``kind = "package.module:Class"`` called with ``options``."""

    batch_size: Annotated[int, Field(ge=1)] = 16
    """Frames per ``embed`` call while indexing."""

    def _protocol(self) -> type | None:
        from avajams.embedding import Embedder

        return Embedder


EmbedderConfig = Annotated[
    Annotated[InceptionConfig, Tag("inception_v3")]
    | Annotated[RegisteredEmbedderConfig, Tag("registered")]
    | Annotated[CustomEmbedderConfig, Tag("custom")],
    _kind_discriminator("inception_v3", ["inception_v3"], other="registered"),
]

# --- library -------------------------------------------------------------------------------


class LibraryConfig(_Section):
    """The library on disk: an hnswlib index of signatures + a SQLite catalogue."""

    kind: Literal["local"] = "local"
    """A library in one local directory (the only kind so far)."""
    directory: Path | None = None
    """Where the library lives (default: ``library`` in the user data directory)."""
    backend: Literal["auto", "hnsw", "exact"] = "auto"
    """Nearest-neighbour search: hnswlib, exact numpy, or chosen by library size."""
    signature: Literal["mean", "median"] = "mean"
    """How a video's frame vectors become its one signature vector."""
    match: Literal["regions", "frames"] = "regions"
    """How `match` compares a query: `regions` (the whole frame and the regions a video may
    fill — picture-in-picture, a filmed screen, black bars — each aligned in time with the
    candidates) or `frames` (whole frames only, each query frame's best match averaged)."""

    def resolved_directory(self) -> Path:
        """The library directory, defaults applied."""
        if self.directory is not None:
            return self.directory.expanduser()
        return _default_library_dir()


def _default_library_dir() -> Path:
    from avajams.index import default_library_dir

    return default_library_dir()


# --- mashup --------------------------------------------------------------------------------


class _MashupTiming(_Section):
    segment_seconds: Annotated[float, Field(gt=0)] = 2.0
    """Length of each stretch of picture before cutting to the other video."""
    start_with: Literal["user", "music"] = "user"
    """Whose picture opens the mashup."""
    user_end: Literal["loop", "hold", "music"] = "loop"
    """When the user video runs out: loop it, hold its last frame, or show the music video."""
    max_duration: Annotated[float, Field(gt=0)] | None = None
    """Cut the mashup off after this many seconds (default: the music video's length)."""
    fps: Annotated[float, Field(gt=0)] | None = None
    """Output frame rate (default: the music video's, capped at ``fps_cap``)."""
    fps_cap: Annotated[float, Field(gt=0)] = 30.0
    """Highest output frame rate taken from the music video."""

    def _timing(self) -> dict[str, Any]:
        return {
            "segment_seconds": self.segment_seconds,
            "start_with": self.start_with,
            "user_end": self.user_end,
            "max_duration": self.max_duration,
            "fps": self.fps,
            "fps_cap": self.fps_cap,
        }


class MoviePyMashupConfig(_MashupTiming):
    """The default MoviePy renderer and the cut plan's options."""

    kind: Literal["moviepy"] = "moviepy"
    """The MoviePy renderer (the default)."""
    size: tuple[int, int] | None = None
    """Output (width, height) (default: the music video's, capped at ``max_size``)."""
    max_size: tuple[int, int] = (1280, 720)
    """Largest output size taken from the music video."""
    fit: Literal["letterbox", "crop"] = "letterbox"
    """How a picture of another shape fills the output: letterbox, or crop to fill."""
    crossfade_ms: Annotated[float, Field(ge=0)] = 0.0
    """Crossfade at each cut in milliseconds (0: hard cuts)."""

    def build(self) -> Mashup:
        from avajams.mashup import Mashup

        return Mashup(
            **self._timing(),
            size=self.size,
            max_size=self.max_size,
            fit=self.fit,
            crossfade_ms=self.crossfade_ms,
        )


class CustomMashupConfig(_MashupTiming):
    """A renderer of your own (``kind = "package.module:Class"``, a :class:`avajams.Renderer`)
    called with ``options``, driven by the same cut plan options."""

    kind: Annotated[str, Field(pattern=_IMPORT_STRING)]
    """Import string of the renderer class or factory: ``"package.module:Name"``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments it is called with."""

    def build(self) -> Mashup:
        from avajams.mashup import Mashup

        renderer = CustomConfig(kind=self.kind, options=self.options).build()
        return Mashup(**self._timing(), renderer=renderer)


MashupConfig = Annotated[
    Annotated[MoviePyMashupConfig, Tag("moviepy")] | Annotated[CustomMashupConfig, Tag("custom")],
    _kind_discriminator("moviepy", ["moviepy"]),
]


# --- the whole configuration ---------------------------------------------------------------


class PipelineConfig(_Section):
    """Everything a :class:`Pipeline` needs, as frozen data; every field has a default.

    Load it from Python (``PipelineConfig(sampler={"fps": 2})``), TOML or JSON
    (:meth:`load`). Unknown keys are errors, so typos do not pass silently.
    """

    sampler: SamplerConfig = Field(default_factory=FrameSamplerConfig)
    embedder: EmbedderConfig = Field(default_factory=InceptionConfig)
    library: LibraryConfig = Field(default_factory=LibraryConfig)
    mashup: MashupConfig = Field(default_factory=MoviePyMashupConfig)

    @field_validator("library", mode="before")
    @classmethod
    def _library_path(cls, value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            return {"directory": value}
        return value

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PipelineConfig:
        """Read a configuration file: ``.toml`` or ``.json``.

        A relative ``library.directory`` is taken relative to the file's folder.
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(
                f"configuration file {file} does not exist; check the path", path=file
            ) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {file}: {exc}", path=file) from exc
        suffix = file.suffix.lower()
        try:
            if suffix == ".toml":
                data = _toml_loads(text)
            elif suffix == ".json":
                data = json.loads(text)
            else:
                raise ConfigError(
                    f"configuration file {file} must end in .toml or .json", path=file
                )
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"{file} is not valid {suffix[1:].upper()}: {exc}", path=file
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file} must hold a table/object at the top level", path=file)
        library = data.get("library")
        if isinstance(library, dict) and isinstance(library.get("directory"), str):
            directory = Path(library["directory"]).expanduser()
            if not directory.is_absolute():
                data["library"] = {**library, "directory": str(file.parent / directory)}
        return cls.from_mapping(data, source=str(file))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "configuration"
    ) -> PipelineConfig:
        """Validate a mapping (e.g. parsed TOML), raising :class:`ConfigError` on bad values."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid {source}: {problems}") from exc


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    return tomllib.loads(text)


def import_object(spec: str) -> Any:
    """Import ``"package.module:Name"`` (``Name`` may be dotted), with a helpful error."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{spec!r} is not an import string; write it as 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} from {spec!r} ({exc}); "
            "install the package that provides it or fix the name"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr!r} (from {spec!r}); fix the name"
            ) from None
    if not callable(obj):
        raise ConfigError(f"{spec!r} is not a class or function")
    return obj


# --- indexing -------------------------------------------------------------------------------


def find_videos(
    paths: Iterable[str | os.PathLike[str]],
    *,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
) -> list[Path]:
    """The video files named by ``paths``: files as given, directories walked recursively.

    In directories only files with a video extension (case-insensitive) are taken, hidden
    files and folders are skipped; the result is sorted, without duplicates. A path that does
    not exist raises :class:`avajams.VideoNotFoundError`.
    """
    from avajams.errors import VideoNotFoundError

    suffixes = {e.lower() for e in extensions}
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                        found.setdefault(Path(root, name).resolve(), None)
        elif path.exists():
            found.setdefault(path.resolve(), None)
        else:
            raise VideoNotFoundError(
                f"{path} does not exist; give video files or folders that hold them", path=path
            )
    return sorted(found)


@dataclass(frozen=True)
class IndexSummary:
    """What :meth:`Pipeline.index` did. ``failed`` maps a file to the reason it was skipped."""

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
    ``write``, ``wait`` (inference waiting for frames) and ``total``."""

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return not self.failed


@dataclass
class _Job:
    number: int
    path: Path
    key: str
    content_hash: str = ""
    duration: float | None = None
    existing: str | None = None  # the key already holding this path, when updating
    times: list[float] = field(default_factory=list)
    vectors: list[Any] = field(default_factory=list)
    pending: int = 0  # frames queued for inference but not embedded yet
    ended: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)


# messages from decoder threads to the inference loop
_START, _FRAME, _END, _ERROR, _DONE, _FATAL = range(6)


class _Decoders:
    """Decoder threads feeding a bounded queue (the PySceneDetect pattern).

    Each thread takes the next file, hashes it, probes it and streams its sampled frames into
    the queue; a per-file error becomes an ``_ERROR`` message, anything unexpected a ``_FATAL``
    one (re-raised by the consumer). :meth:`stop` always ends and joins the threads.
    """

    def __init__(self, jobs: Sequence[_Job], sampler: Sampler, workers: int, size: int) -> None:
        self.queue: queue.Queue[tuple[int, _Job | None, Any]] = queue.Queue(maxsize=size)
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

    def _put(self, item: tuple[int, _Job | None, Any]) -> float | None:
        """Queue ``item``; the seconds spent waiting for room, or None once stopped."""
        started = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return time.perf_counter() - started
            except queue.Full:
                continue
        return None

    def _next(self) -> _Job | None:
        with self._lock:
            return next(self._jobs, None)

    def _run(self) -> None:
        from avajams.index import content_hash
        from avajams.media import probe

        try:
            while (job := self._next()) is not None:
                try:
                    t0 = time.perf_counter()
                    job.content_hash = content_hash(job.path)
                    t1 = time.perf_counter()
                    job.duration = probe(job.path).duration
                    if self._put((_START, job, None)) is None:
                        return
                    count, blocked = 0, 0.0
                    frames = self._sampler.iter_frames(job.path)
                    try:
                        for t, image in frames:
                            if job.cancelled.is_set():
                                break
                            waited = self._put((_FRAME, job, (t, image)))
                            if waited is None:
                                return
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
                    if self._put((_END, job, count)) is None:
                        return
                except (AvajamsError, OSError) as exc:
                    if self._put((_ERROR, job, exc)) is None:
                        return
        except BaseException as exc:  # a bug: hand it to the consumer to re-raise
            self._put((_FATAL, None, exc))
        finally:
            self._put((_DONE, None, None))

    @property
    def count(self) -> int:
        return len(self._threads)

    def stop(self) -> None:
        """Stop the threads (they may be blocked on a full queue) and join them; idempotent."""
        self._stop.set()
        while any(t.is_alive() for t in self._threads):
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            for thread in self._threads:
                thread.join(timeout=0.05)


# --- the pipeline ----------------------------------------------------------------------------


class Pipeline:
    """Sampler -> embedder -> library -> match -> mashup, built lazily from a config.

    Live objects may also be passed in directly (they then take precedence over the config),
    e.g. ``Pipeline(embedder=avajams.testing.FakeEmbedder(), library="lib/")``. A pipeline
    holds the library open once used; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        sampler: Sampler | None = None,
        embedder: Embedder | None = None,
        library: VideoIndex | str | os.PathLike[str] | None = None,
        mashup: Mashup | None = None,
    ) -> None:
        opened: VideoIndex | None = None
        if isinstance(library, str | os.PathLike):
            base = config or PipelineConfig()
            config = base.model_copy(
                update={"library": base.library.model_copy(update={"directory": Path(library)})}
            )
        elif library is not None:
            opened = library
        self.config = config or PipelineConfig()
        self._sampler = sampler
        self._embedder = embedder
        self._library: VideoIndex | None = opened
        self._owns_library = opened is None
        self._mashup = mashup
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, config: PipelineConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None
    ) -> Pipeline:
        """A pipeline from a config object, a mapping, or a ``.toml`` / ``.json`` file."""
        if config is None or isinstance(config, PipelineConfig):
            return cls(config)
        if isinstance(config, Mapping):
            return cls(PipelineConfig.from_mapping(config))
        return cls(PipelineConfig.load(config))

    # live objects, built on first use

    @property
    def sampler(self) -> Sampler:
        """The frame sampler."""
        if self._sampler is None:
            self._sampler = self.config.sampler.build()
        return self._sampler

    @property
    def embedder(self) -> Embedder:
        """The embedder (the default builds or loads the Inception v3 model on first use)."""
        return self._get_embedder()

    def _get_embedder(self, show_progress: bool | None = None) -> Embedder:
        if self._embedder is None:
            section = self.config.embedder
            if isinstance(section, InceptionConfig):
                self._embedder = section.build(show_progress=show_progress)
            else:
                self._embedder = section.build()
        return self._embedder

    @property
    def library_directory(self) -> Path:
        """Where the library lives."""
        if self._library is not None and hasattr(self._library, "directory"):
            return Path(self._library.directory)
        return self.config.library.resolved_directory()

    def open_library(self, *, create: bool = False, readonly: bool = False) -> VideoIndex:
        """The library, opened on first use (created when ``create`` and it does not exist).

        ``readonly`` takes no write lock, so matching works while another process indexes; a
        read-only handle is reopened for writing when a later call needs to write.
        """
        if self._library is not None:
            if readonly or not self._library.readonly or not self._owns_library:
                return self._library
            self._library.close()
            self._library = None
        from avajams.index import VideoIndex

        directory = self.config.library.resolved_directory()
        try:
            library = VideoIndex.open(directory, embedder_id=self.embedder.id, readonly=readonly)
        except LibraryNotFoundError as exc:
            if not create:
                raise LibraryNotFoundError(
                    f"no library in {directory}; index some music videos first "
                    "(avajams index DIR, or Pipeline.index)",
                    path=directory,
                ) from exc
            library = VideoIndex.create(
                directory,
                dim=self.embedder.dim,
                embedder_id=self.embedder.id,
                backend=self.config.library.backend,
                sampler_settings=_sampler_settings(self.sampler),
            )
        self._library = library
        return library

    @property
    def batch_size(self) -> int:
        """Frames per inference call while indexing."""
        return int(getattr(self.config.embedder, "batch_size", 16))

    def close(self) -> None:
        """Close the library if this pipeline opened it; idempotent."""
        if self._library is not None and self._owns_library:
            self._library.close()
            self._library = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # the work

    def index(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        remove_missing: bool = False,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> IndexSummary:
        """Add the videos under ``paths`` to the library (created if needed).

        Unchanged files (same content hash) are skipped, changed ones re-indexed. Decoding runs
        in background threads feeding a bounded queue while this thread embeds frames in
        batches of ``batch_size`` taken across videos. A file that fails is reported in
        ``failed`` and skipped; every finished video is written to the library as it completes,
        so an interrupted run keeps what it did. ``remove_missing`` drops library entries whose
        file was under one of the given folders but no longer exists.

        Progress: bars for ``videos`` (done of total) and ``frames`` (embedded) when
        ``show_progress`` is true (None: when standard error is a terminal), and
        ``progress(stage, done, total)`` calls for the same two stages.
        """
        started = time.perf_counter()
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        roots = [Path(p).expanduser() for p in paths]
        files = find_videos(roots)
        embedder = self._get_embedder(show_progress)
        library = self.open_library(create=True)
        sampler = self.sampler
        _warn_if_settings_differ(library, sampler)
        jobs = [_Job(i, path, _key_for(path)) for i, path in enumerate(files)]
        added: list[str] = []
        updated: list[str] = []
        skipped: list[str] = []
        moved: list[str] = []
        started_hashes: set[str] = set()
        failed: dict[str, str] = {}
        timings = {"embed": 0.0, "write": 0.0, "wait": 0.0}
        frames_total = 0
        batch: list[tuple[_Job, float, Any]] = []

        def finish(job: _Job) -> None:
            import numpy as np

            from avajams.embedding import video_signature

            if not job.vectors:
                failed[str(job.path)] = f"{job.path} has no frames to sample; is it a video?"
                return
            t0 = time.perf_counter()
            vectors = np.concatenate(job.vectors, axis=0)
            try:
                if job.existing is not None and job.existing != job.key:
                    library.remove(job.existing)
                library.add(
                    job.key,
                    video_signature(vectors, method=self.config.library.signature),
                    frames=vectors,
                    times=np.asarray(job.times, dtype=np.float64),
                    path=str(job.path),
                    duration=job.duration,
                    content_hash=job.content_hash,
                    metadata={"name": job.path.name},
                )
            except AvajamsError as exc:
                failed[str(job.path)] = str(exc)
                return
            finally:
                timings["write"] += time.perf_counter() - t0
            (updated if job.existing is not None else added).append(str(job.path))
            files_bar.update()

        def flush() -> None:
            import numpy as np

            if not batch:
                return
            live = [(job, t, image) for job, t, image in batch if not job.cancelled.is_set()]
            batch.clear()
            if live:
                t0 = time.perf_counter()
                vectors = embedder.embed(np.stack([image for _, _, image in live]))
                timings["embed"] += time.perf_counter() - t0
                frames_bar.update(len(live))
                for row, (job, t, _) in enumerate(live):
                    job.times.append(t)
                    job.vectors.append(vectors[row : row + 1])
                    job.pending -= 1
                    if job.ended and job.pending == 0:
                        finish(job)

        files_bar = Progress(
            "videos", len(jobs), unit="video", show=show_progress, callback=progress
        )
        frames_bar = Progress("frames", None, unit="frame", show=show_progress, callback=progress)
        decoders = _Decoders(
            jobs,
            sampler,
            workers=self.config.sampler.workers,
            size=self.config.sampler.queue_frames,
        )
        try:
            running = decoders.count
            while running:
                t0 = time.perf_counter()
                try:
                    kind, job, payload = decoders.queue.get(timeout=0.1)
                except queue.Empty:  # wake up now and then so Ctrl-C gets through
                    timings["wait"] += time.perf_counter() - t0
                    continue
                timings["wait"] += time.perf_counter() - t0
                if kind == _DONE:
                    running -= 1
                elif kind == _FATAL:
                    raise payload
                elif kind == _START:
                    assert job is not None
                    known = library.find_by_hash(job.content_hash)
                    if job.content_hash in started_hashes:  # a copy of a file in this run
                        job.cancelled.set()
                        skipped.append(str(job.path))
                        files_bar.update()
                    elif known is not None:
                        job.cancelled.set()
                        if known != job.key and _move_if_gone(library, known, job):
                            moved.append(str(job.path))
                        else:
                            skipped.append(str(job.path))
                        files_bar.update()
                    elif job.key in library:
                        job.existing = job.key
                    if not job.cancelled.is_set():
                        started_hashes.add(job.content_hash)
                elif kind == _FRAME:
                    assert job is not None
                    if not job.cancelled.is_set():
                        job.pending += 1
                        frames_total += 1
                        batch.append((job, payload[0], payload[1]))
                        if len(batch) >= self.batch_size:
                            flush()
                elif kind == _END:
                    assert job is not None
                    if not job.cancelled.is_set():
                        job.ended = True
                        if job.pending == 0:
                            finish(job)
                elif kind == _ERROR:
                    assert job is not None
                    job.cancelled.set()
                    failed[str(job.path)] = str(payload)
                    logger.info("skipped %s: %s", job.path, payload)
                    files_bar.update()
            flush()
        finally:
            decoders.stop()
            files_bar.close()
            frames_bar.close()
        removed: list[str] = []
        if remove_missing:
            removed = self._remove_missing(library, roots)
        timings["hash"] = decoders.hash_seconds
        timings["decode"] = decoders.decode_seconds
        timings["total"] = time.perf_counter() - started
        return IndexSummary(
            added=tuple(added),
            updated=tuple(updated),
            skipped=tuple(skipped),
            moved=tuple(moved),
            removed=tuple(removed),
            failed=failed,
            frames=frames_total,
            timings=timings,
        )

    def _remove_missing(self, library: VideoIndex, roots: Sequence[Path]) -> list[str]:
        folders = [r.resolve() for r in roots if r.is_dir()]
        removed: list[str] = []
        for entry in list(library.entries()):
            path = entry.path
            if path is None or Path(path).exists():
                continue
            if any(Path(path).is_relative_to(folder) for folder in folders):
                library.remove(entry.key)
                removed.append(path)
        return removed

    def embed_video(
        self, video: str | os.PathLike[str]
    ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """Sample and embed one video: (times (N,), unit frame vectors (N, dim))."""
        import numpy as np

        frames = self.sampler.sample(video)
        if len(frames) == 0:
            from avajams.errors import VideoDecodeError

            raise VideoDecodeError(f"{video} has no frames to sample; is it a video?", path=video)
        size = self.batch_size
        vectors = np.concatenate(
            [self.embedder.embed(frames.images[i : i + size]) for i in range(0, len(frames), size)]
        )
        return frames.times, vectors

    def match(
        self,
        video: str | os.PathLike[str],
        k: int = 5,
        where: Mapping[str, Any] | None = None,
        *,
        show_progress: bool | None = None,
    ) -> list[Match]:
        """The ``k`` library videos most similar to ``video``, best first.

        Each :class:`avajams.Match` has its score (frame-level re-ranked) and its best-aligned
        frame pairs; with ``[library] match = "regions"`` (the default) also the ``span`` of
        the query that aligned with it and, for a region, its ``box``. ``where`` filters on
        library metadata. ``show_progress`` applies to building the model on first use.
        """
        from avajams.embedding import video_signature

        self._get_embedder(show_progress)
        library = self.open_library(readonly=True)
        if self.config.library.match == "regions":
            from avajams._match import query_tracks

            tracks = query_tracks(
                video, self.sampler, self.embedder, self.embed_video, batch_size=self.batch_size
            )
            return library.search_tracks(
                tracks, k=k, where=dict(where) if where is not None else None
            )
        times, vectors = self.embed_video(video)
        signature = video_signature(vectors, method=self.config.library.signature)
        return library.search(
            signature,
            k=k,
            where=dict(where) if where is not None else None,
            query_frames=vectors,
            query_times=times,
        )

    def report(
        self,
        video: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        k: int = 3,
        matches: Sequence[Match] | None = None,
    ) -> Path:
        """Write the match report picture (see :func:`avajams.report.write_report`) to ``out``."""
        from avajams.report import write_report

        if matches is None:
            matches = self.match(video, k=k)
        return write_report(video, matches, out).path

    def build_mashup(self) -> Mashup:
        """The configured :class:`avajams.Mashup` (built once)."""
        if self._mashup is None:
            self._mashup = self.config.mashup.build()
        return self._mashup

    def best_music(self, video: str | os.PathLike[str]) -> Match:
        """The library's best match for ``video`` whose file still exists."""
        from avajams.errors import LibraryError

        for match in self.match(video, k=5):
            if match.path is not None and Path(match.path).is_file():
                return match
        raise LibraryError(
            f"no music video in the library at {self.library_directory} matches {video} with "
            "a file that still exists; index some music videos first (avajams index DIR)",
            path=self.library_directory,
        )

    def mashup(
        self,
        video: str | os.PathLike[str],
        out: str | os.PathLike[str],
        music: str | os.PathLike[str] | None = None,
        *,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> RenderResult:
        """Render the mashup of ``video`` with ``music`` (default: its best library match)."""
        if music is None:
            music = self.best_music(video).path
            assert music is not None
        return self.build_mashup().render(
            user=video, music=music, out=out, show_progress=show_progress, progress=progress
        )


def _move_if_gone(library: VideoIndex, known: str, job: _Job) -> bool:
    """Re-key entry ``known`` to ``job``'s path when its own file is gone (the file moved)."""
    entry = library.get(known)
    if entry.path is None or Path(entry.path).exists():
        return False  # a copy of a video already indexed: keep the one entry
    assert entry.signature is not None
    with library.transaction():
        library.add(
            job.key,
            entry.signature,
            frames=entry.frames,
            times=entry.times,
            path=str(job.path),
            duration=entry.duration,
            content_hash=entry.content_hash,
            metadata={**entry.metadata, "name": job.path.name},
        )
        library.remove(known)
    return True


def _key_for(path: Path) -> str:
    """A video's library key: its absolute path, with forward slashes."""
    return path.resolve().as_posix()


def _warn_if_settings_differ(library: VideoIndex, sampler: Sampler) -> None:
    """Log a warning when this run samples differently from how the library was built."""
    stored = library.sampler_settings
    current = _sampler_settings(sampler)
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


def _sampler_settings(sampler: Sampler) -> dict[str, Any] | None:
    settings = getattr(sampler, "settings", None)
    if callable(settings):
        result = settings()
        return dict(result) if isinstance(result, Mapping) else None
    return None


# --- the configuration reference (docs/configuration.md is generated from this) -----------

#: (TOML table, section models in the order the reference lists them)
CONFIG_SECTIONS: tuple[tuple[str, tuple[type[BaseModel], ...]], ...] = (
    ("sampler", (FrameSamplerConfig, CustomSamplerConfig)),
    ("embedder", (InceptionConfig, RegisteredEmbedderConfig, CustomEmbedderConfig)),
    ("library", (LibraryConfig,)),
    ("mashup", (MoviePyMashupConfig, CustomMashupConfig)),
)


def _type_name(annotation: Any) -> str:
    """A field's type in TOML words: ``float``, ``"a" or "b"``, ``[int, int]``, ``table``."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"[{_type_name(args[0])}, ...]"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if origin is dict:
        return "table"
    names = {type(None): "none", str: "string", Path: "path", float: "float", int: "int"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(info: Any) -> str:
    from pydantic_core import PydanticUndefined

    if info.default is PydanticUndefined:
        return "{}" if info.default_factory is dict else "(required)"
    value = info.default
    if value is None:
        return "none"
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def config_reference() -> str:
    """Markdown tables of every configuration field (the body of docs/configuration.md)."""
    lines: list[str] = []
    for table, models in CONFIG_SECTIONS:
        for model in models:
            doc = " ".join((model.__doc__ or "").split())
            lines += [f"### `[{table}]` — {model.__name__}", "", doc, ""]
            lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
            fields = sorted(model.model_fields.items(), key=lambda item: item[0] != "kind")
            for name, info in fields:
                description = " ".join((info.description or "").split())
                lines.append(
                    f"| `{name}` | `{_type_name(info.annotation)}` | `{_default_text(info)}` "
                    f"| {description} |"
                )
            lines.append("")
    return "\n".join(lines)
