"""Receiving an upload: streamed to disk under a size cap, then accepted only if it decodes.

The multipart body is parsed as it arrives by python-multipart's streaming parser; file bytes
go straight to a uniquely named ``.part`` file in the work directory's ``uploads`` folder,
and the upload is refused (413) the moment it passes the cap, so it is never held in memory
whole. Whatever goes wrong (the cap, a bad body, the client disconnecting) the partial file
is deleted. The file is then probed with avajams' own decoder (:func:`avajams.media.probe`),
in a short-lived process of its own so that a hostile file cannot crash or hang the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

__all__ = ["ReceivedUpload", "UploadRejected", "clean_filename", "probe_upload", "receive_upload"]

#: Form fields besides the file, at most, and bytes per field.
MAX_FIELDS = 32
MAX_FIELD_BYTES = 4096
#: Bytes of multipart framing (boundaries, part headers, small fields) allowed on top of the
#: file's own cap when judging a declared Content-Length.
FRAMING_ALLOWANCE = 256 * 1024


class UploadRejected(Exception):
    """An upload the server refuses: HTTP ``status`` and a message for the person."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class ReceivedUpload:
    """A file received whole: where it is, the name it was sent with, the other fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def clean_filename(raw: str) -> str:
    """The name to show for an uploaded file: no control characters, not too long.

    It is only ever displayed (escaped); files on the server get names of their own.
    """
    name = raw
    if re.match(r"^([A-Za-z]:)?\\", name):  # a Windows path some old browsers send
        name = name.rsplit("\\", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if len(name) > 120:
        name = name[:100] + "…" + name[-19:]
    return name or "upload"


def _size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


class _Parts:
    """python-multipart callbacks collecting small fields and the one file's chunks."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_chunks: list[bytes] = []
        self.files = 0
        self.error: str | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._name = None
        self._is_file = False
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            self.error = "a form part has no name"
            return
        self._name = name.decode("utf-8", "replace")
        if b"filename" in options:
            self._is_file = True
            self.files += 1
            if self.files > 1:
                self.error = "send one file per upload"
            else:
                self.filename = options[b"filename"].decode("utf-8", "replace")
        elif len(self.fields) >= MAX_FIELDS:
            self.error = f"too many form fields (at most {MAX_FIELDS})"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        if self._is_file:
            if self.files == 1:
                self.file_chunks.append(data[start:end])
        else:
            self._data += data[start:end]
            if len(self._data) > MAX_FIELD_BYTES:
                self.error = f"the form field {self._name!r} is too long"

    def on_part_end(self) -> None:
        if self.error is None and not self._is_file and self._name is not None:
            self.fields[self._name] = self._data.decode("utf-8", "replace")


async def receive_upload(request: Request, folder: Path, max_bytes: int) -> ReceivedUpload:
    """Stream the multipart ``file`` of ``request`` into ``folder``; raise UploadRejected.

    The cap counts the file's bytes as they arrive; a declared ``Content-Length`` far above it
    is refused before anything is read.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadRejected(400, "send the video as multipart/form-data with a 'file' field")
    limit = f"the upload limit is {_size_text(max_bytes)}"
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > max_bytes + FRAMING_ALLOWANCE
    ):
        raise UploadRejected(413, f"the file is too large ({_size_text(int(declared))}); {limit}")
    parts = _Parts()
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": parts.on_part_begin,
            "on_part_data": parts.on_part_data,
            "on_part_end": parts.on_part_end,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_headers_finished": parts.on_headers_finished,
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(16)}.part"
    received = 0
    kept = False
    handle = await anyio.to_thread.run_sync(lambda: open(path, "xb"))  # noqa: SIM115
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart's parse errors
                raise UploadRejected(
                    400, f"the upload is not valid multipart data ({exc})"
                ) from exc
            if parts.error is not None:
                raise UploadRejected(400, parts.error)
            if parts.file_chunks:
                data = b"".join(parts.file_chunks)
                parts.file_chunks.clear()
                received += len(data)
                if received > max_bytes:
                    raise UploadRejected(413, f"the file is too large; {limit}")
                await anyio.to_thread.run_sync(handle.write, data)
        try:
            parser.finalize()
        except Exception as exc:
            raise UploadRejected(400, f"the upload ended early ({exc})") from exc
        if parts.filename is None:
            raise UploadRejected(400, "no file was sent; choose a video to upload")
        kept = True
        return ReceivedUpload(path, clean_filename(parts.filename), received, parts.fields)
    except ClientDisconnect:
        raise UploadRejected(400, "the upload was interrupted") from None
    finally:
        await anyio.to_thread.run_sync(handle.close)
        if not kept:
            with contextlib.suppress(OSError):
                path.unlink()


def _tidy(message: str, path: Path, shown: str) -> str:
    """The decoder's message with the upload's name for the server's path, errno noise gone."""
    message = re.sub(r"\[Errno -?\d+\] ", "", message)
    message = message.replace(f": '{path}'", "").replace(str(path), shown)
    return message


def probe_upload(path: Path, filename: str, timeout: float) -> dict[str, Any]:
    """Probe ``path`` in a child process; return the video's facts or raise UploadRejected."""
    shown = f"“{filename}”"
    if path.stat().st_size == 0:
        raise UploadRejected(400, f"{shown} is empty (0 bytes); choose a video file")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "avajams.web._probe", str(path)],
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired:
        raise UploadRejected(
            415, f"{shown} took too long to read; it does not look like a video file"
        ) from None
    try:
        answer = json.loads(done.stdout.decode("utf-8"))
    except ValueError:
        raise UploadRejected(
            415, f"{shown} could not be read as a video (the decoder gave up on it)"
        ) from None
    if not answer.get("ok"):
        message = str(answer.get("message", f"{path} could not be read as a video"))
        raise UploadRejected(415, _tidy(message, path, shown))
    info: dict[str, Any] = answer["info"]
    return info
