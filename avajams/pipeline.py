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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from avajams._progress import Progress, ProgressCallback
from avajams.config import (
    CustomConfig,
    CustomEmbedderConfig,
    CustomMashupConfig,
    CustomSamplerConfig,
    EfficientNetConfig,
    EmbedderConfig,
    ExecutorConfig,
    FrameSamplerConfig,
    InceptionConfig,
    LibraryConfig,
    LocalExecutorConfig,
    MashupConfig,
    MoviePyMashupConfig,
    PipelineConfig,
    RayExecutorConfig,
    RegisteredEmbedderConfig,
    SamplerConfig,
    import_object,
)
from avajams.display import Matches
from avajams.errors import LibraryError, LibraryNotFoundError, VideoNotFoundError
from avajams.ingest import (
    VIDEO_EXTENSIONS,
    Indexer,
    IndexInterrupted,
    IndexSummary,
    LabelSummary,
    find_videos,
    no_videos_message,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from avajams.embedding import Embedder
    from avajams.index import Match, VideoIndex
    from avajams.labels import Labeller, VideoLabels
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
    "EfficientNetConfig",
    "EmbedderConfig",
    "FrameSamplerConfig",
    "InceptionConfig",
    "IndexInterrupted",
    "IndexSummary",
    "LabelledMatches",
    "LibraryConfig",
    "MashupConfig",
    "MoviePyMashupConfig",
    "MusicChoice",
    "Pipeline",
    "PipelineConfig",
    "RegisteredEmbedderConfig",
    "SamplerConfig",
    "find_videos",
    "import_object",
]


@dataclass(frozen=True)
class LabelledMatches:
    """:meth:`Pipeline.match_with_labels`: the matches, and what the query shows.

    ``query`` is the query video's labels (None when labels are off); each match carries its
    own stored labels in ``Match.labels``; :meth:`shared` names those both have.
    """

    query: VideoLabels | None
    matches: list[Match]

    def shared(self, match: Match) -> tuple[str, ...]:
        """Label names the query and ``match`` both show (each at a mean probability of at
        least :data:`avajams.labels.SHARED_MIN`), in the query's order."""
        from avajams.labels import shared_labels

        return () if self.query is None else shared_labels(self.query.video, match.labels)


@dataclass(frozen=True)
class MusicChoice:
    """The music video :meth:`Pipeline.choose_music` picked, and the better matches it passed
    over with the reason for each (``"it has no soundtrack"``, ``"its file no longer exists"``)."""

    match: Match
    path: str
    skipped: tuple[tuple[Match, str], ...] = ()


class Pipeline:
    """Sampler -> embedder (+ labeller) -> library -> match -> mashup, built lazily from a
    config.

    Live objects may also be passed in directly (they then take precedence over the config),
    e.g. ``Pipeline(embedder=avajams.testing.FakeEmbedder(), library="lib/")``;
    ``labeller=False`` turns labels off whatever the config says. A pipeline holds the library
    open once used; close it (or use ``with``) when done.
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        sampler: Sampler | None = None,
        embedder: Embedder | None = None,
        library: VideoIndex | str | os.PathLike[str] | None = None,
        mashup: Mashup | None = None,
        labeller: Labeller | bool | None = None,
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
        self._given = {"sampler": sampler is not None, "embedder": embedder is not None}
        self._labeller: Labeller | None = None if isinstance(labeller, bool) else labeller
        # None: as the config says; True or a Labeller: on; False: off
        self._labels_on = self.config.labels.enabled if labeller is None else labeller is not False

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
    def labeller(self) -> Labeller | None:
        """The ImageNet labeller (EfficientNet-Lite0, built on first use); None when labels
        are off (``[labels] enabled = false``)."""
        return self._get_labeller()

    def _get_labeller(self, show_progress: bool | None = None) -> Labeller | None:
        return self._require_labeller(show_progress) if self._labels_on else None

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

        def create_library() -> VideoIndex:
            return VideoIndex.create(
                directory,
                dim=self.embedder.dim,
                embedder_id=self.embedder.id,
                backend=self.config.library.backend,
                sampler_settings=sampler_settings(self.sampler),
            )

        if create and directory.exists() and not directory.is_dir():
            create_library()  # raises: it cannot make a directory where a file is
        try:
            library = VideoIndex.open(directory, embedder_id=self.embedder.id, readonly=readonly)
        except LibraryNotFoundError as exc:
            if not create:
                raise LibraryNotFoundError(
                    f"no library in {directory}; index some music videos first "
                    "(avajams index DIR, or Pipeline.index)",
                    path=directory,
                ) from exc
            library = create_library()
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
        executor: ExecutorConfig | Mapping[str, Any] | None = None,
    ) -> IndexSummary:
        """Add the videos under ``paths`` to the library (created if needed).

        Unchanged files (same content hash) are skipped, changed ones re-indexed. Decoding runs
        in background threads feeding a bounded queue while this thread embeds frames in
        batches of ``batch_size`` taken across videos. A file that fails is reported in
        ``failed`` and skipped; every finished video is written to the library as it completes,
        so an interrupted run keeps what it did. ``remove_missing`` drops library entries whose
        file was under one of the given folders but no longer exists. Paths that hold no video
        raise :class:`avajams.VideoNotFoundError` (and create no library). Ctrl-C raises
        :class:`~avajams.ingest.IndexInterrupted` (a ``KeyboardInterrupt``) with what was saved.

        Progress: bars for ``videos`` (done of total) and ``frames`` (embedded) when
        ``show_progress`` is true (None: when standard error is a terminal), and
        ``progress(stage, done, total)`` calls for the same two stages.

        ``executor`` (default: the config's ``[executor]``) chooses where the work runs, e.g.
        ``{"kind": "ray", "address": "auto"}`` for a Ray cluster (docs/scale.md).
        """
        from avajams.ingest import warn_if_settings_differ

        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        roots = [Path(p).expanduser() for p in paths]
        files = find_videos(roots)
        if not files and not (remove_missing and self._library_exists()):
            raise VideoNotFoundError(no_videos_message(roots), path=roots[0] if roots else None)
        where = self._executor(executor)
        if where.kind == "ray":
            return self._index_on_ray(where, files, roots, remove_missing, show_progress, progress)
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
            labeller=self._get_labeller(show_progress),
        )
        return indexer.run(files, prune=roots if remove_missing else ())

    def _executor(
        self, executor: ExecutorConfig | Mapping[str, Any] | None
    ) -> LocalExecutorConfig | RayExecutorConfig:
        if executor is None:
            return self.config.executor
        if isinstance(executor, LocalExecutorConfig | RayExecutorConfig):
            return executor
        return PipelineConfig.from_mapping({"executor": dict(executor)}, source="executor").executor

    def _index_on_ray(
        self,
        executor: RayExecutorConfig,
        files: list[Path],
        roots: list[Path],
        remove_missing: bool,
        show_progress: bool | None,
        progress: ProgressCallback | None,
    ) -> IndexSummary:
        """Index on a Ray cluster (:mod:`avajams.ingest_ray`): the cluster builds the sampler
        and embedder from their config sections, so live ones given to the pipeline cannot go."""
        from avajams.errors import ConfigError
        from avajams.ingest import warn_if_settings_differ
        from avajams.ingest_ray import RayIndexer, driver_embedder_config

        given = [name for name, live in self._given.items() if live]
        if given:
            raise ConfigError(
                f"indexing on Ray builds the {' and '.join(given)} on the cluster from the "
                f"configuration, but this pipeline was given live {' and '.join(given)} objects; "
                "describe them in the config instead (e.g. [embedder] kind = "
                '"package.module:Class")'
            )
        if self._embedder is None:
            self._embedder = driver_embedder_config(self.config.embedder).build(
                show_progress=show_progress
            )
        library = self.open_library(create=True)
        warn_if_settings_differ(library, self.sampler)
        indexer = RayIndexer(
            library,
            executor,
            sampler=self.config.sampler,
            embedder=self.config.embedder,
            signature=self.config.library.signature,
            show_progress=show_progress,
            progress=progress,
        )
        return indexer.run(files, prune=roots if remove_missing else ())

    def update_labels(
        self,
        keys: Sequence[str] | None = None,
        *,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> LabelSummary:
        """Label library videos that have no labels (e.g. indexed before labels existed).

        Each file is decoded again with the configured sampler and its frames labelled; the
        embeddings are not recomputed (the embedder is not even built). ``keys`` picks the
        videos (default: every unlabelled one). Works when ``[labels] enabled = false`` too:
        asking is enabling.
        """
        from avajams.ingest import LabelPass

        labeller = self._require_labeller(show_progress)
        with self._labels_library(readonly=False) as library:
            return LabelPass(
                library,
                labeller,
                self.sampler,
                batch_size=self.batch_size,
                workers=self.config.sampler.workers,
                queue_frames=self.config.sampler.queue_frames,
                show_progress=show_progress,
                progress=progress,
            ).run(keys)

    def _require_labeller(self, show_progress: bool | None = None) -> Labeller:
        """The labeller, built from ``[labels]`` even when labels are off for indexing."""
        if self._labeller is None:
            from avajams.labels import Labeller

            options = self.config.labels
            self._labeller = Labeller(
                providers=list(options.providers),
                threads=options.threads,
                show_progress=show_progress,
            )
        return self._labeller

    @contextmanager
    def _labels_library(self, *, readonly: bool) -> Iterator[VideoIndex]:
        """The library for work on labels alone, which needs no embedder: the pipeline's open
        handle when it has a suitable one, else one opened (without the embedder check, which
        would build the embedder) for this call only."""
        if self._library is not None and (readonly or not self._library.readonly):
            yield self._library
            return
        if self._library is not None and self._owns_library:
            self._library.close()  # a read-only handle; this call needs to write
            self._library = None
        from avajams.index import VideoIndex

        directory = self.config.library.resolved_directory()
        try:
            library = VideoIndex.open(directory, readonly=readonly)
        except LibraryNotFoundError as exc:
            raise LibraryNotFoundError(
                f"no library in {directory}; index some music videos first "
                "(avajams index DIR, or Pipeline.index)",
                path=directory,
            ) from exc
        with library:
            yield library

    def labels(
        self, video: str | os.PathLike[str], *, show_progress: bool | None = None
    ) -> VideoLabels:
        """The ImageNet labels of ``video``: the library's stored ones when the file is
        indexed and labelled (same content), else computed now from its sampled frames."""
        from avajams.index import content_hash

        path = Path(video)
        if not path.is_file():
            raise VideoNotFoundError(f"no such video file: {path}", path=path)
        if self._library is not None or self._library_exists():
            with self._labels_library(readonly=True) as library:
                key = library.find_by_hash(content_hash(path))
                stored = library.labels(key) if key is not None else None
            if stored is not None:
                return stored
        frames = self.sampler.sample(video)
        if len(frames) == 0:
            from avajams.errors import VideoDecodeError

            raise VideoDecodeError(f"{video} has no frames to sample; is it a video?", path=video)
        return self._require_labeller(show_progress).label(frames.images, frames.times)

    def find_label(self, name: str, *, min_probability: float = 0.0) -> list[tuple[str, float]]:
        """``(key, probability)`` of the library videos labelled ``name``, most probable
        first (see :meth:`avajams.VideoIndex.find_by_label`)."""
        with self._labels_library(readonly=True) as library:
            return library.find_by_label(name, min_probability=min_probability)

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
        self, video: str | os.PathLike[str], *, progress: ProgressCallback | None = None
    ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """Sample and embed one video: (times (N,), unit frame vectors (N, dim)).

        ``progress(stage, done, total)`` is called for ``sampling`` (frames decoded, when the
        sampler reports it) and ``embedding`` (frames embedded of the total).
        """
        times, vectors, _ = self._embed_and_label(video, label=False, progress=progress)
        return times, vectors

    def _embed_and_label(
        self,
        video: str | os.PathLike[str],
        *,
        label: bool,
        progress: ProgressCallback | None = None,
    ) -> tuple[NDArray[np.float64], NDArray[np.float32], VideoLabels | None]:
        """Sample ``video`` once; embed its frames and, when ``label``, label the same frames."""
        import numpy as np

        from avajams.sampling import FrameSampler

        sampler = self.sampler
        if progress is not None and isinstance(sampler, FrameSampler):
            frames = sampler.sample(video, show_progress=False, progress=progress)
        else:
            frames = sampler.sample(video)
        if len(frames) == 0:
            from avajams.errors import VideoDecodeError

            raise VideoDecodeError(f"{video} has no frames to sample; is it a video?", path=video)
        size = self.batch_size
        chunks: list[NDArray[np.float32]] = []
        with Progress("embedding", len(frames), unit="frame", show=False, callback=progress) as bar:
            for i in range(0, len(frames), size):
                chunks.append(self.embedder.embed(frames.images[i : i + size]))
                bar.update(len(chunks[-1]))
        labeller = self._get_labeller() if label else None
        labels = labeller.label(frames.images, frames.times) if labeller is not None else None
        return frames.times, np.concatenate(chunks), labels

    def match(
        self,
        video: str | os.PathLike[str],
        k: int = 5,
        where: Mapping[str, Any] | None = None,
        *,
        label: str | Sequence[str] | None = None,
        show_progress: bool | None = None,
    ) -> Matches:
        """The ``k`` library videos most similar to ``video``, best first.

        Each :class:`avajams.Match` has its score (frame-level re-ranked), its best-aligned
        frame pairs and its stored labels; with ``[library] match = "regions"`` (the default)
        also the ``span`` of the query that aligned with it and, for a region, its ``box``.
        ``where`` filters on library metadata, ``label`` on the videos' ImageNet labels (all
        of them). ``show_progress`` applies to building the model on first use. The result is
        a list (:class:`avajams.display.Matches`) that a notebook shows as a table with the
        aligned frames.
        """
        self._get_embedder(show_progress)
        self.open_library(readonly=True)  # fail before embedding when there is no library
        if self.config.library.match == "regions":
            found = self._match_regions(video, self.embed_video, k=k, where=where, label=label)
            return Matches(found, query=video)
        times, vectors = self.embed_video(video)
        return Matches(
            self.match_vectors(times, vectors, k=k, where=where, label=label), query=video
        )

    def match_with_labels(
        self,
        video: str | os.PathLike[str],
        k: int = 5,
        where: Mapping[str, Any] | None = None,
        *,
        label: str | Sequence[str] | None = None,
        show_progress: bool | None = None,
    ) -> LabelledMatches:
        """:meth:`match`, plus the query's own labels, from the same sampled frames (none
        when labels are off)."""
        self._get_embedder(show_progress)
        self._get_labeller(show_progress)
        self.open_library(readonly=True)  # fail before embedding when there is no library
        times, vectors, labels = self._embed_and_label(video, label=True)
        if self.config.library.match == "regions":
            matches = self._match_regions(
                video, lambda _: (times, vectors), k=k, where=where, label=label
            )
        else:
            matches = self.match_vectors(times, vectors, k=k, where=where, label=label)
        return LabelledMatches(labels, Matches(matches, query=video))

    def _match_regions(
        self,
        video: str | os.PathLike[str],
        embed_video: Callable[
            [str | os.PathLike[str]], tuple[NDArray[np.float64], NDArray[np.float32]]
        ],
        *,
        k: int,
        where: Mapping[str, Any] | None,
        label: str | Sequence[str] | None,
    ) -> list[Match]:
        """The whole frame and the regions of ``video`` aligned with the library
        (``match = "regions"``; see avajams/_match.py)."""
        from avajams._match import query_tracks

        tracks = query_tracks(
            video, self.sampler, self.embedder, embed_video, batch_size=self.batch_size
        )
        library = self.open_library(readonly=True)
        return library.search_tracks(
            tracks, k=k, where=dict(where) if where is not None else None, label=label
        )

    def match_vectors(
        self,
        times: NDArray[np.float64],
        vectors: NDArray[np.float32],
        k: int = 5,
        where: Mapping[str, Any] | None = None,
        *,
        label: str | Sequence[str] | None = None,
    ) -> Matches:
        """:meth:`match` for a video already embedded (``times``, ``vectors`` from
        :meth:`embed_video`): re-matching with other options never re-embeds it.

        Whole frames only (without the pixels there are no regions to look in): with
        ``match = "regions"`` they are aligned in time (span, no box)."""
        from avajams.embedding import video_signature

        library = self.open_library(readonly=True)
        if self.config.library.match == "regions":
            from avajams.index import QueryTrack

            return Matches(
                library.search_tracks(
                    [QueryTrack(vectors, times)],
                    k=k,
                    where=dict(where) if where is not None else None,
                    label=label,
                )
            )
        signature = video_signature(vectors, method=self.config.library.signature)
        found = library.search(
            signature,
            k=k,
            where=dict(where) if where is not None else None,
            query_frames=vectors,
            query_times=times,
            label=label,
        )
        return Matches(found)

    def report(
        self,
        video: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        k: int = 3,
        matches: Sequence[Match] | None = None,
        expected: str | os.PathLike[str] | None = None,
        query_labels: VideoLabels | None = None,
    ) -> Path:
        """Write the match report picture (see :func:`avajams.report.write_report`) to ``out``;
        ``expected``, when the right answer is known, marks it. Without ``matches`` the video
        is matched (and labelled, when labels are on) first."""
        from avajams.report import write_report

        if matches is None:
            result = self.match_with_labels(video, k=k)
            matches, query_labels = result.matches, result.query
        return write_report(video, matches, out, expected=expected, query_labels=query_labels).path

    def build_mashup(self) -> Mashup:
        """The configured :class:`avajams.Mashup` (built once)."""
        if self._mashup is None:
            self._mashup = self.config.mashup.build()
        return self._mashup

    def best_music(self, video: str | os.PathLike[str]) -> Match:
        """The library's best match for ``video`` usable as the music of a mashup."""
        return self.choose_music(video).match

    def choose_music(self, video: str | os.PathLike[str], k: int = 5) -> MusicChoice:
        """The best of ``video``'s ``k`` best matches that a mashup can use: its file still
        exists and has a soundtrack. Better matches passed over are in ``skipped``.

        Raises :class:`avajams.MissingAudioError` when no candidate has a soundtrack (naming
        the silent ones), :class:`avajams.LibraryError` when no candidate file exists.
        """
        from avajams.errors import MissingAudioError
        from avajams.media import probe

        skipped: list[tuple[Match, str]] = []
        for match in self.match(video, k=k):
            if match.path is None or not Path(match.path).is_file():
                skipped.append((match, "its file no longer exists"))
            elif not probe(match.path).has_audio:
                skipped.append((match, "it has no soundtrack"))
            else:
                return MusicChoice(match, match.path, tuple(skipped))
        silent = [m for m, reason in skipped if reason == "it has no soundtrack"]
        if silent:
            names = ", ".join(Path(m.path or m.key).name for m in silent)
            raise MissingAudioError(
                f"the matches for {video} that still exist have no soundtrack ({names}); a "
                "mashup keeps the music video's sound, so pass a music video with sound "
                "(--music FILE) or index some",
                path=video,
            )
        raise LibraryError(
            f"no music video in the library at {self.library_directory} matches {video} with "
            "a file that still exists and has a soundtrack; index some music videos first "
            "(avajams index DIR)",
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
        """Render the mashup of ``video`` with ``music`` (default: the best library match
        with a soundtrack, see :meth:`choose_music`). ``out`` and the mashup options are
        checked before matching."""
        from avajams.mashup.render import check_output_path

        mashup = self.build_mashup()
        check_output_path(out, (video,) if music is None else (video, music))
        if music is None:
            music = self.choose_music(video).path
        return mashup.render(
            user=video, music=music, out=out, show_progress=show_progress, progress=progress
        )
