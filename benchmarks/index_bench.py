"""Library speed and recall: hnswlib vs the exact numpy backend, measured in one run.

For each data set and size: build time, single-query latency p50/p99 and recall@10 of the
hnswlib backend at the library's default parameters, against exact brute-force search on the
same vectors. Two data sets:

- ``embedding``: unit vectors shaped like video-frame embeddings (clusters in a 64-d latent
  space, lifted to 2048-d, plus full-dimensional noise) — what a library really holds;
- ``uniform``: uniformly random unit vectors, the worst case for any graph index (every point
  is nearly orthogonal to every other; no structure to exploit). Its recall is shown at the
  default ``ef`` and at larger ones, to show what the recall costs there.

Plus the library itself: adds/s with one durable commit per video vs one per batch, and
reopening with a valid index file vs rebuilding it from the catalogue.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from avajams.index import ExactBackend, HnswBackend, HnswParams, VideoIndex
from benchmarks._common import log, ratio, round_sig, target

DIM = 2048


def embedding_like(rng: np.random.Generator, n: int, dim: int = DIM) -> NDArray[np.float32]:
    """Clustered unit vectors of low intrinsic dimension (as tests/test_index_recall.py)."""
    lift = np.random.default_rng(99).standard_normal((64, dim)).astype(np.float32)
    centres = np.random.default_rng(98).standard_normal((200, 64)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, 10_000):  # in chunks: keeps the float64 temporaries small
        m = min(10_000, n - i)
        z = centres[rng.integers(0, 200, m)] + 0.5 * rng.standard_normal((m, 64))
        x = z.astype(np.float32) @ lift + 0.35 * rng.standard_normal((m, dim)).astype(np.float32)
        out[i : i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def uniform(rng: np.random.Generator, n: int, dim: int = DIM) -> NDArray[np.float32]:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _latencies(
    backend: Any, queries: NDArray[np.float32], k: int = 10
) -> tuple[list[float], NDArray[np.int64]]:
    times: list[float] = []
    found = []
    for q in queries:
        t0 = time.perf_counter()
        labels, _ = backend.search(q, k)
        times.append(time.perf_counter() - t0)
        found.append(labels)
    return times, np.stack(found)


def _recall(approx: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(t)) / k for a, t in zip(approx, truth, strict=True)]))


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def _case(
    name: str, data: NDArray[np.float32], queries: NDArray[np.float32], efs: list[int]
) -> list[dict[str, Any]]:
    n = len(data)
    labels = np.arange(n, dtype=np.int64)
    params = HnswParams()
    log(f"index: {name} n={n}: building hnswlib ({params.to_json()})")
    t0 = time.perf_counter()
    hnsw = HnswBackend(DIM, params, capacity=n)
    hnsw.add(labels, data)
    hnsw_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact = ExactBackend(DIM)
    exact.add(labels, data)
    exact_build = time.perf_counter() - t0
    log(f"index: {name} n={n}: querying")
    exact_times, truth = _latencies(exact, queries)
    rows = []
    for ef in efs:
        hnsw.params = HnswParams(params.M, params.ef_construction, ef)
        hnsw_times, approx = _latencies(hnsw, queries)
        rows.append(
            {
                "data": name,
                "n": n,
                "ef": ef,
                "hnsw_build_s": round_sig(hnsw_build),
                "exact_build_s": round_sig(exact_build),
                "hnsw_p50_ms": round_sig(_pct(hnsw_times, 50)),
                "hnsw_p99_ms": round_sig(_pct(hnsw_times, 99)),
                "exact_p50_ms": round_sig(_pct(exact_times, 50)),
                "exact_p99_ms": round_sig(_pct(exact_times, 99)),
                "recall@10": round_sig(_recall(approx, truth)),
                "p50_speedup": round_sig(ratio(_pct(exact_times, 50), _pct(hnsw_times, 50))),
            }
        )
    return rows


def _library_rows(quick: bool) -> dict[str, Any]:
    """Adds/s through VideoIndex (signature + 20 frames each) and reopen times."""
    n = 300 if quick else 2000
    rng = np.random.default_rng(7)
    sigs = embedding_like(rng, n)
    frames = embedding_like(rng, 20)
    root = Path(tempfile.mkdtemp(prefix="avajams-index-bench-"))
    try:
        out: dict[str, Any] = {"videos": n, "frames_per_video": 20}
        with VideoIndex.create(root / "a", dim=DIM, embedder_id="bench", backend="hnsw") as lib:
            t0 = time.perf_counter()
            for i in range(n // 10):
                lib.add(f"v{i}", sigs[i], frames=frames)
            out["adds_per_s_commit_each"] = round_sig((n // 10) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            with lib.transaction():
                for i in range(n // 10, n):
                    lib.add(f"v{i}", sigs[i], frames=frames)
            out["adds_per_s_one_transaction"] = round_sig(
                (n - n // 10) / (time.perf_counter() - t0)
            )
        t0 = time.perf_counter()
        VideoIndex.open(root / "a", readonly=True).close()
        out["open_with_index_file_s"] = round_sig(time.perf_counter() - t0)
        (root / "a" / "signatures.hnsw").unlink()
        quiet = logging.getLogger("avajams.index")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the "index file is missing" warning is expected here
        try:
            t0 = time.perf_counter()
            VideoIndex.open(root / "a", readonly=True).close()
            out["open_rebuilding_index_s"] = round_sig(time.perf_counter() - t0)
        finally:
            quiet.setLevel(level)
        out["catalogue_mb"] = round_sig((root / "a" / "catalogue.sqlite").stat().st_size / 1e6)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(quick: bool = False) -> dict[str, Any]:
    """Measure; ``quick`` uses 1e4 and 3e4 vectors (instead of 1e4 and 1e5) and fewer queries."""
    rng = np.random.default_rng(0)
    sizes = [10_000, 30_000] if quick else [10_000, 100_000]
    nq = 100 if quick else 300
    default_ef = HnswParams().ef
    rows: list[dict[str, Any]] = []
    for n in sizes:
        rows += _case("embedding", embedding_like(rng, n), embedding_like(rng, nq), [default_ef])
    rows += _case(
        "uniform",
        uniform(rng, 10_000),
        uniform(rng, nq),
        [default_ef, 512] if quick else [default_ef, 512, 2048],
    )
    library = _library_rows(quick)
    emb = [r for r in rows if r["data"] == "embedding"]
    big = emb[-1]
    return {
        "description": "hnswlib (default parameters) vs exact numpy search: "
        "build, latency, recall@10",
        "params": {
            "dim": DIM,
            "sizes": sizes,
            "queries": nq,
            "hnsw": HnswParams().to_json(),
            "quick": quick,
        },
        "rows": rows,
        "library": library,
        "ratios": {f"p50_speedup_hnsw_vs_exact_n{r['n']}": r["p50_speedup"] for r in emb}
        | {
            f"build_time_hnsw_over_exact_n{r['n']}": round_sig(
                ratio(r["hnsw_build_s"], r["exact_build_s"])
            )
            for r in emb
        }
        | {
            "reopen_rebuild_over_file": round_sig(
                ratio(library["open_rebuilding_index_s"], library["open_with_index_file_s"])
            ),
            "adds_batched_over_commit_each": round_sig(
                ratio(library["adds_per_s_one_transaction"], library["adds_per_s_commit_each"])
            ),
        },
        "targets": [
            target(f"recall@10 embedding n={r['n']}", r["recall@10"], ">= 0.99") for r in emb
        ]
        + [target(f"hnsw p50 faster than exact n={big['n']}", big["p50_speedup"], ">= 1")],
        "notes": [
            "uniform random 2048-d vectors have no neighbourhood structure: a graph index needs "
            "ef close to n to reach exact recall there, at which point brute force is faster",
        ]
        + (["quick mode measures 3e4 instead of 1e5 vectors"] if quick else []),
    }


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
