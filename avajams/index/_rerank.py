"""Frame-level re-ranking: how well a candidate video's frames cover the query's frames."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def rerank_scores(
    query: NDArray[np.float32], candidate: NDArray[np.float32], *, symmetric: bool = False
) -> tuple[float, NDArray[np.intp], NDArray[np.float32]]:
    """Chamfer similarity of two sets of unit frame vectors.

    Returns ``(score, best, best_sim)``: for each query frame ``i``, ``best[i]`` is the index
    of its most similar candidate frame and ``best_sim[i]`` that cosine. The one-sided score
    (the default) is ``mean(best_sim)``: every query moment found somewhere in the candidate,
    so a short query inside a long video scores as high as the whole video would. With
    ``symmetric=True`` it is averaged with the candidate-to-query direction, which instead
    rewards videos that are similar *throughout*.
    """
    sims = query @ candidate.T  # (m, n)
    best = sims.argmax(axis=1)
    best_sim = sims[np.arange(len(query)), best].astype(np.float32)
    score = float(best_sim.mean())
    if symmetric:
        score = (score + float(sims.max(axis=0).mean())) / 2
    return score, best, best_sim
