"""Generated "music videos" made from real photographs.

The photographs are the ones scikit-image ships in its package directory (``skimage/data``); they
are read straight from the PNG/JPEG files with Pillow, so ``skimage.data`` (and its optional
download machinery) is never imported. Each video cuts between its photographs; every shot pans
and zooms across its photo (a "Ken Burns" move) and the soundtrack is a seeded chord progression
with a melody, so every generated video looks and sounds different.

Frames are made by one affine crop + resize per frame in Pillow (C code, bilinear), so 720p
minutes-long media is cheap to generate (the encoder is the limit).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = [
    "PHOTOS",
    "load_photo",
    "make_excerpt",
    "make_photo_video",
    "music_track",
]

#: Photographs bundled with scikit-image (name -> file in ``skimage/data``); colour ones first.
PHOTOS: dict[str, str] = {
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "astronaut": "astronaut.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "hubble": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
    "ihc": "ihc.png",
    "camera": "camera.png",
    "coins": "coins.png",
    "moon": "moon.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "clock": "clock_motion.png",
    "cell": "cell.png",
}

_SAMPLE_RATE = 44_100


def _skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "generated photo videos need scikit-image's bundled photographs; "
            "install it with: pip install 'avajams[demo]'"
        )
    return Path(spec.origin).parent / "data"


@lru_cache(maxsize=32)
def _load_photo_cached(name: str) -> NDArray[np.uint8]:
    try:
        filename = PHOTOS[name]
    except KeyError:
        raise ValueError(f"unknown photo {name!r}; choose one of: {', '.join(PHOTOS)}") from None
    with Image.open(_skimage_data_dir() / filename) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    array.flags.writeable = False
    return array


def load_photo(name: str) -> NDArray[np.uint8]:
    """One of scikit-image's bundled photographs (see :data:`PHOTOS`) as RGB uint8 (H, W, 3)."""
    return _load_photo_cached(name)


def _as_image(photo: str | NDArray[np.uint8]) -> Image.Image:
    array = load_photo(photo) if isinstance(photo, str) else np.asarray(photo, dtype=np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"a photo must be (H, W, 3) RGB uint8, got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


def _shot_boxes(
    photo_size: tuple[int, int], aspect: float, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Start and end crop boxes (x0, y0, x1, y1) of one pan/zoom move over a photo."""
    pw, ph = photo_size
    # the largest box of the output's aspect ratio that fits the photo
    full_w = min(pw, ph * aspect)
    full_h = full_w / aspect
    boxes = []
    for _ in range(2):
        scale = rng.uniform(0.6, 1.0)
        w, h = full_w * scale, full_h * scale
        x0 = rng.uniform(0.0, pw - w)
        y0 = rng.uniform(0.0, ph - h)
        boxes.append(np.array([x0, y0, x0 + w, y0 + h]))
    return boxes[0], boxes[1]


def _smoothstep(x: float) -> float:
    return x * x * (3.0 - 2.0 * x)


def music_track(
    duration: float, *, seed: int = 0, sample_rate: int = _SAMPLE_RATE
) -> NDArray[np.float32]:
    """A seeded, music-like stereo track (2, samples) in [-1, 1]: chords, bass and a melody.

    The key, tempo, chord progression and melody come from ``seed``; each note has an
    attack/decay envelope, so the track has onsets like real music.
    """
    rng = np.random.default_rng(seed)
    n = round(duration * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    tempo = float(rng.uniform(84.0, 132.0))
    beat = 60.0 / tempo
    root = 45 + int(rng.integers(0, 12))  # MIDI note of the key's root (A2..G#3)
    major = bool(rng.integers(0, 2))
    scale = [0, 2, 4, 5, 7, 9, 11] if major else [0, 2, 3, 5, 7, 8, 10]
    degrees = [0, *rng.choice([1, 2, 3, 4, 5], size=3, replace=True).tolist()]

    def hz(midi: float) -> float:
        return float(440.0 * 2.0 ** ((midi - 69.0) / 12.0))

    def add_note(start: float, length: float, freq: float, gain: float) -> None:
        i0 = round(start * sample_rate)
        i1 = min(n, i0 + round(length * sample_rate))
        if i0 >= n or i1 <= i0:
            return
        t = np.arange(i1 - i0) / sample_rate
        env = np.minimum(t / 0.01, 1.0) * np.exp(-3.0 * t / max(length, 1e-3))
        tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)
        out[i0:i1] += gain * env * tone

    bar = 4 * beat
    bars = int(np.ceil(duration / bar))
    for b in range(bars):
        degree = degrees[b % len(degrees)]
        chord = [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        start = b * bar
        add_note(start, bar, hz(root - 12 + chord[0]), 0.25)  # bass
        for interval in chord:
            add_note(start, bar, hz(root + 12 + interval), 0.12)
        for s in range(8):  # eighth-note melody over the chord
            if rng.random() < 0.25:
                continue
            step = int(rng.integers(0, 7))
            add_note(start + s * beat / 2, beat / 2, hz(root + 24 + scale[step]), 0.1)
    peak = float(np.max(np.abs(out))) if n else 0.0
    if peak > 0:
        out *= 0.8 / peak
    left = out
    right = np.roll(out, round(0.004 * sample_rate))  # a little stereo width
    return np.stack([left, right]).astype(np.float32)


def _write(
    path: Path,
    render: Callable[[int], Image.Image],
    *,
    fps: float,
    size: tuple[int, int],
    count: int,
    audio: NDArray[np.float32] | None,
    crf: int,
    preset: str = "veryfast",
) -> None:
    import av

    rate = Fraction(fps).limit_denominator(1001)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(os.fspath(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": preset}
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=_SAMPLE_RATE)
            audio_stream.layout = "stereo"
        for i in range(count):
            image = render(i)
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio_stream is not None and audio is not None:
            chunk = 1024
            for start in range(0, audio.shape[1], chunk):
                block = np.ascontiguousarray(audio[:, start : start + chunk])
                aframe = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
                aframe.sample_rate = _SAMPLE_RATE
                aframe.pts = start
                aframe.time_base = Fraction(1, _SAMPLE_RATE)
                container.mux(audio_stream.encode(aframe))
            container.mux(audio_stream.encode(None))


def make_photo_video(
    path: str | os.PathLike[str],
    *,
    photos: Sequence[str | NDArray[np.uint8]] = ("chelsea", "coffee"),
    duration: float = 8.0,
    fps: float = 24.0,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    audio: Literal["music"] | None = "music",
    shot_seconds: float | None = None,
    crf: int = 23,
    preset: str = "veryfast",
) -> Path:
    """Write an H.264 (+ AAC) MP4 that cuts between ``photos``, panning and zooming over each.

    ``photos`` are names from :data:`PHOTOS` or RGB arrays; shots last ``shot_seconds``
    (default: the duration split evenly, one shot per photo) and cycle through the photos.
    ``audio="music"`` adds a seeded stereo :func:`music_track`. ``crf`` and ``preset`` are
    libx264's (``"ultrafast"`` for big benchmark media). Missing folders are made. Same
    arguments, same pixels (at 320x240 and up: on tiny frames libx264 reads uninitialised
    memory, so their encodes can differ by a few levels from run to run).
    """
    if not photos:
        raise ValueError("make_photo_video needs at least one photo")
    if duration <= 0 or fps <= 0:
        raise ValueError(f"duration and fps must be positive, got {duration} and {fps}")
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"size must have even dimensions for yuv420p, got {size}")
    out = Path(path)
    images = [_as_image(p) for p in photos]
    rng = np.random.default_rng(seed)
    count = max(1, round(duration * fps))
    shot_frames = max(1, round((shot_seconds or duration / len(images)) * fps))
    n_shots = -(-count // shot_frames)
    aspect = width / height
    moves = [_shot_boxes(images[s % len(images)].size, aspect, rng) for s in range(n_shots)]

    def render(i: int) -> Image.Image:
        shot, offset = divmod(i, shot_frames)
        length = min(shot_frames, count - shot * shot_frames)
        u = _smoothstep(offset / max(1, length - 1))
        start, end = moves[shot]
        box = (1.0 - u) * start + u * end
        image = images[shot % len(images)]
        return image.resize(
            (width, height),
            Image.Resampling.BILINEAR,
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )

    track = music_track(count / fps, seed=seed) if audio == "music" else None
    _write(out, render, fps=fps, size=size, count=count, audio=track, crf=crf, preset=preset)
    return out


def make_excerpt(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    start: float = 0.0,
    duration: float | None = None,
    zoom: float = 1.25,
    center: tuple[float, float] = (0.5, 0.5),
    size: tuple[int, int] = (256, 192),
    fps: float | None = None,
    audio: Literal["music"] | None = None,
    seed: int = 1,
    crf: int = 28,
) -> Path:
    """Re-shoot part of a video the way a user clip might: cropped, zoomed, re-encoded.

    Takes ``duration`` seconds of ``source`` from ``start``, crops a ``1/zoom`` window around
    ``center`` (fractions of the width and height), scales it to ``size`` and re-encodes at
    ``fps`` (default: the source's) with its own audio (``"music"``: a new seeded track) or none.
    """
    import av

    src = os.fspath(source)
    with av.open(src) as container:
        stream = container.streams.video[0]
        src_fps = float(stream.average_rate or 24)
        decoded: list[tuple[float, Image.Image]] = []
        end = start + duration if duration is not None else float("inf")
        for frame in container.decode(stream):
            if frame.time is None or frame.time < start - 1e-6:
                continue
            if frame.time >= end - 1e-6:
                break
            decoded.append((frame.time - start, frame.to_image()))
    if not decoded:
        raise ValueError(f"{src} has no frames between {start} s and {end} s")
    out_fps = fps or src_fps
    total = duration if duration is not None else decoded[-1][0] + 1.0 / src_fps
    count = max(1, round(total * out_fps))
    times = np.array([t for t, _ in decoded])
    sw, sh = decoded[0][1].size
    w, h = sw / zoom, sh / zoom
    x0 = min(max(center[0] * sw - w / 2, 0.0), sw - w)
    y0 = min(max(center[1] * sh - h / 2, 0.0), sh - h)
    box = (x0, y0, x0 + w, y0 + h)

    def render(i: int) -> Image.Image:
        j = int(np.searchsorted(times, i / out_fps + 1e-9, side="right")) - 1
        image = decoded[max(j, 0)][1]
        return image.resize(size, Image.Resampling.BILINEAR, box=box)

    track = music_track(count / out_fps, seed=seed) if audio == "music" else None
    out = Path(path)
    _write(out, render, fps=out_fps, size=size, count=count, audio=track, crf=crf)
    return out
