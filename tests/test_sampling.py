"""FrameSampler: exact covering-frame semantics, geometry, bounds, protocol and settings.

Every generated frame encodes its own index, so "which frame did sample t get" is read off
the image itself and compared with an oracle: a plain PyAV decode of every frame.
"""

from __future__ import annotations

import bisect
import json
import math
import types
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import avajams
from avajams.errors import ConfigError, VideoTooLargeError
from avajams.media import probe
from avajams.sampling import FrameSampler, SampledFrames, Sampler
from avajams.testing import make_clip, read_frame_code


def oracle(path: Path, fps: Fraction) -> list[tuple[Fraction, int]]:
    """(t, frame index) expected for each sample: the frame whose interval covers t."""
    with av.open(str(path)) as container:
        starts = [f.pts * f.time_base for f in container.decode(video=0)]
    end = Fraction(probe(path).duration).limit_denominator(10**9)
    starts = [s - starts[0] for s in starts]
    out = []
    k = 0
    while (t := k / fps) < end - Fraction(1, 10**8):
        out.append((t, bisect.bisect_right(starts, t) - 1))
        k += 1
    return out


def codes(frames: SampledFrames, tag: int = 0) -> list[int]:
    read = [read_frame_code(image) for image in frames.images]
    assert {c[0] for c in read} == {tag}
    return [c[1] for c in read]


def test_cfr_samples_exact_frames(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=2.0, fps=24, tag=1)
    frames = FrameSampler(fps=5, size=64).sample(path)
    np.testing.assert_array_equal(frames.times, np.arange(10) / 5)
    # t = k/5 s covers frame floor(24 k / 5)
    assert codes(frames, tag=1) == [24 * k // 5 for k in range(10)]
    assert frames.images.shape == (10, 64, 64, 3)
    assert frames.images.dtype == np.uint8
    assert frames.times.dtype == np.float64


def test_samples_on_frame_boundaries_get_the_frame_starting_there(tmp_path: Path) -> None:
    """t = 1/3 s is the start of frame 10 at 30 fps; float arithmetic would pick frame 9."""
    path = make_clip(tmp_path / "a.mp4", duration=1.0, fps=30)
    frames = FrameSampler(fps=3, size=32).sample(path)
    assert codes(frames) == [0, 10, 20]
    frames = FrameSampler(fps=Fraction(10, 3), size=32).sample(path)
    assert codes(frames) == [0, 9, 18, 27]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 29.97},
        {"fps": 25, "start_time": 1.25},
        {"fps": 24, "vfr": True, "b_frames": 3, "seed": 1},
        {"fps": 12, "vfr": True, "start_time": 0.4, "b_frames": 0, "seed": 2},
        {"fps": 30, "b_frames": 0, "gop": 1},
    ],
)
def test_matches_oracle(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    path = make_clip(tmp_path / "v.mp4", duration=1.5, tag=4, **kwargs)
    fps = Fraction(7)
    frames = FrameSampler(fps=fps, size=32).sample(path)
    expected = oracle(path, fps)
    assert frames.times.tolist() == [float(t) for t, _ in expected]
    assert codes(frames, tag=4) == [i for _, i in expected]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 30, "b_frames": 3, "gop": 60},
        {"fps": Fraction(30000, 1001), "b_frames": 2, "gop": 250, "start_time": 0.5},
    ],
)
def test_unsampled_non_reference_frames_are_skipped_exactly(
    tmp_path: Path, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Constant-rate H.264: packets far from every sample go to the decoder as NONREF-skip,
    and every sample still gets exactly its covering frame."""
    import avajams.sampling as sampling

    skipped: list[bool] = []
    before = sampling._SkipUnsampled.before

    def spy(self: Any, packet: Any, pts0: int | None) -> None:
        before(self, packet, pts0)
        skipped.append(self._skipping)

    monkeypatch.setattr(sampling._SkipUnsampled, "before", spy)
    path = make_clip(tmp_path / "long.mp4", duration=6.0, tag=2, **kwargs)
    frames = FrameSampler(fps=1, size=32).sample(path)
    assert codes(frames, tag=2) == [i for _, i in oracle(path, Fraction(1))]
    assert sum(skipped) > len(skipped) // 2


def test_upsampling_repeats_frames_as_separate_arrays(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=0.5, fps=10)
    frames = list(FrameSampler(fps=20, size=32).iter_frames(path))
    assert [read_frame_code(image)[1] for _, image in frames] == [k // 2 for k in range(10)]
    assert frames[0][1] is not frames[1][1]
    np.testing.assert_array_equal(frames[0][1], frames[1][1])


def test_only_sampled_frames_are_converted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=2.0, fps=24)
    calls: list[int | None] = []  # the pts of each converted frame
    original = FrameSampler._convert

    def counting(self: FrameSampler, frame: av.VideoFrame, *args: Any) -> Any:
        calls.append(frame.pts)
        return original(self, frame, *args)

    monkeypatch.setattr(FrameSampler, "_convert", counting)
    assert len(FrameSampler(fps=2, size=32).sample(path)) == 4
    assert len(calls) == 4  # of 48 decoded frames
    calls.clear()
    assert len(FrameSampler(fps=48, size=32).sample(path)) == 96
    assert len(calls) == 48  # each frame converted once, even when sampled twice


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotation_is_honoured(tmp_path: Path, rotation: int) -> None:
    path = make_clip(tmp_path / "r.mp4", duration=0.5, size=(96, 64), rotation=rotation, tag=7)
    native = FrameSampler(fps=4, size=None).sample(path)
    assert native.images.shape == (2, 64, 96, 3)  # upright display size
    assert codes(native, tag=7) == [0, 6]
    square = FrameSampler(fps=4, size=32).sample(path)
    assert codes(square, tag=7) == [0, 6]


def _code_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the black/white code cells."""
    luma = image.astype(np.float32).mean(axis=2)
    extreme = (luma < 40) | (luma > 215)
    cols = np.flatnonzero(extreme.mean(axis=0) > 0.2)
    rows = np.flatnonzero(extreme.mean(axis=1) > 0.2)
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@pytest.mark.parametrize("rotation", [0, 90])
def test_fit_modes(tmp_path: Path, rotation: int) -> None:
    """A 16:9 picture into 64 x 64: stretched, centre-cropped, or letterboxed."""
    path = make_clip(tmp_path / "w.mp4", duration=0.25, size=(160, 90), rotation=rotation)

    stretch = FrameSampler(fps=1, size=64).sample(path).images[0]
    assert FrameSampler(fps=1).fit == "stretch"  # the documented default
    x0, y0, x1, y1 = _code_box(stretch)
    assert abs((x1 - x0) - 32) <= 2
    assert abs((y1 - y0) - 32) <= 2

    crop = FrameSampler(fps=1, size=64, fit="crop").sample(path).images[0]
    x0, y0, x1, y1 = _code_box(crop)
    assert abs((x1 - x0) - 64 * 80 / 90) <= 2  # the code is 80 of the 90 px kept
    assert abs((y1 - y0) - 32) <= 2
    assert read_frame_code(crop) == (0, 0)

    box = FrameSampler(fps=1, size=64, fit="letterbox").sample(path).images[0]
    bar = round((64 - 64 * 90 / 160) / 2)  # 14 px of black above and below
    assert not box[: bar - 1].any()
    assert not box[-(bar - 1) :].any()
    assert box[bar + 1 : 64 - bar - 1].mean(axis=(0, 1)).min() > 20  # picture in between
    assert read_frame_code(box, region=(0, bar, 64, 64 - 2 * bar)) == (0, 0)


def test_non_square_size_and_native_size(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=0.5, size=(96, 64))
    assert FrameSampler(fps=2, size=(40, 30)).sample(path).images.shape == (1, 30, 40, 3)
    assert FrameSampler(fps=2, size=None).sample(path).images.shape == (1, 64, 96, 3)


@pytest.mark.parametrize("rotation", [0, 90])
def test_non_square_pixels(tmp_path: Path, rotation: int) -> None:
    """Anamorphic video (stored 48 px wide, pixels twice as wide) comes out at display size."""
    path = make_clip(
        tmp_path / "a.mp4",
        duration=0.5,
        size=(96, 64),
        sample_aspect_ratio=Fraction(2),
        rotation=rotation,
        tag=3,
    )
    native = FrameSampler(fps=4, size=None).sample(path)
    assert native.images.shape == (2, 64, 96, 3)
    assert codes(native, tag=3) == [0, 6]
    boxed = FrameSampler(fps=4, size=96, fit="letterbox").sample(path).images[0]
    assert not boxed[:15].any()  # a 3:2 picture in a square: 16 px bars, not a 3:4 one
    assert boxed[17:79].mean() > 20


def test_odd_sizes(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "o.mp4", duration=0.5, size=(45, 33), pix_fmt="yuv444p", tag=2)
    frames = FrameSampler(fps=4, size=(37, 41)).sample(path)
    assert frames.images.shape == (2, 41, 37, 3)
    assert codes(frames, tag=2) == [0, 6]


def test_max_duration_and_max_frames(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=2.0, fps=24)
    frames = FrameSampler(fps=4, size=32, max_duration=0.6).sample(path)
    np.testing.assert_array_equal(frames.times, [0.0, 0.25, 0.5])
    frames = FrameSampler(fps=4, size=32, max_duration=0.5).sample(path)
    np.testing.assert_array_equal(frames.times, [0.0, 0.25])  # strictly before max_duration
    frames = FrameSampler(fps=4, size=32, max_frames=3).sample(path)
    assert codes(frames) == [0, 6, 12]
    both = FrameSampler(fps=4, size=32, max_frames=5, max_duration=0.3).sample(path)
    assert len(both) == 2


def test_bounds_stop_decoding_before_the_damage(tmp_path: Path) -> None:
    """With max_duration the rest of the file is never read: damage after it goes unseen."""
    raw = make_clip(tmp_path / "a.mp4", duration=4.0, fps=24, faststart=True).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[: len(raw) * 3 // 4])
    frames = FrameSampler(fps=2, size=32, max_duration=1.0, strict=True).sample(cut)
    assert codes(frames) == [0, 12]


def test_absurd_dimensions_refused_before_decoding(tmp_path: Path) -> None:
    """The check uses the stream header: it fires even when no frame could be decoded."""
    data = bytearray(make_clip(tmp_path / "a.mp4", size=(96, 64), faststart=True).read_bytes())
    mdat = data.index(b"mdat")
    data[mdat + 4 :] = bytes(len(data) - mdat - 4)  # frames undecodable, header intact
    path = tmp_path / "zeros.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoTooLargeError, match="max_dimension=64"):
        FrameSampler(fps=1, size=32, max_dimension=64).sample(path)
    with pytest.raises(VideoTooLargeError, match="max_dimension=64"):
        next(FrameSampler(fps=1, size=32, max_dimension=64).iter_frames(path))


def test_output_budget_refused_before_decoding(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=2.0, fps=24)
    with pytest.raises(VideoTooLargeError, match="max_bytes"):
        FrameSampler(fps=24, size=100, max_bytes=1_000_000).sample(path)  # 48 x 30 kB
    # iter_frames holds one image at a time, so the same budget does not apply
    assert len(list(FrameSampler(fps=24, size=100, max_bytes=1_000_000).iter_frames(path))) == 48


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0},
        {"fps": -1.0},
        {"fps": float("nan")},
        {"fps": 5000},
        {"size": 0},
        {"size": 20_000},
        {"size": (10, 10, 3)},
        {"size": 1.5},
        {"fit": "zoom"},
        {"interpolation": "magic"},
        {"max_duration": 0},
        {"max_frames": 0},
        {"threads": -1},
        {"max_bytes": 0},
    ],
)
def test_bad_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        FrameSampler(**kwargs)


def test_settings_are_json_and_round_trip() -> None:
    sampler = FrameSampler(fps=0.5, size=(320, 180), fit="letterbox", max_frames=9, threads=3)
    settings_ = sampler.settings()
    assert json.loads(json.dumps(settings_)) == settings_
    assert settings_ == {
        "sampler": "avajams.FrameSampler",
        "fps": 0.5,
        "size": [320, 180],
        "fit": "letterbox",
        "interpolation": "bilinear",
        "max_duration": None,
        "max_frames": 9,
    }
    assert FrameSampler.from_settings(settings_).settings() == settings_
    assert FrameSampler(fps=1 / 3).settings()["fps"] == 1 / 3
    assert "letterbox" in repr(sampler)


def test_iter_frames_is_a_lazy_stream(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0)
    frames = FrameSampler(fps=4, size=32).iter_frames(path)
    # inspect.isgenerator(frames), without its TypeIs narrowing the items to object
    assert isinstance(frames, types.GeneratorType)
    t, image = next(frames)
    assert (t, read_frame_code(image)) == (0.0, (0, 0))
    assert [read_frame_code(image)[1] for _, image in frames] == [6, 12, 18]


def test_iter_frames_checks_the_path_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FrameSampler().iter_frames(tmp_path / "nope.mp4")  # no next() needed


def test_protocol_and_facade() -> None:
    assert avajams.FrameSampler is FrameSampler
    assert isinstance(FrameSampler(), Sampler)

    class Constant:
        def sample(self, path: str) -> SampledFrames:
            return SampledFrames(np.zeros(1), np.zeros((1, 2, 2, 3), np.uint8))

        def iter_frames(self, path: str) -> Iterator[tuple[float, np.ndarray]]:
            yield 0.0, np.zeros((2, 2, 3), np.uint8)

    assert isinstance(Constant(), Sampler)
    assert not isinstance(object(), Sampler)


def test_sampled_frames_validates() -> None:
    with pytest.raises(ValueError, match="2 times but 1 images"):
        SampledFrames(np.zeros(2), np.zeros((1, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        SampledFrames(np.zeros(1), np.zeros((1, 2, 2, 3), np.float32))
    assert len(SampledFrames(np.zeros(3), np.zeros((3, 2, 2, 3), np.uint8))) == 3


def test_progress_callback(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "a.mp4", duration=1.0)
    seen: list[tuple[str, int, int | None]] = []
    FrameSampler(fps=4, size=32).sample(
        path, show_progress=False, progress=lambda *a: seen.append(a)
    )
    assert seen == [("sampling", i, 4) for i in range(1, 5)]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    clip_fps=st.sampled_from([Fraction(5), Fraction(12), Fraction(24000, 1001), Fraction(25)]),
    frames=st.integers(min_value=1, max_value=30),
    sample_fps=st.fractions(min_value=Fraction(1, 2), max_value=30, max_denominator=4),
    vfr=st.booleans(),
    start_time=st.sampled_from([0.0, 0.5, 1.2]),
    b_frames=st.integers(min_value=0, max_value=3),
    seed=st.integers(min_value=0, max_value=10),
)
def test_property_exact_times_and_frames(
    tmp_path: Path,
    clip_fps: Fraction,
    frames: int,
    sample_fps: Fraction,
    vfr: bool,
    start_time: float,
    b_frames: int,
    seed: int,
) -> None:
    path = make_clip(
        tmp_path / "h.mp4",
        duration=float(frames / clip_fps),
        fps=clip_fps,
        vfr=vfr,
        start_time=start_time,
        b_frames=b_frames,
        seed=seed,
    )
    sampled = FrameSampler(fps=sample_fps, size=32).sample(path)
    expected = oracle(path, sample_fps)
    assert sampled.times.tolist() == [float(t) for t, _ in expected]
    assert codes(sampled) == [i for _, i in expected]
    if not vfr:
        # CFR has a closed form, independent of any decoder: frame floor(t * clip_fps).
        assert len(sampled) == math.ceil(frames / clip_fps * sample_fps)
        assert codes(sampled) == [
            math.floor(k / sample_fps * clip_fps) for k in range(len(sampled))
        ]


def test_docs_blocks_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from docs_blocks import run_python_blocks

    run_python_blocks(Path(__file__).parent.parent / "docs" / "sampling.md", tmp_path)
    assert "0.5 s -> frame 12" in capsys.readouterr().out
