"""Every case of the fault corpus (F1-F12 and the smaller ones below its table) as a test.

Each input is made in code (``avajams._testing.hostile``); each test failed on avajams 0.1.0
(commit 2328e05) and passes now, except the few companions marked "held before". The CLI
runs in-process through :func:`cli`, which also fails a test that reaches the CLI's
last-resort handler: an exception avajams did not expect is a bug, whatever the input.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avajams import (
    FrameSampler,
    LibraryCorruptError,
    LibraryError,
    Pipeline,
    PipelineConfig,
    RenderError,
    VideoDecodeError,
    VideoError,
    VideoIndex,
    VideoNotFoundError,
    VideoTooLargeError,
)
from avajams._testing import hostile
from avajams.cli import main
from avajams.errors import INTERNAL_ERROR, INTERNAL_ERROR_EXIT
from avajams.index import content_hash
from avajams.ingest import find_videos
from avajams.media import VideoDecodeWarning, probe
from avajams.testing import FakeEmbedder, make_clip

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def cli(capsys: pytest.CaptureFixture[str], *argv: str | os.PathLike[str]) -> tuple[int, str, str]:
    """Run ``avajams argv`` in-process; a test fails if it reached the last-resort handler."""
    code = main([os.fspath(a) for a in argv])
    out, err = capsys.readouterr()
    assert code != INTERNAL_ERROR_EXIT, err
    assert INTERNAL_ERROR not in err, err
    assert "Traceback" not in err, err
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("avajams: error:")]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "avajams.toml"
    path.write_text(
        '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 16 }\n'
        f'[library]\ndirectory = "{(tmp_path / "lib").as_posix()}"\n'
        "[mashup]\nmax_size = [96, 64]\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus inputs that can be made once for the whole module."""
    root = tmp_path_factory.mktemp("hostile-media")
    make_clip(root / "good.mp4", duration=2.0, fps=12, size=(64, 48), tag=1)
    make_clip(root / "music.mp4", duration=3.0, fps=12, size=(64, 48), tag=2, audio_hz=440)
    clip5 = make_clip(root / "clip5.mp4", duration=5.0, fps=25, size=(64, 48), tag=3)
    hostile.with_title(root / "good.mp4", root / "badutf8_title.mp4")
    hostile.with_title(root / "music.mp4", root / "badutf8_music.mp4")
    ts = hostile.make_ts(root / "plain.ts", duration=5.0, size=(96, 64))
    hostile.with_late_streams(ts, root / "late_streams.ts")
    hostile.with_pts_spikes(ts, root / "pts_spike.ts", at=(0.5,))
    hostile.with_pts_spikes(ts, root / "first_pts_spikes.ts", at=(0.0, 0.6))
    hostile.with_zeroed_atom(clip5, root / "zero_mdhd.mp4")
    hostile.make_late_audio_clip(root / "audio_late.mp4", duration=2.0)
    return root


def library(tmp_path: Path, media: Path, *names: str, backend: str = "exact") -> Path:
    """A library in ``tmp_path/lib`` holding the given media files (FakeEmbedder, dim 16)."""
    config = PipelineConfig.model_validate(
        {"library": {"directory": str(tmp_path / "lib"), "backend": backend}}
    )
    with Pipeline(config, embedder=FakeEmbedder(dim=16)) as pipe:
        summary = pipe.index([media / n for n in names])
    assert summary.ok, summary.failed
    return tmp_path / "lib"


# -- F1: metadata that is not UTF-8 ----------------------------------------------------------


def test_f1_non_utf8_title_probes_samples_and_matches(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = media / "badutf8_title.mp4"
    assert b"bad\xff\xfetitle" in bad.read_bytes()
    assert probe(bad).duration == pytest.approx(2.0, abs=0.1)
    assert len(FrameSampler(size=32).sample(bad)) == 2
    # index: the file is indexed, and it does not abort the others
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(bad, folder / "a.mp4")
    shutil.copy(media / "music.mp4", folder / "b.mp4")
    code, out, _ = cli(capsys, "index", "--config", config, "-q", folder)
    assert code == 0
    assert out.startswith("2 added")
    report = tmp_path / "report.png"
    code, out, _ = cli(capsys, "match", "--config", config, "-q", "--json", bad, "--report", report)
    assert code == 0
    assert json.loads(out)["matches"][0]["path"].endswith("a.mp4")
    assert report.stat().st_size > 0
    music = media / "badutf8_music.mp4"
    code, out, _ = cli(
        capsys, "mashup", "--config", config, "-q", bad, "--music", music, "-o", tmp_path / "o.mp4"
    )
    assert code == 0
    assert probe(tmp_path / "o.mp4").has_audio


# -- F2: a stream that appears mid-file ------------------------------------------------------


def test_f2_stream_appearing_mid_file_is_read_to_the_end(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    late = media / "late_streams.ts"
    frames = FrameSampler(size=32).sample(late)
    assert len(frames) == 5  # the whole 5 s, not cut at the new stream
    library(tmp_path, media, "good.mp4")
    code, out, _ = cli(capsys, "match", "--config", config, "-q", "--json", late)
    assert code == 0
    assert len(json.loads(out)["matches"]) == 1


# -- F3: samples bounded by what the file holds ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "most"),
    [
        ("pts_spike.ts", 6),  # a PTS bit flip made it look 3.3 hours long: 11,930 samples
        ("first_pts_spikes.ts", 6),  # the first frame's PTS damaged too (held before: 4)
        ("zero_mdhd.mp4", 126),  # time base 1/1, a frame "lasts" 512 s: at most one per frame
    ],
)
def test_f3_damaged_timestamps_give_a_bounded_number_of_samples(
    media: Path, name: str, most: int
) -> None:
    with warnings.catch_warnings():  # damage may or may not be worth a warning
        warnings.simplefilter("ignore", VideoDecodeWarning)
        times = [t for t, _ in FrameSampler(size=8).iter_frames(media / name)]
    assert 1 <= len(times) <= most
    assert times == sorted(times)


def test_f3_a_clean_transport_stream_is_sampled_in_full(media: Path) -> None:  # held before
    assert FrameSampler(size=8).sample(media / "plain.ts").times.tolist() == [0, 1, 2, 3, 4]


def test_f3_index_stores_the_bounded_samples(media: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(media / "zero_mdhd.mp4", folder / "z.mp4")
    shutil.copy(media / "pts_spike.ts", folder / "s.ts")
    config = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}})
    with warnings.catch_warnings(), Pipeline(config, embedder=FakeEmbedder(dim=16)) as pipe:
        warnings.simplefilter("ignore", VideoDecodeWarning)
        summary = pipe.index(folder)
    assert len(summary.added) == 2
    assert summary.frames <= 126 + 6


def test_f3_index_applies_the_byte_limit_match_applies(media: Path, tmp_path: Path) -> None:
    sampler = FrameSampler(size=64, max_bytes=3 * 64 * 64 * 3)  # three samples' worth
    with pytest.raises(VideoTooLargeError, match="max_bytes"):
        sampler.sample(media / "clip5.mp4")
    config = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}})
    with Pipeline(config, embedder=FakeEmbedder(dim=16), sampler=sampler) as pipe:
        summary = pipe.index([media / "clip5.mp4", media / "good.mp4"])
    assert [Path(p).name for p in summary.added] == ["good.mp4"]
    assert "max_bytes" in summary.failed[str(media / "clip5.mp4")]


# -- F4: FIFOs, devices, /dev/zero; Ctrl-C --------------------------------------------------


def test_f4_non_regular_files_are_refused_without_reading(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(media / "good.mp4", folder / "good.mp4")
    os.mkfifo(folder / "x.mp4")  # no writer: opening it for reading would block forever
    (folder / "zero.mp4").symlink_to("/dev/zero")
    started = time.monotonic()
    code, out, err = cli(capsys, "index", "--config", config, "-q", folder, "/dev/zero")
    assert time.monotonic() - started < 30
    assert code == 1
    assert out.startswith("1 added")
    assert f"skipped {folder / 'x.mp4'}: it is a FIFO" in err
    assert "skipped /dev/zero: it is a device" in err  # also zero.mp4, which resolves to it


def test_f4_content_hash_never_reads_a_fifo(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(outcome, content_hash, fifo), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # the bug: blocked in open(); release it by opening the write end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("content_hash blocked on a FIFO")
    assert len(outcome) == 1
    assert isinstance(outcome[0], VideoDecodeError)
    assert "FIFO" in str(outcome[0])


def _capture(outcome: list[BaseException], fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as exc:
        outcome.append(exc)


class _StuckSampler:
    """A sampler whose reads never return (a hung network share) until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def sample(self, path: str | os.PathLike[str]) -> object:
        raise NotImplementedError

    def iter_frames(self, path: str | os.PathLike[str]) -> Iterator[tuple[float, object]]:
        self.entered.set()
        self.release.wait()
        yield from ()


def test_f4_ctrl_c_stops_indexing_within_a_second_even_if_a_read_hangs(
    media: Path, tmp_path: Path
) -> None:
    sampler = _StuckSampler()
    config = PipelineConfig.model_validate({"library": {"directory": str(tmp_path / "lib")}})
    try:
        with Pipeline(config, embedder=FakeEmbedder(dim=16), sampler=sampler) as pipe:  # type: ignore[arg-type]

            def interrupt() -> None:
                # a real SIGINT at the main thread, as Ctrl-C delivers it (interrupt_main only
                # sets a flag, which a main thread blocked in a wait would never look at)
                if sampler.entered.wait(30):
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

            timer = threading.Thread(target=interrupt, daemon=True)
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                pipe.index(media / "good.mp4")
            interrupted = time.monotonic()
        # stop() waited at most its one-second budget for the stuck thread, never forever
        assert time.monotonic() - interrupted < 5
    finally:
        sampler.release.set()


# -- F5, F6: symlink loops, dangling links, undecodable names --------------------------------


def test_f5_symlink_loop_and_dangling_link_are_reported_not_fatal(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(media / "good.mp4", folder / "good.mp4")
    (folder / "a.mp4").symlink_to("b.mp4")
    (folder / "b.mp4").symlink_to("a.mp4")
    (folder / "gone.mp4").symlink_to("nowhere.mp4")
    assert [p.name for p in find_videos([folder])] == ["a.mp4", "b.mp4", "gone.mp4", "good.mp4"]
    code, out, err = cli(capsys, "index", "--config", config, "-q", folder)
    assert code == 1
    assert out.startswith("1 added")
    assert f"skipped {folder / 'a.mp4'}: it is a symbolic link that loops back on itself" in err
    # reported under its own name, not its target's
    assert f"skipped {folder / 'gone.mp4'}: it is a broken symbolic link" in err


def test_f6_undecodable_file_name_is_reported_not_fatal(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(media / "good.mp4", folder / "good.mp4")
    try:
        with open(os.path.join(os.fsencode(folder), b"bad\xff.mp4"), "wb") as f:
            f.write((media / "music.mp4").read_bytes())
    except (OSError, ValueError):
        pytest.skip("this file system refuses names that are not UTF-8")
    code, out, err = cli(capsys, "index", "--config", config, "-q", folder)
    assert code == 1
    assert out.startswith("1 added")
    assert "the file name is not valid UTF-8 (byte(s) b'\\xff')" in err
    with VideoIndex.open(tmp_path / "lib") as lib:
        assert [Path(k).name for k in lib] == ["good.mp4"]
        assert "bad\udcff.mp4" not in lib
        with pytest.raises(ValueError, match="not valid UTF-8"):
            lib.add("bad\udcff.mp4", np.ones(16))


# -- F7: a hand-edited catalogue -------------------------------------------------------------


def _edit(lib: Path, sql: str, *params: object) -> None:
    with contextlib.closing(sqlite3.connect(lib / "catalogue.sqlite")) as conn, conn:
        conn.execute(sql, params)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("dim", '"abc"', "'dim'"),
        ("dim", "-5", "'dim'"),
        ("format_version", '"x"', "'format_version'"),
        ("hnsw", "[1, 2]", "'hnsw'"),
        ("backend", '"graph"', "'backend'"),
    ],
)
def test_f7_damaged_meta_values_are_library_corrupt_errors_with_a_repair_command(
    media: Path,
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    says: str,
) -> None:
    lib = library(tmp_path, media, "good.mp4")
    _edit(lib, "UPDATE meta SET value = ? WHERE name = ?", value, name)
    for readonly in (True, False):
        with pytest.raises(LibraryCorruptError, match=says) as caught:
            VideoIndex.open(lib, readonly=readonly)
        assert "UPDATE meta SET value" in str(caught.value)
    commands: list[list[str | Path]] = [
        ["info"],
        ["match", media / "good.mp4"],
        ["index", media / "music.mp4"],
    ]
    for argv in commands:
        code, _, err = cli(capsys, argv[0], "--config", config, "-q", *argv[1:])
        assert code == 1
        assert len(error_lines(err)) == 1
        assert says in err


def test_f7_label_counter_behind_the_labels_is_repaired(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = library(tmp_path, media, "good.mp4", "music.mp4")
    _edit(lib, "UPDATE meta SET value = '0' WHERE name = 'next_label'")
    with VideoIndex.open(lib, readonly=True) as index, pytest.raises(LibraryCorruptError):
        index.check()  # check() reports it ...
    code, out, err = cli(capsys, "index", "--config", config, "-q", media / "clip5.mp4")
    assert code == 0
    assert out.startswith("1 added")
    assert "label counter 0 behind its labels" in err
    with VideoIndex.open(lib, readonly=True) as index:
        assert len(index) == 3
        index.check()


def test_f7_damaged_index_file_record_rebuilds_the_index(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = library(tmp_path, media, "good.mp4", backend="hnsw")
    _edit(lib, "UPDATE meta SET value = '{\"digest\": \"x\"}' WHERE name = 'index_file'")
    code, out, err = cli(capsys, "match", "--config", config, "-q", "--json", media / "good.mp4")
    assert code == 0
    assert len(json.loads(out)["matches"]) == 1
    assert "damaged index-file record" in err
    with VideoIndex.open(lib) as index:
        index.check()


def test_f7_metadata_that_is_not_json(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = library(tmp_path, media, "good.mp4", "music.mp4")
    _edit(lib, "UPDATE videos SET metadata = '{not json' WHERE key LIKE '%good.mp4'")
    with VideoIndex.open(lib, readonly=True) as index:
        with pytest.raises(LibraryCorruptError, match=r"good\.mp4") as caught:
            index.check()
        assert "damaged row" in str(caught.value)
        with pytest.raises(LibraryCorruptError, match=r"VideoIndex\.remove"):
            index.get(str(media / "good.mp4"))
    code, _, err = cli(capsys, "match", "--config", config, "-q", media / "good.mp4")
    assert code == 1
    assert "damaged row for video" in err
    assert len(error_lines(err)) == 1


# -- F8: the lock, the index file, read-only and full file systems ---------------------------


def test_f8_write_lock_that_is_a_directory(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = library(tmp_path, media, "good.mp4")
    (lib / "write.lock").unlink()
    (lib / "write.lock").mkdir()
    with pytest.raises(LibraryCorruptError, match="is a directory; remove it"):
        VideoIndex.open(lib)
    code, _, err = cli(capsys, "index", "--config", config, "-q", media / "music.mp4")
    assert code == 1
    assert "write.lock is a directory" in err
    code, _out, _ = cli(capsys, "match", "--config", config, "-q", media / "good.mp4")
    assert code == 0  # matching takes no lock


def test_f8_index_file_that_is_a_directory_is_rebuilt_in_memory(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = library(tmp_path, media, "good.mp4", backend="hnsw")
    (lib / "signatures.hnsw").unlink()
    (lib / "signatures.hnsw").mkdir()
    code, out, err = cli(capsys, "index", "--config", config, "-q", media / "music.mp4")
    assert code == 0
    assert out.startswith("1 added")
    assert "could not save the index file" in err
    assert "data is safe" in err
    code, out, _ = cli(capsys, "match", "--config", config, "-q", "--json", media / "music.mp4")
    assert code == 0
    assert len(json.loads(out)["matches"]) == 2


def _chattr(path: Path, flag: str) -> bool:
    if not ROOT or shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.parametrize("name", ["write.lock", "signatures.hnsw", "catalogue.sqlite"])
def test_f8_immutable_library_files(
    media: Path,
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    lib = library(tmp_path, media, "good.mp4", backend="hnsw")
    target = lib / name
    if not _chattr(target, "+i"):
        pytest.skip("needs root and a file system with the immutable flag (chattr)")
    try:
        started = time.monotonic()
        code, _, err = cli(capsys, "index", "--config", config, "-q", media / "clip5.mp4")
        if name == "signatures.hnsw":  # a cache: the video is added, the save is reported
            assert code == 0
            assert "could not save the index file" in err
        else:  # refused before any decoding, with one line saying why
            assert code == 1
            assert len(error_lines(err)) == 1
            assert time.monotonic() - started < 10
            assert ("read-only" in err) if name == "catalogue.sqlite" else ("lsattr" in err)
        code, _out, _ = cli(capsys, "match", "--config", config, "-q", media / "good.mp4")
        assert code == 0
    finally:
        _chattr(target, "-i")


@contextlib.contextmanager
def tmpfs(directory: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``directory`` (root and mount(8) needed, else the test skips)."""
    directory.mkdir()
    if not ROOT or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def _fill(directory: Path, leave: int) -> None:
    """Fill the file system of ``directory`` until ``leave`` bytes are free."""
    free = shutil.disk_usage(directory).free
    with open(directory / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_f8_read_only_mount_can_be_matched_but_not_indexed(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        lib = library(mnt, media, "good.mp4", "music.mp4")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        config = tmp_path / "c.toml"
        config.write_text(
            '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 16 }\n'
            f'[library]\ndirectory = "{lib.as_posix()}"\n'
        )
        code, out, err = cli(
            capsys, "match", "--config", config, "-q", "--json", media / "good.mp4"
        )
        assert code == 0
        assert len(json.loads(out)["matches"]) == 2
        code, _, err = cli(capsys, "index", "--config", config, "-q", media / "clip5.mp4")
        assert code == 1
        assert "read-only file system; matching works" in err


def test_f8_read_only_medium_falls_back_to_an_immutable_connection(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-only mount case without root: SQLite cannot open a WAL database ``mode=ro``
    where it cannot create the shared-memory file."""
    from avajams.index import _catalogue

    lib = library(tmp_path, media, "good.mp4")
    connect = sqlite3.connect
    calls: list[str] = []

    def no_shm(database: str, **kwargs: Any) -> sqlite3.Connection:
        calls.append(database)
        if "immutable=1" not in database:
            raise sqlite3.OperationalError("unable to open database file")
        conn: sqlite3.Connection = connect(database, **kwargs)
        return conn

    monkeypatch.setattr(sqlite3, "connect", no_shm)
    monkeypatch.setattr(_catalogue, "_writable_directory", lambda directory: False)
    with VideoIndex.open(lib, readonly=True) as index:
        assert len(index) == 1
    assert "immutable=1" in calls[-1]


def test_f8_creating_a_library_on_a_full_file_system(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "mnt", "64k") as mnt:
        _fill(mnt, 0)
        config = tmp_path / "c.toml"
        config.write_text(
            '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 16 }\n'
            f'[library]\ndirectory = "{(mnt / "lib").as_posix()}"\n'
        )
        code, _, err = cli(capsys, "index", "--config", config, "-q", media / "good.mp4")
        assert code == 1
        assert len(error_lines(err)) == 1
        assert "space" in err


# -- F9: a verified index file --------------------------------------------------------------


def test_f9_a_short_index_file_is_never_recorded(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """hnswlib writes through a C++ stream that ignores a full disk: simulate its short file."""
    import hnswlib

    lib = library(tmp_path, media, "good.mp4", backend="hnsw")
    before = (lib / "signatures.hnsw").read_bytes()
    save = hnswlib.Index.save_index

    def short_save(self: hnswlib.Index, path: str) -> None:
        save(self, path)
        with open(path, "r+b") as f:
            f.truncate(8192)  # what the 600 KB tmpfs left

    monkeypatch.setattr(hnswlib.Index, "save_index", short_save)
    with VideoIndex.open(lib) as index:
        index.add("x", np.ones(16), frames=np.ones((2, 16)))
        with pytest.raises(LibraryError, match="written incompletely"):
            index.flush()
    assert "could not save the index file" in caplog.text  # close() tried again, and said so
    monkeypatch.undo()
    assert (lib / "signatures.hnsw").read_bytes() == before  # the previous file, untouched
    assert not list(lib.glob(".signatures.hnsw.*"))
    with VideoIndex.open(lib, readonly=True) as index:
        assert index.backend == "hnsw"
        assert len(index) == 2
        assert index.search(np.ones(16), k=1)[0].key == "x"
        index.check()


def test_f9_hnsw_library_on_a_nearly_full_tmpfs(
    media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "mnt", "600k") as mnt:
        config = tmp_path / "c.toml"
        config.write_text(
            '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 2048 }\n'
            f'[library]\ndirectory = "{(mnt / "lib").as_posix()}"\nbackend = "hnsw"\n'
        )
        code, out, _ = cli(capsys, "index", "--config", config, "-q", media / "good.mp4")
        assert code == 0
        _fill(mnt, 24_000)  # room for the catalogue's write, not for a new index file
        code, out, err = cli(capsys, "index", "--config", config, "-q", media / "music.mp4")
        if code == 0:
            assert "could not save the index file" in err
        else:
            assert "disk is full" in err
        (mnt / "filler").unlink()
        with VideoIndex.open(mnt / "lib", readonly=True) as index:
            index.check()  # whatever was recorded is verified: no torn file trusted
            count = len(index)
        assert count == (2 if code == 0 else 1)
        code, out, _ = cli(capsys, "match", "--config", config, "-q", "--json", media / "good.mp4")
        assert code == 0
        assert len(json.loads(out)["matches"]) == count


# -- F10: a failed render leaves the previous output untouched ------------------------------


def _render_argv(config: Path, media: Path, out: Path) -> list[str]:
    return [
        "mashup",
        "--config",
        str(config),
        "-q",
        str(media / "good.mp4"),
        "--music",
        str(media / "music.mp4"),
        "-o",
        str(out),
    ]


def test_f10_full_disk_render_keeps_the_previous_output(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good-out.mp4"
    code, _, _ = cli(capsys, *_render_argv(config, media, good))
    assert code == 0
    with tmpfs(tmp_path / "mnt", "200k") as mnt:
        out = mnt / "out.mp4"
        shutil.copy(good, out)
        _fill(mnt, 4096)
        code, _, err = cli(capsys, *_render_argv(config, media, out), "--size", "320x240")
        assert code == 1
        assert len(err.strip().splitlines()) == 1
        assert "full" in err
        assert out.read_bytes() == good.read_bytes()
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "out.mp4"]


def test_f10_file_size_limit_render_keeps_the_previous_output(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same without root: RLIMIT_FSIZE stops every write past a size, like a full disk."""
    resource = pytest.importorskip("resource")
    out = tmp_path / "out.mp4"
    code, _, _ = cli(capsys, *_render_argv(config, media, out))
    assert code == 0
    previous = out.read_bytes()
    limit = 4096

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-m", "avajams", *_render_argv(config, media, out), "--size", "320x240"],
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert error_lines(done.stderr) == done.stderr.strip().splitlines()
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


# -- F11: allocations sized by the plan ------------------------------------------------------


def test_f11_audio_that_starts_two_million_seconds_late(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import resource

    music = media / "audio_late.mp4"
    assert probe(music).has_audio
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = tmp_path / "out.mp4"
    code, _, err = cli(
        capsys, "mashup", "--config", config, "-q", media / "good.mp4", "--music", music, "-o", out
    )
    assert code == 0, err
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 500_000  # was: "Unable to allocate 329 GiB"
    written = probe(out)
    assert written.has_audio
    assert written.duration == pytest.approx(2.0, abs=0.1)


# -- F12: NaN never reaches a result ---------------------------------------------------------


def test_f12_nan_frames_are_reported_by_check_and_skipped_by_search(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = library(tmp_path, media, "good.mp4", "music.mp4")
    nan = np.full((2, 16), np.nan, dtype="<f2").tobytes()
    _edit(lib, "UPDATE frames SET vectors = ?, times = ? WHERE label = 0", nan, bytes(16))
    code, out, err = cli(capsys, "match", "--config", config, "-q", "--json", media / "good.mp4")
    assert code == 0
    document = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert [Path(m["path"]).name for m in document["matches"]] == ["music.mp4"]
    assert "NaN or infinite frame vectors; search skips it" in err
    with (
        VideoIndex.open(lib, readonly=True) as index,
        pytest.raises(LibraryCorruptError, match="non-finite frame vectors"),
    ):
        index.check()


def test_f12_nan_signature_is_skipped_not_fatal(media: Path, tmp_path: Path) -> None:
    lib = library(tmp_path, media, "good.mp4", "music.mp4")
    _edit(
        lib, "UPDATE videos SET signature = ? WHERE label = 1", np.full(16, np.inf, "<f4").tobytes()
    )
    with VideoIndex.open(lib, readonly=True) as index:
        assert [m.key for m in index.search(np.ones(16), k=5)] == [str(media / "good.mp4")]
        with pytest.raises(LibraryCorruptError, match="signature is not a finite unit vector"):
            index.check()


# -- the smaller cases below the table -------------------------------------------------------


def _slow_render_argv(config: Path, media: Path, tmp_path: Path) -> list[str]:
    long_music = media / "long.mp4"  # rendered at 640x480: seconds of encoding to interrupt
    if not long_music.exists():
        make_clip(long_music, duration=20.0, fps=24, size=(320, 240), tag=4, audio_hz=330)
    return [
        sys.executable,
        "-m",
        "avajams",
        "mashup",
        "--config",
        str(config),
        "-q",
        str(media / "good.mp4"),
        "--music",
        str(long_music),
        "-o",
        str(tmp_path / "out" / "mashup.mp4"),
        "--size",
        "640x480",
    ]


@pytest.mark.parametrize(
    ("signum", "blocked"),
    [(signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGTERM, True)],
)
def test_sigterm_and_sighup_during_a_render_leave_nothing_behind(
    media: Path, tmp_path: Path, config: Path, signum: int, blocked: bool
) -> None:
    """``blocked``: started by a parent that blocks the signal (the mask is inherited)."""
    (tmp_path / "out").mkdir()
    scratch = tmp_path / "tmp"
    scratch.mkdir()

    def block() -> None:
        if blocked:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signum})

    process = subprocess.Popen(
        _slow_render_argv(config, media, tmp_path),
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        preexec_fn=block,
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out").glob(".mashup.*.partial.mp4")):
        assert process.poll() is None, "the render ended before it could be interrupted"
        assert time.monotonic() < deadline, "the render never started"
        time.sleep(0.05)
    time.sleep(0.5)  # encoding is under way
    # Sent until the process ends. Known flake: in some full-suite runs (never alone or with
    # its module) a SIGTERM variant saw the render run to the end (exit 0); cause not found.
    err = ""
    while process.poll() is None:
        process.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            _, err = process.communicate(timeout=0.3)
    if not err:
        _, err = process.communicate()
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []
    assert list(scratch.iterdir()) == []


def test_a_render_killed_outright_is_swept_by_the_next(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL cannot be handled: the next render to the same output removes what it left."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    leftover = tmp_path / f".out.{pid}-0123abcd.partial.mp4"
    leftover.write_bytes(b"partial")
    alive = tmp_path / f".out.{os.getppid()}-0123abcd.partial.mp4"  # a live process: kept
    alive.write_bytes(b"partial")
    code, _, _ = cli(capsys, *_render_argv(config, media, tmp_path / "out.mp4"))
    assert code == 0
    assert not leftover.exists()
    assert alive.exists()


def test_warnings_are_one_line(
    media: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    library(tmp_path, media, "good.mp4")
    clip = make_clip(tmp_path / "cut.mp4", duration=4.0, fps=12, size=(64, 48), faststart=True)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) * 2 // 3])  # the end cut off: a VideoDecodeWarning
    with warnings.catch_warnings():  # the CLI prints warnings; pytest makes them errors
        warnings.simplefilter("default", VideoDecodeWarning)
        code, _, err = cli(capsys, "match", "--config", config, "-q", clip)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("avajams: warning:")
    assert "truncated" in lines[0]


def test_animated_webp_is_named_as_such(tmp_path: Path) -> None:
    webp = hostile.make_animated_webp(tmp_path / "a.webp")
    with pytest.raises(VideoDecodeError, match="is an animated WebP, which FFmpeg cannot decode"):
        probe(webp)


def test_a_path_ffmpeg_would_take_for_a_protocol_is_a_file(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(media / "good.mp4", tmp_path / "pipe:0.mp4")
    monkeypatch.chdir(tmp_path)
    assert probe("pipe:0.mp4").duration == pytest.approx(2.0, abs=0.1)


def test_playlists_naming_other_files_are_refused(tmp_path: Path) -> None:  # held before
    playlist = tmp_path / "list.m3u8"
    playlist.write_text("#EXTM3U\n#EXTINF:10,\n/dev/zero\n")
    with pytest.raises(VideoError):
        probe(playlist)


def test_an_unexpected_exception_is_one_line_and_exit_70(
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last-resort handler itself (the one thing no other test may reach)."""
    from avajams.cli import info

    def broken(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(info, "run", broken)
    code = main(["info", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == INTERNAL_ERROR_EXIT
    assert err.count("\n") == 1
    assert "internal error: KeyError" in err
    assert "--debug" in err


def test_device_paths_are_typed_errors_at_once() -> None:
    for path in ("/dev/zero", "/dev/urandom", "/dev/null"):
        if os.path.exists(path):
            with pytest.raises(VideoDecodeError, match="device"):
                probe(path)
            with pytest.raises(VideoDecodeError, match="device"):
                content_hash(path)


def test_missing_and_directory_paths_stay_not_found(tmp_path: Path) -> None:  # held before
    with pytest.raises(VideoNotFoundError):
        probe(tmp_path / "nope.mp4")
    with pytest.raises(VideoNotFoundError):
        content_hash(tmp_path)
    assert stat.S_ISDIR(os.stat(tmp_path).st_mode)


def test_render_error_for_an_unwritable_temp_dir(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from avajams import Mashup

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    with pytest.raises(RenderError, match="temporary directory"):
        Mashup(max_size=(96, 64)).render(
            user=media / "good.mp4", music=media / "music.mp4", out=tmp_path / "out.mp4"
        )
    assert not list(tmp_path.glob(".out*"))


def test_config_file_that_is_a_fifo_or_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "c.toml"
        os.mkfifo(fifo)
        code, _, err = cli(capsys, "info", "--config", fifo)
        assert code == 1
        assert "is not a regular file" in err
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9\n")
    code, _, err = cli(capsys, "info", "--config", latin)
    assert code == 1
    assert "is not UTF-8 text" in err
