"""The cut planner: pure properties (Hypothesis) and the edge cases the issue names."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avajams.errors import ConfigError
from avajams.mashup import CutPlan, Segment, plan_cuts
from avajams.mashup.plan import StartWith, UserEnd, canvas_size, output_fps

durations = st.floats(min_value=0.05, max_value=120.0, allow_nan=False)
fpss = st.sampled_from([12.0, 23.98, 24.0, 25.0, 29.97, 30.0, 60.0])
segment_secs = st.floats(min_value=0.1, max_value=10.0)
user_ends = st.sampled_from(["loop", "hold", "music"])
starts = st.sampled_from(["user", "music"])


def check_invariants(plan: CutPlan, user_end: str) -> None:
    """Everything a renderer relies on."""
    # tiles the output exactly: no gaps, no overlaps
    position = 0
    for s in plan.segments:
        assert s.frames >= 1
        assert s.output_start == position
        position = s.output_end
    assert position == plan.frames
    # in sync / within source / user cursor monotonic modulo looping
    cursor = 0
    for s in plan.segments:
        if s.source == "music":
            assert s.source_start == s.output_start, s
            assert not s.hold
            assert s.output_end <= plan.music_frames
        else:
            assert s.source_start >= 0
            assert s.source_end <= plan.user_frames, s
            if s.hold:
                assert user_end == "hold"
                assert s.source_start == plan.user_frames - 1
                assert cursor == plan.user_frames  # held only after everything was shown
            else:
                looped = s.source_start == 0 and cursor == plan.user_frames
                assert s.source_start == cursor or looped, (s, cursor)
                cursor = s.source_start + s.frames
    # neighbours of the same source are not mergeable fragments
    for a, b in zip(plan.segments, plan.segments[1:], strict=False):
        if a.source == b.source and not a.hold and not b.hold:
            assert a.source_start + a.frames != b.source_start


@settings(max_examples=150, deadline=None)
@given(durations, durations, fpss, segment_secs, user_ends, starts)
def test_plan_invariants(
    user: float, music: float, fps: float, seg: float, user_end: UserEnd, start: StartWith
) -> None:
    if music * fps < 1 or seg * fps < 1:
        with pytest.raises(ConfigError):
            plan_cuts(user, music, fps, segment_seconds=seg, user_end=user_end, start_with=start)
        return
    plan = plan_cuts(user, music, fps, segment_seconds=seg, user_end=user_end, start_with=start)
    check_invariants(plan, user_end)
    assert plan.frames == math.floor(music * fps + 1e-6)
    assert plan.segments[0].source == start
    plan.validate()
    assert CutPlan.from_json(plan.to_json()) == plan


@settings(max_examples=100, deadline=None)
@given(durations, durations, fpss, segment_secs, user_ends)
def test_cuts_alternate_every_segment(
    user: float, music: float, fps: float, seg: float, user_end: UserEnd
) -> None:
    if music * fps < 1 or seg * fps < 1:
        return
    plan = plan_cuts(user, music, fps, segment_seconds=seg, user_end=user_end)
    expected = [round(i * seg * fps) for i in range(1, math.ceil(plan.frames / (seg * fps)) + 2)]
    expected = [c for c in expected if 0 < c < plan.frames]
    # each slot alternates user/music; every slot boundary is a cut unless the user's
    # video ran out under user_end="music" (then everything after is music)
    if user_end != "music" or user * fps >= plan.frames:
        assert list(plan.cuts) == expected
    else:
        ends = [s.output_end for s in plan.segments if s.source == "user"]
        assert set(plan.cuts) <= set(expected) | set(ends[-1:])
    for k, (source, _) in enumerate(map(plan.source_at, range(0, plan.frames, 7))):
        slot = sum(1 for c in expected if c <= k * 7)
        if slot % 2 == 1:
            assert source == "music"


@settings(max_examples=100, deadline=None)
@given(durations, durations, fpss, st.lists(st.floats(-5, 500, allow_nan=False), max_size=30))
def test_explicit_cut_times(user: float, music: float, fps: float, times: list[float]) -> None:
    if music * fps < 1:
        return
    plan = plan_cuts(user, music, fps, cut_times=times)
    check_invariants(plan, "loop")
    expected = sorted({round(t * fps) for t in times} & set(range(1, plan.frames)))
    assert list(plan.cuts) == expected


@settings(max_examples=100, deadline=None)
@given(durations, durations, fpss, user_ends)
def test_user_video_is_never_skipped(
    user: float, music: float, fps: float, user_end: UserEnd
) -> None:
    """The user's frames appear in order from 0, continuing across every segment."""
    if music * fps < 1:
        return
    plan = plan_cuts(user, music, fps, user_end=user_end)
    shown = [f for k in range(plan.frames) for src, f in [plan.source_at(k)] if src == "user"]
    u = plan.user_frames
    if user_end == "loop":
        assert shown == [i % u for i in range(len(shown))]
    elif user_end == "hold":
        assert shown == [min(i, u - 1) for i in range(len(shown))]
    else:
        assert shown == list(range(len(shown)))


def test_music_lip_sync_per_frame() -> None:
    plan = plan_cuts(5.0, 13.0, 24.0)
    for k in range(plan.frames):
        source, frame = plan.source_at(k)
        if source == "music":
            assert frame == k


def test_defaults_two_second_alternation() -> None:
    plan = plan_cuts(100.0, 10.0, 30.0)
    assert plan.frames == 300
    assert [(s.source, s.source_start, s.frames, s.output_start) for s in plan.segments] == [
        ("user", 0, 60, 0),
        ("music", 60, 60, 60),
        ("user", 60, 60, 120),
        ("music", 180, 60, 180),
        ("user", 120, 60, 240),
    ]


def test_user_longer_than_music_is_cut_off_by_the_music() -> None:
    plan = plan_cuts(60.0, 5.0, 10.0)
    assert plan.duration == 5.0
    assert plan.segments[-1].output_end == 50


def test_user_shorter_loops_by_default() -> None:
    plan = plan_cuts(1.5, 10.0, 10.0)
    user = [s for s in plan.segments if s.source == "user"]
    assert [(s.source_start, s.frames, s.output_start) for s in user] == [
        (0, 15, 0),
        (0, 5, 15),  # slot 0..20, looping at 15
        (5, 10, 40),
        (0, 10, 50),  # slot 40..60
        (10, 5, 80),
        (0, 15, 85),  # slot 80..100
    ]
    assert plan.cuts == (20, 40, 60, 80)  # the loop restart at 15 is not a cut


def test_user_shorter_hold_freezes_last_frame() -> None:
    plan = plan_cuts(1.5, 6.0, 10.0, user_end="hold")
    assert plan.segments[1] == Segment("user", 14, 5, 15, hold=True)
    assert plan.source_at(19) == ("user", 14)
    assert plan.source_at(40) == ("user", 14)


def test_user_shorter_music_takes_over() -> None:
    plan = plan_cuts(1.5, 6.0, 10.0, user_end="music")
    assert plan.segments == (Segment("user", 0, 15, 0), Segment("music", 15, 45, 15))
    assert plan.cuts == (15,)


def test_music_shorter_than_one_segment() -> None:
    plan = plan_cuts(10.0, 0.5, 24.0)
    assert plan.segments == (Segment("user", 0, 12, 0),)
    plan = plan_cuts(10.0, 0.5, 24.0, start_with="music")
    assert plan.segments == (Segment("music", 0, 12, 0),)


def test_max_duration_shortens_output() -> None:
    plan = plan_cuts(10.0, 100.0, 25.0, max_duration=3.0)
    assert plan.frames == 75
    assert plan.music_frames == 2500


def test_ntsc_rate_does_not_drift() -> None:
    plan = plan_cuts(1000.0, 600.0, 29.97)
    assert plan.cuts[-1] == round(len(plan.cuts) * 2.0 * 29.97)
    assert all(
        abs(c / 29.97 - 2.0 * (i + 1)) <= 0.5 / 29.97 + 1e-9 for i, c in enumerate(plan.cuts)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"user_duration": 0.0}, "user_duration"),
        ({"music_duration": math.nan}, "music_duration"),
        ({"fps": -1.0}, "fps"),
        ({"segment_seconds": 0.001}, "shorter than one frame"),
        ({"music_duration": 0.01}, "less than one frame"),
        ({"user_end": "bounce"}, "user_end"),
        ({"start_with": "both"}, "start_with"),
        ({"max_duration": 0.0}, "max_duration"),
        ({"cut_times": [1.0, math.inf]}, "cut time"),
    ],
)
def test_invalid_options(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"user_duration": 5.0, "music_duration": 5.0, "fps": 24.0}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        plan_cuts(**args)


def test_plan_json_round_trip_and_validation() -> None:
    plan = plan_cuts(3.0, 9.0, 24.0, user_end="hold")
    text = plan.to_json()
    assert CutPlan.from_json(text) == plan
    broken = plan.to_dict()
    broken["segments"][1]["source_start"] += 1  # music out of sync
    with pytest.raises(ConfigError, match="out of sync"):
        CutPlan.from_dict(broken)
    with pytest.raises(ConfigError, match="version"):
        CutPlan.from_dict({**plan.to_dict(), "version": 99})
    with pytest.raises(ConfigError, match="JSON"):
        CutPlan.from_json("{not json")
    with pytest.raises(ConfigError, match="malformed"):
        CutPlan.from_dict({"version": 1, "fps": 24.0})


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), (1280, 720)),
        ((640, 360), (640, 360)),
        ((161, 91), (160, 92)),
        ((1080, 1920), (720, 1280)),  # portrait: capped by the portrait box
        ((3840, 1600), (1280, 534)),
        ((1, 1), (2, 2)),
    ],
)
def test_canvas_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert canvas_size(*size) == expected
    w, h = canvas_size(*size)
    assert w % 2 == 0
    assert h % 2 == 0


def test_output_fps() -> None:
    assert output_fps(60.0) == 30.0
    assert output_fps(24.0) == 24.0
    assert output_fps(30000 / 1001) == 29.97
    with pytest.raises(ConfigError):
        output_fps(0.0)
