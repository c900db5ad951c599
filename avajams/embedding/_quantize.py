"""An int8 copy of the Inception v3 model: about 1.6x faster on a CPU, signatures ~0.99 alike.

Static quantisation with onnxruntime's own tools: QDQ format, int8 weights per output channel
(7-bit range, so CPUs without VNNI never saturate their 8-bit multiply-adds), uint8 activations
whose ranges come from a MinMax calibration over fixed crops of scikit-image's bundled
photographs. ``python -m benchmarks cheap_inference`` measures the speed and the quality cost;
``docs/performance.md`` has the figures and why fp32 stays the default.

The int8 model lives beside the fp32 one (``models/inception_v3-fid2015-int8/``) with its own
manifest and embedder id (the fp32 id + ``-int8q1``), so a library never mixes the two.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from avajams._progress import Progress, ProgressCallback
from avajams.embedding._model import MANIFEST, MODEL_FILE, ModelInfo, _install, read_model_info
from avajams.errors import ModelError

__all__ = ["INT8_SUFFIX", "calibration_images", "ensure_int8_model", "quantize_model"]

logger = logging.getLogger(__name__)

#: Appended to the fp32 model's directory name and embedder id; bump the number when the
#: recipe (calibration set, options) changes, so old int8 libraries are told apart.
INT8_SUFFIX = "-int8q1"

# (x, y, scale) of each crop, as fractions of the largest 1:1 box that fits the photo
_CROPS = ((0.5, 0.5, 1.0), (0.0, 0.0, 0.6), (1.0, 1.0, 0.6))


def calibration_images(size: int = 299, limit: int | None = None) -> npt.NDArray[np.uint8]:
    """Fixed crops of scikit-image's bundled photographs, ``(N, size, size, 3)`` RGB uint8."""
    from PIL import Image

    try:
        from avajams.photo import PHOTOS, load_photo

        photos = [load_photo(name) for name in PHOTOS]
    except ModuleNotFoundError as exc:
        raise ModelError(
            "building the int8 model calibrates it on scikit-image's bundled photographs; "
            "install them with: pip install 'avajams[demo]'"
        ) from exc
    out = []
    for photo in photos:
        image = Image.fromarray(np.ascontiguousarray(photo))
        w, h = image.size
        side = min(w, h)
        for fx, fy, scale in _CROPS:
            s = side * scale
            x0, y0 = fx * (w - s), fy * (h - s)
            crop = image.resize(
                (size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + s, y0 + s)
            )
            out.append(np.asarray(crop, dtype=np.uint8))
    images = np.stack(out)
    return images if limit is None else images[:limit]


def quantize_model(
    info: ModelInfo, directory: Path, calibration: npt.NDArray[np.uint8]
) -> ModelInfo:
    """Write the int8 QDQ copy of ``info``'s model, calibrated on ``calibration``, into
    ``directory`` (model, then manifest); return it."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = str(info.manifest["input"]["name"])

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches: Iterator[dict[str, Any]] = iter(
                {input_name: calibration[i : i + 8]} for i in range(0, len(calibration), 8)
            )

        def get_next(self) -> dict[str, Any] | None:
            return next(self._batches, None)

    info.verify()
    with tempfile.TemporaryDirectory(prefix="avajams-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        out = Path(tmp) / MODEL_FILE
        try:
            quant_pre_process(str(info.path), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:  # onnxruntime's tools raise untyped errors
            raise ModelError(f"quantising {info.path} to int8 failed: {exc}") from exc
        blob = out.read_bytes()
        model = onnx.load_from_string(blob)
    manifest = dict(info.manifest)
    manifest["embedder_id"] = f"{info.embedder_id}{INT8_SUFFIX}"
    manifest["onnx"] = {
        "file": MODEL_FILE,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
        "opset": max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")),
        "ir_version": model.ir_version,
    }
    manifest["quantization"] = {
        "format": "QDQ",
        "weights": "int8, per output channel, 7-bit range",
        "activations": "uint8, MinMax calibration",
        "calibration": f"{len(calibration)} crops of scikit-image's bundled photographs",
        "onnxruntime": onnxruntime.__version__,
        "from_sha256": info.manifest["onnx"]["sha256"],
    }
    return _install(directory, blob, manifest)


def ensure_int8_model(
    info: ModelInfo,
    *,
    show_progress: bool | None = None,
    progress: ProgressCallback | None = None,
) -> ModelInfo:
    """The int8 copy of the fp32 model ``info``, quantised (once) when not in the cache yet."""
    directory = info.directory.with_name(info.directory.name + INT8_SUFFIX)
    if (directory / MANIFEST).exists():
        built = read_model_info(directory)
        if (
            built.manifest.get("quantization", {}).get("from_sha256")
            == info.manifest["onnx"]["sha256"]
        ):
            return built
    logger.warning(
        "quantising the Inception v3 model to int8 once into %s; this takes about a minute",
        directory,
    )
    with Progress("int8", 2, unit="step", show=show_progress, callback=progress) as bar:
        calibration = calibration_images(int(info.manifest["input"]["shape"][1]))
        bar.update()
        built = quantize_model(info, directory, calibration)
        bar.update()
    return built
