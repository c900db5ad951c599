"""``Mashup``: plan and render a user video against a music video in one call."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from avajams._progress import ProgressCallback
from avajams.errors import ConfigError
from avajams.mashup.plan import (
    CutPlan,
    FitMode,
    StartWith,
    UserEnd,
    _check_choice,
    _positive,
    output_fps,
    plan_cuts,
)
from avajams.mashup.render import MoviePyRenderer, Renderer, check_output_path, probe_music

__all__ = ["Mashup", "RenderResult"]

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote: the file, its length in seconds, the plan, size and frame rate."""

    path: Path
    duration: float
    plan: CutPlan
    size: tuple[int, int]
    fps: float


class Mashup:
    """Cut a user's video against a music video, keeping the music video's soundtrack.

    >>> Mashup(segment_seconds=2.0).render(user="me.mp4", music="mv.mp4", out="mashup.mp4")
    ... # doctest: +SKIP

    Timing (see :func:`~avajams.mashup.plan.plan_cuts`): ``segment_seconds``, ``start_with``,
    ``user_end`` (``"loop"``, ``"hold"`` or ``"music"``), ``max_duration`` and ``fps`` (default:
    the music video's, capped at ``fps_cap``). Picture options for the default renderer:
    ``size``, ``max_size``, ``fit`` (``"letterbox"`` or ``"crop"``) and ``crossfade_ms``; pass
    ``renderer=`` to use another :class:`~avajams.mashup.render.Renderer` (configured itself).
    """

    def __init__(
        self,
        segment_seconds: float = 2.0,
        *,
        start_with: StartWith = "user",
        user_end: UserEnd = "loop",
        max_duration: float | None = None,
        fps: float | None = None,
        fps_cap: float = 30.0,
        size: tuple[int, int] | None = None,
        max_size: tuple[int, int] = (1280, 720),
        fit: FitMode = "letterbox",
        crossfade_ms: float = 0.0,
        renderer: Renderer | None = None,
    ) -> None:
        self.segment_seconds = segment_seconds
        self.start_with: StartWith = start_with
        self.user_end: UserEnd = user_end
        self.max_duration = max_duration
        self.fps = fps
        self.fps_cap = fps_cap
        if renderer is None:
            renderer = MoviePyRenderer(
                size=size, max_size=max_size, fit=fit, crossfade_ms=crossfade_ms
            )
        elif (size, max_size, fit, crossfade_ms) != (None, (1280, 720), "letterbox", 0.0):
            raise ConfigError(
                "size, max_size, fit and crossfade_ms configure the default renderer; "
                "set them on the renderer you pass instead"
            )
        self.renderer: Renderer = renderer
        # Fail on bad timing options now rather than after probing videos.
        _positive("segment_seconds", segment_seconds)
        _check_choice("start_with", start_with, StartWith)
        _check_choice("user_end", user_end, UserEnd)
        for name, value in (("max_duration", max_duration), ("fps", fps)):
            if value is not None:
                _positive(name, value)
        _positive("fps_cap", fps_cap)

    def plan(
        self, user: StrPath, music: StrPath, *, cut_times: Iterable[float] | None = None
    ) -> CutPlan:
        """The cut plan for these two videos, without rendering (probes both files)."""
        from avajams.media import probe

        user_info = probe(user)
        music_info = probe(music)
        fps = self.fps if self.fps is not None else output_fps(music_info.fps, cap=self.fps_cap)
        return plan_cuts(
            user_info.duration,
            music_info.duration,
            fps,
            segment_seconds=self.segment_seconds,
            start_with=self.start_with,
            cut_times=cut_times,
            max_duration=self.max_duration,
            user_end=self.user_end,
        )

    def render(
        self,
        user: StrPath,
        music: StrPath,
        out: StrPath,
        *,
        cut_times: Iterable[float] | None = None,
        show_progress: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> RenderResult:
        """Plan and render the mashup to ``out`` (an .mp4); return what was written.

        Raises MissingAudioError (the music video has no soundtrack) and OutputPathError
        (``out`` cannot be written) before any decoding or encoding.
        """
        from avajams.media import probe

        probe_music(music)
        check_output_path(out, (user, music))
        plan = self.plan(user, music, cut_times=cut_times)
        path = self.renderer.render(
            plan, user, music, out, show_progress=show_progress, progress=progress
        )
        written = probe(path)
        return RenderResult(
            path=path,
            duration=written.duration,
            plan=plan,
            size=(written.width, written.height),
            fps=written.fps,
        )
