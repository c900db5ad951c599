"""The public surface is pinned: changing it must be a deliberate act."""

from __future__ import annotations

import subprocess
import sys

import pytest

import avajams
import avajams.errors

EXPECTED = {
    "AlignedPair",
    "AvajamsError",
    "ClusterError",
    "ConfigError",
    "CutPlan",
    "Embedder",
    "EmbedderError",
    "EmbedderMismatchError",
    "FrameSampler",
    "Label",
    "Labeller",
    "LibraryCorruptError",
    "LibraryError",
    "LibraryLockedError",
    "LibraryNotFoundError",
    "Mashup",
    "Match",
    "MissingAudioError",
    "ModelError",
    "ModelFetchError",
    "ModelIntegrityError",
    "OutputPathError",
    "Pipeline",
    "PipelineConfig",
    "ProviderError",
    "RenderError",
    "RenderResult",
    "Renderer",
    "SampledFrames",
    "Sampler",
    "Segment",
    "VectorError",
    "VideoDecodeError",
    "VideoDecodeWarning",
    "VideoError",
    "VideoIndex",
    "VideoInfo",
    "VideoLabels",
    "VideoNotFoundError",
    "VideoTooLargeError",
    "__version__",
    "load_embedder",
    "probe",
    "video_signature",
}


def test_all_is_pinned_and_sorted() -> None:
    assert set(avajams.__all__) == EXPECTED
    assert avajams.__all__ == sorted(avajams.__all__)


def test_every_error_descends_from_root() -> None:
    for name in avajams.errors.__all__:
        cls = getattr(avajams.errors, name)
        assert issubclass(cls, avajams.AvajamsError), name
        assert getattr(avajams, name) is cls


def test_warning_is_public_and_not_an_error() -> None:
    from avajams.media import VideoDecodeWarning

    assert avajams.VideoDecodeWarning is VideoDecodeWarning
    assert issubclass(VideoDecodeWarning, UserWarning)
    assert not issubclass(VideoDecodeWarning, avajams.AvajamsError)


def test_errors_are_also_builtins() -> None:
    assert issubclass(avajams.VideoNotFoundError, FileNotFoundError)
    assert issubclass(avajams.VideoDecodeError, ValueError)
    assert issubclass(avajams.LibraryLockedError, BlockingIOError)
    assert issubclass(avajams.OutputPathError, OSError)
    err = avajams.VideoDecodeError("clip.mp4 is not a video", path="clip.mp4")
    assert err.path == "clip.mp4"
    assert "clip.mp4" in str(err)


def test_import_is_cheap() -> None:
    code = (
        "import sys, avajams; "
        "heavy = [m for m in ('av', 'onnxruntime', 'moviepy', 'hnswlib', 'onnx') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        avajams.NoSuchThing  # noqa: B018


def test_every_public_name_resolves() -> None:
    for name in avajams.__all__:
        assert getattr(avajams, name) is not None, name
    assert set(dir(avajams)) >= set(avajams.__all__)
