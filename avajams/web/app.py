"""The FastAPI application: the pages and the JSON API under them.

Pages (server-rendered with Jinja2, progressively enhanced by ``static/app.js``)::

    GET  /                       upload form, library summary, your recent results
    POST /jobs                   the upload form (no-JS fallback; the page's script uses the API)
    GET  /jobs/{id}              progress per stage, queue position, cancel
    GET  /jobs/{id}/result       matches with their aligned frame pairs, the mashup, re-mix
    POST /jobs/{id}/cancel       cancel (form)
    POST /jobs/{id}/remix        re-render with another match or options (form), no re-embedding
    GET  /library                the music videos, paged
    GET  /jobs/{id}/mashup.mp4   the mashup (HTTP Range requests; ?download=1 to save it)

The JSON API lives under ``/api`` (schema: ``/api/openapi.json``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from avajams.errors import AvajamsError, ConfigError
from avajams.web.library import LibraryView
from avajams.web.runner import JobRunner
from avajams.web.security import (
    TOKEN_COOKIE,
    GuardMiddleware,
    csrf_token,
    safe_next,
    token_cookie_value,
)
from avajams.web.settings import SIZE_PRESETS, MashupOptions, ServeSettings
from avajams.web.store import STAGES, Job, JobStore, new_job_id, valid_job_id
from avajams.web.uploads import ReceivedUpload, UploadRejected, probe_upload, receive_upload
from avajams.web.worker import FILES

__all__ = ["create_app", "open_library"]

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
_PAIR_NAME = re.compile(r"^[0-9]{1,2}-[0-9]{1,2}-(query|music)\.jpg$")
_THUMB_NAME = re.compile(r"^[0-9a-f]{32}\.jpg$")
RETRY_AFTER = 30

# --- API models ----------------------------------------------------------------------------


class StageStatus(BaseModel):
    """One stage of a job: ``waiting``, ``running``, ``done``, ``reused`` (re-mix) or the
    job's final state when it ended there."""

    name: str
    state: str
    done: int
    total: int | None


class JobLinks(BaseModel):
    page: str
    status: str
    result: str
    cancel: str
    remix: str


class JobStatus(BaseModel):
    """Where a job is."""

    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    filename: str
    created: datetime
    started: datetime | None
    finished: datetime | None
    queue_position: int | None = Field(description="1 = next to start; null unless queued")
    stages: list[StageStatus]
    error: str | None
    parent: str | None = Field(description="the job this one re-mixes, if any")
    rank: int = Field(description="the match rendered with (1 = best)")
    options: MashupOptions
    links: JobLinks


class AlignedPairOut(BaseModel):
    query_time: float
    music_time: float
    similarity: float | None = None
    query_image: str | None
    music_image: str | None


class MatchOut(BaseModel):
    rank: int
    name: str
    score: float
    signature_score: float
    available: bool
    pairs: list[AlignedPairOut]


class ResultLinks(BaseModel):
    mashup: str
    download: str
    report: str
    poster: str
    page: str


class JobResult(BaseModel):
    """A finished job: the matches, the mashup and how it was made."""

    id: str
    filename: str
    rank: int
    music: MatchOut
    matches: list[MatchOut]
    duration: float
    plan_duration: float
    frames: int
    fps: float
    size: list[int]
    cuts: list[float]
    reused_vectors: bool
    frames_embedded: int
    timings: dict[str, float]
    options: MashupOptions
    links: ResultLinks


class RemixRequest(BaseModel):
    """Re-render a finished job's upload with another match and/or options."""

    rank: int = Field(1, ge=1, le=20)
    options: dict[str, Any] = Field(default_factory=dict)


class LibraryItemOut(BaseModel):
    name: str
    duration: float | None
    added: datetime
    frames: int
    thumbnail: str


class LibraryOut(BaseModel):
    embedder_id: str
    videos: int
    page: int
    pages: int
    per_page: int
    items: list[LibraryItemOut]


class Health(BaseModel):
    status: Literal["ok"]
    queued: int
    running: int


# --- the application -----------------------------------------------------------------------


@dataclass
class _State:
    settings: ServeSettings
    store: JobStore
    runner: JobRunner
    library: LibraryView
    secret: bytes
    jobs_dir: Path
    uploads_dir: Path
    defaults: MashupOptions
    admission: threading.Lock


def open_library(settings: ServeSettings) -> Any:
    """The library read-only, checked against the configured embedder (LibraryError etc.)."""
    from avajams.index import VideoIndex
    from avajams.pipeline import Pipeline

    embedder = Pipeline(settings.config).embedder
    return VideoIndex.open(settings.library_directory, embedder_id=embedder.id, readonly=True)


def _secret(work_dir: Path) -> bytes:
    """The key of the server's HMACs (form and login tokens), kept across restarts."""
    _prepare(work_dir, clean=False)
    path = work_dir / "secret.key"
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32))
    return path.read_bytes()


def _prepare(work_dir: Path, *, clean: bool = True) -> tuple[Path, Path]:
    """The work directory's ``jobs`` and ``uploads`` folders (``clean``: uploads emptied)."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(work_dir, 0o700)
        jobs, uploads = work_dir / "jobs", work_dir / "uploads"
        jobs.mkdir(exist_ok=True)
        if clean:
            shutil.rmtree(uploads, ignore_errors=True)  # partial uploads of a previous run
        uploads.mkdir(exist_ok=True)
    except OSError as exc:
        from avajams.errors import OutputPathError

        raise OutputPathError(
            f"cannot use the work directory {work_dir}: {exc.strerror or exc}; pass --work-dir "
            "with a writable directory",
            path=work_dir,
        ) from exc
    return jobs, uploads


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI application; its lifespan starts the worker pool and opens the library."""
    settings = settings or ServeSettings()
    secret = _secret(settings.work_dir)
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.filters["clock"] = _clock
    templates.env.filters["when"] = _when
    templates.env.globals["stage_names"] = STAGES
    templates.env.globals["size_presets"] = list(SIZE_PRESETS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs_dir, uploads_dir = _prepare(settings.work_dir)
        library = open_library(settings)
        store = JobStore(settings.work_dir / "jobs.sqlite")
        runner = JobRunner(settings, store, jobs_dir)
        app.state.avajams = _State(
            settings=settings,
            store=store,
            runner=runner,
            library=LibraryView(library, settings.work_dir / "thumbs"),
            secret=secret,
            jobs_dir=jobs_dir,
            uploads_dir=uploads_dir,
            defaults=MashupOptions.defaults_from(settings.config),
            admission=threading.Lock(),
        )
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            store.close()
            library.close()

    app = FastAPI(
        title="avajams",
        summary="Upload a video; get a mashup with the most similar music video.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads its script from a CDN: not offline, not under our CSP
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.add_middleware(GuardMiddleware, secret=secret, token=settings.token)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    def state(request: Request) -> _State:
        value: _State = request.app.state.avajams
        return value

    def client_id(request: Request) -> str:
        return str(request.state.client_id)

    def client_address(request: Request) -> str:
        return request.client.host if request.client is not None else "unknown"

    def page(
        request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> HTMLResponse:
        st = state(request)
        base = {
            "csrf": csrf_token(st.secret, client_id(request)),
            "settings": settings,
            "max_upload_bytes": settings.max_upload_bytes,
            "token_required": settings.token is not None,
        }
        return templates.TemplateResponse(request, name, {**base, **context}, status_code)

    def get_job(request: Request, job_id: str) -> Job:
        if not valid_job_id(job_id):
            raise HTTPException(404, "no such job (the link is wrong, or the result expired)")
        job = state(request).store.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job (the link is wrong, or the result expired)")
        return job

    def job_file(request: Request, job: Job, name: str) -> Path:
        """A file inside the job's folder; ``name`` is one of ours, never the user's."""
        folder = (state(request).jobs_dir / job.id).resolve()
        path = (folder / name).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise HTTPException(404, "that file is not there (yet)")
        return path

    def check_form_token(request: Request, value: str | None) -> None:
        expected = csrf_token(state(request).secret, client_id(request))
        if not value or not _same(value, expected):
            raise HTTPException(
                403, "the form has expired or came from another site; reload the page and retry"
            )

    def admit(request: Request) -> None:
        """Refuse a new job when the queue or this client's share of it is full."""
        st = state(request)
        counts = st.store.counts()
        if counts["queued"] >= settings.max_queue:
            raise HTTPException(
                503,
                f"the queue is full ({counts['queued']} jobs waiting); try again in a minute",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        mine = st.store.active_for_client(client_address(request))
        if mine >= settings.max_jobs_per_client:
            raise HTTPException(
                429,
                f"you already have {mine} job(s) waiting or running (the limit is "
                f"{settings.max_jobs_per_client}); wait for one to finish",
                headers={"Retry-After": str(RETRY_AFTER)},
            )

    def status(request: Request, job: Job) -> JobStatus:
        st = state(request)
        return JobStatus(
            id=job.id,
            state=job.state,
            filename=job.filename,
            created=_dt(job.created),
            started=_dt(job.started) if job.started else None,
            finished=_dt(job.finished) if job.finished else None,
            queue_position=st.store.queue_position(job),
            stages=[StageStatus(name=n, **job.stages[n]) for n in STAGES],
            error=job.error,
            parent=job.parent,
            rank=job.rank,
            options=MashupOptions.model_validate(job.options),
            links=JobLinks(
                page=f"/jobs/{job.id}",
                status=f"/api/jobs/{job.id}",
                result=f"/api/jobs/{job.id}/result",
                cancel=f"/api/jobs/{job.id}/cancel",
                remix=f"/api/jobs/{job.id}/remix",
            ),
        )

    def result(request: Request, job: Job) -> JobResult:
        if job.state != "done" or job.result is None:
            raise HTTPException(409, f"the job is {job.state}, it has no result")
        try:
            matches = json.loads(job_file(request, job, FILES["matches"]).read_text("utf-8"))
        except (HTTPException, ValueError):
            matches = [job.result["music"]]

        def match_out(m: dict[str, Any]) -> MatchOut:
            pairs = [
                AlignedPairOut(
                    query_time=p["query_time"],
                    music_time=p["music_time"],
                    similarity=p.get("similarity"),
                    query_image=f"/jobs/{job.id}/pairs/{p['query']}" if p.get("query") else None,
                    music_image=f"/jobs/{job.id}/pairs/{p['music']}" if p.get("music") else None,
                )
                for p in m.get("pairs", [])
            ]
            return MatchOut(
                rank=m["rank"],
                name=m["name"],
                score=m["score"],
                signature_score=m["signature_score"],
                available=m["available"],
                pairs=pairs,
            )

        outs = [match_out(m) for m in matches]
        data = job.result
        return JobResult(
            id=job.id,
            filename=job.filename,
            rank=data["rank"],
            music=next((m for m in outs if m.rank == data["rank"]), match_out(data["music"])),
            matches=outs,
            duration=data["duration"],
            plan_duration=data["plan_duration"],
            frames=data["frames"],
            fps=data["fps"],
            size=data["size"],
            cuts=data["cuts"],
            reused_vectors=data["reused_vectors"],
            frames_embedded=data["frames_embedded"],
            timings=data["timings"],
            options=MashupOptions.model_validate(job.options),
            links=ResultLinks(
                mashup=f"/jobs/{job.id}/mashup.mp4",
                download=f"/jobs/{job.id}/mashup.mp4?download=1",
                report=f"/jobs/{job.id}/report.png",
                poster=f"/jobs/{job.id}/poster.jpg",
                page=f"/jobs/{job.id}/result",
            ),
        )

    async def accept_upload(request: Request, *, form: bool) -> Job:
        """Admit, stream, check and queue an upload (the API and the form share this)."""
        st = state(request)
        admit(request)
        try:
            upload = await receive_upload(request, st.uploads_dir, settings.max_upload_bytes)
        except UploadRejected as exc:
            raise HTTPException(exc.status, exc.message, headers=exc.headers) from None
        try:
            if form:
                check_form_token(request, upload.fields.get("csrf_token"))
            try:
                options = MashupOptions.parse(upload.fields, st.defaults)
            except ConfigError as exc:
                raise HTTPException(422, str(exc)) from None
            try:
                info = await anyio.to_thread.run_sync(
                    probe_upload, upload.path, upload.filename, settings.probe_timeout
                )
            except UploadRejected as exc:
                raise HTTPException(exc.status, exc.message) from None
            if info["duration"] > settings.max_video_seconds:
                raise HTTPException(
                    422,
                    f"“{upload.filename}” is {_clock(info['duration'])} long; this server takes "
                    f"videos up to {_clock(settings.max_video_seconds)}",
                )
            return queue_job(request, upload, options, info)
        finally:
            upload.discard()  # moved into the job folder when accepted

    def queue_job(
        request: Request, upload: ReceivedUpload, options: MashupOptions, info: dict[str, Any]
    ) -> Job:
        st = state(request)
        with st.admission:  # many uploads may finish at once: check the bounds again
            admit(request)
            job_id = new_job_id()
            folder = st.jobs_dir / job_id
            folder.mkdir()
            os.replace(upload.path, folder / FILES["upload"])
            job = st.store.create(
                job_id=job_id,
                owner=client_id(request),
                client=client_address(request),
                filename=upload.filename,
                options=options.model_dump(),
                rank=1,
                input_info=_input_info(info, upload.size),
            )
        st.runner.wake()
        logger.info("job %s queued: %s (%d bytes)", job.id, upload.filename, upload.size)
        return job

    def remix(request: Request, job: Job, rank: int, options: MashupOptions) -> Job:
        st = state(request)
        if job.state != "done":
            raise HTTPException(409, f"the job is {job.state}; only a finished mashup re-mixes")
        source = st.jobs_dir / job.id
        if not (source / FILES["query"]).is_file() or not (source / FILES["upload"]).is_file():
            raise HTTPException(410, "this result's upload has been deleted; upload it again")
        limit = settings.matches
        if not 1 <= rank <= limit:
            raise HTTPException(422, f"rank must be between 1 and {limit}")
        with st.admission:
            admit(request)
            job_id = new_job_id()
            folder = st.jobs_dir / job_id
            folder.mkdir()
            for name in (FILES["upload"], FILES["query"]):
                _link_or_copy(source / name, folder / name)
            new = st.store.create(
                job_id=job_id,
                owner=client_id(request),
                client=client_address(request),
                filename=job.filename,
                options=options.model_dump(),
                rank=rank,
                input_info=job.input,
                parent=job.id,
            )
        st.runner.wake()
        return new

    # --- pages ---------------------------------------------------------------------------

    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    def home(request: Request) -> HTMLResponse:
        return home_page(request)

    def home_page(
        request: Request, *, error: str | None = None, status_code: int = 200
    ) -> HTMLResponse:
        st = state(request)
        recent = st.store.recent(client_id(request), limit=8)
        return page(
            request,
            "index.html",
            {
                "error": error,
                "defaults": st.defaults,
                "library_count": len(st.library.items()),
                "embedder_id": st.library.embedder_id,
                "recent": recent,
                "counts": st.store.counts(),
                "workers": settings.workers,
            },
            status_code,
        )

    @app.post("/jobs", include_in_schema=False)
    async def upload_form(request: Request) -> Response:
        try:
            job = await accept_upload(request, form=True)
        except HTTPException as exc:
            response = home_page(request, error=str(exc.detail), status_code=exc.status_code)
            for name, value in (exc.headers or {}).items():
                response.headers[name] = value
            return response
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.api_route(
        "/jobs/{job_id}",
        methods=["GET", "HEAD"],
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    def job_page(request: Request, job_id: str) -> Response:
        job = get_job(request, job_id)
        if job.state == "done":
            return RedirectResponse(f"/jobs/{job.id}/result", status_code=303)
        return page(request, "job.html", {"job": job, "status": status(request, job)})

    @app.api_route(
        "/jobs/{job_id}/result",
        methods=["GET", "HEAD"],
        response_class=HTMLResponse,
        include_in_schema=False,
    )
    def result_page(request: Request, job_id: str) -> Response:
        job = get_job(request, job_id)
        if job.state != "done":
            return RedirectResponse(f"/jobs/{job.id}", status_code=303)
        return page(
            request,
            "result.html",
            {"job": job, "result": result(request, job), "limit": settings.matches},
        )

    @app.post("/jobs/{job_id}/cancel", include_in_schema=False)
    async def cancel_form(request: Request, job_id: str) -> Response:
        job = get_job(request, job_id)
        form = await request.form()
        check_form_token(request, _field(form.get("csrf_token")))
        await anyio.to_thread.run_sync(state(request).runner.cancel, job.id)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.post("/jobs/{job_id}/remix", include_in_schema=False)
    async def remix_form(request: Request, job_id: str) -> Response:
        job = get_job(request, job_id)
        form = await request.form()
        check_form_token(request, _field(form.get("csrf_token")))
        fields = {k: _field(v) for k, v in form.items()}
        try:
            options = MashupOptions.parse(fields, MashupOptions.model_validate(job.options))
            rank = int(fields.get("rank") or job.rank)
        except (ConfigError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        new = remix(request, job, rank, options)
        return RedirectResponse(f"/jobs/{new.id}", status_code=303)

    @app.api_route(
        "/library", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    def library_page(request: Request, page_number: Annotated[int, Query(alias="page")] = 1) -> Any:
        st = state(request)
        return page(
            request,
            "library.html",
            {"lib": st.library.page(page_number), "embedder_id": st.library.embedder_id},
        )

    @app.api_route(
        "/login", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    def login_page(request: Request, next: str = "/") -> Any:
        return page(request, "login.html", {"next": safe_next(next), "error": None})

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        target = safe_next(_field(form.get("next")))
        check_form_token(request, _field(form.get("csrf_token")))
        given = _field(form.get("token")) or ""
        if settings.token is None or not _same(given, settings.token):
            await anyio.sleep(0.5)  # slows guessing
            return page(
                request,
                "login.html",
                {"next": target, "error": "that is not this server's access token"},
                401,
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            TOKEN_COOKIE,
            token_cookie_value(state(request).secret, settings.token),
            max_age=30 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    # --- files ---------------------------------------------------------------------------

    @app.api_route("/jobs/{job_id}/mashup.mp4", methods=["GET", "HEAD"], include_in_schema=False)
    def mashup_file(request: Request, job_id: str, download: bool = False) -> FileResponse:
        job = get_job(request, job_id)
        path = job_file(request, job, FILES["mashup"])
        name = f"avajams-mashup-{job.id[:8]}.mp4"
        return FileResponse(
            path,
            media_type="video/mp4",
            filename=name if download else None,
            content_disposition_type="attachment" if download else "inline",
            headers={"cache-control": "private, max-age=3600"},
        )

    @app.api_route("/jobs/{job_id}/report.png", methods=["GET", "HEAD"], include_in_schema=False)
    def report_file(request: Request, job_id: str) -> FileResponse:
        job = get_job(request, job_id)
        return FileResponse(job_file(request, job, FILES["report"]), media_type="image/png")

    @app.api_route("/jobs/{job_id}/poster.jpg", methods=["GET", "HEAD"], include_in_schema=False)
    def poster_file(request: Request, job_id: str) -> FileResponse:
        job = get_job(request, job_id)
        return FileResponse(job_file(request, job, FILES["poster"]), media_type="image/jpeg")

    @app.api_route("/jobs/{job_id}/pairs/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def pair_file(request: Request, job_id: str, name: str) -> FileResponse:
        job = get_job(request, job_id)
        if not _PAIR_NAME.match(name):
            raise HTTPException(404, "no such picture")
        path = job_file(request, job, f"{FILES['pairs']}/{name}")
        return FileResponse(path, media_type="image/jpeg")

    @app.api_route("/library/thumbs/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def library_thumb(request: Request, name: str) -> FileResponse:
        if not _THUMB_NAME.match(name):
            raise HTTPException(404, "no such thumbnail")
        view = state(request).library
        path = await anyio.to_thread.run_sync(view.thumbnail, name[:-4])
        if path is None:
            raise HTTPException(404, "no such thumbnail")
        return FileResponse(path, media_type="image/jpeg")

    # --- the JSON API --------------------------------------------------------------------

    @app.get("/api/health", tags=["server"])
    def health(request: Request) -> Health:
        """Liveness: answers at once, whatever the workers are doing."""
        st = state(request)
        return Health(
            status="ok", queued=st.store.counts()["queued"], running=st.runner.running_count
        )

    @app.get("/api/library", tags=["library"])
    def library_api(
        request: Request,
        page_number: Annotated[int, Query(alias="page", ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> LibraryOut:
        """The music videos in the library, newest first, paged."""
        st = state(request)
        lib = st.library.page(page_number, per_page)
        return LibraryOut(
            embedder_id=st.library.embedder_id,
            videos=lib.total,
            page=lib.page,
            pages=lib.pages,
            per_page=lib.per_page,
            items=[
                LibraryItemOut(
                    name=i.name,
                    duration=i.duration,
                    added=i.added,
                    frames=i.frames,
                    thumbnail=f"/library/thumbs/{i.thumb}.jpg",
                )
                for i in lib.items
            ],
        )

    upload_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            **{
                                name: {"type": "string", "description": info.description or ""}
                                for name, info in MashupOptions.model_fields.items()
                            },
                        },
                    }
                }
            },
        }
    }

    @app.post(
        "/api/jobs",
        status_code=202,
        tags=["jobs"],
        openapi_extra=upload_body,
        responses={
            400: {"description": "not a usable upload (empty, malformed, interrupted)"},
            413: {"description": "larger than the upload limit"},
            415: {"description": "not a video avajams can decode (text, audio only, ...)"},
            422: {"description": "bad option, or the video is too long"},
            429: {"description": "this client has too many jobs waiting (Retry-After)"},
            503: {"description": "the queue is full (Retry-After)"},
        },
    )
    async def create_job(request: Request) -> JobStatus:
        """Upload a video (multipart field ``file``, plus any mashup option) and queue a job."""
        job = await accept_upload(request, form=False)
        return status(request, job)

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def job_status(request: Request, job_id: str) -> JobStatus:
        """A job's state, its stages' progress and its place in the queue."""
        return status(request, get_job(request, job_id))

    @app.get("/api/jobs/{job_id}/result", tags=["jobs"], responses={409: {}})
    def job_result(request: Request, job_id: str) -> JobResult:
        """A finished job's matches (with aligned frame pairs) and mashup."""
        return result(request, get_job(request, job_id))

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
    async def cancel_job(request: Request, job_id: str) -> JobStatus:
        """Cancel a queued or running job (its worker and ffmpeg are ended, temp files go)."""
        job = get_job(request, job_id)
        await anyio.to_thread.run_sync(state(request).runner.cancel, job.id)
        return status(request, get_job(request, job_id))

    @app.post("/api/jobs/{job_id}/remix", status_code=202, tags=["jobs"])
    def remix_job(
        request: Request, job_id: str, body: Annotated[RemixRequest, Body()]
    ) -> JobStatus:
        """Re-render a finished job with match ``rank`` and/or new options; the upload's
        frame vectors are reused, never re-embedded."""
        job = get_job(request, job_id)
        try:
            options = MashupOptions.parse(body.options, MashupOptions.model_validate(job.options))
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        return status(request, remix(request, job, body.rank, options))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        wants_html = not request.url.path.startswith(
            "/api/"
        ) and "text/html" in request.headers.get("accept", "")
        if wants_html and exc.status_code in (403, 404, 409, 410, 422, 429, 503):
            response: Response = page(
                request,
                "error.html",
                {"status": exc.status_code, "message": exc.detail},
                exc.status_code,
            )
        else:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(AvajamsError)
    async def avajams_error(request: Request, exc: AvajamsError) -> Response:
        logger.warning("%s: %s", type(exc).__name__, exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    return app


# --- helpers --------------------------------------------------------------------------------


def _version() -> str:
    from avajams import __version__

    return __version__


def _dt(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def _field(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _input_info(info: dict[str, Any], size: int) -> dict[str, Any]:
    return {
        "duration": round(float(info["duration"]), 3),
        "width": int(info["width"]),
        "height": int(info["height"]),
        "fps": round(float(info["fps"]), 3),
        "has_audio": bool(info["has_audio"]),
        "bytes": size,
    }


def _clock(seconds: float | None) -> str:
    """``75.4`` -> ``1:15``; hours when needed."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _when(value: float | datetime | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        moment = datetime.fromtimestamp(value, tz=timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
