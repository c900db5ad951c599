"""The match report: a contact sheet of the query's frames beside the best-aligned frames.

One row per match (best first). Each row starts with the match's rank, key and scores, then
shows up to ``pairs`` aligned pairs: the query frame and, next to it, the music-video frame it
matched, each captioned with its time (and the pair's similarity). People would rather look
than read; this is the picture behind ``avajams match --report``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image, ImageDraw, ImageFont

from avajams.errors import OutputPathError, VideoDecodeError, VideoError
from avajams.labels import shared_labels

if TYPE_CHECKING:
    from avajams.index import AlignedPair, Box, Match
    from avajams.labels import VideoLabels

__all__ = ["Report", "Tile", "grab_frames", "write_report"]

_BACKGROUND = (24, 24, 28)
_TEXT = (245, 245, 245)
_SECONDARY = (205, 205, 215)  # still high contrast on the background
_MISSING = (70, 40, 40)
_BOX = (255, 210, 0)  # the region of the query frame a match was found in
_RIGHT = (80, 220, 110)  # the right answer's frame and badge
_WRONG = (240, 110, 100)
_MARGIN = 12
_HEADER = 98
_LABELS_LINE = 18  # the header's "you show: ..." line, when the query has labels
_SPAN_LINE = 18  # each row's room for "you a-b s = match c-d s" below labels
_LABEL_WIDTH = 240
_CAPTION = 24
_PAIR_GAP = 14
_INNER_GAP = 3
_ROW_GAP = 14
#: the right answer's frame, drawn this far outside its row's tiles
_MARK = 5

_LEGEND = (
    "score: how clearly the match is in your video (0 = unrelated, near 1 = a long stretch "
    "of the same pictures); rows best first",
    "each pair: one of your frames beside the match's frame aligned with it; "
    "sim: how alike the two are",
    "you a-b s = match c-d s: the stretch of your video that aligned, and where it is in the "
    "match; yellow box: the part of your frame it was found in",
)


@dataclass(frozen=True)
class Tile:
    """Where one frame was drawn: its row (match rank - 1), role, time and pixel box."""

    row: int
    role: Literal["query", "music"]
    time: float
    box: tuple[int, int, int, int]  # (left, top, right, bottom), right/bottom exclusive
    found: bool  # False when the frame could not be read (drawn as a placeholder)


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` drew; ``right_row`` is the row marked as the right answer."""

    path: Path
    size: tuple[int, int]
    tiles: tuple[Tile, ...]
    right_row: int | None = None


def similarity_colour(value: float) -> tuple[int, int, int]:
    """Green for a close likeness (>= 0.8), amber for a partial one (>= 0.5), else red."""
    if value >= 0.8:
        return _RIGHT
    if value >= 0.5:
        return (240, 190, 80)
    return _WRONG


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def grab_frames(path: str | os.PathLike[str], times: Iterable[float]) -> dict[float, Image.Image]:
    """The frames shown at ``times`` (seconds), decoded in one forward pass.

    The frame for ``t`` is the last one whose timestamp is at or before ``t`` (the frame on
    screen at ``t``); times past the end get the last frame.
    """
    from avajams.media import decode, open_video, pyav_errors

    wanted = sorted(set(times))
    found: dict[float, Image.Image] = {}
    if not wanted:
        return found
    source = os.fspath(path)
    try:
        with open_video(source) as (container, stream):
            stream.thread_type = "AUTO"
            tb = stream.time_base or 0
            start = float(stream.start_time * tb) if stream.start_time else 0.0
            previous: Image.Image | None = None
            index = 0
            frames: Iterator[Any] = decode(container, stream)  # PyAV's to_image is untyped
            for frame in frames:
                t = (frame.time if frame.time is not None else 0.0) - start
                while index < len(wanted) and wanted[index] < t - 1e-6:
                    found[wanted[index]] = previous if previous is not None else frame.to_image()
                    index += 1
                if index == len(wanted):
                    break
                previous = frame.to_image()
            while index < len(wanted) and previous is not None:
                found[wanted[index]] = previous
                index += 1
    except pyav_errors() as exc:
        raise VideoDecodeError(
            f"cannot read frames of {source} for the report: {exc}", path=source
        ) from exc
    return found


def _placement(image: Image.Image, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where :func:`_fit` puts ``image`` inside a tile of ``size``: (left, top, width, height)."""
    scale = min(size[0] / image.width, size[1] / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    return (size[0] - w) // 2, (size[1] - h) // 2, w, h


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` letterboxed into ``size``, aspect ratio kept."""
    canvas = Image.new("RGB", size, (0, 0, 0))
    x, y, w, h = _placement(image, size)
    canvas.paste(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), (x, y))
    return canvas


def _box_on_tile(
    image: Image.Image, size: tuple[int, int], origin: tuple[int, int], box: Box
) -> tuple[int, int, int, int]:
    """The pixel rectangle (inclusive) of ``box`` (fractions of ``image``) on its tile."""
    x, y, w, h = _placement(image, size)
    left, top = origin[0] + x, origin[1] + y
    return (
        left + round(box[0] * w),
        top + round(box[1] * h),
        left + max(round(box[0] * w) + 1, round(box[2] * w) - 1),
        top + max(round(box[1] * h) + 1, round(box[3] * h) - 1),
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_to_width(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: float,
) -> str:
    """``text`` shortened with an ellipsis until it is at most ``width`` pixels wide."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _tick(draw: ImageDraw.ImageDraw, at: tuple[int, int], *, right: bool) -> None:
    """A 14-pixel check mark (green) or cross (red) at ``at`` (drawn: fonts may lack them)."""
    x, y = at
    if right:
        draw.line([(x, y + 7), (x + 5, y + 12), (x + 14, y + 1)], fill=_RIGHT, width=3)
    else:
        draw.line([(x + 1, y + 1), (x + 12, y + 12)], fill=_WRONG, width=3)
        draw.line([(x + 1, y + 12), (x + 12, y + 1)], fill=_WRONG, width=3)


def _top_pairs(match: Match, pairs: int) -> list[AlignedPair]:
    """The best pairs to show: the most similar ones, from the aligned span when there is one."""
    pool = list(match.aligned)
    span = match.span
    if span is not None:
        inside = [
            p for p in pool if span.query_start - 1e-6 <= p.query_time <= span.query_end + 1e-6
        ]
        pool = inside or pool
    best = sorted(pool, key=lambda p: -p.similarity)[:pairs]
    return sorted(best, key=lambda p: p.query_time)


def report_size(
    rows: int,
    pairs: int,
    tile_size: tuple[int, int] = (160, 120),
    *,
    query_labels: bool = False,
) -> tuple[int, int]:
    """The picture's (width, height) for ``rows`` matches and ``pairs`` pairs per row
    (``query_labels``: with the header line of the query's labels)."""
    tw, th = tile_size
    width = 2 * _MARGIN + _LABEL_WIDTH + pairs * (2 * tw + _INNER_GAP) + (pairs - 1) * _PAIR_GAP
    header = _HEADER + (_LABELS_LINE if query_labels else 0)
    height = header + rows * (th + _CAPTION + _SPAN_LINE + _ROW_GAP) + _MARGIN
    return width, height


def write_report(
    query: str | os.PathLike[str],
    matches: Sequence[Match],
    out: str | os.PathLike[str],
    *,
    pairs: int = 4,
    tile_size: tuple[int, int] = (160, 120),
    expected: str | os.PathLike[str] | None = None,
    query_name: str | None = None,
    query_labels: VideoLabels | None = None,
) -> Report:
    """Draw the contact sheet for ``matches`` of ``query`` into the PNG file ``out``.

    Rows are the matches in the given order; each shows up to ``pairs`` of its best-aligned
    frame pairs (highest similarity, in query-time order). A music video whose file is
    missing gets grey placeholder tiles rather than failing the report. ``expected``, the
    music video known to be the right answer (as in the demo), gets its row framed in green
    (and a best match that is not it says so). ``query_name`` is the name the title gives the
    query (default: its file name). Each match's ImageNet labels (``Match.labels``) are
    written under its scores; with ``query_labels`` the header says what the query shows and
    each row the labels both videos show.
    """
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    out_path = Path(out)
    if not out_path.parent.is_dir():
        raise OutputPathError(
            f"cannot write the report {out_path}: the folder {out_path.parent} does not exist",
            path=out_path,
        )
    chosen = [_top_pairs(m, pairs) for m in matches]
    query_frames = grab_frames(query, (p.query_time for row in chosen for p in row))
    music_frames: list[dict[float, Image.Image]] = []
    for match, row in zip(matches, chosen, strict=True):
        try:
            frames = grab_frames(match.path, (p.music_time for p in row)) if match.path else {}
        except VideoError:  # a music file gone or unreadable: its tiles stay empty
            frames = {}
        music_frames.append(frames)

    width, height = report_size(
        max(1, len(matches)), pairs, tile_size, query_labels=query_labels is not None
    )
    header = _HEADER + (_LABELS_LINE if query_labels is not None else 0)
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font, name_font, score_font, font = _font(19), _font(15), _font(20), _font(14)
    count = f"{len(matches)} match" + ("" if len(matches) == 1 else "es")
    title = f"query: {query_name or Path(query).name}   ({count})"
    draw.text((_MARGIN, 8), title, fill=_TEXT, font=title_font)
    for i, line in enumerate(_LEGEND):
        draw.text((_MARGIN, 34 + 18 * i), line, fill=_SECONDARY, font=font)
    if query_labels is not None:
        shown = ", ".join(query_labels.names()[:6]) or "(nothing recognised)"
        you = f"you show: {shown}   (ImageNet labels of your frames)"
        draw.text((_MARGIN, 34 + 18 * len(_LEGEND)), you, fill=_TEXT, font=font)
    tw, th = tile_size
    right = Path(expected).resolve() if expected is not None else None
    right_row = next(
        (r for r, m in enumerate(matches) if right and m.path and Path(m.path).resolve() == right),
        None,
    )
    tiles: list[Tile] = []
    if not matches:
        draw.text((_MARGIN, header), "no matches: the library is empty", fill=_TEXT, font=font)
    for r, (match, row) in enumerate(zip(matches, chosen, strict=True)):
        top = header + r * (th + _CAPTION + _SPAN_LINE + _ROW_GAP)
        name = Path(match.path).name if match.path else match.key
        title = _clip_to_width(draw, f"#{r + 1}  {name}", name_font, _LABEL_WIDTH - _MARGIN)
        draw.text((_MARGIN, top), title, fill=_TEXT, font=name_font)
        draw.text((_MARGIN, top + 22), f"score {match.score:.3f}", fill=_TEXT, font=score_font)
        bar = round((_LABEL_WIDTH - 2 * _MARGIN) * min(max(match.score, 0.0), 1.0))
        draw.rectangle(
            (_MARGIN, top + 48, _MARGIN + _LABEL_WIDTH - 2 * _MARGIN, top + 53), fill=(60, 60, 68)
        )
        if bar:
            draw.rectangle(
                (_MARGIN, top + 48, _MARGIN + bar, top + 53), fill=similarity_colour(match.score)
            )
        draw.text(
            (_MARGIN, top + 60),
            f"signature {match.signature_score:.3f}",
            fill=_SECONDARY,
            font=font,
        )
        if r == right_row:
            _tick(draw, (_MARGIN, top + 84), right=True)
            draw.text((_MARGIN + 20, top + 82), "the right answer", fill=_RIGHT, font=name_font)
        elif r == 0 and right is not None:
            _tick(draw, (_MARGIN, top + 84), right=False)
            draw.text((_MARGIN + 20, top + 82), "not the right answer", fill=_WRONG, font=name_font)
        elif match.path and match.key != match.path:
            draw.text((_MARGIN, top + 82), _clip(match.key, 30), fill=_SECONDARY, font=font)
        bottom = top + th + _CAPTION + _SPAN_LINE  # the row's text ends above the next row
        column = _LABEL_WIDTH - _MARGIN
        text_y = top + 104
        if match.labels and text_y + 18 <= bottom:
            names = ", ".join(label.name for label in match.labels[:4])
            shows = _clip_to_width(draw, f"shows: {names}", font, column)
            draw.text((_MARGIN, text_y), shows, fill=_SECONDARY, font=font)
            text_y += 18
        shared = shared_labels(query_labels.video, match.labels) if query_labels else ()
        if shared and text_y + 18 <= bottom:
            both = _clip_to_width(draw, f"both show: {', '.join(shared)}", font, column)
            draw.text((_MARGIN, text_y), both, fill=_RIGHT, font=font)
            text_y += 18
        if match.span is not None and text_y + 18 <= bottom:  # where: in time, in the box
            s = match.span
            where = f"you {s.query_start:.1f}-{s.query_end:.1f}s = "
            where += f"match {s.music_start:.1f}-{s.music_end:.1f}s"
            where += " in the box" if match.box is not None else ""
            colour = _BOX if match.box is not None else _TEXT
            where = _clip_to_width(draw, where, font, column)
            draw.text((_MARGIN, text_y), where, fill=colour, font=font)
        if not row:
            draw.text(
                (_MARGIN + _LABEL_WIDTH, top + th // 2), "no aligned frames", fill=_TEXT, font=font
            )
        for c, pair in enumerate(row):
            left = _MARGIN + _LABEL_WIDTH + c * (2 * tw + _INNER_GAP + _PAIR_GAP)
            for role, image, t, x in (
                ("query", query_frames.get(pair.query_time), pair.query_time, left),
                (
                    "music",
                    music_frames[r].get(pair.music_time),
                    pair.music_time,
                    left + tw + _INNER_GAP,
                ),
            ):
                box = (x, top, x + tw, top + th)
                if image is not None:
                    sheet.paste(_fit(image, tile_size), box[:2])
                    if role == "query" and match.box is not None:
                        rect = _box_on_tile(image, tile_size, (x, top), match.box)
                        draw.rectangle(rect, outline=_BOX, width=2)
                else:
                    draw.rectangle((x, top, x + tw - 1, top + th - 1), fill=_MISSING)
                    draw.text(
                        (x + 6, top + th // 2 - 7), "frame unavailable", fill=_TEXT, font=font
                    )
                label = f"{'you' if role == 'query' else 'match'} {t:.1f}s"
                draw.text((x + 2, top + th + 3), label, fill=_TEXT, font=font)
                if role == "music":
                    sim = f"sim {pair.similarity:.2f}"
                    sim_width = draw.textlength(sim, font=font)
                    draw.text(
                        (x + tw - 2 - sim_width, top + th + 3),
                        sim,
                        fill=similarity_colour(pair.similarity),
                        font=font,
                    )
                tiles.append(Tile(r, role, t, box, image is not None))  # type: ignore[arg-type]
        if r == right_row:
            x0 = _MARGIN + _LABEL_WIDTH - _MARK
            x1 = _MARGIN + _LABEL_WIDTH + max(1, len(row)) * (2 * tw + _INNER_GAP + _PAIR_GAP)
            x1 = x1 - _PAIR_GAP + _MARK - 1
            draw.rectangle(
                (x0, top - _MARK, x1, top + th + _CAPTION + _MARK - 2), outline=_RIGHT, width=3
            )
    try:
        sheet.save(out_path, format="PNG")
    except OSError as exc:
        raise OutputPathError(f"cannot write the report {out_path}: {exc}", path=out_path) from exc
    return Report(out_path, (width, height), tuple(tiles), right_row)
