"""The web app end to end: a real ``avajams serve`` driven by a real headless Chromium.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it when missing),
driven by Playwright launched with ``executable_path`` (Playwright's own browser download is
not used). Without a browser these tests skip, except under ``CI=true``, where they fail.

Screenshots of every page, at desktop width (1280 px) and phone width (390 px), are saved as
test artefacts in ``$AVAJAMS_TEST_ARTIFACTS/web`` (default: this run's pytest temp folder).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from web_support import LiveServer, WebMedia, index_library, live_server

from avajams.media import probe

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_UPLOAD_MB = 2


def chromium_path() -> str | None:
    """Debian's Chromium (or ``$AVAJAMS_CHROMIUM``), if installed."""
    for candidate in (os.environ.get("AVAJAMS_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    problem = None
    if executable is None:
        problem = "no Chromium: apt-get install chromium (Debian's package)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "Playwright is not installed: pip install -e '.[dev]'"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = os.environ.get("AVAJAMS_TEST_ARTIFACTS")
    folder = Path(base) / "web" if base else tmp_path_factory.mktemp("web-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def live(
    fake_library: Path, web_media: WebMedia, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    work = tmp_path_factory.mktemp("web-live") / "work"
    with live_server(
        work,
        fake_library,
        config=web_media.config_file,
        extra_args=("--max-upload-mb", str(MAX_UPLOAD_MB)),
    ) as server:
        yield server


def shoot(page: Any, folder: Path, name: str) -> None:
    """Save a full-page screenshot at the page's current width, images loaded.

    Predicates given to ``wait_for_function`` are arrow functions: an expression string is
    evaluated with ``eval`` inside the page, which the app's CSP (rightly) forbids.
    """
    page.wait_for_load_state("networkidle")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=10_000
    )
    page.evaluate("window.scrollTo(0, 0)")
    width = page.viewport_size["width"]
    page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)


def phone_page(browser: Any, desktop: Any) -> Any:
    """A phone-sized page sharing the desktop page's cookies (same client, same results)."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.add_cookies(desktop.context.cookies())
    return context.new_page()


def frame_at(page: Any, seconds: float) -> list[float]:
    """Seek the page's <video> to ``seconds`` and return its picture as grey levels (32x24)."""
    values: list[float] = page.evaluate(
        """async (t) => {
            const v = document.querySelector('video#mashup');
            await new Promise((done) => {
                v.addEventListener('seeked', done, { once: true });
                v.currentTime = t;
            });
            const c = document.createElement('canvas');
            c.width = 32; c.height = 24;
            const g = c.getContext('2d');
            g.drawImage(v, 0, 0, 32, 24);
            const d = g.getImageData(0, 0, 32, 24).data;
            const out = [];
            for (let i = 0; i < d.length; i += 4) out.push((d[i] + d[i + 1] + d[i + 2]) / 3);
            return out;
        }""",
        seconds,
    )
    return values


def follow_to_result(page: Any, timeout_s: float = 120) -> str:
    page.wait_for_url("**/jobs/*/result", timeout=timeout_s * 1000)
    job_id: str = page.url.rstrip("/").split("/")[-2]
    return job_id


def test_upload_progress_result_video_download_and_remix(
    browser: Any, live: LiveServer, web_media: WebMedia, artefacts: Path, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(live.url + "/")
    assert "music videos" in page.inner_text(".library-card")
    shoot(page, artefacts, "home-empty")

    # upload through the file input; the script posts it and follows the job
    page.set_input_files("#file", str(web_media.clip))
    assert "my-clip.mp4" in page.inner_text("#file-name")
    page.click("#upload-button")
    page.wait_for_url("**/jobs/*", timeout=30_000)
    assert page.inner_text(".stage[data-stage='upload'] .stage-name") == "Upload"
    shoot(page, artefacts, "job")
    job_id = follow_to_result(page)

    # the result: the right match, a video that plays and seeks
    result = page.request.get(f"{live.url}/api/jobs/{job_id}/result").json()
    assert result["matches"][0]["name"] == web_media.expected.name
    assert page.inner_text(".music-name") == web_media.expected.name
    assert page.inner_text(".match.chosen .match-name") == web_media.expected.name
    page.wait_for_function(
        "() => document.querySelector('video#mashup').readyState >= 3", timeout=30_000
    )
    duration = page.evaluate("document.querySelector('video#mashup').duration")
    assert abs(duration - result["plan_duration"]) <= 0.1, (duration, result["plan_duration"])
    user_part = frame_at(page, 0.5)  # your clip (the mashup opens with it) ...
    music_part = frame_at(page, 2.5)  # ... the music video after the cut at 2 s
    again = frame_at(page, 0.5)
    change = sum(abs(a - b) for a, b in zip(user_part, music_part, strict=True)) / len(user_part)
    same = sum(abs(a - b) for a, b in zip(user_part, again, strict=True)) / len(user_part)
    assert change > 12, change
    assert same < 3, same
    shoot(page, artefacts, "result")

    # the download is a valid MP4 of the planned length, with sound
    with page.expect_download() as waiting:
        page.click("#download")
    download = waiting.value
    assert download.suggested_filename == f"avajams-mashup-{job_id[:8]}.mp4"
    saved = tmp_path / "download.mp4"
    download.save_as(saved)
    info = probe(saved)
    assert info.has_audio
    assert abs(info.duration - result["plan_duration"]) < 0.1
    assert (info.width, info.height) == tuple(result["size"])
    with av.open(str(saved)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == result["frames"]

    # re-mix with match #2 from the result page: a new job, nothing re-embedded
    second = result["matches"][1]["name"]
    page.click("button[data-remix='2']")
    page.wait_for_url("**/jobs/*", timeout=30_000)
    remix_id = follow_to_result(page)
    assert remix_id != job_id
    assert page.inner_text(".match.chosen .match-name") == second
    remixed = page.request.get(f"{live.url}/api/jobs/{remix_id}/result").json()
    assert remixed["reused_vectors"]
    assert remixed["frames_embedded"] == 0

    # the other pages, at both widths
    page.goto(live.url + "/")
    assert page.locator(".recent-item").count() == 2
    shoot(page, artefacts, "home")
    page.goto(live.url + "/library")
    assert page.locator(".library-item").count() == 4
    shoot(page, artefacts, "library")
    assert errors == []  # no script errors, no CSP violations
    page.goto(live.url + "/jobs/" + "0" * 32)  # a 404 (the console reports it)
    assert "Not found" in page.inner_text("h1")
    shoot(page, artefacts, "error")
    phone = phone_page(browser, page)
    for path, name in (
        ("/", "home"),
        (f"/jobs/{job_id}/result", "result"),
        ("/library", "library"),
        ("/jobs/" + "0" * 32, "error"),
    ):
        phone.goto(live.url + path)
        shoot(phone, artefacts, name)
        overflow = phone.evaluate("document.documentElement.scrollWidth")
        assert overflow <= PHONE["width"], (name, overflow)  # no sideways scrolling
    phone.context.close()
    context.close()


def test_bad_uploads_show_their_messages(
    browser: Any, live: LiveServer, artefacts: Path, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(live.url + "/")

    text = tmp_path / "holiday.mp4"
    text.write_text("not a video, just text\n" * 100)
    page.set_input_files("#file", str(text))
    page.click("#upload-button")
    message = page.locator("#upload-message")
    message.wait_for(state="visible", timeout=30_000)
    assert "“holiday.mp4” could not be opened as a video" in message.inner_text()
    assert page.url == live.url + "/"  # still on the form
    shoot(page, artefacts, "upload-error")

    big = tmp_path / "huge.mp4"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 1))
    page.set_input_files("#file", str(big))
    assert "this server takes files up to 2.0 MiB" in message.inner_text()
    page.click("#upload-button")
    assert page.url == live.url + "/"
    phone = phone_page(browser, page)
    phone.goto(live.url + "/")
    phone.set_input_files("#file", str(text))
    phone.click("#upload-button")
    phone.locator("#upload-message").wait_for(state="visible", timeout=30_000)
    shoot(phone, artefacts, "upload-error")
    phone.context.close()
    context.close()
    assert list((live.work_dir / "uploads").iterdir()) == []


def test_job_page_while_queued_and_running(
    browser: Any, live: LiveServer, web_media: WebMedia, artefacts: Path
) -> None:
    """Two uploads at once (one worker): the second page shows its queue position; both pages
    keep working when reloaded or opened in a second tab."""
    context = browser.new_context(viewport=DESKTOP)
    first, second = context.new_page(), context.new_page()
    for page in (first, second):
        page.goto(live.url + "/")
        page.set_input_files("#file", str(web_media.long_music))
        page.click("#upload-button")
        page.wait_for_url("**/jobs/*", timeout=30_000)
    second.wait_for_selector(
        "#queue-text:has-text('ahead of yours'), #queue-text:has-text('next in line')"
    )
    shoot(second, artefacts, "job-queued")
    phone = phone_page(browser, second)
    phone.goto(second.url)
    shoot(phone, artefacts, "job-queued")
    phone.context.close()
    first.wait_for_selector(".stage[data-stage='rendering'][data-state='running']", timeout=60_000)
    first.reload()  # the page picks up where the job is
    first.wait_for_function(
        "() => document.querySelector(\".stage[data-stage='rendering'] progress\").value >= 30",
        timeout=60_000,
    )
    first.screenshot(path=str(artefacts / "job-running-1280.png"), full_page=True)
    tab = context.new_page()  # the same job in a second tab
    tab.goto(first.url)
    # cancel the queued one from its page: it says so and nothing is left running
    second.click("#cancel-form button")
    second.wait_for_selector("text=Cancelled.")
    follow_to_result(tab)
    follow_to_result(first)
    context.close()


def test_a_client_that_disconnects_mid_upload_leaves_no_partial_file(
    live: LiveServer, web_media: WebMedia
) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    boundary = "avajamsboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    declared = 1_000_000
    uploads = live.work_dir / "uploads"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            (
                f"POST /api/jobs HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            + head
            + b"\0" * 300_000
        )
        deadline = time.monotonic() + 10
        while not list(uploads.iterdir()):  # it is streaming to disk
            assert time.monotonic() < deadline
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while list(uploads.iterdir()):
        assert time.monotonic() < deadline, list(uploads.iterdir())
        time.sleep(0.05)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


@pytest.mark.model
def test_real_inception_model_end_to_end(
    browser: Any,
    inception: Any,
    web_media: WebMedia,
    tmp_path_factory: pytest.TempPathFactory,
    artefacts: Path,
) -> None:
    """The default embedder (Inception v3) behind the whole page flow finds the right video."""
    base = tmp_path_factory.mktemp("web-real")
    library = index_library(web_media, base / "library", embedder=inception)
    with live_server(base / "work", library, config=None) as server:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(server.url + "/")
        assert "inception_v3" in page.inner_text(".library-card")
        page.set_input_files("#file", str(web_media.clip))
        page.click("#upload-button")
        follow_to_result(page, timeout_s=180)
        assert page.inner_text(".match.chosen .match-name") == web_media.expected.name
        page.wait_for_function(
            "() => document.querySelector('video#mashup').readyState >= 3", timeout=30_000
        )
        shoot(page, artefacts, "result-inception")
        context.close()
