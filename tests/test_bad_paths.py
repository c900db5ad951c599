"""Unusable directories give typed one-line errors, never a raw OSError."""

from __future__ import annotations

from pathlib import Path

import pytest

from avajams import LibraryError, OutputPathError, VideoIndex
from avajams.cli import main
from avajams.demo import make_demo_media


@pytest.mark.parametrize("sub", ["", "sub"])
def test_library_directory_under_a_file(tmp_path: Path, sub: str) -> None:
    blocker = tmp_path / "file.mp4"
    blocker.write_bytes(b"x")
    with pytest.raises(LibraryError, match="cannot create the library directory"):
        VideoIndex.create(blocker / sub if sub else blocker, dim=4, embedder_id="e")


def test_cli_index_into_a_file_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file.mp4"
    blocker.write_bytes(b"x")
    config = tmp_path / "c.toml"
    config.write_text('[embedder]\nkind = "avajams.testing:FakeEmbedder"\n')
    assert main(["index", "--config", str(config), "--library", str(blocker), str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("avajams: error: cannot create the library directory")
    assert "Traceback" not in err


def test_demo_directory_under_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="cannot create the demo directory"):
        make_demo_media(blocker / "mv")
