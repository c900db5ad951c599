"""The issue's "done when" journey with the real Inception v3 model and no configuration:
``avajams index DIR``, ``avajams match VIDEO --json``, ``avajams mashup VIDEO -o out.mp4``."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from avajams.cli import main
from avajams.photo import make_excerpt, make_photo_video

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_index_match_mashup_with_inception(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], inception: object
) -> None:
    videos = tmp_path / "mvs"
    videos.mkdir()
    for i, photos in enumerate([("coffee", "moon"), ("rocket", "chelsea"), ("retina", "grass")]):
        make_photo_video(
            videos / f"mv{i}.mp4", photos=photos, duration=4.0, fps=12, size=(192, 144), seed=i
        )
    clip = make_excerpt(
        videos / "mv1.mp4", tmp_path / "me.mp4", start=1.0, duration=3.0, zoom=1.4, fps=15,
        center=(0.4, 0.5),
    )  # fmt: skip
    library = str(tmp_path / "library")

    assert main(["index", str(videos), "--library", library, "--quiet"]) == 0
    assert "3 added" in capsys.readouterr().out

    assert main(["match", str(clip), "--json", "--library", library]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [Path(m["path"]).name for m in doc["matches"]]
    assert names[0] == "mv1.mp4"
    assert len(names) == 3
    best = doc["matches"][0]
    assert best["score"] > doc["matches"][1]["score"] + 0.05
    # the clip's frames line up with the right stretch of the source (1.0 s .. 4.0 s)
    for pair in best["aligned"]:
        assert 0.0 <= pair["music_time"] - pair["query_time"] <= 2.0, best["aligned"]

    out = tmp_path / "out.mp4"
    assert main(["mashup", str(clip), "-o", str(out), "--library", library, "--quiet"]) == 0
    assert "mv1.mp4" in capsys.readouterr().out
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert len(container.streams.audio) == 1
        assert container.duration / 1e6 == pytest.approx(4.0, abs=0.15)
