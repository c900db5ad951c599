"""The ``Embedder`` protocol and the video signature."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from avajams.errors import EmbedderError

#: Images per inference call, unless an embedder or its config section says otherwise.
DEFAULT_BATCH_SIZE = 16

__all__ = ["Embedder", "check_images", "l2_normalize", "video_signature"]


@runtime_checkable
class Embedder(Protocol):
    """Turns RGB images into unit vectors; anything with these members is an embedder.

    ``id``
        A stable fingerprint of the weights *and* the preprocessing. It is stored with every
        library; two embedders with the same ``id`` must give the same vectors.
    ``dim``
        The length of every vector.
    ``input_size``
        ``(width, height)`` the model wants, or ``None`` when any size works. Samplers produce
        frames at this size so the embedder does not resample them.

    ``embed(images)`` takes uint8 RGB ``(N, H, W, 3)`` and returns float32 ``(N, dim)`` whose rows
    have unit L2 norm; ``N == 0`` gives ``(0, dim)``. Invalid input raises ``EmbedderError``.
    """

    id: str
    dim: int
    input_size: tuple[int, int] | None

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Vectors of ``images`` (uint8 RGB ``(N, H, W, 3)``): float32 ``(N, dim)``, unit rows."""
        ...


def check_images(images: object) -> npt.NDArray[np.uint8]:
    """``images`` as a uint8 ``(N, H, W, 3)`` array, or ``EmbedderError`` saying what is wrong."""
    if not isinstance(images, np.ndarray):
        raise EmbedderError(f"images must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise EmbedderError(
            f"images must be uint8 RGB, got dtype {images.dtype}; convert with "
            "np.clip(x, 0, 255).astype(np.uint8)"
        )
    if images.ndim != 4 or images.shape[-1] != 3:
        raise EmbedderError(
            f"images must have shape (N, H, W, 3), got {images.shape}; "
            "add a batch axis with images[None] for a single image"
        )
    if images.shape[0] and (images.shape[1] == 0 or images.shape[2] == 0):
        raise EmbedderError(f"images must not be empty, got shape {images.shape}")
    return images


def l2_normalize(vectors: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit L2 norm (computed in float64; all-zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    unit: npt.NDArray[np.float64] = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    return unit.astype(np.float32)


def video_signature(
    vectors: npt.NDArray[np.floating], method: Literal["mean", "median"] = "mean"
) -> npt.NDArray[np.float32]:
    """One unit vector for a video from its per-frame vectors ``(N, dim)``.

    Each frame vector is L2-normalised first, so every frame counts once whatever its norm;
    ``"mean"`` then averages them (the centroid of the frames' directions) and ``"median"`` takes
    the element-wise median (robust to a few odd frames: titles, black frames). The result is
    normalised again. Keep the per-frame matrix too (float16 is enough) for frame-level
    re-ranking and aligned cuts.
    """
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise EmbedderError(f"frame vectors must have shape (N, dim) with N >= 1, got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise EmbedderError("frame vectors contain NaN or inf")
    unit = l2_normalize(v).astype(np.float64)
    if method == "mean":
        pooled = unit.mean(axis=0)
    elif method == "median":
        pooled = np.median(unit, axis=0)
    else:
        raise EmbedderError(f"unknown signature method {method!r}; use 'mean' or 'median'")
    norm = float(np.linalg.norm(pooled))
    if norm < 1e-12:
        raise EmbedderError(
            "the frame vectors cancel out (or are all zero); no signature direction exists"
        )
    signature: npt.NDArray[np.float32] = (pooled / norm).astype(np.float32)
    return signature
