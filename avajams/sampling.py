"""Sampling frames from videos: the ``Sampler`` protocol and the PyAV ``FrameSampler``.

Semantics (see docs/sampling.md): with ``fps=f`` the samples are taken at ``t = 0, 1/f, 2/f,
...`` seconds from the first frame, strictly before the end of the last frame, and the
image for ``t`` is the frame whose display interval ``[start, next start)`` covers ``t``.
Times are compared exactly in integer ticks of the stream's time base, so a sample that falls
exactly on a frame boundary gets the frame that starts there.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from avajams._progress import Progress, ProgressCallback
from avajams.errors import ConfigError, VideoDecodeError, VideoTooLargeError
from avajams.media import (
    FITS,
    INTERPOLATIONS,
    Fit,
    FrameReader,
    Interpolation,
    VideoDecodeWarning,
    check_path,
    conform,
)

if TYPE_CHECKING:
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

#: Samples per second unless told otherwise (the original's one frame a second).
DEFAULT_FPS = 1.0
#: The highest sampling rate accepted.
MAX_FPS = 60.0
#: Square output side: Inception v3's input size.
DEFAULT_SIZE = 299
#: FFmpeg threads per video: one spends the least CPU per frame, which indexing needs while
#: inference keeps every core busy (0 lets FFmpeg choose, for the lowest latency on one video).
DEFAULT_THREADS = 1


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
        if fit not in FITS:
            raise ConfigError(f"fit {fit!r} is not one of {', '.join(FITS)}")
        self.fit: Fit = fit
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"interpolation {interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
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
        with self._reader(name) as reader:
            stream = reader.stream
            expected = self._expected_count(reader)
            self._check_budget(stream, expected, name)
            used = 0
            with Progress(
                "sampling", expected, unit="frame", show=show_progress, callback=progress
            ) as bar:
                for t, image in self._decode(reader, name):
                    used += image.nbytes
                    if used > self.max_bytes:
                        raise VideoTooLargeError(
                            f"{name}: sampled images exceed max_bytes={self.max_bytes}; "
                            "lower fps, size or max_duration, or raise max_bytes",
                            path=name,
                        )
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
        with self._reader(name) as reader:
            self._check_budget(reader.stream, None, name)
            yield from self._decode(reader, name)

    # -- internals -------------------------------------------------------------------------

    def _reader(self, name: str) -> FrameReader:
        return FrameReader(name, threads=self.threads, strict=self.strict)

    def _sample_limit(self) -> int | None:
        """Number of sample indices allowed by max_duration / max_frames (None = unbounded)."""
        limits = []
        if self._max_duration is not None:
            limits.append(math.ceil(self._max_duration * self._fps))  # k/fps < max_duration
        if self.max_frames is not None:
            limits.append(self.max_frames)
        return min(limits) if limits else None

    def _expected_count(self, reader: FrameReader) -> int | None:
        stream = reader.stream
        limits = [self._sample_limit(), self._content_limit(reader)[0]]
        if stream.duration and stream.duration > 0 and stream.time_base:
            seconds = Fraction(stream.duration) * stream.time_base
            limits.append(max(1, math.ceil(seconds * self._fps)))
        return min((n for n in limits if n is not None), default=None)

    def _content_limit(self, reader: FrameReader) -> tuple[int | None, Fraction | None]:
        """The most samples the file can hold by its own declarations, and its declared length.

        Damaged timestamps (flipped PTS bits, a zeroed ``mdhd`` time base) can make a 5 s
        file look hours long; the shortest of the stream's and the container's declared
        durations bounds the samples (one sample of slack for rounding). Without either, the
        declared frame count does (at most one sample per frame); without that, the frames
        read so far do (see :meth:`_decode`). In formats whose timestamps may jump (MPEG-TS)
        the declared durations are estimated from those same timestamps, so only the frames
        read count there.
        """
        import av

        if reader.discontinuous:
            return None, None
        stream, container = reader.stream, reader.container
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

    def _decode(self, reader: FrameReader, name: str) -> Iterator[tuple[float, NDArray[np.uint8]]]:
        """The single forward pass: yield each sample as soon as its frame is known.

        ``reader`` answers which frame covers each sample time, exactly (in ticks); a frame
        is converted once, however many samples it covers, and only if one does.
        """
        stream = reader.stream
        tb = stream.time_base or Fraction(1, 90000)
        # Sample k covers frame offset `ticks` iff ticks * tb <= k / fps, i.e. in integers
        # ticks * a <= k * b (what the skipper needs to know which packets matter).
        a = tb.numerator * self._fps.numerator
        b = tb.denominator * self._fps.denominator
        reader.packet_hook = _SkipUnsampled(stream, a, b).before
        wanted = self._sample_limit()
        held, declared = self._content_limit(reader)
        limit = min((n for n in (wanted, held) if n is not None), default=None)
        # With nothing declared, each frame read backs at most one sample (twice the nominal
        # frame time's worth in a format whose timestamps may jump and were corrected).
        nominal = stream.average_rate or stream.guessed_rate
        per_frame = 2 * self._fps / nominal if reader.discontinuous and nominal else Fraction(1)
        step = 1 / self._fps
        k = 0
        image: NDArray[np.uint8] | None = None
        image_of: VideoFrame | None = None
        while limit is None or k < limit:
            frame = reader.frame_at(k * step)
            if frame is None:
                break
            if held is None and k >= per_frame * reader.frames_read + 1:
                warnings.warn(
                    f"{name} has timestamps that run ahead of its frames (damaged?); returned "
                    f"the {k} samples its frames back. Re-export the video for correct results",
                    VideoDecodeWarning,
                    stacklevel=3,
                )
                return
            if frame is not image_of:
                image, image_of = self._convert(frame, stream, name), frame
                yield float(k * step), image
            else:
                assert image is not None
                yield float(k * step), image.copy()  # each sample gets its own array
            k += 1
        else:
            # A bound was reached: the rest of the file is never read. Frames far past the
            # declared length mean damaged timestamps: say so.
            if (
                k == held
                and declared is not None
                and k != wanted
                and reader.frame_at(declared + 2 * step) is not None
            ):
                message = (
                    f"{name} has timestamps past its declared length of "
                    f"{float(declared):.3f} s (damaged?); returned the {k} samples that "
                    "length holds. Re-export the video for correct results"
                )
                if self.strict:
                    raise VideoDecodeError(message, path=name)
                warnings.warn(message, VideoDecodeWarning, stacklevel=3)
            return
        if reader.failures or reader.damage or reader.truncated:
            end = reader.end_time or Fraction(0)
            of = f" of {float(stream.duration * tb):.3f} s" if stream.duration else ""
            detail = (
                f"{reader.failures} packets failed to decode"
                if reader.failures
                else (reader.damage or "")
            )
            message = (
                f"{name} is truncated or damaged: decoded {float(end):.3f} s{of}"
                + (f" ({detail})" if detail else "")
                + f"; returned the {k} samples before the damage. Re-download or re-export "
                "the video for complete results"
            )
            if self.strict:
                raise VideoDecodeError(message, path=name)
            warnings.warn(message, VideoDecodeWarning, stacklevel=3)

    def _convert(self, frame: VideoFrame, stream: VideoStream, name: str) -> NDArray[np.uint8]:
        if frame.width > self.max_dimension or frame.height > self.max_dimension:
            raise VideoTooLargeError(
                f"{name} has a {frame.width}x{frame.height} frame, above "
                f"max_dimension={self.max_dimension}; raise max_dimension if this is intended",
                path=name,
            )
        return conform(
            frame,
            self.size,
            fit=self.fit,
            sample_aspect_ratio=stream.sample_aspect_ratio,
            interpolation=self.interpolation,
        )


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
