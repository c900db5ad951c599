"""The configuration: ``PipelineConfig`` and its sections, as frozen pydantic data.

    >>> from avajams.config import PipelineConfig
    >>> config = PipelineConfig(sampler={"fps": 2}, library="my-library")

A configuration never holds open files or sessions; each section's ``build()`` makes the live
object it describes (a sampler, an embedder, a mashup). :func:`config_reference` renders every
field as the Markdown tables of docs/configuration.md.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from avajams.embedding._protocol import DEFAULT_BATCH_SIZE
from avajams.errors import ConfigError
from avajams.sampling import DEFAULT_FPS, DEFAULT_SIZE, DEFAULT_THREADS, MAX_FPS, Fit

if TYPE_CHECKING:
    from avajams.embedding import Embedder
    from avajams.labels import Labeller
    from avajams.mashup import Mashup
    from avajams.sampling import Sampler

__all__ = [
    "CONFIG_SECTIONS",
    "CustomConfig",
    "CustomEmbedderConfig",
    "CustomMashupConfig",
    "CustomSamplerConfig",
    "EfficientNetConfig",
    "EmbedderConfig",
    "ExecutorConfig",
    "FrameSamplerConfig",
    "InceptionConfig",
    "LabelsConfig",
    "LibraryConfig",
    "LocalExecutorConfig",
    "MashupConfig",
    "MoviePyMashupConfig",
    "PipelineConfig",
    "RayExecutorConfig",
    "RegisteredEmbedderConfig",
    "SamplerConfig",
    "config_reference",
    "import_object",
]

_IMPORT_STRING = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class CustomConfig(_Section):
    """A backend of your own: ``kind = "package.module:Name"`` is called with ``options``.

    ``Name`` may be a class or a factory function; the object it returns must meet the stage's
    protocol (e.g. :class:`avajams.Embedder` for the embedder section).
    """

    kind: Annotated[str, Field(pattern=_IMPORT_STRING)]
    """Import string of the class or factory: ``"package.module:Name"``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments it is called with."""

    def build(self) -> Any:
        """Import ``kind`` and call it with ``options``."""
        return self.build_checked()

    def build_checked(self, protocol: type | None = None) -> Any:
        """Import ``kind`` and call it with ``options``; check the result meets ``protocol``."""
        factory = import_object(self.kind)
        try:
            built = factory(**self.options)
        except TypeError as exc:
            raise ConfigError(
                f"{self.kind} does not accept the options {sorted(self.options)}: {exc}; "
                "fix the section's options table"
            ) from exc
        if protocol is not None and not isinstance(built, protocol):
            raise ConfigError(
                f"{self.kind} made a {type(built).__name__}, which is not an avajams "
                f"{protocol.__name__} (see the protocol's required attributes and methods); "
                "point kind at a class or factory that implements it"
            )
        return built


# --- sampler -------------------------------------------------------------------------------


class _SamplerSection(_Section):
    """What every sampler section has: how indexing feeds the sampler's frames to inference."""

    workers: Annotated[int, Field(ge=1, le=16)] = 1
    """Decoder threads feeding inference while indexing."""
    queue_frames: Annotated[int, Field(ge=1)] = 64
    """Decoded frames buffered between the decoders and inference (bounds memory)."""

    def build(self) -> Sampler:
        """The live sampler this section describes."""
        raise NotImplementedError


class FrameSamplerConfig(_SamplerSection):
    """The default PyAV sampler (:class:`avajams.FrameSampler`) and how indexing feeds it."""

    kind: Literal["pyav"] = "pyav"
    """The PyAV sampler (the default)."""
    fps: Annotated[float, Field(gt=0, le=MAX_FPS)] = DEFAULT_FPS
    """Frames sampled per second of video."""
    size: int | tuple[int, int] | None = DEFAULT_SIZE
    """Output size: an int (square), (width, height), or None for the native size."""
    fit: Fit = "stretch"
    """How a non-square frame becomes the requested size."""
    max_duration: Annotated[float, Field(gt=0)] | None = None
    """Sample at most this many seconds of each video."""
    max_frames: Annotated[int, Field(gt=0)] | None = None
    """Sample at most this many frames of each video."""
    threads: Annotated[int, Field(ge=0)] = DEFAULT_THREADS
    """FFmpeg threads per video; 1 spends the least CPU per frame, which indexing needs while
    inference keeps every core busy; 0 = FFmpeg decides (lower latency for one video)."""

    def build(self) -> Sampler:
        from avajams.sampling import FrameSampler

        return FrameSampler(
            fps=self.fps,
            size=self.size,
            fit=self.fit,
            max_duration=self.max_duration,
            max_frames=self.max_frames,
            threads=self.threads,
        )


_NOT_A_TABLE = "must be a table of options (a [section] in TOML), not a single value"


def _kind_discriminator(
    default: str, builtin: Iterable[str], other: str | None = None
) -> Discriminator:
    """Picks a section's model from its ``kind``; a section that is not a table is an error."""
    names = frozenset(builtin)

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            kind = value.get("kind", default)
        elif isinstance(value, BaseModel):
            kind = getattr(value, "kind", default)
        else:
            return None  # not a table: pydantic reports the section as invalid
        if isinstance(kind, str) and ":" in kind:
            return "custom"
        if other is not None and kind not in names:
            return other
        return str(kind)

    return Discriminator(tag, custom_error_type="section", custom_error_message=_NOT_A_TABLE)


class CustomSamplerConfig(CustomConfig, _SamplerSection):
    """A sampler of your own: ``kind = "package.module:Class"`` (an :class:`avajams.Sampler`)
    called with ``options``."""

    def build(self) -> Sampler:
        from avajams.sampling import Sampler

        built: Sampler = self.build_checked(Sampler)
        return built


SamplerConfig = Annotated[
    Annotated[FrameSamplerConfig, Tag("pyav")] | Annotated[CustomSamplerConfig, Tag("custom")],
    _kind_discriminator("pyav", ["pyav"]),
]

# --- embedder ------------------------------------------------------------------------------


class _EmbedderSection(_Section):
    """What every embedder section has: the batch size indexing fills, and ``build``."""

    batch_size: Annotated[int, Field(ge=1)] = DEFAULT_BATCH_SIZE
    """Frames per inference call; indexing batches frames across videos to fill it."""

    def build(self, *, show_progress: bool | None = None) -> Embedder:
        """The live embedder; ``show_progress`` is for a one-off model build on first use."""
        raise NotImplementedError


class InceptionConfig(_EmbedderSection):
    """The default embedder: Google's Inception v3 (2048-d pool features) as ONNX."""

    kind: Literal["inception_v3"] = "inception_v3"
    """Inception v3 on onnxruntime (the default)."""
    source: str = "fid2015"
    """Where the weights come from (see ``avajams model fetch --source``)."""
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    """onnxruntime execution providers in order of preference; `["auto"]`: TensorRT, CUDA,
    then CPU, whichever this machine's onnxruntime offers."""
    threads: Annotated[int, Field(ge=0)] = 0
    """Threads of one onnxruntime run; 0: one single-threaded run per core, sharing each batch."""
    precision: Literal["fp32", "int8", "fp16"] = "fp32"
    """`int8`: a quantised copy of the model, about 1.6x faster on a CPU (docs/performance.md);
    `fp16`: a half-precision copy for GPUs (docs/scale.md)."""

    def build(self, *, show_progress: bool | None = None) -> Embedder:
        from avajams.embedding import load_embedder

        return load_embedder("inception_v3", **self.build_options(), show_progress=show_progress)

    def build_options(self) -> dict[str, Any]:
        """The keyword arguments :meth:`build` passes to ``load_embedder("inception_v3")``."""
        return {
            "source": self.source,
            "providers": list(self.providers),
            "batch_size": self.batch_size,
            "threads": self.threads,
            "precision": self.precision,
        }


class EfficientNetConfig(_EmbedderSection):
    """EfficientNet-Lite0 (1280-d pool features) as ONNX: 15x fewer FLOPs per frame than
    Inception v3 (docs/model.md says when to choose it); its libraries never mix with
    Inception's."""

    kind: Literal["efficientnet_lite0"] = "efficientnet_lite0"
    """EfficientNet-Lite0 on onnxruntime."""
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    """onnxruntime execution providers in order of preference."""
    threads: Annotated[int, Field(ge=0)] = 0
    """Threads of one onnxruntime run; 0: one single-threaded run per core, sharing each batch."""

    def build(self, *, show_progress: bool | None = None) -> Embedder:
        from avajams.embedding import load_embedder

        return load_embedder(
            "efficientnet_lite0", **self.build_options(), show_progress=show_progress
        )

    def build_options(self) -> dict[str, Any]:
        """The keyword arguments :meth:`build` passes to ``load_embedder("efficientnet_lite0")``."""
        return {
            "providers": list(self.providers),
            "batch_size": self.batch_size,
            "threads": self.threads,
        }


class RegisteredEmbedderConfig(_EmbedderSection):
    """An embedder registered by name (entry point group ``avajams.embedders``)."""

    kind: Annotated[str, Field(pattern=r"^[A-Za-z_][\w.-]*$")]
    """The registered name (``avajams model`` lists what is available)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the embedder."""

    def build(self, *, show_progress: bool | None = None) -> Embedder:
        from avajams.embedding import load_embedder

        return load_embedder(self.kind, **self.options)


class CustomEmbedderConfig(CustomConfig, _EmbedderSection):
    """An embedder of your own: ``kind = "package.module:Class"`` called with ``options``."""

    def build(self, *, show_progress: bool | None = None) -> Embedder:
        from avajams.embedding import Embedder

        built: Embedder = self.build_checked(Embedder)
        return built


EmbedderConfig = Annotated[
    Annotated[InceptionConfig, Tag("inception_v3")]
    | Annotated[EfficientNetConfig, Tag("efficientnet_lite0")]
    | Annotated[RegisteredEmbedderConfig, Tag("registered")]
    | Annotated[CustomEmbedderConfig, Tag("custom")],
    _kind_discriminator("inception_v3", ["inception_v3", "efficientnet_lite0"], other="registered"),
]

# --- labels --------------------------------------------------------------------------------


class LabelsConfig(_Section):
    """ImageNet labels of every sampled frame and video (EfficientNet-Lite0), made at index
    time beside the embedder on the same decoded frames (docs/library.md)."""

    enabled: bool = True
    """Label videos while indexing and label queries in ``match``; false turns labels off."""
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    """onnxruntime execution providers for the labelling model, in order of preference."""
    threads: Annotated[int, Field(ge=0)] = 0
    """Threads of one onnxruntime run; 0: one single-threaded run per core, sharing each batch."""

    def build(self, *, show_progress: bool | None = None) -> Labeller | None:
        """The labeller (built or loaded on first use), or None when labels are off."""
        if not self.enabled:
            return None
        from avajams.labels import Labeller

        return Labeller(
            providers=list(self.providers), threads=self.threads, show_progress=show_progress
        )


# --- library -------------------------------------------------------------------------------


class LibraryConfig(_Section):
    """The library on disk: a SQLite catalogue + a nearest-neighbour index of signatures
    (hnswlib with the ``hnsw`` extra, exact numpy search without it)."""

    kind: Literal["local"] = "local"
    """A library in one local directory (the only kind so far)."""
    directory: Path | None = None
    """Where the library lives (default: ``library`` in the user data directory)."""
    backend: Literal["auto", "hnsw", "exact"] = "auto"
    """Nearest-neighbour search: hnswlib, exact numpy, or chosen by library size ("auto":
    exact for small libraries and whenever hnswlib is not installed)."""
    signature: Literal["mean", "median"] = "mean"
    """How a video's frame vectors become its one signature vector."""
    match: Literal["regions", "frames"] = "regions"
    """How `match` compares a query: `regions` (the whole frame and the regions a video may
    fill — picture-in-picture, a filmed screen, black bars — each aligned in time with the
    candidates) or `frames` (whole frames only, each query frame's best match averaged)."""

    def resolved_directory(self) -> Path:
        """The library directory, defaults applied."""
        if self.directory is not None:
            return self.directory.expanduser()
        return _default_library_dir()


def _default_library_dir() -> Path:
    from avajams.index import default_library_dir

    return default_library_dir()


# --- executor ------------------------------------------------------------------------------


class LocalExecutorConfig(_Section):
    """Index on this machine: decoder threads feeding one embedder (the default)."""

    kind: Literal["local"] = "local"
    """Decoder threads + batched inference in this process (the default)."""


class RayExecutorConfig(_Section):
    """Index on a Ray cluster (`pip install 'avajams[ray]'`): decoding as Ray tasks, embedding
    in actors that each load the model once, results streamed to the one library writer here.
    Every node must see the video files at the same paths (docs/scale.md)."""

    kind: Literal["ray"] = "ray"
    """Ray tasks decode, Ray actors embed, this process writes the library."""
    address: str = "auto"
    """The cluster: `"auto"` (`RAY_ADDRESS` or the one `ray start` began on this machine),
    `"local"` (a private one-machine cluster for this run), `"host:port"` or
    `"ray://host:port"`."""
    actors: Annotated[int, Field(ge=1)] = 1
    """Embedder actors; each loads the model once and embeds one video at a time."""
    cpus_per_actor: Annotated[float, Field(ge=0)] = 1.0
    """CPUs Ray reserves for each embedder actor."""
    gpus_per_actor: Annotated[float, Field(ge=0)] = 0.0
    """GPUs Ray reserves for each embedder actor (e.g. 1, or 0.5 to share a GPU); with GPUs,
    set the embedder's `providers` to `["auto"]` or name the CUDA provider."""
    decode_cpus: Annotated[float, Field(gt=0)] = 1.0
    """CPUs Ray reserves for each decoding task (one video each)."""
    batch_size: Annotated[int, Field(ge=1)] | None = None
    """Frames per inference call in an actor (default: the embedder's `batch_size`)."""
    videos_in_flight: Annotated[int, Field(ge=1)] | None = None
    """Videos decoded or being embedded at once, bounding the object store's memory (default:
    two per actor plus one per decoding slot of the cluster)."""
    retries: Annotated[int, Field(ge=0)] = 3
    """Times a decoding task or an embedding call is retried after its worker or node died."""


ExecutorConfig = Annotated[
    Annotated[LocalExecutorConfig, Tag("local")] | Annotated[RayExecutorConfig, Tag("ray")],
    _kind_discriminator("local", ["local", "ray"]),
]

# --- mashup --------------------------------------------------------------------------------


class _MashupTiming(_Section):
    segment_seconds: Annotated[float, Field(gt=0)] = 2.0
    """Length of each stretch of picture before cutting to the other video."""
    start_with: Literal["user", "music"] = "user"
    """Whose picture opens the mashup."""
    user_end: Literal["loop", "hold", "music"] = "loop"
    """When the user video runs out: loop it, hold its last frame, or show the music video."""
    max_duration: Annotated[float, Field(gt=0)] | None = None
    """Cut the mashup off after this many seconds (default: the music video's length)."""
    fps: Annotated[float, Field(gt=0)] | None = None
    """Output frame rate (default: the music video's, capped at ``fps_cap``)."""
    fps_cap: Annotated[float, Field(gt=0)] = 30.0
    """Highest output frame rate taken from the music video."""

    def _timing(self) -> dict[str, Any]:
        return {
            "segment_seconds": self.segment_seconds,
            "start_with": self.start_with,
            "user_end": self.user_end,
            "max_duration": self.max_duration,
            "fps": self.fps,
            "fps_cap": self.fps_cap,
        }


class MoviePyMashupConfig(_MashupTiming):
    """The default MoviePy renderer and the cut plan's options."""

    kind: Literal["moviepy"] = "moviepy"
    """The MoviePy renderer (the default)."""
    size: tuple[int, int] | None = None
    """Output (width, height) (default: the music video's, capped at ``max_size``)."""
    max_size: tuple[int, int] = (1280, 720)
    """Largest output size taken from the music video."""
    fit: Literal["letterbox", "crop"] = "letterbox"
    """How a picture of another shape fills the output: letterbox, or crop to fill."""
    crossfade_ms: Annotated[float, Field(ge=0)] = 0.0
    """Crossfade at each cut in milliseconds (0: hard cuts)."""

    def build(self) -> Mashup:
        from avajams.mashup import Mashup

        return Mashup(
            **self._timing(),
            size=self.size,
            max_size=self.max_size,
            fit=self.fit,
            crossfade_ms=self.crossfade_ms,
        )


class CustomMashupConfig(_MashupTiming):
    """A renderer of your own (``kind = "package.module:Class"``, a :class:`avajams.Renderer`)
    called with ``options``, driven by the same cut plan options."""

    kind: Annotated[str, Field(pattern=_IMPORT_STRING)]
    """Import string of the renderer class or factory: ``"package.module:Name"``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments it is called with."""

    def build(self) -> Mashup:
        from avajams.mashup import Mashup

        renderer = CustomConfig(kind=self.kind, options=self.options).build_checked()
        return Mashup(**self._timing(), renderer=renderer)


MashupConfig = Annotated[
    Annotated[MoviePyMashupConfig, Tag("moviepy")] | Annotated[CustomMashupConfig, Tag("custom")],
    _kind_discriminator("moviepy", ["moviepy"]),
]


# --- the whole configuration ---------------------------------------------------------------


class PipelineConfig(_Section):
    """Everything a :class:`Pipeline` needs, as frozen data; every field has a default.

    Load it from Python (``PipelineConfig(sampler={"fps": 2})``), TOML or JSON
    (:meth:`load`). Unknown keys are errors, so typos do not pass silently.
    """

    sampler: SamplerConfig = Field(default_factory=FrameSamplerConfig)
    embedder: EmbedderConfig = Field(default_factory=InceptionConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    library: LibraryConfig = Field(default_factory=LibraryConfig)
    mashup: MashupConfig = Field(default_factory=MoviePyMashupConfig)
    executor: ExecutorConfig = Field(default_factory=LocalExecutorConfig)

    @field_validator("library", mode="before")
    @classmethod
    def _library_path(cls, value: Any) -> Any:
        if isinstance(value, str | os.PathLike):
            return {"directory": value}
        return value

    def with_library(self, directory: str | os.PathLike[str]) -> PipelineConfig:
        """A copy whose library lives in ``directory``."""
        library = self.library.model_copy(update={"directory": Path(directory)})
        return self.model_copy(update={"library": library})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PipelineConfig:
        """Read a configuration file: ``.toml`` or ``.json``.

        A relative ``library.directory`` is taken relative to the file's folder.
        """
        file = Path(path)
        try:
            if file.exists() and not file.is_file():  # a FIFO or /dev/zero would never end
                raise ConfigError(
                    f"configuration file {file} is not a regular file; give a .toml or .json file",
                    path=file,
                )
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(
                f"configuration file {file} does not exist; check the path", path=file
            ) from exc
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {file}: {exc}", path=file) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"configuration file {file} is not UTF-8 text ({exc}); save it as UTF-8",
                path=file,
            ) from exc
        suffix = file.suffix.lower()
        try:
            if suffix == ".toml":
                data = _toml_loads(text)
            elif suffix == ".json":
                data = json.loads(text)
            else:
                raise ConfigError(
                    f"configuration file {file} must end in .toml or .json", path=file
                )
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(
                f"{file} is not valid {suffix[1:].upper()}: {exc}", path=file
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file} must hold a table/object at the top level", path=file)
        library = data.get("library")
        if isinstance(library, dict) and isinstance(library.get("directory"), str):
            directory = Path(library["directory"]).expanduser()
            if not directory.is_absolute():
                data["library"] = {**library, "directory": str(file.parent / directory)}
        return cls.from_mapping(data, source=str(file))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "configuration"
    ) -> PipelineConfig:
        """Validate a mapping (e.g. parsed TOML), raising :class:`ConfigError` on bad values."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid {source}: {problems}") from exc


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    data: dict[str, Any] = tomllib.loads(text)
    return data


def import_object(spec: str) -> Any:
    """Import ``"package.module:Name"`` (``Name`` may be dotted), with a helpful error."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{spec!r} is not an import string; write it as 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} from {spec!r} ({exc}); "
            "install the package that provides it or fix the name"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr!r} (from {spec!r}); fix the name"
            ) from None
    if not callable(obj):
        raise ConfigError(f"{spec!r} is not a class or function")
    return obj


# --- the configuration reference (docs/configuration.md is generated from this) -----------

#: (TOML table, section models in the order the reference lists them)
CONFIG_SECTIONS: tuple[tuple[str, tuple[type[BaseModel], ...]], ...] = (
    ("sampler", (FrameSamplerConfig, CustomSamplerConfig)),
    (
        "embedder",
        (InceptionConfig, EfficientNetConfig, RegisteredEmbedderConfig, CustomEmbedderConfig),
    ),
    ("labels", (LabelsConfig,)),
    ("library", (LibraryConfig,)),
    ("mashup", (MoviePyMashupConfig, CustomMashupConfig)),
    ("executor", (LocalExecutorConfig, RayExecutorConfig)),
)


def _type_name(annotation: Any) -> str:
    """A field's type in TOML words: ``float``, ``"a" or "b"``, ``[int, int]``, ``table``."""
    import types
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"[{_type_name(args[0])}, ...]"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if origin is dict:
        return "table"
    names = {type(None): "none", str: "string", Path: "path", float: "float", int: "int"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(info: Any) -> str:
    from pydantic_core import PydanticUndefined

    if info.default is PydanticUndefined:
        return "{}" if info.default_factory is dict else "(required)"
    value = info.default
    if value is None:
        return "none"
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def config_reference() -> str:
    """Markdown tables of every configuration field (the body of docs/configuration.md)."""
    lines: list[str] = []
    for table, models in CONFIG_SECTIONS:
        for model in models:
            doc = " ".join((model.__doc__ or "").split())
            lines += [f"### `[{table}]` — {model.__name__}", "", doc, ""]
            lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
            own = vars(model).get("__annotations__", {})
            # kind first, then the section's own fields, then those every backend shares
            fields = sorted(
                model.model_fields.items(),
                key=lambda item: (item[0] != "kind", item[0] not in own),
            )
            for name, info in fields:
                description = " ".join((info.description or "").split())
                lines.append(
                    f"| `{name}` | `{_type_name(info.annotation)}` | `{_default_text(info)}` "
                    f"| {description} |"
                )
            lines.append("")
    return "\n".join(lines)
