"""What the pages show of the library: a summary, pages of entries, cached thumbnails."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avajams.index import Entry, VideoIndex

__all__ = ["LibraryItem", "LibraryPage", "LibraryView", "thumb_token"]


def thumb_token(key: str) -> str:
    """The URL name of a library video's thumbnail: a hash of its key, never a path."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class LibraryItem:
    """One music video as the library page lists it."""

    key: str
    name: str
    duration: float | None
    added: datetime
    frames: int
    thumb: str
    path: str | None


@dataclass(frozen=True)
class LibraryPage:
    items: tuple[LibraryItem, ...]
    page: int
    pages: int
    total: int
    per_page: int


class LibraryView:
    """A read-only handle on the library, its entries cached until the catalogue changes."""

    def __init__(self, library: VideoIndex, thumbs_dir: Path) -> None:
        self.library = library
        self.thumbs_dir = thumbs_dir
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._items: list[LibraryItem] = []
        self._by_thumb: dict[str, LibraryItem] = {}

    @property
    def embedder_id(self) -> str:
        return self.library.embedder_id

    def _catalogue_stamp(self) -> tuple[float, int]:
        stamp = (0.0, 0)
        for path in Path(self.library.directory).glob("*"):
            with contextlib.suppress(OSError):
                st = path.stat()
                stamp = (max(stamp[0], st.st_mtime), stamp[1] + st.st_size)
        return stamp

    def items(self) -> list[LibraryItem]:
        """Every video, newest first (re-read when the library's files changed)."""
        stamp = self._catalogue_stamp()
        with self._lock:
            if stamp != self._stamp:
                entries = sorted(self.library.entries(), key=lambda e: e.added_at, reverse=True)
                self._items = [_item(e) for e in entries]
                self._by_thumb = {item.thumb: item for item in self._items}
                self._stamp = stamp
            return self._items

    def page(self, page: int, per_page: int = 20) -> LibraryPage:
        items = self.items()
        pages = max(1, math.ceil(len(items) / per_page))
        page = min(max(1, page), pages)
        start = (page - 1) * per_page
        return LibraryPage(
            tuple(items[start : start + per_page]), page, pages, len(items), per_page
        )

    def thumbnail(self, token: str) -> Path | None:
        """The cached JPEG for a thumbnail token (made on first request); None if unknown."""
        self.items()
        item = self._by_thumb.get(token)
        if item is None or item.path is None or not os.path.isfile(item.path):
            return None
        out = self.thumbs_dir / f"{token}.jpg"
        if out.is_file():
            return out
        from avajams.errors import VideoError
        from avajams.report import grab_frames

        at = min(1.0, (item.duration or 2.0) / 2)
        try:
            frames = grab_frames(item.path, [at])
        except VideoError:
            return None
        image = next(iter(frames.values()), None)
        if image is None:
            return None
        image = image.convert("RGB")
        image.thumbnail((320, 320))
        self.thumbs_dir.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{token}.{threading.get_ident()}.jpg")
        image.save(partial, format="JPEG", quality=85)
        os.replace(partial, out)
        return out


def _item(entry: Entry) -> LibraryItem:
    name = str(entry.metadata.get("name") or (Path(entry.path).name if entry.path else entry.key))
    return LibraryItem(
        key=entry.key,
        name=name,
        duration=entry.duration,
        added=entry.added_at,
        frames=entry.num_frames,
        thumb=thumb_token(entry.key),
        path=entry.path,
    )
