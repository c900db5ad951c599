"""avajams: find the music video most visually similar to your video and cut a mashup.

The public API lives here; implementation modules are imported lazily on first use so that
``import avajams`` stays cheap (no PyAV, onnxruntime or MoviePy until they are needed).

    >>> import avajams
    >>> sampler = avajams.FrameSampler(fps=1.0, size=299)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from avajams.errors import (
    AvajamsError,
    ClusterError,
    ConfigError,
    EmbedderError,
    EmbedderMismatchError,
    LibraryCorruptError,
    LibraryError,
    LibraryLockedError,
    LibraryNotFoundError,
    MissingAudioError,
    ModelError,
    ModelFetchError,
    ModelIntegrityError,
    OutputPathError,
    ProviderError,
    RenderError,
    VectorError,
    VideoDecodeError,
    VideoError,
    VideoNotFoundError,
    VideoTooLargeError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "FrameSampler": "avajams.sampling",
    "SampledFrames": "avajams.sampling",
    "Sampler": "avajams.sampling",
    "VideoInfo": "avajams.media",
    "VideoDecodeWarning": "avajams.media",
    "probe": "avajams.media",
    "Embedder": "avajams.embedding",
    "load_embedder": "avajams.embedding",
    "video_signature": "avajams.embedding",
    "VideoIndex": "avajams.index",
    "Match": "avajams.index",
    "AlignedPair": "avajams.index",
    "Mashup": "avajams.mashup",
    "CutPlan": "avajams.mashup",
    "Segment": "avajams.mashup",
    "Renderer": "avajams.mashup",
    "RenderResult": "avajams.mashup",
    "Pipeline": "avajams.pipeline",
    "PipelineConfig": "avajams.pipeline",
    "Label": "avajams.labels",
    "Labeller": "avajams.labels",
    "VideoLabels": "avajams.labels",
}

__all__ = [
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
]

if TYPE_CHECKING:
    from avajams.embedding import Embedder, load_embedder, video_signature
    from avajams.index import AlignedPair, Match, VideoIndex
    from avajams.labels import Label, Labeller, VideoLabels
    from avajams.mashup import CutPlan, Mashup, Renderer, RenderResult, Segment
    from avajams.media import VideoDecodeWarning, VideoInfo, probe
    from avajams.pipeline import Pipeline, PipelineConfig
    from avajams.sampling import FrameSampler, SampledFrames, Sampler


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avajams' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
