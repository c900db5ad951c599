"""Job state in SQLite under the work directory: one row per job, written by the server only.

A job is one upload (or a re-mix of an earlier job's upload) going through the stages
``upload -> sampling -> embedding -> matching -> rendering``. Its files live in
``<work dir>/jobs/<id>/``; its row says where it is. States::

    queued ──▶ running ──▶ done
       │          ├──────▶ failed      (an error, or interrupted by a server restart)
       └──────────┴──────▶ cancelled
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["STAGES", "Job", "JobState", "JobStore", "new_job_id", "valid_job_id"]

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: tuple[JobState, ...] = ("done", "failed", "cancelled")
ACTIVE: tuple[JobState, ...] = ("queued", "running")

#: The stages every job goes through, in order.
STAGES: tuple[str, ...] = ("upload", "sampling", "embedding", "matching", "rendering")

_ID_LENGTH = 32  # hex digits: 128 random bits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    parent TEXT,
    owner TEXT NOT NULL,
    client TEXT NOT NULL,
    filename TEXT NOT NULL,
    options TEXT NOT NULL,
    rank INTEGER NOT NULL,
    state TEXT NOT NULL,
    stages TEXT NOT NULL,
    error TEXT,
    result TEXT,
    input TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SCHEMA_VERSION = "1"


def new_job_id() -> str:
    """A random, unguessable job id: 128 bits as 32 hex digits."""
    return secrets.token_hex(_ID_LENGTH // 2)


def valid_job_id(text: str) -> bool:
    """Whether ``text`` has the shape of a job id (it is then safe as a folder name)."""
    return len(text) == _ID_LENGTH and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    seq: int
    parent: str | None
    owner: str
    client: str
    filename: str
    options: dict[str, Any]
    rank: int
    state: JobState
    stages: dict[str, dict[str, Any]]
    error: str | None
    result: dict[str, Any] | None
    input: dict[str, Any]
    created: float
    started: float | None = None
    finished: float | None = None

    @property
    def finished_state(self) -> bool:
        return self.state in FINISHED


def _initial_stages(reused: bool) -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = {
        name: {"state": "waiting", "done": 0, "total": None} for name in STAGES
    }
    stages["upload"] = {"state": "done", "done": 1, "total": 1}
    if reused:
        for name in ("sampling", "embedding"):
            stages[name] = {"state": "reused", "done": 0, "total": None}
    return stages


class JobStore:
    """The job table in ``path`` (SQLite, WAL); thread-safe, one connection behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,)
        )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database; idempotent."""
        with self._lock:
            self._db.close()

    # -- writing --------------------------------------------------------------------------

    def create(
        self,
        *,
        job_id: str,
        owner: str,
        client: str,
        filename: str,
        options: dict[str, Any],
        rank: int,
        input_info: dict[str, Any],
        parent: str | None = None,
    ) -> Job:
        """Add a queued job."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, parent, owner, client, filename, options, rank, state, "
                "stages, input, created) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    job_id,
                    parent,
                    owner,
                    client,
                    filename,
                    json.dumps(options),
                    rank,
                    json.dumps(_initial_stages(parent is not None)),
                    json.dumps(input_info),
                    now,
                ),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when none waits)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', started = ? WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.get(row["id"])

    def update_stage(
        self, job_id: str, stage: str, *, state: str, done: int | None, total: int | None
    ) -> None:
        """Record a stage's progress; earlier stages that were still open are closed."""
        if stage not in STAGES:
            return
        with self._tx() as db:
            row = db.execute("SELECT stages FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            stages = json.loads(row["stages"])
            for name in STAGES[: STAGES.index(stage)]:
                if stages[name]["state"] in ("waiting", "running"):
                    stages[name]["state"] = "done"
            current = stages[stage]
            if current["state"] != "reused":
                current["state"] = state
            if done is not None:
                current["done"] = done
            if total is not None:
                current["total"] = total
            db.execute("UPDATE jobs SET stages = ? WHERE id = ?", (json.dumps(stages), job_id))

    def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        only_if_active: bool = True,
    ) -> bool:
        """Move a job to a finished state; False when it had already finished."""
        if state not in FINISHED:
            raise ValueError(f"{state!r} is not a finished state")
        with self._tx() as db:
            row = db.execute("SELECT state, stages FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or (only_if_active and row["state"] not in ACTIVE):
                return False
            stages = json.loads(row["stages"])
            for info in stages.values():
                if info["state"] == "running" or (state == "done" and info["state"] == "waiting"):
                    info["state"] = "done" if state == "done" else state
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, result = ?, finished = ?, stages = ? "
                "WHERE id = ?",
                (
                    state,
                    error,
                    json.dumps(result) if result is not None else None,
                    time.time(),
                    json.dumps(stages),
                    job_id,
                ),
            )
        return True

    def mark_interrupted(self, message: str) -> list[str]:
        """Fail every job left ``running`` (by a server that stopped); return their ids."""
        with self._lock:
            ids = [r["id"] for r in self._db.execute("SELECT id FROM jobs WHERE state = 'running'")]
        for job_id in ids:
            self.finish(job_id, "failed", error=message)
        return ids

    def delete(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None unless queued."""
        if job.state != "queued":
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq < ?", (job.seq,)
            ).fetchone()
        return int(row[0]) + 1

    def counts(self) -> dict[str, int]:
        """Jobs per state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        counts = dict.fromkeys(("queued", "running", "done", "failed", "cancelled"), 0)
        counts.update({r[0]: int(r[1]) for r in rows})
        return counts

    def active_for_client(self, client: str) -> int:
        """Jobs queued or running for this client address."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE client = ? AND state IN ('queued', 'running')",
                (client,),
            ).fetchone()
        return int(row[0])

    def recent(self, owner: str, limit: int = 8) -> list[Job]:
        """The newest jobs of one browser (its client cookie), newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE owner = ? ORDER BY seq DESC LIMIT ?", (owner, limit)
            ).fetchall()
        return [_job(r) for r in rows]

    def finished(self) -> list[Job]:
        """Every finished job, oldest first (the eviction order)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE state IN ('done', 'failed', 'cancelled') "
                "ORDER BY finished, seq"
            ).fetchall()
        return [_job(r) for r in rows]

    def ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs")}


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        seq=row["seq"],
        parent=row["parent"],
        owner=row["owner"],
        client=row["client"],
        filename=row["filename"],
        options=json.loads(row["options"]),
        rank=row["rank"],
        state=row["state"],
        stages=json.loads(row["stages"]),
        error=row["error"],
        result=json.loads(row["result"]) if row["result"] else None,
        input=json.loads(row["input"]),
        created=row["created"],
        started=row["started"],
        finished=row["finished"],
    )
