"""Resolve an embedder from a name, a class, an instance or an ``avajams.embedders`` entry point.

Built-in names are listed in ``_BUILTINS``. Third-party packages add names through entry points::

    [project.entry-points."avajams.embedders"]
    colorhist = "my_package.embedders:ColorHistogramEmbedder"

The entry point may name a class or a factory (called with the options) or an instance. Entry
points are discovered once per process (``refresh_plugins()`` clears the cache); a plugin that
fails to load is skipped with a warning when listing, and raises when asked for by name.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from avajams.embedding._protocol import Embedder
from avajams.errors import ConfigError, EmbedderError

__all__ = ["ENTRY_POINT_GROUP", "available_embedders", "load_embedder", "refresh_plugins"]

ENTRY_POINT_GROUP = "avajams.embedders"


def _inception_v3(**options: Any) -> Embedder:
    from avajams.embedding._onnx import OnnxEmbedder

    return OnnxEmbedder.inception_v3(**options)


def _inception_v3_imagenet(**options: Any) -> Embedder:
    from avajams.embedding._onnx import OnnxEmbedder

    return OnnxEmbedder.inception_v3("torchvision", **options)


def _efficientnet_lite0(**options: Any) -> Embedder:
    from avajams.embedding._onnx import OnnxEmbedder

    return OnnxEmbedder.efficientnet_lite0(**options)


_BUILTINS: dict[str, Callable[..., Embedder]] = {
    "inception_v3": _inception_v3,
    # 1280-d, 15x fewer FLOPs per image, with ImageNet labels (classify)
    "efficientnet_lite0": _efficientnet_lite0,
    # torchvision's ImageNet weights with class labels; needs torch + torchvision to build
    "inception_v3_imagenet": _inception_v3_imagenet,
}


@functools.lru_cache(maxsize=1)
def _plugin_entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _BUILTINS:
            warnings.warn(
                f"embedder plugin {ep.value!r} uses the built-in name {ep.name!r}; ignored",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            found.setdefault(ep.name, ep)
    return found


def refresh_plugins() -> None:
    """Forget the discovered entry points (after installing a plugin in a running process)."""
    _plugin_entry_points.cache_clear()


def available_embedders() -> list[str]:
    """Names ``load_embedder`` accepts: built-ins, then plugins that load, sorted.

    A plugin whose entry point cannot be loaded is left out with a ``RuntimeWarning``.
    """
    names = list(_BUILTINS)
    for name, ep in sorted(_plugin_entry_points().items()):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party package must not break avajams
            warnings.warn(
                f"embedder plugin {name!r} ({ep.value}) failed to load and is skipped: "
                f"{type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        names.append(name)
    return names


def load_embedder(spec: object = "inception_v3", **options: Any) -> Embedder:
    """An embedder from ``spec``.

    ``spec`` is a registered name (``"inception_v3"``, the default, or an ``avajams.embedders``
    entry point), an import path ``"package.module:attr"``, a class or factory (called with
    ``options``), or an object that already meets the :class:`Embedder` protocol (returned as is;
    ``options`` are then not allowed).

        >>> emb = load_embedder("inception_v3", providers=["CPUExecutionProvider"])
        >>> vectors = emb.embed(images)          # (N, 2048) float32, unit rows
    """
    if isinstance(spec, str):
        return _check(_call(_resolve_name(spec), spec, options), spec)
    if inspect.isclass(spec) or (callable(spec) and not isinstance(spec, Embedder)):
        return _check(_call(spec, _describe(spec), options), _describe(spec))
    if isinstance(spec, Embedder):
        if options:
            raise ConfigError(
                f"options {sorted(options)} cannot apply to an embedder instance; "
                "pass its class or name instead"
            )
        return _check(spec, _describe(spec))
    raise EmbedderError(
        f"cannot make an embedder from {spec!r}: expected a name, a class, a factory or an object "
        "with id, dim, input_size and embed()"
    )


def _resolve_name(name: str) -> object:
    if name in _BUILTINS:
        return _BUILTINS[name]
    ep = _plugin_entry_points().get(name)
    if ep is not None:
        try:
            return ep.load()
        except Exception as exc:
            raise EmbedderError(
                f"embedder plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: "
                f"{exc}; reinstall or fix the package that provides it"
            ) from exc
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj: object = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise EmbedderError(f"cannot import embedder {name!r}: {exc}") from exc
        return obj
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        known = available_embedders()
    raise EmbedderError(
        f"unknown embedder {name!r}; available: {', '.join(known)} "
        "(or pass 'package.module:attr', a class, or an instance)"
    )


def _call(target: object, label: str, options: dict[str, Any]) -> object:
    if isinstance(target, Embedder) and not inspect.isclass(target):
        if options:
            raise ConfigError(f"embedder {label!r} is an instance; it takes no options")
        return target
    if not callable(target):
        raise EmbedderError(f"embedder {label!r} is neither a class, a factory nor an embedder")
    try:
        inspect.signature(target).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"invalid options for embedder {label!r}: {exc}") from exc
    except ValueError:  # no introspectable signature (some builtins); let the call decide
        pass
    return target(**options)


def _check(obj: object, label: str) -> Embedder:
    if not isinstance(obj, Embedder):
        missing = [a for a in ("id", "dim", "input_size", "embed") if not hasattr(obj, a)]
        raise EmbedderError(
            f"{label!r} gave {type(obj).__name__}, which is not an embedder "
            f"(missing {', '.join(missing) or 'a callable embed'})"
        )
    return obj


def _describe(obj: object) -> str:
    return str(getattr(obj, "__qualname__", None) or type(obj).__qualname__)
