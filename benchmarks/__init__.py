"""avajams benchmarks: ``python -m benchmarks [NAME...] [--quick] [--json out.json]``.

Each benchmark is a function ``run(quick: bool) -> dict`` returning raw numbers and ratios
measured in the same run (absolute times on a shared machine are noise; ratios are not).
See ``benchmarks/README.md`` for what each one measures and the latest figures.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["BENCHMARKS", "Benchmark", "run_benchmark", "select"]


@dataclass(frozen=True)
class Benchmark:
    """A named benchmark: ``module.function(quick)`` returns its result dict."""

    name: str
    module: str
    function: str
    summary: str

    def load(self) -> Callable[[bool], dict[str, Any]]:
        fn: Callable[[bool], dict[str, Any]] = getattr(
            importlib.import_module(self.module), self.function
        )
        return fn


#: Every benchmark, in the order ``python -m benchmarks`` runs them.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            "sampling",
            "benchmarks.sampling_bench",
            "run",
            "1 fps sampling: avajams vs decode-every-frame vs ffmpeg seek per second",
        ),
        Benchmark(
            "embedding",
            "benchmarks.embedding_bench",
            "run",
            "Inception v3 and EfficientNet-Lite0 images/s; fraction of each one's fp32 limit",
        ),
        Benchmark(
            "retrieval",
            "benchmarks.retrieval_bench",
            "run",
            "recall@1 per transformation: Inception v3 vs EfficientNet-Lite0",
        ),
        Benchmark(
            "e2e",
            "benchmarks.e2e_bench",
            "run",
            "indexing N videos: avajams vs the original JPEG-per-second pipeline",
        ),
        Benchmark(
            "overlap",
            "benchmarks.e2e_bench",
            "run_overlap",
            "indexing time vs embedding-only time on the same frames",
        ),
        Benchmark(
            "labels",
            "benchmarks.e2e_bench",
            "run_labels",
            "indexing time with the ImageNet labeller beside the embedder vs without",
        ),
        Benchmark("index", "benchmarks.index_bench", "run", "library add/search speed and recall"),
        Benchmark("render", "benchmarks.render_bench", "run", "mashup rendering speed"),
        Benchmark(
            "cheap_inference",
            "benchmarks.cheap_inference_bench",
            "run",
            "int8 quantisation and near-duplicate frame skipping: speed vs quality",
        ),
        Benchmark(
            "web",
            "benchmarks.web_bench",
            "run",
            "avajams serve: upload to result page, RSS during a big upload, health p99",
        ),
        Benchmark(
            "scale",
            "benchmarks.scale_bench",
            "run",
            "local pipeline vs Ray on 1 and 2 nodes; decode cost per core; fp16; GPU rows",
        ),
        Benchmark(
            "quality",
            "benchmarks.quality_bench",
            "run",
            "finding music videos in real footage: recall per transformation, today vs regions",
        ),
    )
}


def select(names: Iterable[str]) -> list[Benchmark]:
    """The named benchmarks in registry order (all of them when ``names`` is empty)."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in BENCHMARKS]
    if unknown:
        raise KeyError(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from: {', '.join(BENCHMARKS)}"
        )
    if not wanted:
        return list(BENCHMARKS.values())
    return [b for name, b in BENCHMARKS.items() if name in wanted]


def run_benchmark(bench: Benchmark, quick: bool) -> dict[str, Any]:
    """Run one benchmark; a failure becomes an ``error`` entry instead of ending the run."""
    t0 = time.perf_counter()
    try:
        result = dict(bench.load()(quick))
    except Exception as exc:  # one broken benchmark must not lose the others' figures
        result = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    return result
