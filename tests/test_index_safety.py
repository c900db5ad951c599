"""Crash safety, locking and damaged files: the library survives what users do to it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pytest

from avajams.errors import LibraryCorruptError, LibraryLockedError
from avajams.index import HnswParams, VideoIndex

DIM = 32

# Deterministic content for key i, shared by the writer subprocess and the checks.
DATA = """
import numpy as np
DIM = 32
def data(i):
    rng = np.random.default_rng(1000 + i)
    frames = rng.standard_normal((3, DIM))
    sig = frames.mean(axis=0)
    return sig, frames, np.array([0.0, 1.0, 2.0]) + i
def key(i):
    return f"k{i:06d}"
"""
_ns: dict[str, object] = {}
exec(DATA, _ns)
_Arrays = npt.NDArray[np.float64]
data = cast(Callable[[int], tuple[_Arrays, _Arrays, _Arrays]], _ns["data"])
key = cast(Callable[[int], str], _ns["key"])

WRITER = (
    DATA
    + """
import sys
from avajams.errors import LibraryNotFoundError
from avajams.index import HnswParams, VideoIndex
d = sys.argv[1]
try:
    lib = VideoIndex.open(d, embedder_id="e")
except LibraryNotFoundError:
    lib = VideoIndex.create(d, dim=DIM, embedder_id="e", backend="hnsw",
                            hnsw=HnswParams(M=8, ef_construction=40, ef=40))
i = len(lib)
print("ready", i, flush=True)
step = 0
while True:
    batch = 1 + step % 3        # atomic batches of 1, 2 or 3 adds
    with lib.transaction():
        for j in range(i, i + batch):
            sig, frames, times = data(j)
            lib.add(key(j), sig, frames=frames, times=times, metadata={"i": j})
    i += batch
    print(i - 1, flush=True)    # acknowledged: committed up to here
    if step % 5 == 4:           # re-upsert an old key with its own content (new label)
        sig, frames, times = data(i // 2)
        lib.add(key(i // 2), sig, frames=frames, times=times, metadata={"i": i // 2})
    if step % 2 == 1:
        lib.flush()             # rewrite the hnswlib file often so kills land inside saves
    step += 1
"""
)


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return cast(npt.NDArray[np.float64], v / np.linalg.norm(v, axis=-1, keepdims=True))


def _verify_prefix(lib: VideoIndex, at_least: int) -> int:
    lib.check()
    keys = lib.keys()
    n = len(keys)
    assert keys == [key(i) for i in range(n)], "the library is not a prefix of what was written"
    assert n >= at_least, f"{at_least} adds were acknowledged but only {n} survived"
    for i in range(n):
        e = lib.get(key(i))
        sig, frames, times = data(i)
        assert e.signature is not None
        assert e.frames is not None
        np.testing.assert_allclose(e.signature, _unit(sig), atol=1e-6)
        np.testing.assert_allclose(e.frames, _unit(frames), atol=2e-3)
        np.testing.assert_array_equal(e.times, times)
        assert e.metadata == {"i": i}
    for i in {0, n // 2, n - 1} if n else set():
        assert lib.search(data(i)[0], k=1)[0].key == key(i)
    return n


@pytest.mark.slow
def test_kill_at_random_points_leaves_a_prefix(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    lib_dir = tmp_path / "lib"
    rng = np.random.default_rng(20240611)
    deadline = time.monotonic() + 20.0
    trials = 0
    n = 0
    while trials < 24 and (trials < 20 or time.monotonic() < deadline):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(lib_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith("ready"), proc.communicate()[1]
        time.sleep(float(rng.uniform(0.0, 0.25)))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err
        acked = [int(line) for line in out.split()]
        at_least = max(acked) + 1 if acked else n
        # alternate read-only and writable reopening (the latter rewrites the index file)
        with VideoIndex.open(lib_dir, embedder_id="e", readonly=trials % 2 == 0) as lib:
            assert lib.backend == "hnsw"
            n = _verify_prefix(lib, at_least)
        trials += 1
    assert trials >= 20
    assert n > 20  # the writers made progress
    VideoIndex.open(lib_dir).close()
    assert sorted(p.name for p in lib_dir.iterdir() if not p.name.startswith("catalogue")) == [
        "signatures.hnsw",
        "write.lock",
    ]  # no temp files of interrupted saves left behind


def test_second_writer_is_refused_readers_are_fine(tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    with VideoIndex.create(lib_dir, dim=DIM, embedder_id="e", backend="hnsw") as lib:
        for i in range(3):
            lib.add(key(i), data(i)[0])
    holder = DATA + textwrap.dedent(
        """
        import sys
        from avajams.index import VideoIndex
        lib = VideoIndex.open(sys.argv[1])
        print("locked", flush=True)
        sys.stdin.readline()
        lib.add(key(3), data(3)[0])
        print("added", flush=True)
        sys.stdin.readline()
        lib.close()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder, str(lib_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "locked"
            with pytest.raises(LibraryLockedError) as info:
                VideoIndex.open(lib_dir)
            assert str(proc.pid) in str(info.value)
            assert "readonly=True" in str(info.value)
            assert isinstance(info.value, BlockingIOError)
            with VideoIndex.open(lib_dir, readonly=True) as reader:
                assert len(reader) == 3
                proc.stdin.write("\n")
                proc.stdin.flush()
                assert proc.stdout.readline().strip() == "added"
                assert len(reader) == 4  # the catalogue is shared at once...
                q = data(3)[0]
                assert reader.search(q, k=1)[0].key != key(3)  # ...vectors as of open
                reader.refresh()
                assert reader.search(q, k=1)[0].key == key(3)
                reader.check()
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    with VideoIndex.open(lib_dir) as lib:  # the lock went with the process
        assert len(lib) == 4


def _build(lib_dir: Path, n: int = 200) -> list[list[str]]:
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((n, DIM))
    with VideoIndex.create(
        lib_dir, dim=DIM, embedder_id="e", backend="hnsw", hnsw=HnswParams(ef=200)
    ) as lib:
        with lib.transaction():
            for i, v in enumerate(vecs):
                lib.add(key(i), v, metadata={"i": i})
        lib.remove(key(7))
    with VideoIndex.open(lib_dir, readonly=True) as lib:
        return [[m.key for m in lib.search(v, k=5)] for v in vecs[:20]]


def _damage_truncate(p: Path) -> None:
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size // 2)


def _damage_flip(p: Path) -> None:
    with open(p, "r+b") as f:
        f.seek(p.stat().st_size // 3)
        f.write(os.urandom(4096))


def _damage_empty(p: Path) -> None:
    p.write_bytes(b"")


def _damage_delete(p: Path) -> None:
    p.unlink()


def _damage_garbage_header(p: Path) -> None:
    with open(p, "r+b") as f:
        f.write(b"\xff" * 64)


@pytest.mark.parametrize(
    "damage",
    [_damage_truncate, _damage_flip, _damage_empty, _damage_delete, _damage_garbage_header],
)
@pytest.mark.parametrize("readonly", [True, False])
def test_damaged_index_file_is_rebuilt_from_the_catalogue(
    tmp_path: Path, damage: Callable[[Path], None], readonly: bool, caplog: pytest.LogCaptureFixture
) -> None:
    lib_dir = tmp_path / "lib"
    before = _build(lib_dir)
    index_file = lib_dir / "signatures.hnsw"
    damage(index_file)
    rng = np.random.default_rng(5)
    vecs = rng.standard_normal((20, DIM))
    with (
        caplog.at_level(logging.WARNING, logger="avajams"),
        VideoIndex.open(lib_dir, readonly=readonly) as lib,
    ):
        assert len(lib) == 199
        lib.check()
        assert [[m.key for m in lib.search(v, k=5)] for v in vecs] == before
    assert any("rebuilding it from the catalogue" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="avajams"),
        VideoIndex.open(lib_dir, readonly=True) as lib,
    ):
        lib.check()
    warned = any("rebuilding" in r.getMessage() for r in caplog.records)
    assert warned == readonly  # a writer saved the rebuilt file; a reader never writes


def _damage_truncate_catalogue(p: Path) -> None:
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size * 2 // 5)


@pytest.mark.parametrize(
    "damage", [_damage_truncate_catalogue, _damage_garbage_header, _damage_empty]
)
@pytest.mark.parametrize("backend", ["exact", "hnsw"])
def test_damaged_catalogue_gives_a_typed_error_with_a_hint(
    tmp_path: Path, damage: Callable[[Path], None], backend: Literal["exact", "hnsw"]
) -> None:
    lib_dir = tmp_path / "lib"
    _build(lib_dir)
    damage(lib_dir / "catalogue.sqlite")

    def open_and_check() -> None:
        with VideoIndex.open(lib_dir, backend=backend) as lib:
            lib.check()

    with pytest.raises(LibraryCorruptError) as info:
        open_and_check()
    msg = str(info.value)
    assert "catalogue.sqlite" in msg
    assert ".recover" in msg
    assert isinstance(info.value, ValueError)
    # the failed open released the write lock and left nothing half-open behind
    with pytest.raises(LibraryCorruptError):
        VideoIndex.open(lib_dir, backend=backend, readonly=True).check()


def test_check_detects_a_damaged_row(tmp_path: Path) -> None:
    import sqlite3

    lib_dir = tmp_path / "lib"
    with VideoIndex.create(lib_dir, dim=DIM, embedder_id="e") as lib:
        for i in range(10):
            sig, frames, times = data(i)
            lib.add(key(i), sig, frames=frames, times=times)
    conn = sqlite3.connect(lib_dir / "catalogue.sqlite")
    conn.execute("UPDATE frames SET times = zeroblob(16) WHERE label = 5")  # 2 times, 3 frames
    conn.commit()
    with (
        VideoIndex.open(lib_dir) as lib,  # opening does not read frames...
        pytest.raises(LibraryCorruptError, match="k000005"),
    ):
        lib.check()  # ...the check does
    conn.execute("UPDATE videos SET signature = zeroblob(8) WHERE key = ?", (key(3),))
    conn.commit()
    conn.close()
    with pytest.raises(LibraryCorruptError, match="k000003"):
        VideoIndex.open(lib_dir, backend="exact")
