"""The baselines avajams is compared with, written the way the original project worked.

- :func:`seek_jpegs`: the original's frame extraction, one ``ffmpeg -accurate_seek -ss T -i f
  -frames:v 1 out.jpg`` process per sampled second;
- :func:`naive_sample`: decode every frame and convert every one to full-size RGB, keeping one
  per second (what a straightforward PyAV loop does);
- :func:`original_index`: the original indexing pipeline — JPEGs on disk via seeks, then each
  image loaded and embedded one at a time.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg ships (the one avajams' renderer uses too)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def sample_times(duration: float, fps: float = 1.0, start: float = 0.0) -> list[float]:
    """``start, start + 1/fps, ...`` strictly before ``start + duration``."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count = max(0, math.ceil(duration * fps - 1e-9))
    return [start + i / fps for i in range(count)]


def seek_command(ffmpeg: str, path: str | os.PathLike[str], t: float, out: Path) -> list[str]:
    """The original's per-second extraction command (plus quiet logging and overwrite)."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-accurate_seek",
        "-ss",
        f"{t:.3f}",
        "-i",
        os.fspath(path),
        "-frames:v",
        "1",
        os.fspath(out),
    ]


def seek_jpegs(
    path: str | os.PathLike[str],
    times: Iterable[float],
    out_dir: str | os.PathLike[str],
    *,
    ffmpeg: str | None = None,
) -> list[Path]:
    """One ffmpeg process per time, each writing one JPEG; returns the JPEG paths in order."""
    exe = ffmpeg or ffmpeg_exe()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    paths = []
    for i, t in enumerate(times):
        out = out_dir / f"{stem}_{i:06d}.jpg"
        subprocess.run(seek_command(exe, path, t, out), check=True, capture_output=True)
        if not out.exists():
            raise RuntimeError(f"ffmpeg wrote no frame for {path} at {t:.3f} s")
        paths.append(out)
    return paths


def load_image(path: str | os.PathLike[str], size: int = 299) -> NDArray[np.uint8]:
    """A JPEG as (size, size, 3) RGB uint8, stretched like the original's ``load_img``."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def naive_sample(
    path: str | os.PathLike[str], fps: float = 1.0, size: int = 299
) -> tuple[NDArray[np.float64], NDArray[np.uint8]]:
    """Decode every frame, convert every frame to full-size RGB, keep one per ``1/fps``.

    Returns ``(times, images)`` like a sampler: the first frame at or after each sample time.
    """
    import av
    from PIL import Image

    times: list[float] = []
    images: list[NDArray[np.uint8]] = []
    next_t = None
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")  # every frame, full size: the naive cost
            t = float(frame.time) if frame.time is not None else 0.0
            if next_t is None:
                next_t = t
            if t + 1e-6 >= next_t:
                small = Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR)
                images.append(np.asarray(small, dtype=np.uint8))
                times.append(t)
                next_t += 1.0 / fps
    if not images:
        return np.zeros(0), np.zeros((0, size, size, 3), np.uint8)
    return np.asarray(times, dtype=np.float64), np.stack(images)


def video_duration(path: str | os.PathLike[str]) -> float:
    """Seconds of picture (container duration when the stream has none)."""
    import av

    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return float(container.duration) / 1_000_000
    raise ValueError(f"{path}: no duration")


def embed_one_at_a_time(embedder: Any, images: Iterable[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """Each image through the model on its own (batch of one), as the original did."""
    vectors = [np.asarray(embedder.embed(image[None]), dtype=np.float32)[0] for image in images]
    out: NDArray[np.float32] = np.stack(vectors)
    return out


def mean_signature(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Unit-length mean of unit rows (the original's per-video signature)."""
    mean = vectors.astype(np.float64).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm == 0:
        raise ValueError("zero mean vector")
    out: NDArray[np.float32] = (mean / norm).astype(np.float32)
    return out


def original_index(
    paths: Sequence[str | os.PathLike[str]],
    embedder: Any,
    work_dir: str | os.PathLike[str],
    *,
    fps: float = 1.0,
) -> dict[str, NDArray[np.float32]]:
    """The original pipeline: per video, JPEGs via seeks, then embed each image alone.

    Returns ``{video path: signature}``; the JPEGs stay in ``work_dir`` (the original kept them).
    """
    size = 299
    if getattr(embedder, "input_size", None):
        size = int(embedder.input_size[0])
    exe = ffmpeg_exe()
    signatures: dict[str, NDArray[np.float32]] = {}
    for path in paths:
        times = sample_times(video_duration(path), fps)
        jpegs = seek_jpegs(path, times, Path(work_dir) / Path(path).stem, ffmpeg=exe)
        vectors = embed_one_at_a_time(embedder, (load_image(j, size) for j in jpegs))
        signatures[os.fspath(path)] = mean_signature(vectors)
    return signatures
