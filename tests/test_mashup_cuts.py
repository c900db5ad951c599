"""Cuts that follow the music: the pure planner's properties (Hypothesis) and real renders.

The planner takes beats, shot changes and the similarity of moments as plain inputs, so its
properties are checked on generated inputs: the segments tile the output, music stays in sync,
sources stay in bounds, no segment is shorter than the minimum, every beat cut is on its beat
(or on a music-video shot change at most 0.25 s away), and with shot changes far enough apart
no shot is left on screen for less than 0.5 s next to a cut.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import av
import numpy as np
import pytest
from audio_fixtures import RATE, click_track, steady_beats, with_soundtrack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_mashup_render import decode_audio as decode_output_audio
from test_mashup_render import decode_video, dominant_hz

from avajams.cli import main
from avajams.config import PipelineConfig
from avajams.errors import ConfigError
from avajams.mashup import CutPlan, Mashup
from avajams.mashup import analysis as analysis_module
from avajams.mashup._choose import beats_per_cut
from avajams.mashup.analysis import Beats, MomentSimilarity
from avajams.mashup.plan import MIN_SHOT_SECONDS, SNAP_SECONDS, CutAnalysis, plan_cuts
from avajams.pipeline import Pipeline
from avajams.testing import make_clip, make_photo_video, read_frame_code

# --- the pure planner ------------------------------------------------------------------------


@st.composite
def beat_grids(draw: st.DrawFn) -> Beats:
    bpm = draw(st.floats(60, 180))
    start = draw(st.floats(0, 1))
    duration = draw(st.floats(8, 40))
    jitter = draw(st.floats(0, 0.01))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    times = steady_beats(bpm, duration, start) + rng.uniform(-jitter, jitter)
    downbeats = tuple(times[::4]) if draw(st.booleans()) else ()
    return Beats(tuple(float(t) for t in np.sort(times)), bpm, downbeats=downbeats)


def visible_shot_fragments(plan: CutPlan, analysis: CutAnalysis) -> list[float]:
    """How long each shot is on screen next to a cut, when that is under MIN_SHOT_SECONDS."""
    short = []
    fps = plan.fps
    for s in plan.segments:
        if s.hold:
            continue
        shots = analysis.music_shots if s.source == "music" else analysis.user_shots
        start, end = s.source_start / fps, (s.source_start + s.frames) / fps
        inside = [t for t in shots if start + 0.5 / fps < t < end - 0.5 / fps]
        if not inside:
            continue
        first, last = inside[0] - start, end - inside[-1]
        is_cut_before = s.output_start in plan.cuts
        is_cut_after = s.output_end in plan.cuts
        if is_cut_before and first < MIN_SHOT_SECONDS - 1.5 / fps:
            short.append(first)
        if is_cut_after and last < MIN_SHOT_SECONDS - 1.5 / fps:
            short.append(last)
    return short


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    beats=beat_grids(),
    fps=st.sampled_from([24.0, 25.0, 29.97, 30.0]),
    user_duration=st.floats(1.0, 30.0),
    segment=st.floats(0.5, 4.0),
    start_with=st.sampled_from(["user", "music"]),
    user_end=st.sampled_from(["loop", "hold", "music"]),
    every=st.one_of(st.none(), st.integers(1, 8)),
    shots=st.lists(st.floats(0.1, 40.0), max_size=12),
    user_shots=st.lists(st.floats(0.1, 30.0), max_size=8),
)
def test_beat_plans_tile_sync_and_land_on_beats(
    beats: Beats,
    fps: float,
    user_duration: float,
    segment: float,
    start_with: str,
    user_end: str,
    every: int | None,
    shots: list[float],
    user_shots: list[float],
) -> None:
    music_duration = beats.times[-1] + 0.7
    analysis = CutAnalysis(
        beats=beats,
        music_shots=tuple(sorted(shots)),
        user_shots=tuple(sorted(s for s in user_shots if s < user_duration)),
    )
    plan = plan_cuts(
        user_duration,
        music_duration,
        fps,
        segment_seconds=segment,
        start_with=start_with,  # type: ignore[arg-type]
        user_end=user_end,  # type: ignore[arg-type]
        cuts="beats",
        cut_every_beats=every,
        analysis=analysis,
    )
    plan.validate()  # tiling, bounds, music in sync: raises otherwise
    assert plan.mode == "beats"
    assert CutPlan.from_json(plan.to_json()) == plan
    frames = [r.frame for r in plan.reasons]
    assert frames == sorted(set(frames))
    boundaries = [0, *frames, plan.frames]
    if plan.frames / fps >= 2 * MIN_SHOT_SECONDS:
        shortest = min(b - a for a, b in itertools.pairwise(boundaries))
        assert shortest >= math.floor(MIN_SHOT_SECONDS * fps) - 1
    n = every or beats_per_cut(segment, beats.period)
    min_len = max(MIN_SHOT_SECONDS, 0.5 * n * beats.period)
    total = plan.frames / fps
    previous = 0.0
    for r in plan.reasons:
        assert r.frame == round(r.time * fps)
        assert r.time - previous >= min_len - 1e-9
        if r.beat is not None:
            beat = beats.times[r.beat]
            if "shot" in r.why:  # moved onto a music-video shot change near its beat
                assert r.shot == r.time
                assert abs(r.time - beat) <= SNAP_SECONDS + 1e-9
            else:  # on its beat: a shot change it could have moved to would leave a sliver
                assert r.time == beat
                near = [s for s in analysis.music_shots if abs(s - beat) <= SNAP_SECONDS]
                if [s for s in near if previous + min_len <= s <= total - min_len]:
                    assert r.clear
        previous = r.time
    assert total - previous >= min(min_len, total) - 1e-9


@settings(max_examples=100, deadline=None)
@given(
    bpm=st.floats(80, 160),
    segment=st.floats(1.5, 3.0),
    music_shot_gap=st.floats(6.0, 10.0),
    user_shot_gap=st.floats(6.0, 10.0),
    offset=st.floats(0.0, 5.0),
    start_with=st.sampled_from(["user", "music"]),
)
def test_sparse_shot_changes_are_never_left_as_slivers(
    bpm: float,
    segment: float,
    music_shot_gap: float,
    user_shot_gap: float,
    offset: float,
    start_with: str,
) -> None:
    beats = Beats(tuple(float(t) for t in steady_beats(bpm, 60.0, 0.2)), bpm)
    analysis = CutAnalysis(
        beats=beats,
        music_shots=tuple(float(t) for t in np.arange(offset + 1.0, 60.0, music_shot_gap)),
        user_shots=tuple(float(t) for t in np.arange(offset + 0.7, 40.0, user_shot_gap)),
    )
    plan = plan_cuts(
        40.0,
        60.0,
        30.0,
        segment_seconds=segment,
        start_with=start_with,  # type: ignore[arg-type]
        cuts="beats",
        analysis=analysis,
    )
    assert all(r.clear for r in plan.reasons), [r for r in plan.reasons if not r.clear]
    assert visible_shot_fragments(plan, analysis) == []
    on_beat = [r for r in plan.reasons if r.beat is not None]
    assert len(on_beat) >= 0.9 * len(plan.reasons)


def test_shot_change_near_a_beat_takes_the_cut_and_reasons_say_why() -> None:
    beats = Beats(tuple(0.25 + 0.5 * i for i in range(40)), 120.0)
    analysis = CutAnalysis(beats=beats, music_shots=(4.1,), user_shots=())
    plan = plan_cuts(10.0, 20.0, 30.0, cuts="beats", analysis=analysis)
    assert plan.notes == ("cutting every 4 beats (2.00 s at 120.0 BPM)",)
    first, second = plan.reasons[:2]
    assert (first.time, first.why, first.beat) == (2.25, "beat", 4)
    assert (second.time, second.why, second.beat, second.shot) == (4.1, "beat+shot", 8, 4.1)
    data = plan.to_dict()
    assert data["mode"] == "beats"
    assert data["cuts"][1] == {
        "frame": 123,
        "time": 4.1,
        "why": "beat+shot",
        "beat": 8,
        "shot": 4.1,
        "clear": True,
        "user_start": None,
        "similarity": None,
    }


def test_a_cut_moves_off_a_beat_that_would_leave_a_sliver() -> None:
    """A user shot change 0.3 s after the ideal cut's position in the user's video."""
    beats = Beats(tuple(0.5 * i for i in range(1, 40)), 120.0)
    plan = plan_cuts(
        30.0, 20.0, 30.0, cuts="beats", analysis=CutAnalysis(beats=beats, user_shots=(2.3,))
    )
    first = plan.reasons[0]
    assert first.time != 2.0  # 2.0 s would leave 0.3 s of the user's next shot
    assert first.clear
    assert abs(first.time - 2.0) <= 1.0  # one or two beats away, still on a beat
    assert first.beat is not None


def test_unreliable_beats_fall_back_to_the_fixed_grid_and_say_so() -> None:
    silent = Beats((), 0.0, reliable=False, note="no clear beat: the soundtrack is silent")
    plan = plan_cuts(
        5.0, 6.0, 10.0, cuts="beats", analysis=CutAnalysis(beats=silent), segment_seconds=2
    )
    assert plan.mode == "fixed"
    assert plan.cuts == (20, 40)
    assert plan.notes == (
        "beats mode fell back to a fixed 2 s grid: no clear beat: the soundtrack is silent",
    )
    assert [r.why for r in plan.reasons] == ["grid", "grid"]


def test_shots_mode_cuts_on_music_video_shot_changes() -> None:
    analysis = CutAnalysis(music_shots=(1.8, 3.2, 6.1, 8.0), user_shots=())
    plan = plan_cuts(10.0, 10.0, 10.0, cuts="shots", analysis=analysis, segment_seconds=2.0)
    assert [(r.time, r.why) for r in plan.reasons] == [
        (1.8, "shot"),
        (3.2, "shot"),
        (6.1, "shot"),
        (8.0, "shot"),
    ]


def test_matched_moments_start_user_segments_at_the_most_similar_moment() -> None:
    """User moment 7 s looks like the music at every even second, moment 3 s at odd ones;
    the music moment at a cut is the last one at or before it."""
    user_times = np.arange(10.0)
    music_times = np.arange(20.0)
    matrix = np.zeros((10, 20), dtype=np.float32)
    matrix[7, ::2] = 0.9
    matrix[3, 1::2] = 0.8
    similarity = MomentSimilarity(user_times, music_times, matrix)
    beats = Beats(tuple(0.5 * i for i in range(1, 40)), 120.0)
    plan = plan_cuts(
        10.0,
        20.0,
        30.0,
        cuts="beats",
        start_with="music",
        analysis=CutAnalysis(beats=beats, similarity=similarity),
    )
    opening = [r for r in plan.reasons[::2]]
    assert opening
    for r in opening:
        expected = 7.0 if math.floor(r.time) % 2 == 0 else 3.0  # the music moment on screen
        assert r.user_start == expected, r
        segment = plan.segment_at(r.frame)
        assert (segment.source, segment.source_start) == ("user", round(expected * 30))
    assert [r.user_start for r in plan.reasons[1::2]] == [None] * len(plan.reasons[1::2])


def test_cut_options_check_the_new_fields() -> None:
    with pytest.raises(ConfigError, match="cuts"):
        Mashup(cuts="random")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cut_every_beats"):
        Mashup(cut_every_beats=0)


def test_without_the_beats_extra_auto_is_fixed_and_beats_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(analysis_module, "beats_available", lambda: False)
    user = make_clip(tmp_path / "u.mp4", tag=1, duration=2.0, fps=24, size=(64, 48))
    music = make_clip(tmp_path / "m.mp4", tag=2, duration=4.0, fps=25, size=(64, 48), audio_hz=500)
    plan = Mashup().plan(user, music)
    assert plan.mode == "fixed"
    assert "pip install 'avajams[beats]'" in plan.notes[0]
    with pytest.raises(ConfigError, match=r"pip install 'avajams\[beats\]'"):
        Mashup(cuts="beats")


# --- real renders ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def beat_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("beat-media")
    user = make_clip(d / "user.mp4", tag=1, fps=24, duration=8.0, size=(160, 90))
    silent = make_clip(d / "mv_silent.mp4", tag=2, fps=30, duration=10.0, size=(160, 90))
    beats = steady_beats(120, 10.0, start=0.3)
    music = with_soundtrack(silent, d / "mv.mp4", click_track(beats, 10.0, accent_every=4))
    # a chirp 300 -> 3300 Hz whose loudness pulses on each beat: beats and a clock in one
    t = np.arange(round(10.0 * RATE)) / RATE
    chirp = np.sin(2 * np.pi * (300.0 * t + 150.0 * t**2))
    since = np.min(np.where(t[:, None] >= beats[None, :], t[:, None] - beats[None, :], 9), 1)
    pulsed = (0.3 * chirp * (0.15 + 0.85 * np.exp(-since / 0.05))).astype(np.float32)
    chirped = with_soundtrack(silent, d / "mv_chirp.mp4", pulsed)
    np.save(d / "beats.npy", beats)
    return {"user": user, "music": music, "chirp": chirped, "beats": d / "beats.npy"}


def switches(frames: list[np.ndarray]) -> list[int]:
    tags = [read_frame_code(f)[0] for f in frames]
    return [k for k in range(1, len(tags)) if tags[k] != tags[k - 1]]


def test_rendered_cuts_land_on_the_planned_beats(
    beat_media: dict[str, Path], tmp_path: Path
) -> None:
    result = Mashup(cuts="beats", segment_seconds=2.0).render(
        beat_media["user"], beat_media["music"], tmp_path / "o.mp4"
    )
    plan = result.plan
    assert plan.mode == "beats", plan.notes
    truth = np.load(beat_media["beats"])
    _, frames = decode_video(result.path)
    seen = switches(frames)
    assert len(seen) == len(plan.cuts) >= 3
    for k, reason in zip(seen, plan.reasons, strict=True):
        # the picture switches within one output frame of the planned beat time ...
        assert abs(k - reason.time * plan.fps) <= 1, (k, reason)
        # ... and the planned beat is a real click (70 ms)
        assert np.min(np.abs(truth - reason.time)) <= 0.07, reason
    print(
        f"beat cuts at frames {seen}, planned {[round(r.time * plan.fps, 2) for r in plan.reasons]}"
    )


def test_beat_cut_render_keeps_audio_in_sync(beat_media: dict[str, Path], tmp_path: Path) -> None:
    result = Mashup(cuts="beats").render(
        beat_media["user"], beat_media["chirp"], tmp_path / "o.mp4"
    )
    assert result.plan.mode == "beats", result.plan.notes
    samples, rate, start = decode_output_audio(result.path)
    # the pulses bias a frequency reading within a window; the same reading of the music
    # video's own soundtrack at the same music time has the same bias, so compare the two
    source, source_rate, source_start = decode_output_audio(beat_media["chirp"])
    offsets = []
    for centre in np.arange(0.5, result.plan.duration - 0.5, 0.25):
        lo = round((centre - start) * rate) - 2048  # output time `centre`
        heard = dominant_hz(samples[lo : lo + 4096], rate)
        lo = round((centre - source_start) * source_rate) - 2048  # the music at `centre`
        played = dominant_hz(source[lo : lo + 4096], source_rate)
        offsets.append((heard - played) / 300.0)  # 300 Hz per second of the chirp
    offset = float(np.median(offsets))
    print(f"beats mode: audio offset {offset * 1000:.2f} ms")
    assert abs(offset) < 1 / result.plan.fps


def test_shots_mode_render_cuts_where_the_music_video_cuts(tmp_path: Path) -> None:
    music = make_photo_video(
        tmp_path / "mv.mp4",
        photos=("chelsea", "coffee", "astronaut", "rocket", "motorcycle"),
        duration=10.0,
        fps=25,
        size=(160, 90),
        shot_seconds=2.2,
    )
    user = make_clip(tmp_path / "u.mp4", tag=1, duration=6.0, fps=25, size=(160, 90))
    result = Mashup(cuts="shots").render(user, music, tmp_path / "o.mp4")
    assert result.plan.mode == "shots"
    assert [r.time for r in result.plan.reasons] == pytest.approx([2.2, 4.4, 6.6, 8.8])
    with av.open(str(result.path)) as container:
        n = sum(1 for _ in container.decode(video=0))
    assert n == result.plan.frames


# --- the command line and the configuration ----------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_cut_modes(beat_media: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base = ("mashup", str(beat_media["user"]), "--music", str(beat_media["music"]), "--dry-run")
    code, out, err = run_cli(capsys, *base, "--cuts", "beats", "--cut-every", "2beats")
    assert code == 0, err
    plan = CutPlan.from_json(out)
    assert plan.mode == "beats"
    assert "avajams: cutting every 2 beats (1.00 s at 120" in err
    beats = [r.beat for r in plan.reasons]
    assert None not in beats
    assert len({b % 2 for b in beats if b is not None}) == 1  # every second beat, one phase

    code, out, err = run_cli(capsys, *base, "--cuts", "fixed", "--cut-every", "1.5s")
    assert code == 0, err
    assert CutPlan.from_json(out) == Mashup(1.5, cuts="fixed").plan(
        beat_media["user"], beat_media["music"]
    )

    code, out, _ = run_cli(capsys, *base, "--cuts", "shots")
    assert CutPlan.from_json(out).mode == "shots"

    for bad in ("4bars", "0beats", "fast"):
        with pytest.raises(SystemExit) as info:
            main([*base, "--cut-every", bad])
        assert info.value.code == 2
    capsys.readouterr()


def test_cli_says_how_to_get_beats(
    beat_media: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analysis_module, "beats_available", lambda: False)
    base = ("mashup", str(beat_media["user"]), "--music", str(beat_media["music"]), "--dry-run")
    code, out, err = run_cli(capsys, *base)
    assert code == 0
    assert CutPlan.from_json(out).mode == "fixed"
    assert "pip install 'avajams[beats]'" in err
    code, out, err = run_cli(capsys, *base, "--cuts", "beats")
    assert code == 1
    assert err.startswith("avajams: error: beat-synchronised cuts need the beats extra")
    assert "pip install 'avajams[beats]'" in err
    assert err.count("\n") == 1


def test_config_section_and_match_moments_through_the_pipeline(
    beat_media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The music video is in a library (FakeEmbedder); --match-moments reads its frames."""
    config = tmp_path / "avajams.toml"
    config.write_text(
        '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 32 }\n'
        "[sampler]\nsize = 64\n"
        f'[library]\ndirectory = "{tmp_path / "lib"}"\n'
        '[mashup]\ncuts = "beats"\ncut_every_beats = 4\n'
    )
    pipe = Pipeline.from_config(config)
    assert pipe.build_mashup().options.cut_every_beats == 4
    with pipe:
        pipe.index(beat_media["music"].parent, show_progress=False)
        plan = pipe.plan_mashup(beat_media["user"], beat_media["music"], match_moments=True)
    assert plan.mode == "beats"
    opening = [r for r in plan.reasons if r.user_start is not None]
    assert opening
    assert all(r.similarity is not None for r in opening)

    argv = ["mashup", str(beat_media["user"]), "--config", str(config), "--dry-run"]
    code, out, err = run_cli(capsys, *argv, "--music", str(beat_media["music"]), "--match-moments")
    assert code == 0, err
    assert CutPlan.from_json(out) == plan
    with pytest.raises(ConfigError, match="cuts"):
        PipelineConfig.from_mapping({"mashup": {"cuts": "bars"}})
    with pytest.raises(ConfigError, match="match_moments needs"):
        Mashup(match_moments=True).plan(beat_media["user"], beat_media["music"])


def test_downbeats_are_preferred_when_the_tracker_gives_them() -> None:
    """Downbeats every 4 beats from beat 2: cuts every 4 beats fall on them, not on beat 4."""
    times = tuple(0.5 * i for i in range(1, 60))
    beats = Beats(times, 120.0, downbeats=times[2::4])
    plan = plan_cuts(20.0, 30.0, 30.0, cuts="beats", analysis=CutAnalysis(beats=beats))
    assert plan.reasons
    assert all(r.why == "downbeat" for r in plan.reasons)
    assert all(r.time in beats.downbeats for r in plan.reasons)
    plain = CutAnalysis(beats=Beats(times, 120.0))
    without = plan_cuts(20.0, 30.0, 30.0, cuts="beats", analysis=plain)
    assert [r.beat for r in without.reasons][:2] == [4, 8]  # every 4 beats from the first
