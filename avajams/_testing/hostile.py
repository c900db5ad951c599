"""Hostile media made in code: the damaged files of the fault corpus, and byte-level mutations.

The regression tests and the fault-injection campaign (``python -m benchmarks hostile``) build
every input they need here instead of committing binary fixtures:

- ``make_ts``: a small MPEG-TS (MPEG-2 video, MP2 audio), the container whose timestamps may
  jump;
- ``with_late_streams``: PES packets on new PIDs late in a TS, so streams appear mid-file (PyAV
  18 raised ``IndexError`` at the end of demuxing);
- ``with_pts_spikes``: flipped PTS bits in a TS (a 5 s file that looks hours long);
- ``with_zeroed_atom``: an MP4 box zeroed in place (``mdhd``: time base 1/1, one frame lasting
  512 s);
- ``with_title``: a valid MP4 whose title tag holds bytes that are not UTF-8;
- ``make_late_audio_clip``: an MP4 whose audio starts at t = 2,000,000 s;
- ``make_animated_webp``.

The mutations (``truncate``, ``flip_bits``, ``zero_range``, ``resize_atom``, ``atoms``) work on
bytes, so a Hypothesis strategy can drive them.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "atoms",
    "flip_bits",
    "make_animated_webp",
    "make_late_audio_clip",
    "make_ts",
    "resize_atom",
    "truncate",
    "with_late_streams",
    "with_pts_spikes",
    "with_title",
    "with_zeroed_atom",
    "zero_range",
]

StrPath = str | os.PathLike[str]

_TS_PACKET = 188
_VIDEO_PID = 0x100


def _frame(index: int, size: tuple[int, int]) -> av.VideoFrame:
    width, height = size
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = ((index * 9) % 256, (index * 5 + 80) % 256, 120)
    image[height // 4 : height // 2, (index * 3) % width :] = 255  # something that moves
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def make_ts(
    path: StrPath,
    *,
    duration: float = 5.0,
    fps: int = 25,
    size: tuple[int, int] = (160, 120),
    audio: bool = True,
) -> Path:
    """Write an MPEG-TS with MPEG-2 video (and MP2 audio); return its path."""
    out = Path(path)
    frames = max(1, round(duration * fps))
    with av.open(str(out), "w", format="mpegts") as container:
        video = container.add_stream("mpeg2video", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        sound = None
        if audio:
            sound = container.add_stream("mp2", rate=48000)
            sound.layout = "mono"
        for index in range(frames):
            frame = _frame(index, size)
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            rate, chunk = 48000, 1152
            t = np.arange(round(duration * rate)) / rate
            tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
            for start in range(0, len(tone) - chunk + 1, chunk):
                piece = av.AudioFrame.from_ndarray(
                    tone[None, start : start + chunk], format="s16", layout="mono"
                )
                piece.sample_rate = rate
                piece.pts = start
                piece.time_base = Fraction(1, rate)
                container.mux(sound.encode(piece))
            container.mux(sound.encode(None))
    return out


def _ts_packets(data: bytes | bytearray) -> range:
    return range(0, len(data) - _TS_PACKET + 1, _TS_PACKET)


def _pid(data: bytes | bytearray, at: int) -> int:
    return ((data[at + 1] & 0x1F) << 8) | data[at + 2]


def _pes_starts(data: bytes | bytearray, pid: int = _VIDEO_PID) -> list[int]:
    """Offsets of the TS packets that start a PES packet of ``pid``."""
    return [
        at
        for at in _ts_packets(data)
        if data[at] == 0x47 and data[at + 1] & 0x40 and _pid(data, at) == pid
    ]


def with_late_streams(src: StrPath, dst: StrPath, *, streams: int = 4) -> Path:
    """Copy TS ``src`` to ``dst`` with ``streams`` video PES packets in its second half moved to
    new PIDs: each appears as a new stream mid-file (after FFmpeg read the header)."""
    data = bytearray(Path(src).read_bytes())
    starts = _pes_starts(data)
    late = [at for at in starts if at > len(data) // 2][:streams]
    for number, at in enumerate(late):
        pid = 0x200 + number
        data[at + 1] = (data[at + 1] & 0xE0) | (pid >> 8)
        data[at + 2] = pid & 0xFF
    out = Path(dst)
    out.write_bytes(bytes(data))
    return out


def _pts_offset(data: bytes | bytearray, at: int) -> int | None:
    """Offset of the 5-byte PTS in the PES header starting in the TS packet at ``at``."""
    payload = at + 4
    if data[at + 3] & 0x20:  # adaptation field first
        payload += 1 + data[at + 4]
    header = data[payload : payload + 9]
    if len(header) < 9 or header[:3] != b"\x00\x00\x01" or not header[7] & 0x80:
        return None
    return payload + 9


def with_pts_spikes(
    src: StrPath, dst: StrPath, *, at: tuple[float, ...] = (0.0, 0.6), bit: int = 30
) -> Path:
    """Copy TS ``src`` to ``dst`` with PTS bit ``bit`` flipped in the video PES packets found
    at the given fractions of the file (bit 30: a jump of about 3.3 hours)."""
    if not 22 <= bit <= 32:
        raise ValueError("bit must be one of the PTS bits 22..32 (the first two PTS bytes)")
    data = bytearray(Path(src).read_bytes())
    starts = _pes_starts(data)
    for fraction in at:
        packet = starts[min(len(starts) - 1, int(fraction * len(starts)))]
        offset = _pts_offset(data, packet)
        if offset is None:
            continue
        if bit >= 30:  # PTS[32..30] sit in bits 3..1 of the first byte
            data[offset] ^= 1 << (bit - 30 + 1)
        else:  # PTS[29..22] are the second byte
            data[offset + 1] ^= 1 << (bit - 22)
    out = Path(dst)
    out.write_bytes(bytes(data))
    return out


def atoms(data: bytes | bytearray) -> list[tuple[int, int, bytes]]:
    """``(offset, size, type)`` of every MP4 box found by walking the box tree from the top
    (containers ``moov``, ``trak``, ``mdia``, ``minf``, ``stbl``, ``udta`` are entered)."""
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf"}
    found: list[tuple[int, int, bytes]] = []

    def walk(start: int, end: int) -> None:
        at = start
        while at + 8 <= end:
            size = int.from_bytes(data[at : at + 4], "big")
            kind = bytes(data[at + 4 : at + 8])
            if size == 1 and at + 16 <= end:
                size = int.from_bytes(data[at + 8 : at + 16], "big")
            if size < 8 or at + size > end:
                return
            found.append((at, size, kind))
            if kind in containers:
                walk(at + 8, at + size)
            at += size

    walk(0, len(data))
    return found


def zero_range(data: bytes | bytearray, start: int, length: int) -> bytes:
    """``data`` with ``length`` bytes from ``start`` set to zero."""
    out = bytearray(data)
    start = min(max(0, start), len(out))
    end = min(len(out), start + max(0, length))
    out[start:end] = bytes(end - start)
    return bytes(out)


def with_zeroed_atom(src: StrPath, dst: StrPath, *, atom: bytes = b"mdhd") -> Path:
    """Copy MP4 ``src`` to ``dst`` with the first ``atom`` box's content zeroed (its size and
    type kept)."""
    data = Path(src).read_bytes()
    box = next((b for b in atoms(data) if b[2] == atom), None)
    if box is None:
        raise ValueError(f"{src} has no {atom!r} box")
    offset, size, _ = box
    out = Path(dst)
    out.write_bytes(zero_range(data, offset + 8, size - 8))
    return out


def resize_atom(data: bytes | bytearray, offset: int, size: int) -> bytes:
    """``data`` with the 32-bit size field of the box at ``offset`` set to ``size`` (an
    oversized or undersized box header, as a damaged or hostile file has)."""
    out = bytearray(data)
    out[offset : offset + 4] = (size & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(out)


def truncate(data: bytes | bytearray, length: int) -> bytes:
    """The first ``length`` bytes of ``data``."""
    return bytes(data[: max(0, length)])


def flip_bits(data: bytes | bytearray, positions: list[int]) -> bytes:
    """``data`` with the bits at ``positions`` (bit indices, modulo its length) inverted."""
    out = bytearray(data)
    if out:
        for position in positions:
            byte, bit = divmod(position % (8 * len(out)), 8)
            out[byte] ^= 1 << bit
    return bytes(out)


def with_title(src: StrPath, dst: StrPath, title: bytes = b"bad\xff\xfetitle") -> Path:
    """Remux MP4 ``src`` to ``dst`` with a title tag holding the raw bytes ``title`` (by
    default not UTF-8, which FFmpeg passes on and PyAV failed to decode)."""
    placeholder = "T" * len(title)
    out = Path(dst)
    with av.open(os.fspath(src)) as source, av.open(str(out), "w", format="mp4") as sink:
        sink.metadata["title"] = placeholder
        mapping = {s.index: sink.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            sink.mux(packet)
    data = out.read_bytes()
    if data.count(placeholder.encode()) != 1:
        raise RuntimeError("the title placeholder was not written exactly once")
    out.write_bytes(data.replace(placeholder.encode(), title))
    return out


def make_late_audio_clip(
    path: StrPath,
    *,
    duration: float = 2.0,
    audio_start: float = 2_000_000.0,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
) -> Path:
    """Write an H.264 MP4 whose AAC audio stream starts ``audio_start`` seconds in."""
    out = Path(path)
    rate, chunk = 48000, 1024
    with av.open(str(out), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for index in range(round(duration * fps)):
            frame = _frame(index, size)
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        first = round(audio_start * rate)
        for start in range(0, round(duration * rate), chunk):
            t = (start + np.arange(chunk)) / rate
            piece = av.AudioFrame.from_ndarray(
                (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :],
                format="fltp",
                layout="mono",
            )
            piece.sample_rate = rate
            piece.pts = first + start
            piece.time_base = Fraction(1, rate)
            container.mux(sound.encode(piece))
        container.mux(sound.encode(None))
    return out


def make_animated_webp(path: StrPath, *, frames: int = 6, size: tuple[int, int] = (64, 48)) -> Path:
    """Write an animated WebP (which FFmpeg's WebP decoder cannot decode); return its path."""
    from PIL import Image

    out = Path(path)
    pictures = [Image.fromarray(_frame(i, size).to_ndarray(format="rgb24")) for i in range(frames)]
    pictures[0].save(out, format="WEBP", save_all=True, append_images=pictures[1:], duration=100)
    return out
