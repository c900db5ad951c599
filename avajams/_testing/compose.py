"""Queries that show a video in part of the frame or part of the clip, with known truth.

- :func:`make_picture_in_picture`: ``music`` in a window (``box``) over ``host`` footage;
- :func:`make_inserted_excerpt`: ``host`` footage with a stretch of ``music`` in the middle.

Both decode with PyAV, compose with Pillow and write H.264 (no audio), so a test knows exactly
which box and which times a matcher should report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from avajams.photo import _write

__all__ = ["make_inserted_excerpt", "make_picture_in_picture"]


def _frames_at(path: str | os.PathLike[str], times: list[float]) -> Iterator[Image.Image]:
    """The frame on screen at each of the increasing ``times`` (seconds from the start)."""
    import av

    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        current: Any = None
        pending: Any = None
        frames = container.decode(stream)
        for t in times:
            while True:
                if pending is None:
                    pending = next(frames, None)
                    if pending is None:
                        break
                if current is None or (pending.time or 0.0) <= t + 1e-6:
                    current, pending = pending, None
                    continue
                break
            if current is None:
                raise ValueError(f"{os.fspath(path)} has no video frames")
            yield Image.fromarray(current.to_ndarray(format="rgb24"))


def make_picture_in_picture(
    music: str | os.PathLike[str],
    host: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    box: tuple[float, float, float, float] = (0.58, 0.06, 0.94, 0.42),
    music_start: float = 0.0,
    duration: float = 6.0,
    size: tuple[int, int] = (320, 240),
    fps: float = 12.0,
    frame: bool = True,
) -> Path:
    """Write ``host`` with ``music`` (from ``music_start``) playing in ``box`` over it.

    ``box`` is (x0, y0, x1, y1) as fractions of ``size``; ``frame`` draws a thin white border
    around the window, as reaction videos often do.
    """
    width, height = size
    count = max(1, round(duration * fps))
    times = [i / fps for i in range(count)]
    x0, y0 = round(box[0] * width), round(box[1] * height)
    x1, y1 = round(box[2] * width), round(box[3] * height)
    hosts = list(_frames_at(host, times))
    inner = list(_frames_at(music, [music_start + t for t in times]))

    def render(i: int) -> Image.Image:
        canvas = hosts[i].resize(size, Image.Resampling.BILINEAR)
        if frame:
            ImageDraw.Draw(canvas).rectangle((x0 - 2, y0 - 2, x1 + 1, y1 + 1), fill="white")
        canvas.paste(inner[i].resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR), (x0, y0))
        return canvas

    out = Path(path)
    _write(out, render, fps=fps, size=size, count=count, audio=None, crf=23)
    return out


def make_inserted_excerpt(
    music: str | os.PathLike[str],
    host: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    music_start: float,
    length: float,
    at: float,
    duration: float,
    size: tuple[int, int] = (320, 240),
    fps: float = 12.0,
) -> Path:
    """Write ``duration`` seconds of ``host`` with ``length`` seconds of ``music`` (from
    ``music_start``) shown in place of the host from query time ``at``."""
    count = max(1, round(duration * fps))
    times = [i / fps for i in range(count)]
    hosts = list(_frames_at(host, times))
    shown = [t for t in times if at - 1e-9 <= t < at + length - 1e-9]
    inner = dict(zip(shown, _frames_at(music, [music_start + t - at for t in shown]), strict=True))

    def render(i: int) -> Image.Image:
        image = inner.get(times[i], hosts[i])
        return image.resize(size, Image.Resampling.BILINEAR)

    out = Path(path)
    _write(out, render, fps=fps, size=size, count=count, audio=None, crf=23)
    return out
