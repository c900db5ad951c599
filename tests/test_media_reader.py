"""The shared frame reader and conform step in avajams.media (used by sampler and renderer)."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest

from avajams.errors import VideoDecodeError, VideoNotFoundError
from avajams.mashup import Mashup, MoviePyRenderer
from avajams.media import FrameReader, conform, placement, probe
from avajams.testing import make_clip, read_frame_code


def code(frame: object, size: tuple[int, int] = (64, 64)) -> int:
    return read_frame_code(conform(frame, size))[1]  # type: ignore[arg-type]


def test_frame_at_is_exact_in_ticks_and_rewinds(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0, fps=30, b_frames=2)
    with FrameReader(path) as reader:
        # 1/3 s is exactly the start of frame 10: a boundary belongs to the frame starting there
        assert code(reader.frame_at(Fraction(1, 3))) == 10
        assert code(reader.frame_at(Fraction(1, 3) + Fraction(1, 31))) == 10
        assert reader.rewinds == 0
        assert code(reader.frame_at(Fraction(29, 30))) == 29
        assert reader.frame_at(1.0) is None  # the end of the last frame
        assert reader.end_time == 1
        assert code(reader.current) == 29
        # a hair before a boundary is still the previous frame; backwards means decoding
        # again from the start
        assert code(reader.frame_at(Fraction(1, 3) - Fraction(1, 10**6))) == 9
        assert reader.rewinds == 1
        assert code(reader.frame_at(Fraction(9, 30))) == 9


def test_slack_absorbs_timestamps_rounded_to_the_time_base(tmp_path: Path) -> None:
    # 24 fps in a 1/90000 time base: frame k starts at 3750 k ticks, exactly; a float time a
    # hair before a boundary must still land on the new frame with half a tick of slack.
    path = make_clip(tmp_path / "a.mp4", duration=1.0, fps=24)
    t = 12 / 24 - 1e-7  # 0.009 ticks early
    with FrameReader(path) as exact, FrameReader(path, slack=Fraction(1, 2)) as lenient:
        assert code(exact.frame_at(t)) == 11
        assert code(lenient.frame_at(t)) == 12


def test_frames_iterates_every_frame_in_display_order(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0, fps=24, vfr=True, start_time=0.4, seed=2)
    with FrameReader(path) as reader:
        frames = list(reader.frames())
    assert [code(f) for _, f in frames] == list(range(24))
    times = [t for t, _ in frames]
    assert times[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(times))


def test_reader_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFoundError):
        FrameReader(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with FrameReader(junk) as reader, pytest.raises(VideoDecodeError, match=r"junk\.mp4"):
        reader.frame_at(0.0)


@pytest.mark.parametrize("fit", ["stretch", "crop", "letterbox"])
@pytest.mark.parametrize("rotation", [0, 90])
def test_conform_fits_and_turns_upright(tmp_path: Path, fit: str, rotation: int) -> None:
    path = make_clip(tmp_path / "r.mp4", duration=0.2, size=(96, 64), rotation=rotation, tag=5)
    with FrameReader(path) as reader:
        frame = reader.frame_at(0.0)
        assert frame is not None
        native = conform(frame)
        assert native.shape == (64, 96, 3)  # upright display size
        square = conform(frame, (64, 64), fit=fit)  # type: ignore[arg-type]
    assert square.shape == (64, 64, 3)
    region = None
    if fit == "letterbox":
        region = placement((96, 64), (64, 64), "letterbox")
        x, y, w, h = region
        assert (x, w) == (0, 64)
        assert h < 64
        assert square[: y - 1].max() == 0
        assert square[y + h + 1 :].max() == 0
    if fit != "crop":  # a centre crop of a 3:2 code keeps only part of it
        assert read_frame_code(square, region=region) == (5, 0)


def test_placement_crop_centres_the_overhang() -> None:
    assert placement((160, 90), (90, 90), "crop") == (-35, 0, 160, 90)
    assert placement((161, 90), (90, 90), "crop")[0] == -35  # the odd pixel goes right
    assert placement((160, 90), (160, 90), "letterbox") == (0, 0, 160, 90)


def test_renderer_pictures_are_the_plan_without_encoding(tmp_path: Path) -> None:
    user = make_clip(tmp_path / "u.mp4", tag=1, duration=1.0, fps=24, size=(64, 48))
    music = make_clip(tmp_path / "m.mp4", tag=2, duration=1.0, fps=30, size=(64, 48), audio_hz=440)
    renderer = MoviePyRenderer()
    plan = Mashup(0.5, renderer=renderer).plan(user, music)
    pictures = list(renderer.pictures(plan, probe(user), music))
    assert len(pictures) == plan.frames == 30
    for k, picture in enumerate(pictures):
        source, frame = plan.source_at(k)
        # the source frame covering frame / 30 s: 24 fps user frames repeat, 30 fps ones don't
        expected = (1, frame * 24 // 30) if source == "user" else (2, frame)
        assert read_frame_code(picture) == expected, k
