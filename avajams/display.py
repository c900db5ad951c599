"""Rich display in notebooks (Jupyter, VS Code): match tables, libraries, rendered mashups.

Notebooks call ``_repr_html_`` on the value of a cell. :class:`Matches` (what
:meth:`avajams.Pipeline.match` returns: a ``list`` of :class:`~avajams.Match`, so the list
API is unchanged) shows the match table with the best-aligned frames side by side;
:class:`~avajams.VideoIndex` shows its size, embedder and first videos;
:class:`~avajams.RenderResult` shows the mashup as a playable ``<video>``. Every piece of text
is HTML-escaped; pictures are inline JPEG data URIs, so the HTML works anywhere it is shown.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, SupportsIndex, overload

if TYPE_CHECKING:
    from PIL import Image

    from avajams.index import Match, VideoIndex
    from avajams.mashup import RenderResult

__all__ = [
    "VIDEO_EMBED_LIMIT",
    "Matches",
    "library_html",
    "matches_html",
    "render_result_html",
]

#: mashups up to this many bytes are embedded in the HTML (a data URI plays in Jupyter, VS Code
#: and a saved notebook alike); larger ones are referenced by a path relative to the notebook
VIDEO_EMBED_LIMIT = 20 * 1024 * 1024

_STYLE = "border-collapse:collapse;font-family:sans-serif;font-size:13px"
_CELL = "padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle"


class Matches(list["Match"]):
    """The matches of one query video, best first: a ``list`` that shows itself as a table.

    ``query`` is the video that was matched (its frames appear beside each match's frames in
    the notebook display); it is None when unknown.
    """

    def __init__(self, matches: Iterable[Match] = (), query: str | os.PathLike[str] | None = None):
        super().__init__(matches)
        self.query = os.fspath(query) if query is not None else None

    @overload
    def __getitem__(self, index: SupportsIndex) -> Match: ...
    @overload
    def __getitem__(self, index: slice) -> Matches: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Match | Matches:
        if isinstance(index, slice):  # a slice keeps the query, so it displays the same way
            return Matches(super().__getitem__(index), self.query)
        return super().__getitem__(index)

    def _repr_html_(self) -> str:
        return matches_html(self, self.query)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _jpeg_uri(image: Image.Image, width: int = 160) -> str:
    scale = width / image.width
    small = image.convert("RGB").resize((width, max(1, round(image.height * scale))))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _frames(path: str | None, times: Iterable[float]) -> dict[float, Image.Image]:
    """The frames of ``path`` at ``times``; none when the file is gone or unreadable (a display
    never fails on a missing file)."""
    from avajams.errors import AvajamsError
    from avajams.report import grab_frames

    if path is None:
        return {}
    try:
        return grab_frames(path, times)
    except (AvajamsError, OSError):
        return {}


def _thumbnail(image: Image.Image | None, caption: str) -> str:
    if image is None:
        picture = '<div style="width:120px;height:68px;background:#eee;color:#888">no frame</div>'
    else:
        picture = f'<img src="{_jpeg_uri(image)}" style="width:120px" alt="{_e(caption)}">'
    return (
        f'<figure style="display:inline-block;margin:0 4px 0 0">{picture}'
        f'<figcaption style="font-size:11px">{_e(caption)}</figcaption></figure>'
    )


def matches_html(
    matches: Sequence[Match], query: str | os.PathLike[str] | None = None, *, pairs: int = 2
) -> str:
    """An HTML table of ``matches``: rank, scores, file and up to ``pairs`` best-aligned frame
    pairs (the query's frame beside the match's, with their times and similarity)."""
    query_path = os.fspath(query) if query is not None else None
    chosen = [sorted(m.aligned, key=lambda p: -p.similarity)[:pairs] for m in matches]
    query_frames = _frames(query_path, (p.query_time for row in chosen for p in row))
    head = "".join(
        f'<th style="{_CELL}">{name}</th>'
        for name in ("#", "score", "signature", "video", "best-aligned frames (you | match)")
    )
    rows = []
    for rank, (match, best) in enumerate(zip(matches, chosen, strict=True), 1):
        music_frames = _frames(match.path, (p.music_time for p in best))
        pictures = " ".join(
            _thumbnail(query_frames.get(p.query_time), f"you {p.query_time:.1f}s")
            + _thumbnail(
                music_frames.get(p.music_time), f"match {p.music_time:.1f}s sim {p.similarity:.2f}"
            )
            for p in sorted(best, key=lambda p: p.query_time)
        )
        name = Path(match.path).name if match.path else match.key
        rows.append(
            f'<tr><td style="{_CELL}">{rank}</td>'
            f'<td style="{_CELL}"><b>{match.score:.3f}</b></td>'
            f'<td style="{_CELL}">{match.signature_score:.3f}</td>'
            f'<td style="{_CELL}" title="{_e(match.path or match.key)}">{_e(name)}</td>'
            f'<td style="{_CELL}">{pictures or "-"}</td></tr>'
        )
    title = f"matches for {Path(query_path).name}" if query_path else "matches"
    if not matches:
        rows.append(f'<tr><td colspan="5" style="{_CELL}">no matches</td></tr>')
    return (
        f'<table style="{_STYLE}"><caption style="text-align:left"><b>{_e(title)}</b>, best '
        "first; score: how alike the frames are (0-1)</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def library_html(library: VideoIndex, *, limit: int = 20) -> str:
    """An HTML summary of ``library``: where it is, its size and embedder, its first videos."""
    if library.closed:
        return f"<p>VideoIndex at {_e(library.directory)} (closed)</p>"
    facts = [
        ("directory", library.directory),
        ("videos", len(library)),
        ("embedder", f"{library.embedder_id} ({library.dim}-d)"),
        ("search", library.backend),
    ]
    rows = "".join(
        f'<tr><th style="{_CELL}">{_e(k)}</th><td style="{_CELL}">{_e(v)}</td></tr>'
        for k, v in facts
    )
    entries = []
    for number, entry in enumerate(library.entries()):
        if number == limit:
            entries.append(f"<li>... and {len(library) - limit} more</li>")
            break
        name = Path(entry.path).name if entry.path else entry.key
        length = f" ({entry.duration:.1f} s)" if entry.duration is not None else ""
        entries.append(f'<li title="{_e(entry.path or entry.key)}">{_e(name)}{_e(length)}</li>')
    videos = f"<ul style='margin:4px 0'>{''.join(entries)}</ul>" if entries else ""
    return f'<div><table style="{_STYLE}">{rows}</table>{videos}</div>'


def render_result_html(result: RenderResult, *, embed_limit: int = VIDEO_EMBED_LIMIT) -> str:
    """A playable ``<video>`` of a rendered mashup and what it is.

    Up to ``embed_limit`` bytes the MP4 is embedded as a data URI (plays in Jupyter, VS Code
    and saved notebooks); beyond, the video refers to the file by its path relative to the
    current directory (the notebook's, where Jupyter serves files from).
    """
    path = Path(result.path)
    try:
        size = path.stat().st_size
    except OSError:
        return f"<p>mashup {_e(path)}: the file is gone</p>"
    if size <= embed_limit:
        source = "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    else:
        try:
            source = path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            source = path.resolve().as_uri()
    width, height = result.size
    caption = (
        f"{path.name}: {result.duration:.2f} s, {width}x{height} at {result.fps:g} fps, "
        f"{len(result.plan.cuts)} cuts"
    )
    return (
        f'<figure style="margin:0"><video controls preload="metadata" width="{int(width)}" '
        'style="max-width:100%" '
        f'src="{_e(source)}"></video><figcaption title="{_e(path)}">{_e(caption)}'
        "</figcaption></figure>"
    )
