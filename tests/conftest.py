"""Shared fixtures. Every test writes only under its own ``tmp_path``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which avajams logged at ERROR or above."""
    yield
    errors = [
        r for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.name.startswith("avajams")
    ]
    if errors:
        pytest.fail("avajams logged errors: " + "; ".join(r.getMessage() for r in errors))
