"""Executing a :class:`~avajams.mashup.plan.CutPlan`: the renderer protocol and its MoviePy backend.

The MoviePy renderer reads each source itself with PyAV, frame-accurately, in one forward
decoding pass per source (the user's video is rewound only when the plan loops it). Every
picture is conformed to one canvas with swscale (letterbox or crop-to-fill, rotation side data
applied), and MoviePy gets a single ``VideoClip`` whose frame function follows the plan, with
the music video's soundtrack as its one continuous audio track: decoded from the music video with
PyAV, aligned to its first video frame, encoded once to AAC and muxed without re-encoding.
MoviePy encodes the picture with the ffmpeg that imageio-ffmpeg bundles (H.264, yuv420p,
``+faststart``).

MoviePy 2.2's ``CompositeVideoClip`` is avoided on purpose: it is about ten times slower than
MoviePy 1 (MoviePy issues #2395, #2506) and is not needed for a hard cut.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Generator, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from avajams._progress import Progress, ProgressCallback
from avajams.errors import (
    AvajamsError,
    ConfigError,
    MissingAudioError,
    OutputPathError,
    RenderError,
    VideoDecodeError,
)
from avajams.mashup.plan import DEFAULT_MAX_SIZE, CutPlan, FitMode, Segment, canvas_size
from avajams.media import (  # placement is re-exported: where a picture lands on the canvas
    FrameReader,
    VideoInfo,
    conform,
    placement,
    probe,
)

__all__ = ["MoviePyRenderer", "Renderer", "check_output_path", "placement", "probe_music"]

log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]

#: Containers the renderer writes (H.264 + AAC).
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov")


@runtime_checkable
class Renderer(Protocol):
    """Anything that turns a cut plan plus its two sources into a video file.

    ``render`` writes ``out`` (the music video's soundtrack, the picture following ``plan``)
    and returns its path. It raises :class:`~avajams.errors.MissingAudioError` when the music
    video has no audio and :class:`~avajams.errors.OutputPathError` when ``out`` cannot be
    written, both before doing any work, and leaves no partial file behind on failure.
    """

    def render(
        self,
        plan: CutPlan,
        user: StrPath,
        music: StrPath,
        out: StrPath,
        *,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path: ...


def probe_music(music: StrPath) -> VideoInfo:
    """Probe the music video, refusing one without a soundtrack (MissingAudioError).

    A :class:`~avajams.media.VideoInfo` is checked without reading the file again.
    """
    info = probe(music)
    if not info.has_audio:
        raise MissingAudioError(
            f"music video {info.path} has no audio track; a mashup keeps the music video's "
            "soundtrack, so pick a music video with sound",
            path=music,
        )
    return info


def check_output_path(out: StrPath, inputs: tuple[StrPath, ...] = ()) -> Path:
    """Validate where a mashup will be written; return it as a Path.

    Raises OutputPathError when the directory is missing, is not a directory, or is not
    writable, when ``out`` is a directory, or when it is one of ``inputs`` (the render would
    replace its own source); ConfigError for a suffix other than .mp4/.m4v/.mov.
    """
    path = Path(out)
    for source in inputs:
        if path.resolve() == Path(source).resolve():
            raise OutputPathError(
                f"output {path} is also an input of the mashup ({os.fspath(source)}); writing "
                "it would replace that video, so choose another output file",
                path=path,
            )
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"output {path} must end in one of {', '.join(OUTPUT_SUFFIXES)} (an H.264/AAC MP4)"
        )
    if path.is_dir():
        raise OutputPathError(f"output {path} is a directory; give a file name", path=path)
    parent = path.absolute().parent
    if not parent.exists():
        raise OutputPathError(
            f"output directory {parent} does not exist; create it first", path=path
        )
    if not parent.is_dir():
        raise OutputPathError(f"output {path}: {parent} is not a directory", path=path)
    if not os.access(parent, os.W_OK):
        raise OutputPathError(f"output directory {parent} is not writable", path=path)
    return path


class _SourceReader:
    """Pictures of one source conformed to the canvas: the frame covering a source time.

    Reads through :class:`~avajams.media.FrameReader` (one forward pass; going back to the
    start, for a loop, rewinds) and conforms each frame once, however long it is shown.
    """

    def __init__(
        self, info: VideoInfo, canvas: tuple[int, int], fit: FitMode, *, threads: int = 0
    ) -> None:
        self.path = info.path
        self._canvas = canvas
        self._fit: FitMode = fit
        # A frame "at" time t may carry a timestamp rounded up to the next tick of the time
        # base; half a tick of slack keeps it from losing to the previous frame.
        self._reader = FrameReader(info.path, threads=threads, slack=Fraction(1, 2))
        self._picture: NDArray[np.uint8] | None = None
        self._picture_of: Any = None

    @property
    def rewinds(self) -> int:
        """How often the source was decoded again from its start."""
        return self._reader.rewinds

    def picture(self, t: float) -> NDArray[np.uint8]:
        """The conformed canvas picture of the frame covering source time ``t``.

        Past the end of the source, its last frame.
        """
        frame = self._reader.frame_at(t)
        if frame is None:
            frame = self._reader.current
        if self._picture_of is not frame:
            self._picture = self._conform(frame)
            self._picture_of = frame
        assert self._picture is not None
        return self._picture

    def _conform(self, frame: Any) -> NDArray[np.uint8]:
        return conform(
            frame,
            self._canvas,
            fit=self._fit,
            sample_aspect_ratio=self._reader.stream.sample_aspect_ratio,
        )

    def close(self) -> None:
        """Release the decoder; idempotent."""
        self._picture = self._picture_of = None
        self._reader.close()


class _PlanPictures:
    """The output picture for each output frame of a plan (hard cuts or crossfades)."""

    def __init__(
        self,
        plan: CutPlan,
        readers: dict[str, _SourceReader],
        crossfade_frames: int,
        progress: Progress,
    ) -> None:
        self._plan = plan
        self._readers = readers
        self._fade = crossfade_frames
        self._progress = progress
        self._segment_index = 0

    def _segment(self, k: int) -> tuple[int, Segment]:
        segments = self._plan.segments
        i = self._segment_index
        if not segments[i].output_start <= k < segments[i].output_end:
            seg = self._plan.segment_at(k)
            i = segments.index(seg)
            self._segment_index = i
        return i, segments[i]

    def _source_picture(self, source: str, frame: int) -> NDArray[np.uint8]:
        return self._readers[source].picture(frame / self._plan.fps)

    def frame(self, k: int) -> NDArray[np.uint8]:
        """The RGB canvas shown at output frame ``k``."""
        k = min(max(k, 0), self._plan.frames - 1)
        i, segment = self._segment(k)
        incoming = self._source_picture(segment.source, segment.source_frame(k))
        picture = incoming
        into = k - segment.output_start  # frames since this segment began
        if self._fade and i > 0 and into < self._fade:
            # Crossfade at a cut: the outgoing music video keeps playing in sync; the outgoing
            # user video holds its last frame (its next frames belong to its next turn).
            previous = self._plan.segments[i - 1]
            if previous.source != segment.source:
                if previous.source == "music":
                    out_frame = min(k, self._plan.music_frames - 1)
                else:
                    out_frame = previous.source_frame(previous.output_end - 1)
                outgoing = self._source_picture(previous.source, out_frame)
                weight = (into + 1) / (self._fade + 1)
                blended = outgoing.astype(np.float32) * (1.0 - weight)
                blended += incoming.astype(np.float32) * weight
                picture = np.rint(blended).astype(np.uint8)
        if k == self._progress.done:
            self._progress.update()
        return picture


def write_soundtrack(music: VideoInfo, duration: float, out: Path, *, bit_rate: int) -> None:
    """Write the music video's audio from its first video frame on, ``duration`` long, as AAC.

    Sample ``n`` of the result plays at output time ``n / rate``, the moment the music video's
    picture shows ``start_time + n / rate``, so picture and sound stay in sync even when the
    audio stream starts before or after the video (padded with silence or trimmed).
    """
    import av

    from avajams.media import decode, open_container, pyav_errors

    with open_container(music.path) as source, av.open(str(out), "w", format="mp4") as sink:
        streams = [s for s in source.streams.audio if s.codec_context is not None]
        if not streams:
            raise MissingAudioError(f"music video {music.path} has no audio track", path=music.path)
        stream = streams[0]
        rate = stream.codec_context.sample_rate or music.audio_sample_rate or 44100
        layout = "mono" if stream.codec_context.channels == 1 else "stereo"
        encoder = sink.add_stream("aac", rate=rate)
        encoder.layout = layout
        encoder.bit_rate = bit_rate
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        total = round(duration * rate)
        written = 0
        position: int | None = None  # output sample where the next decoded sample goes

        def emit(samples: NDArray[np.float32]) -> None:
            nonlocal written
            samples = samples[:, : total - written]
            if samples.shape[1] == 0:
                return
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples), format="fltp", layout=layout
            )
            frame.sample_rate = rate
            frame.pts = written
            frame.time_base = Fraction(1, rate)
            sink.mux(encoder.encode(frame))
            written += samples.shape[1]

        def silence(until: int) -> None:
            # Sized by the plan, never by the file: audio that claims to start at 2,000,000 s
            # gets the plan's few seconds of silence, one second at a time.
            until = min(until, total)
            while written < until:
                emit(np.zeros((channels, min(until - written, rate)), np.float32))

        channels = 1 if layout == "mono" else 2
        try:
            for decoded in decode(source, stream):
                if position is None and decoded.time is not None:
                    position = round((float(decoded.time) - music.start_time) * rate)
                for frame in resampler.resample(decoded):
                    samples: NDArray[np.float32] = frame.to_ndarray().astype(np.float32, copy=False)
                    if position is None:
                        position = 0
                    if position > written:  # audio starts after the picture: silence first
                        silence(position)
                    skip = max(0, written - position)  # audio before the picture: dropped
                    position += samples.shape[1]
                    if skip < samples.shape[1]:
                        emit(samples[:, skip:])
                if written >= total:
                    break
        except pyav_errors() as exc:
            raise VideoDecodeError(
                f"decoding the soundtrack of {music.path} failed: {exc}", path=music.path
            ) from exc
        sink.mux(encoder.encode(None))


class MoviePyRenderer:
    """The default renderer: PyAV decoding + one MoviePy ``VideoClip``, H.264/AAC MP4 out.

    - ``size``: the output ``(width, height)``; default the music video's display size shrunk
      to fit ``max_size`` (portrait videos: the transposed box), even dimensions.
    - ``fit``: ``"letterbox"`` (whole picture, black bars) or ``"crop"`` (fill, centre crop).
    - ``crossfade_ms``: dissolve length at each cut; 0 = hard cuts.
    - ``preset``/``crf``: x264 speed/quality; ``threads``: decoder threads (0 = auto).
    """

    def __init__(
        self,
        *,
        size: tuple[int, int] | None = None,
        max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
        fit: FitMode = "letterbox",
        crossfade_ms: float = 0.0,
        preset: str = "medium",
        crf: int = 20,
        audio_bit_rate: int = 192_000,
        threads: int = 0,
    ) -> None:
        if fit not in ("letterbox", "crop"):
            raise ConfigError(f"fit must be 'letterbox' or 'crop', got {fit!r}")
        if size is not None and (size[0] < 2 or size[1] < 2 or size[0] % 2 or size[1] % 2):
            raise ConfigError(f"size {size} must be even and at least 2x2 (yuv420p)")
        if len(max_size) != 2 or min(max_size) < 2:
            raise ConfigError(f"max_size {max_size} must be a (width, height) of at least 2x2")
        if not crossfade_ms >= 0:
            raise ConfigError(f"crossfade_ms must be >= 0, got {crossfade_ms}")
        self.size = size
        self.max_size = max_size
        self.fit: FitMode = fit
        self.crossfade_ms = float(crossfade_ms)
        self.preset = preset
        self.crf = int(crf)
        self.audio_bitrate = int(audio_bit_rate)
        self.threads = threads

    def canvas_for(self, music: VideoInfo) -> tuple[int, int]:
        """The output size for a music video."""
        return self.size or canvas_size(music.width, music.height, max_size=self.max_size)

    def render(
        self,
        plan: CutPlan,
        user: StrPath,
        music: StrPath,
        out: StrPath,
        *,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Write the mashup described by ``plan`` to ``out``; see :class:`Renderer`."""
        plan.validate()
        music_info = probe_music(music)
        user_info = probe(user)
        out_path = check_output_path(out, (user, music))

        _remove_orphans(out_path)
        partial = out_path.with_name(
            f".{out_path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}{_PARTIAL_SUFFIX}"
        )
        try:
            partial.open("xb").close()
        except OSError as exc:
            raise OutputPathError(
                f"cannot write {out_path}: {exc.strerror or exc}{_space_hint(exc, out_path)}",
                path=out_path,
            ) from exc

        done = False
        try:
            with (
                _scratch_directory(out_path) as scratch,
                Progress(
                    "render", plan.frames, unit="frame", show=show_progress, callback=progress
                ) as bar,
            ):
                soundtrack = scratch / "soundtrack.m4a"
                self._soundtrack(music_info, plan, soundtrack)
                with self._plan_pictures(plan, user_info, music_info, bar) as pictures:
                    self._write(pictures, plan, soundtrack, partial)
            # Only a complete file replaces the previous output: a full disk can leave the
            # encoder's output cut short without the encoder noticing.
            _check_complete(partial, plan, out_path)
            os.replace(partial, out_path)
            done = True
        finally:
            if not done:
                partial.unlink(missing_ok=True)
        log.info("wrote %s (%d frames, %.2f s)", out_path, plan.frames, plan.duration)
        return out_path

    def _soundtrack(self, music: VideoInfo, plan: CutPlan, out: Path) -> None:
        from avajams.media import pyav_errors

        errors: tuple[type[BaseException], ...] = (OSError, *pyav_errors())
        try:
            write_soundtrack(music, plan.duration, out, bit_rate=self.audio_bitrate)
        except AvajamsError:
            raise
        except errors as exc:
            raise RenderError(
                f"writing the soundtrack to {out.parent} failed: "
                f"{getattr(exc, 'strerror', None) or exc}{_space_hint(exc, out)}",
                path=out,
            ) from exc

    def pictures(
        self, plan: CutPlan, user: StrPath, music: StrPath
    ) -> Generator[NDArray[np.uint8], None, None]:
        """Every output picture of ``plan`` in order, exactly as :meth:`render` encodes them.

        Nothing is encoded: for previews, contact sheets and measuring the decoding side
        alone. Close the generator (or exhaust it) to release the decoders.
        """
        plan.validate()
        user_info, music_info = probe(user), probe(music)
        with (
            Progress("pictures", plan.frames, show=False) as bar,
            self._plan_pictures(plan, user_info, music_info, bar) as pictures,
        ):
            for k in range(plan.frames):
                yield pictures.frame(k)

    @contextlib.contextmanager
    def _plan_pictures(
        self, plan: CutPlan, user: VideoInfo, music: VideoInfo, bar: Progress
    ) -> Iterator[_PlanPictures]:
        canvas = self.canvas_for(music)
        crossfade_frames = round(self.crossfade_ms / 1000.0 * plan.fps)
        readers: dict[str, _SourceReader] = {}
        try:
            readers["user"] = _SourceReader(user, canvas, self.fit, threads=self.threads)
            readers["music"] = _SourceReader(music, canvas, self.fit, threads=self.threads)
            yield _PlanPictures(plan, readers, crossfade_frames, bar)
        finally:
            for reader in readers.values():
                reader.close()

    def _write(
        self, pictures: _PlanPictures, plan: CutPlan, soundtrack: Path, partial: Path
    ) -> None:
        from moviepy import VideoClip

        fps = plan.fps

        def frame_function(t: float) -> NDArray[np.uint8]:
            return pictures.frame(round(t * fps))

        # MoviePy renders int(duration * fps) frames; half a frame of slack keeps a float
        # product like 61 / 29.97 * 29.97 = 60.999... from dropping the last one.
        clip = VideoClip(frame_function, duration=(plan.frames + 0.5) / fps)
        try:
            clip.write_videofile(
                str(partial),
                fps=fps,
                codec="libx264",
                audio=str(soundtrack),  # muxed as is: the one continuous track
                audio_codec="copy",
                preset=self.preset,
                ffmpeg_params=[
                    *("-crf", str(self.crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart"),
                ],
                logger=None,
            )
        except AvajamsError:
            raise
        except OSError as exc:
            # MoviePy's message carries ffmpeg's whole log; the first line says what failed.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RenderError(
                f"encoding {partial.name} failed: {first}{_space_hint(exc, partial)}",
                path=partial,
            ) from exc
        finally:
            clip.close()


#: Suffix of the file a render writes before it is complete and renamed into place.
_PARTIAL_SUFFIX = ".partial.mp4"
_SCRATCH_PREFIX = "avajams-render-"


def _space_hint(exc: BaseException, path: Path) -> str:
    """``; the disk is full ...`` when ``exc`` (or the disk under ``path``) says so."""
    import errno
    import shutil

    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        "No space left" in str(exc)
    )
    if not full:
        with contextlib.suppress(OSError):
            full = shutil.disk_usage(path.parent).free < 1 << 20
    if full:
        return (
            f"; the disk holding {path.parent} is full: free some space and retry "
            "(any previous output was left untouched)"
        )
    return ""


def _check_complete(partial: Path, plan: CutPlan, out: Path) -> None:
    """Raise RenderError unless ``partial`` is a playable MP4 as long as the plan, with sound."""
    from avajams.media import probe

    try:
        info = probe(partial)
    except AvajamsError as exc:
        hint = _space_hint(exc, out)
        raise RenderError(
            f"the render of {out} came out incomplete"
            + (hint or f" ({exc.message})")
            + f"; {out.name} was left as it was",
            path=out,
        ) from exc
    if not info.has_audio or info.duration < plan.duration - 2.0 / plan.fps:
        raise RenderError(
            f"the render of {out} came out incomplete ({info.duration:.2f} s of "
            f"{plan.duration:.2f} s{'' if info.has_audio else ', no sound'})"
            f"{_space_hint(OSError(), out)}; {out.name} was left as it was",
            path=out,
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _owner(name: str, prefix: str) -> int | None:
    """The process id a partial file or scratch directory name carries, if any."""
    head = name[len(prefix) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _remove_orphans(out: Path) -> None:
    """Delete partial files and scratch directories that renders killed outright (SIGKILL,
    a power cut) left behind: those whose process is gone."""
    import shutil

    prefix = f".{out.stem}."
    try:
        leftovers = [
            p
            for p in out.parent.iterdir()
            if p.name.startswith(prefix) and p.name.endswith(_PARTIAL_SUFFIX)
        ]
        scratch = Path(tempfile.gettempdir())
        leftovers += [p for p in scratch.iterdir() if p.name.startswith(_SCRATCH_PREFIX)]
    except OSError:
        return
    for path in leftovers:
        base = prefix if path.name.startswith(prefix) else _SCRATCH_PREFIX
        pid = _owner(path.name, base)
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            continue
        log.info("removing %s, left behind by a render that was killed", path)
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.debug("could not remove %s: %s", path, exc)


@contextlib.contextmanager
def _scratch_directory(out: Path) -> Iterator[Path]:
    """A temporary directory for the render, named after this process (see
    :func:`_remove_orphans`); a full or unwritable temp dir is a RenderError."""
    try:
        scratch = tempfile.TemporaryDirectory(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-")
    except OSError as exc:
        raise RenderError(
            f"cannot create a temporary directory for the render: {exc.strerror or exc}"
            f"{_space_hint(exc, Path(tempfile.gettempdir()) / 'x')}",
            path=out,
        ) from exc
    with scratch as name:
        yield Path(name)
