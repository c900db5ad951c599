"""``Mashup``: plan and render a user video against a music video in one call."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avajams._progress import ProgressCallback
from avajams.errors import ConfigError
from avajams.mashup.plan import CutOptions, CutPlan, FitMode, StartWith, UserEnd, plan_cuts
from avajams.mashup.render import MoviePyRenderer, Renderer, check_output_path, probe_music

if TYPE_CHECKING:
    from avajams.media import VideoInfo

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

    def _repr_html_(self) -> str:
        """The notebook display: the mashup as a playable video."""
        from avajams.display import render_result_html

        return render_result_html(self)


class Mashup:
    """Cut a user's video against a music video, keeping the music video's soundtrack.

    >>> Mashup(segment_seconds=2.0).render(user="me.mp4", music="mv.mp4", out="mashup.mp4")
    ... # doctest: +SKIP

    The timing is a :class:`~avajams.mashup.plan.CutOptions` (``options=``); its fields can
    also be given one by one (``segment_seconds``, ``start_with``, ``user_end``,
    ``max_duration``, ``fps``, ``fps_cap``), which override ``options``. The picture is the
    renderer's business: ``size``, ``max_size``, ``fit`` and ``crossfade_ms`` configure the
    default :class:`~avajams.mashup.render.MoviePyRenderer`; pass ``renderer=`` to use
    another :class:`~avajams.mashup.render.Renderer` (configured itself). Options left out
    take the defaults of ``CutOptions`` and ``MoviePyRenderer``.
    """

    def __init__(
        self,
        segment_seconds: float | None = None,
        *,
        start_with: StartWith | None = None,
        user_end: UserEnd | None = None,
        max_duration: float | None = None,
        fps: float | None = None,
        fps_cap: float | None = None,
        size: tuple[int, int] | None = None,
        max_size: tuple[int, int] | None = None,
        fit: FitMode | None = None,
        crossfade_ms: float | None = None,
        renderer: Renderer | None = None,
        options: CutOptions | None = None,
    ) -> None:
        timing: dict[str, Any] = {
            "segment_seconds": segment_seconds,
            "start_with": start_with,
            "user_end": user_end,
            "max_duration": max_duration,
            "fps": fps,
            "fps_cap": fps_cap,
        }
        # CutOptions validates, so bad timing fails now rather than after probing videos.
        self.options = dataclasses.replace(
            options if options is not None else CutOptions(),
            **{name: value for name, value in timing.items() if value is not None},
        )
        picture: dict[str, Any] = {
            "size": size,
            "max_size": max_size,
            "fit": fit,
            "crossfade_ms": crossfade_ms,
        }
        picture = {name: value for name, value in picture.items() if value is not None}
        if renderer is None:
            renderer = MoviePyRenderer(**picture)
        elif picture:
            raise ConfigError(
                f"{', '.join(picture)} configure the default renderer; "
                "set them on the renderer you pass instead"
            )
        self.renderer: Renderer = renderer

    # The timing options, readable as before CutOptions existed.
    @property
    def segment_seconds(self) -> float:
        """Seconds between cuts."""
        return self.options.segment_seconds

    @property
    def start_with(self) -> StartWith:
        """Whose picture opens the mashup."""
        return self.options.start_with

    @property
    def user_end(self) -> UserEnd:
        """What happens when the user's video runs out."""
        return self.options.user_end

    @property
    def max_duration(self) -> float | None:
        """Longest output in seconds (None: the music video's length)."""
        return self.options.max_duration

    @property
    def fps(self) -> float | None:
        """Output frame rate (None: the music video's, capped at ``fps_cap``)."""
        return self.options.fps

    @property
    def fps_cap(self) -> float:
        """Highest output frame rate taken from the music video."""
        return self.options.fps_cap

    def plan(
        self, user: StrPath, music: StrPath, *, cut_times: Iterable[float] | None = None
    ) -> CutPlan:
        """The cut plan for these two videos, without rendering (probes both files)."""
        from avajams.media import probe

        return self._plan(probe(user), probe(music), cut_times)

    def _plan(
        self, user: VideoInfo, music: VideoInfo, cut_times: Iterable[float] | None
    ) -> CutPlan:
        o = self.options
        return plan_cuts(
            user.duration,
            music.duration,
            o.output_fps(music.fps),
            segment_seconds=o.segment_seconds,
            start_with=o.start_with,
            cut_times=cut_times,
            max_duration=o.max_duration,
            user_end=o.user_end,
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
        (``out`` cannot be written) before any decoding or encoding. Each video is probed
        once; the renderer gets the probed :class:`~avajams.media.VideoInfo` (path-like).
        """
        from avajams.media import probe

        music_info = probe_music(music)
        check_output_path(out, (user, music))
        user_info = probe(user)
        plan = self._plan(user_info, music_info, cut_times)
        path = self.renderer.render(
            plan, user_info, music_info, out, show_progress=show_progress, progress=progress
        )
        written = probe(path)
        return RenderResult(
            path=path,
            duration=written.duration,
            plan=plan,
            size=(written.width, written.height),
            fps=written.fps,
        )
