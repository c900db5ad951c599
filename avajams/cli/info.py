"""``avajams info``: what the library holds, which embedder built it, where things live."""

from __future__ import annotations

import argparse
import json
from typing import Any

from avajams.cli._shared import add_library_option, load_config


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parser = subparsers.add_parser(
        "info",
        parents=[common],
        help="show the library's size, its embedder and where files live",
        description="Show the library's size, the embedder it was built with, and the paths "
        "avajams uses. Never builds the model.",
    )
    add_library_option(parser)
    parser.add_argument("--json", action="store_true", help="print the information as JSON")
    parser.set_defaults(func=run)


def gather(args: argparse.Namespace) -> dict[str, Any]:
    """The facts ``avajams info`` prints, as JSON-able data."""
    import avajams
    from avajams.embedding import cache_root
    from avajams.errors import LibraryNotFoundError
    from avajams.index import VideoIndex

    config = load_config(args)
    directory = config.library.resolved_directory()
    info: dict[str, Any] = {
        "version": avajams.__version__,
        "config": args.config,
        "library": {"directory": str(directory), "exists": False},
        "embedder": config.embedder.model_dump(mode="json"),
        "model_cache": str(cache_root()),
    }
    try:
        with VideoIndex.open(directory, readonly=True) as library:
            info["library"].update(
                {
                    "exists": True,
                    "videos": len(library),
                    "embedder_id": library.embedder_id,
                    "dim": library.dim,
                    "backend": library.backend,
                    "sampler": library.sampler_settings,
                }
            )
    except LibraryNotFoundError:
        pass
    return info


def run(args: argparse.Namespace) -> int:
    info = gather(args)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    lib = info["library"]
    print(f"avajams {info['version']}")
    print(f"config:        {info['config'] or '(defaults)'}")
    print(f"library:       {lib['directory']}")
    if lib["exists"]:
        print(f"  videos:      {lib['videos']}")
        print(f"  embedder:    {lib['embedder_id']} ({lib['dim']}-d)")
        print(f"  backend:     {lib['backend']}")
        print(f"  sampler:     {json.dumps(lib['sampler'])}")
    else:
        print("  (no library yet: avajams index DIR creates it)")
    print(f"embedder:      {info['embedder'].get('kind')}")
    print(f"model cache:   {info['model_cache']}")
    return 0
