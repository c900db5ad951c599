"""The code in docs/custom-embedders.md runs as written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from docs_blocks import python_blocks, run_python_blocks

from avajams.testing import check_embedder

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_custom_embedders_doc_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = run_python_blocks(DOCS / "custom-embedders.md", tmp_path)
    assert "sunset" in capsys.readouterr().out
    cls = namespace["ColorHistogramEmbedder"]
    emb = cls(bins=4)
    check_embedder(emb)
    # the histogram really is a histogram: a pure red frame lands in one bin
    red = np.zeros((1, 5, 7, 3), np.uint8)
    red[..., 0] = 255
    vector = emb.embed(red)[0]
    assert np.count_nonzero(vector) == 1
    assert np.argmax(vector) == (3 * 4 + 0) * 4 + 0


def test_docs_blocks_helper_skips_no_run_blocks(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n```python\nx = 1\n```\n```python no-run\nraise SystemExit\n```\n"
        "```toml\n[a]\n```\n```python\ny = x + 1\n```\n"
    )
    assert python_blocks(doc) == ["x = 1\n", "y = x + 1\n"]
    assert run_python_blocks(doc, tmp_path)["y"] == 2
