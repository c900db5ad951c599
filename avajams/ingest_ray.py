"""Indexing on a Ray cluster: decoding as Ray tasks, embedding in Ray actors, one writer here.

    summary = RayIndexer(library, RayExecutorConfig(), sampler=..., embedder=...).run(files)

Each video goes through three steps on the cluster, and its result comes back to this process:

1. an ``inspect`` task hashes and probes the file; the driver's :class:`LibraryWriter` admits
   it or skips it (already in the library, a copy, moved) exactly as a local run does;
2. a ``decode`` task samples its frames (stateless: the sampler is built from its config);
3. an embedder actor embeds them. Actors are built from the embedder's *config section* on
   the worker, so each loads the model once, and a :class:`ray.util.ActorPool` hands each
   decoded video to an idle actor.

The vectors return to the driver, which commits each video as it finishes; an interrupted run
resumes by running again. Ray retries a task or an actor call whose worker or node died
(``retries``) and restarts a dead actor; a video whose work could not be saved even so is
reported in ``failed`` and skipped, as a video that does not decode is.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avajams._progress import Progress, ProgressCallback
from avajams.errors import AvajamsError, ClusterError
from avajams.ingest import IndexSummary, LibraryWriter, Signature, VideoJob

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from avajams.config import EmbedderConfig, RayExecutorConfig, SamplerConfig
    from avajams.index import VideoIndex

__all__ = ["GPU_BATCH_SIZE", "RayIndexer", "actor_embedder_config", "driver_embedder_config"]

logger = logging.getLogger(__name__)

#: Seconds the driver waits at most for an embedder actor to start before it says why not.
ACTOR_START_TIMEOUT = 600.0

#: Frames per inference call of the Inception embedder on an actor given GPUs, unless the
#: config sets ``batch_size``: a GPU needs far larger batches than a CPU's 16 to be kept busy
#: (a usual choice for Inception-sized networks; not measured here, no GPU was lent).
GPU_BATCH_SIZE = 128


# --- what runs on the cluster ---------------------------------------------------------------


@dataclass(frozen=True)
class _Inspected:
    content_hash: str = ""
    duration: float | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class _Decoded:
    times: Any = None
    images: Any = None
    seconds: float = 0.0
    error: str | None = None
    node: str = ""


@dataclass(frozen=True)
class _Embedded:
    number: int
    times: Any = None
    vectors: Any = None
    seconds: float = 0.0
    error: str | None = None


def _inspect(path: str) -> _Inspected:
    """Hash and probe one file (a Ray task)."""
    from avajams.index import content_hash
    from avajams.media import probe

    started = time.perf_counter()
    try:
        digest = content_hash(path)
        duration = probe(path).duration
    except (AvajamsError, OSError) as exc:
        return _Inspected(error=str(exc) or type(exc).__name__)
    return _Inspected(digest, duration, time.perf_counter() - started)


def _decode(path: str, sampler: SamplerConfig) -> _Decoded:
    """Sample one file's frames with the sampler its config describes (a Ray task)."""
    import ray

    started = time.perf_counter()
    node = ray.get_runtime_context().get_node_id()
    try:
        frames = sampler.build().sample(path)
    except (AvajamsError, OSError) as exc:
        return _Decoded(error=str(exc) or type(exc).__name__, node=node)
    return _Decoded(frames.times, frames.images, time.perf_counter() - started, node=node)


class _EmbedActor:
    """Holds one embedder, built from its config on the worker; embeds one video per call."""

    def __init__(self, embedder: EmbedderConfig, batch_size: int) -> None:
        self._embedder = embedder.build(show_progress=False)
        self._batch_size = batch_size

    def info(self) -> dict[str, Any]:
        """Who this actor is: process, node, embedder id and the providers it really runs on."""
        import ray

        providers = getattr(self._embedder, "session_providers", None)
        return {
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "embedder_id": self._embedder.id,
            "providers": list(providers()) if providers is not None else [],
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        }

    def embed(self, number: int, decoded: _Decoded) -> _Embedded:
        """The unit frame vectors of one decoded video."""
        import numpy as np

        started = time.perf_counter()
        images, size = decoded.images, self._batch_size
        try:
            parts = [
                self._embedder.embed(images[i : i + size]) for i in range(0, len(images), size)
            ]
        except AvajamsError as exc:
            return _Embedded(number, error=str(exc))
        vectors = np.concatenate(parts) if parts else np.zeros((0, self._embedder.dim), np.float32)
        return _Embedded(number, decoded.times, vectors, time.perf_counter() - started)


# --- the driver ----------------------------------------------------------------------------


def driver_embedder_config(embedder: EmbedderConfig) -> EmbedderConfig:
    """The embedder config the driver builds for the embedder's id and dimension only.

    The driver never embeds, so the default Inception embedder is built there on the CPU
    provider: a configuration naming CUDA then works from a driver without a GPU.
    """
    from avajams.config import InceptionConfig

    if isinstance(embedder, InceptionConfig):
        return embedder.model_copy(update={"providers": ("CPUExecutionProvider",)})
    return embedder


def actor_embedder_config(embedder: EmbedderConfig, gpus: float) -> EmbedderConfig:
    """The embedder config an actor builds: on GPUs, the Inception embedder's batch size is
    :data:`GPU_BATCH_SIZE` unless the config sets one."""
    from avajams.config import InceptionConfig

    unset = "batch_size" not in embedder.model_fields_set
    if gpus > 0 and isinstance(embedder, InceptionConfig) and unset:
        return embedder.model_copy(update={"batch_size": GPU_BATCH_SIZE})
    return embedder


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterError(
            "indexing on Ray needs the ray package; install it with: pip install 'avajams[ray]'"
        ) from exc
    return ray


class RayIndexer:
    """One indexing pass on a Ray cluster, committing into ``library`` from this process.

    ``sampler`` and ``embedder`` are config sections (plain data): the cluster builds the live
    objects from them. Progress as :class:`avajams.ingest.Indexer`: bars for ``videos`` and
    ``frames`` and ``progress(stage, done, total)`` calls. If Ray is already initialised in this
    process that connection is used (and left open); otherwise the pass connects to
    ``executor.address`` and disconnects when done.
    """

    def __init__(
        self,
        library: VideoIndex,
        executor: RayExecutorConfig,
        *,
        sampler: SamplerConfig,
        embedder: EmbedderConfig,
        signature: Signature = "mean",
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.writer = LibraryWriter(library, signature=signature)
        self.executor = executor
        self.sampler = sampler
        self.embedder = embedder
        self.show_progress = show_progress
        self.progress = progress
        self.frames = 0
        self.actors: list[dict[str, Any]] = []
        """What each started actor reported: pid, node, embedder id, providers, GPU ids."""
        self.decoded_on: Counter[str] = Counter()
        """Videos decoded per Ray node id."""
        self.timings = {"hash": 0.0, "decode": 0.0, "embed": 0.0, "startup": 0.0}
        """Seconds: ``startup`` (connecting until the first actor is ready), summed over the
        cluster's workers ``hash``, ``decode`` and ``embed``; then ``write`` and ``total``."""

    def run(self, files: Sequence[Path], *, prune: Sequence[Path] = ()) -> IndexSummary:
        """Index ``files``; then drop entries of files gone from the folders in ``prune``."""
        started = time.perf_counter()
        if files:
            ray = _import_ray()
            owns = self._connect(ray)
            try:
                _Pass(self, ray, files, started).run()
            finally:
                if owns:
                    ray.shutdown()
        if prune:
            self.writer.remove_missing(prune)
        timings = {**self.timings, "total": time.perf_counter() - started}
        return self.writer.summary(frames=self.frames, timings=timings)

    def _connect(self, ray: Any) -> bool:
        """Connect to the cluster unless Ray already is; whether this pass connected."""
        if ray.is_initialized():
            return False
        address = self.executor.address
        options: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if address == "local":
            options["include_dashboard"] = False
        else:
            options["address"] = address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = "RAY_ADDRESS or a cluster started here" if address == "auto" else address
            raise ClusterError(
                f"cannot connect to the Ray cluster at {where}: {exc}; start one with "
                "`ray start --head` or set [executor] address (see docs/scale.md)"
            ) from exc
        return True


class _Pass:
    """The driver's loop for one :meth:`RayIndexer.run`: keeps the cluster busy, bounded."""

    def __init__(self, owner: RayIndexer, ray: Any, files: Sequence[Path], started: float) -> None:
        from ray.util import ActorPool

        self.started = started
        self.owner = owner
        self.ray = ray
        self.config = owner.executor
        self.writer = owner.writer
        self.jobs = {i: VideoJob.for_file(i, path) for i, path in enumerate(files)}
        self.waiting = deque(self.jobs.values())  # not inspected yet
        self.admitted: deque[VideoJob] = deque()  # to decode
        self.inspecting: dict[Any, VideoJob] = {}
        self.decoding: dict[Any, VideoJob] = {}
        self.decoded: deque[tuple[VideoJob, Any]] = deque()  # waiting for an actor
        self.embedding: dict[Any, VideoJob] = {}  # actor call -> its video
        self.starting: dict[Any, Any] = {}  # actor.info() -> actor
        self.pool = ActorPool([])
        self.actor_count = 0
        self.bars: list[Progress] = []

    def run(self) -> None:
        show, callback = self.owner.show_progress, self.owner.progress
        videos = Progress("videos", len(self.jobs), unit="video", show=show, callback=callback)
        frames = Progress("frames", None, unit="frame", show=show, callback=callback)
        self.videos_bar, self.frames_bar = videos, frames
        actors: list[Any] = []
        try:
            actors = self._start_actors()
            self._remote_functions()
            while self._busy():
                self._submit()
                self._wait()
        finally:
            for actor in actors:
                with contextlib.suppress(Exception):  # the cluster may be gone already
                    self.ray.kill(actor)
            videos.close()
            frames.close()

    # setting up

    def _start_actors(self) -> list[Any]:
        config = self.config
        resources = self.ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        fit = config.actors
        if config.cpus_per_actor > 0:  # leave room for one decoding task
            fit = min(fit, math.floor((cpus - config.decode_cpus) / config.cpus_per_actor))
        if config.gpus_per_actor > 0:
            fit = min(fit, math.floor(gpus / config.gpus_per_actor))
        if fit < 1:
            raise ClusterError(
                f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs; one embedder actor "
                f"({config.cpus_per_actor:g} CPUs, {config.gpus_per_actor:g} GPUs) beside one "
                f"decoding task ({config.decode_cpus:g} CPUs) does not fit; add nodes or lower "
                "[executor] cpus_per_actor / gpus_per_actor / decode_cpus"
            )
        if fit < config.actors:
            logger.warning(
                "the Ray cluster (%g CPUs, %g GPUs) fits %d of the %d embedder actors asked for "
                "beside the decoding tasks; starting %d",
                cpus,
                gpus,
                fit,
                config.actors,
                fit,
            )
        self.decode_slots = max(1, math.floor(cpus / config.decode_cpus))
        embedder = actor_embedder_config(self.owner.embedder, config.gpus_per_actor)
        batch_size = config.batch_size or embedder.batch_size
        remote = self.ray.remote(
            num_cpus=config.cpus_per_actor,
            num_gpus=config.gpus_per_actor,
            max_restarts=-1,  # a node may die many times in a long run
            max_task_retries=config.retries,
        )(_EmbedActor)
        actors = [remote.remote(embedder, batch_size) for _ in range(fit)]
        self.actor_count = len(actors)
        self.starting = {actor.info.remote(): actor for actor in actors}
        self.started_waiting = time.perf_counter()
        self.limit = self.config.videos_in_flight or 2 * len(actors) + self.decode_slots
        return actors

    def _remote_functions(self) -> None:
        config = self.config
        self.inspect = self.ray.remote(num_cpus=config.decode_cpus, max_retries=config.retries)(
            _inspect
        )
        self.decode = self.ray.remote(num_cpus=config.decode_cpus, max_retries=config.retries)(
            _decode
        )

    def _actor_started(self, ref: Any) -> None:
        actor = self.starting.pop(ref)
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self.actor_count -= 1
            if self.actor_count == 0:
                raise ClusterError(
                    f"no embedder actor could start on the Ray cluster: {_cause(exc)}"
                ) from exc
            logger.warning("an embedder actor failed to start: %s", _cause(exc))
            return
        expected = self.writer.library.embedder_id
        if info["embedder_id"] != expected:
            raise ClusterError(
                f"the embedder actor on node {info['node']} runs {info['embedder_id']}, but the "
                f"library holds {expected}; give every node the same model and configuration"
            )
        if self.config.gpus_per_actor > 0 and not any(
            p in info["providers"] for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        ):
            message = (
                f"an embedder actor on node {info['node']} was given GPUs {info['gpu_ids']} but "
                f"embeds with {info['providers'] or 'no onnxruntime provider'}; set [embedder] "
                'providers = ["auto"] and install avajams[cuda] on the GPU nodes'
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        if not self.owner.actors:  # connecting until the first actor holds its model
            self.owner.timings["startup"] = time.perf_counter() - self.started
        self.owner.actors.append(info)
        self.pool.push(actor)

    # the loop

    def _busy(self) -> bool:
        return bool(
            self.waiting
            or self.admitted
            or self.inspecting
            or self.decoding
            or self.decoded
            or self.embedding
        )

    def _in_flight(self) -> int:
        return len(self.decoding) + len(self.decoded) + len(self.embedding)

    def _submit(self) -> None:
        while self.waiting and len(self.inspecting) < 2 * self.decode_slots:
            job = self.waiting.popleft()
            self.inspecting[self.inspect.remote(str(job.path))] = job
        while self.admitted and self._in_flight() < self.limit:
            job = self.admitted.popleft()
            self.decoding[self.decode.remote(str(job.path), self.owner.sampler)] = job
        while self.decoded and self.pool.has_free():
            job, ref = self.decoded.popleft()
            self.pool.submit(self._call_actor, (job, ref))

    def _call_actor(self, actor: Any, item: tuple[VideoJob, Any]) -> Any:
        job, ref = item
        future = actor.embed.remote(job.number, ref)
        self.embedding[future] = job
        return future

    def _wait(self) -> None:
        refs = [*self.starting, *self.inspecting, *self.decoding, *self.embedding]
        if not refs:
            if self.decoded and not self.pool.has_free():
                raise ClusterError(
                    "every embedder actor of the run died and none could be restarted; "
                    "see the Ray logs of the cluster (`ray logs`) and run again"
                )
            return
        if not self.owner.actors and not self.starting:
            raise ClusterError("every embedder actor failed to start; see the warnings above")
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=1.0)
        if not ready:
            self._check_actors_start()
            return
        ref = ready[0]
        if ref in self.starting:
            self._actor_started(ref)
        elif ref in self.inspecting:
            self._inspected(self.inspecting.pop(ref), ref)
        elif ref in self.decoding:
            self._decoded(self.decoding.pop(ref), ref)
        else:
            self._embedded()

    def _check_actors_start(self) -> None:
        if self.owner.actors or not self.starting:
            return
        if time.perf_counter() - self.started_waiting > ACTOR_START_TIMEOUT:
            raise ClusterError(
                f"no embedder actor started on the Ray cluster within {ACTOR_START_TIMEOUT:g} s; "
                "it lacks the CPUs/GPUs each actor asks for ([executor] cpus_per_actor, "
                "gpus_per_actor); see `ray status`"
            )

    def _inspected(self, job: VideoJob, ref: Any) -> None:
        try:
            result: _Inspected = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError:
            raise
        except self.ray.exceptions.RayError as exc:
            return self._fail(job, f"the Ray worker hashing it was lost: {_cause(exc)}")
        if result.error is not None:
            return self._fail(job, result.error)
        self.owner.timings["hash"] += result.seconds
        job.content_hash, job.duration = result.content_hash, result.duration
        if self.writer.admit(job):
            self.admitted.append(job)
        else:
            self.videos_bar.update()

    def _decoded(self, job: VideoJob, ref: Any) -> None:
        try:
            result: _Decoded = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError:
            raise
        except self.ray.exceptions.RayError as exc:
            return self._fail(job, f"the Ray worker decoding it was lost: {_cause(exc)}")
        if result.error is not None:
            return self._fail(job, result.error)
        self.owner.timings["decode"] += result.seconds
        self.owner.decoded_on[result.node] += 1
        self.decoded.append((job, ref))

    def _embedded(self) -> None:
        try:
            result: _Embedded = self.pool.get_next_unordered(timeout=0)
        except TimeoutError:
            return
        except self.ray.exceptions.RayTaskError:
            raise
        except self.ray.exceptions.RayError as exc:
            job = self._failed_call()
            if job is not None:
                self._fail(job, f"the embedder actor was lost while embedding it: {_cause(exc)}")
            return
        job = self.jobs[result.number]
        self.embedding = {f: j for f, j in self.embedding.items() if j is not job}
        if result.error is not None:
            return self._fail(job, result.error)
        self.owner.timings["embed"] += result.seconds
        self._commit(job, result.times, result.vectors)

    def _failed_call(self) -> VideoJob | None:
        """The video of an actor call that raised (the pool does not say which call it was)."""
        ready, _ = self.ray.wait(list(self.embedding), num_returns=len(self.embedding), timeout=0)
        for future in ready:
            try:
                self.ray.get(future, timeout=0)
            except self.ray.exceptions.RayError:
                return self.embedding.pop(future)
        return None

    def _commit(
        self, job: VideoJob, times: NDArray[np.float64], vectors: NDArray[np.float32]
    ) -> None:
        import numpy as np

        if self.writer.commit(job, np.asarray(times, dtype=np.float64), vectors):
            self.owner.frames += len(vectors)
            self.frames_bar.update(len(vectors))
        self.videos_bar.update()

    def _fail(self, job: VideoJob, reason: str) -> None:
        self.writer.fail(job, reason)
        self.videos_bar.update()


def _cause(exc: BaseException) -> str:
    """A one-line reason from a Ray error (its first line, without Ray's traceback)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
