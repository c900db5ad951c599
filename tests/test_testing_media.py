"""avajams.testing's generated media: every frame reads back as (tag, index), exactly."""

from __future__ import annotations

import itertools
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import imageio_ffmpeg
import numpy as np
import numpy.typing as npt
import pytest

from avajams._testing.media import MAX_TAG, make_audio_only, render_frame
from avajams.errors import ConfigError
from avajams.testing import make_clip, read_frame_code


def _decode(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _time(frame: av.VideoFrame) -> Fraction:
    """The frame's presentation time in seconds (every frame we write has one)."""
    assert frame.pts is not None
    assert frame.time_base is not None
    return frame.pts * frame.time_base


def _rgb(frame: av.VideoFrame, **kwargs: Any) -> npt.NDArray[np.uint8]:
    """``frame.to_ndarray`` of an rgb24 frame, typed as the uint8 array it is."""
    return cast(npt.NDArray[np.uint8], frame.to_ndarray(**kwargs))


def test_round_trip_every_frame(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=2.0, fps=24, tag=5)
    frames = _decode(path)
    assert len(frames) == 48
    assert [_time(f) for f in frames] == [Fraction(i, 24) for i in range(48)]
    kinds = {av.video.frame.PictureType(f.pict_type).name for f in frames}
    assert kinds >= {"I", "P", "B"}  # B-frames on by default
    for i, frame in enumerate(frames):
        assert read_frame_code(_rgb(frame, format="rgb24")) == (5, i)


@pytest.mark.parametrize("tag", range(MAX_TAG + 1))
def test_every_tag_renders_and_reads(tag: int) -> None:
    for index in (0, 1, 77, 4095, 65535):
        assert read_frame_code(render_frame(tag, index, 64, 48)) == (tag, index)


@pytest.mark.parametrize(
    ("width", "height", "interpolation"),
    [
        (32, 32, "BILINEAR"),
        (32, 32, "AREA"),
        (299, 299, "BICUBIC"),
        (40, 32, "POINT"),
        (32, 60, "FAST_BILINEAR"),
    ],
)
def test_survives_resize_and_stretch(
    tmp_path: Path, width: int, height: int, interpolation: str
) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=0.5, fps=24, size=(320, 180), tag=15)
    for i, frame in enumerate(_decode(path)):
        small = frame.reformat(width, height, format="rgb24", interpolation=interpolation)
        assert read_frame_code(_rgb(small)) == (15, i)


def test_survives_centre_crop_and_reads_a_region(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=0.25, fps=24, size=(160, 90), tag=2)
    for i, frame in enumerate(_decode(path)):
        picture = _rgb(frame, format="rgb24")
        square = np.ascontiguousarray(picture[:, 35:125])  # centre 90 x 90
        assert read_frame_code(square) == (2, i)
        canvas = np.zeros((160, 160, 3), dtype=np.uint8)  # letterboxed in black bars
        canvas[35:125] = picture
        assert read_frame_code(canvas, region=(0, 35, 160, 90)) == (2, i)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_display_side_data(tmp_path: Path, rotation: int) -> None:
    path = make_clip(tmp_path / "r.mp4", duration=0.25, size=(96, 64), tag=3, rotation=rotation)
    for i, frame in enumerate(_decode(path)):
        stored = _rgb(frame, format="rgb24")
        assert stored.shape[:2] == ((96, 64) if rotation in (90, 270) else (64, 96))
        with pytest.raises(ValueError, match="frame code"):
            read_frame_code(stored)  # not upright until the display matrix is applied
        # frame.rotation is counter-clockwise degrees; ours is the clockwise turn to display.
        assert (-frame.rotation) % 360 == rotation
        upright = np.rot90(stored, k=frame.rotation // 90)
        assert upright.shape[:2] == (64, 96)
        assert read_frame_code(upright) == (3, i)


def test_ffmpeg_autorotate_agrees(tmp_path: Path) -> None:
    """An independent player (the ffmpeg CLI, which autorotates) shows the picture upright."""
    path = make_clip(tmp_path / "r.mp4", duration=0.25, size=(96, 64), tag=4, rotation=90)
    raw = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert read_frame_code(np.frombuffer(raw, np.uint8).reshape(64, 96, 3)) == (4, 0)


def test_vfr_start_time_and_ntsc_rate(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "v.mp4", duration=1.0, fps=29.97, vfr=True, start_time=0.5)
    frames = _decode(path)
    assert len(frames) == 30
    times = [_time(f) for f in frames]
    assert times[0] == Fraction(1, 2)
    steps = {b - a for a, b in itertools.pairwise(times)}
    assert len(steps) > 5  # irregular
    for i, frame in enumerate(frames):
        assert read_frame_code(_rgb(frame, format="rgb24")) == (0, i)
    cfr = make_clip(tmp_path / "c.mp4", duration=0.5, fps=29.97)
    with av.open(str(cfr)) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)


def test_vfr_is_seeded(tmp_path: Path) -> None:
    def times(seed: int) -> list[int | None]:
        path = make_clip(tmp_path / f"{seed}.mp4", duration=0.5, vfr=True, seed=seed)
        return [f.pts for f in _decode(path)]

    assert times(1) == times(1)
    assert times(1) != times(2)


def test_audio_tone(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0, audio_hz=440.0, audio_sample_rate=22050)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.sample_rate == 22050
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(stream)])
    assert abs(len(samples) / 22050 - 1.0) < 0.1
    spectrum = np.abs(np.fft.rfft(samples[4096 : 4096 + 8192]))
    assert abs(np.argmax(spectrum) * 22050 / 8192 - 440.0) < 5.0


def test_audio_only(tmp_path: Path) -> None:
    path = make_audio_only(tmp_path / "a.mp4", duration=0.5)
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["audio"]


def test_odd_size_needs_yuv444p(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="yuv444p"):
        make_clip(tmp_path / "o.mp4", size=(33, 45))
    path = make_clip(tmp_path / "o.mp4", duration=0.25, size=(33, 45), pix_fmt="yuv444p", tag=1)
    frames = _decode(path)
    assert (frames[0].width, frames[0].height) == (33, 45)
    assert [read_frame_code(_rgb(f, format="rgb24")) for f in frames] == [
        (1, i) for i in range(len(frames))
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tag": 16},
        {"tag": -1},
        {"rotation": 45},
        {"duration": 0},
        {"fps": 0},
        {"size": (8, 8)},
        {"start_time": -1.0},
        {"sample_aspect_ratio": Fraction(7, 5)},
        {"sample_aspect_ratio": Fraction(0)},
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        make_clip(tmp_path / "x.mp4", **kwargs)  # type: ignore[arg-type]


def test_reader_rejects_non_codes() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="frame code"):
        read_frame_code(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="frame code"):
        read_frame_code(np.full((64, 64, 3), 128, dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        read_frame_code(np.zeros((64, 64), dtype=np.uint8))
    mirrored = render_frame(1, 10, 64, 64)[:, ::-1]
    with pytest.raises(ValueError, match="frame code"):
        read_frame_code(np.ascontiguousarray(mirrored))
