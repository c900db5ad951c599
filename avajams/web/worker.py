"""One job, run in its own process: ``python -m avajams.web.worker JOB_DIR/task.json``.

The server starts one such process per job, in a session of its own (so cancelling kills the
whole process group, ffmpeg included) with ``TMPDIR`` inside the job folder (so nothing a killed
render leaves behind escapes the folder the server cleans). Progress goes to standard output as
JSON lines; everything else the process prints goes to standard error (the job's log).

The stages: sample and embed the upload (:meth:`Pipeline.embed_video`, keeping the frame times
and vectors in ``query.npz``), match them (:meth:`Pipeline.match_vectors`), draw the match
report, render the mashup. A re-mix finds ``query.npz`` already there and never re-embeds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

from avajams.errors import AvajamsError, LibraryError

if TYPE_CHECKING:
    from avajams.index import Match
    from avajams.pipeline import Pipeline

__all__ = ["FILES", "main", "run_job"]

logger = logging.getLogger(__name__)

#: File names inside a job folder (never derived from anything a user sent).
FILES = {
    "task": "task.json",
    "upload": "upload.media",
    "query": "query.npz",
    "matches": "matches.json",
    "report": "report.png",
    "mashup": "mashup.mp4",
    "poster": "poster.jpg",
    "log": "worker.log",
    "pairs": "pairs",
    "tmp": "tmp",
}

#: Aligned frame pairs shown per match.
PAIRS = 3

Emit = Callable[[dict[str, Any]], None]


class _Throttle:
    """Forwards progress callbacks as events, at most every ``interval`` s per stage."""

    _NAMES: ClassVar[dict[str, str]] = {"render": "rendering"}

    def __init__(self, emit: Emit, interval: float = 0.25) -> None:
        self._emit = emit
        self._interval = interval
        self._last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        stage = self._NAMES.get(stage, stage)
        now = time.monotonic()
        final = total is not None and done >= total
        if not final and now - self._last.get(stage, 0.0) < self._interval:
            return
        self._last[stage] = now
        self._emit({"event": "progress", "stage": stage, "done": done, "total": total})


def _match_json(rank: int, match: Match) -> dict[str, Any]:
    return {
        "rank": rank,
        "key": match.key,
        "name": Path(match.path).name if match.path else match.key,
        "score": round(float(match.score), 4),
        "signature_score": round(float(match.signature_score), 4),
        "available": bool(match.path) and Path(str(match.path)).is_file(),
        "pairs": [],
    }


def _write_json(path: Path, data: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(partial, path)


def _query_vectors(
    pipe: Pipeline, job_dir: Path, upload: Path, emit: Emit
) -> tuple[Any, Any, bool]:
    """(times, vectors, reused): from ``query.npz`` if there, else embedded now and saved."""
    import numpy as np

    saved = job_dir / FILES["query"]
    if saved.is_file():
        with np.load(saved) as data:
            return data["times"], data["vectors"], True
    emit({"event": "progress", "stage": "sampling", "done": 0, "total": None})
    times, vectors = pipe.embed_video(upload, progress=_Throttle(emit))
    partial = saved.with_name("query.partial.npz")
    np.savez(partial, times=times, vectors=vectors)
    os.replace(partial, saved)
    return times, vectors, False


def _pairs(job_dir: Path, report: Any, matches: list[dict[str, Any]]) -> None:
    """Cut each tile of the report picture into its own JPEG, for the result page's HTML."""
    from PIL import Image

    folder = job_dir / FILES["pairs"]
    folder.mkdir(exist_ok=True)
    with Image.open(report.path) as sheet:
        by_row: dict[int, list[Any]] = {}
        for tile in report.tiles:
            by_row.setdefault(tile.row, []).append(tile)
        for row, tiles in by_row.items():
            entry = matches[row]
            for i in range(0, len(tiles) - 1, 2):
                query, music = tiles[i], tiles[i + 1]
                pair = {"query_time": round(query.time, 2), "music_time": round(music.time, 2)}
                for role, tile in (("query", query), ("music", music)):
                    name = f"{row + 1}-{i // 2 + 1}-{role}.jpg"
                    if tile.found:
                        sheet.crop(tile.box).convert("RGB").save(folder / name, quality=85)
                    pair[role] = name if tile.found else None
                entry["pairs"].append(pair)


def _similarities(matches: list[Match], entries: list[dict[str, Any]]) -> None:
    for match, entry in zip(matches, entries, strict=True):
        best = sorted(match.aligned, key=lambda p: -p.similarity)[:PAIRS]
        best.sort(key=lambda p: p.query_time)
        for pair, shown in zip(best, entry["pairs"], strict=False):
            shown["similarity"] = round(float(pair.similarity), 3)


def _poster(mashup: Path, out: Path, duration: float) -> None:
    from avajams.report import grab_frames

    frames = grab_frames(mashup, [min(1.0, duration / 2)])
    image = next(iter(frames.values()), None)
    if image is not None:
        image = image.convert("RGB")
        image.thumbnail((480, 480))
        image.save(out, quality=85)


def run_job(
    job_dir: Path, task: dict[str, Any], emit: Emit, *, pipeline: Pipeline | None = None
) -> dict[str, Any]:
    """Run the job in ``job_dir`` described by ``task``; return the result (JSON-able).

    ``task``: ``config`` (a :class:`PipelineConfig` as JSON, the mashup options applied),
    ``matches`` (how many to keep), ``rank`` (which match to render with, 1 = best) and
    ``filename`` (the upload's name, for the report). ``pipeline`` replaces the one built
    from ``config`` (tests pass a spy).
    """
    from avajams.pipeline import Pipeline, PipelineConfig
    from avajams.report import write_report

    started = time.perf_counter()
    timings: dict[str, float] = {}
    upload = job_dir / FILES["upload"]
    pipe = pipeline or Pipeline(PipelineConfig.from_mapping(task["config"], source="job"))
    with pipe:
        t0 = time.perf_counter()
        times, vectors, reused = _query_vectors(pipe, job_dir, upload, emit)
        timings["embed"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        emit({"event": "progress", "stage": "matching", "done": 0, "total": 1})
        found = pipe.match_vectors(times, vectors, k=int(task["matches"]))
        if not found:
            raise LibraryError(
                "the library has no music videos to match; index some first (avajams index)",
                path=pipe.library_directory,
            )
        matches = [_match_json(rank, m) for rank, m in enumerate(found, 1)]
        report = write_report(
            upload,
            found,
            job_dir / FILES["report"],
            pairs=PAIRS,
            query_name=str(task.get("filename") or "your video"),
        )
        _pairs(job_dir, report, matches)
        _similarities(found, matches)
        _write_json(job_dir / FILES["matches"], matches)
        emit({"event": "progress", "stage": "matching", "done": 1, "total": 1})
        timings["match"] = time.perf_counter() - t0

        rank = int(task.get("rank", 1))
        if not 1 <= rank <= len(found):
            raise LibraryError(
                f"there is no match #{rank}: the library gave {len(found)} match(es)",
                path=pipe.library_directory,
            )
        chosen = found[rank - 1]
        if not matches[rank - 1]["available"]:
            raise LibraryError(
                f"match #{rank} ({matches[rank - 1]['name']}) is no longer on the server; "
                "re-mix with another match",
                path=pipe.library_directory,
            )
        assert chosen.path is not None
        t0 = time.perf_counter()
        emit({"event": "progress", "stage": "rendering", "done": 0, "total": None})
        rendered = pipe.mashup(
            upload, job_dir / FILES["mashup"], music=chosen.path, progress=_Throttle(emit)
        )
        timings["render"] = time.perf_counter() - t0
    _poster(rendered.path, job_dir / FILES["poster"], rendered.duration)
    timings["total"] = time.perf_counter() - started
    plan = rendered.plan
    return {
        "rank": rank,
        "music": matches[rank - 1],
        "duration": round(rendered.duration, 3),
        "plan_duration": round(plan.duration, 3),
        "frames": plan.frames,
        "fps": rendered.fps,
        "size": list(rendered.size),
        "cuts": [round(c / plan.fps, 3) for c in plan.cuts],  # seconds
        "reused_vectors": reused,
        "frames_embedded": 0 if reused else len(times),
        "query_frames": len(times),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def _public_message(exc: AvajamsError, job_dir: Path, filename: str) -> str:
    """The error for the page: the upload's own name instead of paths inside the work dir."""
    message = str(exc)
    message = message.replace(str(job_dir / FILES["upload"]), f"“{filename}”")
    return message.replace(str(job_dir) + os.sep, "")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: the renderer removes its partial file, ffmpeg ends


def main(argv: list[str] | None = None) -> int:
    """The worker process's entry point; exit status 0 when the job succeeded."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m avajams.web.worker JOB_DIR/task.json", file=sys.stderr)
        return 2
    task_path = Path(args[0]).resolve()
    job_dir = task_path.parent
    # Events get their own copy of stdout; anything else written to fd 1 lands in the log.
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGTERM, _stop)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with contextlib.suppress(OSError):
        os.nice(10)  # the web server (and its health checks) before the render

    def emit(event: dict[str, Any]) -> None:
        events.write(json.dumps(event) + "\n")

    task = json.loads(task_path.read_text(encoding="utf-8"))
    filename = str(task.get("filename") or "your video")
    try:
        result = run_job(job_dir, task, emit)
    except AvajamsError as exc:
        logger.info("job failed: %s", exc)
        emit(
            {
                "event": "error",
                "kind": type(exc).__name__,
                "message": _public_message(exc, job_dir, filename),
            }
        )
        return 1
    except Exception:
        logger.exception("job crashed")
        emit(
            {
                "event": "error",
                "kind": "InternalError",
                "message": "the job failed with an internal error (the server log has details)",
            }
        )
        return 1
    emit({"event": "done", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
