"""``avajams index PATH...``: add music videos to the library."""

from __future__ import annotations

import argparse
import sys

from avajams.cli._shared import (
    add_library_option,
    load_pipeline,
    progress_lines,
    show_progress,
)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parser = subparsers.add_parser(
        "index",
        parents=[common],
        help="add music videos (files or folders, recursively) to the library",
        description=(
            "Add music videos to the library: files as given, folders walked recursively for "
            "common video extensions. Unchanged files are skipped, changed ones re-indexed; "
            "a file that fails is reported and skipped. Exit code 1 when any file failed."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders")
    add_library_option(parser)
    parser.add_argument(
        "--remove-missing",
        action="store_true",
        help="drop library entries whose file under the given folders no longer exists",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help=(
            "decode and embed on a Ray cluster (pip install 'avajams[ray]'): 'auto' (the "
            "default: RAY_ADDRESS or the cluster `ray start` began here), 'local' (a private "
            "one for this run) or host:port; other settings from the config's [executor]"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with load_pipeline(args) as pipe:
        executor = None
        if args.ray is not None:
            from avajams.config import RayExecutorConfig

            current = pipe.config.executor
            base = current if isinstance(current, RayExecutorConfig) else RayExecutorConfig()
            executor = base.model_copy(update={"address": args.ray})
        summary = pipe.index(
            args.paths,
            remove_missing=args.remove_missing,
            show_progress=show_progress(args),
            progress=progress_lines(args),
            executor=executor,
        )
        directory = pipe.library_directory
    for path, reason in summary.failed.items():
        print(skipped_line(path, reason), file=sys.stderr)
    line = (
        f"{len(summary.added)} added, {len(summary.updated)} updated, "
        f"{len(summary.skipped)} unchanged, {len(summary.failed)} failed"
    )
    if summary.moved:
        line += f", {len(summary.moved)} moved"
    if summary.removed:
        line += f", {len(summary.removed)} removed"
    t = summary.timings
    print(f"{line} ({summary.frames} frames in {t.get('total', 0.0):.1f} s) -> {directory}")
    return 0 if summary.ok else 1


def skipped_line(path: str, reason: str) -> str:
    """``avajams: skipped PATH: reason``, naming the path once (reasons usually start with it)."""
    if reason.startswith(path + ": "):
        reason = reason[len(path) + 2 :]
    elif reason.startswith(path + " "):
        reason = "it" + reason[len(path) :]
    return f"avajams: skipped {path}: {reason}"
