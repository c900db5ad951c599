"""``avajams serve``: the upload-and-mashup web app on uvicorn (needs the ``web`` extra)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from avajams.cli._shared import add_library_option, load_config
from avajams.errors import ConfigError

#: Environment variable read for the access token when neither --token nor --token-file is given.
TOKEN_ENV = "AVAJAMS_SERVE_TOKEN"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``serve`` command."""
    parser = subparsers.add_parser(
        "serve",
        parents=[common],
        help="run the web app: upload a video, get a mashup (pip install 'avajams[web]')",
        description="Serve the upload-and-mashup web app and its JSON API. It binds to "
        "127.0.0.1 unless --host says otherwise; give an access token before exposing it.",
    )
    add_library_option(parser)
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="uploads, job state and results (default: 'web' in the user data directory)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="jobs rendered at the same time, each in its own process (default 1)",
    )
    parser.add_argument(
        "--queue", type=int, default=20, metavar="N", help="jobs that may wait (default 20)"
    )
    parser.add_argument(
        "--jobs-per-client",
        type=int,
        default=3,
        metavar="N",
        help="jobs one client address may have waiting or running (default 3)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=1024.0,
        metavar="MB",
        help="largest upload in MiB, enforced while it streams in (default 1024)",
    )
    parser.add_argument(
        "--max-video-seconds",
        type=float,
        default=600.0,
        metavar="S",
        help="longest uploaded video (default 600)",
    )
    parser.add_argument(
        "--keep-hours",
        type=float,
        default=24.0,
        metavar="H",
        help="delete results this many hours after they finish (default 24)",
    )
    parser.add_argument(
        "--max-work-dir-gb",
        type=float,
        default=20.0,
        metavar="GB",
        help="size cap of the work directory in GiB; oldest results go first (default 20)",
    )
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        help=f"access token every page and API call must carry (visible in ps; prefer "
        f"--token-file or ${TOKEN_ENV})",
    )
    token.add_argument("--token-file", metavar="FILE", help="read the access token from FILE")
    parser.set_defaults(func=run)


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {args.token_file}: {exc}") from exc
        if not text:
            raise ConfigError(f"the token file {args.token_file} is empty")
        return text
    if args.token:
        return str(args.token)
    return os.environ.get(TOKEN_ENV) or None


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`avajams.web.ServeSettings` the command line describes."""
    from avajams.web.settings import ServeSettings, default_work_dir

    return ServeSettings.build(
        config=load_config(args),
        work_dir=Path(args.work_dir).expanduser() if args.work_dir else default_work_dir(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_queue=args.queue,
        max_jobs_per_client=args.jobs_per_client,
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        max_video_seconds=args.max_video_seconds,
        keep_hours=args.keep_hours,
        max_work_dir_bytes=int(args.max_work_dir_gb * (1 << 30)),
        token=_token(args),
    )


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from avajams.web.app import create_app, open_library
    except ImportError as exc:
        raise ConfigError(
            f"the web app needs the 'web' extra ({exc.name} is missing): pip install 'avajams[web]'"
        ) from exc
    settings = settings_from_args(args)
    # Fail here, with one line, rather than inside the server's start-up.
    open_library(settings).close()
    if settings.exposed and settings.token is None:
        print(
            f"avajams: warning: serving on {settings.host} without an access token: anyone who "
            f"can reach this address can upload videos; pass --token-file FILE (or set "
            f"{TOKEN_ENV})",
            file=sys.stderr,
        )
    app = create_app(settings)
    print(
        f"avajams: serving the library {settings.library_directory} on "
        f"http://{_url_host(settings.host)}:{settings.port}/ (work dir {settings.work_dir}); "
        "Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning" if args.quiet else "info",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
