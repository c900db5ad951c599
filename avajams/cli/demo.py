"""``avajams demo``: the whole job on generated media, with the right answer known."""

from __future__ import annotations

import argparse

from avajams.cli._shared import load_config, show_progress


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
        "--videos", type=int, default=5, metavar="N", help="how many music videos (1-6, default 5)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avajams.cli._shared import format_matches
    from avajams.demo import run_demo
    from avajams.errors import ConfigError

    if not 1 <= args.videos <= 6:
        raise ConfigError(f"--videos must be between 1 and 6, got {args.videos}")
    result = run_demo(
        args.dir,
        config=load_config(args),
        count=args.videos,
        say=lambda line: print(f"- {line}", flush=True),
        show_progress=show_progress(args),
    )
    expected = str(result.expected.resolve())
    print()
    print(f"matches for {result.clip.name}:")
    print(format_matches(result.matches, expected=expected))
    print()
    print(f"the right answer: {Path(expected).name} (the clip was re-shot from it)")
    print("the best match is " + ("right." if result.correct else "WRONG."))
    print(f"match report: {result.report}")
    print(f"mashup:       {result.mashup}")
    print(f"done in {result.seconds:.0f} s")
    return 0 if result.correct else 1
