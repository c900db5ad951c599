"""Real renders, decoded and checked frame by frame against the plan.

Every source frame encodes ``(tag, frame index)`` (``avajams.testing.make_clip``) and every
source has its own audio tone, so the output says which source and which source frame is on
screen at every output frame, and whose soundtrack plays.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from avajams.errors import ConfigError, MissingAudioError, OutputPathError
from avajams.mashup import CutPlan, Mashup, MoviePyRenderer, Renderer, RenderResult
from avajams.mashup.plan import FitMode
from avajams.mashup.render import placement
from avajams.testing import make_clip, read_frame_code


@dataclass(frozen=True)
class Clip:
    path: Path
    tag: int
    fps: float
    frames: int
    size: tuple[int, int]  # display size
    hz: float | None


def clip(
    directory: Path,
    name: str,
    *,
    tag: int,
    fps: float,
    duration: float,
    size: tuple[int, int],
    hz: float | None = None,
    **kwargs: Any,
) -> Clip:
    path = make_clip(
        directory / name, tag=tag, fps=fps, duration=duration, size=size, audio_hz=hz, **kwargs
    )
    rate = float(Fraction(round(fps * 1001 / 1000) * 1000, 1001)) if fps != int(fps) else fps
    return Clip(path, tag, rate, max(1, round(duration * rate)), size, hz)


def with_chirp(source: Path, out: Path, f0: float, f1: float) -> Path:
    """``source``'s video stream remuxed with a linear chirp f0 -> f1 Hz over its length.

    The tone's frequency says which moment of the music's audio is playing, so the output's
    audio/picture alignment can be measured (make_clip's tones are constant).
    """
    rate = 44100
    with av.open(str(source)) as src, av.open(str(out), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        length = float(vin.duration * vin.time_base)
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate)
        aout.layout = "mono"
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        t = np.arange(round(length * rate)) / rate
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * length))
        samples = (0.3 * np.sin(phase)).astype(np.float32)
        for start in range(0, len(samples), 4096):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + 4096], format="fltp", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            dst.mux(aout.encode(frame))
        dst.mux(aout.encode(None))
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    d = tmp_path_factory.mktemp("mashup-media")
    clips = {
        "user": clip(d, "user.mp4", tag=1, fps=24, duration=5.0, size=(160, 90), hz=440),
        "music": clip(d, "music.mp4", tag=2, fps=30, duration=6.0, size=(160, 90), hz=660),
        "user_short": clip(d, "user_short.mp4", tag=3, fps=25, duration=1.0, size=(160, 90)),
        "music_short": clip(
            d, "music_short.mp4", tag=4, fps=30, duration=1.2, size=(160, 90), hz=550
        ),
        "music_silent": clip(d, "music_silent.mp4", tag=5, fps=30, duration=2.0, size=(160, 90)),
        "user_phone": clip(
            d,
            "user_phone.mp4",
            tag=6,
            fps=29.97,
            duration=3.0,
            size=(144, 256),
            rotation=90,
            hz=440,
        ),
        "music_wide": clip(
            d, "music_wide.mp4", tag=7, fps=60, duration=4.0, size=(256, 144), hz=880
        ),
        "user_odd": clip(
            d, "user_odd.mp4", tag=8, fps=60, duration=2.0, size=(161, 91), pix_fmt="yuv444p"
        ),
        "music_odd": clip(
            d,
            "music_odd.mp4",
            tag=9,
            fps=29.97,
            duration=4.0,
            size=(165, 93),
            hz=770,
            pix_fmt="yuv444p",
        ),
        "music_4x3": clip(
            d, "music_4x3.mp4", tag=10, fps=24, duration=4.5, size=(192, 144), hz=990
        ),
    }
    for name, tag, start in (("music_chirp", 11, 0.0), ("music_chirp_late", 12, 0.5)):
        # the late one's picture starts 0.5 s into its audio
        silent = clip(
            d, f"{name}_video.mp4", tag=tag, fps=30, duration=6.0, size=(160, 90), start_time=start
        )
        chirp = with_chirp(silent.path, d / f"{name}.mp4", 300.0, 3300.0)
        clips[name] = Clip(chirp, tag, 30.0, silent.frames, (160, 90), None)
    return clips


# --- decoding and checking the output ----------------------------------------------------


def decode_video(path: Path) -> tuple[list[float], list[NDArray[np.uint8]]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        frames = list(container.decode(stream))
    return [float(f.time) for f in frames], [f.to_ndarray(format="rgb24") for f in frames]


def decode_audio(path: Path) -> tuple[NDArray[np.float32], int, float]:
    """Mono samples, sample rate, start time of the output's single audio track."""
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        chunks: list[NDArray[np.float32]] = []
        start: float | None = None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.time)
            chunks.append(frame.to_ndarray().astype(np.float32).mean(axis=0))
        return np.concatenate(chunks), stream.rate, start or 0.0


def dominant_hz(samples: NDArray[np.float32], rate: int) -> float:
    window = samples * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(window))
    spectrum[:3] = 0  # DC
    peak = int(np.argmax(spectrum))
    if 0 < peak < len(spectrum) - 1:  # parabolic interpolation between bins
        a, b, c = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
        peak_f = peak + 0.5 * (a - c) / (a - 2 * b + c)
    else:
        peak_f = float(peak)
    return float(peak_f * rate / len(samples))


def expected_frame(plan: CutPlan, k: int, media: dict[str, Clip]) -> tuple[Clip, int]:
    """The source clip and source frame index the plan puts at output frame ``k``."""
    source, j = plan.source_at(k)
    c = media[source]
    return c, min(c.frames - 1, math.floor(j / plan.fps * c.fps + 1e-6))


def check_picture(
    result: RenderResult,
    sources: dict[str, Clip],
    *,
    fit: FitMode = "letterbox",
    skip: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[NDArray[np.uint8]]:
    plan = result.plan
    times, frames = decode_video(result.path)
    assert len(frames) == plan.frames
    assert result.size == (frames[0].shape[1], frames[0].shape[0])
    assert abs(result.duration - plan.duration) <= 1 / plan.fps
    for k, t in enumerate(times):
        assert abs(t - k / plan.fps) < 0.5 / plan.fps, (k, t)
    checked = exact = 0
    for k, image in enumerate(frames):
        if k in skip:
            continue
        c, index = expected_frame(plan, k, sources)
        region = None
        if fit == "letterbox":
            x, y, w, h = placement(c.size, result.size, fit)
            region = (x, y, w, h)
        tag, got = read_frame_code(image, region=region)
        assert tag == c.tag, f"output frame {k}: tag {tag}, plan says {c.tag} ({c.path.name})"
        assert abs(got - index) <= 1, f"output frame {k}: source frame {got}, plan says {index}"
        checked += 1
        exact += got == index
    assert checked >= plan.frames - len(skip)
    # "within one frame" allows timestamp rounding at a boundary, not a systematic shift
    assert exact >= 0.98 * checked, f"only {exact} of {checked} frames exact"
    print(f"{result.path.name}: {exact}/{checked} frames exact")
    return frames


def check_audio(result: RenderResult, music: Clip, user: Clip | None = None) -> None:
    samples, rate, start = decode_audio(result.path)
    frame = 1 / result.plan.fps
    assert abs(start) <= frame
    assert abs(len(samples) / rate - result.plan.duration) <= frame
    assert music.hz is not None
    assert abs(dominant_hz(samples, rate) - music.hz) < 5
    # continuous: the music's tone, at full level, in every 0.2 s window (no gaps at cuts)
    win = int(0.2 * rate)
    level = float(np.sqrt(np.mean(samples[: len(samples) // win * win] ** 2)))
    for i in range(len(samples) // win):
        w = samples[i * win : (i + 1) * win]
        assert abs(dominant_hz(w, rate) - music.hz) < 15, f"window {i}"
        assert np.sqrt(np.mean(w**2)) > 0.7 * level, f"window {i} is quiet"
    if user is not None and user.hz is not None:
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))

        def bin_of(hz: float) -> int:
            return round(hz * len(samples) / rate)

        assert spectrum[bin_of(user.hz)] < 0.01 * spectrum[bin_of(music.hz)]


def child_processes() -> set[int]:
    """Live or zombie children of this process (psutil-free: a /proc ppid scan)."""
    me = os.getpid()
    children = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            children.add(int(name))
    return children


# --- the tests -----------------------------------------------------------------------------


def test_basic_render_is_frame_exact(media: dict[str, Clip], tmp_path: Path) -> None:
    before = child_processes()
    calls: list[tuple[str, int, int | None]] = []
    result = Mashup().render(
        media["user"].path,
        media["music"].path,
        tmp_path / "out.mp4",
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    assert child_processes() <= before
    plan = result.plan
    assert result.path == tmp_path / "out.mp4"
    assert (result.size, result.fps, plan.fps, plan.frames) == ((160, 90), 30.0, 30.0, 180)
    assert plan.cuts == (60, 120)
    check_picture(result, media)
    check_audio(result, media["music"], media["user"])
    assert calls[-1] == ("render", 180, 180)
    assert [d for _, d, _ in calls] == list(range(1, 181))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temp files left


@pytest.mark.parametrize(("name", "video_start"), [("music_chirp", 0.0), ("music_chirp_late", 0.5)])
def test_audio_lines_up_with_picture(
    media: dict[str, Clip], tmp_path: Path, name: str, video_start: float
) -> None:
    """The chirp heard at output time t is the music's audio at the moment whose picture is
    shown at t (the first video frame's time + t): sync within one frame."""
    music = media[name]
    result = Mashup(segment_seconds=1.0).render(
        media["user"].path, music.path, tmp_path / "out.mp4"
    )
    check_picture(result, {"user": media["user"], "music": music})
    samples, rate, start = decode_audio(result.path)
    length = music.frames / music.fps
    slope = 3000.0 / length  # Hz per second
    win = 4096
    offsets = []
    for centre in np.arange(0.5, result.plan.duration - 0.5, 0.25):
        lo = round(centre * rate) - win // 2
        measured = dominant_hz(samples[lo : lo + win], rate)
        # the music time whose chirp frequency we hear, minus the output time
        offsets.append((measured - 300.0) / slope - (video_start + start + centre))
    offset = float(np.median(offsets))
    print(f"audio offset {offset * 1000:.2f} ms (spread {np.std(offsets) * 1000:.2f} ms)")
    assert abs(offset) < 1 / result.plan.fps, f"audio is {offset * 1000:.1f} ms off the picture"


def test_user_shorter_than_music_loops(media: dict[str, Clip], tmp_path: Path) -> None:
    """Also the user-video-without-audio case: user_short has no audio track."""
    sources = {"user": media["user_short"], "music": media["music"]}
    result = Mashup().render(sources["user"].path, sources["music"].path, tmp_path / "o.mp4")
    assert [s.source_start for s in result.plan.segments if s.source == "user"][:3] == [0, 0, 0]
    check_picture(result, sources)
    check_audio(result, media["music"])


def test_user_shorter_music_takes_over(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user_short"], "music": media["music"]}
    result = Mashup(user_end="music").render(
        sources["user"].path, sources["music"].path, tmp_path / "o.mp4"
    )
    assert result.plan.cuts == (30,)
    check_picture(result, sources)


def test_user_shorter_hold(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user_short"], "music": media["music"]}
    result = Mashup(user_end="hold", max_duration=3.0).render(
        sources["user"].path, sources["music"].path, tmp_path / "o.mp4"
    )
    frames = check_picture(result, sources)
    assert read_frame_code(frames[59]) == (3, 24)  # the last of 25 user frames, held


def test_user_longer_than_music(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user"], "music": media["music_4x3"]}
    result = Mashup().render(sources["user"].path, sources["music"].path, tmp_path / "o.mp4")
    assert result.plan.frames == 108  # 4.5 s at 24 fps: the music's length
    assert result.size == (192, 144)  # 16:9 user letterboxed into the music's 4:3
    check_picture(result, sources)
    check_audio(result, sources["music"], sources["user"])


def test_music_shorter_than_one_segment(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user"], "music": media["music_short"]}
    result = Mashup().render(sources["user"].path, sources["music"].path, tmp_path / "o.mp4")
    assert result.plan.cuts == ()
    assert result.plan.frames == 36
    check_picture(result, sources)
    check_audio(result, sources["music"], sources["user"])


def test_music_without_audio_is_refused_before_work(media: dict[str, Clip], tmp_path: Path) -> None:
    before = child_processes()
    with pytest.raises(MissingAudioError, match="no audio") as info:
        Mashup().render(media["user"].path, media["music_silent"].path, tmp_path / "o.mp4")
    assert info.value.path == str(media["music_silent"].path)
    with pytest.raises(MissingAudioError):
        MoviePyRenderer().render(
            Mashup().plan(media["user"].path, media["music_silent"].path),
            media["user"].path,
            media["music_silent"].path,
            tmp_path / "o.mp4",
        )
    assert list(tmp_path.iterdir()) == []
    assert child_processes() <= before


def test_rotated_phone_video_and_frame_rates(media: dict[str, Clip], tmp_path: Path) -> None:
    """A rotated 29.97 fps portrait clip against a 60 fps landscape music video (-> 30 fps)."""
    sources = {"user": media["user_phone"], "music": media["music_wide"]}
    result = Mashup(segment_seconds=0.7).render(
        sources["user"].path, sources["music"].path, tmp_path / "o.mp4"
    )
    assert result.plan.fps == 30.0
    assert result.size == (256, 144)
    check_picture(result, sources)  # reads only when the picture is upright
    check_audio(result, sources["music"], sources["user"])


def test_odd_dimensions_and_ntsc_rate(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user_odd"], "music": media["music_odd"]}
    result = Mashup(segment_seconds=1.0).render(
        sources["user"].path, sources["music"].path, tmp_path / "o.mp4"
    )
    assert result.plan.fps == 29.97
    assert result.size == (164, 92)
    check_picture(result, sources)
    check_audio(result, sources["music"])


def test_crop_to_fill(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user_phone"], "music": media["music_4x3"]}
    result = Mashup(fit="crop", max_duration=3.0).render(
        sources["user"].path, sources["music"].path, tmp_path / "o.mp4"
    )
    frames = check_picture(result, sources, fit="crop")
    # no black bars: the user's portrait picture fills the 4:3 canvas
    assert frames[10][:, :4].mean() > 60


def test_crossfade_blends_at_cuts(media: dict[str, Clip], tmp_path: Path) -> None:
    sources = {"user": media["user"], "music": media["music"]}
    result = Mashup(crossfade_ms=200).render(
        sources["user"].path, sources["music"].path, tmp_path / "o.mp4"
    )
    fade = 6  # 200 ms at 30 fps
    blended = {c + i for c in result.plan.cuts for i in range(fade)}
    frames = check_picture(result, sources, skip=blended)
    from avajams._testing.media import tag_colour

    user_rgb = np.array(tag_colour(1), dtype=np.float32)
    music_rgb = np.array(tag_colour(2), dtype=np.float32)
    for c in result.plan.cuts:
        incoming = music_rgb if result.plan.segments[0].output_end == c else user_rgb
        outgoing = user_rgb if incoming is music_rgb else music_rgb
        for i in range(fade):
            weight = (i + 1) / (fade + 1)
            corner = frames[c + i][2:12, 2:20].reshape(-1, 3).mean(axis=0)
            expected = (1 - weight) * outgoing + weight * incoming
            assert np.abs(corner - expected).max() < 8, (c, i, corner, expected)


def test_output_path_errors(media: dict[str, Clip], tmp_path: Path) -> None:
    user, music = media["user"].path, media["music"].path
    with pytest.raises(OutputPathError, match="does not exist"):
        Mashup().render(user, music, tmp_path / "missing" / "o.mp4")
    # Not writable: chmod does not stop root (tests may run as root), so use a path under a
    # regular file, which no user can create.
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="not a directory"):
        Mashup().render(user, music, blocker / "o.mp4")
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputPathError, match="is a directory"):
        Mashup().render(user, music, tmp_path / "dir.mp4")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputPathError, match="not writable"):
            Mashup().render(user, music, locked / "o.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) in (
        ["dir.mp4", "file.txt"],
        ["dir.mp4", "file.txt", "locked"],
    )


def test_output_that_is_an_input_is_refused(media: dict[str, Clip], tmp_path: Path) -> None:
    user = tmp_path / "me.mp4"
    music = tmp_path / "mv.mp4"
    user.write_bytes(media["user"].path.read_bytes())
    music.write_bytes(media["music"].path.read_bytes())
    before = {p: p.read_bytes() for p in (user, music)}
    for out in (music, user, tmp_path / "." / "mv.mp4"):
        with pytest.raises(OutputPathError, match="also an input"):
            Mashup().render(user, music, out)
    with pytest.raises(OutputPathError, match="also an input"):
        MoviePyRenderer().render(Mashup().plan(user, music), user, music, music)
    assert {p: p.read_bytes() for p in (user, music)} == before


def test_failure_halfway_leaves_no_process_or_file(
    media: dict[str, Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avajams.mashup import render

    original = render._SourceReader._conform
    count = 0

    def failing(self: render._SourceReader, frame: av.VideoFrame) -> NDArray[np.uint8]:
        nonlocal count
        count += 1
        if count == 40:
            raise RuntimeError("injected decoder fault")
        return original(self, frame)

    monkeypatch.setattr(render._SourceReader, "_conform", failing)
    before = child_processes()
    with pytest.raises(RuntimeError, match="injected"):
        Mashup().render(media["user"].path, media["music"].path, tmp_path / "o.mp4")
    assert count == 40
    assert child_processes() <= before
    assert list(tmp_path.iterdir()) == []


def test_plan_without_rendering(media: dict[str, Clip]) -> None:
    mashup = Mashup(segment_seconds=1.5, start_with="music")
    plan = mashup.plan(media["user"].path, media["music_wide"].path)
    assert plan.fps == 30.0
    assert plan.frames == 120
    assert plan.segments[0].source == "music"
    assert plan.cuts == (45, 90)
    assert CutPlan.from_json(plan.to_json()) == plan


def test_variable_frame_rate_user_with_start_offset(media: dict[str, Clip], tmp_path: Path) -> None:
    """A VFR user clip starting at 0.4 s: each output frame shows the covering source frame."""
    path = make_clip(
        tmp_path / "vfr.mp4",
        tag=12,
        fps=24,
        duration=2.5,
        size=(160, 90),
        vfr=True,
        start_time=0.4,
        seed=3,
    )
    with av.open(str(path)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    origin = times[0]
    result = Mashup(segment_seconds=0.5).render(path, media["music"].path, tmp_path / "o.mp4")
    _, frames = decode_video(result.path)
    plan = result.plan
    for k, image in enumerate(frames):
        source, j = plan.source_at(k)
        if source != "user":
            continue
        t = origin + j / plan.fps
        expected = max(i for i, ti in enumerate(times) if ti <= t + 1e-6)
        assert read_frame_code(image) == (12, expected), k


def test_custom_renderer_and_option_checks(media: dict[str, Clip], tmp_path: Path) -> None:
    seen: list[CutPlan] = []

    class Recording:
        def render(
            self, plan: CutPlan, user: object, music: object, out: object, **kwargs: object
        ) -> Path:
            seen.append(plan)
            return MoviePyRenderer(size=(64, 36)).render(plan, user, music, out)  # type: ignore[arg-type]

    assert isinstance(Recording(), Renderer)
    result = Mashup(renderer=Recording(), max_duration=1.0).render(
        media["user"].path, media["music"].path, tmp_path / "o.mp4"
    )
    assert seen == [result.plan]
    assert result.size == (64, 36)
    assert result.plan.frames == 30
    with pytest.raises(ConfigError, match="renderer"):
        Mashup(renderer=Recording(), fit="crop")
    for bad in ({"segment_seconds": 0.0}, {"user_end": "stop"}, {"fps": -1.0}):
        with pytest.raises(ConfigError):
            Mashup(**bad)
    with pytest.raises(ConfigError, match="even"):
        MoviePyRenderer(size=(65, 36))
