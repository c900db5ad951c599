"""A music video in part of the frame (picture-in-picture) or part of the clip (an excerpt
inside unrelated footage) is found first, with the box and time span it was found in.

Generated media (photo videos from scikit-image's photographs), the real Inception model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avajams import Pipeline, PipelineConfig
from avajams.testing import make_inserted_excerpt, make_photo_video, make_picture_in_picture

pytestmark = pytest.mark.model

PIP_BOX = (0.55, 0.08, 0.92, 0.45)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("regions")
    sets = [("chelsea", "rocket"), ("coffee", "hubble"), ("astronaut", "motorcycle")]
    for i, photos in enumerate(sets):
        make_photo_video(
            root / "mv" / f"mv{i}.mp4", photos=photos, duration=10.0, fps=12.0,
            size=(320, 240), seed=i, audio=None,
        )  # fmt: skip
    # unrelated footage the queries are made of: photographs no library video shows
    make_photo_video(
        root / "host.mp4", photos=("retina", "brick", "coins"), duration=14.0, fps=12.0,
        size=(320, 240), seed=9, audio=None, shot_seconds=3.5,
    )  # fmt: skip
    make_picture_in_picture(
        root / "mv" / "mv1.mp4", root / "host.mp4", root / "pip.mp4",
        box=PIP_BOX, music_start=2.0, duration=6.0,
    )  # fmt: skip
    make_inserted_excerpt(
        root / "mv" / "mv2.mp4", root / "host.mp4", root / "excerpt.mp4",
        music_start=4.0, length=4.0, at=5.0, duration=14.0,
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def pipe(media: Path, inception: Any) -> Iterator[Pipeline]:
    config = PipelineConfig.from_mapping({"library": {"directory": str(media / "lib")}})
    with Pipeline(config, embedder=inception) as p:
        assert p.index([media / "mv"], show_progress=False).ok
        yield p


def test_picture_in_picture_is_found_first_with_its_box(media: Path, pipe: Pipeline) -> None:
    matches = pipe.match(media / "pip.mp4", k=3)
    best = matches[0]
    assert Path(best.path or "").name == "mv1.mp4"
    assert best.box is not None
    assert _iou(best.box, PIP_BOX) > 0.7, best.box
    assert best.span is not None
    # the window shows mv1 from 2 s on, in real time
    assert best.span.music_start - best.span.query_start == pytest.approx(2.0, abs=1.0)
    assert best.span.query_end - best.span.query_start >= 2.0


def test_excerpt_inside_unrelated_footage_is_found_first_with_its_span(
    media: Path, pipe: Pipeline
) -> None:
    matches = pipe.match(media / "excerpt.mp4", k=3)
    best = matches[0]
    assert Path(best.path or "").name == "mv2.mp4"
    assert best.box is None  # found in the whole frame
    span = best.span
    assert span is not None
    # query 5-9 s shows mv2 4-8 s; samples at whole seconds: 5, 6, 7, 8
    assert 4.0 <= span.query_start <= 6.0
    assert 7.0 <= span.query_end <= 9.0
    assert span.music_start == pytest.approx(span.query_start - 1.0, abs=1.0)
    for pair in best.aligned:
        if span.query_start <= pair.query_time <= span.query_end:
            assert abs(pair.music_time - (pair.query_time - 1.0)) <= 1.0, pair
    # the whole-frame method of before averages the unrelated frames in and loses it
    frames = PipelineConfig.from_mapping(
        {"library": {"directory": str(media / "lib"), "match": "frames"}}
    )
    with Pipeline(frames, embedder=pipe.embedder) as before:
        old = before.match(media / "excerpt.mp4", k=3)
    assert old[0].span is None
    assert old[0].box is None


def test_cli_json_and_report_say_where(
    media: Path, pipe: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from avajams.cli import main

    report = tmp_path / "pip.png"
    code = main(
        ["match", str(media / "pip.mp4"), "--library", str(media / "lib"), "--json", "-k", "2",
         "--report", str(report)]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    first = doc["matches"][0]
    assert Path(first["path"]).name == "mv1.mp4"
    assert _iou(tuple(first["box"]), PIP_BOX) > 0.7
    assert set(first["span"]) == {
        "query_start", "query_end", "music_start", "music_end", "similarity", "frames", "speed",
    }  # fmt: skip
    # the box is drawn on the query tiles of the first row, in the report's box colour
    image = Image.open(report).convert("RGB")
    yellow = sum(
        1
        for x in range(image.width)
        for y in range(40, 40 + 120)
        if image.getpixel((x, y)) == (255, 210, 0)
    )
    assert yellow > 100
