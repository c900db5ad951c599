"""What ``avajams serve`` is configured with, and the mashup options a person can pick."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from avajams.errors import ConfigError
from avajams.pipeline import PipelineConfig

__all__ = ["SIZE_PRESETS", "MashupOptions", "ServeSettings", "default_work_dir"]

#: Output size choices: the largest (width, height) of the mashup (None: the configuration's).
SIZE_PRESETS: dict[str, tuple[int, int] | None] = {
    "auto": None,
    "720p": (1280, 720),
    "480p": (854, 480),
    "360p": (640, 360),
}

MIN_TOKEN_LENGTH = 16


def default_work_dir() -> Path:
    """``$AVAJAMS_HOME/web`` if that variable is set, else ``web`` in the user data directory."""
    home = os.environ.get("AVAJAMS_HOME")
    if home:
        return Path(home).expanduser() / "web"
    import platformdirs

    return platformdirs.user_data_path("avajams") / "web"


class MashupOptions(BaseModel):
    """The options of one mashup render, as the upload form and the API take them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment_seconds: Annotated[float, Field(ge=0.5, le=30.0)] = 2.0
    """Seconds of picture before cutting to the other video."""
    crossfade_ms: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.0
    """Dissolve at each cut, in milliseconds (0: hard cuts)."""
    user_end: Literal["loop", "hold", "music"] = "loop"
    """When the uploaded video runs out: loop it, hold its last frame, or show the music video."""
    start_with: Literal["user", "music"] = "user"
    """Whose picture opens the mashup."""
    size: Literal["auto", "720p", "480p", "360p"] = "auto"
    """Largest output size (``auto``: the server configuration's, 1280x720 by default)."""

    @classmethod
    def defaults_from(cls, config: PipelineConfig) -> MashupOptions:
        """The options a configuration's ``[mashup]`` section implies (the form's defaults)."""
        section = config.mashup
        values: dict[str, Any] = {
            "segment_seconds": min(max(section.segment_seconds, 0.5), 30.0),
            "user_end": section.user_end,
            "start_with": section.start_with,
        }
        crossfade = getattr(section, "crossfade_ms", None)
        if crossfade is not None:
            values["crossfade_ms"] = min(max(float(crossfade), 0.0), 1000.0)
        return cls(**values)

    @classmethod
    def parse(cls, values: dict[str, Any], defaults: MashupOptions) -> MashupOptions:
        """``values`` (form or JSON fields; missing ones from ``defaults``), or ConfigError."""
        known = {k: v for k, v in values.items() if k in cls.model_fields and v not in ("", None)}
        try:
            return cls.model_validate({**defaults.model_dump(), **known})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid mashup option: {problems}") from exc

    def apply(self, config: PipelineConfig) -> PipelineConfig:
        """``config`` with these options written into its ``[mashup]`` section."""
        section = config.mashup
        fields = type(section).model_fields
        update: dict[str, Any] = {
            "segment_seconds": self.segment_seconds,
            "user_end": self.user_end,
            "start_with": self.start_with,
        }
        if "crossfade_ms" in fields:
            update["crossfade_ms"] = self.crossfade_ms
        preset = SIZE_PRESETS[self.size]
        if preset is not None and "max_size" in fields:
            update["max_size"] = preset
        mashup = type(section).model_validate({**section.model_dump(), **update})
        return config.model_copy(update={"mashup": mashup})


class ServeSettings(BaseModel):
    """Everything the server is configured with (``avajams serve`` flags map onto these)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    config: PipelineConfig = Field(default_factory=PipelineConfig)
    """The pipeline configuration (sampler, embedder, library, mashup defaults)."""
    work_dir: Path = Field(default_factory=default_work_dir)
    """Uploads, job state (SQLite) and results live here."""
    host: str = "127.0.0.1"
    """Address to bind; anything but a loopback address exposes the server."""
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """TCP port (0: any free port)."""
    workers: Annotated[int, Field(ge=1, le=16)] = 1
    """Jobs run at the same time (each in its own process)."""
    max_queue: Annotated[int, Field(ge=1, le=10_000)] = 20
    """Jobs waiting at most; more get 503 with Retry-After."""
    max_jobs_per_client: Annotated[int, Field(ge=1, le=1000)] = 3
    """Jobs one client address may have queued or running at once; more get 429."""
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 1 << 30
    """Largest upload accepted, enforced while it streams in."""
    max_video_seconds: Annotated[float, Field(gt=0)] = 600.0
    """Longest uploaded video accepted."""
    keep_hours: Annotated[float, Field(gt=0)] = 24.0
    """Finished results are deleted after this many hours."""
    max_work_dir_bytes: Annotated[int, Field(ge=1 << 20)] = 20 << 30
    """Size cap of the work directory; the oldest finished results are evicted first."""
    token: str | None = None
    """Access token; when set every page and API call needs it."""
    matches: Annotated[int, Field(ge=1, le=20)] = 5
    """Matches kept per job (offered for re-mixing)."""
    probe_timeout: Annotated[float, Field(gt=0)] = 30.0
    """Seconds the decoder may take to accept an upload."""
    janitor_seconds: Annotated[float, Field(gt=0)] = 60.0
    """How often expired results are deleted and the size cap enforced."""

    @field_validator("work_dir")
    @classmethod
    def _absolute_work_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("config")
    @classmethod
    def _absolute_library(cls, value: PipelineConfig) -> PipelineConfig:
        """Workers run in their job folders: a relative library path must not follow them."""
        directory = value.library.resolved_directory().absolute()
        library = value.library.model_copy(update={"directory": directory})
        return value.model_copy(update={"library": library})

    @field_validator("token")
    @classmethod
    def _strong_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the access token must be at least {MIN_TOKEN_LENGTH} characters; make one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        return value

    @classmethod
    def build(cls, **values: Any) -> ServeSettings:
        """Validate ``values``, raising :class:`ConfigError` with one line per problem."""
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid server setting: {problems}") from exc

    @property
    def library_directory(self) -> Path:
        """The library the server matches against."""
        return self.config.library.resolved_directory()

    @property
    def exposed(self) -> bool:
        """Whether the bind address is reachable from other machines."""
        host = self.host.strip("[]")
        if host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True  # a host name: assume it resolves to a public address
