"""Run the ```python code blocks of a Markdown document, so documentation cannot rot.

    from docs_blocks import run_python_blocks
    namespace = run_python_blocks(DOCS / "custom-embedders.md", tmp_path)

Blocks run in order in one shared namespace with ``tmp_path`` as the working directory (restored
afterwards). A block whose opening fence is ```python no-run is skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def python_blocks(path: Path) -> list[str]:
    """The source of each ```python block in ``path`` that is meant to run, in order."""
    text = path.read_text(encoding="utf-8")
    return [m.group(2) for m in _FENCE.finditer(text) if "no-run" not in m.group(1)]


def run_python_blocks(path: Path, workdir: Path) -> dict[str, Any]:
    """Execute the blocks of ``path`` in ``workdir``; return the shared namespace."""
    blocks = python_blocks(path)
    if not blocks:
        raise AssertionError(f"{path} has no ```python blocks to run")
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for i, source in enumerate(blocks, 1):
            code = compile(source, f"{path.name}[block {i}]", "exec")
            exec(code, namespace)
    finally:
        os.chdir(cwd)
    return namespace
