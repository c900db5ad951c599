"""The ``avajams`` command: a thin layer over the library.

Exit codes: 0 success, 1 runtime error (one line naming the file and the fix; ``--debug`` shows
the traceback), 2 usage error, 70 internal error (a bug: an exception avajams did not expect;
no input should ever cause one), 128 + N when ended by signal N (130 for Ctrl-C; SIGTERM and
SIGHUP are handled like Ctrl-C, so partial files are cleaned up).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, TextIO

from avajams.cli._shared import UsageError, error_message, interrupted_message
from avajams.errors import INTERNAL_ERROR, INTERNAL_ERROR_EXIT, AvajamsError

# Each module defines ``register(subparsers, common)``: it adds its sub-command(s) and sets
# ``func(args) -> int`` on them. Modules import heavy dependencies inside their handlers only.
_COMMAND_MODULES: list[str] = [
    "avajams.cli.index",
    "avajams.cli.match",
    "avajams.cli.labels",
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


#: A repeated SIGTERM/SIGHUP this long after the first is raised again (see below).
_RESIGNAL_SECONDS = 2.0


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so the same clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` while the command runs."""
    names = ("SIGTERM", "SIGHUP")
    wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
    previous: dict[int, Any] = {}

    raised = False
    raised_at = 0.0

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal raised, raised_at
        now = time.monotonic()
        if raised and now - raised_at < _RESIGNAL_SECONDS:
            return  # the clean-up the first one started is running: let it finish
        # Again after a while: a handler runs between any two bytecodes, also inside a
        # __del__ or a weakref callback, where Python prints the exception and drops it, so
        # the first Terminated may never have reached the command.
        raised, raised_at = True, now
        raise Terminated(signum)

    try:
        for signum in wanted:
            previous[signum] = signal.signal(signum, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        pass
    # A parent may have started this process with the signals blocked (the mask is
    # inherited across exec): they would stay pending, and the command would not stop.
    mask = getattr(signal, "pthread_sigmask", None)
    blocked = set(mask(signal.SIG_UNBLOCK, wanted)) if previous and mask else set()
    try:
        yield
    finally:
        if mask is not None and blocked & set(wanted):
            mask(signal.SIG_BLOCK, blocked & set(wanted))
        for signum, handler in previous.items():
            # once terminating, a repeated signal must not kill the exit (tearing down big
            # modules such as librosa's takes a moment) and change the exit status
            signal.signal(signum, signal.SIG_IGN if raised else handler)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print(f"avajams: warning: {_one_line(str(message))}", file=file or sys.stderr)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


def _tolerant_output() -> None:
    """File names with undecodable bytes print escaped instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = _one_line(record.getMessage())
        if record.exc_info and record.levelno <= logging.DEBUG:
            text += "\n" + self.formatException(record.exc_info)
        return f"avajams: {record.levelname.lower()}: {text}"


@contextlib.contextmanager
def _log_to_stderr(debug: bool) -> Iterator[None]:
    """avajams' log records as ``avajams: warning: ...`` lines while the command runs."""
    logger = logging.getLogger("avajams")
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine())
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    level = logger.level
    logger.addHandler(handler)
    if debug:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


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
    _tolerant_output()
    with _signals_as_interrupts(), _log_to_stderr(args.debug), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            code: int = args.func(args)
        except UsageError as exc:
            _subparser(parser, args.command).error(str(exc))  # usage + message, exit 2
        except AvajamsError as exc:
            if args.debug:
                traceback.print_exc()
            print(f"avajams: error: {_one_line(error_message(exc))}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            # SIGTERM/SIGHUP arrive as Terminated, possibly wrapped (IndexInterrupted)
            signum = next(
                (e.signum for e in (exc, exc.__cause__) if isinstance(e, Terminated)), None
            )
            by = f" by {signal.Signals(signum).name}" if signum is not None else ""
            print(f"avajams: {interrupted_message(exc)}{by}", file=sys.stderr)
            return 130 if signum is None else 128 + signum
        except Exception as exc:  # the last resort: a bug, never a bad input
            if args.debug:
                traceback.print_exc()
            print(
                f"avajams: {INTERNAL_ERROR}: {type(exc).__name__}: {_one_line(str(exc))} — "
                "this is a bug; re-run with --debug for the traceback and please report it",
                file=sys.stderr,
            )
            return INTERNAL_ERROR_EXIT
    return code
