"""Helpers shared by the CLI commands that work on a library."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avajams.index import Match
    from avajams.pipeline import Pipeline, PipelineConfig


def add_library_option(parser: argparse.ArgumentParser) -> None:
    """``--library DIR``: overrides the configuration's library directory."""
    parser.add_argument(
        "--library",
        metavar="DIR",
        help="library directory (default: the configuration's, else the user data directory)",
    )


def load_config(args: argparse.Namespace) -> PipelineConfig:
    """The configuration from ``--config`` (defaults without it), ``--library`` applied."""
    from avajams.pipeline import PipelineConfig

    config = PipelineConfig.load(args.config) if args.config else PipelineConfig()
    library = getattr(args, "library", None)
    return config.with_library(library) if library else config


def load_pipeline(args: argparse.Namespace) -> Pipeline:
    """A pipeline built from the command line's ``--config`` and ``--library``."""
    from avajams.pipeline import Pipeline

    return Pipeline(load_config(args))


def format_matches(matches: Sequence[Match], *, expected: str | None = None) -> str:
    """A plain-text table of matches (rank, score, signature score, file, best pair)."""
    lines = [f"{'#':>2}  {'score':>6}  {'sig':>6}  {'best pair (you -> mv)':<22}  video"]
    for rank, m in enumerate(matches, 1):
        name = Path(m.path).name if m.path else m.key
        best = max(m.aligned, key=lambda p: p.similarity, default=None)
        pair = f"{best.query_time:5.1f}s -> {best.music_time:5.1f}s" if best is not None else "-"
        mark = "  <- the right answer" if expected is not None and m.path == expected else ""
        lines.append(
            f"{rank:>2}  {m.score:6.3f}  {m.signature_score:6.3f}  {pair:<22}  {name}{mark}"
        )
    return "\n".join(lines)


def show_progress(args: argparse.Namespace) -> bool | None:
    """False with ``--quiet``; else None: bars only when standard error is a terminal."""
    return False if args.quiet else None
