"""The ``avajams`` command: a thin layer over the library.

Exit codes: 0 success, 1 runtime error (one line naming the file and the fix; ``--debug`` shows
the traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from avajams.cli._shared import UsageError, error_message, interrupted_message
from avajams.errors import AvajamsError

# Each module defines ``register(subparsers, common)``: it adds its sub-command(s) and sets
# ``func(args) -> int`` on them. Modules import heavy dependencies inside their handlers only.
_COMMAND_MODULES: list[str] = [
    "avajams.cli.index",
    "avajams.cli.match",
    "avajams.cli.mashup",
    "avajams.cli.model",
    "avajams.cli.demo",
    "avajams.cli.info",
    "avajams.cli.serve",
]


def _common_options(*, top_level: bool) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="pipeline configuration (TOML or JSON)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    if not top_level:
        for action in common._actions:
            action.default = argparse.SUPPRESS
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for the CLI reference docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="avajams",
        description="Match a video to the most similar music video and cut a mashup.",
        parents=[_common_options(top_level=True)],
    )
    # Sub-commands accept the same options; their defaults are suppressed so that an option
    # given before the command (``avajams --config F index ...``) is not reset by the
    # sub-parser's default.
    common = _common_options(top_level=False)
    from avajams import __version__

    parser.add_argument("--version", action="version", version=f"avajams {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, common)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            sub: argparse.ArgumentParser = action.choices[command]
            return sub
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        _subparser(parser, args.command).error(str(exc))  # usage + message, exit 2
    except AvajamsError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"avajams: error: {error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"avajams: {interrupted_message(exc)}", file=sys.stderr)
        return 130
    return code
