"""The default install is compiler-free: every runtime dependency resolves to a wheel on
CPython 3.10-3.13 for Linux (x86_64, aarch64; glibc 2.28), macOS (13 Intel, 14 Apple silicon)
and Windows (x64).

The check walks the dependencies of pyproject.toml on PyPI's metadata for each platform tag
(tests/wheels.py: no wheel is downloaded; ~10 s for the 20 targets). It needs PyPI: skipped
when PyPI cannot be reached, except in CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.tags import Tag
from packaging.version import Version
from wheels import PyPI, resolve, targets

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = [(3, 10), (3, 11), (3, 12), (3, 13)]


def _project() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.mark.network
def test_every_runtime_dependency_is_a_wheel_everywhere() -> None:
    if not _pypi_reachable():
        if os.environ.get("CI"):
            pytest.fail("CI must reach PyPI for the install check")
        pytest.skip("PyPI cannot be reached")
    requirements = _project()["dependencies"]
    index = PyPI()
    results = [resolve(target, requirements, index) for target in targets(PYTHONS)]
    problems = [p for r in results for p in r.problems]
    assert not problems, "not installable from wheels alone:\n" + "\n".join(problems)
    for result in results:
        assert {"numpy", "onnxruntime", "av", "moviepy", "pydantic-core"} <= result.chosen.keys()
        if result.target.system == "Windows":
            assert "colorama" in result.chosen  # tqdm's Windows-only dependency was followed
    assert len(results) == 20


def test_hnswlib_is_the_hnsw_extra() -> None:
    project = _project()
    assert not any(r.startswith("hnswlib") for r in project["dependencies"])  # no wheels
    extras = project["optional-dependencies"]
    assert any(r.startswith("hnswlib") for r in extras["hnsw"])
    assert any("hnsw" in r for r in extras["dev"] if r.startswith("avajams["))  # tests use it


class FakePyPI(PyPI):
    """Releases given as {name: {version: (wheel tags, requires)}}; no network."""

    def __init__(self, releases: dict[str, dict[str, tuple[str, list[str]]]]) -> None:
        super().__init__()
        self.releases = releases

    def wheels(self, name: str) -> dict[Version, list[dict[str, Any]]]:
        out: dict[Version, list[dict[str, Any]]] = {}
        for version, (tag, _) in self.releases.get(name, {}).items():
            url = f"{name}-{version}-{tag}.whl"
            tags = frozenset(Tag(*t.split("-")) for t in tag.split("."))
            out[Version(version)] = [{"filename": url, "url": url, "tags": tags}]
        return out

    def requires(self, name: str, version: Version, wheel_url: str) -> list[str]:
        return self.releases[name][str(version)][1]


def test_the_walk_follows_markers_backtracks_and_reports_missing_wheels() -> None:
    linux, windows = (t for t in targets([(3, 12)]) if t.name in ("linux-x86_64", "windows-amd64"))
    index = FakePyPI(
        {
            "app": {
                "1.0": ("py3-none-any", ["lib>=1", "img", "win-only; sys_platform == 'win32'"])
            },
            "lib": {"1.0": ("cp312-cp312-win_amd64", []), "2.0": ("py3-none-any", [])},
            "img": {"1.0": ("py3-none-any", ["lib<2"])},
            "win-only": {"1.0": ("py3-none-any", [])},
        }
    )
    on_linux = resolve(linux, ["app"], index)
    # lib 2.0 is chosen first; img then asks for lib<2, which has only a Windows wheel
    assert on_linux.problems == [
        "lib<2,>=1 (needed by app 1.0) has no wheel for linux-x86_64 cp312"
    ]
    on_windows = resolve(windows, ["app"], index)
    assert on_windows.problems == []
    assert {n: str(v) for n, (v, _) in on_windows.chosen.items()} == {
        "app": "1.0", "lib": "1.0", "img": "1.0", "win-only": "1.0",
    }  # fmt: skip
