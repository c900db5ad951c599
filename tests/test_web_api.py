"""The web app through FastAPI's test client: API, pages, security, queue, cancel, restart.

Jobs run for real (worker processes, FakeEmbedder, MoviePy + ffmpeg renders of small videos).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from web_support import WebMedia, group_processes, worker_pid

from avajams.errors import ConfigError
from avajams.media import probe
from avajams.pipeline import PipelineConfig
from avajams.web import ServeSettings, create_app
from avajams.web.security import CONTENT_SECURITY_POLICY

MakeClient = Callable[..., TestClient]


def fake_config(library: Path) -> PipelineConfig:
    return PipelineConfig.from_mapping(
        {
            "embedder": {"kind": "avajams._testing.fake:FakeEmbedder"},
            "library": {"directory": str(library)},
        }
    )


@pytest.fixture
def make_client(tmp_path: Path, fake_library: Path) -> Iterator[MakeClient]:
    with ExitStack() as stack:

        def make(work_dir: Path | None = None, **overrides: Any) -> TestClient:
            settings = ServeSettings(
                config=fake_config(fake_library),
                work_dir=work_dir or tmp_path / "work",
                **overrides,
            )
            client: TestClient = stack.enter_context(TestClient(create_app(settings)))
            return client

        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def upload(
    client: TestClient,
    path: Path,
    *,
    name: str | None = None,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    with open(path, "rb") as fh:
        return client.post(
            "/api/jobs",
            files={"file": (name or path.name, fh, "video/mp4")},
            data=data or {},
            headers=headers or {},
        )


def wait_for(client: TestClient, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] not in ("queued", "running"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{32})"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def uploads_left(client: TestClient) -> list[Path]:
    work = client.app.state.avajams.settings.work_dir  # type: ignore[attr-defined]
    return list((work / "uploads").iterdir())


# --- settings ------------------------------------------------------------------------------


def test_settings_refuse_a_weak_token_and_know_when_exposed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 16 characters"):
        ServeSettings.build(work_dir=tmp_path, token="short")
    assert not ServeSettings(work_dir=tmp_path).exposed
    assert not ServeSettings(work_dir=tmp_path, host="::1").exposed
    assert ServeSettings(work_dir=tmp_path, host="0.0.0.0").exposed
    relative = ServeSettings(
        work_dir=Path("rel"), config=PipelineConfig.from_mapping({"library": "lib"})
    )
    assert relative.work_dir.is_absolute()
    assert relative.library_directory.is_absolute()


# --- the whole job ---------------------------------------------------------------------------


def test_upload_match_render_and_remix_without_reembedding(
    client: TestClient, web_media: WebMedia
) -> None:
    response = upload(client, web_media.clip, data={"segment_seconds": "1.5"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"])
    assert job["links"]["page"] == f"/jobs/{job['id']}"
    status = wait_for(client, job["id"])
    assert status["state"] == "done", status["error"]
    stages = {s["name"]: s for s in status["stages"]}
    assert all(s["state"] == "done" for s in stages.values())
    assert stages["sampling"]["total"] == stages["sampling"]["done"] == 3
    assert stages["embedding"]["done"] == 3
    assert stages["rendering"]["done"] == stages["rendering"]["total"] > 0

    result = client.get(f"/api/jobs/{job['id']}/result").json()
    assert result["matches"][0]["name"] == web_media.expected.name
    assert result["music"]["rank"] == 1
    assert result["options"]["segment_seconds"] == 1.5
    assert result["frames_embedded"] == 3
    assert not result["reused_vectors"]
    assert result["cuts"][:2] == [1.5, 3.0]
    assert all(m["pairs"] for m in result["matches"])
    pair = result["matches"][0]["pairs"][0]
    image = client.get(pair["query_image"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"

    # the MP4: whole, in byte ranges (what <video> seeks with), and as a download
    whole = client.get(result["links"]["mashup"])
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    ranged = client.get(result["links"]["mashup"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == whole.content[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    head = client.head(result["links"]["mashup"])
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(whole.content))
    assert head.content == b""
    download = client.get(result["links"]["download"])
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "avajams-mashup-" in download.headers["content-disposition"]
    work = client.app.state.avajams.jobs_dir  # type: ignore[attr-defined]
    info = probe(work / job["id"] / "mashup.mp4")
    assert info.has_audio
    assert abs(info.duration - result["plan_duration"]) < 0.1
    report = client.get(result["links"]["report"])
    assert report.content[:8] == b"\x89PNG\r\n\x1a\n"
    page = client.get(f"/jobs/{job['id']}/result")
    assert page.status_code == 200
    assert web_media.expected.name in page.text
    assert client.get(f"/jobs/{job['id']}", follow_redirects=False).status_code == 303

    # re-mix with match #2: the stored vectors are matched again, never re-embedded
    before = np.load(work / job["id"] / "query.npz")["vectors"]
    second = result["matches"][1]["name"]
    response = client.post(
        f"/api/jobs/{job['id']}/remix", json={"rank": 2, "options": {"crossfade_ms": 200}}
    )
    assert response.status_code == 202, response.text
    remix = response.json()
    assert remix["parent"] == job["id"]
    assert {s["name"]: s["state"] for s in remix["stages"]}["embedding"] == "reused"
    assert wait_for(client, remix["id"])["state"] == "done"
    again = client.get(f"/api/jobs/{remix['id']}/result").json()
    assert again["reused_vectors"]
    assert again["frames_embedded"] == 0
    assert again["music"]["name"] == second
    assert again["options"]["crossfade_ms"] == 200
    assert again["options"]["segment_seconds"] == 1.5  # kept from the job re-mixed
    assert [m["name"] for m in again["matches"]] == [m["name"] for m in result["matches"]]
    after = np.load(work / remix["id"] / "query.npz")["vectors"]
    np.testing.assert_array_equal(before, after)
    # the home page lists this browser's results, newest first
    home = client.get("/").text
    assert home.index(f"/jobs/{remix['id']}/result") < home.index(f"/jobs/{job['id']}/result")


def test_worker_reuses_stored_vectors_without_calling_the_embedder(
    tmp_path: Path, fake_library: Path, web_media: WebMedia
) -> None:
    import shutil

    from avajams import Pipeline
    from avajams.testing import FakeEmbedder
    from avajams.web.worker import run_job

    class Spy(FakeEmbedder):
        calls = 0

        def embed(self, images: Any) -> Any:
            Spy.calls += 1
            return super().embed(images)

    job_dir = tmp_path / "job"
    job_dir.mkdir()
    shutil.copy(web_media.clip, job_dir / "upload.media")
    config = fake_config(fake_library)
    task = {"config": json.loads(config.model_dump_json()), "matches": 3, "rank": 1}
    events: list[dict[str, Any]] = []
    first = run_job(job_dir, task, events.append, pipeline=Pipeline(config, embedder=Spy()))
    assert Spy.calls > 0
    assert first["frames_embedded"] == 3
    assert {e["stage"] for e in events if e["event"] == "progress"} == {
        "sampling",
        "embedding",
        "matching",
        "rendering",
    }
    calls = Spy.calls
    second = run_job(
        job_dir, {**task, "rank": 2}, events.append, pipeline=Pipeline(config, embedder=Spy())
    )
    assert Spy.calls == calls
    assert second["reused_vectors"]
    assert second["music"]["rank"] == 2


# --- bad uploads -----------------------------------------------------------------------------


def test_bad_uploads_get_clear_4xx_and_leave_no_file(
    make_client: MakeClient, tmp_path: Path
) -> None:
    from avajams._testing.media import make_audio_only

    client = make_client(max_upload_bytes=64 * 1024)
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = make_audio_only(tmp_path / "song.mp4", duration=0.5)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (200 * 1024))

    response = upload(client, text)
    assert response.status_code == 415
    assert "“notes.mp4” could not be opened as a video" in response.json()["detail"]
    assert str(tmp_path) not in response.text
    assert "uploads" not in response.text
    response = upload(client, empty)
    assert response.status_code == 400
    assert "“empty.mp4” is empty" in response.json()["detail"]
    response = upload(client, audio)
    assert response.status_code == 415
    assert "has no video stream" in response.json()["detail"]
    response = upload(client, big)
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert "64 KiB" in response.json()["detail"]
    response = client.post("/api/jobs", data={"segment_seconds": "2"})
    assert response.status_code == 400
    response = upload(client, audio, data={"segment_seconds": "0.01"})
    assert response.status_code == 422
    assert "segment_seconds" in response.json()["detail"]
    assert uploads_left(client) == []
    assert client.app.state.avajams.store.counts()["queued"] == 0  # type: ignore[attr-defined]

    # the form (no JavaScript) shows the same message on the page
    token = csrf_of(client.get("/").text)
    with open(text, "rb") as fh:
        page = client.post(
            "/jobs",
            files={"file": ("notes.mp4", fh, "video/mp4")},
            data={"csrf_token": token},
        )
    assert page.status_code == 415
    assert "could not be opened as a video" in page.text
    assert 'id="upload-message"' in page.text


def test_a_too_long_video_is_refused(make_client: MakeClient, web_media: WebMedia) -> None:
    client = make_client(max_video_seconds=2.0)
    response = upload(client, web_media.clip)
    assert response.status_code == 422
    assert "0:03 long" in response.json()["detail"]
    assert uploads_left(client) == []


# --- security --------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ["/", "/library", "/api/health", "/static/app.css", "/nope", "/api/openapi.json"]:
        response = client.get(path)
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    # no inline scripts, styles or event handlers in any page
    for path in ["/", "/library"]:
        html = client.get(path).text
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []
        assert " style=" not in html
        assert "<style" not in html
        assert re.search(r"\son[a-z]+=", html) is None


def test_uploaded_names_are_escaped_everywhere(client: TestClient, web_media: WebMedia) -> None:
    name = "<script>alert(1)</script>.mp4"
    response = upload(client, web_media.clip, name=name)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["filename"] == name
    pages = [client.get(f"/jobs/{job['id']}").text, client.get("/").text]
    status = wait_for(client, job["id"])
    assert status["state"] == "done", status["error"]
    pages.append(client.get(f"/jobs/{job['id']}/result").text)
    for html in pages:
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in html


def test_cross_site_posts_are_refused_before_the_body_is_read(
    client: TestClient, web_media: WebMedia
) -> None:
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:9999"},
    ):
        response = upload(client, web_media.clip, headers=headers)
        assert response.status_code == 403, headers
        assert "cross-site" in response.json()["detail"]
    same = upload(
        client,
        web_media.clip,
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 202
    client.post(f"/api/jobs/{same.json()['id']}/cancel")
    # the HTML form also needs this browser's token
    with open(web_media.clip, "rb") as fh:
        response = client.post(
            "/jobs", files={"file": ("a.mp4", fh, "video/mp4")}, data={"csrf_token": "0" * 32}
        )
    assert response.status_code == 403
    assert "form has expired" in response.text
    for path in ("/jobs/" + "a" * 32 + "/cancel", "/jobs/" + "a" * 32 + "/remix"):
        assert client.post(path, data={"csrf_token": "x"}).status_code in (403, 404)
    assert uploads_left(client) == []


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/..%2F..%2Fsecret.key/mashup.mp4",
        "/jobs/%2e%2e/result",
        "/jobs/..%2fjobs.sqlite/report.png",
        "/jobs/%2Fetc%2Fpasswd/poster.jpg",
        "/jobs//etc/passwd",
        "/jobs/" + "a" * 31 + "%00/result",
        "/jobs/" + "A" * 32 + "/mashup.mp4",
        "/api/jobs/..%2F..%2Fsecret.key",
        "/api/jobs/%00",
        "/api/jobs/" + "a" * 32 + "/result",
        "/library/thumbs/..%2F..%2Fsecret.key",
        "/library/thumbs/%2Fetc%2Fpasswd",
        "/library/thumbs/" + "0" * 32 + ".jpg%00.png",
        "/static/..%2F..%2Fapp.py",
        "/static/%2e%2e/%2e%2e/app.py",
        "/static//etc/passwd",
        "/static/app.css%00.js",
    ],
)
def test_path_parameters_never_reach_outside(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 405), (path, response.status_code)
    assert b"def create_app" not in response.content
    assert b"root:" not in response.content


def test_path_parameters_of_a_real_job_stay_inside_it(
    client: TestClient, web_media: WebMedia
) -> None:
    job = upload(client, web_media.clip).json()
    assert wait_for(client, job["id"])["state"] == "done"
    base = f"/jobs/{job['id']}"
    for path in (
        f"{base}/pairs/..%2F..%2F..%2Fsecret.key",
        f"{base}/pairs/..%2Fmatches.json",
        f"{base}/pairs/%2Fetc%2Fpasswd",
        f"{base}/pairs/1-1-query.jpg%00",
        f"{base}/pairs/9-9-query.jpg",
        f"{base}/task.json",
        f"{base}/upload.media",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
    assert client.get(f"{base}/pairs/1-1-query.jpg").status_code == 200


def test_access_token_guards_pages_and_api(make_client: MakeClient) -> None:
    token = "s3cret-token-0123456789"
    client = make_client(token=token)
    assert client.get("/api/health").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F"
    api = client.get("/api/library")
    assert api.status_code == 401
    assert api.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/api/jobs").status_code == 401
    assert client.get("/api/library", headers={"Authorization": f"Bearer {token}"}).is_success
    assert client.get("/api/library", headers={"Authorization": "Bearer wrong"}).status_code == 401
    login = client.get("/login?next=/library").text
    csrf = csrf_of(login)
    wrong = client.post("/login", data={"token": "nope", "csrf_token": csrf, "next": "/library"})
    assert wrong.status_code == 401
    assert "not this server&#39;s access token" in wrong.text
    evil = client.post(
        "/login",
        data={"token": token, "csrf_token": csrf, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert evil.headers["location"] == "/"
    assert token not in evil.headers["set-cookie"]
    good = client.post(
        "/login",
        data={"token": token, "csrf_token": csrf, "next": "/library"},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/library"
    assert client.get("/library").status_code == 200
    assert client.get("/api/library").status_code == 200


# --- queue, limits, cancel -------------------------------------------------------------------


def test_queue_bound_and_per_client_limit(make_client: MakeClient, web_media: WebMedia) -> None:
    client = make_client(workers=1, max_queue=1, max_jobs_per_client=10)
    first = upload(client, web_media.clip).json()  # runs (takes seconds: a worker process)
    second = upload(client, web_media.clip).json()  # waits
    third = upload(client, web_media.clip)
    assert third.status_code == 503
    assert third.headers["retry-after"] == "30"
    assert "queue is full" in third.json()["detail"]
    status = client.get(f"/api/jobs/{second['id']}").json()
    assert status["state"] == "queued"
    assert status["queue_position"] == 1
    page = client.get(f"/jobs/{second['id']}").text
    assert "0 jobs ahead of yours" in page
    cancelled = client.post(f"/api/jobs/{second['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    client.post(f"/api/jobs/{first['id']}/cancel")

    limited = make_client(
        work_dir=client.app.state.avajams.settings.work_dir.parent / "w2",  # type: ignore[attr-defined]
        workers=1,
        max_queue=10,
        max_jobs_per_client=2,
    )
    jobs = [upload(limited, web_media.clip) for _ in range(3)]
    assert [r.status_code for r in jobs] == [202, 202, 429]
    assert jobs[2].headers["retry-after"] == "30"
    assert "2 job(s) waiting or running" in jobs[2].json()["detail"]
    for response in jobs[:2]:
        limited.post(f"/api/jobs/{response.json()['id']}/cancel")
    assert uploads_left(client) == []


def test_cancel_during_render_kills_ffmpeg_and_leaves_no_temp_file(
    make_client: MakeClient, web_media: WebMedia
) -> None:
    client = make_client()
    # the 12 s music video itself: it matches itself, and its render takes seconds
    job = upload(client, web_media.long_music).json()
    deadline = time.monotonic() + 60
    ffmpeg: list[tuple[int, str, str]] = []
    pid = None
    while time.monotonic() < deadline and not ffmpeg:
        status = client.get(f"/api/jobs/{job['id']}").json()
        assert status["state"] in ("queued", "running"), status
        pid = pid or worker_pid(job["id"])
        if pid is not None:
            ffmpeg = [p for p in group_processes(pid) if "ffmpeg" in p[2]]
        time.sleep(0.02)
    assert ffmpeg, "never saw the render's ffmpeg"
    assert pid is not None
    response = client.post(f"/api/jobs/{job['id']}/cancel")
    assert response.json()["state"] == "cancelled"
    assert group_processes(pid) == []
    folder = client.app.state.avajams.jobs_dir / job["id"]  # type: ignore[attr-defined]
    leftovers = [p.name for p in folder.rglob("*") if "partial" in p.name or p.name == "tmp"]
    assert leftovers == []
    assert not (folder / "mashup.mp4").exists()
    page = client.get(f"/jobs/{job['id']}").text
    assert "Cancelled." in page


# --- restart, expiry, size cap ---------------------------------------------------------------


def test_restart_keeps_results_and_fails_interrupted_jobs(
    make_client: MakeClient, web_media: WebMedia, tmp_path: Path
) -> None:
    from avajams.web.store import JobStore

    work = tmp_path / "restart"
    first = make_client(work_dir=work)
    done = upload(first, web_media.clip).json()
    assert wait_for(first, done["id"])["state"] == "done"
    first.__exit__(None, None, None)  # the server stops
    store = JobStore(work / "jobs.sqlite")  # a job that was running when it stopped
    store.create(
        job_id="b" * 32,
        owner="x",
        client="y",
        filename="interrupted.mp4",
        options={},
        rank=1,
        input_info={},
    )
    store.claim_next()
    store.close()
    (work / "jobs" / ("b" * 32) / "tmp").mkdir(parents=True)
    (work / "uploads" / "half.part").write_bytes(b"x")

    second = make_client(work_dir=work)
    again = second.get(f"/api/jobs/{done['id']}/result")
    assert again.status_code == 200
    assert second.get(again.json()["links"]["mashup"]).status_code == 200
    interrupted = second.get("/api/jobs/" + "b" * 32).json()
    assert interrupted["state"] == "failed"
    assert interrupted["error"].startswith("interrupted")
    assert not (work / "jobs" / ("b" * 32) / "tmp").exists()
    assert uploads_left(second) == []


def test_janitor_expires_old_results_and_evicts_oldest_over_the_cap(tmp_path: Path) -> None:
    from avajams.web.runner import JobRunner
    from avajams.web.store import JobStore, new_job_id

    work = tmp_path / "work"
    jobs = work / "jobs"
    jobs.mkdir(parents=True)
    store = JobStore(work / "jobs.sqlite")
    settings = ServeSettings(work_dir=work, keep_hours=1.0, max_work_dir_bytes=7 << 19)
    runner = JobRunner(settings, store, jobs)
    ids = []
    for i in range(4):
        job_id = new_job_id()
        store.create(
            job_id=job_id,
            owner="o",
            client="c",
            filename=f"{i}.mp4",
            options={},
            rank=1,
            input_info={},
        )
        store.claim_next()
        store.finish(job_id, "done", result={})
        (jobs / job_id).mkdir()
        (jobs / job_id / "mashup.mp4").write_bytes(b"\0" * (1 << 20))
        ids.append(job_id)
    queued = new_job_id()  # waiting jobs are never evicted
    store.create(
        job_id=queued, owner="o", client="c", filename="q.mp4", options={}, rank=1, input_info={}
    )
    (jobs / queued).mkdir()
    (jobs / queued / "upload.media").write_bytes(b"\0" * (1 << 20))
    stray = jobs / ("f" * 32)  # a folder without a row
    stray.mkdir()
    with store._tx() as db:  # the first result finished two hours ago
        db.execute("UPDATE jobs SET finished = ? WHERE id = ?", (time.time() - 7200, ids[0]))
    runner._janitor_pass()
    assert store.get(ids[0]) is None
    assert not (jobs / ids[0]).exists()
    assert not stray.exists()
    # 3 results + the queued upload = 4 MiB > 3.5 MiB: the oldest remaining result goes
    assert store.get(ids[1]) is None
    assert [store.get(i) is not None for i in ids[2:]] == [True, True]
    assert (jobs / queued / "upload.media").exists()
    store.close()


# --- pages and the rest of the API -----------------------------------------------------------


def test_pages_render_and_library_is_paged(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200
    assert "<strong>4</strong> music videos" in home.text
    assert client.head("/").status_code == 200  # curl -I works
    assert "fake-64-0" in home.text
    assert 'data-max-bytes="1073741824"' in home.text
    library = client.get("/library")
    assert library.status_code == 200
    assert library.text.count('class="card library-item"') == 4
    thumbs = re.findall(r'src="(/library/thumbs/[0-9a-f]{32}\.jpg)"', library.text)
    assert len(thumbs) == 4
    image = client.get(thumbs[0])
    assert image.status_code == 200
    assert image.content[:2] == b"\xff\xd8"
    api = client.get("/api/library", params={"per_page": 3, "page": 2}).json()
    assert (api["videos"], api["pages"], api["page"], len(api["items"])) == (4, 2, 2, 1)
    assert client.get("/library?page=99").status_code == 200
    missing = client.get("/jobs/" + "c" * 32, headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert "the result expired" in missing.text
    assert client.get("/api/jobs/" + "c" * 32).json()["detail"].startswith("no such job")


def test_openapi_schema_documents_the_api(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/result",
        "/api/jobs/{job_id}/cancel",
        "/api/jobs/{job_id}/remix",
        "/api/library",
        "/api/health",
    ):
        assert path in paths, path
    body = paths["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "file" in body["schema"]["properties"]
    assert "segment_seconds" in body["schema"]["properties"]
    assert "/" not in paths  # pages are not API
    assert client.get("/docs").status_code == 404  # Swagger UI would need a CDN


# --- the command ---------------------------------------------------------------------------


def test_serve_command_warns_when_exposed_without_a_token(
    fake_library: Path,
    web_media: WebMedia,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import uvicorn

    from avajams.cli import main

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    base = ["--config", str(web_media.config_file), "serve", "--library", str(fake_library)]
    work = ["--work-dir", str(tmp_path / "w")]
    assert main([*base, *work, "--host", "0.0.0.0", "--port", "8123"]) == 0
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0 without an access token" in err
    assert calls[-1]["host"] == "0.0.0.0"
    assert calls[-1]["port"] == 8123
    token_file = tmp_path / "token"
    token_file.write_text("a-long-enough-token-123\n")
    assert main([*base, *work, "--host", "0.0.0.0", "--token-file", str(token_file)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main([*base, *work]) == 0
    assert calls[-1]["host"] == "127.0.0.1"
    assert "warning" not in capsys.readouterr().err
    assert main([*base, *work, "--token", "short"]) == 1
    assert "at least 16 characters" in capsys.readouterr().err
    missing = ["--config", str(web_media.config_file), "serve", "--library", str(tmp_path / "no")]
    assert main([*missing, *work]) == 1
    assert "no library in" in capsys.readouterr().err
