"""hnswlib against the exact oracle at the library's default parameters."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from avajams.index import ExactBackend, HnswBackend, HnswParams


def embedding_like(
    rng: np.random.Generator, n: int, dim: int = 2048, clusters: int = 200, latent: int = 64
) -> NDArray[np.float32]:
    """Unit vectors shaped like video-frame embeddings: clustered, of low intrinsic dimension
    (a mixture of Gaussians in a 64-d latent space, linearly lifted to 2048-d) plus
    full-dimensional noise. Seeded per call site, so data and queries share the structure."""
    lift = np.random.default_rng(99).standard_normal((latent, dim)).astype(np.float32)
    centres = np.random.default_rng(98).standard_normal((clusters, latent)).astype(np.float32)
    z = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, latent))
    x = z.astype(np.float32) @ lift + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def recall_at(k: int, approx: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    return float(np.mean([len(set(a) & set(t)) / k for a, t in zip(approx, truth, strict=True)]))


@pytest.mark.slow
def test_recall_at_10_on_20000_embedding_like_vectors_at_defaults() -> None:
    rng = np.random.default_rng(2024)
    data = embedding_like(rng, 20_000)
    queries = embedding_like(rng, 200)
    labels = np.arange(len(data), dtype=np.int64)

    hnsw = HnswBackend(2048, HnswParams(), capacity=len(data))
    hnsw.add(labels, data)
    exact = ExactBackend(2048)
    exact.add(labels, data)

    approx = np.stack([hnsw.search(q, 10)[0] for q in queries])
    truth = np.stack([exact.search(q, 10)[0] for q in queries])
    assert recall_at(10, approx, truth) >= 0.99

    # the oracle is itself right (argsort of the full similarity matrix)
    full = np.argsort(-(queries[:20] @ data.T), axis=1)[:, :10]
    assert recall_at(10, truth[:20], full) == 1.0
