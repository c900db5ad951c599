"""Where in the query frame a music video may be: regions proposed from the query's pixels.

A video shown picture-in-picture, on a screen someone films, or inside black borders fills only
part of the frame; embedding the whole frame mixes it with everything around it. These
proposals are found from the sampled frames alone, before any embedding, so each costs one
crop per frame to embed:

- ``borders``: the picture inside black bars (letterbox, pillarbox or both);
- ``inset``: the rectangle whose four sides are the strongest *persistent* straight edges —
  the border of a picture-in-picture window or of a filmed screen stays put while the
  pictures on either side of it change;
- ``centre``: the middle of the frame, for a filmed screen whose edges are too soft to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Region", "crop_images", "propose_regions"]

Box = tuple[float, float, float, float]

#: the width frames are reduced to for finding edges (a few ms per frame)
_WORK_WIDTH = 160
#: a side must be at least this fraction of the frame's width or height
_MIN_SIDE = 0.15
#: the weakest side of an inset must stand out this much (in units of the mean edge level)
_MIN_INSET = 0.5
#: ... and this much for a second inset to be proposed (weaker ones leave room for the centre)
_STRONG_INSET = 1.0


@dataclass(frozen=True)
class Region:
    """A part of the query frame: ``box`` is (x0, y0, x1, y1) as fractions of its width and
    height; ``kind`` says how it was found; ``strength`` how clearly (for ordering)."""

    box: Box
    kind: str
    strength: float


def _grey(images: NDArray[np.uint8], width: int) -> NDArray[np.float32]:
    """Grey frames (N, h, w) reduced to about ``width`` columns: every other pixel of each
    row and column is read, then blocks averaged (a quarter of the pixels converted)."""
    n, h, w, _ = images.shape
    step = max(1, w // width)
    sub = 2 if step >= 2 else 1  # read every ``sub``-th pixel, average blocks of step // sub
    block = max(1, step // sub)
    hh, ww = (h // step) * step, (w // step) * step
    picked = images[:, :hh:sub, :ww:sub]
    g = picked.sum(axis=3, dtype=np.uint16).astype(np.float32) / 3.0
    bh, bw = g.shape[1] // block, g.shape[2] // block
    g = g[:, : bh * block, : bw * block]
    out: NDArray[np.float32] = g.reshape(n, bh, block, bw, block).mean(axis=(2, 4))
    return out


def _borders(images: NDArray[np.uint8]) -> Region | None:
    """The picture inside black bars, when there are bars."""
    g = _grey(images, 2 * _WORK_WIDTH)
    bright = np.percentile(g, 98, axis=0)  # (h, w): the brightest each pixel gets
    rows = bright.max(axis=1) > 28
    cols = bright.max(axis=0) > 28
    if not rows.any() or not cols.any():
        return None
    h, w = bright.shape
    y0, y1 = int(np.argmax(rows)), h - int(np.argmax(rows[::-1]))
    x0, x1 = int(np.argmax(cols)), w - int(np.argmax(cols[::-1]))
    box = (x0 / w, y0 / h, x1 / w, y1 / h)
    area = (box[2] - box[0]) * (box[3] - box[1])
    if area > 0.92 or min(box[2] - box[0], box[3] - box[1]) < _MIN_SIDE:
        return None
    return Region(box, "borders", 1.0 - area)


def _peaks(profile: NDArray[np.float32], count: int, spread: int) -> list[int]:
    """The ``count`` highest positions of ``profile``, at least ``spread`` apart."""
    p = profile.copy()
    out: list[int] = []
    for _ in range(count):
        i = int(np.argmax(p))
        if p[i] <= 0:
            break
        out.append(i)
        p[max(0, i - spread) : i + spread + 1] = 0
    return out


def _insets(images: NDArray[np.uint8]) -> list[Region]:
    """The rectangle bounded by the strongest persistent straight edges, if one stands out,
    and the best one that overlaps it little (a host's own straight edge can stand in for one
    side of the window; the runner-up then has the right side)."""
    g = _grey(images, _WORK_WIDTH)
    _, h, w = g.shape
    if h < 12 or w < 12:
        return []
    ex = np.abs(np.diff(g, axis=2)).mean(axis=0)  # (h, w-1): edge between columns x and x+1
    ey = np.abs(np.diff(g, axis=1)).mean(axis=0)  # (h-1, w)
    # a line is an edge that stands above its neighbours across the line
    cx = ex - np.maximum(np.roll(ex, 3, axis=1), np.roll(ex, -3, axis=1))
    cy = ey - np.maximum(np.roll(ey, 3, axis=0), np.roll(ey, -3, axis=0))
    cx[:, :2] = cx[:, -2:] = 0
    cy[:2] = cy[-2:] = 0
    np.maximum(cx, 0, out=cx)
    np.maximum(cy, 0, out=cy)
    xs = _peaks(cx.sum(axis=0), 10, 2)
    ys = _peaks(cy.sum(axis=1), 10, 2)
    # prefix sums along each line: the mean contrast of any segment in O(1)
    col = np.vstack([np.zeros((1, cx.shape[1]), np.float32), np.cumsum(cx, axis=0)])
    row = np.hstack([np.zeros((cy.shape[0], 1), np.float32), np.cumsum(cy, axis=1)])
    level = float(np.mean(ex)) + float(np.mean(ey)) + 1e-3
    scored: list[tuple[float, Box]] = []
    for a in xs:
        for b in xs:
            if b - a < _MIN_SIDE * w:
                continue
            for c in ys:
                for d in ys:
                    if d - c < _MIN_SIDE * h:
                        continue
                    if (b - a) > 0.9 * w and (d - c) > 0.9 * h:
                        continue
                    left = (col[d + 1, a] - col[c, a]) / (d - c + 1)
                    right = (col[d + 1, b] - col[c, b]) / (d - c + 1)
                    top = (row[c, b + 1] - row[c, a]) / (b - a + 1)
                    bottom = (row[d, b + 1] - row[d, a]) / (b - a + 1)
                    score = float(min(left, right, top, bottom)) / level
                    if score >= _MIN_INSET:
                        box = ((a + 1) / w, (c + 1) / h, (b + 1) / w, (d + 1) / h)
                        scored.append((score, box))
    if not scored:
        return []
    scored.sort(key=lambda s: -s[0])
    first = scored[0]
    out = [Region(first[1], "inset", first[0])]
    other = next((s for s in scored[1:] if _iou(s[1], first[1]) < 0.5), None)
    if other is not None and other[0] >= _STRONG_INSET:
        out.append(Region(other[1], "inset", other[0]))
    return out


def propose_regions(images: NDArray[np.uint8], *, limit: int = 2) -> list[Region]:
    """Up to ``limit`` regions of the query frames (uint8 RGB ``(N, H, W, 3)``) worth
    embedding on their own, most promising first; never the whole frame.

    The picture inside black bars comes first, then the strongest inset (and a second one
    overlapping it little, when that one is strong too), then the centre when nothing found
    covers it.
    """
    if images.ndim != 4 or len(images) == 0 or limit <= 0:
        return []
    border = _borders(images)  # black bars are unambiguous: first when present
    found = ([border] if border is not None else []) + _insets(images)
    boxes = [r.box for r in found]
    centre: Box = (0.1, 0.1, 0.9, 0.9)
    if not any(_iou(b, centre) > 0.7 for b in boxes):
        found.append(Region(centre, "centre", 0.0))
    return found[:limit]


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def crop_images(images: NDArray[np.uint8], box: Box, size: tuple[int, int]) -> NDArray[np.uint8]:
    """``box`` of every image, stretched to ``size`` (width, height) with swscale's bilinear
    filter, as the sampler stretches whole frames."""
    import av

    n, h, w, _ = images.shape
    x0, x1 = round(box[0] * w), max(round(box[0] * w) + 2, round(box[2] * w))
    y0, y1 = round(box[1] * h), max(round(box[1] * h) + 2, round(box[3] * h))
    out = np.empty((n, size[1], size[0], 3), np.uint8)
    for i in range(n):
        part = np.ascontiguousarray(images[i, y0:y1, x0:x1])
        frame = av.VideoFrame.from_ndarray(part, format="rgb24")
        out[i] = frame.reformat(
            width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR"
        ).to_ndarray()
    return out
