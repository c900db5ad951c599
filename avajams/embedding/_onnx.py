"""The ONNX embedder: a model from the cache run on onnxruntime."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from avajams._progress import ProgressCallback
from avajams.embedding._model import (
    DEFAULT_SOURCE,
    EFFICIENTNET_SOURCE,
    ModelInfo,
    ensure_model,
    read_model_info,
)
from avajams.embedding._protocol import DEFAULT_BATCH_SIZE, check_images, l2_normalize
from avajams.errors import ConfigError, EmbedderError, ModelError, ProviderError

__all__ = ["AUTO_PROVIDERS", "Classification", "OnnxEmbedder", "ProviderSpec", "auto_providers"]

logger = logging.getLogger(__name__)

#: an execution provider name, or ``(name, options)`` as onnxruntime accepts them
ProviderSpec = str | tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Classification:
    """Class labels of a sequence of frames (from a model with class logits).

    ``probabilities`` is the softmax per frame ``(N, classes)``; ``frames`` the ``top`` labels of
    each frame and ``video`` the ``top`` labels of the frames' mean probability, best first, as
    ``(label, probability)`` pairs.
    """

    probabilities: npt.NDArray[np.float32]
    frames: list[list[tuple[str, float]]]
    video: list[tuple[str, float]]


class OnnxEmbedder:
    """An :class:`~avajams.embedding.Embedder` backed by an ONNX model built by avajams.

    ``model`` is a model directory (``model.onnx`` + ``manifest.json``) or a ``ModelInfo``. The
    graph takes uint8 RGB NHWC at ``input_size`` and does its own normalisation, so an image at
    exactly ``input_size`` reaches the network untouched; other sizes are stretched to it with
    Pillow's antialiased bilinear filter. Rows are L2-normalised.

    ``providers`` are onnxruntime execution providers in priority order (default CPU); they are
    checked against what this onnxruntime offers when the embedder is made. ``["auto"]`` takes
    the best this machine offers: TensorRT, CUDA, then CPU (:func:`auto_providers`).
    ``batch_size`` images go through the network per run; ``threads`` is onnxruntime's intra-op
    thread count for one run. ``threads=0`` (the default) uses every core on the CPU provider as
    concurrent single-threaded runs, each over a share of the batch: as fast as one run over all
    cores on an idle machine, and much faster when other work (decoding, other processes)
    competes for the cores, since no run waits at every layer for a descheduled sibling thread.
    The session is created on first use; ``embed`` may be called from several threads at once.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelInfo,
        *,
        providers: Sequence[ProviderSpec] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 0,
    ) -> None:
        info = model if isinstance(model, ModelInfo) else read_model_info(model)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ConfigError(
                f"threads must be an integer >= 0 (0 = one per core), got {threads!r}"
            )
        self._info = info
        manifest = info.manifest
        try:
            shape = manifest["input"]["shape"]
            self.id: str = str(manifest["embedder_id"])
            self.dim: int = int(manifest["dim"])
            # a model with symbolic height and width resizes inside its graph: any size works
            self.input_size: tuple[int, int] | None = (
                (int(shape[2]), int(shape[1]))
                if isinstance(shape[1], int) and isinstance(shape[2], int)
                else None
            )
            self._input_name = str(manifest["input"]["name"])
            self._output_name = str(manifest["outputs"][0]["name"])
            outputs = {str(o["name"]) for o in manifest["outputs"]}
            labels = manifest.get("labels")
            self.labels: tuple[str, ...] | None = (
                tuple(str(x) for x in labels) if labels and "logits" in outputs else None
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model manifest in {info.directory} is incomplete ({exc}); "
                "run `avajams model fetch --force`",
                path=info.directory,
            ) from exc
        self.providers: tuple[ProviderSpec, ...] = _validate_providers(providers)
        self.batch_size = batch_size
        self.threads = threads
        cpu_only = all(_provider_name(p) == "CPUExecutionProvider" for p in self.providers)
        self._workers = _usable_cores() if threads == 0 and cpu_only else 1
        self._pool: ThreadPoolExecutor | None = None
        self._session: Any = None
        self._lock = threading.Lock()

    @classmethod
    def inception_v3(
        cls,
        source: str = DEFAULT_SOURCE,
        *,
        providers: Sequence[ProviderSpec] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 0,
        precision: str = "fp32",
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> OnnxEmbedder:
        """The default Inception v3 embedder, building the model into the cache on first use.

        ``precision="int8"`` runs an int8 copy of the model (quantised once, into the cache):
        about 1.6x faster on a CPU, signatures about 0.99 cosine from fp32's; it has its own
        embedder id, so its libraries never mix with fp32 ones (see docs/performance.md).
        ``precision="fp16"`` runs a half-precision copy (converted once) for GPUs, signatures
        0.99999 cosine from fp32's, also with its own id (see docs/scale.md).
        """
        if precision not in ("fp32", "int8", "fp16"):
            raise ConfigError(f"precision must be 'fp32', 'int8' or 'fp16', got {precision!r}")
        info = ensure_model(source, show_progress=show_progress, progress=progress)
        if precision == "int8":
            from avajams.embedding._quantize import ensure_int8_model

            info = ensure_int8_model(info, show_progress=show_progress, progress=progress)
        elif precision == "fp16":
            from avajams.embedding._fp16 import ensure_fp16_model

            info = ensure_fp16_model(info, show_progress=show_progress, progress=progress)
        return cls(info, providers=providers, batch_size=batch_size, threads=threads)

    @classmethod
    def efficientnet_lite0(
        cls,
        *,
        providers: Sequence[ProviderSpec] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int = 0,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> OnnxEmbedder:
        """EfficientNet-Lite0 (1280-d features and ImageNet labels), built on first use.

        15x fewer FLOPs per image than Inception v3 (0.77 against 11.4 GFLOP); any image size
        goes in (the graph resizes the shorter side to 256 and crops the centre 224x224).
        :meth:`classify` gives its ImageNet labels.
        """
        info = ensure_model(EFFICIENTNET_SOURCE, show_progress=show_progress, progress=progress)
        return cls(info, providers=providers, batch_size=batch_size, threads=threads)

    @property
    def model_path(self) -> str:
        """The ONNX file this embedder runs."""
        return os.fspath(self._info.path)

    @property
    def manifest(self) -> dict[str, Any]:
        """The model's manifest (source, hashes, input contract, outputs)."""
        return dict(self._info.manifest)

    def session_providers(self) -> list[str]:
        """The providers the onnxruntime session actually uses (creates the session)."""
        return list(self._get_session().get_providers())

    def _get_session(self) -> Any:
        session = self._session
        if session is not None:
            return session
        with self._lock:
            if self._session is None:
                self._session = self._create_session()
            return self._session

    def _create_session(self) -> Any:
        import onnxruntime as ort

        self._info.verify()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.intra_op_num_threads = 1 if self._workers > 1 else self.threads
        with warnings.catch_warnings():
            # onnxruntime warns about providers it lacks; we say it more precisely below
            warnings.filterwarnings("ignore", message=".*provider.*", category=UserWarning)
            try:
                session = ort.InferenceSession(
                    self.model_path, sess_options=options, providers=list(self.providers)
                )
            except Exception as exc:  # onnxruntime raises its own untyped exceptions
                raise ModelError(
                    f"onnxruntime cannot load {self.model_path}: {exc}; "
                    "run `avajams model fetch --force` if the file is damaged",
                    path=self.model_path,
                ) from exc
        active = set(session.get_providers())
        missing = [_provider_name(p) for p in self.providers if _provider_name(p) not in active]
        if missing:
            message = (
                f"onnxruntime did not enable {', '.join(missing)} (using "
                f"{', '.join(session.get_providers())}); embedding runs there instead. Check the "
                "CUDA/cuDNN installation that onnxruntime-gpu needs."
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)
        return session

    def embed(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Unit vectors ``(N, dim)`` float32 of uint8 RGB images ``(N, H, W, 3)``."""
        images = check_images(images)
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._run(images, self._output_name, self.dim))

    def classify(self, images: npt.NDArray[np.uint8], top: int = 5) -> Classification:
        """ImageNet class labels per frame and for the whole sequence of ``images``.

        Only models with class logits have labels (``efficientnet_lite0``, or ``avajams model
        fetch --source torchvision``); others raise ``EmbedderError``.
        """
        if self.labels is None:
            raise EmbedderError(
                f"model {self.id} has no class logits; for ImageNet labels use "
                "load_embedder('efficientnet_lite0') or avajams.labels.Labeller, or build "
                "Inception v3 with logits: `avajams model fetch --source torchvision`"
            )
        images = check_images(images)
        if len(images) == 0:
            raise EmbedderError("classify needs at least one image")
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top must be a positive integer, got {top!r}")
        probs = self.class_probabilities(images).astype(np.float64)
        return Classification(
            probabilities=probs.astype(np.float32),
            frames=[self._top(p, top) for p in probs],
            video=self._top(probs.mean(axis=0), top),
        )

    def class_probabilities(self, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Softmax over the class logits, ``(N, classes)``, of uint8 RGB images (N >= 1)."""
        if self.labels is None:
            raise EmbedderError(f"model {self.id} has no class logits")
        return _softmax(self._run(check_images(images), "logits", len(self.labels)))

    def _top(self, probs: npt.NDArray[np.float64], top: int) -> list[tuple[str, float]]:
        assert self.labels is not None
        order = np.argsort(-probs, kind="stable")[:top]
        return [(self.labels[i], float(probs[i])) for i in order]

    def embed_with_probabilities(
        self, images: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """``embed`` and :meth:`class_probabilities` of the same images from one run of a
        model with class logits (what the labeller needs when it is also the embedder)."""
        if self.labels is None:
            raise EmbedderError(f"model {self.id} has no class logits")
        images = check_images(images)
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, len(self.labels)), np.float32)
        features, logits = self._run_outputs(
            images, [(self._output_name, self.dim), ("logits", len(self.labels))]
        )
        return l2_normalize(features), _softmax(logits)

    def _run(
        self, images: npt.NDArray[np.uint8], output: str, width: int
    ) -> npt.NDArray[np.float32]:
        return self._run_outputs(images, [(output, width)])[0]

    def _run_outputs(
        self, images: npt.NDArray[np.uint8], outputs: list[tuple[str, int]]
    ) -> list[npt.NDArray[np.float32]]:
        images = _resize(images, self.input_size)
        session = self._get_session()
        names = [name for name, _ in outputs]
        outs = [np.empty((len(images), width), np.float32) for _, width in outputs]
        # concurrent single-threaded runs take equal shares of each batch
        step = -(-min(self.batch_size, len(images)) // self._workers)
        spans = [(s, min(s + step, len(images))) for s in range(0, len(images), step)]

        def run(span: tuple[int, int]) -> None:
            start, end = span
            batch = np.ascontiguousarray(images[start:end])
            results = session.run(names, {self._input_name: batch})
            for out, result in zip(outs, results, strict=True):
                out[start:end] = result

        if len(spans) > 1 and self._workers > 1:
            list(self._get_pool().map(run, spans))
        else:
            for span in spans:
                run(span)
        return outs

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="avajams-onnx")
            return self._pool

    def close(self) -> None:
        """Release the onnxruntime session (a later ``embed`` creates a new one); idempotent."""
        with self._lock:
            self._session = None
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def __enter__(self) -> OnnxEmbedder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"OnnxEmbedder(id={self.id!r}, dim={self.dim}, "
            f"providers={[_provider_name(p) for p in self.providers]}, "
            f"batch_size={self.batch_size})"
        )


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Row-wise softmax, computed in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32)


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _provider_name(spec: ProviderSpec) -> str:
    return spec if isinstance(spec, str) else spec[0]


#: What ``providers=["auto"]`` tries, best first; only those this onnxruntime offers are kept.
AUTO_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def auto_providers() -> tuple[str, ...]:
    """The execution providers ``"auto"`` stands for here: TensorRT, CUDA, then CPU, as offered.

    TensorRT is taken only with CUDA beside it (it hands the nodes it cannot run to CUDA).
    """
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    chosen = [p for p in AUTO_PROVIDERS if p in available]
    if "CUDAExecutionProvider" not in chosen and "TensorrtExecutionProvider" in chosen:
        chosen.remove("TensorrtExecutionProvider")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return tuple(chosen)


def _validate_providers(providers: Sequence[ProviderSpec] | None) -> tuple[ProviderSpec, ...]:
    import onnxruntime as ort

    if providers is None:
        return ("CPUExecutionProvider",)
    if isinstance(providers, str):
        providers = [providers]
    if list(providers) == ["auto"]:
        return auto_providers()
    specs = tuple(providers)
    if not specs:
        raise ProviderError("providers must name at least one onnxruntime execution provider")
    available = list(ort.get_available_providers())
    for spec in specs:
        name = _provider_name(spec)
        if not isinstance(name, str) or (
            not isinstance(spec, str) and not (len(spec) == 2 and isinstance(spec[1], dict))
        ):
            raise ProviderError(f"a provider is a name or (name, options), got {spec!r}")
        if name not in available:
            hint = (
                "; install avajams[cuda] (onnxruntime-gpu) for CUDA"
                if name == "CUDAExecutionProvider"
                else ""
            )
            raise ProviderError(
                f"onnxruntime execution provider {name!r} is not available; this onnxruntime "
                f"offers {available}{hint}"
            )
    return specs


def _resize(images: npt.NDArray[np.uint8], size: tuple[int, int] | None) -> npt.NDArray[np.uint8]:
    if size is None or (images.shape[2], images.shape[1]) == size:
        return images
    from PIL import Image

    out = np.empty((len(images), size[1], size[0], 3), np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(np.ascontiguousarray(image))
        out[i] = np.asarray(pil.resize(size, Image.Resampling.BILINEAR))
    return out
