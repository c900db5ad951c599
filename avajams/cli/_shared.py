"""Helpers shared by the CLI commands that work on a library."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    if library:
        config = config.model_copy(
            update={"library": config.library.model_copy(update={"directory": Path(library)})}
        )
    return config


def load_pipeline(args: argparse.Namespace) -> Pipeline:
    """A pipeline built from the command line's ``--config`` and ``--library``."""
    from avajams.pipeline import Pipeline

    return Pipeline(load_config(args))


def show_progress(args: argparse.Namespace) -> bool | None:
    """False with ``--quiet``; else None: bars only when standard error is a terminal."""
    return False if args.quiet else None
