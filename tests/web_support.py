"""Media, libraries and servers for the web app's tests (test_web_*.py).

A small generated library (three "music videos" from real photographs with music, indexed with
:class:`~avajams.testing.FakeEmbedder` or the real model) and a user clip re-shot from the
second one, so the right answer is known; a live ``avajams serve`` in a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FAKE_CONFIG = '[embedder]\nkind = "avajams._testing.fake:FakeEmbedder"\n'
PHOTOS = (("chelsea", "coffee"), ("astronaut", "rocket"), ("camera", "coins"))
#: The library video the clip is re-shot from.
SOURCE = 1


@dataclass(frozen=True)
class WebMedia:
    """Generated media for the web tests."""

    root: Path
    videos: tuple[Path, ...]
    clip: Path
    long_music: Path
    config_file: Path

    @property
    def expected(self) -> Path:
        return self.videos[SOURCE]


def make_media(root: Path) -> WebMedia:
    """Three 4 s music videos, a 3 s clip re-shot from the second, one 12 s music video."""
    from avajams.testing import make_excerpt, make_photo_video

    folder = root / "music-videos"
    folder.mkdir(parents=True)
    videos = []
    for i, photos in enumerate(PHOTOS):
        path = folder / f"mv{i + 1}-{photos[0]}.mp4"
        make_photo_video(path, photos=photos, duration=4.0, fps=24, size=(320, 240), seed=i)
        videos.append(path)
    clip = make_excerpt(
        videos[SOURCE],
        root / "my-clip.mp4",
        start=0.5,
        duration=3.0,
        zoom=1.2,
        size=(256, 192),
        fps=25,
        audio="music",
    )
    long_music = make_photo_video(
        root / "long" / "long-moon.mp4",
        photos=("moon", "brick"),
        duration=12.0,
        fps=24,
        size=(480, 360),
        seed=7,
        preset="ultrafast",
    )
    config_file = root / "fake.toml"
    config_file.write_text(FAKE_CONFIG, encoding="utf-8")
    return WebMedia(root, tuple(videos), clip, long_music, config_file)


def index_library(media: WebMedia, library: Path, *, embedder: object, extra: bool = False) -> Path:
    """Index the three music videos (and the long one with ``extra``) into ``library``."""
    from avajams import Pipeline

    paths = [media.root / "music-videos"] + ([media.long_music] if extra else [])
    with Pipeline(embedder=embedder, library=library) as pipe:  # type: ignore[arg-type]
        summary = pipe.index(paths, show_progress=False)
    assert summary.ok, summary.failed
    return library


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """``avajams serve`` running in a subprocess (its own process group)."""

    url: str
    process: subprocess.Popen[bytes]
    work_dir: Path
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextlib.contextmanager
def live_server(
    work_dir: Path,
    library: Path,
    *,
    config: Path | None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[LiveServer]:
    """Start ``avajams serve`` on a free port and wait until its health check answers."""
    port = free_port()
    log = work_dir.parent / f"{work_dir.name}-server.log"
    command = [sys.executable, "-m", "avajams", "-q"]
    if config is not None:
        command += ["--config", str(config)]
    command += [
        "serve",
        "--library",
        str(library),
        "--work-dir",
        str(work_dir),
        "--port",
        str(port),
        *extra_args,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, work_dir, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(server.url + "/api/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def group_processes(pgid: int) -> list[tuple[int, str, str]]:
    """Live processes (pid, state, command line) in process group ``pgid``; zombies left out."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            found.append((int(entry.name), state, cmdline))
    return found


def worker_pid(job_id: str) -> int | None:
    """The pid of the worker process running ``job_id`` (its task path names the job)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "avajams.web.worker" in cmdline and job_id in cmdline:
            return int(entry.name)
    return None
