"""``avajams demo``: generated music videos, index, match a re-shot clip, render the mashup."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from avajams.cli import main
from avajams.cli._shared import format_matches
from avajams.demo import DEMO_SOURCE, make_demo_media, run_demo
from avajams.testing import FakeEmbedder


def _check_mp4(path: Path, duration: float) -> None:
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        assert container.duration / 1e6 == pytest.approx(duration, abs=0.15)


@pytest.mark.slow
def test_demo_with_fake_embedder(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(
        tmp_path / "demo", embedder=FakeEmbedder(dim=64), count=3, say=lines.append,
        show_progress=False,
    )  # fmt: skip
    assert result.correct
    assert result.expected == result.videos[DEMO_SOURCE]
    assert len(result.summary.added) == 3
    assert Path(result.matches[0].path or "").name == result.expected.name
    assert len(result.matches) == 3
    assert result.report.is_file()
    _check_mp4(result.mashup, 10.0)  # the mashup lasts as long as the music video
    assert any("indexing" in line for line in lines)
    table = format_matches(result.matches, expected=str(result.expected.resolve()))
    assert "<- the right answer" in table.splitlines()[1]


def test_demo_media_are_distinct_and_kept(tmp_path: Path) -> None:
    videos = make_demo_media(tmp_path, count=2, duration=1.0, fps=6, size=(64, 48))
    assert [v.name for v in videos] == ["mv01-chelsea-coffee.mp4", "mv02-astronaut-rocket.mp4"]
    stamp = videos[0].stat().st_mtime_ns
    assert make_demo_media(tmp_path, count=2, duration=1.0, fps=6, size=(64, 48)) == videos
    assert videos[0].stat().st_mtime_ns == stamp  # not regenerated
    with pytest.raises(ValueError, match="count"):
        make_demo_media(tmp_path, count=0)


@pytest.mark.model
@pytest.mark.slow
def test_demo_command_with_the_real_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inception: object
) -> None:
    """The README's first command, minus the install: right answer, report, mashup."""
    code = main(["demo", "--dir", str(tmp_path / "demo"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "the best match is right." in out
    table = out[out.index("matches for") :].splitlines()
    assert table[2].split()[6] == "mv02-astronaut-rocket.mp4"
    assert "<- the right answer" in table[2]
    _check_mp4(tmp_path / "demo" / "mashup.mp4", 10.0)
    assert (tmp_path / "demo" / "match-report.png").is_file()
    code = main(["info", "--json", "--library", str(tmp_path / "demo" / "library")])
    info = json.loads(capsys.readouterr().out)
    assert info["library"]["videos"] == 5
    assert info["library"]["dim"] == 2048
