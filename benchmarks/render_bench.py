"""Mashup rendering speed against the encoder limit, measured in one run.

- ``avajams render``: :class:`avajams.Mashup` rendering a 720p30 mashup of two 720p30 videos
  (PyAV decoding both, conforming to the canvas, MoviePy piping frames to ffmpeg's libx264,
  the music's AAC track re-encoded) — the whole product;
- ``PyAV encode only``: the same number of 1280x720 frames encoded in-process by PyAV with the
  same codec settings (libx264, same preset and crf, yuv420p) — the encoder limit. Its
  pictures are real frames of the two sources, decoded beforehand and cycled;
- ``ffmpeg CLI encode``: the same pictures written as raw RGB into the ffmpeg command MoviePy
  runs (same codec settings) — the cost of MoviePy's way of encoding, without avajams;
- ``pictures only``: avajams' decode + conform of every output frame, no encoding — what the
  renderer adds in front of the encoder.

``x_realtime`` is output seconds per wall-clock second; ``render_vs_encoder`` is the share of
the encoder limit the full render reaches (1.0 = rendering costs no more than encoding).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks import _media
from benchmarks._common import best, interleaved, log, ratio, round_sig, target

PRESET = "medium"
CRF = 20
#: Distinct source pictures the encoder-only case cycles through.
_CYCLE = 90


def _source_pictures(user: Path, music: Path, count: int) -> list[NDArray[np.uint8]]:
    """``count`` real 720p RGB frames, alternating runs from both sources."""
    import av

    pictures: list[NDArray[np.uint8]] = []
    for path in (user, music):
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= count // 2:
                    break
                pictures.append(frame.to_ndarray(format="rgb24"))
    return pictures


def _encode_only(pictures: list[NDArray[np.uint8]], frames: int, fps: float, out: Path) -> None:
    import av

    with av.open(str(out), "w", format="mp4") as container:
        stream = container.add_stream(
            "libx264", rate=round(fps), options={"preset": PRESET, "crf": str(CRF)}
        )
        height, width = pictures[0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pictures[i % len(pictures)], format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _ffmpeg_pipe_encode(
    pictures: list[NDArray[np.uint8]], frames: int, fps: float, out: Path
) -> None:
    """The same frames through the ffmpeg command line MoviePy runs (raw RGB on a pipe)."""
    import subprocess

    import imageio_ffmpeg

    height, width = pictures[0].shape[:2]
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        *("-y", "-loglevel", "error", "-f", "rawvideo", "-vcodec", "rawvideo"),
        *("-s", f"{width}x{height}", "-pix_fmt", "rgb24", "-r", f"{fps:.02f}", "-i", "-"),
        *("-vcodec", "libx264", "-preset", PRESET, "-crf", str(CRF), "-pix_fmt", "yuv420p"),
        str(out),
    ]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for i in range(frames):
            proc.stdin.write(pictures[i % len(pictures)].tobytes())
        proc.stdin.close()
    if proc.returncode:
        raise RuntimeError(f"ffmpeg exited with {proc.returncode}")


def _pictures_only(mashup: Any, user: Path, music: Path) -> int:
    """Decode and conform every output frame as the renderer does, without encoding."""
    plan = mashup.plan(user, music)
    count = 0
    for _ in mashup.renderer.pictures(plan, user, music):
        count += 1
    return count


def run(quick: bool) -> dict[str, Any]:
    from avajams import Mashup
    from avajams.mashup import MoviePyRenderer

    spec = _media.spec(quick)
    user = _media.photo_video(1, spec.duration, spec.shot_seconds)
    music = _media.photo_video(0, spec.duration, spec.shot_seconds)
    out_dir = _media.scratch_dir("render-")
    mashup = Mashup(renderer=MoviePyRenderer(preset=PRESET, crf=CRF))
    plan = mashup.plan(user, music)
    log(f"rendering a {plan.duration:.0f} s {_media.SIZE[0]}x{_media.SIZE[1]} mashup")
    pictures = _source_pictures(user, music, _CYCLE)
    results: dict[str, Any] = {}

    def render_case() -> None:
        results["render"] = mashup.render(user, music, out_dir / "mashup.mp4", show_progress=False)

    def encode_case() -> None:
        _encode_only(pictures, plan.frames, plan.fps, out_dir / "encode.mp4")

    def pipe_case() -> None:
        _ffmpeg_pipe_encode(pictures, plan.frames, plan.fps, out_dir / "pipe.mp4")

    def pictures_case() -> None:
        results["pictures"] = _pictures_only(mashup, user, music)

    cases = {
        "avajams render": render_case,
        "PyAV encode only": encode_case,
        "ffmpeg CLI encode, raw RGB pipe": pipe_case,
        "pictures only (decode + conform)": pictures_case,
    }
    repeats = 1
    timings = interleaved(cases, repeats)
    fastest = {name: best(ts) for name, ts in timings.items()}
    duration = plan.duration
    rows = [
        {
            "case": name,
            "seconds": round_sig(t.wall),
            "cpu_s": round_sig(t.cpu),
            "cores_busy": round_sig(t.cpu_utilisation, 3),
            "frames": plan.frames,
            "x_realtime": round_sig(ratio(duration, t.wall)),
        }
        for name, t in fastest.items()
    ]
    render_s = fastest["avajams render"].wall
    encode_s = fastest["PyAV encode only"].wall
    pictures_s = fastest["pictures only (decode + conform)"].wall
    share = ratio(encode_s, render_s)
    return {
        "description": "720p30 mashup rendering vs a plain PyAV libx264 encode of as many frames",
        "params": {
            "user": user.name,
            "music": music.name,
            "duration_s": round_sig(duration),
            "frames": plan.frames,
            "fps": plan.fps,
            "size": list(results["render"].size),
            "preset": PRESET,
            "crf": CRF,
            "repeats": repeats,
        },
        "rows": rows,
        "ratios": {
            "render_vs_encoder": round_sig(share),
            # CPU seconds are steadier than wall time on a shared machine
            "render_vs_encoder_cpu": round_sig(
                ratio(fastest["PyAV encode only"].cpu, fastest["avajams render"].cpu)
            ),
            "pictures_share_of_render": round_sig(ratio(pictures_s, render_s)),
            "ffmpeg_pipe_vs_pyav_encode": round_sig(
                ratio(encode_s, fastest["ffmpeg CLI encode, raw RGB pipe"].wall)
            ),
        },
        "targets": [target("render speed as a share of the encoder limit", share, ">= 0.5")],
        "notes": [
            "the render also decodes both sources, pipes raw RGB to ffmpeg and encodes AAC; "
            "'pictures only' is the decode + conform part of it",
            "profile (20 s quick render): the Python side spends most of its time blocked "
            "writing frames into ffmpeg's pipe, i.e. the render is bound by libx264",
        ],
    }
