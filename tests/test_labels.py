"""Labels in the product, with the real EfficientNet-Lite0 labeller: indexing labels every frame
and video, match / --json / the report show them, ``avajams labels`` (a video, --frames, --find,
--update on a library indexed before labels), and ``[labels] enabled = false``.

The music videos are made from foolbox's labelled ImageNet photographs, so what each one shows
is known. FakeEmbedder keeps the embedding side fast; the labeller is real.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from avajams import Pipeline, PipelineConfig
from avajams.cli import main
from avajams.index import VideoIndex
from avajams.photo import make_excerpt, make_photo_video
from avajams.report import report_size
from avajams.testing import FakeEmbedder

pytestmark = pytest.mark.model

#: (photo index in foolbox's sorted list) pairs per music video, and their ImageNet names
VIDEOS = [((0, 1), ("Bullmastiff", "folding chair")), ((2, 3), ("beaker", "horse chestnut seed")),
          ((4, 5), ("strawberry", "thatched roof"))]  # fmt: skip


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=48)
        self.calls = 0

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        self.calls += 1
        return super().embed(images)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avajams._testing.imagenet import imagenet_photos

    photos = imagenet_photos()
    root = tmp_path_factory.mktemp("labels-media")
    for i, (pair, _) in enumerate(VIDEOS):
        make_photo_video(
            root / "mv" / f"mv{i}.mp4",
            photos=[photos[j][1] for j in pair],
            duration=6.0,
            fps=12,
            size=(320, 240),
            seed=i,
        )
    make_excerpt(
        root / "mv" / "mv1.mp4", root / "clip.mp4", start=0.5, duration=2.5, zoom=1.2, fps=10
    )
    return root


def _config(library: Path, **sections: Any) -> PipelineConfig:
    return PipelineConfig.from_mapping({"library": {"directory": str(library)}, **sections})


@pytest.fixture(scope="module")
def library(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("labelled") / "lib"
    with Pipeline(_config(directory), embedder=FakeEmbedder(dim=48)) as pipe:
        summary = pipe.index(media / "mv", show_progress=False)
    assert len(summary.added) == 3
    assert summary.timings["label"] > 0
    return directory


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "avajams.toml"
    path.write_text(text)
    return path


def test_indexing_labels_every_frame_and_video(library: Path, media: Path) -> None:
    with VideoIndex.open(library, readonly=True) as lib:
        for i, (_, names) in enumerate(VIDEOS):
            key = (media / "mv" / f"mv{i}.mp4").resolve().as_posix()
            entry = lib.get(key)
            labels = lib.labels(key)
            assert labels is not None
            assert len(labels.video) == 10
            assert len(labels.frames) == entry.num_frames == 6
            assert all(len(f) == 5 for f in labels.frames)
            assert entry.times is not None
            np.testing.assert_allclose(labels.times, entry.times)
            # the two photographs the video cuts between are what it shows most
            assert set(labels.names()[:2]) == set(names), labels.video
            assert labels.frames[0][0].name in names
            probs = [x.probability for x in labels.video]
            assert probs == sorted(probs, reverse=True)
            assert 0.2 < probs[0] <= 1.0


def test_match_shows_query_match_and_shared_labels(
    library: Path, media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Pipeline(_config(library), embedder=FakeEmbedder(dim=48)) as pipe:
        result = pipe.match_with_labels(media / "clip.mp4", k=3)
        assert result.query is not None
        assert result.query.video[0].name == "beaker"  # the clip is cut from mv1
        by_name = {Path(m.path or "").name: m for m in result.matches}
        assert "beaker" in result.shared(by_name["mv1.mp4"])
        assert "beaker" not in result.shared(by_name["mv2.mp4"])
        assert by_name["mv2.mp4"].labels[0].name in ("strawberry", "thatched roof")
        only = pipe.match(media / "clip.mp4", k=3, label="strawberry")
        assert [Path(m.path or "").name for m in only] == ["mv2.mp4"]

    assert main(["match", str(media / "clip.mp4"), "--library", str(library), "--json",
                 "-k", "3", "--config", str(_toml(tmp_path, "[embedder]\nkind = "
                 '"avajams.testing:FakeEmbedder"\noptions = { dim = 48 }\n'))]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    assert doc["query_labels"]["video"][0]["name"] == "beaker"
    assert doc["query_labels"]["labeller"].startswith("efficientnet_lite0-")
    for m in doc["matches"]:
        assert len(m["labels"]) == 10
        assert set(m["labels"][0]) == {"name", "probability"}
        assert set(m["shared_labels"]) <= {x["name"] for x in m["labels"]}
    mv1 = next(m for m in doc["matches"] if m["path"].endswith("mv1.mp4"))
    assert "beaker" in mv1["shared_labels"]

    config = str(tmp_path / "avajams.toml")
    argv = ["match", str(media / "clip.mp4"), "--library", str(library), "--config", config]
    assert main([*argv, "--where", "label=folding chair", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [Path(m["path"]).name for m in doc["matches"]] == ["mv0.mp4"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "query shows: beaker" in text
    assert "both show: beaker" in text


def test_report_picture_shows_labels(library: Path, media: Path, tmp_path: Path) -> None:
    with Pipeline(_config(library), embedder=FakeEmbedder(dim=48)) as pipe:
        out = pipe.report(media / "clip.mp4", tmp_path / "report.png", k=2)
        plain = pipe.report(
            media / "clip.mp4", tmp_path / "plain.png", matches=pipe.match(media / "clip.mp4", k=2)
        )
    with Image.open(out) as image, Image.open(plain) as without:
        assert image.size == report_size(2, 4, query_labels=True)
        assert without.size == report_size(2, 4)
        assert image.size[1] == without.size[1] + 18
        labelled = np.asarray(image.convert("RGB"), dtype=np.int16)
        plain_rgb = np.asarray(without.convert("RGB"), dtype=np.int16)
    # the layout of avajams.report: a header of 80 px (98 with the query's labels), then rows
    # whose left column says what the video shows (at +104) and what both show (at +122)
    from avajams.report import _HEADER, _LABEL_WIDTH

    top, plain_top, column = _HEADER + 18, _HEADER, slice(12, _LABEL_WIDTH)
    assert (labelled[_HEADER - 10 : _HEADER + 8, 12:500] > 150).sum() > 100  # "you show: ..."
    assert (labelled[top + 104 : top + 120, column] > 150).sum() > 100
    assert (plain_rgb[plain_top + 104 : plain_top + 120, column] > 150).sum() > 100

    def green(a: npt.NDArray[np.int16]) -> int:
        return int(((a[..., 1] > 180) & (a[..., 0] < 120)).sum())

    # the best match (mv1) shares "beaker" with the query: the green "both show:" line
    assert green(labelled[top + 122 : top + 140, column]) > 20
    assert green(plain_rgb[plain_top + 122 : plain_top + 140, column]) == 0


def test_labels_command(library: Path, media: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = str(media / "mv" / "mv2.mp4")
    assert main(["labels", video, "--library", str(library), "--frames", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 1
    assert doc["video"] == str(Path(video).resolve())
    assert {x["name"] for x in doc["video_labels"][:2]} == {"strawberry", "thatched roof"}
    assert [f["time"] for f in doc["frames"]] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(len(f["labels"]) == 5 for f in doc["frames"])
    assert main(["labels", video, "--library", str(library), "--frames"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("mv2.mp4: ")
    assert len(text) == 7
    assert text[1].strip().startswith("0.00s")
    # a video not in the library is labelled on the spot, from its own frames
    assert main(["labels", str(media / "clip.mp4"), "--library", str(library), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["video_labels"][0]["name"] == "beaker"
    # finding videos by label
    assert main(["labels", "--find", "beaker", "--library", str(library), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [Path(v["path"]).name for v in doc["videos"]] == ["mv1.mp4"]
    assert main(["labels", "--find", "zebra", "--library", str(library)]) == 0
    assert "no video in the library is labelled 'zebra'" in capsys.readouterr().out
    assert main(["labels", "--library", str(library)]) == 1
    assert "exactly one of" in capsys.readouterr().err


def test_update_labels_a_library_indexed_before_labels(
    library: Path, media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(media / "mv", videos)
    directory = tmp_path / "old"
    off = _config(directory, labels={"enabled": False})
    with Pipeline(off, embedder=FakeEmbedder(dim=48)) as pipe:
        summary = pipe.index(videos, show_progress=False)
        assert pipe.labeller is None
        assert "label" not in summary.timings
    # as avajams 0.1 left it: no label tables at all
    conn = sqlite3.connect(directory / "catalogue.sqlite")
    conn.executescript("DROP TABLE video_labels; DROP TABLE frame_labels;")
    conn.close()
    with VideoIndex.open(directory, readonly=True) as lib:
        before = {k: lib.get(k).signature for k in lib}
        assert lib.unlabelled() == sorted(before)
    (videos / "mv0.mp4").unlink()  # a file gone since it was indexed
    counting = CountingEmbedder()
    with Pipeline(_config(directory), embedder=counting) as pipe:
        result = pipe.update_labels(show_progress=False)
    gone = (videos / "mv0.mp4").resolve().as_posix()
    assert result.missing == (gone,)
    assert sorted(result.labelled) == sorted(k for k in before if k != gone)
    assert result.ok
    assert counting.calls == 0  # re-decoded and labelled, never re-embedded
    with VideoIndex.open(directory, readonly=True) as lib, \
            VideoIndex.open(library, readonly=True) as reference:  # fmt: skip
        assert lib.unlabelled() == [gone]
        for key in result.labelled:
            after, signature = lib.get(key).signature, before[key]
            assert after is not None
            assert signature is not None
            assert np.array_equal(after, signature)
            got = lib.labels(key)
            want = reference.labels((media / "mv" / Path(key).name).resolve().as_posix())
            assert got is not None
            assert want is not None
            assert got.names() == want.names()
            np.testing.assert_allclose(
                [x.probability for x in got.video], [x.probability for x in want.video], atol=1e-5
            )
    # from the command line: nothing left to label but the missing file, reported on stderr
    assert main(["labels", "--update", "--library", str(directory)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("0 labelled, 1 missing, 0 failed")
    assert "mv0.mp4: its file is gone" in captured.err


def test_labels_can_be_turned_off(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _toml(
        tmp_path,
        '[labels]\nenabled = false\n[embedder]\nkind = "avajams.testing:FakeEmbedder"\n'
        "options = { dim = 48 }\n",
    )
    library = tmp_path / "lib"
    assert (
        main(["index", str(media / "mv"), "--library", str(library), "--config", str(config), "-q"])
        == 0
    )
    capsys.readouterr()
    argv = ["match", str(media / "clip.mp4"), "--library", str(library), "--config", str(config)]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["query_labels"] is None
    assert all(m["labels"] == [] and m["shared_labels"] == [] for m in doc["matches"])
    assert main(argv) == 0
    assert "shows" not in capsys.readouterr().out


def test_efficientnet_embedder_indexes_matches_and_labels_in_one_run(
    media: Path, tmp_path: Path
) -> None:
    from avajams import EmbedderMismatchError

    directory = tmp_path / "lite"
    config = _config(directory, embedder={"kind": "efficientnet_lite0", "batch_size": 8})
    with Pipeline(config) as pipe:
        summary = pipe.index(media / "mv", show_progress=False)
        assert summary.timings["label"] == 0.0  # the embedder's own run gave the labels
        lib = pipe.open_library()
        assert lib.embedder_id == pipe.embedder.id
        assert lib.embedder_id.startswith("efficientnet_lite0-")
        assert lib.dim == 1280
        key = (media / "mv" / "mv2.mp4").resolve().as_posix()
        labels = lib.labels(key)
        assert labels is not None
        assert set(labels.names()[:2]) == {"strawberry", "thatched roof"}
        stored = lib.get(key).frames
        frames = pipe.sampler.sample(media / "mv" / "mv2.mp4")
        assert stored is not None
        np.testing.assert_allclose(stored, pipe.embedder.embed(frames.images), atol=2e-3)
        best = pipe.match(media / "clip.mp4", k=1)[0]
        assert Path(best.path or "").name == "mv1.mp4"
    with pytest.raises(EmbedderMismatchError, match="efficientnet_lite0-"):
        VideoIndex.open(directory, embedder_id="inception_v3-fid2015-7ff4a85c3a63-stretch299")


def test_labels_calls_never_bypass_the_embedder_check(library: Path, media: Path) -> None:
    from avajams import EmbedderMismatchError

    other = FakeEmbedder(dim=48, seed=7)  # not the embedder the library was built with
    with Pipeline(_config(library), embedder=other) as pipe:
        stored = pipe.labels(media / "mv" / "mv0.mp4")  # labels need no embedder
        assert set(stored.names()[:2]) == {"Bullmastiff", "folding chair"}
        assert pipe.find_label("beaker")[0][0].endswith("mv1.mp4")
        with pytest.raises(EmbedderMismatchError):
            pipe.match(media / "clip.mp4")
