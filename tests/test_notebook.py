"""docs/notebook.ipynb runs top to bottom in a real Jupyter kernel, writing only in a tmp dir,
and its results show themselves: the library, the match table with frames, a playable mashup."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import av
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"


def _html(cell: Any) -> str:
    return "".join(
        o["data"]["text/html"] for o in cell["outputs"] if "text/html" in o.get("data", {})
    )


@pytest.mark.model
@pytest.mark.slow
def test_notebook_runs_in_a_kernel(tmp_path: Path, inception: object) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    client.execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source

    # what it wrote is in its folder, not in the repository
    assert {p.name for p in tmp_path.iterdir()} >= {"music-videos", "library", "my-clip.mp4"}
    mashup = tmp_path / "mashup.mp4"
    with av.open(str(mashup)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]

    library = _html(next(c for c in code if "open_library()" in c.source))
    assert "<table" in library
    assert "mv02-astronaut-rocket.mp4" in library

    table = _html(next(c for c in code if c.source.rstrip().endswith("\nmatches")))
    assert table.count("<tr>") == 1 + 3  # a header and three matches
    assert "matches for my-clip.mp4" in table
    assert table.count("data:image/jpeg;base64,") >= 6  # frame pairs, as inline pictures

    video = _html(next(c for c in code if c.source.rstrip().endswith("\nresult")))
    source = re.search(r'<video [^>]*src="data:video/mp4;base64,([^"]+)"', video)
    assert source is not None, video[:300]
    assert base64.b64decode(source.group(1)) == mashup.read_bytes()  # the very file, playable
