"""End-to-end indexing: avajams vs the original pipeline, and decode/inference overlap.

``e2e``: index N generated 720p videos (files in, signatures in a library on disk) with
``avajams.Pipeline.index`` and with the original project's pipeline rebuilt here (one ffmpeg
seek per second writing JPEGs, then each JPEG loaded and embedded alone, signatures added to a
library). Both use the same model; the original's embedder runs each image over every core
(its best setting for one image at a time), avajams' runs its default (each batch split over
concurrent single-threaded runs).

``overlap``: the same ``Pipeline.index`` run against embedding alone — the very frames the
sampler produces, decoded beforehand and pushed through the same embedder in the pipeline's
batch size. When decoding hides behind inference the two take the same time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks import _baselines, _media
from benchmarks._common import (
    Timing,
    best,
    log,
    ratio,
    round_sig,
    target,
    timed,
)


def _count(quick: bool) -> int:
    return 2


def avajams_index(
    paths: list[Path],
    embedder: Any,
    library_dir: Path,
    *,
    decode_threads: int | None = None,
    labeller: Any = False,
) -> tuple[Any, dict[str, NDArray[np.float32]]]:
    """``Pipeline.index`` into a fresh library; returns the summary and ``{path: signature}``.

    ``decode_threads`` overrides ``[sampler] threads`` (FFmpeg threads per video). Labels are
    off unless ``labeller`` (a :class:`avajams.Labeller`) is given: these benchmarks measure
    the embedding pipeline; ``labels`` measures what the labeller adds."""
    from avajams import Pipeline, PipelineConfig
    from avajams.index import content_hash

    if library_dir.exists():
        shutil.rmtree(library_dir)
    config = PipelineConfig()
    if decode_threads is not None:
        sampler = config.sampler.model_copy(update={"threads": decode_threads})
        config = config.model_copy(update={"sampler": sampler})
    with Pipeline(config, embedder=embedder, library=library_dir, labeller=labeller) as pipeline:
        summary = pipeline.index(paths, show_progress=False)
        if not summary.ok:
            raise RuntimeError(f"avajams failed to index: {summary.failed}")
        library = pipeline.open_library()
        signatures = {}
        for path in paths:
            key = library.find_by_hash(content_hash(path))
            if key is None:
                raise RuntimeError(f"{path} is not in the library after indexing")
            signature = library.get(key).signature
            assert signature is not None
            signatures[os.fspath(path)] = signature
    return summary, signatures


def original_index(
    paths: list[Path], embedder: Any, work_dir: Path
) -> dict[str, NDArray[np.float32]]:
    """The original pipeline, its signatures written to a library like avajams' are."""
    from avajams import VideoIndex

    if work_dir.exists():
        shutil.rmtree(work_dir)
    signatures = _baselines.original_index(paths, embedder, work_dir / "jpegs")
    with VideoIndex.create(work_dir / "library", dim=embedder.dim, embedder_id=embedder.id) as lib:
        for path, signature in signatures.items():
            lib.add(Path(path).stem, signature, path=path)
    return signatures


def _setup(quick: bool, threads: int = 0) -> tuple[list[Path], Any, float]:
    from avajams import load_embedder

    paths = _media.library_videos(quick, count=_count(quick))
    embedder = load_embedder("inception_v3", threads=threads)
    embedder.embed(np.zeros((2, 299, 299, 3), np.uint8))  # session made outside the timings
    seconds = sum(_baselines.video_duration(p) for p in paths)
    return paths, embedder, seconds


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(quick: bool) -> dict[str, Any]:
    paths, embedder, seconds = _setup(quick)
    # the same model for the original, set up at its best for one image at a time: one run
    # over every core (avajams' default splits a batch over single-threaded runs instead)
    _, one_at_a_time, _ = _setup(quick, threads=_cores())
    work = _media.scratch_dir("e2e-")
    log(f"e2e: avajams Pipeline.index on {len(paths)} videos ({seconds:.0f} s of video)")
    ours, (summary, ours_sigs) = timed(lambda: avajams_index(paths, embedder, work / "avajams"))
    log("e2e: original-style pipeline (ffmpeg seek JPEGs, embed one at a time)")
    theirs, their_sigs = timed(lambda: original_index(paths, one_at_a_time, work / "original"))
    cosines = [float(ours_sigs[k] @ their_sigs[k]) for k in ours_sigs]
    jpeg_count = sum(1 for _ in (work / "original" / "jpegs").rglob("*.jpg"))
    speedup = ratio(theirs.wall, ours.wall)
    rows = [
        _row("avajams Pipeline.index", ours, summary.frames, seconds),
        _row("original: seek JPEGs + embed one at a time", theirs, jpeg_count, seconds),
    ]
    return {
        "description": f"indexing {len(paths)} 720p30 videos into a library, same model",
        "params": {
            "videos": len(paths),
            "video_seconds": round_sig(seconds),
            "batch_size": getattr(embedder, "batch_size", None),
        },
        "rows": rows,
        "ratios": {
            "avajams_speedup_vs_original": round_sig(speedup),
            "signature_cosine_avajams_vs_original_min": round_sig(min(cosines)),
        },
        "targets": [target("e2e indexing speedup vs original-style", speedup, ">= 3")],
        "avajams_stage_seconds": {k: round_sig(v) for k, v in summary.timings.items()},
    }


def run_labels(quick: bool) -> dict[str, Any]:
    """Indexing with the labeller beside the embedder vs without it, same videos."""
    from avajams import Labeller

    paths, embedder, seconds = _setup(quick)
    labeller = Labeller()
    labeller.probabilities(np.zeros((2, 299, 299, 3), np.uint8))  # session made beforehand
    work = _media.scratch_dir("labels-")
    repeats = 2 if quick else 3
    off: list[Timing] = []
    on: list[Timing] = []
    summaries = []
    for _ in range(repeats):  # interleaved: noise lands on both cases
        log("labels: Pipeline.index without labels")
        off.append(timed(lambda: avajams_index(paths, embedder, work / "off"))[0])
        log("labels: Pipeline.index with the labeller")
        t, (summary, _) = timed(
            lambda: avajams_index(paths, embedder, work / "on", labeller=labeller)
        )
        on.append(t)
        summaries.append(summary)
    off_best, on_best = best(off), best(on)
    summary = summaries[on.index(on_best)]
    overhead = ratio(on_best.wall, off_best.wall)
    label_s = summary.timings.get("label", 0.0)
    return {
        "description": "indexing time with ImageNet labels (EfficientNet-Lite0 beside "
        "Inception v3) vs without",
        "params": {"videos": len(paths), "frames": summary.frames, "repeats": repeats},
        "rows": [
            _row("Pipeline.index, labels off", off_best, summary.frames, seconds),
            _row("Pipeline.index, labels on", on_best, summary.frames, seconds),
        ],
        "ratios": {
            "labels_on_over_off_wall": round_sig(overhead),
            "labels_on_over_off_cpu": round_sig(ratio(on_best.cpu, off_best.cpu)),
            "labeller_seconds_in_best_run": round_sig(label_s),
            "labeller_share_of_embed_time": round_sig(
                ratio(label_s, summary.timings.get("embed", 0.0))
            ),
        },
        "targets": [target("indexing time with labels / without", overhead, "<= 1.10")],
        "avajams_stage_seconds": {k: round_sig(v) for k, v in summary.timings.items()},
    }


def _row(case: str, t: Timing, frames: int, seconds: float) -> dict[str, Any]:
    return {
        "case": case,
        "seconds": round_sig(t.wall),
        "cpu_s": round_sig(t.cpu),
        "frames": frames,
        "frames_per_s": round_sig(ratio(frames, t.wall)),
        "x_realtime": round_sig(ratio(seconds, t.wall)),
    }


def run_overlap(quick: bool) -> dict[str, Any]:
    from avajams import PipelineConfig

    paths, embedder, seconds = _setup(quick)
    work = _media.scratch_dir("overlap-")
    # the frames the pipeline's sampler yields, decoded up front; the CPU that decoding
    # costs is what the pipeline must fit beside inference
    sampler = PipelineConfig().sampler.build()  # the pipeline's own sampler settings
    sample_time, sampled = timed(lambda: [sampler.sample(p) for p in paths])
    frames = np.ascontiguousarray(np.concatenate([s.images for s in sampled]))
    batch = int(getattr(embedder, "batch_size", 16))

    def embed_only() -> None:
        for start in range(0, len(frames), batch):
            embedder.embed(frames[start : start + batch])

    repeats = 1 if quick else 2
    e2e: list[Timing] = []
    e2e_one: list[Timing] = []
    alone: list[Timing] = []
    summaries = []
    for _ in range(repeats):  # interleaved: noise lands on every case
        log(f"overlap: embedding only ({len(frames)} frames)")
        alone.append(timed(embed_only)[0])
        log("overlap: Pipeline.index")
        t, (summary, _) = timed(lambda: avajams_index(paths, embedder, work / "lib"))
        e2e.append(t)
        summaries.append(summary)
        log("overlap: Pipeline.index, FFmpeg's own thread count per video")
        one = lambda: avajams_index(paths, embedder, work / "lib1", decode_threads=0)  # noqa: E731
        e2e_one.append(timed(one)[0])
    e2e_best, alone_best, one_best = best(e2e), best(alone), best(e2e_one)
    overhead = ratio(e2e_best.wall, alone_best.wall)
    summary = summaries[e2e.index(e2e_best)]
    cores = _cores()
    # With every core busy, no schedule beats (inference CPU + decoding CPU) / cores.
    floor = max(1.0, ratio(alone_best.cpu + sample_time.cpu, cores * alone_best.wall))
    return {
        "description": "Pipeline.index vs embedding the same frames alone (decode hidden?)",
        "params": {
            "videos": len(paths),
            "frames": len(frames),
            "batch_size": batch,
            "repeats": repeats,
        },
        "rows": [
            _row("sampling only (FrameSampler)", sample_time, len(frames), seconds),
            _row("embedding only (frames decoded beforehand)", alone_best, len(frames), seconds),
            _row(
                "avajams Pipeline.index (decode + embed + write)", e2e_best, summary.frames, seconds
            ),
            _row("same, [sampler] threads = 0 (FFmpeg decides)", one_best, summary.frames, seconds),
        ],
        "ratios": {
            "e2e_over_embedding_only": round_sig(overhead),
            "e2e_threads0_over_embedding_only": round_sig(ratio(one_best.wall, alone_best.wall)),
            "decode_cpu_over_inference_cpu": round_sig(ratio(sample_time.cpu, alone_best.cpu)),
            "cpu_bound_floor": round_sig(floor),
        },
        "targets": [target("e2e time / embedding-only time", overhead, "<= 1.15")],
        "avajams_stage_seconds": {k: round_sig(v) for k, v in summary.timings.items()},
        "notes": [
            "cpu_bound_floor: (inference CPU + decoding CPU) / (cores x embedding-only time), "
            "the least e2e/embedding-only ratio any overlap can reach once inference already "
            "keeps every core busy",
        ],
    }
