"""The suite keeps its model cache to itself, never the user's cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
from conftest import TEST_HOME

from avajams.embedding import cache_root


def test_models_go_to_the_suites_own_home() -> None:
    assert cache_root() == TEST_HOME / "models"
    assert not cache_root().is_relative_to(platformdirs.user_cache_path("avajams"))
    assert TEST_HOME.parent == Path(__file__).resolve().parents[1]  # git-ignored, in the repo
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(TEST_HOME / "models" / "x")],
        cwd=TEST_HOME.parent,
        check=False,
    )
    assert ignored.returncode == 0, "the test home must be git-ignored"


def test_cli_subprocesses_inherit_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "avajams", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    assert f'"model_cache": "{TEST_HOME / "models"}"' in result.stdout
