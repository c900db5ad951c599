"""Labels in the library, without a model: storage, search by label, the schema migration that
keeps libraries made before labels opening, and the label maths."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from avajams import LibraryError, VectorError
from avajams.index import VideoIndex
from avajams.labels import (
    Label,
    VideoLabels,
    labels_from_probabilities,
    shared_labels,
)

NAMES = ["stage", "microphone", "balloon", "guitar", "spotlight"]


def _labels(
    video: list[tuple[str, float]], frames: int = 3, labeller: str = "lab-1"
) -> VideoLabels:
    per_frame = tuple(tuple(Label(n, p) for n, p in video[:2]) for _ in range(frames))
    return VideoLabels(
        labeller=labeller,
        video=tuple(Label(n, p) for n, p in video),
        times=np.arange(frames, dtype=np.float64),
        frames=per_frame,
    )


def _found(lib: VideoIndex, name: str, least: float = 0.0) -> list[tuple[str, float]]:
    """find_by_label with probabilities rounded (they are stored as float32)."""
    return [(k, round(p, 5)) for k, p in lib.find_by_label(name, min_probability=least)]


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def test_labels_from_probabilities_takes_top_per_frame_and_of_the_mean() -> None:
    probs = np.array([[0.6, 0.3, 0.1, 0.0, 0.0], [0.0, 0.2, 0.7, 0.1, 0.0]], dtype=np.float32)
    labels = labels_from_probabilities(probs, [0.0, 1.5], NAMES, "m", frame_top=2, video_top=3)
    assert [x.name for x in labels.frames[0]] == ["stage", "microphone"]
    assert [x.probability for x in labels.frames[0]] == pytest.approx([0.6, 0.3])
    assert [x.name for x in labels.frames[1]] == ["balloon", "microphone"]
    # mean: stage .3, microphone .25, balloon .4, guitar .05
    assert labels.names() == ["balloon", "stage", "microphone"]
    assert labels.probability("balloon") == pytest.approx(0.4)
    assert labels.probability("spotlight") == 0.0
    assert labels.times.tolist() == [0.0, 1.5]
    doc = labels.to_json(frames=True)
    assert doc["video"][0] == {"name": "balloon", "probability": 0.4}
    assert doc["frames"][1]["time"] == 1.5


def test_shared_labels_need_both_videos_to_show_them() -> None:
    a = [Label("stage", 0.4), Label("guitar", 0.3), Label("balloon", 0.01)]
    b = [Label("guitar", 0.2), Label("balloon", 0.5), Label("stage", 0.05)]
    assert shared_labels(a, b) == ("stage", "guitar")  # balloon is noise in a
    assert shared_labels(a, b, min_probability=0.1) == ("guitar",)
    assert shared_labels(a, []) == ()


def test_library_stores_finds_and_filters_by_label(tmp_path: Path) -> None:
    with VideoIndex.create(tmp_path / "lib", dim=8, embedder_id="e") as lib:
        lib.add("a", _vec(1), frames=np.stack([_vec(1), _vec(2), _vec(3)]),
                labels=_labels([("stage", 0.5), ("balloon", 0.2)]))  # fmt: skip
        lib.add("b", _vec(4), labels=_labels([("balloon", 0.6), ("guitar", 0.1)], frames=2))
        lib.add("c", _vec(5))
        stored = lib.labels("a")
        assert stored is not None
        assert stored.labeller == "lab-1"
        assert stored.names() == ["stage", "balloon"]
        assert len(stored.frames) == 3
        assert stored.frames[2][0].name == "stage"
        assert stored.frames[2][0].probability == pytest.approx(0.5)
        assert lib.labels("c") is None
        with pytest.raises(KeyError):
            lib.labels("nope")
        assert [k for k, _ in lib.find_by_label("balloon")] == ["b", "a"]
        assert _found(lib, "balloon", 0.3) == [("b", 0.6)]
        assert lib.find_by_label("dragon") == []
        assert lib.label_names()[0] == "balloon"  # in the most videos
        assert lib.unlabelled() == ["c"]
        assert lib.labeller == "lab-1"
        # search by label: only labelled videos qualify; matches carry their labels
        found = lib.search(_vec(5), k=3, label="balloon")
        assert sorted(m.key for m in found) == ["a", "b"]
        assert {m.key: m.labels[0].name for m in found} == {"a": "stage", "b": "balloon"}
        assert [m.key for m in lib.search(_vec(1), k=3, label=["balloon", "stage"])] == ["a"]
        assert lib.search(_vec(1), k=3)[0].labels[0].name == "stage"
        # replacing or removing a video drops its old labels
        lib.add("b", _vec(4))
        assert lib.labels("b") is None
        assert [k for k, _ in lib.find_by_label("balloon")] == ["a"]
        lib.remove("a")
        assert lib.find_by_label("balloon") == []
        lib.set_labels("c", _labels([("guitar", 0.9)], frames=1))
        assert _found(lib, "guitar") == [("c", 0.9)]
        with pytest.raises(KeyError):
            lib.set_labels("gone", _labels([("guitar", 0.9)]))
        # labels of another model do not mix in; malformed ones are refused
        with pytest.raises(LibraryError, match="lab-1"):
            lib.set_labels("c", _labels([("guitar", 0.9)], labeller="other"))
        bad = VideoLabels("lab-1", (), np.zeros(2), (tuple(),))
        with pytest.raises(VectorError, match="one entry per frame"):
            lib.set_labels("c", bad)
        lib.check()
    with VideoIndex.open(tmp_path / "lib", readonly=True) as again:
        stored = again.labels("c")
        assert stored is not None
        assert stored.names() == ["guitar"]


def test_a_library_made_before_labels_opens_and_migrates(tmp_path: Path) -> None:
    directory = tmp_path / "old"
    with VideoIndex.create(directory, dim=8, embedder_id="e") as lib:
        lib.add("a", _vec(1), frames=np.stack([_vec(1), _vec(2)]))
        lib.add("b", _vec(2))
    # the catalogue as avajams 0.1 wrote it: no label tables
    conn = sqlite3.connect(directory / "catalogue.sqlite")
    conn.executescript("DROP TABLE video_labels; DROP TABLE frame_labels;")
    conn.close()
    with VideoIndex.open(directory, readonly=True) as old:  # a read-only open changes nothing
        assert old.labels("a") is None
        assert old.unlabelled() == ["a", "b"]
        assert old.find_by_label("stage") == []
        assert old.label_names() == []
        assert [m.key for m in old.search(_vec(1), k=2)] == ["a", "b"]
        assert old.search(_vec(1), k=2, label="stage") == []
        old.check()
    tables = {r[0] for r in sqlite3.connect(directory / "catalogue.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
    assert "video_labels" not in tables
    with VideoIndex.open(directory) as lib:  # the first writable open adds the tables
        assert lib.unlabelled() == ["a", "b"]
        lib.set_labels("a", _labels([("stage", 0.7)], frames=2))
        assert _found(lib, "stage") == [("a", 0.7)]
        entry = lib.get("a")
        assert entry.frames is not None
        assert entry.frames.shape == (2, 8)
        lib.check()


def test_check_finds_damaged_labels(tmp_path: Path) -> None:
    from avajams import LibraryCorruptError

    with VideoIndex.create(tmp_path / "lib", dim=8, embedder_id="e") as lib:
        lib.add("a", _vec(1), labels=_labels([("stage", 0.5)], frames=2))
        lib.check()
    conn = sqlite3.connect(tmp_path / "lib" / "catalogue.sqlite")
    conn.execute("UPDATE frame_labels SET classes = x'0100'")  # one class for two frames
    conn.commit()
    conn.close()
    with VideoIndex.open(tmp_path / "lib") as lib:
        with pytest.raises(LibraryCorruptError, match="labels of"):
            lib.labels("a")
        with pytest.raises(LibraryCorruptError, match="failed its check"):
            lib.check()
