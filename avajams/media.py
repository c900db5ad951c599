"""Opening media files with PyAV: typed errors at the boundary, ``probe`` for facts, and
the two pieces every frame reader shares.

Every path into FFmpeg goes through :func:`open_video`, which checks the path first (missing,
a directory, empty, not a regular file) and translates PyAV's exceptions into the avajams
error tree, so callers only ever see :class:`~avajams.errors.VideoError` subclasses.

- :class:`FrameReader` decodes a video forward once and answers "which frame covers time
  ``t``" exactly, in integer ticks of the stream's time base (the sampler and the mashup
  renderer both read through it);
- :func:`conform` turns a decoded frame into an upright RGB picture of a given size (swscale
  scaling and colour conversion in one pass, rotation side data, stretch/crop/letterbox).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, cast, get_args, overload

import numpy as np
from numpy.typing import NDArray

from avajams.errors import VideoDecodeError, VideoError, VideoNotFoundError

if TYPE_CHECKING:
    from av.audio.frame import AudioFrame
    from av.audio.stream import AudioStream
    from av.container import InputContainer
    from av.packet import Packet
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = [
    "Fit",
    "FrameReader",
    "Interpolation",
    "VideoDecodeWarning",
    "VideoInfo",
    "check_mode",
    "check_path",
    "conform",
    "decode",
    "demux",
    "open_container",
    "open_video",
    "placement",
    "probe",
    "pyav_errors",
]

#: How a picture is fitted to an output size of another aspect ratio.
Fit = Literal["stretch", "crop", "letterbox"]
#: swscale's scaling algorithms, by PyAV name (lower case).
Interpolation = Literal["bilinear", "area", "bicubic", "lanczos", "point", "fast_bilinear"]

FITS: tuple[str, ...] = get_args(Fit)
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)

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
#: FFmpeg's AVFMT_TS_DISCONT format flag: the format's timestamps may jump (MPEG-TS).
AVFMT_TS_DISCONT = 0x0200
#: A jump between two frames' timestamps that FFmpeg takes for a discontinuity in such a
#: format (its ``dts_delta_threshold``), in seconds.
DISCONTINUITY_SECONDS = 10


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
        f"{name} could not be {action} as a video ({_reason(exc)}); check that it is a "
        "complete, supported video file",
        path=name,
    )


def _reason(exc: BaseException) -> str:
    """FFmpeg's words for ``exc`` without its errno and file name (the message has the name)."""
    reason = getattr(exc, "strerror", None) or str(exc)
    return reason[:1].lower() + reason[1:]


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


@overload
def decode(container: InputContainer, stream: VideoStream) -> Iterator[VideoFrame]: ...
@overload
def decode(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]: ...
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
    A :class:`VideoInfo` is returned as is (it was probed already).
    Raises :class:`VideoNotFoundError` or :class:`VideoDecodeError`.
    """
    if isinstance(path, VideoInfo):
        return path
    return _probe_file(path)


def _probe_file(path: str | os.PathLike[str]) -> VideoInfo:
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


# --- fitting a frame to a size -------------------------------------------------------------


def placement(
    size: tuple[int, int], canvas: tuple[int, int], fit: Fit
) -> tuple[int, int, int, int]:
    """Where a ``size`` picture lands on a ``canvas``: ``(x, y, width, height)`` once scaled.

    ``"letterbox"`` scales it to fit inside, centred (x, y >= 0); ``"crop"`` scales it to
    cover the canvas, centred (x, y <= 0: the overhang is cut off, the odd pixel on the right
    or bottom); ``"stretch"`` scales each axis to the canvas. A picture of the canvas's own
    aspect ratio is scaled to the canvas exactly, whatever the fit.
    """
    dw, dh = size
    tw, th = canvas
    if fit == "stretch" or dw * th == dh * tw:
        return 0, 0, tw, th
    if fit == "crop":
        scale = max(tw / dw, th / dh)
        sw, sh = max(tw, round(dw * scale)), max(th, round(dh * scale))
        return -((sw - tw) // 2), -((sh - th) // 2), sw, sh
    scale = min(tw / dw, th / dh)
    sw, sh = min(tw, max(1, round(dw * scale))), min(th, max(1, round(dh * scale)))
    return (tw - sw) // 2, (th - sh) // 2, sw, sh


def conform(
    frame: VideoFrame,
    size: tuple[int, int] | None = None,
    *,
    fit: Fit = "stretch",
    sample_aspect_ratio: Fraction | None = None,
    interpolation: Interpolation = "bilinear",
) -> NDArray[np.uint8]:
    """``frame`` as an upright RGB ``(height, width, 3)`` picture of ``size`` (width, height).

    ``size=None`` keeps the frame's upright display size (rotation side data and
    ``sample_aspect_ratio``, the stream's, applied). swscale scales the stored frame and
    converts it to RGB in one pass; numpy then only turns it upright and crops or pads it
    (see :func:`placement` for ``fit``).
    """
    rotation = display_rotation(frame)
    display = display_size(frame.width, frame.height, rotation, sample_aspect_ratio)
    tw, th = size if size is not None else display
    x, y, sw, sh = placement(display, (tw, th), fit)
    stored = (sh, sw) if rotation in (90, 270) else (sw, sh)  # swscale works before the turn
    scaled = frame.reformat(
        width=stored[0], height=stored[1], format="rgb24", interpolation=interpolation.upper()
    )
    rgb = cast("NDArray[np.uint8]", scaled.to_ndarray())
    if rotation:
        rgb = np.rot90(rgb, k=-rotation // 90)
    if (x, y, sw, sh) == (0, 0, tw, th):
        return np.ascontiguousarray(rgb)
    if sw >= tw and sh >= th:  # crop: cut the canvas out of the larger picture
        return np.ascontiguousarray(rgb[-y : -y + th, -x : -x + tw])
    canvas = np.zeros((th, tw, 3), dtype=np.uint8)
    canvas[y : y + sh, x : x + sw] = rgb
    return canvas


# --- the frame covering a time ----------------------------------------------------------------

#: Called with each packet before it is decoded, and the first frame's pts (None until known).
PacketHook = Callable[[Any, "int | None"], None]


class FrameReader:
    """The frames of one video by the time they cover, decoded forward in one pass.

    ``frame_at(t)`` returns the frame whose display interval ``[start, next start)`` covers
    ``t`` seconds from the first frame, which is what a player shows then; ``None`` once
    ``t`` is at or past the end of the last frame. Times are compared exactly in integer
    ticks of the stream's time base (pass a :class:`~fractions.Fraction` for an exact ``t``),
    and ``slack`` ticks let a frame whose timestamp was rounded up to the next tick still
    cover ``t``. Asking for a time before the current frame rewinds to the start and decodes
    again (``rewinds`` counts it). A frame is known to cover ``t`` only once the next frame's
    start or the end has been seen, so one frame is read ahead.

    - ``threads``: FFmpeg decoding threads (0: FFmpeg's choice);
    - ``strict``: raise VideoDecodeError for a packet that fails to decode or a damaged
      file; otherwise such packets are skipped and counted (``failures``, ``damage``), and
      the stream ends where its frames end (``truncated`` when the container promised more);
    - ``packet_hook``: called before each packet is decoded (e.g. to set ``skip_frame``).

    Opens the file (through :func:`open_video`) on first use; a context manager, and
    ``close()`` is idempotent.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int = 0,
        strict: bool = True,
        slack: Fraction = Fraction(0),
        packet_hook: PacketHook | None = None,
    ) -> None:
        self.path = check_path(path)
        self.threads = threads
        self.strict = strict
        self.slack = Fraction(slack)
        self.packet_hook = packet_hook
        self.failures = 0
        self.damage: str | None = None
        self.truncated = False
        self.rewinds = 0
        #: Frames read (with increasing timestamps) in the current pass.
        self.frames_read = 0
        #: Timestamp discontinuities corrected in the current pass (see ``discontinuous``).
        self.jumps = 0
        self._stack: contextlib.ExitStack | None = None
        self._container: InputContainer | None = None
        self._stream: VideoStream | None = None
        self._tb = Fraction(1, 90000)
        self._nominal: int | None = None
        self._frames: Iterator[tuple[int, VideoFrame]] | None = None
        self._pts0: int | None = None
        self._current: tuple[int, VideoFrame] | None = None
        self._lookahead: tuple[int, VideoFrame] | None = None
        self._end: int | None = None  # ticks after pts0 where the last frame ends, once seen

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder and the file; idempotent."""
        self._frames = None
        self._current = self._lookahead = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self._container = self._stream = None
            stack.close()

    @property
    def container(self) -> InputContainer:
        """The open container (opens the file)."""
        self._open()
        assert self._container is not None
        return self._container

    @property
    def stream(self) -> VideoStream:
        """The video stream being read (opens the file)."""
        self._open()
        assert self._stream is not None
        return self._stream

    @property
    def current(self) -> VideoFrame | None:
        """The frame the last :meth:`frame_at` settled on (the last frame once past the end)."""
        return None if self._current is None else self._current[1]

    @property
    def end_time(self) -> Fraction | None:
        """Seconds from the first frame to the end of the last, once the end has been read."""
        return None if self._end is None else self._end * self._tb

    def _open(self) -> None:
        if self._stack is not None:
            return
        stack = contextlib.ExitStack()
        try:
            container, stream = stack.enter_context(open_video(self.path))
        except BaseException:
            stack.close()
            raise
        self._stack, self._container, self._stream = stack, container, stream
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        self._tb = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate
        self._nominal = max(1, round(1 / (rate * self._tb))) if rate else None

    def _start(self) -> None:
        self._open()
        if self._frames is not None:
            try:
                self.container.seek(0)
            except pyav_errors() as exc:
                raise VideoDecodeError(
                    f"{self.path} cannot be rewound to read it again ({_reason(exc)}); the "
                    "file may be damaged: re-export it",
                    path=self.path,
                ) from exc
            self.rewinds += 1
            logger.debug("%s: rewound to the first frame", self.path)
        self._frames = self._timed()
        self._current = self._lookahead = None
        self._end = None

    def _decoded(self) -> Generator[VideoFrame, None, None]:
        import av

        container, stream = self.container, self.stream
        errors = pyav_errors()
        try:
            # demux() ends with an empty packet per stream, which flushes the decoder.
            for packet in demux(container, stream):
                if self.packet_hook is not None:
                    self.packet_hook(packet, self._pts0)
                try:
                    yield from stream.decode(packet)
                except av.error.EOFError:
                    return
                except errors as exc:
                    self.failures += 1
                    logger.debug("%s: packet at pts %s failed: %s", self.path, packet.pts, exc)
                    if self.strict:
                        raise translate_error(exc, self.path) from exc
        except errors as exc:  # demuxing failed: keep what came before
            self.damage = str(exc)
            if self.strict:
                raise translate_error(exc, self.path) from exc
            with contextlib.suppress(*errors):
                yield from stream.decode(None)

    @property
    def discontinuous(self) -> bool:
        """Whether the format's timestamps may jump (MPEG-TS): such a jump of more than
        :data:`DISCONTINUITY_SECONDS` between two frames is read as FFmpeg reads it, a
        discontinuity after which the timeline continues one frame after the last."""
        return bool(self.container.format.flags & AVFMT_TS_DISCONT)

    def _timed(self) -> Generator[tuple[int, VideoFrame], None, None]:
        """``(ticks after the first frame, frame)`` in display order; sets ``_end`` at the end."""
        prev: VideoFrame | None = None
        prev_pts = 0
        prev_step: int | None = None
        discontinuous = self.discontinuous
        threshold = max(1, math.ceil(DISCONTINUITY_SECONDS / self._tb))
        offset = 0
        self.frames_read = self.jumps = 0
        for frame in self._decoded():
            pts = frame.pts
            if pts is None:  # no timestamps (raw streams): continue from the last frame
                pts = prev_pts + (prev_step or self._nominal or 1) if prev is not None else 0
            elif discontinuous and prev is not None:
                pts += offset
                if abs(pts - prev_pts) > threshold:
                    step = prev_step or self._nominal or 1
                    offset += prev_pts + step - pts
                    pts = prev_pts + step
                    self.jumps += 1
            if self._pts0 is None:
                self._pts0 = pts
            if prev is not None:
                if pts <= prev_pts:
                    logger.debug("%s: dropping frame with non-increasing pts %s", self.path, pts)
                    continue
                prev_step = pts - prev_pts
            prev, prev_pts = frame, pts
            self.frames_read += 1
            yield pts - self._pts0, frame
        if prev is None:
            return
        self._end = self._stream_end(prev, prev_pts, prev_step)

    def _stream_end(self, last_frame: VideoFrame, last_pts: int, step: int | None) -> int:
        # The last frame ends where the container says the stream ends (the same end that
        # probe() reports as the duration). Without a usable declaration it lasts its own
        # duration, else as long as the frame before it, else one nominal frame.
        assert self._pts0 is not None
        stream = self.stream
        last = last_frame.duration if last_frame.duration else (step or self._nominal or 1)
        end = last_pts + last
        margin = 2 * max(last, self._nominal or 1)
        if stream.duration and not self.jumps:  # after a jump, declarations mean nothing
            start = stream.start_time if stream.start_time is not None else self._pts0
            declared_end = start + stream.duration
            if declared_end > end + margin:
                self.truncated = True  # the container promised more than the file holds
            elif declared_end > last_pts and not (self.failures or self.damage):
                end = declared_end
        return int(end - self._pts0)

    def _peek(self) -> tuple[int, VideoFrame] | None:
        if self._lookahead is None and self._frames is not None:
            self._lookahead = next(self._frames, None)
            if self._lookahead is None:
                self._frames = iter(())  # exhausted; a rewind starts a new pass
        return self._lookahead

    def frame_at(self, t: Fraction | float) -> VideoFrame | None:
        """The frame covering ``t`` seconds from the first frame (None: past the end)."""
        if self._frames is None:
            self._start()
        limit = Fraction(t) / self._tb + self.slack  # in ticks after the first frame
        if self._current is not None and self._current[0] > limit:
            self._start()  # backwards: decode again from the start
        while (following := self._peek()) is not None:
            if self._current is not None and following[0] > limit:
                break
            self._current, self._lookahead = following, None
        if self._current is None:
            raise VideoDecodeError(
                f"{self.path} has a video stream but no decodable frames"
                + (f" ({self.failures} packets failed to decode)" if self.failures else "")
                + "; the file is corrupt or uses an unsupported codec",
                path=self.path,
            )
        if self._end is not None and Fraction(t) / self._tb >= self._end:
            return None
        return self._current[1]

    def seek(self, t: Fraction | float) -> None:
        """Continue from the keyframe at or before ``t`` seconds (instead of decoding up to it)."""
        if self._pts0 is None:
            self.frame_at(0)  # learn the first frame's timestamp
        assert self._pts0 is not None
        target = self._pts0 + math.floor(Fraction(t) / self._tb)
        self.container.seek(target, stream=self.stream, backward=True)
        self._frames = self._timed()
        self._current = self._lookahead = None
        self._end = None

    def frames(self) -> Iterator[tuple[float, VideoFrame]]:
        """Every frame from the current position on, as ``(seconds after the first, frame)``."""
        if self._frames is None:
            self._start()
        while (following := self._peek()) is not None:
            self._current, self._lookahead = following, None
            yield float(following[0] * self._tb), following[1]
