"""The web app as a service: a real ``avajams serve`` (subprocess) against the demo library.

Three figures, each with a baseline measured in the same run:

- **upload to result page**: a 720p30 user clip (30 s; quick: 10 s) showing the photographs
  of the demo's second music video is uploaded over HTTP, the job status is polled the way the
  job page's script does, and the result page is fetched; against the same work done in
  process with :class:`avajams.Pipeline` (embed, match, report, render) on the same clip;
- **peak server RSS during a 500 MB upload** (quick: 100 MB): one multipart body streamed
  over a socket (it is refused after probing: it is zeros, not a video); the server's resident
  memory is sampled every few milliseconds, against its resident memory before the upload;
- **health p99 while a render runs**: ``GET /api/health`` on one keep-alive connection every
  20 ms while the clip's job and then a few re-mixes of it (renders only) run, the samples
  taken during rendering stages kept apart; against the same requests with the server idle.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import _media
from benchmarks._common import log, ratio, round_sig, target

BOUNDARY = "avajamsbenchboundary"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_library(folder: Path) -> tuple[Path, Path]:
    """The demo's five music videos indexed with the default model: (library, videos dir)."""
    from avajams import Pipeline
    from avajams.demo import make_demo_media

    videos = _media.cache_dir() / "demo-music-videos"
    make_demo_media(videos, count=5)
    library = folder / "library"
    with Pipeline(library=library) as pipe:
        summary = pipe.index([videos], show_progress=False)
    assert summary.ok, summary.failed
    return library, videos


def user_clip(seconds: float) -> Path:
    """A 720p30 clip of the photographs the demo's second music video cuts between."""
    from avajams.demo import DEMO_PHOTOS
    from avajams.photo import make_photo_video

    path = _media.cache_dir() / f"web-clip-1280x720-30fps-{seconds:g}s.mp4"
    if not path.exists():
        log(f"generating {path.name}")
        partial = path.with_suffix(".partial.mp4")
        make_photo_video(
            partial,
            photos=DEMO_PHOTOS[1],
            duration=seconds,
            fps=30.0,
            size=(1280, 720),
            seed=4242,
            shot_seconds=5.0,
            preset="ultrafast",
        )
        partial.replace(path)
    return path


@contextmanager
def serve(library: Path, work: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``avajams serve`` on a free port; yields (port, process) once it answers."""
    port = _free_port()
    log_file = open(work.parent / "server.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "avajams", "-q", "serve", "--library", str(library)]
    command += ["--work-dir", str(work), "--port", str(port)]
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError("the server exited; see " + str(work.parent / "server.log"))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _upload(port: int, path: Path | None, *, size: int = 0) -> tuple[int, dict[str, Any]]:
    """POST a file (or ``size`` zero bytes) to /api/jobs in 1 MiB chunks: (status, JSON)."""
    name = path.name if path is not None else "zeros.mp4"
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = path.stat().st_size if path is not None else size
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.putrequest("POST", "/api/jobs")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    conn.putheader("Content-Length", str(len(head) + length + len(tail)))
    conn.endheaders()
    conn.send(head)
    chunk = 1 << 20
    if path is not None:
        with open(path, "rb") as fh:
            while data := fh.read(chunk):
                conn.send(data)
    else:
        zeros = bytes(chunk)
        sent = 0
        while sent < size:
            piece = zeros[: min(chunk, size - sent)]
            conn.send(piece)
            sent += len(piece)
    conn.send(tail)
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, body


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


class _HealthProbe(threading.Thread):
    """``GET /api/health`` every ``interval`` s on one connection; latencies tagged by phase."""

    def __init__(self, port: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.interval = interval
        self.phase = "idle"
        self.samples: list[tuple[str, float]] = []
        self.failures = 0
        self._halt = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._halt.is_set():
            t0 = time.perf_counter()
            try:
                status, _ = _get(conn, "/api/health")
                if status != 200:
                    self.failures += 1
            except OSError:
                self.failures += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.samples.append((self.phase, (time.perf_counter() - t0) * 1000))
            time.sleep(self.interval)
        conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def stats(self, phase: str) -> dict[str, float]:
        values = sorted(ms for p, ms in self.samples if p == phase)
        if not values:
            return {"requests": 0}
        p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
        return {
            "requests": len(values),
            "p50_ms": round_sig(statistics.median(values)),
            "p99_ms": round_sig(p99),
            "max_ms": round_sig(values[-1]),
        }


def _wait(conn: http.client.HTTPConnection, job_id: str, probe: _HealthProbe) -> None:
    """Poll a job as its page does until it ends, tagging health samples by its stage."""
    probe.phase = "job"
    while True:
        _, body = _get(conn, f"/api/jobs/{job_id}")
        state = json.loads(body)
        stages = {s["name"]: s["state"] for s in state["stages"]}
        probe.phase = "render" if stages["rendering"] == "running" else "job"
        if state["state"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    probe.phase = "after"
    if state["state"] != "done":
        raise RuntimeError(f"the job failed: {state['error']}")


def _in_process(library: Path, clip: Path, out: Path) -> float:
    """The same work without the web app: embed, match, report, render (seconds)."""
    from avajams import Pipeline
    from avajams.report import write_report

    t0 = time.perf_counter()
    with Pipeline(library=library) as pipe:
        times, vectors = pipe.embed_video(clip)
        matches = pipe.match_vectors(times, vectors, k=5)
        write_report(clip, matches, out / "report.png", pairs=3)
        assert matches[0].path is not None
        pipe.mashup(clip, out / "mashup.mp4", music=matches[0].path, show_progress=False)
    return time.perf_counter() - t0


def run(quick: bool) -> dict[str, Any]:
    seconds = 10.0 if quick else 30.0
    upload_mb = 100 if quick else 500
    remixes = 2 if quick else 5
    base = Path(tempfile.mkdtemp(prefix="web-bench-", dir=_media.cache_dir()))
    log("indexing the demo library")
    library, _videos = demo_library(base)
    clip = user_clip(seconds)
    rows: list[dict[str, Any]] = []
    with serve(library, base / "work") as (port, server):
        probe = _HealthProbe(port)
        probe.start()
        time.sleep(6 if quick else 10)  # idle baseline

        # the clip, from the first byte sent to the result page received
        log(f"uploading the {seconds:g} s 720p clip")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.perf_counter()
        status, job = _upload(port, clip)
        uploaded = time.perf_counter() - t0
        if status != 202:
            raise RuntimeError(f"upload refused: {status} {job}")
        _wait(conn, job["id"], probe)
        page_status, _page = _get(conn, f"/jobs/{job['id']}/result")
        to_result = time.perf_counter() - t0
        assert page_status == 200
        _, body = _get(conn, f"/api/jobs/{job['id']}/result")
        result = json.loads(body)
        # re-mixes (render only, no re-embedding): more health samples while rendering
        for i in range(remixes):
            options = json.dumps({"rank": 1, "options": {"crossfade_ms": 100 * (i + 1)}})
            conn.request(
                "POST",
                f"/api/jobs/{job['id']}/remix",
                options,
                {"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            remix = json.loads(response.read())
            assert response.status == 202, remix
            _wait(conn, remix["id"], probe)
        conn.close()
        probe.stop()

        # a big upload: the server's memory while it streams to disk
        log(f"streaming a {upload_mb} MB upload")
        before = _rss_kib(server.pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_kib(server.pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t1 = time.perf_counter()
        big_status, big_body = _upload(port, None, size=upload_mb * 1000 * 1000)
        big_seconds = time.perf_counter() - t1
        done.set()
        sampler.join()
        hwm = _rss_kib(server.pid, "VmHWM")

    log("the same work in process")
    in_process = _in_process(library, clip, base)
    idle, during_job, render = probe.stats("idle"), probe.stats("job"), probe.stats("render")
    timings = result["timings"]
    rows.append(
        {
            "case": f"web: upload {clip.stat().st_size / 1e6:.1f} MB to result page",
            "seconds": round_sig(to_result),
            "upload_s": round_sig(uploaded),
            "embed_s": timings.get("embed"),
            "match_report_s": timings.get("match"),
            "render_s": timings.get("render"),
        }
    )
    rows.append(
        {
            "case": "in process: Pipeline embed + match + report + render",
            "seconds": round_sig(in_process),
        }
    )
    rows.append({"case": "health idle", **idle})
    rows.append({"case": "health while the job runs (not rendering)", **during_job})
    rows.append({"case": "health while rendering", **render})
    rows.append(
        {
            "case": f"{upload_mb} MB upload (refused after probing: {big_status})",
            "seconds": round_sig(big_seconds),
            "rss_before_mib": round_sig(before / 1024),
            "rss_peak_mib": round_sig(peak[0] / 1024),
            "vmhwm_mib": round_sig(hwm / 1024),
        }
    )
    render_p99 = render.get("p99_ms", float("nan"))
    growth = (peak[0] - before) / 1024
    return {
        "description": "avajams serve: upload to result, RSS during a big upload, health p99",
        "params": {
            "clip": f"{seconds:g} s 1280x720 30 fps",
            "library": "avajams demo (5 music videos, Inception v3)",
            "upload_mb": upload_mb,
            "workers": 1,
            "remixes": remixes,
        },
        "rows": rows,
        "ratios": {
            "web_over_in_process": round_sig(ratio(to_result, in_process)),
            "health_p99_render_over_idle": round_sig(ratio(render_p99, idle.get("p99_ms", 0))),
            "rss_growth_mib_per_100mb_uploaded": round_sig(growth / (upload_mb / 100)),
        },
        "targets": [
            target("health p99 while rendering (ms)", render_p99, "<= 100"),
            target("peak RSS growth during the upload (MiB)", growth, "<= 64"),
        ],
        "right_match": result["music"]["name"],
        "big_upload_answer": big_body.get("detail"),
        "health_failures": probe.failures,
    }
