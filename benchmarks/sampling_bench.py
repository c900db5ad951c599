"""Sampling at 1 fps: avajams' FrameSampler vs the two ways it is usually done.

- ``avajams``: :class:`avajams.FrameSampler` (one forward decode, swscale to 299x299);
- ``decode every frame``: PyAV decoding every frame and converting each to full-size RGB;
- ``ffmpeg seek per second``: the original project's method, one
  ``ffmpeg -accurate_seek -ss T -i f -frames:v 1 out.jpg`` process per second, each JPEG then
  read back at 299x299 (so every case ends with the same product: 299x299 RGB arrays).

Cases run interleaved; each row keeps its fastest run. ``x_realtime`` is video seconds per
wall-clock second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _baselines, _media
from benchmarks._common import best, interleaved, log, ratio, round_sig, target

SIZE = 299
FPS = 1.0


def _avajams_case(path: Path, threads: int) -> tuple[Any, dict[str, Any]]:
    from avajams import FrameSampler

    sampler = FrameSampler(fps=FPS, size=SIZE, threads=threads)
    box: dict[str, Any] = {}

    def case() -> None:
        box["frames"] = sampler.sample(path)

    return case, box


def run(quick: bool) -> dict[str, Any]:
    path = _media.library_videos(quick, count=1)[0]
    duration = _baselines.video_duration(path)
    jpeg_dir = _media.scratch_dir("seek-jpegs-")
    times = _baselines.sample_times(duration, FPS)
    products: dict[str, Any] = {}

    def seek_case() -> None:
        jpegs = _baselines.seek_jpegs(path, times, jpeg_dir)
        products["seek"] = np.stack([_baselines.load_image(j, SIZE) for j in jpegs])

    def naive_case() -> None:
        products["naive"] = _baselines.naive_sample(path, FPS, SIZE)

    avajams_auto, auto_box = _avajams_case(path, threads=0)
    avajams_one, one_box = _avajams_case(path, threads=1)
    cases = {
        "avajams FrameSampler": avajams_auto,
        "avajams FrameSampler threads=1": avajams_one,
        "decode every frame to RGB": naive_case,
        "ffmpeg seek per second": seek_case,
    }
    repeats = 1 if quick else 2
    log(f"sampling {path.name} ({duration:.0f} s) x{repeats}")
    timings = interleaved(cases, repeats)

    counts = {
        "avajams FrameSampler": len(auto_box["frames"]),
        "avajams FrameSampler threads=1": len(one_box["frames"]),
        "decode every frame to RGB": len(products["naive"][0]),
        "ffmpeg seek per second": len(products["seek"]),
    }
    fastest = {name: best(ts) for name, ts in timings.items()}
    ours = fastest["avajams FrameSampler"].wall
    rows = [
        {
            "case": name,
            "seconds": round_sig(t.wall),
            "cpu_s": round_sig(t.cpu),
            "cores_busy": round_sig(t.cpu_utilisation, 3),
            "frames": counts[name],
            "x_realtime": round_sig(ratio(duration, t.wall)),
            "avajams_speedup": round_sig(ratio(t.wall, ours)),
        }
        for name, t in fastest.items()
    ]
    vs_seek = ratio(fastest["ffmpeg seek per second"].wall, ours)
    vs_naive = ratio(fastest["decode every frame to RGB"].wall, ours)
    # the same seconds must have been sampled: compare with the seek baseline's pictures
    ours_images = auto_box["frames"].images.astype(np.float32)
    theirs = products["seek"].astype(np.float32)
    n = min(len(ours_images), len(theirs))
    mean_abs_diff = float(np.abs(ours_images[:n] - theirs[:n]).mean()) if n else float("nan")
    return {
        "description": "1 fps sampling to 299x299 RGB of one 720p30 H.264 video",
        "params": {
            "video": path.name,
            "duration_s": round_sig(duration),
            "fps": FPS,
            "size": SIZE,
            "repeats": repeats,
        },
        "rows": rows,
        "ratios": {
            "avajams_vs_seek_per_second": round_sig(vs_seek),
            "avajams_vs_decode_every_frame": round_sig(vs_naive),
            "mean_abs_pixel_diff_vs_seek": round_sig(mean_abs_diff),
        },
        "targets": [target("sampling speedup vs ffmpeg seek per second", vs_seek, ">= 5")],
    }
