"""The match report picture: layout (size, tiles), the right frames in the tiles, edge cases."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from PIL import Image

from avajams import AlignedPair, Match, OutputPathError
from avajams.photo import load_photo, make_photo_video
from avajams.report import grab_frames, report_size, write_report


def _solid(colour: tuple[int, int, int]) -> np.ndarray:
    image = np.zeros((60, 80, 3), np.uint8)
    image[:] = colour
    return image


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A query that is red for 2 s then green; a music video blue for 2 s then white."""
    root = tmp_path_factory.mktemp("report")
    red, green, blue, white = (
        _solid((220, 30, 30)),
        _solid((30, 200, 40)),
        _solid((30, 40, 220)),
        _solid((240, 240, 240)),
    )
    kw = {"duration": 4.0, "fps": 4, "size": (96, 64), "audio": None, "shot_seconds": 2.0}
    return {
        "query": make_photo_video(root / "q.mp4", photos=(red, green), **kw),  # type: ignore[arg-type]
        "music": make_photo_video(root / "m.mp4", photos=(blue, white), **kw),  # type: ignore[arg-type]
    }


def _mean(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    # the centre of the tile (letterboxing may leave bars at its edges)
    w, h = right - left, bottom - top
    crop = image.crop((left + w // 4, top + h // 4, right - w // 4, bottom - h // 4))
    pixels = np.asarray(crop.convert("RGB"), dtype=np.float64).reshape(-1, 3)
    return cast(np.ndarray, pixels.mean(axis=0))


def test_layout_and_tile_contents(videos: dict[str, Path], tmp_path: Path) -> None:
    pairs = (
        AlignedPair(query_time=0.0, music_time=0.0, similarity=0.9),  # red | blue
        AlignedPair(query_time=3.0, music_time=3.5, similarity=0.8),  # green | white
        AlignedPair(query_time=1.0, music_time=2.5, similarity=0.1),  # dropped: pairs=2
    )
    matches = [
        Match("mv-a", 0.91, str(videos["music"]), {}, 0.88, pairs),
        Match("mv-b", 0.5, str(tmp_path / "gone.mp4"), {}, 0.4, pairs[:1]),
        Match("mv-c", 0.2, None, {}, 0.2, ()),
    ]
    report = write_report(videos["query"], matches, tmp_path / "r.png", pairs=2, tile_size=(80, 60))
    assert report.path == tmp_path / "r.png"
    with Image.open(report.path) as image:
        image.load()
    assert image.size == report.size == report_size(3, 2, (80, 60))
    # row 1: two pairs; row 2: one pair (music file missing); row 3: no aligned frames
    assert [(t.row, t.role) for t in report.tiles] == [
        (0, "query"),
        (0, "music"),
        (0, "query"),
        (0, "music"),
        (1, "query"),
        (1, "music"),
    ]
    assert [t.found for t in report.tiles] == [True, True, True, True, True, False]
    expected = [(220, 30, 30), (30, 40, 220), (30, 200, 40), (240, 240, 240), (220, 30, 30)]
    for tile, colour in zip(report.tiles, expected, strict=False):
        assert np.abs(_mean(image, tile.box) - colour).max() < 25, (tile, _mean(image, tile.box))
    # tiles in a row sit left to right without overlapping
    boxes = [t.box for t in report.tiles if t.row == 0]
    assert all(a[2] <= b[0] for a, b in itertools.pairwise(boxes))
    assert all(box[2] <= image.size[0] and box[3] <= image.size[1] for box in boxes)


def test_size_grows_with_rows_and_pairs() -> None:
    w1, h1 = report_size(1, 1)
    w2, h2 = report_size(3, 4)
    assert w2 > w1
    assert h2 > h1
    assert report_size(3, 4) == report_size(3, 4, (160, 120))


def test_empty_matches_still_draw(videos: dict[str, Path], tmp_path: Path) -> None:
    report = write_report(videos["query"], [], tmp_path / "empty.png")
    assert report.tiles == ()
    with Image.open(report.path) as image:
        assert image.size == report_size(1, 4)


def test_unwritable_output(videos: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(OutputPathError, match="does not exist"):
        write_report(videos["query"], [], tmp_path / "missing" / "r.png")


def test_grab_frames_takes_the_frame_on_screen(tmp_path: Path) -> None:
    photo = load_photo("coffee")
    path = make_photo_video(
        tmp_path / "c.mp4", photos=(photo,), duration=1.0, fps=4, size=(96, 64), audio=None
    )
    frames = grab_frames(path, [0.0, 0.3, 0.99, 5.0])
    assert set(frames) == {0.0, 0.3, 0.99, 5.0}
    assert all(f.size == (96, 64) for f in frames.values())
    # 0.3 s is still frame 1 (0.25 s); 5.0 s is past the end: the last frame (0.75 s)
    assert frames[0.99].tobytes() == frames[5.0].tobytes()
    assert frames[0.0].tobytes() != frames[0.3].tobytes()


def _bright_rows(image: Image.Image, box: tuple[int, int, int, int], level: int) -> int:
    """How many pixel rows of ``box`` hold a pixel brighter than ``level`` in every channel."""
    crop = np.asarray(image.crop(box).convert("RGB"))
    return int((crop.min(axis=2) > level).any(axis=1).sum())


def test_readable_at_a_glance(videos: dict[str, Path], tmp_path: Path) -> None:
    """Captions are large and bright, the legend explains the score, the right answer is
    framed in green, and a best match that is not it is marked in red."""
    from avajams.report import _HEADER, _MARK, _RIGHT, _WRONG

    pairs = (AlignedPair(0.0, 0.0, 0.9), AlignedPair(3.0, 3.5, 0.3))
    matches = [
        Match("mv-a", 0.91, str(tmp_path / "other.mp4"), {}, 0.88, pairs),
        Match("mv-b", 0.5, str(videos["music"]), {}, 0.4, pairs),
    ]
    report = write_report(videos["query"], matches, tmp_path / "r.png", expected=videos["music"])
    assert report.right_row == 1
    with Image.open(report.path) as image:
        image.load()
    rgb = np.asarray(image.convert("RGB")).astype(int)
    for tile in report.tiles:  # the caption under each tile: bright text, 10+ pixels tall
        left, _top, right, bottom = tile.box
        assert _bright_rows(image, (left, bottom, right, bottom + 22), 200) >= 10, tile
    # the legend: two lines of text under the title
    width = image.size[0]
    assert _bright_rows(image, (0, 30, width, _HEADER - 4), 180) >= 16
    # the right answer's row is framed in green, the other row is not
    for row, framed in ((1, True), (0, False)):
        tile = next(t for t in report.tiles if t.row == row)
        x, y = tile.box[0] - _MARK + 1, tile.box[1] + 20
        assert (tuple(rgb[y, x]) == _RIGHT) is framed, (row, rgb[y, x])
    # the best match, not the right answer, carries a red cross where the other has a tick
    for row, colour, other in ((0, _WRONG, _RIGHT), (1, _RIGHT, _WRONG)):
        top = next(t for t in report.tiles if t.row == row).box[1]
        mark = rgb[top + 82 : top + 100, 10:30]
        assert (np.abs(mark - np.array(colour)).max(axis=2) < 10).sum() > 20, row
        assert not (np.abs(mark - np.array(other)).max(axis=2) < 10).any(), row


def test_no_right_answer_marked_when_unknown(videos: dict[str, Path], tmp_path: Path) -> None:
    pairs = (AlignedPair(0.0, 0.0, 0.9),)
    matches = [Match("mv", 0.91, str(videos["music"]), {}, 0.88, pairs)]
    report = write_report(videos["query"], matches, tmp_path / "r.png")
    assert report.right_row is None
    with Image.open(report.path) as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    x, y = report.tiles[0].box[0] - 4, report.tiles[0].box[1] + 20
    assert tuple(rgb[y, x]) != (80, 220, 110)
