"""Cuts that follow the music: what the analysis costs next to the render, measured in one run.

The music video is a generated 720p30 one (photographs with pans, a seeded song with a beat,
a shot change every 6 s), 4 minutes long (20 s with ``--quick``); the user's video is another
one, a quarter as long.

- ``beats, fresh process``: :func:`avajams.mashup.analysis.track_beats` in a new Python process,
  timed from before ``import avajams`` to the result, so librosa's import (numba's cached
  functions) is counted as a user's first mashup pays it;
- ``beats, warm``: the same in this process, librosa already imported;
- ``shots, music video`` / ``shots, user video``: :func:`~avajams.mashup.analysis.detect_shots`;
- ``avajams render, beats``: ``Mashup(cuts="beats").render`` — the analysis above plus the
  render of the planned cuts;
- ``avajams render, fixed``: ``Mashup(cuts="fixed").render``, no analysis (today's render);
- ``PyAV encode only``: as many 1280x720 frames encoded by PyAV with the same codec settings
  (libx264, same preset and CRF), the render benchmark's encoder limit.

``analysis_share_of_render`` is (fresh beats + both shots) / the beats render; the target is at
most 5%. ``render_vs_encoder_*`` is the encoder limit's time over the render's (1.0 = the
render costs no more than encoding alone).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

from benchmarks import _media
from benchmarks._common import log, ratio, round_sig, target, timed
from benchmarks.render_bench import CRF, PRESET, _encode_only, _source_pictures

_DURATION = {True: 20.0, False: 240.0}


def _fresh_beats(path: str) -> tuple[float, float]:
    """Wall and CPU seconds a new process takes from ``import avajams`` to the music's beats."""
    code = textwrap.dedent(
        f"""
        import time
        started, cpu = time.perf_counter(), time.process_time()
        from avajams.mashup.analysis import track_beats
        beats = track_beats({path!r})
        assert beats.reliable, beats.note
        print(time.perf_counter() - started, time.process_time() - cpu)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    wall, cpu = out.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def run(quick: bool) -> dict[str, Any]:
    from avajams import Mashup
    from avajams.mashup import MoviePyRenderer
    from avajams.mashup.analysis import detect_shots, track_beats

    duration = _DURATION[quick]
    music = _media.photo_video(0, duration, 6.0)
    user = _media.photo_video(1, duration / 4, 5.0)
    out_dir = _media.scratch_dir("cuts-")
    renderer = MoviePyRenderer(preset=PRESET, crf=CRF)

    log(f"beats of a {duration:.0f} s soundtrack in a fresh process")
    fresh_s, fresh_cpu = _fresh_beats(str(music))
    track_beats(music, duration=3.0)  # import librosa here too, so the next one is warm
    warm, beats = timed(lambda: track_beats(music))
    music_shots_t, music_shots = timed(lambda: detect_shots(music))
    user_shots_t, user_shots = timed(lambda: detect_shots(user))
    log(f"rendering {duration:.0f} s with beat cuts")
    beats_t, beats_result = timed(
        lambda: Mashup(cuts="beats", renderer=renderer).render(
            user, music, out_dir / "beats.mp4", show_progress=False
        )
    )
    log("rendering with fixed cuts")
    fixed_t, fixed_result = timed(
        lambda: Mashup(cuts="fixed", renderer=renderer).render(
            user, music, out_dir / "fixed.mp4", show_progress=False
        )
    )
    plan = beats_result.plan
    log("encoding as many frames with PyAV alone")
    pictures = _source_pictures(user, music, 90)
    encode_t, _ = timed(lambda: _encode_only(pictures, plan.frames, plan.fps, out_dir / "e.mp4"))

    analysis_s = fresh_s + music_shots_t.wall + user_shots_t.wall
    analysis_cpu = fresh_cpu + music_shots_t.cpu + user_shots_t.cpu
    share = ratio(analysis_s, beats_t.wall)
    rows = [
        {
            "case": "beats, fresh process",
            "seconds": round_sig(fresh_s),
            "cpu_s": round_sig(fresh_cpu),
        },
        {"case": "beats, warm", "seconds": round_sig(warm.wall), "cpu_s": round_sig(warm.cpu)},
        {
            "case": "shots, music video",
            "seconds": round_sig(music_shots_t.wall),
            "cpu_s": round_sig(music_shots_t.cpu),
        },
        {
            "case": "shots, user video",
            "seconds": round_sig(user_shots_t.wall),
            "cpu_s": round_sig(user_shots_t.cpu),
        },
        {
            "case": "avajams render, beats (analysis included)",
            "seconds": round_sig(beats_t.wall),
            "cpu_s": round_sig(beats_t.cpu),
        },
        {
            "case": "avajams render, fixed",
            "seconds": round_sig(fixed_t.wall),
            "cpu_s": round_sig(fixed_t.cpu),
        },
        {
            "case": "PyAV encode only",
            "seconds": round_sig(encode_t.wall),
            "cpu_s": round_sig(encode_t.cpu),
        },
    ]
    return {
        "description": f"{duration:.0f} s 720p30 music video: beat/shot analysis vs the render",
        "params": {
            "duration_s": duration,
            "frames": plan.frames,
            "fps": plan.fps,
            "tempo_bpm": round_sig(beats.tempo),
            "beats": len(beats.times),
            "music_shot_changes": len(music_shots.times),
            "user_shot_changes": len(user_shots.times),
            "refined_shot_changes": music_shots.refined + user_shots.refined,
            "cuts_beats_mode": len(plan.cuts),
            "cuts_on_a_beat": sum(r.beat is not None for r in plan.reasons),
            "cuts_on_a_shot_change": sum("shot" in r.why for r in plan.reasons),
            "cuts_fixed_mode": len(fixed_result.plan.cuts),
            "plan_notes": list(plan.notes),
            "preset": PRESET,
            "crf": CRF,
        },
        "rows": rows,
        "ratios": {
            "analysis_share_of_render": round_sig(share),
            "analysis_share_of_render_cpu": round_sig(ratio(analysis_cpu, beats_t.cpu)),
            "render_vs_encoder_beats": round_sig(ratio(encode_t.wall, beats_t.wall)),
            "render_vs_encoder_fixed": round_sig(ratio(encode_t.wall, fixed_t.wall)),
            "render_vs_encoder_beats_cpu": round_sig(ratio(encode_t.cpu, beats_t.cpu)),
            "render_vs_encoder_fixed_cpu": round_sig(ratio(encode_t.cpu, fixed_t.cpu)),
        },
        # the 5% target is for a 4-minute track; a 20 s one is mostly librosa's import
        "targets": []
        if quick
        else [target("beat + shot analysis as a share of the render", share, "<= 0.05")],
        "notes": [
            "fresh-process beats include importing librosa (numba functions from its cache)",
            "the beats render does the analysis itself (warm), then renders",
        ],
    }
