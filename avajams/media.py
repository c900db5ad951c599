"""Opening media files with PyAV: typed errors at the boundary, and ``probe`` for facts.

Every path into FFmpeg goes through :func:`open_video`, which checks the path first (missing,
a directory, empty, not a regular file) and translates PyAV's exceptions into the avajams
error tree, so callers only ever see :class:`~avajams.errors.VideoError` subclasses.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from avajams.errors import VideoDecodeError, VideoError, VideoNotFoundError

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = [
    "VideoDecodeWarning",
    "VideoInfo",
    "check_mode",
    "check_path",
    "decode",
    "demux",
    "open_container",
    "open_video",
    "probe",
]

logger = logging.getLogger(__name__)

# Demuxers that read single still pictures; FFmpeg happily opens a JPEG as a one-frame
# "video", which is never what a caller asking for a video means.
_STILL_IMAGE_FORMATS = frozenset({"image2", "image2pipe"})

# Demuxers never used for a local video file: playlists and manifests that open other files or
# URLs (a playlist naming /dev/zero or a FIFO would hang), network protocols and capture
# devices. Everything else FFmpeg can read stays allowed.
_DENIED_DEMUXERS = frozenset(
    {
        "concat", "dash", "data", "fbdev", "ffmetadata", "fifo", "hds", "hls", "image2",
        "imf", "kmsgrab", "lavfi", "mpjpeg", "oss", "alsa", "rtp", "rtp_mpegts", "rtsp", "sap",
        "sdp", "segment", "smoothstreaming", "tee", "v4l2", "video4linux2",
        "webm_dash_manifest", "whip", "x11grab",
    }
)  # fmt: skip


def pyav_errors() -> tuple[type[BaseException], ...]:
    """What PyAV raises on hostile input, besides its FFmpegError tree.

    ``UnicodeDecodeError`` from metadata that is not UTF-8 (when not opened with
    ``metadata_errors="replace"``), ``IndexError`` from demuxing a file whose streams appear
    mid-file, ``ValueError``/``OverflowError`` from absurd values in headers.
    """
    import av

    return (av.FFmpegError, UnicodeError, IndexError, ValueError, OverflowError)


_container_options: dict[str, str] | None = None


def _options() -> dict[str, str]:
    """FFmpeg options for every input: local files only, no playlist or network demuxers."""
    global _container_options
    if _container_options is None:
        import av

        names: set[str] = set()
        for format_name in av.formats_available:
            try:
                fmt = av.format.ContainerFormat(format_name, "r")
            except (ValueError, av.FFmpegError):
                continue  # a muxer only
            names.update(fmt.name.split(","))
        _container_options = {
            "protocol_whitelist": "file",
            "format_whitelist": ",".join(sorted(names - _DENIED_DEMUXERS)),
        }
    return _container_options


class VideoDecodeWarning(UserWarning):
    """A video was read only in part: it is truncated or some packets could not be decoded.

    The frames that did decode are returned. Turn this into an error with
    ``warnings.simplefilter("error", VideoDecodeWarning)`` or the sampler's ``strict=True``.
    """


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file, as read from its container and its first frame."""

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


def check_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a string, if it is a non-empty regular file; else the matching VideoError."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except FileNotFoundError as exc:
        if os.path.islink(name):
            raise VideoNotFoundError(
                f"{name} is a broken symbolic link (its target {os.readlink(name)} does not "
                "exist); fix or remove the link",
                path=name,
            ) from exc
        raise VideoNotFoundError(f"{name}: no such file; check the path", path=name) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise VideoNotFoundError(
                f"{name} is a symbolic link that loops back on itself; fix or remove the link",
                path=name,
            ) from exc
        raise VideoError(
            f"{name}: cannot read ({exc.strerror or exc}); check the path and its permissions",
            path=name,
        ) from exc
    except ValueError as exc:  # an embedded NUL byte
        raise VideoNotFoundError(f"{name!r} is not a valid path ({exc})", path=None) from exc
    check_mode(info.st_mode, info.st_size, name)
    return name


def check_mode(mode: int, size: int, name: str) -> None:
    """Raise the VideoError for a file of this ``st_mode`` and size that is no video to read."""
    if stat.S_ISDIR(mode):
        raise VideoNotFoundError(
            f"{name} is a directory, not a video file; pass the path of a video inside it",
            path=name,
        )
    if not stat.S_ISREG(mode):
        # FIFOs and devices could block forever or never end: never read one.
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise VideoDecodeError(
            f"{name} is {kind}, not a regular file; save the video to a file first",
            path=name,
        )
    if size == 0:
        raise VideoDecodeError(f"{name} is empty (0 bytes); the file is not a video", path=name)


def translate_error(exc: BaseException, name: str, action: str = "decoded") -> VideoError:
    """The avajams error for an exception PyAV raised while reading ``name``."""
    import av

    if isinstance(exc, UnicodeError):
        return VideoDecodeError(
            f"{name} could not be {action}: its metadata is not valid text ({exc}); re-mux "
            "it (ffmpeg -i IN -map_metadata -1 -c copy OUT) or re-export the video",
            path=name,
        )
    if isinstance(exc, IndexError | ValueError | OverflowError) and not isinstance(
        exc, av.FFmpegError
    ):
        return VideoDecodeError(
            f"{name} could not be {action}: its container is damaged ({type(exc).__name__}: "
            f"{exc}); re-download or re-export the video",
            path=name,
        )
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


def open_container(path: str | os.PathLike[str]) -> InputContainer:
    """``av.open(path)`` for reading, hardened; every error is a :class:`VideoError`.

    The path is checked first (:func:`check_path`: a FIFO or device is refused, never read),
    handed to FFmpeg as an absolute path (so a file named ``pipe:0.mp4`` is a file, not
    standard input), read with the ``file`` protocol only and without playlist or network
    demuxers, and metadata that is not UTF-8 is decoded with replacement characters.
    """
    import av

    name = check_path(path)
    try:
        return av.open(
            os.path.abspath(name),
            mode="r",
            metadata_errors="replace",
            container_options=_options(),
        )
    except pyav_errors() as exc:
        raise translate_error(exc, name, "opened") from exc


def demux(container: InputContainer, stream: VideoStream | AudioStream) -> Iterator[Packet[Any]]:
    """``container.demux(stream)``, ending cleanly where PyAV trips over a late stream.

    When a stream appears mid-file (MPEG-TS), PyAV 18 raises ``IndexError`` at its final
    flush; the packets read so far are good, so this ends there with a flush packet instead.
    Other demuxing errors propagate (callers decide what a damaged file means to them).
    """
    import av

    packets = container.demux(stream)
    flushed = False
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except IndexError:
            logger.debug("%s: a stream appeared mid-file; demuxing ends here", container.name)
            if not flushed:
                yield av.Packet()
            return
        flushed = flushed or packet.size == 0
        yield packet


def decode(
    container: InputContainer, stream: VideoStream | AudioStream
) -> Iterator[VideoFrame | AudioFrame]:
    """Every frame of ``stream`` (``container.decode(stream)`` over :func:`demux`)."""
    import av

    for packet in demux(container, stream):
        try:
            yield from stream.decode(packet)
        except av.error.EOFError:
            return


@contextlib.contextmanager
def open_video(path: str | os.PathLike[str]) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Open ``path`` and yield ``(container, video_stream)``; always closes the container.

    Raises :class:`VideoNotFoundError` for a missing path or a directory and
    :class:`VideoDecodeError` for anything that is not a video with a video stream.
    """
    import av

    name = check_path(path)
    container = open_container(name)
    try:
        fmt = container.format.name
        if fmt == "webp_pipe" and _animated_webp(name):
            raise VideoDecodeError(
                f"{name} is an animated WebP, which FFmpeg cannot decode; convert it to a video "
                "(MP4 or GIF) first",
                path=name,
            )
        if fmt in _STILL_IMAGE_FORMATS or fmt.endswith("_pipe"):
            raise VideoDecodeError(
                f"{name} is a still image ({fmt}), not a video; convert it to a video first",
                path=name,
            )
        attached = av.stream.Disposition.attached_pic
        streams = [
            s
            for s in container.streams.video
            if not s.disposition & attached and s.codec_context is not None
        ]
        if not streams:
            kinds = ", ".join(
                sorted(
                    {
                        s.type
                        if s.type != "video"
                        else "cover art"
                        if s.disposition & attached
                        else "video no decoder supports"
                        for s in container.streams
                    }
                )
            )
            raise VideoDecodeError(
                f"{name} has no video stream (it holds: {kinds or 'nothing'}); "
                "pass a file with moving pictures",
                path=name,
            )
        yield container, streams[0]
    finally:
        container.close()


def _animated_webp(name: str) -> bool:
    """Whether ``name`` is a WebP with the animation flag (RIFF, WEBP, VP8X flags bit 1)."""
    try:
        with open(name, "rb") as f:
            head = f.read(21)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


def display_rotation(frame: VideoFrame) -> int:
    """Clockwise degrees (0/90/180/270) a player turns ``frame`` to show it upright."""
    # PyAV reports the display matrix's counter-clockwise angle in [-180, 180].
    return round(-frame.rotation / 90.0) % 4 * 90


def first_frame(container: InputContainer, stream: VideoStream, name: str) -> VideoFrame:
    """Decode and return the first frame of ``stream``, or raise VideoDecodeError."""
    import av

    errors = 0
    try:
        for packet in demux(container, stream):
            try:
                frames = stream.decode(packet)
            except av.error.EOFError:
                break
            except av.FFmpegError:
                errors += 1
                continue
            if frames:
                return frames[0]
    except pyav_errors() as exc:
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
    Raises :class:`VideoNotFoundError` or :class:`VideoDecodeError`.
    """
    import av

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
        audio = next((s for s in container.streams.audio if s.codec_context is not None), None)
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
    tb = stream.time_base or Fraction(1, 1)
    end = start
    try:
        container.seek(0, stream=stream)
        for packet in demux(container, stream):
            if packet.pts is not None:
                end = max(end, Fraction(packet.pts + (packet.duration or 0)) * tb)
    except pyav_errors() as exc:
        logger.debug("%s: packet scan stopped: %s", name, exc)
    return float(end - start)
