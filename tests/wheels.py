"""Which wheels pip would install on another machine: a wheels-only walk over PyPI's metadata.

For a target (a platform and a CPython version) :func:`resolve` takes requirements, picks for
each package the newest release (no pre-releases, nothing yanked) that satisfies every
specifier seen and has a wheel for the target, then follows that release's own requirements,
with their markers evaluated for the target (so Windows-only dependencies count on Windows).
It reads PyPI's JSON simple index and each chosen wheel's core metadata (PEP 658), and
downloads no wheel: a few seconds for the whole matrix, where ``pip install --dry-run
--platform ...`` takes ~5 CPU seconds per target and evaluates markers for the machine it
runs on. It does not backtrack: a conflict between specifiers is reported, not solved.
"""

from __future__ import annotations

import email.parser
import functools
import io
import json
import ssl
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

PYPI = "https://pypi.org"

# one TLS context for every request: building one per request (urllib's default) loads the CA
# bundle each time, ~0.1 s apiece
_OPENER = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=ssl.create_default_context())
)


def _open(request: str | urllib.request.Request, timeout: float) -> Any:
    return _OPENER.open(request, timeout=timeout)


def manylinux(arch: str, glibc: tuple[int, int] = (2, 28)) -> tuple[str, ...]:
    """The platform tags of a Linux machine with ``glibc`` (newest first)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc[1], 16, -1)]
    legacy = ["manylinux2014", "manylinux2010", "manylinux1"] if arch == "x86_64" else []
    return (*tags, *(f"{name}_{arch}" for name in (legacy or ["manylinux2014"])))


@dataclass(frozen=True)
class Target:  # not slotted: ``tags`` is cached in the instance's __dict__
    """A machine to install on: platform tags, CPython version and marker environment."""

    name: str
    python: tuple[int, int]
    platforms: tuple[str, ...]
    system: str  # platform.system(): Linux, Darwin, Windows
    machine: str  # platform.machine()

    @property
    def label(self) -> str:
        return f"{self.name} cp{self.python[0]}{self.python[1]}"

    @functools.cached_property
    def tags(self) -> frozenset[Tag]:
        """Every wheel tag this machine installs."""
        platforms = list(self.platforms)
        return frozenset(
            [
                *cpython_tags(self.python, platforms=platforms),
                *compatible_tags(
                    self.python, interpreter=f"cp{self.python[0]}{self.python[1]}",
                    platforms=platforms,
                ),
            ]
        )  # fmt: skip

    def environment(self, extra: str = "") -> dict[str, str]:
        """PEP 508 marker values on this machine."""
        version = f"{self.python[0]}.{self.python[1]}"
        sys_platform = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}[self.system]
        return {
            "python_version": version,
            "python_full_version": f"{version}.0",
            "implementation_name": "cpython",
            "implementation_version": f"{version}.0",
            "platform_python_implementation": "CPython",
            "os_name": "nt" if self.system == "Windows" else "posix",
            "sys_platform": sys_platform,
            "platform_system": self.system,
            "platform_machine": self.machine,
            "platform_release": "",
            "platform_version": "",
            "extra": extra,
        }


def targets(pythons: Iterable[tuple[int, int]]) -> list[Target]:
    """Linux x86_64/aarch64 (glibc 2.28), macOS 13 Intel / 14 Apple silicon, Windows x64."""
    machines = [
        ("linux-x86_64", manylinux("x86_64"), "Linux", "x86_64"),
        ("linux-aarch64", manylinux("aarch64"), "Linux", "aarch64"),
        ("macos-arm64", tuple(mac_platforms((14, 0), "arm64")), "Darwin", "arm64"),
        ("macos-x86_64", tuple(mac_platforms((13, 0), "x86_64")), "Darwin", "x86_64"),
        ("windows-amd64", ("win_amd64",), "Windows", "AMD64"),
    ]
    return [Target(n, py, p, s, m) for n, p, s, m in machines for py in pythons]


class PyPI:
    """PyPI's JSON APIs, each document fetched once (thread-safe)."""

    def __init__(self, base: str = PYPI, timeout: float = 60.0) -> None:
        self.base = base
        self.timeout = timeout
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _get(self, url: str, accept: str = "application/json") -> Any:
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        request = urllib.request.Request(url, headers={"Accept": accept})
        with _open(request, self.timeout) as response:
            data = json.load(response)
        with self._lock:
            self._cache[url] = data
        return data

    def wheels(self, name: str) -> dict[Version, list[dict[str, Any]]]:
        """The wheels of every release of ``name`` (PEP 691), by version, with their tags."""
        key = f"wheels:{name}"
        with self._lock:
            if key in self._cache:
                return self._cache[key]  # type: ignore[no-any-return]
        data = self._get(f"{self.base}/simple/{name}/", "application/vnd.pypi.simple.v1+json")
        by_version = _wheels_by_version(data["files"])
        with self._lock:
            self._cache[key] = by_version
        return by_version

    def requires(self, name: str, version: Version, wheel_url: str) -> list[str]:
        """The ``Requires-Dist`` of a release, from the core metadata file (PEP 658) of one of
        its wheels (the same in each: platform differences are markers)."""
        key = f"requires:{name}=={version}"
        with self._lock:
            if key in self._cache:
                return list(self._cache[key])
        try:
            with _open(wheel_url + ".metadata", self.timeout) as r:
                text = r.read().decode("utf-8")
        except urllib.error.HTTPError:  # no metadata file: read it from the wheel, in ranges
            with zipfile.ZipFile(_RangeFile(wheel_url, self.timeout)) as archive:
                member = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                text = archive.read(member).decode("utf-8")
        requires = email.parser.HeaderParser().parsestr(text).get_all("Requires-Dist") or []
        with self._lock:
            self._cache[key] = list(requires)
        return list(requires)


class _RangeFile(io.RawIOBase):
    """A remote file read with HTTP range requests in 64 KiB blocks (pip's lazy wheel idea):
    enough of a wheel for zipfile to read its METADATA without downloading the whole."""

    BLOCK = 1 << 16

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__()
        self.url = url
        self.timeout = timeout
        request = urllib.request.Request(url, method="HEAD")
        with _open(request, timeout) as response:
            self.size = int(response.headers["Content-Length"])
        self.position = 0
        self._blocks: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def _block(self, number: int) -> bytes:
        if number not in self._blocks:
            start = number * self.BLOCK
            end = min(self.size, start + self.BLOCK) - 1
            request = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end}"})
            with _open(request, self.timeout) as response:
                self._blocks[number] = response.read()
        return self._blocks[number]

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self.position)
        done = 0
        while done < wanted:
            number, skip = divmod(self.position + done, self.BLOCK)
            chunk = self._block(number)[skip : skip + wanted - done]
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
        self.position += done
        return done


@dataclass
class Resolution:
    """What one target would install (name -> (version, wheel file)), or why it cannot."""

    target: Target
    chosen: dict[str, tuple[Version, str]] = field(default_factory=dict)
    """name -> (version, wheel URL)"""
    problems: list[str] = field(default_factory=list)


def _wheels_by_version(files: list[dict[str, Any]]) -> dict[Version, list[dict[str, Any]]]:
    by_version: dict[Version, list[dict[str, Any]]] = {}
    for f in files:
        if not f["filename"].endswith(".whl") or f.get("yanked"):
            continue
        try:
            _, version, _, tags = parse_wheel_filename(f["filename"])
        except InvalidWheelFilename:
            continue
        by_version.setdefault(version, []).append({**f, "tags": tags})
    return by_version


def _best_wheel(
    name: str, spec: SpecifierSet, target: Target, index: PyPI
) -> tuple[Version, str] | None:
    tags = target.tags
    python = Version(f"{target.python[0]}.{target.python[1]}.0")
    by_version = index.wheels(name)
    for version in sorted(by_version, reverse=True):
        if version.is_prerelease or not spec.contains(version):
            continue
        for f in by_version[version]:
            requires_python = f.get("requires-python")
            if requires_python and not SpecifierSet(requires_python).contains(python):
                continue
            if tags & f["tags"]:
                return version, str(f["url"])
    return None


def resolve(target: Target, requirements: Iterable[str], index: PyPI) -> Resolution:
    """The wheels ``requirements`` need on ``target`` (see the module docstring).

    When a release chosen early conflicts with a specifier met later (pillow 13 chosen, then
    moviepy asks for pillow<12), the walk starts again with that specifier known from the
    start, as pip's backtracking would end up choosing.
    """
    requirements = list(requirements)
    known: dict[str, SpecifierSet] = {}
    while True:
        result, conflicts = _walk(target, requirements, index, known)
        learned = {
            name: known.get(name, SpecifierSet()) & spec
            for name, spec in conflicts.items()
            if known.get(name, SpecifierSet()) & spec != known.get(name, SpecifierSet())
        }
        if not conflicts or not learned:
            return result
        known.update(learned)


def _walk(
    target: Target, requirements: list[str], index: PyPI, known: dict[str, SpecifierSet]
) -> tuple[Resolution, dict[str, SpecifierSet]]:
    result = Resolution(target)
    specs = dict(known)
    conflicts: dict[str, SpecifierSet] = {}
    missing: set[str] = set()
    queue = [(Requirement(r), "") for r in requirements]
    while queue:
        req, parent = queue.pop(0)
        extras = {""}  # markers of the top-level requirements see no extra
        if req.marker is not None and not req.marker.evaluate(target.environment()):
            continue
        name = canonicalize_name(req.name)
        specs[name] = specs.get(name, SpecifierSet()) & req.specifier
        if name in missing:
            continue
        if name in result.chosen:
            version = result.chosen[name][0]
            if not specs[name].contains(version):
                conflicts[name] = specs[name]
                result.problems.append(
                    f"{name} {version} was chosen but {parent or 'the project'} needs {req}"
                )
            if not req.extras:
                continue
        else:
            best = _best_wheel(name, specs[name], target, index)
            if best is None:
                missing.add(name)
                result.problems.append(
                    f"{name}{specs[name]} (needed by {parent or 'the project'}) has no wheel "
                    f"for {target.label}"
                )
                continue
            result.chosen[name] = best
        version, url = result.chosen[name]
        extras |= set(req.extras)
        for text in index.requires(name, version, url):
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate(target.environment(e)) for e in extras):
                dependency.marker = None
                queue.append((dependency, f"{name} {version}"))
    return result, conflicts
