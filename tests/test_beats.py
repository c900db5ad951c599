"""Beat tracking (the beats extra): click tracks of known tempo, real CC0 loops, no-beat audio.

F-measure is mir_eval's (a detected beat counts within 70 ms of a true one). The real loops
are Debian's ``sonic-pi-samples`` (CC0, from freesound.org), fetched once by name and version
with ``apt-get download`` and checked against the package's SHA-256. Their true tempo: a loop
repeats seamlessly, so it holds a whole number of beats; each tested loop's length is exactly
4 or 16 beats of its tempo (to 0.05%), the loop is tiled to 30 s as Sonic Pi plays it, and
the tempo is the one a drummer counts (amen: the Amen break, ~137 BPM).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import mir_eval
import numpy as np
import pytest
from audio_fixtures import RATE, click_track, steady_beats, with_soundtrack

from avajams.mashup.analysis import beats_from_audio, decode_audio, track_beats
from avajams.testing import make_clip

SONIC_PI = ("sonic-pi-samples", "3.2.2~repack-8")
SONIC_PI_SHA256 = "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d"
#: loop -> beats in one pass of it
LOOP_BEATS = {
    "loop_amen": 4,
    "loop_amen_full": 16,
    "loop_compus": 16,
    "loop_mika": 16,
    "loop_electric": 4,
}


def f_measure(truth: np.ndarray, found: tuple[float, ...]) -> float:
    reference = mir_eval.beat.trim_beats(np.asarray(truth))
    estimated = mir_eval.beat.trim_beats(np.asarray(found))
    return float(mir_eval.beat.f_measure(reference, estimated, f_measure_threshold=0.07))


@pytest.mark.parametrize("bpm", [60, 80, 100, 120, 140, 160, 180])
def test_click_tracks_of_known_tempo(bpm: int) -> None:
    truth = steady_beats(bpm, 30.0)
    beats = beats_from_audio(click_track(truth, 30.0), RATE)
    score = f_measure(truth, beats.times)
    print(f"{bpm} BPM: F = {score:.3f}, tempo {beats.tempo:.1f}")
    assert beats.reliable, beats.note
    assert score >= 0.9
    assert beats.tempo == pytest.approx(bpm, rel=0.04)


def test_swing_pattern() -> None:
    """Quarter-note beats with swung eighths between them (2/3 of the way to the next)."""
    bpm = 100
    truth = steady_beats(bpm, 30.0)
    swung = truth[:-1] + 2 * (60.0 / bpm) / 3
    beats = beats_from_audio(click_track(truth, 30.0, extra=swung), RATE)
    score = f_measure(truth, beats.times)
    print(f"swing: F = {score:.3f}")
    assert score >= 0.9


@pytest.mark.parametrize(("first", "second"), [(90, 130), (128, 100)])
def test_one_tempo_change(first: int, second: int) -> None:
    head = steady_beats(first, 20.0)
    tail = np.arange(head[-1] + 60.0 / second, 40.0, 60.0 / second)
    truth = np.concatenate([head, tail])
    beats = beats_from_audio(click_track(truth, 40.0), RATE)
    score = f_measure(truth, beats.times)
    print(f"{first} -> {second} BPM: F = {score:.3f}; {beats.note}")
    assert score >= 0.9
    assert "tempo change" in beats.note


@pytest.mark.parametrize(
    ("name", "audio"),
    [
        ("silence", np.zeros(10 * RATE, dtype=np.float32)),
        ("steady tone", (0.3 * np.sin(np.arange(10 * RATE) * 2 * np.pi * 440 / RATE))),
        ("white noise", 0.1 * np.random.default_rng(0).standard_normal(10 * RATE)),
    ],
)
def test_audio_without_a_beat_is_not_reliable(name: str, audio: np.ndarray) -> None:
    beats = beats_from_audio(audio.astype(np.float32), RATE)
    assert not beats.reliable, f"{name}: {beats.note}"
    assert beats.note


def test_track_beats_reads_the_soundtrack_in_output_time(tmp_path: Path) -> None:
    """Beats of a video file are seconds from its first video frame (the renderer's clock)."""
    truth = steady_beats(120, 12.0, start=0.3)
    video = make_clip(tmp_path / "v.mp4", tag=2, fps=30, duration=12.0, size=(64, 48))
    music = with_soundtrack(video, tmp_path / "mv.mp4", click_track(truth, 12.0))
    audio = decode_audio(music)
    assert abs(len(audio) / RATE - 12.0) < 0.05
    beats = track_beats(music)
    assert beats.reliable
    assert f_measure(truth, beats.times) >= 0.95
    assert track_beats(music, duration=6.0).times[-1] < 6.0


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine without Debian's tools; fail under CI, never silently."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sonic_pi_loops() -> Path:
    """The loops of Debian's sonic-pi-samples, fetched once (apt-get download) and cached in
    the tests' own home (conftest.py), like the models. Under CI a failed fetch fails."""
    cache = Path(os.environ["AVAJAMS_HOME"]) / "test-data" / "sonic-pi-samples"
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [cache / f"{name}.flac" for name in LOOP_BEATS]
    if all(p.is_file() for p in wanted):
        return cache
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        _unavailable("fetching sonic-pi-samples needs Debian's apt-get and dpkg-deb")
    work = cache / "download"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    spec = "=".join(SONIC_PI)

    def download() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["apt-get", "download", spec], cwd=work, capture_output=True, text=True
        )

    result = download()
    if result.returncode != 0 and os.geteuid() == 0:  # stale package lists: refresh once
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
        result = download()
    if result.returncode != 0:
        _unavailable(f"apt-get download {spec} failed: {result.stderr.strip()[-200:]}")
    (deb,) = work.glob("*.deb")
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    assert digest == SONIC_PI_SHA256, f"{deb.name} has SHA-256 {digest}"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
    samples = work / "x" / "usr" / "share" / "sonic-pi" / "samples"
    for target in wanted:
        shutil.copyfile(samples / target.name, target)
    shutil.rmtree(work)
    return cache


@pytest.mark.parametrize("loop", sorted(LOOP_BEATS))
def test_real_loops_tempo_within_4_percent(sonic_pi_loops: Path, loop: str) -> None:
    import av

    with av.open(str(sonic_pi_loops / f"{loop}.flac")) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        chunks = [
            f.to_ndarray().reshape(-1)
            for d in container.decode(audio=0)
            for f in resampler.resample(d)
        ]
    once = np.concatenate(chunks)
    length = len(once) / RATE
    truth = LOOP_BEATS[loop] * 60.0 / length
    beats = beats_from_audio(np.tile(once, int(np.ceil(30.0 / length))), RATE)
    error = abs(beats.tempo / truth - 1)
    print(f"{loop}: true {truth:.2f} BPM, found {beats.tempo:.2f} ({error:.1%})")
    assert beats.reliable, beats.note
    assert error <= 0.04
