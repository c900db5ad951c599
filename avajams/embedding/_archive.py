"""Read a TorchScript archive (a zip written by ``torch.jit.save``) without importing torch.

``data.pkl`` in such an archive is an ordinary pickle whose only globals are TorchScript module
classes (``__torch__.*``) and a handful of torch rebuild helpers; tensor bytes live in
``data/<key>`` entries as raw little-endian storages. :class:`_RestrictedUnpickler` maps exactly
those globals to inert stand-ins and refuses everything else, so a hostile archive cannot run
code. The module code under ``code/__torch__/`` is read as text to learn the pooling constants.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from avajams.errors import ModelIntegrityError

__all__ = ["ScriptModule", "TorchScriptArchive"]

_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}


@dataclass
class ScriptModule:
    """A TorchScript module instance as stored: its class and its attributes, in order."""

    qualname: str
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The class name without module path or ``___torch_mangle_N`` prefix."""
        return self.qualname.rsplit(".", 1)[-1]

    def children(self) -> list[tuple[str, ScriptModule]]:
        """Sub-modules in definition order (the order ``Sequential.forward`` calls them)."""
        return [(k, v) for k, v in self.attrs.items() if isinstance(v, ScriptModule)]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.attrs = dict(state)


@dataclass(frozen=True)
class _StorageRef:
    dtype: np.dtype[Any]
    key: str
    numel: int


def _class_factory(qualname: str) -> type:
    """A stand-in class for one ``__torch__`` module class; instances are ScriptModules."""

    def new(cls: type, *args: object) -> ScriptModule:
        return ScriptModule(qualname)

    return type("ScriptModuleStandIn", (), {"__new__": new})


def _build_intlist(values: list[int]) -> list[int]:
    return list(values)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: TorchScriptArchive) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _class_factory(f"{module}.{name}")
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._archive._rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return _build_intlist
        raise pickle.UnpicklingError(
            f"refusing global {module}.{name}: not a TorchScript module class or tensor helper"
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if (
            not isinstance(pid, tuple)
            or len(pid) != 5
            or pid[0] != "storage"
            or not isinstance(pid[1], np.dtype)
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        return _StorageRef(dtype, str(key), int(numel))


class TorchScriptArchive:
    """The module tree, tensors and code of a TorchScript archive held in memory."""

    def __init__(self, data: bytes, *, name: str = "archive") -> None:
        self.name = name
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            names = self._zip.namelist()
        except zipfile.BadZipFile as exc:
            raise ModelIntegrityError(f"{name} is not a TorchScript archive (not a zip)") from exc
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise ModelIntegrityError(f"{name} is not a TorchScript archive (no data.pkl)")
        self.prefix = pkl[0][: -len("data.pkl")]
        self._storages: dict[str, npt.NDArray[Any]] = {}
        try:
            root = _RestrictedUnpickler(self._zip.read(pkl[0]), self).load()
        except (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError) as exc:
            raise ModelIntegrityError(f"{name}: cannot read data.pkl: {exc}") from exc
        if not isinstance(root, ScriptModule):
            raise ModelIntegrityError(f"{name}: data.pkl does not hold a module")
        self.root = root

    def _storage(self, ref: _StorageRef) -> npt.NDArray[Any]:
        array = self._storages.get(ref.key)
        if array is None:
            raw = self._zip.read(f"{self.prefix}data/{ref.key}")
            if len(raw) != ref.numel * ref.dtype.itemsize:
                raise ValueError(f"storage {ref.key} holds {len(raw)} bytes, expected {ref.numel}")
            array = np.frombuffer(raw, dtype=ref.dtype)
            self._storages[ref.key] = array
        return array

    def _rebuild_tensor(
        self,
        ref: _StorageRef,
        offset: int,
        size: tuple[int, ...],
        stride: tuple[int, ...],
        requires_grad: bool = False,
        backward_hooks: object = None,
        metadata: object = None,
    ) -> npt.NDArray[Any]:
        storage = self._storage(ref)
        if size:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if offset < 0 or last >= storage.size or min(stride) < 0:
                raise ValueError(f"tensor of size {size} overruns storage {ref.key}")
        elif offset >= storage.size:
            raise ValueError(f"scalar tensor overruns storage {ref.key}")
        item = storage.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[offset:],
            shape=tuple(size),
            strides=tuple(s * item for s in stride),
            writeable=False,
        )
        return np.ascontiguousarray(view, dtype=storage.dtype.newbyteorder("="))

    def code(self, qualname: str) -> str:
        """The TorchScript source file that defines ``qualname`` (a ``__torch__.*`` class)."""
        module = qualname.rsplit(".", 1)[0]
        path = f"{self.prefix}code/{module.replace('.', '/')}.py"
        try:
            return self._zip.read(path).decode("utf-8")
        except KeyError as exc:
            raise ModelIntegrityError(f"{self.name}: no code for {qualname} ({path})") from exc

    def constants(self, qualname: str) -> dict[str, int | bool | None]:
        """The ``Final`` class constants of a TorchScript class (e.g. pooling kernel sizes)."""
        cls = qualname.rsplit(".", 1)[1]
        source = self.code(qualname)
        match = re.search(rf"^class {re.escape(cls)}\(Module\):\n((?:  .*\n?)*)", source, re.M)
        if match is None:
            raise ModelIntegrityError(f"{self.name}: class {qualname} not found in its code")
        values: dict[str, int | bool | None] = {}
        for name, literal in re.findall(r"^  (\w+) : Final\[\w+\] = (\w+)$", match.group(1), re.M):
            if literal in ("True", "False"):
                values[name] = literal == "True"
            elif literal == "None":
                values[name] = None
            else:
                values[name] = int(literal)
        return values
