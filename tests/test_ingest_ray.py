"""Indexing on a real two-node Ray cluster (``ray start`` twice, 2 CPUs between them).

One cluster serves the whole module: a head node with 1 CPU and a second node with 1 CPU and
1 (declared) GPU, each its own raylet on its own loopback address. With one embedder actor
holding a CPU on one node, every decoding task runs on the other, so frames really travel
between nodes through Ray's object store. The fixture ends every process the cluster started
and fails if any is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ray_cluster import LocalCluster, cluster_for_tests, entries, pids

from avajams import ClusterError, FrameSampler, Pipeline, PipelineConfig
from avajams.config import RayExecutorConfig
from avajams.errors import ConfigError
from avajams.ingest import find_videos
from avajams.ingest_ray import RayIndexer
from avajams.testing import FakeEmbedder, make_clip

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    import ray

    nodes = cluster_for_tests([(1, 0), (1, 1)])
    try:
        nodes.start()
        yield nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        left = nodes.stop()
    assert not left, f"Ray processes left behind: {left}"


@pytest.fixture(autouse=True)
def _ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")


def _clips(folder: Path, count: int, seconds: float = 3.0, first_tag: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        make_clip(folder / f"clip{i}.mp4", duration=seconds, tag=first_tag + i, size=(96, 64))
    return folder


def _config(
    tmp_path: Path, address: str, embedder: dict[str, object], **executor: object
) -> PipelineConfig:
    return PipelineConfig.from_mapping(
        {
            "library": {"directory": tmp_path / "library"},
            "embedder": embedder,
            "executor": {"kind": "ray", "address": address, **executor},
        }
    )


def _pid_embedder(pid_dir: Path, delay: float) -> dict[str, object]:
    pid_dir.mkdir(exist_ok=True)
    return {"kind": "ray_cluster:PidEmbedder", "options": {"pid_dir": str(pid_dir), "delay": delay}}


def _assert_complete(library: Path, videos: Path) -> None:
    """Every video of ``videos`` is in the library exactly once, with all its frames."""
    found = entries(library)
    files = [str(p) for p in find_videos([videos])]
    assert sorted(e.path for e in found) == sorted(files)
    assert len({e.key for e in found}) == len({e.content_hash for e in found}) == len(files)
    for e in found:
        assert len(e.times) == 3, e.path


@pytest.mark.model
@pytest.mark.slow
def test_signatures_match_the_local_pipeline(
    cluster: LocalCluster, tmp_path: Path, inception: object
) -> None:
    """The real Inception v3 on the cluster gives the local pipeline's vectors."""
    videos = _clips(tmp_path / "videos", 3, seconds=4.0)
    local = PipelineConfig.from_mapping({"library": {"directory": tmp_path / "local"}})
    with Pipeline(local) as pipe:
        expected = pipe.index(videos, show_progress=False)
    remote = _config(tmp_path, cluster.address, {"kind": "inception_v3"})
    with Pipeline(remote) as pipe:
        summary = pipe.index(videos, show_progress=False)
    assert summary.ok
    assert sorted(summary.added) == sorted(expected.added)
    assert summary.frames == expected.frames == 12
    mine = {e.key: e for e in entries(tmp_path / "library")}
    theirs = {e.key: e for e in entries(tmp_path / "local")}
    assert mine.keys() == theirs.keys()
    for key, entry in mine.items():
        other = theirs[key]
        assert float(np.dot(entry.signature, other.signature)) >= 0.9999, key
        np.testing.assert_allclose(entry.times, other.times)
        cosines = np.sum(entry.frames * other.frames, axis=1)
        assert cosines.min() >= 0.9999, key


def test_decodes_on_one_node_embeds_on_the_other_and_reports_bad_files(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    from avajams.index import VideoIndex

    videos = _clips(tmp_path / "videos", 4)
    (videos / "broken.mp4").write_bytes(b"this is not a video")
    config = _config(tmp_path, cluster.address, {"kind": "avajams.testing:FakeEmbedder"})
    embedder = FakeEmbedder()
    with VideoIndex.create(tmp_path / "library", dim=embedder.dim, embedder_id=embedder.id) as lib:
        assert isinstance(config.executor, RayExecutorConfig)
        indexer = RayIndexer(lib, config.executor, sampler=config.sampler, embedder=config.embedder)
        summary = indexer.run(find_videos([videos]))
    assert len(summary.added) == 4
    assert list(summary.failed) == [str(videos / "broken.mp4")]
    assert "could not be opened as a video" in summary.failed[str(videos / "broken.mp4")]
    assert summary.frames == 12
    assert summary.timings["startup"] > 0
    assert summary.timings["decode"] > 0
    (actor,) = indexer.actors
    assert sum(indexer.decoded_on.values()) == 4
    assert actor["node"] not in indexer.decoded_on  # the frames crossed between nodes
    vectors = FakeEmbedder().embed(FrameSampler().sample(videos / "clip0.mp4").images)
    stored = next(e for e in entries(tmp_path / "library") if e.path.endswith("clip0.mp4"))
    assert np.sum(stored.frames * vectors, axis=1).min() >= 0.9999  # stored as float16

    # a second run resumes: what is in the library is skipped, a new file is added
    make_clip(videos / "new.mp4", duration=3.0, tag=9, size=(96, 64))
    (videos / "clip1.mp4").rename(videos / "clip1-moved.mp4")
    with Pipeline(config) as pipe:
        again = pipe.index(videos, show_progress=False)
    assert [Path(p).name for p in again.added] == ["new.mp4"]
    assert len(again.skipped) == 3
    assert [Path(p).name for p in again.moved] == ["clip1-moved.mp4"]
    assert list(again.failed) == [str(videos / "broken.mp4")]


def test_a_killed_actor_is_restarted_and_its_video_retried(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    videos = _clips(tmp_path / "videos", 6)
    pid_dir = tmp_path / "pids"
    config = _config(tmp_path, cluster.address, _pid_embedder(pid_dir, delay=0.6))
    killed: list[int] = []

    def kill_the_actor(stage: str, done: int, total: int | None) -> None:
        if stage == "videos" and done >= 1 and not killed:
            (actor,) = [p for p in pids(pid_dir) if p != os.getpid()]
            os.kill(actor, signal.SIGKILL)  # mid-run: the next video is being embedded
            killed.append(actor)

    with Pipeline(config) as pipe:
        summary = pipe.index(videos, show_progress=False, progress=kill_the_actor)
    assert killed
    assert summary.ok, summary.failed
    assert len(summary.added) == 6
    restarted = [p for p in pids(pid_dir) if p not in (os.getpid(), *killed)]
    assert restarted, "Ray did not restart the embedder actor"
    _assert_complete(tmp_path / "library", videos)


def test_a_killed_driver_loses_nothing_a_rerun_completes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    videos = _clips(tmp_path / "videos", 8)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    library = tmp_path / "library"
    (tmp_path / "avajams.toml").write_text(
        f"""
[embedder]
kind = "ray_cluster:PidEmbedder"
options = {{ pid_dir = "{pid_dir}", delay = 0.8 }}

[executor]
kind = "ray"
""",
        encoding="utf-8",
    )
    command = [
        sys.executable, "-m", "avajams", "index", str(videos), "--library", str(library),
        "--config", str(tmp_path / "avajams.toml"), "--ray", cluster.address, "-q",
    ]  # fmt: skip
    log = tmp_path / "driver.log"
    with log.open("wb") as out:
        driver = subprocess.Popen(command, env=cluster.env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and driver.poll() is None:
                catalogue = library / "catalogue.sqlite"
                if catalogue.exists() and len(entries(library, vectors=False)) >= 2:
                    break
                time.sleep(0.2)
            assert driver.poll() is None, log.read_text(errors="replace")
            driver.send_signal(signal.SIGKILL)
        finally:
            driver.kill()
            driver.wait()
    done = len(entries(library))
    assert 2 <= done < 8

    # Ray ends the dead driver's actors
    actors = [p for p in pids(pid_dir) if p != driver.pid]
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in actors) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in actors)

    rerun = subprocess.run(
        command, env=cluster.env(), capture_output=True, text=True, timeout=180, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - done} added, 0 updated, {done} unchanged, 0 failed" in rerun.stdout
    _assert_complete(library, videos)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_an_actor_given_a_gpu_but_running_on_the_cpu_warns(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    videos = _clips(tmp_path / "videos", 1)
    config = _config(
        tmp_path, cluster.address, {"kind": "avajams.testing:FakeEmbedder"}, gpus_per_actor=1
    )
    with Pipeline(config) as pipe, pytest.warns(RuntimeWarning, match="was given GPUs"):
        summary = pipe.index(videos, show_progress=False)
    assert summary.ok
    assert len(summary.added) == 1


def test_a_cluster_too_small_for_one_actor_is_a_cluster_error(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    videos = _clips(tmp_path / "videos", 1)
    config = _config(
        tmp_path, cluster.address, {"kind": "avajams.testing:FakeEmbedder"}, gpus_per_actor=2
    )
    with Pipeline(config) as pipe, pytest.raises(ClusterError, match="does not fit"):
        pipe.index(videos, show_progress=False)


# --- without a cluster ----------------------------------------------------------------------


def test_live_objects_cannot_go_to_the_cluster(tmp_path: Path) -> None:
    videos = _clips(tmp_path / "videos", 1)
    pipe = Pipeline(embedder=FakeEmbedder(), library=tmp_path / "library")
    with pytest.raises(ConfigError, match="live embedder"):
        pipe.index(videos, executor={"kind": "ray"})


def test_without_ray_installed_it_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos = _clips(tmp_path / "videos", 1)
    monkeypatch.setitem(sys.modules, "ray", None)
    config = _config(tmp_path, "auto", {"kind": "avajams.testing:FakeEmbedder"})
    with Pipeline(config) as pipe, pytest.raises(ClusterError, match=r"avajams\[ray\]"):
        pipe.index(videos, show_progress=False)


def test_executor_config_from_toml_and_the_command_line(tmp_path: Path) -> None:
    from avajams.cli import build_parser

    path = tmp_path / "avajams.toml"
    path.write_text('[executor]\nkind = "ray"\naddress = "10.0.0.1:6379"\nactors = 4\n')
    config = PipelineConfig.load(path)
    assert config.executor == RayExecutorConfig(address="10.0.0.1:6379", actors=4)
    assert PipelineConfig().executor.kind == "local"
    with pytest.raises(ConfigError, match="actors"):
        PipelineConfig.from_mapping({"executor": {"kind": "ray", "actors": 0}})
    parser = build_parser()
    assert parser.parse_args(["index", "v"]).ray is None
    assert parser.parse_args(["index", "v", "--ray"]).ray == "auto"
    assert parser.parse_args(["index", "v", "--ray", "head:6379"]).ray == "head:6379"


def test_gpu_actors_get_a_gpu_batch_size_unless_one_is_set() -> None:
    from avajams.config import InceptionConfig
    from avajams.ingest_ray import GPU_BATCH_SIZE, actor_embedder_config, driver_embedder_config

    default = InceptionConfig(providers=("auto",))
    assert actor_embedder_config(default, 0).batch_size == default.batch_size
    assert actor_embedder_config(default, 1).batch_size == GPU_BATCH_SIZE
    assert actor_embedder_config(default, 0.5).model_dump()["providers"] == ("auto",)
    chosen = InceptionConfig(batch_size=48)
    assert actor_embedder_config(chosen, 1).batch_size == 48
    # the driver never embeds: it builds the model on the CPU only to read its id
    assert driver_embedder_config(default).model_dump()["providers"] == ("CPUExecutionProvider",)
