"""``avajams serve``: the upload-and-mashup web app (FastAPI on uvicorn).

    >>> from avajams.web import ServeSettings, create_app
    >>> # app = create_app(ServeSettings(work_dir="web-work"))   # an ASGI app for any server

A person uploads a video; a bounded pool of worker processes samples and embeds it, matches it
against the library, draws the match report and renders the mashup; the pages (and the JSON
API under them) show each stage's progress and the result. Job state lives in SQLite under the
work directory. Needs the ``web`` extra: ``pip install 'avajams[web]'``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["MashupOptions", "ServeSettings", "create_app"]

_LAZY = {
    "create_app": "avajams.web.app",
    "ServeSettings": "avajams.web.settings",
    "MashupOptions": "avajams.web.settings",
}

if TYPE_CHECKING:
    from avajams.web.app import create_app
    from avajams.web.settings import MashupOptions, ServeSettings


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avajams.web' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
