"""Queries made from the real clips, each with its truth: which clip, when, and where.

Every query is a new H.264 file generated with PyAV, numpy and Pillow from a library clip (and,
for some transformations, unrelated host footage), the way people re-share a music video:
picture-in-picture over other footage, a phone filming a screen, a vertical crop, a short
excerpt inside unrelated footage, mirrored and sped up, heavily compressed, captioned,
letterboxed — and the easy guards (a plain re-encode, a crop, a flip). The truth records the
clip, the query span that shows it and the clip times it shows (``music = music_start +
speed * (query - query_start)``), and for a region the box in the query frame.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["TRANSFORMS", "Query", "Truth", "make_query"]

#: query frame rate: a phone's low-light rate; the matcher samples 1 frame/s whatever it is
FPS = 12.5
CANVAS = (640, 360)


@dataclass(frozen=True)
class Truth:
    """Where the library clip is in a query.

    ``box`` is (x0, y0, x1, y1) as fractions of the query frame (None: the whole frame, or a
    shape no box describes); ``speed`` is clip seconds per query second.
    """

    key: str
    query_start: float
    query_end: float
    music_start: float
    speed: float = 1.0
    box: tuple[float, float, float, float] | None = None

    def music_time(self, query_time: float) -> float:
        return self.music_start + self.speed * (query_time - self.query_start)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Query:
    """One generated query file and its truth."""

    path: Path
    transform: str
    truth: Truth


class FrameReader:
    """Frames of a video at increasing times (the frame showing at each time), as RGB images.

    Only the frames asked for are converted to RGB; the others are just decoded.
    """

    def __init__(self, path: Path, size: tuple[int, int] | None = None) -> None:
        import av

        self._container = av.open(os.fspath(path))
        stream = self._container.streams.video[0]
        self._frames = self._container.decode(stream)
        self._size = size
        self._current: Any = None
        self._image: Image.Image | None = None
        self._next: tuple[float, Any] | None = None
        self.duration = float(self._container.duration or 0) / 1e6
        self._advance()

    def _advance(self) -> None:
        for frame in self._frames:
            if frame.time is not None:
                self._next = (float(frame.time), frame)
                return
        self._next = None

    def at(self, t: float) -> Image.Image:
        while self._next is not None and (self._current is None or self._next[0] <= t + 1e-6):
            self._current, self._image = self._next[1], None
            self._advance()
        if self._image is None:
            frame = self._current
            if self._size is not None:
                frame = frame.reformat(width=self._size[0], height=self._size[1])
            self._image = Image.fromarray(frame.to_ndarray(format="rgb24"))
        return self._image

    def close(self) -> None:
        self._container.close()


class HostReel:
    """Unrelated real footage, the host clips one after another (looping), at canvas size."""

    def __init__(self, paths: list[Path], size: tuple[int, int]) -> None:
        self._paths = paths
        self._size = size

    def frames(self, start: float, count: int, fps: float) -> Iterator[Image.Image]:
        import av

        lengths = []
        for p in self._paths:
            with av.open(os.fspath(p)) as c:
                lengths.append(float(c.duration or 0) / 1e6)
        total = sum(lengths)
        t = start % total
        i = 0
        while t >= lengths[i]:
            t -= lengths[i]
            i += 1
        made = 0
        while made < count:
            reader = FrameReader(self._paths[i], self._size)
            try:
                while made < count and t < lengths[i] - 0.5 / fps:
                    yield reader.at(t)
                    made += 1
                    t += 1 / fps
            finally:
                reader.close()
            i = (i + 1) % len(self._paths)
            t = 0.0


def _write(path: Path, frames: Iterator[NDArray[np.uint8]], *, crf: int, fps: float = FPS) -> None:
    import av

    rate = Fraction(fps).limit_denominator(1001)
    partial = path.with_suffix(".partial.mp4")
    with av.open(os.fspath(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        first = True
        for i, image in enumerate(frames):
            if first:
                stream.height, stream.width = image.shape[:2]
                first = False
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    partial.replace(path)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default()


@dataclass(frozen=True)
class Plan:
    """What one transformation does: the clip span it shows and how it draws each frame."""

    music_start: float
    length: float  # query seconds showing the clip
    speed: float
    draw: Callable[[Image.Image | None, Image.Image | None, int], NDArray[np.uint8]]
    lead: float = 0.0  # host seconds before the clip
    tail: float = 0.0  # host seconds after the clip
    box: tuple[float, float, float, float] | None = None
    crf: int = 23


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _fit(image: Image.Image | None, size: tuple[int, int]) -> Image.Image:
    assert image is not None, "this transformation draws a clip frame in every frame"
    return image.resize(size, Image.Resampling.BILINEAR)


def _plan(transform: str, clip_duration: float, rng: np.random.Generator, variant: int) -> Plan:
    """The random choices of one query (seeded), as a :class:`Plan`."""
    W, H = CANVAS
    length = min(10.0, clip_duration - 0.2)

    def start(span: float) -> float:
        return float(rng.uniform(0.0, max(0.0, clip_duration - span - 0.1)))

    if transform == "reencode":
        return Plan(start(length), length, 1.0, lambda c, h, i: np.asarray(_fit(c, (W, H))), crf=28)
    if transform == "crop":
        z = rng.uniform(0.75, 0.85)
        cx, cy = rng.uniform(0.4, 0.6, size=2)

        def crop(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            assert c is not None
            w, hh = c.size
            x0 = min(max(cx * w - z * w / 2, 0), w - z * w)
            y0 = min(max(cy * hh - z * hh / 2, 0), hh - z * hh)
            return np.asarray(
                c.resize((W, H), Image.Resampling.BILINEAR, box=(x0, y0, x0 + z * w, y0 + z * hh))
            )

        return Plan(start(length), length, 1.0, crop)
    if transform == "flip":
        return Plan(
            start(length),
            length,
            1.0,
            lambda c, h, i: np.asarray(_fit(c, (W, H)))[:, ::-1],
        )
    if transform == "pip":
        scale = float(rng.uniform(0.25, 0.40))
        pw, ph = _even(W * scale), _even(H * scale)
        margin = 12
        corner = variant % 4 if rng.uniform() < 0.75 else None
        if corner is None:
            x = int(rng.uniform(margin, W - pw - margin))
            y = int(rng.uniform(margin, H - ph - margin))
        else:
            x = margin if corner in (0, 2) else W - pw - margin
            y = margin if corner in (0, 1) else H - ph - margin

        framed = rng.uniform() < 0.5  # a white frame around the window, or none

        def pip(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            assert c is not None
            assert h is not None
            canvas = h.copy()
            if framed:
                ImageDraw.Draw(canvas).rectangle(
                    (x - 2, y - 2, x + pw + 1, y + ph + 1), fill="white"
                )
            canvas.paste(_fit(c, (pw, ph)), (x, y))
            return np.asarray(canvas)

        box = (x / W, y / H, (x + pw) / W, (y + ph) / H)
        plen = min(length, 8.0)
        return Plan(start(plen), plen, 1.0, pip, box=box)
    if transform == "phone_screen":
        ow, oh = 480, 270
        fill = float(rng.uniform(0.72, 0.85))
        sw, sh = ow * fill, oh * fill
        cx, cy = ow / 2 + rng.uniform(-0.05, 0.05) * ow, oh / 2 + rng.uniform(-0.05, 0.05) * oh
        quad = np.array(
            [[cx - sw / 2, cy - sh / 2], [cx + sw / 2, cy - sh / 2],
             [cx + sw / 2, cy + sh / 2], [cx - sw / 2, cy + sh / 2]]
        )  # fmt: skip
        quad += rng.uniform(-0.04, 0.04, size=(4, 2)) * np.array([ow, oh])
        gains = rng.uniform(0.8, 1.15, size=3)
        gamma = float(rng.uniform(0.8, 1.25))
        blur = float(rng.uniform(0.8, 1.6))
        noise = float(rng.uniform(4, 9))
        room = np.linspace(25, 70, oh)[:, None, None] * np.array([1.0, 0.9, 0.8])
        room = np.broadcast_to(room, (oh, ow, 3)).astype(np.float32)
        noise_rng = np.random.default_rng(int(rng.integers(1 << 30)))

        def phone(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            assert c is not None
            shake = np.array([np.sin(i / 7.0), np.cos(i / 9.0)]) * 2.5
            q = quad + shake
            src = _fit(c, (640, 360))
            coeffs = _perspective_coeffs(q, (640, 360))
            warped = src.transform(
                (ow, oh), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
            )
            mask = Image.new("L", (640, 360), 255).transform(
                (ow, oh), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
            )
            m = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
            img = np.asarray(warped, dtype=np.float32) * m + room * (1 - m)
            img = 255.0 * (np.clip(img * gains, 0, 255) / 255.0) ** gamma
            img = np.asarray(
                Image.fromarray(img.astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
            )
            noisy: NDArray[np.float64] = img + noise_rng.normal(0, noise, size=img.shape)
            out: NDArray[np.uint8] = np.clip(noisy, 0, 255).astype(np.uint8)
            return out

        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        box = (x0 / ow, y0 / oh, x1 / ow, y1 / oh)
        return Plan(start(length), length, 1.0, phone, box=box, crf=26)
    if transform == "vertical":
        vw, vh = 360, 640

        def vertical(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            assert c is not None
            w, hh = c.size
            cw = hh * 9 / 16
            x0 = (w - cw) / 2
            return np.asarray(
                c.resize((vw, vh), Image.Resampling.BILINEAR, box=(x0, 0, x0 + cw, hh))
            )

        return Plan(start(length), length, 1.0, vertical)
    if transform == "excerpt":
        elen = float(rng.uniform(2.0, 5.0))
        lead = float(rng.uniform(7.0, 11.0))
        tail = float(rng.uniform(7.0, 11.0))

        def excerpt(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            shown = c if c is not None else h
            assert shown is not None
            return np.asarray(_fit(shown, (W, H)))

        return Plan(start(elen), elen, 1.0, excerpt, lead=lead, tail=tail)
    if transform == "mirror_speed":
        speed = 1.25 if variant % 2 == 0 else 0.8
        plen = min(length, (clip_duration - 0.2) / speed)
        return Plan(
            start(plen * speed),
            plen,
            speed,
            lambda c, h, i: np.asarray(_fit(c, (W, H)))[:, ::-1],
        )
    if transform == "compress":
        return Plan(
            start(length), length, 1.0, lambda c, h, i: np.asarray(_fit(c, (320, 180))), crf=42
        )
    if transform == "overlay":
        words = ["NO WAY 😂", "wait for it...", "THIS SONG", "best part", "#throwback"][variant % 5]
        words = words.encode("ascii", "ignore").decode().strip() or "LOL"
        bar_h = int(rng.uniform(0.16, 0.24) * H)
        logo = int(rng.uniform(0.12, 0.18) * H)
        big, small = _font(int(bar_h * 0.6)), _font(int(logo * 0.45))

        def overlay(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            assert c is not None
            img = _fit(c, (W, H)).convert("RGBA")
            layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
            d = ImageDraw.Draw(layer)
            d.rectangle((0, H - bar_h, W, H), fill=(0, 0, 0, 170))
            d.text(
                (W // 2, H - bar_h // 2), words, font=big, fill=(255, 255, 255, 255), anchor="mm"
            )
            d.ellipse((10, 10, 10 + logo, 10 + logo), fill=(230, 40, 60, 220))
            d.text((10 + logo // 2, 10 + logo // 2), "TV", font=small, fill="white", anchor="mm")
            d.text((W - 12, 14), "@reshare", font=small, fill=(255, 255, 255, 200), anchor="ra")
            return np.asarray(Image.alpha_composite(img, layer).convert("RGB"))

        return Plan(start(length), length, 1.0, overlay)
    if transform == "borders":
        frac = float(rng.uniform(0.6, 0.8))
        cw, ch = _even(W * frac), _even(H * frac)
        if variant % 2:  # a 4:3 window: bars on the sides too
            cw = _even(ch * 4 / 3)
        x, y = (W - cw) // 2, (H - ch) // 2

        def borders(c: Image.Image | None, h: Image.Image | None, i: int) -> NDArray[np.uint8]:
            assert c is not None
            canvas = Image.new("RGB", (W, H), (0, 0, 0))
            canvas.paste(_fit(c, (cw, ch)), (x, y))
            return np.asarray(canvas)

        return Plan(
            start(length), length, 1.0, borders, box=(x / W, y / H, (x + cw) / W, (y + ch) / H)
        )
    raise ValueError(f"unknown transform {transform!r}")


def _perspective_coeffs(quad: NDArray[np.float64], size: tuple[int, int]) -> list[float]:
    """Pillow's PERSPECTIVE coefficients mapping output quad corners to the source corners."""
    w, h = size
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(quad.tolist(), src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows), np.array(rhs))]


#: Every transformation, in report order; the last three are the easy guards.
TRANSFORMS: tuple[str, ...] = (
    "pip",
    "phone_screen",
    "vertical",
    "excerpt",
    "mirror_speed",
    "compress",
    "overlay",
    "borders",
    "reencode",
    "crop",
    "flip",
)


def make_query(
    out_dir: Path,
    transform: str,
    key: str,
    clip: Path,
    hosts: list[Path],
    variant: int,
) -> Query:
    """Generate (or reuse) one query of ``transform`` made from ``clip`` (library ``key``)."""
    import json

    digest = hashlib.sha256(f"{transform}/{key}/{variant}".encode()).digest()
    seed = int.from_bytes(digest[:8], "little")
    rng = np.random.default_rng(seed)
    reader = FrameReader(clip)
    plan = _plan(transform, reader.duration, rng, variant)
    path = out_dir / f"{transform}-{key}-{variant}.mp4"
    truth = Truth(
        key=key,
        query_start=plan.lead,
        query_end=plan.lead + plan.length,
        music_start=plan.music_start,
        speed=plan.speed,
        box=None if plan.box is None else _rounded(plan.box),
    )
    meta = out_dir / f"{path.stem}.json"
    record = json.loads(json.dumps({**truth.as_dict(), "fps": FPS}))  # as stored
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == record:
        reader.close()
        return Query(path, transform, truth)
    n_lead, n_clip, n_tail = (round(s * FPS) for s in (plan.lead, plan.length, plan.tail))
    needs_host = transform in ("pip", "excerpt")
    host_start = float(rng.uniform(0, 20))
    host = (
        HostReel(hosts, CANVAS).frames(host_start, n_lead + n_clip + n_tail, FPS)
        if needs_host
        else None
    )

    def frames() -> Iterator[NDArray[np.uint8]]:
        for i in range(n_lead + n_clip + n_tail):
            h = next(host) if host is not None else None
            c = None
            if n_lead <= i < n_lead + n_clip:
                c = reader.at(plan.music_start + plan.speed * (i - n_lead) / FPS)
            yield plan.draw(c, h, i)

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        _write(path, frames(), crf=plan.crf)
    finally:
        reader.close()
    meta.write_text(json.dumps(record))
    return Query(path, transform, truth)


def _rounded(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (round(float(v), 4) for v in box)
    return (x0, y0, x1, y1)
