"""Helpers shared by the CLI commands that work on a library."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from avajams.errors import AvajamsError, ConfigError, LibraryLockedError

if TYPE_CHECKING:
    from avajams._progress import ProgressCallback
    from avajams.index import Match
    from avajams.labels import Label
    from avajams.pipeline import Pipeline, PipelineConfig


class UsageError(ConfigError):
    """A command line the command cannot run as given: exit code 2 with the command's usage,
    like argparse's own errors (raised where argparse cannot express the rule)."""


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``[low, high]`` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


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


def format_label_lines(labels: Sequence[Label], top: int) -> str:
    """``name 0.31, name 0.12, ...``: the first ``top`` labels with their probabilities."""
    return ", ".join(f"{x.name} {x.probability:.2f}" for x in labels[:top])


def show_progress(args: argparse.Namespace) -> bool | None:
    """False with ``--quiet``; else None: bars only when standard error is a terminal."""
    return False if args.quiet else None


def progress_lines(args: argparse.Namespace) -> ProgressCallback | None:
    """Plain progress lines on standard error when it is not a terminal (a log, a CI job), so
    long work is not silent there; None with ``--quiet`` or on a terminal (bars instead)."""
    import sys

    from avajams._progress import LineProgress

    if args.quiet or sys.stderr.isatty():
        return None
    return LineProgress()


def error_message(exc: AvajamsError) -> str:
    """The one line the CLI prints for ``exc``: its message, or command-line advice where the
    message advises the Python API."""
    if isinstance(exc, LibraryLockedError) and exc.write_lock:
        who = "another process"
        if exc.holder is not None:
            command = _command_line(exc.holder)
            who = f"process {exc.holder}" + (f" ({command})" if command else "")
        return (
            f"the library {exc.path} is being written by {who}; wait for it to finish (or stop "
            "it), then run this command again — avajams match and avajams info work meanwhile"
        )
    return str(exc)


def _command_line(pid: int) -> str | None:
    """What process ``pid`` runs, where the system tells (Linux's /proc), shortened."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if not words:
        return None
    text = " ".join([Path(words[0]).name, *words[1:]])
    return text if len(text) <= 80 else text[:79] + "…"


def interrupted_message(exc: KeyboardInterrupt) -> str:
    """What the CLI says on Ctrl-C: what was kept, when the interrupted work says."""
    from avajams.ingest import IndexInterrupted

    if isinstance(exc, IndexInterrupted):
        return (
            f"interrupted: {exc.saved} of {exc.total} videos saved; run the same command to "
            "continue"
        )
    return "interrupted"
