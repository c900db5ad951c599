"""Generated photo "music videos" (avajams.photo): real photographs, motion, music."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from avajams.photo import PHOTOS, load_photo, make_excerpt, make_photo_video, music_track


def _decode(path: Path) -> tuple[list[np.ndarray], dict[str, object]]:
    frames = []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info: dict[str, object] = {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "codec": video.codec_context.name,
            "fps": float(video.average_rate or 0),
            "audio": [s.codec_context.name for s in container.streams.audio],
            "duration": container.duration / 1e6 if container.duration else None,
        }
        for frame in container.decode(video):
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames, info


def test_every_listed_photo_loads_as_rgb() -> None:
    for name in PHOTOS:
        photo = load_photo(name)
        assert photo.dtype == np.uint8
        assert photo.ndim == 3
        assert photo.shape[2] == 3
        assert min(photo.shape[:2]) >= 150, name
    with pytest.raises(ValueError, match="unknown photo"):
        load_photo("no-such-photo")


def test_photo_video_streams_size_duration(tmp_path: Path) -> None:
    path = make_photo_video(
        tmp_path / "mv.mp4", photos=("chelsea", "coffee"), duration=3.0, fps=12, size=(160, 120)
    )
    frames, info = _decode(path)
    assert info["codec"] == "h264"
    assert info["audio"] == ["aac"]
    assert (info["width"], info["height"]) == (160, 120)
    assert len(frames) == 36
    assert info["fps"] == pytest.approx(12)
    assert info["duration"] == pytest.approx(3.0, abs=0.1)
    # it moves (pan/zoom) within a shot, and it cuts between shots
    within = np.abs(frames[0].astype(int) - frames[10].astype(int)).mean()
    across = np.abs(frames[17].astype(int) - frames[18].astype(int)).mean()
    steady = np.abs(frames[0].astype(int) - frames[1].astype(int)).mean()
    assert within > 2.0
    assert across > 4 * steady


def test_photo_video_is_deterministic_and_seeded(tmp_path: Path) -> None:
    # 320x240: on frames much smaller than that libx264 reads uninitialised memory, so the
    # same pixels sometimes encode differently (MALLOC_PERTURB_=90 changes 96x64's file).
    kw = {"photos": ("astronaut",), "duration": 1.0, "fps": 6, "size": (320, 240), "audio": None}
    a, info = _decode(make_photo_video(tmp_path / "a.mp4", seed=5, **kw))  # type: ignore[arg-type]
    b, _ = _decode(make_photo_video(tmp_path / "b.mp4", seed=5, **kw))  # type: ignore[arg-type]
    c, _ = _decode(make_photo_video(tmp_path / "c.mp4", seed=6, **kw))  # type: ignore[arg-type]
    assert info["audio"] == []
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_photo_video_accepts_arrays_and_refuses_bad_input(tmp_path: Path) -> None:
    red = np.zeros((50, 80, 3), np.uint8)
    red[..., 0] = 200
    frames, _ = _decode(
        make_photo_video(
            tmp_path / "red.mp4", photos=(red,), duration=0.5, fps=4, size=(32, 32), audio=None
        )
    )
    assert frames[0][..., 0].mean() > 150
    assert frames[0][..., 1].mean() < 40
    with pytest.raises(ValueError, match="even"):
        make_photo_video(tmp_path / "odd.mp4", size=(33, 32))
    with pytest.raises(ValueError, match="at least one photo"):
        make_photo_video(tmp_path / "none.mp4", photos=())


def test_music_track_is_seeded_music_like() -> None:
    a = music_track(2.0, seed=1)
    b = music_track(2.0, seed=1)
    c = music_track(2.0, seed=2)
    assert a.shape == (2, 88_200)
    assert a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert 0.5 < float(np.abs(a).max()) <= 1.0
    # notes start and decay: the short-time energy varies (not a steady tone)
    energy = (a[0, : 88_200 // 2205 * 2205].reshape(-1, 2205) ** 2).mean(axis=1)
    assert energy.max() > 2 * energy.min()


def test_excerpt_recrops_and_reencodes(tmp_path: Path) -> None:
    source = make_photo_video(
        tmp_path / "mv.mp4", photos=("rocket",), duration=2.0, fps=10, size=(160, 120)
    )
    out = make_excerpt(
        source, tmp_path / "clip.mp4", start=0.5, duration=1.0, zoom=1.5, size=(64, 48), fps=15
    )
    frames, info = _decode(out)
    assert (info["width"], info["height"]) == (64, 48)
    assert len(frames) == 15
    assert info["audio"] == []
    with pytest.raises(ValueError, match="no frames"):
        make_excerpt(source, tmp_path / "none.mp4", start=5.0, duration=1.0)
