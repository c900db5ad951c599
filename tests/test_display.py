"""Notebook display: match lists, libraries and rendered mashups as escaped HTML."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from avajams import AlignedPair, Match, Pipeline, RenderResult, VideoIndex
from avajams.display import Matches, library_html, matches_html, render_result_html
from avajams.mashup import plan_cuts
from avajams.testing import FakeEmbedder, make_clip

EVIL = '<script>alert("x")</script>&.mp4'


def test_pipeline_match_is_a_list_that_shows_a_table(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for tag in range(3):
        make_clip(videos / f"mv{tag}.mp4", duration=2.0, tag=tag)
    with Pipeline(embedder=FakeEmbedder(dim=16), library=tmp_path / "lib") as pipe:
        pipe.index(videos, show_progress=False)
        matches = pipe.match(videos / "mv1.mp4", k=2)
        signature = pipe.open_library().get(str((videos / "mv1.mp4").resolve())).signature
        assert signature is not None
        plain = pipe.open_library().search(signature, k=2)
    assert isinstance(matches, list)
    assert isinstance(matches, Matches)
    assert [m.key for m in matches] == [m.key for m in plain]  # the same ranking as the library
    assert matches == list(matches)
    assert isinstance(matches[:1], Matches)
    assert matches[:1].query == matches.query == str(videos / "mv1.mp4")
    page = matches._repr_html_()
    assert page.count("<tr>") == 3
    assert "matches for mv1.mp4" in page
    assert page.count("data:image/jpeg;base64,") == 2 * 2 * 2  # 2 matches x 2 pairs x 2 frames


def test_text_is_escaped_and_missing_files_do_not_fail(tmp_path: Path) -> None:
    match = Match(EVIL, 0.5, str(tmp_path / EVIL), {}, 0.4, (AlignedPair(0.0, 1.0, 0.9),))
    page = matches_html([match], tmp_path / "gone.mp4")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.mp4" in page
    assert "no frame" in page


def test_library_html(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with VideoIndex.create(tmp_path / "lib", dim=4, embedder_id="e<1>") as library:
        for i in range(3):
            v = rng.standard_normal(4)
            library.add(f"k{i}", v / np.linalg.norm(v), path=f"/x/{EVIL}{i}", duration=2.5)
        page = library._repr_html_()
        assert page == library_html(library)
        assert library_html(library, limit=2).count("<li") == 3  # two videos and "1 more"
    assert "<script>" not in page
    assert "e&lt;1&gt; (4-d)" in page
    assert page.count("(2.5 s)</li>") == 3
    assert "(closed)" in library._repr_html_()


def test_render_result_embeds_a_small_mashup_and_refers_to_a_large_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = make_clip(tmp_path / "m.mp4", duration=1.0)
    result = RenderResult(video, 1.0, plan_cuts(1.0, 1.0, 24.0), (96, 64), 24.0)
    page = result._repr_html_()
    source = re.search(r'<video [^>]*src="data:video/mp4;base64,([^"]+)"', page)
    assert source is not None
    assert base64.b64decode(source.group(1)) == video.read_bytes()
    assert "m.mp4: 1.00 s, 96x64 at 24 fps" in page

    monkeypatch.chdir(tmp_path)
    referenced = render_result_html(result, embed_limit=10)
    assert 'src="m.mp4"' in referenced
    video.unlink()
    assert "the file is gone" in render_result_html(result)
