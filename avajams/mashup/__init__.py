"""Mashups: a frame-exact cut plan (pure data) and the renderer that executes it."""

from __future__ import annotations

from avajams.mashup.plan import CutPlan, Segment, plan_cuts

__all__ = ["CutPlan", "Segment", "plan_cuts"]
