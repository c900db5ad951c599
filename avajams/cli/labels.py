"""``avajams labels``: what is in a video, which library videos show something, and labels for
a library indexed before labels existed.

- ``avajams labels VIDEO [--frames]``: the video's ImageNet labels (the library's stored ones
  when the file is indexed, else computed now); ``--frames`` adds each sampled second's.
- ``avajams labels --find LABEL``: the library's videos with that label, most probable first.
- ``avajams labels --update``: label every library video that has no labels, by decoding it
  again (embeddings are kept, not recomputed).

``--json`` prints one object: ``{"schema": 1, "video": PATH, "labeller": ID, "video_labels":
[{"name", "probability"}...], "frames": [{"time", "labels": [...]}...]}`` for a video (frames
only with ``--frames``); ``{"schema": 1, "label": NAME, "videos": [{"key", "path",
"probability"}...]}`` for ``--find``; ``{"schema": 1, "labelled": [...], "missing": [...],
"failed": {...}}`` for ``--update``. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from avajams.cli._shared import add_library_option, load_pipeline, show_progress
from avajams.errors import ConfigError

if TYPE_CHECKING:
    from avajams.labels import Label
    from avajams.pipeline import Pipeline

#: version of the ``--json`` documents' layout
JSON_SCHEMA_VERSION = 1


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parser = subparsers.add_parser(
        "labels",
        parents=[common],
        help="ImageNet labels of a video; find library videos by label; label a library",
        description=(
            "What is in a video: the ImageNet labels EfficientNet-Lite0 gives its sampled "
            "frames. With VIDEO: its labels (stored ones when it is in the library). With "
            "--find LABEL: the library videos with that label. With --update: label the "
            "library's videos that have none (re-decodes them; does not re-embed)."
        ),
    )
    parser.add_argument("video", nargs="?", metavar="VIDEO", help="the video to label")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--find", metavar="LABEL", help="list the library videos with LABEL")
    mode.add_argument(
        "--update",
        action="store_true",
        help="label the library's videos that have no labels yet (indexed before labels)",
    )
    parser.add_argument(
        "--frames", action="store_true", help="also list each sampled frame's labels"
    )
    parser.add_argument(
        "--min",
        type=float,
        default=0.0,
        metavar="P",
        help="with --find: only videos whose mean probability of LABEL is at least P",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_library_option(parser)
    parser.set_defaults(func=run)


def _format(labels: tuple[Label, ...]) -> str:
    return ", ".join(f"{x.name} {x.probability:.2f}" for x in labels)


def run(args: argparse.Namespace) -> int:
    given = [bool(args.video), bool(args.find), bool(args.update)]
    if sum(given) != 1:
        raise ConfigError(
            "give exactly one of: a VIDEO to label, --find LABEL, or --update "
            "(see avajams labels --help)"
        )
    if args.frames and not args.video:
        raise ConfigError("--frames applies to a VIDEO only")
    with load_pipeline(args) as pipe:
        if args.update:
            return _update(args, pipe)
        if args.find:
            return _find(args, pipe)
        labels = pipe.labels(args.video, show_progress=show_progress(args))
    if args.json:
        data = labels.to_json(frames=args.frames)
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "video": str(Path(args.video).resolve()),
            "labeller": data["labeller"],
            "video_labels": data["video"],
        }
        if args.frames:
            document["frames"] = data["frames"]
        print(json.dumps(document, indent=2))
        return 0
    print(f"{Path(args.video).name}: {_format(labels.video)}")
    if args.frames:
        for t, frame in zip(labels.times.tolist(), labels.frames, strict=True):
            print(f"  {t:7.2f}s  {_format(frame)}")
    return 0


def _find(args: argparse.Namespace, pipe: Pipeline) -> int:
    from avajams.index import VideoIndex

    found = pipe.find_label(args.find, min_probability=args.min)
    with VideoIndex.open(pipe.library_directory, readonly=True) as library:
        paths = {key: library.get(key, vectors=False).path for key, _ in found}
        known = library.label_names()
    if args.json:
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "label": args.find,
            "videos": [
                {"key": key, "path": paths[key], "probability": round(p, 6)} for key, p in found
            ],
        }
        print(json.dumps(document, indent=2))
        return 0
    if not found:
        hint = (
            f"; labels in this library include: {', '.join(known[:12])}"
            if known
            else "; this library has no labels yet (avajams labels --update adds them)"
        )
        print(f"no video in the library is labelled {args.find!r}{hint}")
        return 0
    for key, p in found:
        path = paths[key]
        print(f"{p:6.3f}  {Path(path).name if path else key}")
    return 0


def _update(args: argparse.Namespace, pipe: Pipeline) -> int:
    summary = pipe.update_labels(show_progress=show_progress(args))
    if args.json:
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "labelled": list(summary.labelled),
            "missing": list(summary.missing),
            "failed": summary.failed,
        }
        print(json.dumps(document, indent=2))
        return 0 if summary.ok else 1
    for key, reason in summary.failed.items():
        print(f"avajams: not labelled {key}: {reason}", file=sys.stderr)
    for key in summary.missing:
        print(f"avajams: not labelled {key}: its file is gone", file=sys.stderr)
    total = summary.timings.get("total", 0.0)
    print(
        f"{len(summary.labelled)} labelled, {len(summary.missing)} missing, "
        f"{len(summary.failed)} failed ({summary.frames} frames in {total:.1f} s) -> "
        f"{pipe.library_directory}"
    )
    return 0 if summary.ok else 1
