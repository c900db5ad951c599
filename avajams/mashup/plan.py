"""The cut plan: which source is on screen at every output frame. Pure data, no video I/O.

A mashup keeps the music video's soundtrack running from start to end while the picture
alternates between the user's video and the music video. :func:`plan_cuts` decides, in whole
frames at the output frame rate, which source shows which frame:

- the output lasts as long as the music video (or ``max_duration``, if shorter);
- the music video's picture is shown at *source time = output time*, so it stays in sync with
  its own soundtrack (lip-sync) — while the user's video is on screen the music video's picture
  runs on unseen;
- the user's video has its own cursor that advances only while it is on screen, so none of it
  is skipped. When it runs out, ``user_end`` decides: ``"loop"`` (start it again),
  ``"hold"`` (freeze its last frame) or ``"music"`` (give the rest of the output to the music
  video).

Frame ``i`` of a source at the plan's rate means source time ``i / fps`` seconds from the
source's first frame; a renderer shows the source frame covering that time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, get_args

from avajams.errors import ConfigError

__all__ = [
    "DEFAULT_FPS_CAP",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_SEGMENT_SECONDS",
    "CutOptions",
    "CutPlan",
    "FitMode",
    "Segment",
    "Source",
    "StartWith",
    "UserEnd",
    "canvas_size",
    "check_choice",
    "output_fps",
    "plan_cuts",
    "positive",
]

Source = Literal["user", "music"]
StartWith = Literal["user", "music"]
UserEnd = Literal["loop", "hold", "music"]
FitMode = Literal["letterbox", "crop"]

#: JSON schema version written by :meth:`CutPlan.to_json`.
PLAN_VERSION = 1

#: Seconds between cuts unless told otherwise.
DEFAULT_SEGMENT_SECONDS = 2.0
#: The highest output frame rate taken from the music video.
DEFAULT_FPS_CAP = 30.0
#: The box the output size is shrunk into (a portrait video gets the transposed box).
DEFAULT_MAX_SIZE = (1280, 720)

# Durations come from container timestamps; a product like 2.0 * 29.97 must not lose a frame
# to floating-point error.
_EPS = 1e-6


@dataclass(frozen=True)
class Segment:
    """A run of consecutive output frames taken from one source.

    Output frames ``output_start .. output_start + frames - 1`` show source frames
    ``source_start .. source_start + frames - 1`` (all at the plan's fps), or, when ``hold`` is
    true, ``source_start`` every time (a frozen frame).
    """

    source: Source
    source_start: int
    frames: int
    output_start: int
    hold: bool = False

    @property
    def output_end(self) -> int:
        """The output frame just after this segment."""
        return self.output_start + self.frames

    @property
    def source_end(self) -> int:
        """The source frame just after the last one this segment shows."""
        return self.source_start + (1 if self.hold else self.frames)

    def source_frame(self, output_frame: int) -> int:
        """The source frame (at the plan's fps) shown at ``output_frame`` of this segment."""
        if not self.output_start <= output_frame < self.output_end:
            raise IndexError(f"output frame {output_frame} is outside {self}")
        return (
            self.source_start if self.hold else self.source_start + output_frame - self.output_start
        )


@dataclass(frozen=True)
class CutPlan:
    """What to render: segments tiling ``frames`` output frames at ``fps``.

    ``user_frames`` and ``music_frames`` are the sources' lengths in frames at ``fps`` (the
    bounds every segment stays within). Build one with :func:`plan_cuts`.
    """

    fps: float
    segments: tuple[Segment, ...]
    frames: int
    user_frames: int
    music_frames: int

    @property
    def duration(self) -> float:
        """Output length in seconds."""
        return self.frames / self.fps

    @property
    def cuts(self) -> tuple[int, ...]:
        """Output frames where the picture switches source (a loop restart is not a cut)."""
        return tuple(
            b.output_start
            for a, b in zip(self.segments, self.segments[1:], strict=False)
            if a.source != b.source
        )

    def segment_at(self, output_frame: int) -> Segment:
        """The segment on screen at ``output_frame``."""
        if not 0 <= output_frame < self.frames:
            raise IndexError(f"output frame {output_frame} is outside 0..{self.frames - 1}")
        lo, hi = 0, len(self.segments) - 1
        while lo < hi:  # binary search over output_start
            mid = (lo + hi + 1) // 2
            if self.segments[mid].output_start <= output_frame:
                lo = mid
            else:
                hi = mid - 1
        return self.segments[lo]

    def source_at(self, output_frame: int) -> tuple[Source, int]:
        """``(source, source frame at the plan's fps)`` shown at ``output_frame``."""
        segment = self.segment_at(output_frame)
        return segment.source, segment.source_frame(output_frame)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (see :meth:`from_dict`)."""
        return {
            "version": PLAN_VERSION,
            "fps": self.fps,
            "frames": self.frames,
            "duration": self.duration,
            "user_frames": self.user_frames,
            "music_frames": self.music_frames,
            "segments": [asdict(s) for s in self.segments],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The plan as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CutPlan:
        """Rebuild a plan written by :meth:`to_dict`; raises ConfigError on malformed input."""
        try:
            if data.get("version") != PLAN_VERSION:
                raise ConfigError(
                    f"cut plan version {data.get('version')!r} is not supported "
                    f"(expected {PLAN_VERSION}); re-create the plan with this avajams"
                )
            segments = tuple(
                Segment(
                    source=check_choice("source", s["source"], Source),
                    source_start=int(s["source_start"]),
                    frames=int(s["frames"]),
                    output_start=int(s["output_start"]),
                    hold=bool(s.get("hold", False)),
                )
                for s in data["segments"]
            )
            plan = cls(
                fps=float(data["fps"]),
                segments=segments,
                frames=int(data["frames"]),
                user_frames=int(data["user_frames"]),
                music_frames=int(data["music_frames"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"malformed cut plan: {exc!r}") from exc
        plan.validate()
        return plan

    @classmethod
    def from_json(cls, text: str) -> CutPlan:
        """Rebuild a plan written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"cut plan is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("cut plan JSON must be an object")
        return cls.from_dict(data)

    def validate(self) -> None:
        """Raise ConfigError unless the segments tile the output and stay within their sources.

        Music segments must also be in sync (source frame = output frame).
        """
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"cut plan fps must be positive, got {self.fps}")
        if self.frames < 1 or not self.segments:
            raise ConfigError("cut plan has no frames")
        position = 0
        for s in self.segments:
            bound = self.user_frames if s.source == "user" else self.music_frames
            if s.frames < 1 or s.output_start != position:
                raise ConfigError(f"cut plan segments do not tile the output at {s}")
            if s.source_start < 0 or s.source_end > bound:
                raise ConfigError(f"cut plan segment {s} runs outside its source (0..{bound})")
            if s.source == "music" and (s.hold or s.source_start != s.output_start):
                raise ConfigError(f"cut plan music segment {s} is out of sync with its audio")
            position = s.output_end
        if position != self.frames:
            raise ConfigError(f"cut plan segments cover {position} of {self.frames} frames")


def check_choice(name: str, value: object, choices: Any) -> Any:
    """``value`` if it is one of the ``Literal`` type ``choices``; else a ConfigError."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def positive(name: str, value: float) -> float:
    """``value`` as a float if it is finite and > 0; else ConfigError naming ``name``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value}")
    return value


@dataclass(frozen=True)
class CutOptions:
    """How a mashup is timed: everything :func:`plan_cuts` needs besides the two videos.

    - ``segment_seconds``: seconds between cuts;
    - ``start_with``: whose picture opens the mashup (``"user"`` or ``"music"``);
    - ``user_end``: when the user's video runs out, ``"loop"`` it, ``"hold"`` its last
      frame or show the ``"music"`` video for the rest;
    - ``max_duration``: stop the output after this many seconds (None: the music's length);
    - ``fps``: output frame rate (None: the music video's, capped at ``fps_cap``).

    Invalid values raise ConfigError when the options are made, before any video is read.
    """

    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    start_with: StartWith = "user"
    user_end: UserEnd = "loop"
    max_duration: float | None = None
    fps: float | None = None
    fps_cap: float = DEFAULT_FPS_CAP

    def __post_init__(self) -> None:
        positive("segment_seconds", self.segment_seconds)
        check_choice("start_with", self.start_with, StartWith)
        check_choice("user_end", self.user_end, UserEnd)
        for name in ("max_duration", "fps"):
            value = getattr(self, name)
            if value is not None:
                positive(name, value)
        positive("fps_cap", self.fps_cap)

    def output_fps(self, music_fps: float) -> float:
        """The plan's frame rate for a music video of ``music_fps``."""
        return self.fps if self.fps is not None else output_fps(music_fps, cap=self.fps_cap)


def frames_in(seconds: float, fps: float) -> int:
    """Whole frames at ``fps`` that fit in ``seconds`` (robust to float error)."""
    return math.floor(seconds * fps + _EPS)


def plan_cuts(
    user_duration: float,
    music_duration: float,
    fps: float,
    *,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    start_with: StartWith = "user",
    cut_times: Iterable[float] | None = None,
    max_duration: float | None = None,
    user_end: UserEnd = "loop",
) -> CutPlan:
    """Plan a mashup of a user video and a music video (durations in seconds) at ``fps``.

    Cuts fall every ``segment_seconds`` (rounded to whole frames, without drift), or at the
    explicit ``cut_times`` (seconds of output; ``segment_seconds`` is then unused) — the hook
    for beat- or shot-aligned cuts. Between cuts the picture alternates sources, starting with
    ``start_with``. See the module docstring for the timing rules.
    """
    fps = positive("fps", fps)
    user_duration = positive("user_duration", user_duration)
    music_duration = positive("music_duration", music_duration)
    start_with = cast(StartWith, check_choice("start_with", start_with, StartWith))
    user_end = cast(UserEnd, check_choice("user_end", user_end, UserEnd))

    music_frames = frames_in(music_duration, fps)
    if music_frames < 1:
        raise ConfigError(
            f"the music video lasts {music_duration:.4f} s, less than one frame at {fps:g} fps"
        )
    # A user clip shorter than one output frame still has one frame to show.
    user_frames = max(1, frames_in(user_duration, fps))
    total = music_frames
    if max_duration is not None:
        total = min(total, frames_in(positive("max_duration", max_duration), fps))
        if total < 1:
            raise ConfigError(f"max_duration {max_duration} is shorter than one frame")

    cuts = _cut_frames(total, fps, segment_seconds, cut_times)
    slots = list(zip([0, *cuts], [*cuts, total], strict=True))
    segments: list[Segment] = []
    cursor = 0  # the user's video: next frame to show
    user_done = False
    source: Source = start_with
    for begin, end in slots:
        if source == "music" or user_done:
            segments.append(Segment("music", begin, end - begin, begin))
        else:
            position = begin
            while position < end:
                if cursor >= user_frames:
                    if user_end == "loop":
                        cursor = 0
                    elif user_end == "hold":
                        segments.append(
                            Segment("user", user_frames - 1, end - position, position, hold=True)
                        )
                        position = end
                        break
                    else:  # "music": the rest of the output is the music video
                        user_done = True
                        segments.append(Segment("music", position, end - position, position))
                        position = end
                        break
                take = min(end - position, user_frames - cursor)
                segments.append(Segment("user", cursor, take, position))
                cursor += take
                position += take
        source = "music" if source == "user" else "user"

    plan = CutPlan(
        fps=fps,
        segments=tuple(_merge(segments)),
        frames=total,
        user_frames=user_frames,
        music_frames=music_frames,
    )
    plan.validate()
    return plan


def _cut_frames(
    total: int, fps: float, segment_seconds: float, cut_times: Iterable[float] | None
) -> list[int]:
    if cut_times is not None:
        frames = set()
        for t in cut_times:
            t = float(t)
            if not math.isfinite(t):
                raise ConfigError(f"cut time {t} is not a finite number of seconds")
            frames.add(round(t * fps))
        return sorted(f for f in frames if 0 < f < total)
    segment_seconds = positive("segment_seconds", segment_seconds)
    if segment_seconds * fps < 1 - _EPS:
        raise ConfigError(
            f"segment_seconds {segment_seconds} is shorter than one frame at {fps:g} fps"
        )
    # Each cut rounded from the exact time, so 2 s at 29.97 fps does not drift.
    cuts = []
    i = 1
    while (cut := round(i * segment_seconds * fps)) < total:
        cuts.append(cut)
        i += 1
    return cuts


def _merge(segments: Sequence[Segment]) -> list[Segment]:
    """Join neighbours that continue each other (e.g. music after the user's video ended)."""
    merged: list[Segment] = []
    for s in segments:
        if merged:
            last = merged[-1]
            if (
                last.source == s.source
                and not last.hold
                and not s.hold
                and last.source_start + last.frames == s.source_start
            ):
                merged[-1] = Segment(
                    s.source, last.source_start, last.frames + s.frames, last.output_start
                )
                continue
        merged.append(s)
    return merged


def output_fps(music_fps: float, *, cap: float = DEFAULT_FPS_CAP) -> float:
    """The mashup's frame rate: the music video's, capped at ``cap``, rounded to 0.01 fps.

    The rounding matches what the MP4 writer stores (MoviePy passes ``-r`` with two
    decimals), so output frame ``k`` is displayed at exactly ``k / fps``.
    """
    music_fps = positive("music fps", music_fps)
    return round(min(music_fps, positive("fps cap", cap)), 2)


def canvas_size(
    width: int, height: int, *, max_size: tuple[int, int] = DEFAULT_MAX_SIZE
) -> tuple[int, int]:
    """The output size: ``width x height`` shrunk to fit ``max_size`` keeping aspect, even dims.

    A portrait source is capped by the transposed box (720x1280 by default), so phone videos
    keep their resolution.
    """
    if width < 1 or height < 1:
        raise ConfigError(f"video size must be positive, got {width}x{height}")
    box_w, box_h = max_size
    if height > width:
        box_w, box_h = min(box_w, box_h), max(box_w, box_h)
    scale = min(1.0, box_w / width, box_h / height)
    w = max(2, 2 * round(width * scale / 2))
    h = max(2, 2 * round(height * scale / 2))
    return min(w, box_w - box_w % 2), min(h, box_h - box_h % 2)
