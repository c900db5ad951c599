"""Match quality on real footage: today's whole-frame method against the region-aware one.

The library holds the real clips of ``benchmarks/_real.py`` whose role is ``library`` plus
generated distractors (photo videos, ``avajams._testing.photo``), indexed with the real
Inception v3 model. Queries (``benchmarks/_queries.py``) are generated from the library clips,
for every transformation, with their truth. Both methods match every query through
``Pipeline.match`` on the same library; an embedding cache shared by the two makes the second
method reuse the first one's whole-frame vectors (the figures are unchanged by it: the same
frames give the same vectors), while latency is timed separately with no cache.

Reported per transformation and method: recall@1, recall@5, and for excerpts the alignment
accuracy (the match's aligned time pairs all within 1 s of the truth); the query latency;
the library size per video. A second part times one 60 s query against a 1,000-video library
of synthetic vectors (signatures and frames), each method interleaved with the other.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks import _media
from benchmarks._common import log, ratio, round_sig, target, timed
from benchmarks._queries import TRANSFORMS, Query, make_query
from benchmarks._real import CLIPS, fetch_clip

#: transformations whose recall is held to the PiP/excerpt bar, and the "clean copy"
HARD = ("pip", "excerpt")
CLEAN = "reencode"


class CachingEmbedder:
    """Wraps an embedder; identical images are embedded once (keyed by their bytes)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.id: str = inner.id
        self.dim: int = inner.dim
        self.input_size = getattr(inner, "input_size", None)
        self._cache: dict[bytes, NDArray[np.float32]] = {}
        self.embedded = 0
        self.requested = 0  # images asked for, cached or not: what a query costs without cache

    def embed(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        self.requested += len(images)
        keys = [hashlib.blake2b(im.tobytes(), digest_size=16).digest() for im in images]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            vecs = self.inner.embed(images[missing])
            self.embedded += len(missing)
            for i, v in zip(missing, vecs, strict=True):
                self._cache[keys[i]] = v
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._cache[k] for k in keys])


@dataclass(frozen=True)
class Method:
    name: str
    config: dict[str, Any]
    about: str


#: today's method and the new one; ``config`` is the ``PipelineConfig`` ``[library]`` section
METHODS: tuple[Method, ...] = (
    Method(
        "today",
        {"match": "frames"},
        "whole-frame signature search, then chamfer re-rank (mean of each query frame's best)",
    ),
    Method(
        "regions",
        {"match": "regions"},
        "whole frame plus query-side regions, signature search per region track, then "
        "temporal alignment (best diagonal run) re-rank",
    ),
)


def _distractors(count: int) -> list[Path]:
    from avajams.photo import PHOTOS, make_photo_video

    names = list(PHOTOS)
    out = []
    for i in range(count):
        photos = [names[(i * 3 + j) % len(names)] for j in range(3)]
        path = _media.cache_dir() / f"distractor{i}_320x240_12s.mp4"
        if not path.exists():
            make_photo_video(
                path, photos=photos, duration=12.0, fps=24.0, size=(320, 240), seed=500 + i,
                audio=None, shot_seconds=4.0,
            )  # fmt: skip
        out.append(path)
    return out


def _library_clips() -> dict[str, Path]:
    return {c.name: fetch_clip(c) for c in CLIPS.values() if c.role == "library"}


def _hosts() -> list[Path]:
    return [fetch_clip(c) for c in CLIPS.values() if c.role == "host"]


def build_queries(variants: int) -> list[Query]:
    """Every (transformation, library clip, variant) query, generated once into the media dir."""
    clips = _library_clips()
    hosts = _hosts()
    out_dir = _media.cache_dir() / "quality-queries"
    queries = []
    for transform in TRANSFORMS:
        for key, path in clips.items():
            for v in range(variants):
                queries.append(make_query(out_dir, transform, key, path, hosts, v))
    return queries


def _pipeline(library: Path, embedder: Any, method: Method) -> Any:
    from avajams import Pipeline, PipelineConfig

    config = PipelineConfig.from_mapping({"library": {"directory": str(library), **method.config}})
    return Pipeline(config, embedder=embedder)


def _rank(matches: Sequence[Any], key: str) -> int | None:
    for i, m in enumerate(matches):
        if m.metadata.get("clip") == key or Path(m.path or "").stem == key:
            return i + 1
    return None


def _aligned_ok(match: Any, query: Query) -> bool:
    """The match's aligned pairs that fall in the query span it reports (or, without a span,
    in the true span) are all within 1 s of the truth; and the reported span overlaps it."""
    truth = query.truth
    span = getattr(match, "span", None)
    if span is not None:
        lo, hi = span.query_start, span.query_end
        overlap = min(hi, truth.query_end) - max(lo, truth.query_start)
        if overlap < 0.5 * min(hi - lo, truth.query_end - truth.query_start):
            return False
    else:
        lo, hi = truth.query_start, truth.query_end
    pairs = [p for p in match.aligned if lo - 1e-6 <= p.query_time <= hi + 1e-6]
    if not pairs:
        return False
    return all(abs(p.music_time - truth.music_time(p.query_time)) <= 1.0 for p in pairs)


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _library_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def run(quick: bool) -> dict[str, Any]:
    from avajams import Pipeline, PipelineConfig
    from avajams.embedding import load_embedder

    variants = 1 if quick else 2
    n_distractors = 10 if quick else 40
    log("fetching the real clips")
    clips = _library_clips()
    log("generating queries")
    queries = build_queries(variants)
    embedder = CachingEmbedder(load_embedder("inception_v3"))
    library = _media.scratch_dir("quality-lib-")
    log(f"indexing {len(clips)} real clips + {n_distractors} distractors")
    link_dir = library / "videos"
    link_dir.mkdir()
    for key, path in clips.items():  # named by key: the rank is read from the file name
        shutil.copyfile(path, link_dir / f"{key}{path.suffix}")
    for path in _distractors(n_distractors):
        shutil.copyfile(path, link_dir / path.name)
    lib_dir = library / "lib"
    sizes: dict[str, Any] = {}
    for method in METHODS:
        d = lib_dir / method.name
        with Pipeline(
            PipelineConfig.from_mapping({"library": {"directory": str(d), **method.config}}),
            embedder=embedder,
        ) as pipe:
            summary = pipe.index([link_dir], show_progress=False)
            if summary.failed:
                raise RuntimeError(f"indexing failed: {summary.failed}")
            n = len(pipe.open_library(readonly=True))
        sizes[method.name] = {"videos": n, "bytes_per_video": _library_bytes(d) / n}

    results: dict[str, list[dict[str, Any]]] = {m.name: [] for m in METHODS}
    for qi, query in enumerate(queries):
        for method in METHODS:
            with _pipeline(lib_dir / method.name, embedder, method) as pipe:
                asked = embedder.requested
                matches = pipe.match(query.path, k=5)
                embedded = embedder.requested - asked
            rank = _rank(matches, query.truth.key)
            row: dict[str, Any] = {
                "query": query.path.name,
                "transform": query.transform,
                "rank": rank,
                "images_embedded": embedded,
            }
            if rank == 1:
                top = matches[0]
                row["aligned_ok"] = _aligned_ok(top, query)
                box = getattr(top, "box", None)
                if query.truth.box is not None and box is not None:
                    row["box_iou"] = _box_iou(box, query.truth.box)
            results[method.name].append(row)
        if qi % 10 == 0:
            log(f"query {qi + 1}/{len(queries)}")

    rows = []
    for transform in (*TRANSFORMS, "overall"):
        summary_row: dict[str, Any] = {"transform": transform}
        for method in METHODS:
            rs = [r for r in results[method.name] if transform in ("overall", r["transform"])]
            r1 = sum(r["rank"] == 1 for r in rs) / len(rs)
            r5 = sum(r["rank"] is not None for r in rs) / len(rs)
            summary_row[f"{method.name} r@1"] = round_sig(r1)
            summary_row[f"{method.name} r@5"] = round_sig(r5)
            ok = [r.get("aligned_ok", False) for r in rs]
            summary_row[f"{method.name} align"] = round_sig(sum(ok) / len(ok))
        ious = [r["box_iou"] for r in results[METHODS[-1].name] if "box_iou" in r
                and transform in ("overall", r["transform"])]  # fmt: skip
        summary_row["box IoU (median)"] = round_sig(statistics.median(ious)) if ious else None
        summary_row["queries"] = len(
            [r for r in results[METHODS[0].name] if transform in ("overall", r["transform"])]
        )
        rows.append(summary_row)
    new = METHODS[-1].name
    by = {r["transform"]: r for r in rows}
    targets = [
        target("recall@1 overall", by["overall"][f"{new} r@1"], ">= 0.97"),
        target("recall@1 picture-in-picture", by["pip"][f"{new} r@1"], ">= 0.9"),
        target("recall@1 excerpts", by["excerpt"][f"{new} r@1"], ">= 0.9"),
        target(
            "recall@1 worst transformation",
            min(by[t][f"{new} r@1"] for t in TRANSFORMS),
            ">= 0.85",
        ),
        target("recall@1 clean copies (re-encode)", by[CLEAN][f"{new} r@1"], ">= 0.99"),
        target(
            "library size per video vs today",
            ratio(sizes[new]["bytes_per_video"], sizes["today"]["bytes_per_video"]),
            "<= 2",
        ),
    ]
    images = {m.name: sum(r["images_embedded"] for r in results[m.name]) for m in METHODS}
    ious = [r["box_iou"] for r in results[new] if "box_iou" in r]
    out: dict[str, Any] = {
        "description": (
            f"recall on {len(queries)} queries of real footage ({len(clips)} library clips x "
            f"{len(TRANSFORMS)} transformations x {variants}) against {len(clips)} clips + "
            f"{n_distractors} distractors"
        ),
        "params": {
            "clips": {k: CLIPS[k].about for k in clips},
            "hosts": [c.about for c in CLIPS.values() if c.role == "host"],
            "methods": {m.name: m.about for m in METHODS},
        },
        "rows": rows,
        "ratios": {
            "images_embedded_per_query_today": round_sig(images["today"] / len(queries)),
            f"images_embedded_per_query_{new}": round_sig(images[new] / len(queries)),
            "images_embedded_ratio": round_sig(ratio(images[new], images["today"])),
            "bytes_per_video_today": round_sig(sizes["today"]["bytes_per_video"]),
            f"bytes_per_video_{new}": round_sig(sizes[new]["bytes_per_video"]),
            "box_iou_median": round_sig(statistics.median(ious)) if ious else float("nan"),
        },
        "targets": targets,
        "per_query": results,
    }
    timing = _query_time(quick, embedder.inner)
    out["ratios"].update(timing["ratios"])
    out["targets"].append(timing["target"])
    out["notes"] = timing["notes"]
    return out


def _synthetic_library(
    directory: Path, videos: int, frames: int, dim: int, embedder_id: str
) -> None:
    from avajams.index import VideoIndex

    rng = np.random.default_rng(0)
    with VideoIndex.create(directory, dim=dim, embedder_id=embedder_id) as lib, lib.transaction():
        for i in range(videos):
            # Inception pool features are non-negative: keep the synthetic ones so too
            f = np.abs(rng.normal(size=(frames, dim))).astype(np.float32)
            lib.add(
                f"synthetic-{i}", f.mean(axis=0), frames=f, times=np.arange(frames, dtype=float)
            )


def _query_time(quick: bool, embedder: Any) -> dict[str, Any]:
    """One 60 s real query against 1,000 synthetic videos: each method's ``Pipeline.match``."""
    from avajams import Pipeline, PipelineConfig

    videos, frames = 1000, (60 if quick else 200)
    base = _media.scratch_dir("quality-time-")
    log(f"building a synthetic library of {videos} videos x {frames} frames")
    _synthetic_library(base / "lib", videos, frames, embedder.dim, embedder.id)
    query = _media.cache_dir() / "quality-query-60s.mp4"
    if not query.exists():
        from avajams.photo import make_excerpt

        make_excerpt(fetch_clip(CLIPS["pedestrians"]), query, start=5.0, duration=60.0, zoom=1.1,
                     size=(640, 360), fps=25.0)  # fmt: skip
    walls: dict[str, list[float]] = {m.name: [] for m in METHODS}
    cpus: dict[str, list[float]] = {m.name: [] for m in METHODS}
    repeats = 1 if quick else 3
    for _ in range(repeats):
        for method in METHODS:
            config = PipelineConfig.from_mapping(
                {"library": {"directory": str(base / "lib"), **method.config}}
            )
            with Pipeline(config, embedder=embedder) as pipe:
                pipe.open_library(readonly=True)
                timing, _ = timed(partial(pipe.match, query, k=5))
                walls[method.name].append(timing.wall)
                cpus[method.name].append(timing.cpu)
    best = {k: min(v) for k, v in walls.items()}
    cpu = {k: min(v) for k, v in cpus.items()}
    new = METHODS[-1].name
    r = ratio(best[new], best["today"])
    return {
        "ratios": {
            "query_60s_vs_1000_today_s": round_sig(best["today"]),
            f"query_60s_vs_1000_{new}_s": round_sig(best[new]),
            "query_60s_vs_1000_ratio": round_sig(r),
            "query_60s_vs_1000_today_cpu_s": round_sig(cpu["today"]),
            f"query_60s_vs_1000_{new}_cpu_s": round_sig(cpu[new]),
            "query_60s_vs_1000_cpu_ratio": round_sig(ratio(cpu[new], cpu["today"])),
        },
        "target": target("60 s query vs 1,000 videos, time vs today", r, "<= 2"),
        "notes": [
            f"query time: one 60 s 640x360 query, {videos} synthetic library videos of {frames} "
            f"frames each (random non-negative 2048-d vectors), best of {repeats}, methods "
            "interleaved, the real Inception model, no embedding cache",
        ],
    }
