"""Region proposals: the picture-in-picture window, the picture inside black bars."""

from __future__ import annotations

import numpy as np
import pytest

from avajams._regions import crop_images, propose_regions
from avajams.photo import load_photo


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def _frames(photo: str, n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """``n`` frames panning over a photograph: (n, h, w, 3) uint8."""
    from PIL import Image

    image = Image.fromarray(load_photo(photo))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, 0.2, size=2) * np.array(image.size)
        box = (x, y, x + 0.75 * image.size[0], y + 0.75 * image.size[1])
        out.append(np.asarray(image.convert("RGB").resize(size, box=box)))
    return np.stack(out)


@pytest.mark.parametrize("framed", [True, False])
def test_a_picture_in_picture_window_is_found(framed: bool) -> None:
    host = _frames("coffee", 8, (320, 180), 0)
    inner = _frames("astronaut", 8, (96, 54), 1)
    x, y = 200, 110
    host[:, y : y + 54, x : x + 96] = inner
    if framed:
        host[:, y - 2 : y, x - 2 : x + 98] = 255
        host[:, y + 54 : y + 56, x - 2 : x + 98] = 255
        host[:, y - 2 : y + 56, x - 2 : x] = 255
        host[:, y - 2 : y + 56, x + 96 : x + 98] = 255
    regions = propose_regions(host)
    truth = (x / 320, y / 180, (x + 96) / 320, (y + 54) / 180)
    assert regions[0].kind == "inset"
    assert _iou(regions[0].box, truth) > 0.75, regions


def test_the_picture_inside_black_bars_is_found() -> None:
    frames = np.zeros((6, 180, 320, 3), np.uint8)
    frames[:, 20:160, 50:270] = _frames("chelsea", 6, (220, 140), 2)
    regions = propose_regions(frames)
    boxes = {r.kind: r.box for r in regions}
    truth = (50 / 320, 20 / 180, 270 / 320, 160 / 180)
    best = max(regions, key=lambda r: _iou(r.box, truth))
    assert _iou(best.box, truth) > 0.85, boxes


def test_a_plain_video_gets_at_most_the_centre_and_never_the_whole_frame() -> None:
    regions = propose_regions(_frames("rocket", 6, (320, 180), 3), limit=2)
    assert 1 <= len(regions) <= 2
    assert all(r.box != (0.0, 0.0, 1.0, 1.0) for r in regions)
    assert propose_regions(np.zeros((0, 8, 8, 3), np.uint8)) == []


def test_crops_are_stretched_to_the_sampler_size() -> None:
    frames = _frames("camera", 3, (320, 180), 4)
    crops = crop_images(frames, (0.25, 0.5, 0.75, 1.0), (64, 48))
    assert crops.shape == (3, 48, 64, 3)
    assert crops.dtype == np.uint8
    # the crop of the top-left quarter is the quarter itself, resized
    quarter = crop_images(frames[:1], (0.0, 0.0, 0.5, 0.5), (160, 90))[0].astype(int)
    assert np.abs(quarter - frames[0, :90, :160].astype(int)).mean() < 3
