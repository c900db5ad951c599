"""``avajams demo``: the whole job on generated media, with the right answer known."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from avajams.cli._shared import int_in_range, load_config, progress_lines, show_progress

if TYPE_CHECKING:
    from pathlib import Path

    from avajams.index import Match


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="build a demo library from generated music videos, match a clip, cut a mashup",
        description=(
            "Write generated music videos (real photographs panned, zoomed and cut, with "
            "generated music) into DIR, index them, match a clip re-shot from one of them, "
            "print the matches and the right answer, and render the mashup. The first run "
            "builds the Inception v3 model (a minute or two)."
        ),
    )
    parser.add_argument(
        "--dir",
        default="avajams-demo",
        metavar="DIR",
        help="where to work (default ./avajams-demo)",
    )
    parser.add_argument(
        "--videos",
        type=int_in_range(1, 6),
        default=5,
        metavar="N",
        help="how many music videos (1-6, default 5)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avajams.cli._shared import format_matches
    from avajams.demo import run_demo

    def show_matches(clip: Path, matches: tuple[Match, ...], expected: Path) -> None:
        right = bool(matches) and matches[0].path == str(expected.resolve())
        print()
        print(f"matches for {clip.name}:")
        print(format_matches(matches, expected=str(expected.resolve())))
        print()
        print(f"the right answer: {expected.name} (the clip was re-shot from it)")
        print("the best match is " + ("right." if right else "WRONG."))
        print(flush=True)

    result = run_demo(
        args.dir,
        config=load_config(args),
        count=args.videos,
        say=lambda line: print(f"- {line}", flush=True),
        on_matches=show_matches,
        show_progress=show_progress(args),
        progress=progress_lines(args),
    )
    print(f"match report: {result.report}")
    print(f"mashup:       {result.mashup}")
    print(f"done in {result.seconds:.0f} s")
    return 0 if result.correct else 1
