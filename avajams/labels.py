"""What is in each video: ImageNet labels of its frames, from EfficientNet-Lite0.

    >>> from avajams.labels import Labeller
    >>> labeller = Labeller()                           # builds the model on first use
    >>> labels = labeller.label(frames.images, frames.times)
    >>> labels.video[0]                                 # Label(name='stage', probability=0.31)

The :class:`Labeller` runs beside the embedder on the very frames the sampler decoded (the
model resizes them itself: shorter side 256, centre crop 224). Every frame gets its top
:data:`FRAME_TOP` labels; the video gets the top :data:`VIDEO_TOP` classes of the mean
probability over its frames. A library stores both (see docs/library.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from avajams.errors import ConfigError, EmbedderError

if TYPE_CHECKING:
    from avajams.embedding import OnnxEmbedder
    from avajams.embedding._onnx import ProviderSpec

__all__ = [
    "FRAME_TOP",
    "SHARED_MIN",
    "VIDEO_TOP",
    "Label",
    "Labeller",
    "VideoLabels",
    "labels_from_probabilities",
    "shared_labels",
]

#: Labels kept per frame and per video.
FRAME_TOP = 5
VIDEO_TOP = 10
#: A label counts as shared by two videos when each has it at this mean probability or more.
SHARED_MIN = 0.02


@dataclass(frozen=True)
class Label:
    """One ImageNet class and its probability (a frame's softmax, or a video's mean of them)."""

    name: str
    probability: float


@dataclass(frozen=True, eq=False)
class VideoLabels:
    """The labels of one video: its top classes and each sampled frame's.

    ``video`` holds the top :data:`VIDEO_TOP` classes of the frames' mean probability, best
    first; ``frames[i]`` the top :data:`FRAME_TOP` of frame ``i``, shown at ``times[i]``
    seconds. ``labeller`` is the id of the model that made them.
    """

    labeller: str
    video: tuple[Label, ...]
    times: NDArray[np.float64] = field(repr=False)
    frames: tuple[tuple[Label, ...], ...] = field(repr=False)

    def names(self) -> list[str]:
        """The video's label names, best first."""
        return [label.name for label in self.video]

    def probability(self, name: str) -> float:
        """The video's mean probability of ``name`` (0.0 when it is not among its top)."""
        return next((label.probability for label in self.video if label.name == name), 0.0)

    def to_json(self, *, frames: bool = False) -> dict[str, Any]:
        """A JSON-able dict: ``labeller``, ``video`` (and per-frame ``frames`` when asked)."""
        out: dict[str, Any] = {"labeller": self.labeller, "video": _labels_json(self.video)}
        if frames:
            out["frames"] = [
                {"time": float(t), "labels": _labels_json(f)}
                for t, f in zip(self.times.tolist(), self.frames, strict=True)
            ]
        return out


def _labels_json(labels: Sequence[Label]) -> list[dict[str, Any]]:
    return [{"name": x.name, "probability": round(float(x.probability), 6)} for x in labels]


def shared_labels(
    a: Sequence[Label], b: Sequence[Label], *, min_probability: float = SHARED_MIN
) -> tuple[str, ...]:
    """The label names two videos both show (each at ``min_probability`` or more), in ``a``'s
    order."""
    theirs = {x.name for x in b if x.probability >= min_probability}
    return tuple(x.name for x in a if x.probability >= min_probability and x.name in theirs)


def labels_from_probabilities(
    probabilities: NDArray[np.float32],
    times: ArrayLike,
    names: Sequence[str],
    labeller: str,
    *,
    frame_top: int = FRAME_TOP,
    video_top: int = VIDEO_TOP,
) -> VideoLabels:
    """:class:`VideoLabels` of a video from its frames' class probabilities ``(N, classes)``."""
    probs = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(names) or len(probs) != len(t):
        raise EmbedderError(
            f"class probabilities of shape {probs.shape} do not fit {len(t)} frames of "
            f"{len(names)} classes"
        )

    def top(p: NDArray[np.float64], k: int) -> tuple[Label, ...]:
        order = np.argsort(-p, kind="stable")[:k]
        return tuple(Label(names[i], float(p[i])) for i in order)

    video = top(probs.mean(axis=0), video_top) if len(probs) else ()
    return VideoLabels(
        labeller=labeller,
        video=video,
        times=t,
        frames=tuple(top(p, frame_top) for p in probs),
    )


class Labeller:
    """ImageNet labels of frames with EfficientNet-Lite0 (ONNX, built on first use).

    ``providers``, ``batch_size`` and ``threads`` are the ONNX embedder's (see
    :class:`avajams.embedding.OnnxEmbedder`); ``model`` may be an ``OnnxEmbedder`` of a model
    with class logits to use instead. Any image size goes in: the model resizes the shorter
    side to 256 and crops the centre 224x224 itself. Thread-safe like the embedder.
    """

    def __init__(
        self,
        *,
        providers: Sequence[ProviderSpec] | None = None,
        batch_size: int = 16,
        threads: int = 0,
        model: OnnxEmbedder | None = None,
        show_progress: bool | None = None,
    ) -> None:
        if model is None:
            from avajams.embedding import OnnxEmbedder

            model = OnnxEmbedder.efficientnet_lite0(
                providers=providers,
                batch_size=batch_size,
                threads=threads,
                show_progress=show_progress,
            )
        if model.labels is None:
            raise ConfigError(f"model {model.id} has no class logits; it cannot label frames")
        self._model = model
        self.id: str = model.id
        self.names: tuple[str, ...] = model.labels

    def probabilities(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Softmax class probabilities ``(N, classes)`` of uint8 RGB images ``(N, H, W, 3)``."""
        from avajams.embedding._protocol import check_images

        images = check_images(images)
        if len(images) == 0:
            return np.zeros((0, len(self.names)), np.float32)
        return self._model.class_probabilities(images)

    def shares_model_with(self, embedder: object) -> bool:
        """Whether ``embedder`` runs this labeller's very model (then one run gives both)."""
        from avajams.embedding import OnnxEmbedder

        return isinstance(embedder, OnnxEmbedder) and embedder.id == self.id

    def embed_with_probabilities(
        self, images: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Unit feature vectors and class probabilities from one run of the model: the
        embedding an embedder with this model's id gives, and the labels' input."""
        return self._model.embed_with_probabilities(images)

    def label(self, images: NDArray[np.uint8], times: ArrayLike | None = None) -> VideoLabels:
        """The labels of one video from its sampled frames (``times`` default 0, 1, 2, ...)."""
        if times is None:
            times = np.arange(len(images), dtype=np.float64)
        return labels_from_probabilities(self.probabilities(images), times, self.names, self.id)

    def close(self) -> None:
        """Release the onnxruntime session; idempotent."""
        self._model.close()

    def __enter__(self) -> Labeller:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Labeller(id={self.id!r})"
