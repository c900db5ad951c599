"""Read a legacy (non-zip) ``torch.save`` checkpoint of tensors without importing torch.

Before torch 1.6, ``torch.save`` wrote one file of consecutive pickles: a magic number, the
format version (1001), a small dict about the writing machine, the object itself (here a state
dict: ``OrderedDict`` of name -> tensor), the list of storage keys, and then each storage's raw
bytes preceded by its element count (little-endian int64). Tensors in the object pickle are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` calls whose storage is a
persistent id ``("storage", torch.FloatStorage, key, location, numel, view)``.

:class:`_RestrictedUnpickler` resolves exactly those globals — ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``Float``/``Long`` storage types — to inert
stand-ins and refuses any other, so a hostile file cannot run code. The four small pickles
around the state dict may name no global at all. Storage bytes are read with numpy.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from avajams.errors import ModelIntegrityError

__all__ = ["read_legacy_checkpoint"]

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


@dataclass(frozen=True)
class _StorageRef:
    dtype: np.dtype[Any]
    key: str
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: object,
    offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor without a storage")
    if not isinstance(offset, int) or not isinstance(size, tuple) or not isinstance(stride, tuple):
        raise pickle.UnpicklingError("a tensor with a malformed offset, size or stride")
    if len(size) != len(stride) or not all(isinstance(n, int) for n in (*size, *stride)):
        raise pickle.UnpicklingError("a tensor with a malformed size or stride")
    return _TensorRef(storage, offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of a state dict of CPU tensors; ``tensors=False``: none."""

    def __init__(self, data: io.BytesIO, *, tensors: bool) -> None:
        super().__init__(data)
        self._tensors = tensors

    def find_class(self, module: str, name: str) -> Any:
        if self._tensors:
            if (module, name) == ("collections", "OrderedDict"):
                return OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor_v2
            if module == "torch" and name in _STORAGE_DTYPES:
                return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(
            f"refusing global {module}.{name}: a checkpoint of tensors names no such thing"
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if (
            not self._tensors
            or not isinstance(pid, tuple)
            or len(pid) != 6
            or pid[0] != "storage"
            or not isinstance(pid[1], np.dtype)
            or not isinstance(pid[4], int)
            or pid[5] is not None  # storage views: torch < 1.0 only
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return _StorageRef(pid[1], str(pid[2]), int(pid[4]))


def read_legacy_checkpoint(data: bytes, *, name: str = "checkpoint") -> dict[str, npt.NDArray[Any]]:
    """The tensors of a legacy ``torch.save`` state dict by name, as C-ordered numpy arrays;
    ``ModelIntegrityError`` for anything else (including any global it may not name)."""
    stream = io.BytesIO(data)

    def load(*, tensors: bool) -> Any:
        return _RestrictedUnpickler(stream, tensors=tensors).load()

    try:
        if load(tensors=False) != MAGIC_NUMBER:
            raise ModelIntegrityError(f"{name} is not a legacy torch checkpoint (magic number)")
        if load(tensors=False) != PROTOCOL_VERSION:
            raise ModelIntegrityError(f"{name}: unsupported torch checkpoint protocol version")
        info = load(tensors=False)
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise ModelIntegrityError(f"{name}: not a little-endian torch checkpoint")
        state = load(tensors=True)
        keys = load(tensors=False)
    except ModelIntegrityError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise ModelIntegrityError(f"{name}: cannot read the checkpoint: {exc}") from exc
    if not isinstance(state, OrderedDict) or not all(
        isinstance(k, str) and isinstance(v, _TensorRef) for k, v in state.items()
    ):
        raise ModelIntegrityError(f"{name}: the checkpoint does not hold a state dict of tensors")
    if not isinstance(keys, list) or len(set(keys)) != len(keys):
        raise ModelIntegrityError(f"{name}: the checkpoint's storage list is malformed")
    refs = {t.storage.key: t.storage for t in state.values()}
    if set(keys) != set(refs):
        raise ModelIntegrityError(f"{name}: the storage list does not match the tensors")
    storages: dict[str, npt.NDArray[Any]] = {}
    pos = stream.tell()
    for key in keys:
        ref = refs[key]
        if pos + 8 > len(data):
            raise ModelIntegrityError(f"{name}: storage {key} is cut short")
        (count,) = struct.unpack_from("<q", data, pos)
        end = pos + 8 + count * ref.dtype.itemsize
        if count != ref.numel or end > len(data):
            raise ModelIntegrityError(f"{name}: storage {key} does not hold {ref.numel} elements")
        storages[key] = np.frombuffer(data, dtype=ref.dtype, count=count, offset=pos + 8)
        pos = end
    if pos != len(data):
        raise ModelIntegrityError(f"{name}: {len(data) - pos} unexpected bytes after the storages")
    return {k: _materialise(t, storages[t.storage.key], name, k) for k, t in state.items()}


def _materialise(
    ref: _TensorRef, storage: npt.NDArray[Any], name: str, key: str
) -> npt.NDArray[Any]:
    size, stride, offset = ref.size, ref.stride, ref.offset
    if size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if offset < 0 or min(size) < 1 or min(stride) < 0 or last >= storage.size:
            raise ModelIntegrityError(f"{name}: tensor {key} of size {size} overruns its storage")
    elif not 0 <= offset < storage.size:
        raise ModelIntegrityError(f"{name}: scalar tensor {key} overruns its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
    )
    return np.array(view, dtype=storage.dtype.newbyteorder("="), order="C")
