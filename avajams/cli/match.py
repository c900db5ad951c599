"""``avajams match VIDEO``: the library's music videos most similar to a video.

``--json`` prints one object::

    {
      "query": "/abs/path/clip.mp4",
      "library": "/abs/path/library",
      "matches": [                        # best first
        {
          "rank": 1,
          "key": "...", "path": "/abs/path/mv.mp4" | null,
          "score": 0.93,                  # frame-level score the ranking uses
          "signature_score": 0.91,        # cosine of the video signatures
          "metadata": {...},
          "aligned": [                    # one per query frame, in query time order
            {"query_time": 0.0, "music_time": 2.0, "similarity": 0.95}, ...
          ],
          "labels": [{"name": "stage", "probability": 0.31}, ...],   # stored; [] if none
          "shared_labels": ["stage", ...],  # names in both top lists, in the query's order
          "span": {                       # the stretch that aligned, or null
            "query_start": 0.0, "query_end": 4.0, "music_start": 2.0, "music_end": 6.0,
            "similarity": 0.9, "frames": 5, "speed": 1.0
          } | null,
          "box": [x0, y0, x1, y1] | null  # the part of the query frame (fractions), or null
        }, ...
      ],
      "query_labels": {"labeller": "...", "video": [{"name", "probability"}...]} | null,
      "report": "/abs/path/match.png" | null
    }
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avajams.cli._shared import (
    UsageError,
    add_library_option,
    int_in_range,
    load_pipeline,
    show_progress,
)

if TYPE_CHECKING:
    from avajams.index import Match
    from avajams.labels import Label

#: version of the ``--json`` document's layout
JSON_SCHEMA_VERSION = 1


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parser = subparsers.add_parser(
        "match",
        parents=[common],
        help="find the library's music videos most similar to a video",
        description="Find the library's music videos most similar to VIDEO, best first.",
    )
    parser.add_argument("video", metavar="VIDEO", help="the video to match")
    parser.add_argument("-k", type=int_in_range(1), default=5, help="how many matches (default 5)")
    parser.add_argument("--json", action="store_true", help="print the matches as JSON")
    parser.add_argument(
        "--report", metavar="PNG", help="also draw a contact sheet of the aligned frames"
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only videos whose metadata KEY equals VALUE (repeatable); label=NAME: only "
        "videos with the ImageNet label NAME",
    )
    add_library_option(parser)
    parser.set_defaults(func=run)


def _where(items: list[str]) -> dict[str, Any] | None:
    where, _ = _split_where(items)
    return where


def _split_where(items: list[str]) -> tuple[dict[str, Any] | None, list[str]]:
    """``--where`` items as a metadata filter and the ``label=NAME`` label names."""
    where: dict[str, Any] = {}
    labels: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--where {item!r} must look like KEY=VALUE")
        if key == "label":
            if not value:
                raise UsageError("--where label=NAME needs a label name")
            labels.append(value)
            continue
        try:
            where[key] = json.loads(value)
        except ValueError:
            where[key] = value
    return where or None, labels


def _labels_json(labels: Sequence[Label]) -> list[dict[str, Any]]:
    return [{"name": x.name, "probability": round(float(x.probability), 6)} for x in labels]


def match_to_json(match: Match, rank: int, shared: Sequence[str] | None = None) -> dict[str, Any]:
    """One match as the ``--json`` document lays it out."""
    return {
        "rank": rank,
        "key": match.key,
        "path": match.path,
        "score": float(match.score),
        "signature_score": float(match.signature_score),
        "metadata": match.metadata,
        "aligned": [
            {
                "query_time": float(p.query_time),
                "music_time": float(p.music_time),
                "similarity": float(p.similarity),
            }
            for p in match.aligned
        ],
        "labels": _labels_json(match.labels),
        "shared_labels": list(shared or ()),
        "span": None
        if match.span is None
        else {
            "query_start": float(match.span.query_start),
            "query_end": float(match.span.query_end),
            "music_start": float(match.span.music_start),
            "music_end": float(match.span.music_end),
            "similarity": float(match.span.similarity),
            "frames": int(match.span.frames),
            "speed": float(match.span.speed),
        },
        "box": None if match.box is None else [float(v) for v in match.box],
    }


def run(args: argparse.Namespace) -> int:
    where, label = _split_where(args.where)
    with load_pipeline(args) as pipe:
        result = pipe.match_with_labels(
            args.video,
            k=args.k,
            where=where,
            label=label or None,
            show_progress=show_progress(args),
        )
        matches = result.matches
        report = (
            pipe.report(args.video, args.report, matches=matches, query_labels=result.query)
            if args.report
            else None
        )
        directory = pipe.library_directory
    if args.json:
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "query": str(Path(args.video).resolve()),
            "library": str(directory.resolve()),
            "matches": [
                match_to_json(m, rank, result.shared(m)) for rank, m in enumerate(matches, 1)
            ],
            "query_labels": None if result.query is None else result.query.to_json(),
            "report": str(report.resolve()) if report is not None else None,
        }
        print(json.dumps(document, indent=2, allow_nan=False))
        return 0
    from avajams.cli._shared import format_label_lines, format_matches

    if not matches:
        print(f"no matches: the library at {directory} is empty or nothing passed --where")
    else:
        print(format_matches(matches))
    if result.query is not None:
        print(f"query shows: {format_label_lines(result.query.video, 5)}")
        for rank, m in enumerate(matches, 1):
            shared = result.shared(m)
            own = format_label_lines(m.labels, 4) if m.labels else "(no labels)"
            both = f"  both show: {', '.join(shared)}" if shared else ""
            print(f"{rank:>2}  shows: {own}{both}")
    if report is not None:
        print(f"report: {report}")
    return 0
