"""Ctrl-C during ``avajams index`` says what was kept, and the same command continues it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avajams.index import VideoIndex
from avajams.testing import make_clip

SLOW_EMBEDDER = '''
import time

from avajams.testing import FakeEmbedder


class SlowEmbedder(FakeEmbedder):
    """FakeEmbedder taking 0.25 s a batch, so indexing lasts long enough to interrupt."""

    def embed(self, images):
        time.sleep(0.25)
        return super().embed(images)
'''


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_during_index_says_what_was_saved(tmp_path: Path) -> None:
    (tmp_path / "slow_embedder.py").write_text(SLOW_EMBEDDER, encoding="utf-8")
    config = tmp_path / "slow.toml"
    config.write_text(
        '[embedder]\nkind = "slow_embedder:SlowEmbedder"\noptions = { dim = 16 }\n'
        "batch_size = 1\n"
        '[library]\ndirectory = "library"\n',
        encoding="utf-8",
    )
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(5):
        make_clip(videos / f"mv{i}.mp4", duration=3.0, fps=8, tag=i)  # 3 frames: ~0.75 s each
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "avajams", "index", str(videos), "--config", str(config)]

    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert child.stderr is not None
    seen = []
    deadline = time.monotonic() + 120
    for line in child.stderr:  # the progress lines (standard error is a pipe)
        seen.append(line)
        if line.startswith("avajams: videos 2/5") or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGINT)
    out, rest = child.communicate(timeout=60)
    err = "".join(seen) + rest
    assert child.returncode == 130, err
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("avajams: interrupted: ")
    assert last.endswith(" of 5 videos saved; run the same command to continue")
    saved = int(last.split()[2])
    assert 2 <= saved < 5
    assert "Traceback" not in err
    with VideoIndex.open(tmp_path / "library", readonly=True) as library:
        assert len(library) == saved  # what it says is what is there
        library.check()

    again = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"{5 - saved} added, 0 updated, {saved} unchanged, 0 failed")
