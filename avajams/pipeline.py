"""``Pipeline``: the stages wired together, configured by a pydantic ``PipelineConfig``.

    >>> from avajams import Pipeline
    >>> pipe = Pipeline()                      # defaults: 1 frame/s, Inception v3, local library
    >>> # summary = pipe.index(["music-videos/"]); matches = pipe.match("me.mp4")

The configuration (:mod:`avajams.config`) is plain, frozen data; the live objects (sampler,
embedder, library, mashup) are built lazily from it on first use. Indexing itself lives in
:mod:`avajams.ingest`; this module is the facade over the stages.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from avajams._progress import ProgressCallback
from avajams.config import (
    CustomConfig,
    CustomEmbedderConfig,
    CustomMashupConfig,
    CustomSamplerConfig,
    EmbedderConfig,
    FrameSamplerConfig,
    InceptionConfig,
    LibraryConfig,
    MashupConfig,
    MoviePyMashupConfig,
    PipelineConfig,
    RegisteredEmbedderConfig,
    SamplerConfig,
    import_object,
)
from avajams.errors import LibraryError, LibraryNotFoundError, VideoNotFoundError
from avajams.ingest import (
    VIDEO_EXTENSIONS,
    Indexer,
    IndexSummary,
    find_videos,
    no_videos_message,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from avajams.embedding import Embedder
    from avajams.index import Match, VideoIndex
    from avajams.mashup import Mashup, RenderResult
    from avajams.sampling import Sampler

# The configuration and indexing names are re-exported here: they were defined in this module
# before it was split by job, and code written against avajams 0.1 imports them from here.
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
            config = (config or PipelineConfig()).with_library(library)
        elif library is not None:
            opened = library
        self.config = config or PipelineConfig()
        self._sampler = sampler
        self._embedder = embedder
        self._library: VideoIndex | None = opened
        self._owns_library = opened is None
        self._mashup = mashup

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
            self._embedder = self.config.embedder.build(show_progress=show_progress)
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
        from avajams.sampling import sampler_settings

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
                sampler_settings=sampler_settings(self.sampler),
            )
        self._library = library
        return library

    @property
    def batch_size(self) -> int:
        """Frames per inference call while indexing."""
        return self.config.embedder.batch_size

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
        file was under one of the given folders but no longer exists. Paths that hold no video
        raise :class:`avajams.VideoNotFoundError` (and create no library).

        Progress: bars for ``videos`` (done of total) and ``frames`` (embedded) when
        ``show_progress`` is true (None: when standard error is a terminal), and
        ``progress(stage, done, total)`` calls for the same two stages.
        """
        from avajams.ingest import warn_if_settings_differ

        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        roots = [Path(p).expanduser() for p in paths]
        files = find_videos(roots)
        if not files and not (remove_missing and self._library_exists()):
            raise VideoNotFoundError(no_videos_message(roots), path=roots[0] if roots else None)
        embedder = self._get_embedder(show_progress)
        library = self.open_library(create=True)
        warn_if_settings_differ(library, self.sampler)
        indexer = Indexer(
            library,
            embedder,
            self.sampler,
            signature=self.config.library.signature,
            batch_size=self.batch_size,
            workers=self.config.sampler.workers,
            queue_frames=self.config.sampler.queue_frames,
            show_progress=show_progress,
            progress=progress,
        )
        return indexer.run(files, prune=roots if remove_missing else ())

    def _library_exists(self) -> bool:
        """Whether the library exists (without building the embedder to open it)."""
        if self._library is not None:
            return True
        from avajams.index import VideoIndex

        try:
            VideoIndex.open(self.config.library.resolved_directory(), readonly=True).close()
        except LibraryNotFoundError:
            return False
        return True

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
        music, _ = self._best_music_path(video)
        return music

    def _best_music_path(self, video: str | os.PathLike[str]) -> tuple[Match, str]:
        for match in self.match(video, k=5):
            if match.path is not None and Path(match.path).is_file():
                return match, match.path
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
            _, music = self._best_music_path(video)
        return self.build_mashup().render(
            user=video, music=music, out=out, show_progress=show_progress, progress=progress
        )
