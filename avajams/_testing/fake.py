"""``FakeEmbedder``: a fast, deterministic embedder for tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from avajams.embedding._protocol import check_images, l2_normalize
from avajams.errors import ConfigError

__all__ = ["FakeEmbedder"]


class FakeEmbedder:
    """A seeded random projection of a small, mean-centred thumbnail of each image.

    Similar images give similar vectors (the projection is linear in an 8x8 colour thumbnail
    taken with area averaging), different seeds give unrelated spaces, and the same seed always
    gives the same vectors. Thousands of images per second; no model files.

    ``input_size=None`` accepts any size; pass ``input_size=(w, h)`` to mimic a model that wants
    a fixed size (other sizes are still accepted; the thumbnail does not depend on it).
    """

    def __init__(
        self,
        dim: int = 64,
        *,
        seed: int = 0,
        grid: int = 8,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"dim must be a positive integer, got {dim!r}")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise ConfigError(f"grid must be a positive integer, got {grid!r}")
        self.dim = dim
        self.seed = seed
        self.grid = grid
        self.input_size = input_size
        self.id = f"fake-{dim}-{seed}" + (f"-g{grid}" if grid != 8 else "")
        rng = np.random.default_rng(seed)
        features = grid * grid * 3 + 1
        # one extra input (a constant) keeps flat images from mapping to the zero vector
        self._projection = rng.standard_normal((features, dim)).astype(np.float64)

    def _thumbnails(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        g = self.grid
        # images smaller than the grid: repeat pixels so that every cell covers at least one
        images = np.repeat(images, -(-g // images.shape[1]), axis=1)
        images = np.repeat(images, -(-g // images.shape[2]), axis=2)
        n, h, w, _ = images.shape
        # area-average into g x g cells: cell i covers rows [ceil(i*h/g), ceil((i+1)*h/g))
        row_starts = -(-np.arange(g) * h // g)
        col_starts = -(-np.arange(g) * w // g)
        sums = np.add.reduceat(images, row_starts, axis=1, dtype=np.uint32)
        sums = np.add.reduceat(sums, col_starts, axis=2)
        rows = np.diff(np.append(row_starts, h))
        cols = np.diff(np.append(col_starts, w))
        means = sums / (rows[:, None] * cols[None, :])[None, :, :, None]
        flat: npt.NDArray[np.float64] = (means / 255.0 - 0.5).reshape(n, -1)
        return flat

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Unit vectors ``(N, dim)`` float32 of uint8 RGB images ``(N, H, W, 3)``."""
        images = check_images(images)
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        thumbs = self._thumbnails(images)
        features = np.concatenate([thumbs, np.full((len(thumbs), 1), 0.25)], axis=1)
        return l2_normalize(features @ self._projection)

    def __repr__(self) -> str:
        return f"FakeEmbedder(dim={self.dim}, seed={self.seed})"
