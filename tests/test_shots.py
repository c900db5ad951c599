"""Shot-change detection from frame differences while decoding (no extra dependency)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avajams.mashup.analysis import detect_shots
from avajams.testing import make_clip, make_photo_video


def test_cuts_between_photos_are_found_exactly_and_pans_are_not(tmp_path: Path) -> None:
    """Four photographs, 1.5 s each, each panning and zooming: three cuts, nothing else."""
    video = make_photo_video(
        tmp_path / "mv.mp4",
        photos=("chelsea", "coffee", "astronaut", "rocket"),
        duration=6.0,
        fps=24,
        size=(320, 180),
        shot_seconds=1.5,
    )
    shots = detect_shots(video)
    assert shots.times == pytest.approx((1.5, 3.0, 4.5), abs=1e-6)
    assert min(shots.scores) > 3
    assert shots.duration == pytest.approx(6.0)
    assert detect_shots(video, duration=3.5).times == pytest.approx((1.5, 3.0), abs=1e-6)


def test_frame_codes_changing_every_frame_are_not_cuts(tmp_path: Path) -> None:
    assert detect_shots(make_clip(tmp_path / "c.mp4", duration=3.0, fps=30)).times == ()


def _scene(shot: int, i: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth pattern panning one pixel a frame; each shot its own pattern and colour."""
    x = np.arange(size[0])[None, :] + i
    y = np.arange(size[1])[:, None]
    wave = np.sin(2 * np.pi * x / (60 + 25 * shot)) * np.cos(2 * np.pi * y / (40 + 15 * shot))
    tint = np.array([[60, 120, 200], [200, 90, 40]][shot % 2], dtype=np.float64)
    picture: np.ndarray = np.clip(tint + 50 * wave[..., None], 0, 255).astype(np.uint8)
    return picture


def test_a_cut_on_a_skipped_b_frame_is_refined_to_the_exact_frame(tmp_path: Path) -> None:
    """No keyframe at the cut (scene-cut detection off) and the cut's frame a non-reference B
    frame, which the fast pass does not decode: the stretch is decoded again in full."""
    path = tmp_path / "b.mp4"
    size, fps, cut = (160, 96), 24, 29
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"x264-params": "scenecut=0:keyint=250:bframes=3:b-adapt=0:b-pyramid=none"}
        for i in range(48):
            picture = _scene(0 if i < cut else 1, i, size)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        keys = [f.pts for f in container.decode(video=0) if f.key_frame]
    assert keys == [0]  # no keyframe at the cut
    shots = detect_shots(path)
    assert shots.refined == 1
    assert shots.times == pytest.approx((cut / fps,), abs=1e-6)
