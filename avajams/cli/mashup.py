"""``avajams mashup USER --music MUSIC -o OUT``: cut a user video against a music video.

The handler is split so other commands can reuse it: :func:`resolve_music` finds the music
video (today: ``--music``), :func:`run_with_music` plans or renders against a resolved path.
"""

from __future__ import annotations

import argparse
from typing import Any

from avajams.cli._shared import (
    UsageError,
    add_library_option,
    load_config,
    load_pipeline,
    progress_lines,
)
from avajams.errors import ConfigError

__all__ = ["add_mashup_options", "mashup_from_args", "register", "resolve_music", "run_with_music"]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None


def _times(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"cut times must be comma-separated seconds like 1.5,4,7.25, got {text!r}"
        ) from None


def add_mashup_options(parser: argparse.ArgumentParser) -> None:
    """The timing and picture options of a mashup (shared with commands that render one).

    Each option overrides the ``[mashup]`` section of ``--config``; the defaults named in the
    help texts are those of a configuration that does not set them.
    """
    group = parser.add_argument_group("mashup")
    group.add_argument(
        "--segment-seconds",
        type=float,
        metavar="S",
        help="seconds between cuts (default 2)",
    )
    group.add_argument(
        "--cut-times",
        type=_times,
        metavar="T1,T2,...",
        help="explicit cut times in seconds of output (replaces --segment-seconds)",
    )
    group.add_argument(
        "--start-with",
        choices=["user", "music"],
        help="which video is on screen first (default user)",
    )
    group.add_argument(
        "--user-end",
        choices=["loop", "hold", "music"],
        help="when your video runs out: loop it, hold its last frame, or show only the music "
        "video (default loop)",
    )
    group.add_argument(
        "--max-duration", type=float, metavar="S", help="stop the output after S seconds"
    )
    group.add_argument(
        "--fps", type=float, help="output frame rate (default: the music video's, at most 30)"
    )
    group.add_argument(
        "--size",
        type=_size,
        metavar="WxH",
        help="output size (default: the music video's, within 1280x720)",
    )
    group.add_argument(
        "--fit",
        choices=["letterbox", "crop"],
        help="fit each video to the frame with black bars or by cropping (default letterbox)",
    )
    group.add_argument(
        "--crossfade-ms",
        type=float,
        metavar="MS",
        help="dissolve at each cut, in milliseconds (default 0: hard cuts)",
    )


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``mashup`` command."""
    parser = subparsers.add_parser(
        "mashup",
        parents=[common],
        help="render a mashup of your video and a music video",
        description="Play the music video's soundtrack while the picture alternates between "
        "your video and the music video.",
    )
    parser.add_argument("user", metavar="USER", help="your video")
    parser.add_argument(
        "--music",
        metavar="MUSIC",
        help="the music video whose soundtrack plays throughout "
        "(default: the library's best match for USER)",
    )
    add_library_option(parser)
    parser.add_argument(
        "-o", "--output", metavar="OUT", help="output .mp4 (required unless --dry-run)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the cut plan as JSON and render nothing"
    )
    add_mashup_options(parser)
    parser.set_defaults(func=_handle)


_MASHUP_FLAGS = (
    "segment_seconds",
    "start_with",
    "user_end",
    "max_duration",
    "fps",
    "size",
    "fit",
    "crossfade_ms",
)


def mashup_from_args(args: argparse.Namespace) -> Any:
    """The :class:`avajams.Mashup` of ``--config``'s ``[mashup]`` section, flags applied."""
    from pydantic import ValidationError

    section = load_config(args).mashup
    overrides = {
        name: getattr(args, name) for name in _MASHUP_FLAGS if getattr(args, name) is not None
    }
    unsupported = sorted(set(overrides) - set(type(section).model_fields))
    if unsupported:
        flags = ", ".join("--" + name.replace("_", "-") for name in unsupported)
        raise ConfigError(
            f"{flags} do not apply to the configured renderer {section.kind!r}; "
            "set its options in the configuration file instead"
        )
    try:
        config = type(section).model_validate({**section.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid mashup option: {problems}") from exc
    return config.build()


def resolve_music(args: argparse.Namespace) -> str:
    """The music video to use: ``--music``, else the library's best match for the user video."""
    if args.music is not None:
        return str(args.music)
    with load_pipeline(args) as pipe:
        choice = pipe.choose_music(args.user)
    for match, reason in choice.skipped:
        print(f"skipped {match.path or match.key} (score {match.score:.3f}): {reason}")
    print(f"best match: {choice.path} (score {choice.match.score:.3f})", flush=True)
    return choice.path


def run_with_music(args: argparse.Namespace, music: str) -> int:
    """Plan (``--dry-run``) or render the mashup of ``args.user`` against ``music``."""
    mashup = mashup_from_args(args)
    if args.dry_run:
        plan = mashup.plan(args.user, music, cut_times=args.cut_times)
        print(plan.to_json())
        return 0
    if args.output is None:
        raise UsageError("no output file given; pass -o OUT.mp4 (or --dry-run)")
    result = mashup.render(
        args.user,
        music,
        args.output,
        cut_times=args.cut_times,
        show_progress=False if args.quiet else None,
        progress=progress_lines(args),
    )
    width, height = result.size
    print(
        f"wrote {result.path} ({result.duration:.2f} s, {width}x{height} at {result.fps:g} fps, "
        f"{len(result.plan.cuts)} cuts)"
    )
    return 0


def _handle(args: argparse.Namespace) -> int:
    # everything that can be checked is checked before matching, which takes a while
    if not args.dry_run:
        if args.output is None:
            raise UsageError("no output file given; pass -o OUT.mp4 (or --dry-run)")
        from avajams.mashup.render import check_output_path

        check_output_path(args.output, tuple(p for p in (args.user, args.music) if p))
    mashup_from_args(args)
    return run_with_music(args, resolve_music(args))
