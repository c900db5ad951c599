"""Sampling frames from videos: the ``Sampler`` protocol and the PyAV ``FrameSampler``.

Semantics (see docs/sampling.md): with ``fps=f`` the samples are taken at ``t = 0, 1/f, 2/f,
...`` seconds from the first frame, strictly before the end of the last frame, and the
image for ``t`` is the frame whose display interval ``[start, next start)`` covers ``t``.
Times are compared exactly in integer ticks of the stream's time base, so a sample that falls
exactly on a frame boundary gets the frame that starts there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from avajams._progress import Progress, ProgressCallback
from avajams.errors import ConfigError, VideoDecodeError, VideoTooLargeError
from avajams.media import (
    VideoDecodeWarning,
    check_path,
    demux,
    display_rotation,
    display_size,
    open_video,
    pyav_errors,
    translate_error,
)

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.video.frame import VideoFrame
    from av.video.stream import VideoStream

__all__ = [
    "DescribedSampler",
    "Fit",
    "FrameSampler",
    "Interpolation",
    "SampledFrames",
    "Sampler",
    "sampler_settings",
]

logger = logging.getLogger(__name__)

#: How a picture is fitted to an output size of another aspect ratio.
Fit = Literal["stretch", "crop", "letterbox"]
#: swscale's scaling algorithms, by PyAV name (lower case).
Interpolation = Literal["bilinear", "area", "bicubic", "lanczos", "point", "fast_bilinear"]

#: Samples per second unless told otherwise (the original's one frame a second).
DEFAULT_FPS = 1.0
#: The highest sampling rate accepted.
MAX_FPS = 60.0
#: Square output side: Inception v3's input size.
DEFAULT_SIZE = 299
#: FFmpeg threads per video: one spends the least CPU per frame, which indexing needs while
#: inference keeps every core busy (0 lets FFmpeg choose, for the lowest latency on one video).
DEFAULT_THREADS = 1

#: FFmpeg's AVFMT_TS_DISCONT format flag: the format's timestamps may jump (MPEG-TS).
_AVFMT_TS_DISCONT = 0x0200

_FITS: tuple[str, ...] = get_args(Fit)
_INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)


@dataclass(frozen=True)
class SampledFrames:
    """Frames sampled from one video: ``times`` (N,) seconds and ``images`` (N, H, W, 3) RGB."""

    times: NDArray[np.float64]
    images: NDArray[np.uint8]

    def __post_init__(self) -> None:
        if self.times.ndim != 1 or self.times.dtype != np.float64:
            raise ValueError(
                f"times must be float64 (N,), got {self.times.dtype} {self.times.shape}"
            )
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}"
            )
        if len(self.times) != len(self.images):
            raise ValueError(f"{len(self.times)} times but {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.times)


@runtime_checkable
class Sampler(Protocol):
    """Anything that turns a video file into timed RGB frames.

    ``sample`` returns every sample at once; ``iter_frames`` yields ``(time, image)`` pairs
    one at a time without holding the video in memory. Both raise
    :class:`~avajams.errors.VideoError` subclasses for files they cannot read.
    """

    def sample(self, path: str | os.PathLike[str]) -> SampledFrames: ...

    def iter_frames(
        self, path: str | os.PathLike[str]
    ) -> Iterator[tuple[float, NDArray[np.uint8]]]: ...


@runtime_checkable
class DescribedSampler(Sampler, Protocol):
    """A :class:`Sampler` that can describe its output (optional for custom samplers).

    A library stores the description of the sampler it was built with, so a later run that
    samples differently is warned about instead of silently mixing two kinds of vectors.
    """

    def settings(self) -> Mapping[str, Any]:
        """A JSON-able description of everything that changes the sampled frames."""
        ...


def sampler_settings(sampler: Sampler) -> dict[str, Any] | None:
    """``sampler.settings()`` as a plain dict, or None for a sampler that does not describe
    itself."""
    if isinstance(sampler, DescribedSampler):
        return dict(sampler.settings())
    return None


def _as_fraction(value: float | Fraction, what: str) -> Fraction:
    if isinstance(value, Fraction):
        result = value
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{what} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{what} must be finite, got {value!r}")
        result = Fraction(value).limit_denominator(1_000_000)
    if result <= 0:
        raise ConfigError(f"{what} must be > 0, got {value!r}")
    return result


class FrameSampler:
    """Samples a video at a fixed rate in one forward decode with PyAV (FFmpeg).

    - ``fps``: samples per second (``t = 0, 1/fps, ...`` from the first frame).
    - ``size``: output ``(width, height)``, an int for a square, or ``None`` for the video's
      own upright display size.
    - ``fit``: how a picture of another aspect ratio becomes ``size``: ``"stretch"`` (default;
      scale each axis independently, so nothing is cut off and no bars are added, which is
      what the original Inception feature pipeline did), ``"crop"`` (scale to cover, cut the
      centre) or ``"letterbox"`` (scale to fit, pad with black).
    - ``interpolation``: swscale's scaling algorithm.
    - ``max_duration`` / ``max_frames``: sample at most the first ``max_duration`` seconds /
      ``max_frames`` samples; decoding stops there.
    - ``threads``: FFmpeg decoding threads (default 1, the least CPU per frame; 0 = FFmpeg's
      choice from the CPU count, the lowest latency for one video).
    - ``strict``: raise :class:`VideoDecodeError` for a truncated or partly corrupt video
      instead of returning the frames before the damage with a :class:`VideoDecodeWarning`.
    - ``max_dimension``: refuse videos wider or taller than this (and output sizes above it).
    - ``max_bytes``: refuse a ``sample()`` whose images would exceed this many bytes.

    Resizing, rotation and colour conversion happen only for frames that are sampled; every
    other frame is decoded (it has to be) but never converted.
    """

    def __init__(
        self,
        fps: float | Fraction = DEFAULT_FPS,
        size: int | tuple[int, int] | None = DEFAULT_SIZE,
        *,
        fit: Fit = "stretch",
        interpolation: Interpolation = "bilinear",
        max_duration: float | None = None,
        max_frames: int | None = None,
        threads: int = DEFAULT_THREADS,
        strict: bool = False,
        max_dimension: int = 16384,
        max_bytes: int = 2**31,
    ) -> None:
        self._fps = _as_fraction(fps, "fps")
        if self._fps > MAX_FPS:
            raise ConfigError(
                f"fps {fps} is above {MAX_FPS:g} samples per second; pick a lower rate"
            )
        if isinstance(max_dimension, bool) or not isinstance(max_dimension, int):
            raise ConfigError(f"max_dimension must be an int, got {max_dimension!r}")
        if max_dimension < 1:
            raise ConfigError(f"max_dimension must be >= 1, got {max_dimension}")
        self.max_dimension = max_dimension
        self.size = self._check_size(size)
        if fit not in _FITS:
            raise ConfigError(f"fit {fit!r} is not one of {', '.join(_FITS)}")
        self.fit: Fit = fit
        if interpolation not in _INTERPOLATIONS:
            raise ConfigError(
                f"interpolation {interpolation!r} is not one of {', '.join(_INTERPOLATIONS)}"
            )
        self.interpolation: Interpolation = interpolation
        self._max_duration = (
            None if max_duration is None else _as_fraction(max_duration, "max_duration")
        )
        if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
        ):
            raise ConfigError(f"max_frames must be a positive int or None, got {max_frames!r}")
        self.max_frames = max_frames
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ConfigError(f"threads must be an int >= 0 (0 = automatic), got {threads!r}")
        self.threads = threads
        self.strict = bool(strict)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigError(f"max_bytes must be a positive int, got {max_bytes!r}")
        self.max_bytes = max_bytes

    def _check_size(self, size: int | tuple[int, int] | None) -> tuple[int, int] | None:
        if size is None:
            return None
        pair = (size, size) if isinstance(size, int) else size
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        ):
            raise ConfigError(f"size must be an int, a (width, height) pair or None, got {size!r}")
        width, height = int(pair[0]), int(pair[1])
        if not (1 <= width <= self.max_dimension and 1 <= height <= self.max_dimension):
            raise ConfigError(
                f"size {size!r} must be between 1 and {self.max_dimension} pixels per side"
            )
        return width, height

    @property
    def fps(self) -> float:
        """Samples per second."""
        return float(self._fps)

    @property
    def max_duration(self) -> float | None:
        """Seconds sampled at most from the start of a video (None = all)."""
        return None if self._max_duration is None else float(self._max_duration)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items() if k != "sampler")
        return f"FrameSampler({args})"

    def settings(self) -> dict[str, Any]:
        """A JSON-able description of everything that changes the output (not ``threads``)."""
        return {
            "sampler": "avajams.FrameSampler",
            "fps": self.fps,
            "size": None if self.size is None else list(self.size),
            "fit": self.fit,
            "interpolation": self.interpolation,
            "max_duration": self.max_duration,
            "max_frames": self.max_frames,
        }

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **overrides: Any) -> FrameSampler:
        """Rebuild a sampler from :meth:`settings` (e.g. the one a library was built with)."""
        known = {"fps", "size", "fit", "interpolation", "max_duration", "max_frames"}
        options = {k: v for k, v in settings.items() if k in known}
        if isinstance(options.get("size"), list):
            options["size"] = tuple(options["size"])
        options.update(overrides)
        return cls(**options)

    # -- public sampling -------------------------------------------------------------------

    def sample(
        self,
        path: str | os.PathLike[str],
        *,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> SampledFrames:
        """Sample the whole video (up to the bounds) into one :class:`SampledFrames`."""
        name = check_path(path)
        times: list[float] = []
        images: list[NDArray[np.uint8]] = []
        with open_video(name) as (container, stream):
            expected = self._expected_count(container, stream)
            self._check_budget(stream, expected, name)
            with Progress(
                "sampling", expected, unit="frame", show=show_progress, callback=progress
            ) as bar:
                for t, image in self._decode(container, stream, name):
                    times.append(t)
                    images.append(image)
                    bar.update()
        return SampledFrames(times=np.asarray(times, dtype=np.float64), images=np.stack(images))

    def iter_frames(
        self, path: str | os.PathLike[str]
    ) -> Generator[tuple[float, NDArray[np.uint8]], None, None]:
        """Yield ``(time, image)`` one sample at a time, decoding as it goes.

        The path is checked at once; the file is opened on the first ``next()`` and closed
        when the iterator is exhausted, closed, or garbage-collected (use
        ``contextlib.closing`` to close it early and deterministically).
        """
        name = check_path(path)
        return self._iter(name)

    def _iter(self, name: str) -> Generator[tuple[float, NDArray[np.uint8]], None, None]:
        with open_video(name) as (container, stream):
            self._check_budget(stream, None, name)
            yield from self._samples(container, stream, name)

    # -- internals -------------------------------------------------------------------------

    def _sample_limit(self) -> int | None:
        """Number of sample indices allowed by max_duration / max_frames (None = unbounded)."""
        limits = []
        if self._max_duration is not None:
            limits.append(math.ceil(self._max_duration * self._fps))  # k/fps < max_duration
        if self.max_frames is not None:
            limits.append(self.max_frames)
        return min(limits) if limits else None

    def _expected_count(self, container: InputContainer, stream: VideoStream) -> int | None:
        limits = [self._sample_limit(), self._content_limit(container, stream)[0]]
        if stream.duration and stream.duration > 0 and stream.time_base:
            seconds = Fraction(stream.duration) * stream.time_base
            limits.append(max(1, math.ceil(seconds * self._fps)))
        return min((n for n in limits if n is not None), default=None)

    def _content_limit(
        self, container: InputContainer, stream: VideoStream
    ) -> tuple[int | None, Fraction | None]:
        """The most samples the file can hold by its own declarations, and its declared length.

        Damaged timestamps (flipped PTS bits, a zeroed ``mdhd`` time base) can make a 5 s
        file look hours long; the shortest of the stream's and the container's declared
        durations bounds the samples (one sample of slack for rounding). Without either, the
        declared frame count does (at most one sample per frame); without that, the frames
        decoded so far do (see :meth:`_samples`).
        """
        import av

        spans: list[Fraction] = []
        if stream.time_base and stream.duration and stream.duration > 0:
            spans.append(Fraction(stream.duration) * stream.time_base)
        if container.duration and container.duration > 0:
            spans.append(Fraction(container.duration, av.time_base))
        if spans:
            seconds = min(spans)
            return math.floor(seconds * self._fps) + 2, seconds
        if stream.frames and stream.frames > 0:
            return int(stream.frames) + 1, None
        return None, None

    def _check_budget(self, stream: VideoStream, expected: int | None, name: str) -> None:
        """Refuse absurd sources and outputs before decoding anything."""
        width, height = stream.codec_context.width, stream.codec_context.height
        if width > self.max_dimension or height > self.max_dimension:
            raise VideoTooLargeError(
                f"{name} is {width}x{height}, above max_dimension={self.max_dimension}; "
                "raise max_dimension if this is intended",
                path=name,
            )
        out_w, out_h = self.size if self.size is not None else (width, height)
        if expected is not None and expected * out_w * out_h * 3 > self.max_bytes:
            raise VideoTooLargeError(
                f"{name}: about {expected} samples of {out_w}x{out_h} would need "
                f"{expected * out_w * out_h * 3} bytes, above max_bytes={self.max_bytes}; "
                "lower fps, size or max_duration, or raise max_bytes",
                path=name,
            )

    def _decode(
        self, container: InputContainer, stream: VideoStream, name: str
    ) -> Iterator[tuple[float, NDArray[np.uint8]]]:
        """Every sample of the file, within ``max_bytes`` of images in all (``sample()``)."""
        used = 0
        for t, image in self._samples(container, stream, name):
            used += image.nbytes
            if used > self.max_bytes:
                raise VideoTooLargeError(
                    f"{name}: sampled images exceed max_bytes={self.max_bytes}; "
                    "lower fps, size or max_duration, or raise max_bytes",
                    path=name,
                )
            yield t, image

    def _samples(
        self, container: InputContainer, stream: VideoStream, name: str
    ) -> Iterator[tuple[float, NDArray[np.uint8]]]:
        """The single forward pass: yield each sample as soon as its frame is known.

        The frame covering ``t`` is known only once the *next* frame's start (or the end of
        the stream) is seen, so each frame is held back by one and converted only if a
        sample falls in its interval.
        """
        import av

        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        tb = stream.time_base or Fraction(1, 90000)
        # Sample k covers frame offset `ticks` iff ticks * tb <= k / fps, i.e. in integers
        # ticks * a <= k * b: exact, no float rounding at frame boundaries.
        a = tb.numerator * self._fps.numerator
        b = tb.denominator * self._fps.denominator
        wanted = self._sample_limit()
        rate = stream.average_rate or stream.guessed_rate
        nominal = max(1, round(1 / (rate * tb))) if rate else None
        # Formats whose timestamps may jump (MPEG-TS: AVFMT_TS_DISCONT) are read as FFmpeg
        # reads them: a jump of more than 10 s between two frames (its dts_delta_threshold)
        # is a discontinuity, and the timeline continues one frame after the last. Their
        # declared durations are estimated from those same timestamps, so the samples are
        # bounded by the frames seen instead (twice the nominal frame rate's time each).
        # Elsewhere a long gap is a long frame (a slide show), bounded by the declared length.
        discontinuous = bool(container.format.flags & _AVFMT_TS_DISCONT)
        held, declared = (None, None) if discontinuous else self._content_limit(container, stream)
        limit = min((n for n in (wanted, held) if n is not None), default=None)
        per_frame = 2 * nominal * tb * self._fps if discontinuous and nominal else Fraction(1)

        def allowed(seen: int) -> bool:
            """Whether sample ``k`` is backed by enough frames when nothing bounds it."""
            return held is not None or k < per_frame * seen + 1

        k = 0
        pts0: int | None = None
        prev: VideoFrame | None = None
        prev_pts = 0
        prev_step: int | None = None
        image: NDArray[np.uint8] | None = None
        failures = 0
        damaged: str | None = None
        seen = 0  # frames with increasing timestamps, the bound when nothing is declared
        skipped = False
        threshold = max(1, math.ceil(Fraction(10) / tb))
        offset = 0
        jumps = 0

        def emit(frame: VideoFrame) -> NDArray[np.uint8]:
            nonlocal image
            if image is None:
                image = converted = self._convert(frame, stream, name)
                return converted
            again: NDArray[np.uint8] = image.copy()  # each sample gets its own array
            return again

        def decoded() -> Generator[VideoFrame, None, None]:
            nonlocal failures, damaged
            errors = pyav_errors()
            try:
                # demux() ends with an empty packet per stream, which flushes the decoder.
                for packet in demux(container, stream):
                    skipper.before(packet, pts0)
                    try:
                        yield from stream.decode(packet)
                    except av.error.EOFError:
                        return
                    except errors as exc:
                        failures += 1
                        logger.debug("%s: packet at pts %s failed: %s", name, packet.pts, exc)
                        if self.strict:
                            raise translate_error(exc, name) from exc
            except errors as exc:  # demuxing failed: keep what came before
                damaged = str(exc)
                if self.strict:
                    raise translate_error(exc, name) from exc
                with contextlib.suppress(*errors):
                    yield from stream.decode(None)

        skipper = _SkipUnsampled(stream, a, b)
        frames = decoded()
        try:
            for frame in frames:
                pts = frame.pts
                if pts is None:  # no timestamps (raw streams): continue from the last frame
                    pts = prev_pts + (prev_step or nominal or 1) if prev is not None else 0
                elif discontinuous and prev is not None:
                    pts += offset
                    if abs(pts - prev_pts) > threshold:
                        step = prev_step or nominal or 1
                        offset += prev_pts + step - pts
                        pts = prev_pts + step
                        jumps += 1
                if prev is None:
                    pts0, prev, prev_pts = pts, frame, pts
                    continue
                if pts <= prev_pts:
                    logger.debug("%s: dropping frame with non-increasing pts %s", name, pts)
                    continue
                assert pts0 is not None
                seen += 1
                key = (pts - pts0) * a
                while (limit is None or k < limit) and k * b < key:
                    if not allowed(seen - 1):
                        skipped = True  # timestamps run ahead of the frames that back them
                        break
                    yield k * self._fps.denominator / self._fps.numerator, emit(prev)
                    k += 1
                if limit is not None and k >= limit:
                    # A bound was reached: the rest of the file is never read. Timestamps
                    # far past the declared length mean they are damaged: say so.
                    if declared is not None and (pts - pts0) * tb > declared + 1 / self._fps:
                        self._warn_timestamps(name, declared, k)
                    return
                prev_step = pts - prev_pts
                prev, prev_pts, image = frame, pts, None
        finally:
            frames.close()

        if prev is None:
            raise VideoDecodeError(
                f"{name} has a video stream but no decodable frames"
                + (f" ({failures} packets failed to decode)" if failures else "")
                + "; the file is corrupt or uses an unsupported codec",
                path=name,
            )
        assert pts0 is not None
        # The last frame ends where the container says the stream ends (the same end that
        # probe() reports as the duration). Without a usable declaration it lasts its own
        # duration, else as long as the frame before it, else one nominal frame.
        last = prev.duration if prev.duration else (prev_step or nominal or 1)
        end = prev_pts + last
        slack = 2 * max(last, nominal or 1)
        truncated = False
        if stream.duration and not jumps:
            declared_end = (
                stream.start_time if stream.start_time is not None else pts0
            ) + stream.duration
            if declared_end > end + slack:
                truncated = True  # the container promised more than the file holds
            elif declared_end > prev_pts and not (failures or damaged):
                end = declared_end
        while (limit is None or k < limit) and k * b < (end - pts0) * a:
            if not allowed(seen):
                skipped = True
                break
            yield k * self._fps.denominator / self._fps.numerator, emit(prev)
            k += 1
        if skipped:
            warnings.warn(
                f"{name} has timestamps that run ahead of its frames (damaged?); returned the "
                f"{k} samples its frames back. Re-export the video for correct results",
                VideoDecodeWarning,
                stacklevel=4,
            )
        if limit is not None and k >= limit:
            if declared is not None and end - pts0 > declared / tb + slack:
                self._warn_timestamps(name, declared, k)
            return
        if failures or damaged or truncated:
            got = float((end - pts0) * tb)
            of = f" of {float(stream.duration * tb):.3f} s" if stream.duration else ""
            detail = f"{failures} packets failed to decode" if failures else (damaged or "")
            message = (
                f"{name} is truncated or damaged: decoded {got:.3f} s{of}"
                + (f" ({detail})" if detail else "")
                + f"; returned the {k} samples before the damage. Re-download or re-export "
                "the video for complete results"
            )
            if self.strict:
                raise VideoDecodeError(message, path=name)
            warnings.warn(message, VideoDecodeWarning, stacklevel=4)

    def _warn_timestamps(self, name: str, declared: Fraction, count: int) -> None:
        message = (
            f"{name} has timestamps past its declared length of {float(declared):.3f} s "
            f"(damaged?); returned the {count} samples that length holds. Re-export the "
            "video for correct results"
        )
        if self.strict:
            raise VideoDecodeError(message, path=name)
        warnings.warn(message, VideoDecodeWarning, stacklevel=5)

    def _geometry(
        self, frame: VideoFrame, stream: VideoStream, name: str
    ) -> tuple[int, tuple[int, int], tuple[int, int], tuple[int, int, int, int] | None]:
        """(rotation, scaled stored size, output size, placement) for one source frame."""
        if frame.width > self.max_dimension or frame.height > self.max_dimension:
            raise VideoTooLargeError(
                f"{name} has a {frame.width}x{frame.height} frame, above "
                f"max_dimension={self.max_dimension}; raise max_dimension if this is intended",
                path=name,
            )
        rotation = display_rotation(frame)
        dw, dh = display_size(frame.width, frame.height, rotation, stream.sample_aspect_ratio)
        tw, th = self.size if self.size is not None else (dw, dh)
        place: tuple[int, int, int, int] | None = None
        if self.fit == "stretch" or (dw * th == dh * tw):
            sw, sh = tw, th
        elif self.fit == "crop":
            scale = max(tw / dw, th / dh)
            sw, sh = max(tw, round(dw * scale)), max(th, round(dh * scale))
            place = ((sw - tw) // 2, (sh - th) // 2, tw, th)  # window cut from the scaled
        else:  # letterbox
            scale = min(tw / dw, th / dh)
            sw, sh = min(tw, max(1, round(dw * scale))), min(th, max(1, round(dh * scale)))
            place = ((tw - sw) // 2, (th - sh) // 2, sw, sh)  # where it goes on the canvas
        stored = (sh, sw) if rotation in (90, 270) else (sw, sh)
        return rotation, stored, (tw, th), place

    def _convert(self, frame: VideoFrame, stream: VideoStream, name: str) -> NDArray[np.uint8]:
        rotation, (sw, sh), (tw, th), place = self._geometry(frame, stream, name)
        # swscale does the scaling and the YUV -> RGB conversion in one pass.
        rgb = frame.reformat(
            width=sw, height=sh, format="rgb24", interpolation=self.interpolation.upper()
        ).to_ndarray()
        if rotation:
            rgb = np.rot90(rgb, k=-rotation // 90)
        if place is None:
            return np.ascontiguousarray(rgb)
        x, y, w, h = place
        if self.fit == "crop":
            return np.ascontiguousarray(rgb[y : y + h, x : x + w])
        canvas = np.zeros((th, tw, 3), dtype=np.uint8)
        canvas[y : y + h, x : x + w] = rgb
        return canvas


class _SkipUnsampled:
    """Lets the decoder drop frames that no sample lands on and no other frame references.

    At 1 sample/s of 30 fps H.264 with B-frames about half the frames are non-reference and
    never sampled; ``skip_frame="NONREF"`` for their packets saves about a third of the
    decoding time (measured by ``python -m benchmarks sampling``). Which frame a packet holds
    is known before decoding only on a constant-rate grid, so this acts only while every packet
    lasts the same number of ticks with its pts on that grid (from the first frame); the first
    irregular packet turns it off for the rest of the file. A packet is decoded when a sample
    falls within one frame of its interval (a dropped frame stays covered) or it is among the
    last frames (so the truncation check sees the true end). H.264 and HEVC only: their
    non-reference flag is exact.
    """

    _CODECS = frozenset({"h264", "hevc"})

    def __init__(self, stream: VideoStream, a: int, b: int) -> None:
        self._codec = stream.codec_context
        self._a, self._b = a, b
        self._on = self._codec.name in self._CODECS
        self._duration = stream.duration
        self._step: int | None = None
        self._skipping = False

    def before(self, packet: Any, pts0: int | None) -> None:
        """Set the decoder's ``skip_frame`` for ``packet`` (``pts0``: first frame's pts)."""
        skip = False
        if self._on and pts0 is not None:
            pts, step = packet.pts, packet.duration
            if pts is None or not step or step != (self._step or step) or (pts - pts0) % step:
                self._on = False
            else:
                self._step = step
                offset = pts - pts0
                first = max(0, -(-(offset - step) * self._a // self._b))  # first k at or after
                near_sample = first * self._b < (offset + 2 * step) * self._a
                near_end = self._duration is not None and offset + 4 * step >= self._duration
                skip = not (near_sample or near_end)
        if skip != self._skipping:
            self._codec.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skipping = skip
