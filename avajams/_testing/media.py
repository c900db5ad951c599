"""Generated media whose every frame says which clip and which frame it is.

``make_clip`` writes a small H.264 MP4 with PyAV. Each frame carries a *frame code*: a
6 x 6 grid of black and white cells filling the central 50% x 50% of the picture, encoding
the clip's ``tag`` (0..15, a "source id") and the frame's index, protected by a checksum and
by orientation markers. The area around the code is a flat colour chosen by the tag.

``read_frame_code`` reads the code back from an RGB image of the clip's picture. The code
survives H.264 compression, resizing down to 32 x 32 pixels, stretching to another aspect
ratio and centre-cropping to another aspect ratio (as long as the crop keeps at least the
central half in each direction). It locates the grid itself, so it does not need to know how
the picture was resized. A picture that is not upright (a rotation that was not applied) does
not read: the orientation markers and the checksum reject it.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from avajams.errors import ConfigError

__all__ = [
    "CODE_GRID",
    "MAX_FRAMES",
    "MAX_TAG",
    "make_audio_only",
    "make_clip",
    "read_frame_code",
    "tag_colour",
]

#: Cells per side of the frame code.
CODE_GRID = 6
_TAG_BITS = 4
_INDEX_BITS = 16
_CHECK_BITS = 12
#: Largest tag a clip can carry.
MAX_TAG = (1 << _TAG_BITS) - 1
#: Most frames a clip can have (frame indices are 0 .. MAX_FRAMES - 1).
MAX_FRAMES = 1 << _INDEX_BITS

# Corner cells are fixed so an image that is rotated or mirrored never reads as valid:
# top-left white, the other three corners black.
_CORNERS = ((0, 0), (0, CODE_GRID - 1), (CODE_GRID - 1, 0), (CODE_GRID - 1, CODE_GRID - 1))
_CORNER_BITS = (1, 0, 0, 0)
_DATA_CELLS = tuple(
    (r, c) for r in range(CODE_GRID) for c in range(CODE_GRID) if (r, c) not in _CORNERS
)
assert len(_DATA_CELLS) == _TAG_BITS + _INDEX_BITS + _CHECK_BITS

# Mid-luminance colours (BT.601 luma between ~95 and ~160), so the black and white code
# cells are the only near-black / near-white pixels in a frame.
_PALETTE = (
    (200, 80, 80),
    (80, 160, 80),
    (90, 110, 220),
    (190, 160, 40),
    (150, 90, 190),
    (40, 160, 170),
    (210, 120, 40),
    (120, 120, 120),
    (170, 60, 140),
    (100, 150, 40),
    (60, 120, 190),
    (190, 110, 130),
    (110, 90, 160),
    (150, 150, 90),
    (60, 150, 120),
    (180, 130, 170),
)


def tag_colour(tag: int) -> tuple[int, int, int]:
    """The RGB colour around the frame code of clips with this ``tag``."""
    return _PALETTE[tag]


def _checksum(value: int) -> int:
    # Multiplicative hash: any single-bit or permuted read changes it with high probability.
    return ((value * 2654435761) >> 13) & ((1 << _CHECK_BITS) - 1)


def _code_bits(tag: int, index: int) -> NDArray[np.bool_]:
    value = (tag << _INDEX_BITS) | index
    word = (value << _CHECK_BITS) | _checksum(value)
    n = len(_DATA_CELLS)
    grid = np.zeros((CODE_GRID, CODE_GRID), dtype=bool)
    for (r, c), bit in zip(_CORNERS, _CORNER_BITS, strict=True):
        grid[r, c] = bool(bit)
    for i, (r, c) in enumerate(_DATA_CELLS):
        grid[r, c] = bool((word >> (n - 1 - i)) & 1)
    return grid


def _code_area(width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the code: the central 50% x 50% of a width x height picture."""
    w = max(CODE_GRID, width // 2)
    h = max(CODE_GRID, height // 2)
    return (width - w) // 2, (height - h) // 2, w, h


def render_frame(tag: int, index: int, width: int, height: int) -> NDArray[np.uint8]:
    """The upright RGB picture of frame ``index`` of a clip with ``tag`` (what a viewer sees)."""
    _check_tag(tag)
    if not 0 <= index < MAX_FRAMES:
        raise ConfigError(f"frame index {index} is outside 0..{MAX_FRAMES - 1}")
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = _PALETTE[tag]
    x, y, w, h = _code_area(width, height)
    grid = _code_bits(tag, index)
    # Cell edges at evenly spaced integer positions; each pixel belongs to one cell.
    rows = (np.arange(h) * CODE_GRID) // h
    cols = (np.arange(w) * CODE_GRID) // w
    cells = grid[rows[:, None], cols[None, :]]
    image[y : y + h, x : x + w] = np.where(cells[..., None], np.uint8(255), np.uint8(0))
    return image


def read_frame_code(
    image: NDArray[np.uint8], *, region: tuple[int, int, int, int] | None = None
) -> tuple[int, int]:
    """Read ``(tag, frame index)`` from an RGB picture of a clip made by :func:`make_clip`.

    ``image`` is ``(H, W, 3)`` uint8 RGB, at least 32 x 32 pixels, showing the clip's whole
    picture (resized, stretched or centre-cropped). ``region=(x, y, w, h)`` reads from that
    sub-rectangle only, e.g. the picture inside a letterboxed canvas.

    Raises ``ValueError`` when no valid code is found (wrong image, not upright, too small).
    """
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, got shape {array.shape} {array.dtype}"
        )
    if region is not None:
        rx, ry, rw, rh = region
        if rx < 0 or ry < 0 or rw <= 0 or rh <= 0:
            raise ValueError(f"region {region} must have x, y >= 0 and w, h > 0")
        array = array[ry : ry + rh, rx : rx + rw]
    height, width = array.shape[:2]
    if height < 16 or width < 16:
        raise ValueError(f"image {width}x{height} is too small to hold a frame code")
    luma = array.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    extreme = (luma < 60) | (luma > 195)
    x0, x1 = _span(extreme.mean(axis=0))
    y0, y1 = _span(extreme.mean(axis=1))
    if x1 - x0 < CODE_GRID * 2 or y1 - y0 < CODE_GRID * 2:
        raise ValueError("no frame code found in the image")
    bits = np.zeros((CODE_GRID, CODE_GRID), dtype=bool)
    cw = (x1 - x0) / CODE_GRID
    ch = (y1 - y0) / CODE_GRID
    for r in range(CODE_GRID):
        for c in range(CODE_GRID):
            # Average the middle third of the cell, away from blurred edges.
            cx = x0 + (c + 0.5) * cw
            cy = y0 + (r + 0.5) * ch
            xa, xb = int(cx - cw / 6), math.ceil(cx + cw / 6)
            ya, yb = int(cy - ch / 6), math.ceil(cy + ch / 6)
            bits[r, c] = luma[ya:yb, xa:xb].mean() > 127.5
    for (r, c), bit in zip(_CORNERS, _CORNER_BITS, strict=True):
        if bits[r, c] != bool(bit):
            raise ValueError("no upright frame code found in the image (orientation markers)")
    word = 0
    for r, c in _DATA_CELLS:
        word = (word << 1) | int(bits[r, c])
    value = word >> _CHECK_BITS
    if _checksum(value) != word & ((1 << _CHECK_BITS) - 1):
        raise ValueError("no valid frame code found in the image (checksum mismatch)")
    return value >> _INDEX_BITS, value & (MAX_FRAMES - 1)


def _span(profile: NDArray[np.floating]) -> tuple[int, int]:
    """[start, stop) of the columns (or rows) occupied by the code, from a coverage profile."""
    peak = float(profile.max())
    if peak <= 0.05:
        return 0, 0
    inside = np.flatnonzero(profile >= peak / 2)
    return int(inside[0]), int(inside[-1]) + 1


def _check_tag(tag: int) -> None:
    if not 0 <= tag <= MAX_TAG:
        raise ConfigError(f"tag {tag} is outside 0..{MAX_TAG}; pick a source id in that range")


def _as_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction; 23.976, 29.97, 59.94 mean the NTSC n*1000/1001 rates."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        if not math.isfinite(fps):
            raise ConfigError(f"fps {fps} must be a positive finite number")
        ntsc = fps * 1001 / 1000
        if fps != int(fps) and abs(ntsc - round(ntsc)) < 5e-4:
            rate = Fraction(round(ntsc) * 1000, 1001)
        else:
            rate = Fraction(fps).limit_denominator(1000)
    if rate <= 0 or rate > 1000:
        raise ConfigError(f"fps {fps} must be in (0, 1000]")
    return rate


def make_clip(
    path: str | os.PathLike[str],
    *,
    duration: float = 2.0,
    fps: float | Fraction = 24.0,
    size: tuple[int, int] = (96, 64),
    tag: int = 0,
    rotation: int = 0,
    vfr: bool = False,
    start_time: float = 0.0,
    audio_hz: float | None = None,
    audio_sample_rate: int = 44100,
    gop: int = 12,
    b_frames: int = 2,
    pix_fmt: str = "yuv420p",
    seed: int = 0,
    faststart: bool = False,
    sample_aspect_ratio: Fraction | int | None = None,
) -> Path:
    """Write an H.264 MP4 whose every frame encodes ``(tag, frame index)``; return its path.

    - ``fps``: frame rate; 23.976 / 29.97 / 59.94 are written as the exact 1000/1001 rates.
    - ``size``: ``(width, height)`` as *displayed*, i.e. after ``rotation``. yuv420p needs even
      sizes; pass ``pix_fmt="yuv444p"`` for odd ones.
    - ``duration``: seconds; the clip has ``round(duration * fps)`` frames (at least one).
    - ``rotation``: 0, 90, 180 or 270 degrees clockwise that a player must rotate the stored
      frames by (display-matrix side data, as phones write). The stored frames are turned the
      other way, so the *displayed* picture is upright and ``size`` wide.
    - ``vfr``: irregular frame durations (between 0.4 and 1.6 times ``1/fps``, seeded by
      ``seed``); the clip still has ``round(duration * fps)`` frames.
    - ``start_time``: presentation time of the first frame, in seconds.
    - ``audio_hz``: add an AAC sine tone at this frequency for the whole duration.
    - ``gop`` (keyframe interval, frames) and ``b_frames`` (consecutive B-frames, 0 = none).
    - ``faststart``: put the index (``moov``) before the media data, as streaming sites do.
      Cutting the end off such a file leaves it readable up to the cut; without it, a cut
      loses the index and the whole file.
    - ``sample_aspect_ratio``: non-square pixels (anamorphic video). The stored frames are
      narrower (or wider) by this ratio and a player stretches them back to ``size``.
    """
    _check_tag(tag)
    rate = _as_rate(fps)
    width, height = size
    if width < 16 or height < 16 or width > 4096 or height > 4096:
        raise ConfigError(f"size {size} must be between 16 and 4096 pixels per side")
    if pix_fmt == "yuv420p" and (width % 2 or height % 2):
        raise ConfigError(
            f"size {size}: yuv420p needs an even width and height; pass pix_fmt='yuv444p' "
            "for odd sizes"
        )
    if rotation not in (0, 90, 180, 270):
        raise ConfigError(f"rotation {rotation} must be 0, 90, 180 or 270")
    if not (duration > 0 and math.isfinite(duration)):
        raise ConfigError(f"duration {duration} must be a positive number of seconds")
    if start_time < 0:
        raise ConfigError(f"start_time {start_time} must be >= 0")
    n_frames = max(1, round(duration * rate))
    if n_frames > MAX_FRAMES:
        raise ConfigError(f"{n_frames} frames exceed the frame code's limit of {MAX_FRAMES}")

    # A time base of about 1/90000 s in which a frame at ``rate`` lasts a whole number of
    # ticks, so CFR timestamps are exact and VFR jitter has sub-frame resolution.
    k = max(1, math.ceil(90000 / rate.numerator))
    time_base = Fraction(1, rate.numerator * k)
    ticks_per_frame = rate.denominator * k
    if vfr:
        rng = np.random.default_rng(seed)
        durations = np.maximum(
            1, np.round(rng.uniform(0.4, 1.6, n_frames) * ticks_per_frame).astype(np.int64)
        )
    else:
        durations = np.full(n_frames, ticks_per_frame, dtype=np.int64)
    first = round(Fraction(start_time) / time_base)
    pts = first + np.concatenate([[0], np.cumsum(durations)[:-1]])
    end_seconds = float((int(pts[-1]) + int(durations[-1])) * time_base)

    # x264 does not carry frame durations to packets; set them so the MP4 sample table
    # (and so the last frame's duration) is exact.
    duration_of = {int(p): int(d) for p, d in zip(pts, durations, strict=True)}
    out = Path(path)
    stored_w, stored_h = (height, width) if rotation in (90, 270) else (width, height)
    sar = Fraction(1) if sample_aspect_ratio is None else Fraction(sample_aspect_ratio)
    if sar <= 0 or (stored_w / sar).denominator != 1:
        raise ConfigError(
            f"sample_aspect_ratio {sample_aspect_ratio} must be positive and divide the "
            f"stored width {stored_w} into whole pixels"
        )
    stored_w = int(stored_w / sar)
    if pix_fmt == "yuv420p" and stored_w % 2:
        raise ConfigError(
            f"sample_aspect_ratio {sample_aspect_ratio} makes the stored width {stored_w} odd; "
            "yuv420p needs it even (pass pix_fmt='yuv444p')"
        )
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(out), mode="w", format="mp4", options=options) as container:
        video = container.add_stream(
            "libx264",
            rate=rate,
            options={
                "preset": "veryfast",
                "crf": "18",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={b_frames}",
            },
        )
        video.width = stored_w
        video.height = stored_h
        video.pix_fmt = pix_fmt
        if sar != 1:
            video.codec_context.sample_aspect_ratio = sar
        video.time_base = time_base
        video.codec_context.time_base = time_base
        video.codec_context.max_b_frames = b_frames
        video.codec_context.gop_size = gop
        if rotation:
            # PyAV takes counter-clockwise degrees; ours are the clockwise turn players apply.
            video.set_display_rotation(-rotation)
        muxer = _VideoMuxer(container, duration_of)
        audio = None
        if audio_hz is not None:
            audio = container.add_stream("aac", rate=audio_sample_rate)
            audio.layout = "mono"
        audio_done = 0  # samples written
        total_samples = round(end_seconds * audio_sample_rate)

        for index in range(n_frames):
            picture = render_frame(tag, index, width, height)
            if rotation:
                # Stored = upright turned counter-clockwise, so the clockwise turn undoes it.
                picture = np.ascontiguousarray(np.rot90(picture, k=rotation // 90))
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                width=stored_w, height=stored_h, format=pix_fmt
            )
            frame.pts = int(pts[index])
            frame.time_base = time_base
            muxer.mux(video.encode(frame))
            if audio is not None and audio_hz is not None:
                frame_end = float((int(pts[index]) + int(durations[index])) * time_base)
                upto = min(total_samples, round(frame_end * audio_sample_rate))
                audio_done = _write_tone(
                    container, audio, audio_hz, audio_sample_rate, audio_done, upto
                )
        muxer.mux(video.encode(None))
        muxer.close(int(pts[0]), int(pts[-1]) + int(durations[-1]))
        if audio is not None:
            container.mux(audio.encode(None))
    return out


class _VideoMuxer:
    """Muxes encoded packets with their frames' durations.

    x264 does not pass frame durations on to packets, so every packet gets its frame's. An
    MP4 track's declared duration is the sum of its decode-time steps (last dts + last
    duration - first dts), which with B-frames and VFR is not where the picture ends. So the
    last packet is held back and given the duration that makes the declared duration end
    exactly where the last frame in *presentation* order ends.
    """

    def __init__(
        self, container: av.container.OutputContainer, duration_of: dict[int, int]
    ) -> None:
        self._container = container
        self._duration_of = duration_of
        self._pending: av.Packet[Any] | None = None
        self._first_dts: int | None = None

    def mux(self, packets: list[av.Packet[Any]]) -> None:
        for packet in packets:
            if packet.pts is not None:
                packet.duration = self._duration_of[packet.pts]
            if self._first_dts is None:
                self._first_dts = packet.dts
            if self._pending is not None:
                self._container.mux(self._pending)
            self._pending = packet

    def close(self, first_pts: int, end: int) -> None:
        """Mux the last packet so the track runs from ``first_pts`` to ``end``."""
        if self._pending is not None:
            packet, self._pending = self._pending, None
            if packet.dts is not None and self._first_dts is not None:
                span = end - first_pts
                packet.duration = max(1, span - (packet.dts - self._first_dts))
            self._container.mux(packet)


def _write_tone(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    hz: float,
    sample_rate: int,
    start: int,
    stop: int,
) -> int:
    if stop <= start:
        return start
    t = np.arange(start, stop, dtype=np.float64) / sample_rate
    samples = (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :]
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
    frame.sample_rate = sample_rate
    frame.pts = start
    frame.time_base = Fraction(1, sample_rate)
    container.mux(stream.encode(frame))
    return stop


def make_audio_only(
    path: str | os.PathLike[str],
    *,
    duration: float = 1.0,
    hz: float = 440.0,
    sample_rate: int = 44100,
) -> Path:
    """Write an MP4 holding only an AAC sine tone (no video stream); return its path."""
    out = Path(path)
    with av.open(str(out), mode="w", format="mp4") as container:
        audio = container.add_stream("aac", rate=sample_rate)
        audio.layout = "mono"
        _write_tone(container, audio, hz, sample_rate, 0, round(duration * sample_rate))
        container.mux(audio.encode(None))
    return out
