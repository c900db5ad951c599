"""Retrieval quality of the two embedders: recall@1 per transformation, on the same set.

The evaluation set is the benchmarks' own: the library videos (720p photo videos, sampled at
1 fps, 299x299) and, as queries, excerpts of them changed in one way each:

- ``re-shot clip``: the user-like clips of ``_media.query_clips`` (a zoomed crop, 640x360 at
  25 fps, re-encoded), sampled like any query;
- frame transformations applied to the library's own frames over the same two stretches of
  each video (:data:`TRANSFORMS`): a mirror image, a centre crop, darker and flatter,
  blurred, greyscale, heavy JPEG, letterboxed.

Two measures per transformation and embedder: **video recall@1** (the query's signature is
nearest its source video's signature) and **frame recall@1** (each query frame's nearest
library frame, over every library video, is its true source frame within one second). The
frame-level figure is the harder one and the one alignment needs.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageFilter

from benchmarks import _baselines, _media
from benchmarks._common import log, round_sig

Frames = NDArray[np.uint8]
MODELS = ("inception_v3", "efficientnet_lite0")


def _per_image(fn: Callable[[Image.Image], Image.Image]) -> Callable[[Frames], Frames]:
    def apply(images: Frames) -> Frames:
        out = [np.asarray(fn(Image.fromarray(im)).convert("RGB")) for im in images]
        return np.ascontiguousarray(np.stack(out))

    return apply


def _crop(image: Image.Image, keep: float = 0.6) -> Image.Image:
    w, h = image.size
    box = (w * (1 - keep) / 2, h * (1 - keep) / 2, w * (1 + keep) / 2, h * (1 + keep) / 2)
    return image.resize(image.size, Image.Resampling.BILINEAR, box=box)


def _dark(image: Image.Image) -> Image.Image:
    return ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(0.55)).enhance(0.6)


def _jpeg(image: Image.Image, quality: int = 8) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _letterbox(image: Image.Image) -> Image.Image:
    w, h = image.size
    inner = image.resize((w, h * 9 // 16), Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (w, h))
    canvas.paste(inner, (0, (h - inner.size[1]) // 2))
    return canvas


#: name -> transformation of a batch of 299x299 frames
TRANSFORMS: dict[str, Callable[[Frames], Frames]] = {
    "mirror": lambda images: np.ascontiguousarray(images[:, :, ::-1]),
    "centre crop 60%": _per_image(_crop),
    "darker, flatter": _per_image(_dark),
    "blur (radius 4)": _per_image(lambda im: im.filter(ImageFilter.GaussianBlur(4))),
    "greyscale": _per_image(lambda im: im.convert("L")),
    "JPEG quality 8": _per_image(_jpeg),
    "letterboxed 16:9": _per_image(_letterbox),
}


def _queries(quick: bool) -> dict[str, list[tuple[Frames, int, NDArray[np.intp]]]]:
    """transformation -> [(query frames, source video, source frame index per query frame)]."""
    spec = _media.spec(quick)
    length = _media.query_length(quick)
    library = [_media.sampled_frames(p) for p in _media.library_videos(quick)]
    out: dict[str, list[tuple[Frames, int, NDArray[np.intp]]]] = {"re-shot clip": []}
    for (path, source), j in zip(_media.query_clips(quick), [0, 1] * 8, strict=False):
        times, images = _media.sampled_frames(path)
        start = spec.duration * _media.QUERY_STARTS[j]
        truth = np.rint(start + times).astype(np.intp)  # the library samples whole seconds
        out["re-shot clip"].append((images, source, truth))
    for name, transform in TRANSFORMS.items():
        out[name] = []
        for source, (_, frames) in enumerate(library):
            for fraction in _media.QUERY_STARTS:
                first = round(spec.duration * fraction)
                index = np.arange(first, min(first + round(length), len(frames)))
                out[name].append((transform(frames[index]), source, index))
    return out


def recall(
    library: list[NDArray[np.float32]],
    queries: list[tuple[NDArray[np.float32], int, NDArray[np.intp]]],
) -> tuple[float, float]:
    """(video recall@1 by signature, frame recall@1 within one second)."""
    signatures = np.stack([_baselines.mean_signature(v) for v in library])
    owner = np.concatenate([np.full(len(v), i) for i, v in enumerate(library)])
    position = np.concatenate([np.arange(len(v)) for v in library])
    frames = np.concatenate(library)
    video_hits, frame_hits, frame_total = 0, 0, 0
    for vectors, source, truth in queries:
        video_hits += int(np.argmax(signatures @ _baselines.mean_signature(vectors)) == source)
        nearest = np.argmax(vectors @ frames.T, axis=1)
        ok = (owner[nearest] == source) & (np.abs(position[nearest] - truth) <= 1)
        frame_hits += int(ok.sum())
        frame_total += len(vectors)
    return video_hits / len(queries), frame_hits / frame_total


def run(quick: bool) -> dict[str, Any]:
    from avajams import load_embedder

    library_frames = [_media.sampled_frames(p)[1] for p in _media.library_videos(quick)]
    queries = _queries(quick)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for model in MODELS:
        embedder = load_embedder(model)
        log(f"retrieval: {model} on the library")
        library = [embedder.embed(images) for images in library_frames]
        results[model] = {}
        for name, items in queries.items():
            log(f"retrieval: {model}, {name}")
            embedded = [(embedder.embed(images), src, truth) for images, src, truth in items]
            results[model][name] = recall(library, embedded)
    rows: list[dict[str, Any]] = []
    for name, items in queries.items():
        row: dict[str, Any] = {
            "transformation": name,
            "queries": len(items),
            "frames": sum(len(images) for images, _, _ in items),
        }
        for model in MODELS:
            row[f"{model} video R@1"] = round_sig(results[model][name][0])
        for model in MODELS:
            row[f"{model} frame R@1"] = round_sig(results[model][name][1])
        rows.append(row)

    def mean(model: str, part: int) -> float:
        return float(np.mean([results[model][name][part] for name in queries]))

    return {
        "description": "recall@1 per transformation: Inception v3 vs EfficientNet-Lite0",
        "params": {
            "library_videos": len(library_frames),
            "library_frames": sum(len(f) for f in library_frames),
            "transformations": len(queries),
        },
        "rows": rows,
        "ratios": {
            f"{model}_mean_{measure}_recall@1": round_sig(mean(model, part))
            for model in MODELS
            for part, measure in ((0, "video"), (1, "frame"))
        },
        "notes": [
            "frame R@1: the nearest library frame (over all library videos) is the query "
            "frame's source, within one second; video R@1: the nearest signature is the source "
            "video's"
        ],
    }
