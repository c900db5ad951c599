"""The match report: a contact sheet of the query's frames beside the best-aligned frames.

One row per match (best first). Each row starts with the match's rank, key and scores, then
shows up to ``pairs`` aligned pairs: the query frame and, next to it, the music-video frame it
matched, each captioned with its time (and the pair's similarity). People would rather look
than read; this is the picture behind ``avajams match --report``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PIL import Image, ImageDraw, ImageFont

from avajams.errors import OutputPathError, VideoDecodeError, VideoNotFoundError

if TYPE_CHECKING:
    from avajams.index import AlignedPair, Box, Match

__all__ = ["Report", "Tile", "grab_frames", "write_report"]

_BACKGROUND = (24, 24, 28)
_TEXT = (235, 235, 235)
_MUTED = (150, 150, 160)
_MISSING = (70, 40, 40)
_BOX = (255, 210, 0)
_MARGIN = 12
_HEADER = 34
_LABEL_WIDTH = 230
_CAPTION = 18
_PAIR_GAP = 14
_INNER_GAP = 3
_ROW_GAP = 12


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
    """What :func:`write_report` drew."""

    path: Path
    size: tuple[int, int]
    tiles: tuple[Tile, ...]


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
    import av

    wanted = sorted(set(times))
    found: dict[float, Image.Image] = {}
    if not wanted:
        return found
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise VideoNotFoundError(f"{source} does not exist; check the path", path=source)
    try:
        with av.open(source) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
            previous: Image.Image | None = None
            index = 0
            for frame in container.decode(stream):
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
    except (av.FFmpegError, IndexError) as exc:
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


def report_size(rows: int, pairs: int, tile_size: tuple[int, int] = (160, 120)) -> tuple[int, int]:
    """The picture's (width, height) for ``rows`` matches and ``pairs`` pairs per row."""
    tw, th = tile_size
    width = 2 * _MARGIN + _LABEL_WIDTH + pairs * (2 * tw + _INNER_GAP) + (pairs - 1) * _PAIR_GAP
    height = _HEADER + rows * (th + _CAPTION + _ROW_GAP) + _MARGIN
    return width, height


def write_report(
    query: str | os.PathLike[str],
    matches: Sequence[Match],
    out: str | os.PathLike[str],
    *,
    pairs: int = 4,
    tile_size: tuple[int, int] = (160, 120),
) -> Report:
    """Draw the contact sheet for ``matches`` of ``query`` into the PNG file ``out``.

    Rows are the matches in the given order; each shows up to ``pairs`` of its best-aligned
    frame pairs (highest similarity, in query-time order). A music video whose file is
    missing gets grey placeholder tiles rather than failing the report.
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
        except (VideoNotFoundError, VideoDecodeError):
            frames = {}
        music_frames.append(frames)

    width, height = report_size(max(1, len(matches)), pairs, tile_size)
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font, font, small = _font(16), _font(13), _font(11)
    draw.text(
        (_MARGIN, 9),
        f"query: {Path(query).name}    {len(matches)} match(es), best first",
        fill=_TEXT,
        font=title_font,
    )
    tw, th = tile_size
    tiles: list[Tile] = []
    if not matches:
        draw.text((_MARGIN, _HEADER), "no matches: the library is empty", fill=_MUTED, font=font)
    for r, (match, row) in enumerate(zip(matches, chosen, strict=True)):
        top = _HEADER + r * (th + _CAPTION + _ROW_GAP)
        name = Path(match.path).name if match.path else match.key
        draw.text((_MARGIN, top + 4), f"#{r + 1}", fill=_TEXT, font=font)
        draw.text((_MARGIN + 30, top + 4), _clip(name, 27), fill=_TEXT, font=font)
        draw.text((_MARGIN, top + 26), f"score {match.score:.3f}", fill=_TEXT, font=font)
        draw.text(
            (_MARGIN, top + 44), f"signature {match.signature_score:.3f}", fill=_MUTED, font=small
        )
        if match.path and match.key != match.path:
            draw.text((_MARGIN, top + 60), _clip(match.key, 30), fill=_MUTED, font=small)
        if match.span is not None:
            s = match.span
            draw.text(
                (_MARGIN, top + 76),
                f"you {s.query_start:.1f}-{s.query_end:.1f}s = "
                f"mv {s.music_start:.1f}-{s.music_end:.1f}s",
                fill=_TEXT,
                font=small,
            )
        if match.box is not None:
            draw.text((_MARGIN, top + 92), "found in the boxed region", fill=_BOX, font=small)
        if not row:
            draw.text(
                (_MARGIN + _LABEL_WIDTH, top + th // 2), "no aligned frames", fill=_MUTED, font=font
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
                        (x + 6, top + th // 2 - 6), "frame unavailable", fill=_TEXT, font=small
                    )
                label = f"{'you' if role == 'query' else 'mv'} {t:.1f}s"
                if role == "music":
                    label += f"  sim {pair.similarity:.2f}"
                draw.text((x + 2, top + th + 2), label, fill=_MUTED, font=small)
                tiles.append(Tile(r, role, t, box, image is not None))  # type: ignore[arg-type]
    try:
        sheet.save(out_path, format="PNG")
    except OSError as exc:
        raise OutputPathError(f"cannot write the report {out_path}: {exc}", path=out_path) from exc
    return Report(out_path, (width, height), tuple(tiles))
