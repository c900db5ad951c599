"""Mashup's options: timing (CutOptions) apart from the renderer's, each video probed once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import avajams.media
from avajams.config import MoviePyMashupConfig, PipelineConfig
from avajams.errors import ConfigError
from avajams.mashup import Mashup, MoviePyRenderer
from avajams.mashup.plan import DEFAULT_MAX_SIZE, CutOptions
from avajams.pipeline import Pipeline
from avajams.testing import make_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("options")
    return {
        "user": make_clip(d / "me.mp4", tag=1, fps=24, duration=1.5, size=(64, 48)),
        "music": make_clip(d / "mv.mp4", tag=2, fps=25, duration=2.0, size=(64, 48), audio_hz=500),
    }


def test_cut_options_validate_when_made() -> None:
    for bad in (
        {"segment_seconds": 0.0},
        {"segment_seconds": float("nan")},
        {"start_with": "both"},
        {"user_end": "stop"},
        {"fps": -1.0},
        {"max_duration": 0.0},
        {"fps_cap": float("inf")},
    ):
        with pytest.raises(ConfigError):
            CutOptions(**bad)
    assert CutOptions().output_fps(59.94) == 30.0
    assert CutOptions(fps=12.0).output_fps(59.94) == 12.0


def test_keywords_override_options_and_renderer_defaults_live_on_the_renderer() -> None:
    base = CutOptions(segment_seconds=1.5, user_end="hold")
    mashup = Mashup(start_with="music", options=base)
    assert mashup.options == dataclasses.replace(base, start_with="music")
    assert (mashup.segment_seconds, mashup.user_end, mashup.start_with) == (1.5, "hold", "music")
    renderer = mashup.renderer
    assert isinstance(renderer, MoviePyRenderer)
    assert renderer.max_size == DEFAULT_MAX_SIZE
    assert renderer.fit == "letterbox"
    # a renderer option equal to its default still conflicts with a renderer of your own
    with pytest.raises(ConfigError, match="max_size"):
        Mashup(renderer=MoviePyRenderer(), max_size=DEFAULT_MAX_SIZE)
    with pytest.raises(ConfigError, match="crossfade_ms"):
        Mashup(renderer=MoviePyRenderer(), crossfade_ms=0.0)


def test_config_builds_the_same_options() -> None:
    section = MoviePyMashupConfig(segment_seconds=0.75, fps_cap=24, crossfade_ms=40)
    mashup = section.build()
    assert mashup.options == CutOptions(segment_seconds=0.75, fps_cap=24.0)
    assert isinstance(mashup.renderer, MoviePyRenderer)
    assert mashup.renderer.crossfade_ms == 40


def test_render_probes_each_video_once(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []
    real = avajams.media._probe_file

    def counting(path: str) -> avajams.media.VideoInfo:
        probed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(avajams.media, "_probe_file", counting)
    result = Mashup(0.5).render(clips["user"], clips["music"], tmp_path / "o.mp4")
    # each input once; the output as the renderer checks it (partial) and as it is reported
    assert sorted(n for n in probed if not n.endswith(".partial.mp4")) == [
        "me.mp4",
        "mv.mp4",
        "o.mp4",
    ]
    assert result.plan.frames == 50


def test_pipeline_plans_and_renders_with_cut_times(clips: dict[str, Path], tmp_path: Path) -> None:
    config = PipelineConfig.from_mapping(
        {"library": {"directory": str(tmp_path / "lib")}, "mashup": {"segment_seconds": 0.5}}
    )
    pipe = Pipeline(config)
    plan = pipe.plan_mashup(clips["user"], clips["music"])
    assert plan.cuts == (12, 25, 38)  # 12.5 rounds to even
    assert pipe.plan_mashup(clips["user"], clips["music"], cut_times=[1.0]).cuts == (25,)
    result = pipe.mashup(clips["user"], tmp_path / "o.mp4", clips["music"], cut_times=[0.4, 1.2])
    assert result.plan.cuts == (10, 30)
    assert result.path.is_file()
