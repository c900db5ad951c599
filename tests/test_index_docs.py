"""docs/library.md's code blocks run."""

from __future__ import annotations

from pathlib import Path

from docs_blocks import run_python_blocks

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_library_docs_run(tmp_path: Path) -> None:
    namespace = run_python_blocks(DOCS / "library.md", tmp_path)
    assert namespace["best"].key.startswith("video-")
    assert (tmp_path / "my-library" / "catalogue.sqlite").is_file()
