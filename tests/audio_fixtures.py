"""Generated soundtracks with known beats, and videos remuxed with them (test helpers)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

RATE = 22050


def click_track(
    beats: Sequence[float] | NDArray[np.float64],
    duration: float,
    *,
    rate: int = RATE,
    extra: Sequence[float] | NDArray[np.float64] = (),
    accent_every: int = 0,
) -> NDArray[np.float32]:
    """Mono clicks (30 ms 1 kHz bursts) at ``beats`` seconds, softer ones at ``extra``.

    ``accent_every=4`` makes every fourth beat (from the first) louder, like a downbeat.
    """
    y = np.zeros(round(duration * rate), dtype=np.float32)
    t = np.arange(round(0.03 * rate)) / rate
    burst = (np.sin(2 * np.pi * 1000.0 * t) * np.exp(-t / 0.008)).astype(np.float32)
    loud = [
        (b, 1.0 if accent_every and i % accent_every == 0 else 0.7) for i, b in enumerate(beats)
    ]
    for when, gain in [*loud, *((e, 0.35) for e in extra)]:
        k = round(when * rate)
        if 0 <= k < len(y):
            n = min(len(burst), len(y) - k)
            y[k : k + n] += gain * burst[:n]
    return y


def steady_beats(bpm: float, duration: float, start: float = 0.5) -> NDArray[np.float64]:
    """Beat times at ``bpm`` from ``start`` to (not including) ``duration``."""
    return np.arange(start, duration - 1e-9, 60.0 / bpm)


def with_soundtrack(
    source: Path, out: Path, samples: NDArray[np.float32], rate: int = RATE
) -> Path:
    """``source``'s video stream (copied) muxed with mono ``samples`` as AAC from time 0."""
    with av.open(str(source)) as src, av.open(str(out), "w", format="mp4") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=rate)
        aout.layout = "mono"
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        for start in range(0, len(samples), 4096):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[None, start : start + 4096]),
                format="fltp",
                layout="mono",
            )
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            dst.mux(aout.encode(frame))
        dst.mux(aout.encode(None))
    return out
