"""A half-precision (fp16) copy of the Inception v3 model, for GPUs.

The weights and the network's arithmetic become float16 (``onnxconverter-common``'s
``float16`` converter, from ``pip install 'avajams[cuda]'``); the graph keeps its uint8 input and
float32 output, and its preprocessing (cast, ``(x - 128) / 128``, transpose) stays float32, with
casts inserted where the two meet. Tensor cores run it at about twice fp32's speed on a GPU.

The copy lives beside the fp32 model (``models/inception_v3-fid2015-fp16h1/``) with its own
embedder id (the fp32 id + ``-fp16h1``): its signatures are 0.99999 cosine from fp32's on CPU
(docs/scale.md), and a library still never mixes the two without being told.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from avajams._progress import Progress, ProgressCallback
from avajams.embedding._model import MANIFEST, MODEL_FILE, ModelInfo, _install, read_model_info
from avajams.errors import ModelError

__all__ = ["FP16_SUFFIX", "convert_model", "ensure_fp16_model"]

logger = logging.getLogger(__name__)

#: Appended to the fp32 model's directory name and embedder id; bump the number when the
#: recipe (which nodes stay float32, converter options) changes.
FP16_SUFFIX = "-fp16h1"

#: Graph nodes left in float32: the preprocessing in front of the first convolution.
_KEEP_FP32_PREFIX = "preprocess/"


def _keep_fp32(node: Any) -> bool:
    # the converter retypes a Cast's output to float16 but not its ``to``: keep casts as they are
    return bool(node.name.startswith(_KEEP_FP32_PREFIX) or node.op_type == "Cast")


def convert_model(info: ModelInfo, directory: Path) -> ModelInfo:
    """Write the fp16 copy of ``info``'s model into ``directory`` (model, then manifest)."""
    import onnx

    try:
        from onnxconverter_common import float16
    except ModuleNotFoundError as exc:
        raise ModelError(
            "the fp16 model is made with onnxconverter-common; install it with: "
            "pip install 'avajams[cuda]'"
        ) from exc
    info.verify()
    model = onnx.load(str(info.path))
    for i, node in enumerate(model.graph.node):
        if not node.name:  # the block list goes by name
            node.name = f"node{i}"
    keep = [n.name for n in model.graph.node if _keep_fp32(n)]
    try:
        with warnings.catch_warnings():
            # it warns for each weight below fp16's smallest normal number (a few, harmless)
            warnings.simplefilter("ignore", UserWarning)
            half = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=keep)
    except Exception as exc:  # the converter raises untyped errors
        raise ModelError(f"converting {info.path} to fp16 failed: {exc}") from exc
    with tempfile.TemporaryDirectory(prefix="avajams-fp16-") as tmp:
        out = Path(tmp) / MODEL_FILE
        onnx.save(half, str(out))
        blob = out.read_bytes()
    manifest = dict(info.manifest)
    manifest["embedder_id"] = f"{info.embedder_id}{FP16_SUFFIX}"
    manifest["onnx"] = {
        **dict(info.manifest["onnx"]),
        "file": MODEL_FILE,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }
    manifest["fp16"] = {
        "converter": "onnxconverter_common.float16, keep_io_types",
        "float32_nodes": keep,
        "from_sha256": info.manifest["onnx"]["sha256"],
    }
    return _install(directory, blob, manifest)


def ensure_fp16_model(
    info: ModelInfo,
    *,
    show_progress: bool | None = None,
    progress: ProgressCallback | None = None,
) -> ModelInfo:
    """The fp16 copy of the fp32 model ``info``, converted (once) when not in the cache yet."""
    directory = info.directory.with_name(info.directory.name + FP16_SUFFIX)
    if (directory / MANIFEST).exists():
        built = read_model_info(directory)
        if built.manifest.get("fp16", {}).get("from_sha256") == info.manifest["onnx"]["sha256"]:
            return built
    logger.warning("converting the Inception v3 model to fp16 once into %s", directory)
    with Progress("fp16", 1, unit="step", show=show_progress, callback=progress) as bar:
        built = convert_model(info, directory)
        bar.update()
    return built
