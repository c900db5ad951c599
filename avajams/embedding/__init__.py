"""Embedders: the ``Embedder`` protocol, the registry, and the default Inception v3 on ONNX.

>>> from avajams.embedding import load_embedder, video_signature
>>> emb = load_embedder("inception_v3")        # builds the model into the cache on first use
>>> vectors = emb.embed(frames)                # (N, 2048) float32, unit rows
>>> signature = video_signature(vectors)       # (2048,) unit vector
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from avajams.embedding._protocol import Embedder, l2_normalize, video_signature
from avajams.embedding._registry import (
    ENTRY_POINT_GROUP,
    available_embedders,
    load_embedder,
    refresh_plugins,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Classification",
    "Embedder",
    "ModelInfo",
    "OnnxEmbedder",
    "available_embedders",
    "cache_root",
    "ensure_model",
    "fetch_model",
    "l2_normalize",
    "load_embedder",
    "model_dir",
    "read_model_info",
    "refresh_plugins",
    "video_signature",
]

# onnxruntime and onnx load only when the ONNX embedder or the model builder is used
_LAZY = {
    "Classification": "avajams.embedding._onnx",
    "OnnxEmbedder": "avajams.embedding._onnx",
    "ModelInfo": "avajams.embedding._model",
    "cache_root": "avajams.embedding._model",
    "ensure_model": "avajams.embedding._model",
    "fetch_model": "avajams.embedding._model",
    "model_dir": "avajams.embedding._model",
    "read_model_info": "avajams.embedding._model",
}

if TYPE_CHECKING:
    from avajams.embedding._model import (
        ModelInfo,
        cache_root,
        ensure_model,
        fetch_model,
        model_dir,
        read_model_info,
    )
    from avajams.embedding._onnx import Classification, OnnxEmbedder


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avajams.embedding' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
