"""Opening media files with PyAV: typed errors at the boundary, and ``probe`` for facts.

Every path into FFmpeg goes through :func:`open_video`, which checks the path first (missing,
a directory, empty, not a regular file) and translates PyAV's exceptions into the avajams
error tree, so callers only ever see :class:`~avajams.errors.VideoError` subclasses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from avajams.errors import VideoDecodeError, VideoError, VideoNotFoundError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = ["VideoDecodeWarning", "VideoInfo", "check_path", "open_video", "probe"]

logger = logging.getLogger(__name__)

# Demuxers that read single still pictures; FFmpeg happily opens a JPEG as a one-frame
# "video", which is never what a caller asking for a video means.
_STILL_IMAGE_FORMATS = frozenset({"image2", "image2pipe"})


class VideoDecodeWarning(UserWarning):
    """A video was read only in part: it is truncated or some packets could not be decoded.

    The frames that did decode are returned. Turn this into an error with
    ``warnings.simplefilter("error", VideoDecodeWarning)`` or the sampler's ``strict=True``.
    """


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file, as read from its container and its first frame.

    It is path-like (``os.fspath(info) == info.path``), so a probed video can be passed on
    wherever avajams takes a path, and :func:`probe` returns it as is instead of reading the
    file again.
    """

    path: str
    #: Seconds of picture, from the first frame's start to the end of the last frame.
    duration: float
    #: Presentation time of the first video frame, in seconds (often 0).
    start_time: float
    #: Display width in pixels, after rotation and non-square pixels are applied.
    width: int
    #: Display height in pixels, after rotation and non-square pixels are applied.
    height: int
    #: Degrees (0, 90, 180, 270) a player turns the stored frames clockwise to show them upright.
    rotation: int
    #: Average frame rate (frames per second).
    fps: float
    #: Number of video frames the container declares, or None when it does not say.
    frame_count: int | None
    has_audio: bool
    audio_sample_rate: int | None

    def __fspath__(self) -> str:
        return self.path


def check_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a string, if it is a non-empty regular file; else the matching VideoError."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except FileNotFoundError as exc:
        raise VideoNotFoundError(f"{name}: no such file; check the path", path=name) from exc
    except OSError as exc:
        raise VideoError(
            f"{name}: cannot read ({exc.strerror}); check permissions", path=name
        ) from exc
    if stat.S_ISDIR(info.st_mode):
        raise VideoNotFoundError(
            f"{name} is a directory, not a video file; pass the path of a video inside it",
            path=name,
        )
    if not stat.S_ISREG(info.st_mode):
        # FIFOs and devices could block forever or never end.
        raise VideoDecodeError(
            f"{name} is not a regular file (a pipe or device?); save the video to a file first",
            path=name,
        )
    if info.st_size == 0:
        raise VideoDecodeError(f"{name} is empty (0 bytes); the file is not a video", path=name)
    return name


def translate_error(exc: Exception, name: str, action: str = "decoded") -> VideoError:
    """The avajams error for a PyAV/FFmpeg exception raised while reading ``name``."""
    import av

    if isinstance(exc, av.error.FileNotFoundError):
        return VideoNotFoundError(f"{name}: no such file; check the path", path=name)
    if isinstance(exc, av.error.PermissionError):
        return VideoError(f"{name}: permission denied; check the file's permissions", path=name)
    if isinstance(exc, av.error.EOFError):
        return VideoDecodeError(
            f"{name} ends early (truncated?) and could not be {action}; "
            "re-download or re-export the video",
            path=name,
        )
    return VideoDecodeError(
        f"{name} could not be {action} as a video ({exc}); check that it is a complete, "
        "supported video file",
        path=name,
    )


@contextlib.contextmanager
def open_video(path: str | os.PathLike[str]) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Open ``path`` and yield ``(container, video_stream)``; always closes the container.

    Raises :class:`VideoNotFoundError` for a missing path or a directory and
    :class:`VideoDecodeError` for anything that is not a video with a video stream.
    """
    import av

    name = check_path(path)
    try:
        container = av.open(name, mode="r")
    except av.FFmpegError as exc:
        raise translate_error(exc, name, "opened") from exc
    try:
        fmt = container.format.name
        if fmt in _STILL_IMAGE_FORMATS or fmt.endswith("_pipe"):
            raise VideoDecodeError(
                f"{name} is a still image ({fmt}), not a video; convert it to a video first",
                path=name,
            )
        attached = av.stream.Disposition.attached_pic
        streams = [s for s in container.streams.video if not s.disposition & attached]
        if not streams:
            kinds = ", ".join(
                sorted({"cover art" if s.type == "video" else s.type for s in container.streams})
            )
            raise VideoDecodeError(
                f"{name} has no video stream (it holds: {kinds or 'nothing'}); "
                "pass a file with moving pictures",
                path=name,
            )
        yield container, streams[0]
    finally:
        container.close()


def display_rotation(frame: VideoFrame) -> int:
    """Clockwise degrees (0/90/180/270) a player turns ``frame`` to show it upright."""
    # PyAV reports the display matrix's counter-clockwise angle in [-180, 180].
    return round(-frame.rotation / 90.0) % 4 * 90


def first_frame(container: InputContainer, stream: VideoStream, name: str) -> VideoFrame:
    """Decode and return the first frame of ``stream``, or raise VideoDecodeError."""
    import av

    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.FFmpegError:
                errors += 1
                continue
            if frames:
                return frames[0]
    except av.FFmpegError as exc:
        raise translate_error(exc, name) from exc
    raise VideoDecodeError(
        f"{name} has a video stream but no decodable frames"
        + (f" ({errors} packets failed to decode)" if errors else "")
        + "; the file is corrupt or uses an unsupported codec",
        path=name,
    )


def display_size(width: int, height: int, rotation: int, sar: Fraction | None) -> tuple[int, int]:
    """Upright display ``(width, height)`` of stored frames of ``width`` x ``height``."""
    if sar is not None and sar > 0 and sar != 1:
        width = max(1, round(width * sar))
    return (height, width) if rotation in (90, 270) else (width, height)


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's facts: duration, start, display size, rotation, frame rate, audio.

    Decodes only the first frame (to learn its rotation and prove the stream decodes).
    A :class:`VideoInfo` is returned as is (it was probed already).
    Raises :class:`VideoNotFoundError` or :class:`VideoDecodeError`.
    """
    import av

    if isinstance(path, VideoInfo):
        return path

    with open_video(path) as (container, stream):
        name = os.fspath(path)
        frame = first_frame(container, stream, name)
        rotation = display_rotation(frame)
        tb = stream.time_base or Fraction(1, 1)
        if frame.pts is not None:
            start = Fraction(frame.pts) * tb
        elif stream.start_time is not None:
            start = Fraction(stream.start_time) * tb
        else:
            start = Fraction(0)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frame_count = stream.frames or None
        duration: float | None = None
        if stream.duration is not None and stream.duration > 0:
            duration = float(Fraction(stream.duration) * tb)
        elif container.duration is not None and container.duration > 0:
            container_start = (container.start_time or 0) / av.time_base
            duration = container.duration / av.time_base - (float(start) - container_start)
        if duration is None or duration <= 0:
            duration = _scan_duration(container, stream, name, start)
        if not rate and frame_count and duration > 0:
            rate = Fraction(frame_count / duration).limit_denominator(1001)
        width, height = display_size(
            frame.width, frame.height, rotation, stream.sample_aspect_ratio
        )
        audio = next(iter(container.streams.audio), None)
        return VideoInfo(
            path=name,
            duration=float(duration),
            start_time=float(start),
            width=width,
            height=height,
            rotation=rotation,
            fps=float(rate) if rate else 0.0,
            frame_count=frame_count,
            has_audio=audio is not None,
            audio_sample_rate=audio.sample_rate if audio is not None else None,
        )


def _scan_duration(
    container: InputContainer, stream: VideoStream, name: str, start: Fraction
) -> float:
    """Duration from the packets' timestamps, for containers that do not declare one."""
    import av

    tb = stream.time_base or Fraction(1, 1)
    end = start
    try:
        container.seek(0, stream=stream)
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = max(end, Fraction(packet.pts + (packet.duration or 0)) * tb)
    except av.FFmpegError as exc:
        logger.debug("%s: packet scan stopped: %s", name, exc)
    return float(end - start)
