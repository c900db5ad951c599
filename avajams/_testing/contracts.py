"""``check_embedder``: the contract every embedder must meet, runnable by plugin authors."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from avajams.embedding._protocol import Embedder
from avajams.errors import EmbedderError

__all__ = ["check_embedder", "contract_images"]


def contract_images(
    count: int = 4, size: tuple[int, int] = (64, 48), *, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """Distinct, reproducible RGB test images ``(count, height, width, 3)``: gradients + noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    images = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        angle = 2 * math.pi * i / max(count, 1)
        ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height + 1) / 2
        base = np.stack([ramp, 1 - ramp, np.full_like(ramp, (i % 4) / 3)], axis=-1) * 200
        images[i] = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return images


def _require(condition: object, message: str) -> None:
    # explicit raise, not ``assert``: the check must also run under ``python -O``
    if not condition:
        raise AssertionError(message)


def check_embedder(
    embedder: object,
    images: npt.NDArray[np.uint8] | None = None,
    *,
    atol: float = 1e-4,
) -> None:
    """Raise ``AssertionError`` unless ``embedder`` meets the :class:`Embedder` contract.

    Checked: the protocol's members and their types; ``embed`` returns float32 ``(N, dim)`` with
    finite unit rows, ``(0, dim)`` for no images, the same vectors on a second call, and the same
    vectors in one batch as one image at a time (within ``atol``); and it rejects non-uint8,
    wrongly shaped and non-array input with ``EmbedderError``. ``images`` defaults to four
    generated images at the embedder's ``input_size`` (or 64x48).
    """
    _require(
        isinstance(embedder, Embedder),
        f"{type(embedder).__name__} lacks the Embedder members id, dim, input_size, embed()",
    )
    assert isinstance(embedder, Embedder)  # for the type checker; checked just above
    _require(isinstance(embedder.id, str) and embedder.id, "id must be a non-empty string")
    _require(isinstance(embedder.dim, int) and embedder.dim > 0, "dim must be a positive integer")
    size = embedder.input_size
    _require(
        size is None
        or (
            isinstance(size, tuple)
            and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)
        ),
        f"input_size must be None or (width, height), got {size!r}",
    )
    if images is None:
        images = contract_images(4, size or (64, 48))
    _require(
        images.dtype == np.uint8 and images.ndim == 4 and len(images) >= 2,
        "check_embedder needs at least two uint8 (N, H, W, 3) images",
    )

    vectors = embedder.embed(images)
    _require(isinstance(vectors, np.ndarray), f"embed returned {type(vectors).__name__}")
    _require(vectors.dtype == np.float32, f"embed returned dtype {vectors.dtype}, not float32")
    expected = (len(images), embedder.dim)
    _require(vectors.shape == expected, f"embed returned {vectors.shape}, expected {expected}")
    _require(bool(np.all(np.isfinite(vectors))), "embed returned NaN or inf")
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    _require(np.allclose(norms, 1.0, atol=1e-4), f"rows are not unit length: norms {norms}")

    again = embedder.embed(images)
    err = float(np.abs(again - vectors).max())
    _require(err <= atol, f"embed is not deterministic: two calls differ by {err} > {atol}")
    one_by_one = np.concatenate([embedder.embed(images[i : i + 1]) for i in range(len(images))])
    err = float(np.abs(one_by_one - vectors).max())
    _require(err <= atol, f"batch and one-by-one results differ by {err} > {atol}")

    empty = embedder.embed(np.zeros((0, *images.shape[1:]), np.uint8))
    _require(
        empty.shape == (0, embedder.dim) and empty.dtype == np.float32,
        f"embed of no images returned {empty.shape} {empty.dtype}, expected (0, {embedder.dim})",
    )

    bad_inputs: list[tuple[str, object]] = [
        ("float32 images", images.astype(np.float32)),
        ("a single (H, W, 3) image without batch axis", images[0]),
        ("grayscale (N, H, W) images", images[..., 0]),
        ("RGBA (N, H, W, 4) images", np.concatenate([images, images[..., :1]], axis=-1)),
        ("a nested list", images.tolist()),
    ]
    for what, bad in bad_inputs:
        try:
            embedder.embed(bad)  # type: ignore[arg-type]
        except EmbedderError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"embed raised {type(exc).__name__} for {what}; it must raise EmbedderError"
            ) from exc
        raise AssertionError(f"embed accepted {what}; it must raise EmbedderError")
