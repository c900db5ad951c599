"""Mashups: a frame-exact cut plan (pure data) and the renderer that executes it.

>>> from avajams.mashup import plan_cuts
>>> [(s.source, s.frames) for s in plan_cuts(10.0, 5.0, 24.0).segments]
[('user', 48), ('music', 48), ('user', 24)]
"""

from __future__ import annotations

from avajams.mashup.mashup import Mashup, RenderResult
from avajams.mashup.plan import CutPlan, Segment, plan_cuts
from avajams.mashup.render import MoviePyRenderer, Renderer

__all__ = [
    "CutPlan",
    "Mashup",
    "MoviePyRenderer",
    "RenderResult",
    "Renderer",
    "Segment",
    "plan_cuts",
]
