"""probe() facts and the typed errors every bad input gets (probe and FrameSampler alike)."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import avajams
from avajams._testing.media import make_audio_only
from avajams.errors import VideoDecodeError, VideoError, VideoNotFoundError
from avajams.media import VideoDecodeWarning, VideoInfo, probe
from avajams.sampling import FrameSampler
from avajams.testing import make_clip, read_frame_code


def test_facade_exports() -> None:
    assert avajams.probe is probe
    assert avajams.VideoInfo is VideoInfo


def test_probe_plain_clip(tmp_path: Path) -> None:
    info = probe(make_clip(tmp_path / "a.mp4", duration=2.0, fps=24, size=(96, 64)))
    assert info == VideoInfo(
        path=str(tmp_path / "a.mp4"),
        duration=2.0,
        start_time=0.0,
        width=96,
        height=64,
        rotation=0,
        fps=24.0,
        frame_count=48,
        has_audio=False,
        audio_sample_rate=None,
    )


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_probe_rotation_gives_display_size(tmp_path: Path, rotation: int) -> None:
    path = make_clip(tmp_path / "r.mp4", duration=0.5, size=(96, 64), rotation=rotation)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (96, 64, rotation)


def test_probe_non_square_pixels(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=0.5, size=(96, 64), sample_aspect_ratio=2)
    info = probe(path)
    assert (info.width, info.height) == (96, 64)


def test_probe_start_time_ntsc_and_audio(tmp_path: Path) -> None:
    path = make_clip(
        tmp_path / "a.mp4",
        duration=1.0,
        fps=29.97,
        start_time=0.5,
        audio_hz=440.0,
        audio_sample_rate=22050,
    )
    info = probe(path)
    assert info.start_time == pytest.approx(0.5, abs=1e-4)
    assert info.duration == pytest.approx(30 * 1001 / 30000)
    assert info.fps == pytest.approx(30000 / 1001)
    assert info.frame_count == 30
    assert info.has_audio
    assert info.audio_sample_rate == 22050


def test_probe_vfr_duration_is_exact(tmp_path: Path) -> None:
    """Without B-frames an MP4 stores every VFR frame's duration; the picture ends exactly."""
    import av

    path = make_clip(tmp_path / "v.mp4", duration=1.0, fps=20, vfr=True, seed=3, b_frames=0)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    end = frames[-1].pts + frames[-1].duration
    expected = float((end - frames[0].pts) * frames[0].time_base)
    assert probe(path).duration == pytest.approx(expected, abs=1e-9)
    assert frames[-1].duration != frames[-2].duration  # really VFR


@pytest.mark.parametrize("kwargs", [{"vfr": True, "b_frames": 3}, {"start_time": 0.75}, {}])
def test_probe_duration_agrees_with_sampler(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    """Samples are taken strictly before probe().duration, whatever the stream's layout."""
    path = make_clip(tmp_path / "v.mp4", duration=1.3, fps=20, seed=5, **kwargs)
    duration = probe(path).duration
    fps = 40  # finer than the frames, so the tail sample count is sensitive to the end
    frames = FrameSampler(fps=fps, size=32).sample(path)
    assert len(frames) == math.ceil(duration * fps - 1e-9)


# -- bad input -----------------------------------------------------------------------------


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _truncated_moov_last(tmp_path: Path) -> Path:
    data = make_clip(tmp_path / "full.mp4", duration=2.0).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def _no_decodable_frames(tmp_path: Path) -> Path:
    """A well-formed MP4 whose media data is all zeros: the index is fine, the frames are not."""
    data = bytearray(make_clip(tmp_path / "full.mp4", duration=1.0, faststart=True).read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + 4 :] = bytes(len(data) - mdat - 4)
    path = tmp_path / "zeros.mp4"
    path.write_bytes(bytes(data))
    return path


def _jpeg(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "photo.mp4"
    Image.fromarray(np.full((48, 64, 3), 90, dtype=np.uint8)).save(path, format="JPEG")
    return path


def _random(tmp_path: Path) -> Path:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.touch()
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.mp4"
    os.mkfifo(path)  # opening it for reading would block forever
    return path


BAD_INPUTS: list[tuple[str, Callable[[Path], Path], type[VideoError], str]] = [
    ("missing", lambda d: d / "nope.mp4", VideoNotFoundError, "no such file"),
    ("directory", lambda d: d, VideoNotFoundError, "directory"),
    ("empty", _empty, VideoDecodeError, "empty"),
    ("random bytes", _random, VideoDecodeError, "could not be opened"),
    ("truncated, index lost", _truncated_moov_last, VideoDecodeError, "could not be opened"),
    ("audio only", lambda d: make_audio_only(d / "a.mp4"), VideoDecodeError, "no video stream"),
    ("jpeg renamed", _jpeg, VideoDecodeError, "still image"),
    ("no decodable frames", _no_decodable_frames, VideoDecodeError, "no decodable frames"),
    ("fifo", _fifo, VideoDecodeError, "not a regular file"),
]


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
@pytest.mark.parametrize("reader", ["probe", "sample", "iter_frames"])
def test_bad_input_gets_typed_error(
    tmp_path: Path,
    make: Callable[[Path], Path],
    error: type[VideoError],
    words: str,
    reader: str,
) -> None:
    path = make(tmp_path)
    before = _fd_count()
    readers: dict[str, Callable[[Path], object]] = {
        "probe": probe,
        "sample": FrameSampler(fps=2, size=32).sample,
        "iter_frames": lambda p: list(FrameSampler(fps=2, size=32).iter_frames(p)),
    }
    read = readers[reader]
    with pytest.raises(error, match=words) as info:
        read(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert _fd_count() == before, "a file handle leaked"


def test_errors_are_builtins_too(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(ValueError, match="empty"):
        probe(_empty(tmp_path))


def test_truncated_file_returns_frames_before_the_cut_with_warning(tmp_path: Path) -> None:
    data = make_clip(tmp_path / "full.mp4", duration=2.0, fps=24, tag=6, faststart=True)
    cut = tmp_path / "cut.mp4"
    raw = data.read_bytes()
    cut.write_bytes(raw[: len(raw) * 3 // 5])
    before = _fd_count()
    with pytest.warns(VideoDecodeWarning, match="truncated or damaged") as record:
        frames = FrameSampler(fps=4, size=32).sample(cut)
    assert str(cut) in str(record[0].message)
    assert record[0].filename == __file__  # points at the caller, not at avajams
    assert 1 <= len(frames) < 8
    codes = [read_frame_code(image) for image in frames.images]
    assert codes == [(6, 6 * k) for k in range(len(frames))]
    np.testing.assert_array_equal(frames.times, np.arange(len(frames)) / 4)
    assert _fd_count() == before


def test_truncated_file_strict_raises(tmp_path: Path) -> None:
    raw = make_clip(tmp_path / "full.mp4", duration=2.0, faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[: len(raw) * 3 // 5])
    before = _fd_count()
    with pytest.raises(VideoDecodeError, match=r"cut\.mp4"):
        FrameSampler(fps=4, size=32, strict=True).sample(cut)
    assert _fd_count() == before


def test_truncated_iter_frames_streams_until_the_cut(tmp_path: Path) -> None:
    """iter_frames yields frames from the intact start before it reaches the damage."""
    raw = make_clip(tmp_path / "full.mp4", duration=2.0, faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[: len(raw) * 3 // 5])
    frames = FrameSampler(fps=4, size=32, strict=True).iter_frames(cut)
    t, image = next(frames)
    assert t == 0.0
    assert read_frame_code(image) == (0, 0)
    with pytest.raises(VideoDecodeError):
        list(frames)


def test_no_warning_for_complete_files(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0, audio_hz=330.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(FrameSampler(fps=4, size=32).sample(path)) == 4


def test_abandoned_iterator_closes_file(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0)
    before = _fd_count()
    frames = FrameSampler(fps=4, size=32).iter_frames(path)
    next(frames)
    assert _fd_count() > before  # the file is open while streaming
    with contextlib.closing(frames):
        pass
    assert _fd_count() == before
