"""The bounded worker pool: queued jobs start in order, each in a process of its own.

A dispatcher thread starts the oldest queued job whenever fewer than ``workers`` run. Each
job is ``python -m avajams.web.worker`` in a new session (its own process group, ``TMPDIR``
inside the job folder); a monitor thread per job turns the worker's JSON-line events into job
state. Cancelling ends the worker (SIGTERM, then SIGKILL to the whole group, ffmpeg included)
and deletes its temporary and partial files. A janitor thread deletes results older than
``keep_hours`` and evicts the oldest finished results while the work directory is over its cap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from avajams.web.settings import ServeSettings
from avajams.web.store import FINISHED, Job, JobStore, valid_job_id
from avajams.web.worker import FILES

__all__ = ["JobRunner", "folder_size"]

logger = logging.getLogger(__name__)

#: Seconds a worker gets to exit after SIGTERM before its whole group is killed.
TERMINATE_GRACE = 3.0

INTERRUPTED = (
    "interrupted: the server stopped while this job was running; upload the video again "
    "(or re-mix an earlier result)"
)


def folder_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symbolic links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def remove_leftovers(job_dir: Path) -> None:
    """Delete what a stopped worker may leave: its temp folder and any partial files."""
    shutil.rmtree(job_dir / FILES["tmp"], ignore_errors=True)
    for pattern in ("*.partial*", ".*.partial.*"):
        for leftover in job_dir.glob(pattern):
            with contextlib.suppress(OSError):
                leftover.unlink()


@dataclass
class _Running:
    job_id: str
    process: subprocess.Popen[bytes]
    cancelled: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: str | None = None


class JobRunner:
    """Runs queued jobs of ``store``, at most ``settings.workers`` at a time."""

    def __init__(self, settings: ServeSettings, store: JobStore, jobs_dir: Path) -> None:
        self.settings = settings
        self.store = store
        self.jobs_dir = jobs_dir
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._monitors: list[threading.Thread] = []
        self._config_json = json.loads(settings.config.model_dump_json())

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Fail jobs a previous server left running, then start the dispatcher and janitor."""
        for job_id in self.store.mark_interrupted(INTERRUPTED):
            logger.warning("job %s was interrupted by a server restart", job_id)
            remove_leftovers(self.jobs_dir / job_id)
        for target, name in ((self._dispatch, "dispatcher"), (self._janitor, "janitor")):
            thread = threading.Thread(target=target, name=f"avajams-web-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop starting jobs, end the running ones (marked interrupted), join the threads."""
        with self._wake:
            self._stopping = True
            self._stopped.set()
            running = list(self._running.values())
            self._wake.notify_all()
        for run in running:
            self._kill(run)
        for run in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.process.wait(timeout=TERMINATE_GRACE * 2)
        for thread in [*self._threads, *self._monitors]:
            thread.join(timeout=TERMINATE_GRACE * 2)
        self._threads.clear()

    def wake(self) -> None:
        """A job was queued: let the dispatcher look."""
        with self._wake:
            self._wake.notify_all()

    @property
    def running_count(self) -> int:
        with self._lock:
            return len(self._running)

    # -- cancelling ----------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when it had already finished."""
        with self._lock:  # the dispatcher claims and launches under this lock too
            run = self._running.get(job_id)
            if run is None:
                return self.store.finish(job_id, "cancelled", error="cancelled")
            run.cancelled.set()
        self._kill(run)
        try:
            run.process.wait(timeout=TERMINATE_GRACE * 3)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL always ends it
            logger.warning("worker of job %s did not end after SIGKILL", job_id)
        # the monitor thread records the final state; wait for it so callers see it
        for _ in range(250):
            job = self.store.get(job_id)
            if job is None or job.state in FINISHED:
                break
            time.sleep(0.02)
        remove_leftovers(self.jobs_dir / job_id)
        return True

    def _kill(self, run: _Running) -> None:
        """SIGTERM the worker (it unwinds, ending ffmpeg), then SIGKILL its whole group."""
        process = run.process
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=TERMINATE_GRACE)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left: ffmpeg, helpers

    # -- running -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and len(self._running) >= self.settings.workers:
                    self._wake.wait(timeout=1.0)
                if self._stopping:
                    return
                job = self.store.claim_next()
                if job is None:
                    self._wake.wait(timeout=1.0)
                    continue
                try:
                    self._launch(job)
                except Exception as exc:  # a job that cannot start must not stop the pool
                    logger.exception("job %s could not start", job.id)
                    self.store.finish(job.id, "failed", error=f"the job could not start: {exc}")

    def _task(self, job: Job) -> dict[str, Any]:
        from avajams.pipeline import PipelineConfig
        from avajams.web.settings import MashupOptions

        options = MashupOptions.model_validate(job.options)
        config = options.apply(PipelineConfig.model_validate(self._config_json))
        return {
            "config": json.loads(config.model_dump_json()),
            "matches": self.settings.matches,
            "rank": job.rank,
            "filename": job.filename,
        }

    def _launch(self, job: Job) -> None:
        """Start the worker of a claimed job (the caller holds the lock)."""
        job_dir = self.jobs_dir / job.id
        task_path = job_dir / FILES["task"]
        task_path.write_text(json.dumps(self._task(job)), encoding="utf-8")
        tmp = job_dir / FILES["tmp"]
        tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
        with open(job_dir / FILES["log"], "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "avajams.web.worker", str(task_path)],
                cwd=job_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        run = _Running(job.id, process)
        self._running[job.id] = run
        logger.info("job %s started (worker pid %d)", job.id, process.pid)
        thread = threading.Thread(
            target=self._monitor, args=(run,), name=f"avajams-job-{job.id[:8]}", daemon=True
        )
        thread.start()
        self._monitors = [t for t in self._monitors if t.is_alive()] + [thread]

    def _monitor(self, run: _Running) -> None:
        assert run.process.stdout is not None
        try:
            with run.process.stdout as events:
                self._read_events(run, events)
        finally:
            code = run.process.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.process.pid, signal.SIGKILL)  # no helper outlives its job
            self._finish(run, code)
            with self._wake:
                self._running.pop(run.job_id, None)
                self._wake.notify_all()
            self._janitor_pass()

    def _read_events(self, run: _Running, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "progress" and not run.cancelled.is_set():
                total, done = event.get("total"), event.get("done")
                finished = total is not None and done is not None and done >= total
                self.store.update_stage(
                    run.job_id,
                    str(event.get("stage")),
                    state="done" if finished else "running",
                    done=done,
                    total=total,
                )
            elif kind == "done":
                run.result = event.get("result")
            elif kind == "error":
                run.error = str(event.get("message") or "the job failed")

    def _finish(self, run: _Running, code: int) -> None:
        job_dir = self.jobs_dir / run.job_id
        if run.cancelled.is_set() or self._stopping:
            remove_leftovers(job_dir)
        if run.cancelled.is_set():
            self.store.finish(run.job_id, "cancelled", error="cancelled")
        elif code == 0 and run.result is not None:
            self.store.finish(run.job_id, "done", result=run.result)
        elif self._stopping:
            self.store.finish(run.job_id, "failed", error=INTERRUPTED)
        else:
            error = run.error or (
                f"the worker stopped unexpectedly (exit status {code}); the server log has details"
            )
            self.store.finish(run.job_id, "failed", error=error)
        shutil.rmtree(job_dir / FILES["tmp"], ignore_errors=True)
        logger.info("job %s ended (exit status %d)", run.job_id, code)

    # -- expiry and the size cap ---------------------------------------------------------

    def _janitor(self) -> None:
        while not self._stopped.wait(timeout=self.settings.janitor_seconds):
            try:
                self._janitor_pass()
            except Exception:  # pragma: no cover - keep expiring after a hiccup
                logger.exception("janitor pass failed")

    def _janitor_pass(self) -> None:
        """Delete expired results, then the oldest finished ones while over the size cap."""
        now = time.time()
        keep = self.settings.keep_hours * 3600
        finished = self.store.finished()
        for job in finished:
            if job.finished is not None and now - job.finished > keep:
                self.delete(job.id)
        known = self.store.ids()
        for child in self.jobs_dir.iterdir():
            if child.is_dir() and valid_job_id(child.name) and child.name not in known:
                shutil.rmtree(child, ignore_errors=True)  # a folder whose row is gone
        total = folder_size(self.jobs_dir.parent)
        if total <= self.settings.max_work_dir_bytes:
            return
        for job in self.store.finished():
            if total <= self.settings.max_work_dir_bytes:
                break
            size = folder_size(self.jobs_dir / job.id)
            self.delete(job.id)
            total -= size
            logger.info("evicted job %s (%d bytes) to stay under the size cap", job.id, size)

    def delete(self, job_id: str) -> None:
        """Remove a finished job's row and folder."""
        self.store.delete(job_id)
        shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)
