"""What the cut planner is told about the two videos: beats, shot changes, similar moments.

Everything here reads media (the music's soundtrack, both videos' pictures) and returns plain
data; :func:`~avajams.mashup.plan.plan_cuts` takes that data as input and stays pure.

- :func:`track_beats`: the beats of the music video's soundtrack with librosa's dynamic
  programming beat tracker (the ``beats`` extra: ``pip install 'avajams[beats]'``). Times are
  output times: seconds from the music video's first video frame, as the renderer aligns the
  soundtrack. A soundtrack without a clear pulse comes back ``reliable=False`` with the reason.
- :func:`detect_shots`: hard cuts in a video from frame differences of small luma thumbnails,
  read while decoding (no extra dependency); skips the decoding of non-reference H.264/HEVC
  frames and only looks closer where a cut fell into such a gap.
- :class:`MomentSimilarity`: cosine similarity of the user's frame vectors with the music
  video's (both already computed for matching), for match cuts.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from avajams.errors import ConfigError, VectorError, VideoDecodeError

if TYPE_CHECKING:
    from avajams.mashup.plan import CutAnalysis, CutMode
    from avajams.media import VideoInfo

__all__ = [
    "BEATS_EXTRA",
    "Beats",
    "MomentSimilarity",
    "Shots",
    "analyse",
    "beats_available",
    "beats_from_audio",
    "decode_audio",
    "detect_shots",
    "resolve_cut_mode",
    "track_beats",
]

log = logging.getLogger(__name__)

StrPath = str | os.PathLike[str]

#: How to install what beat tracking needs.
BEATS_EXTRA = "pip install 'avajams[beats]'"

#: Sample rate the soundtrack is analysed at (librosa's default).
ANALYSIS_RATE = 22050
#: Onset envelope hop: 256 samples = 11.6 ms, fine enough for 180 BPM (hop 512 was not).
_HOP = 256
#: A beat's onset strength must average this many times the track's to count as a pulse.
_MIN_SALIENCE = 3.0
#: ... and the onset envelope must repeat at the beat period at least this much (autocorr.).
_MIN_PERIODICITY = 0.1
#: A tempo change is followed when two stretches of the track differ by more than this (log2).
_TEMPO_STEP = 0.06


def beats_available() -> bool:
    """Whether the ``beats`` extra (librosa) is installed."""
    return importlib.util.find_spec("librosa") is not None


def _librosa() -> Any:
    if not beats_available():
        raise ConfigError(
            f"beat-synchronised cuts need the beats extra ({BEATS_EXTRA}); "
            "or choose cuts='fixed' or 'shots'"
        )
    import librosa

    return librosa


@dataclass(frozen=True)
class Beats:
    """The beats of a soundtrack: ``times`` in seconds, ``tempo`` in BPM.

    ``downbeats`` (a subset of ``times``) is empty when the tracker does not give them (the
    default one does not). ``reliable`` is false when the audio has no clear pulse; ``note``
    then says why (and otherwise how the beats were found).
    """

    times: tuple[float, ...]
    tempo: float
    downbeats: tuple[float, ...] = ()
    reliable: bool = True
    note: str = ""

    @property
    def period(self) -> float:
        """Seconds per beat at the tempo (0 without one)."""
        return 60.0 / self.tempo if self.tempo > 0 else 0.0


@dataclass(frozen=True)
class Shots:
    """Hard cuts of a video: ``times`` (seconds from its first frame) where a new shot starts.

    ``scores`` is each cut's frame difference relative to its neighbourhood (larger: clearer).
    ``refined`` counts cuts located exactly by decoding again around a skipped frame.
    """

    times: tuple[float, ...]
    scores: tuple[float, ...] = ()
    duration: float = 0.0
    refined: int = 0


@dataclass(frozen=True)
class MomentSimilarity:
    """How alike the user's moments and the music video's moments look.

    ``matrix[i, j]`` is the cosine similarity of the user's frame at ``user_times[i]`` and the
    music video's at ``music_times[j]`` (seconds from each video's first frame).
    """

    user_times: NDArray[np.float64] = field(repr=False)
    music_times: NDArray[np.float64] = field(repr=False)
    matrix: NDArray[np.float32] = field(repr=False)

    def __post_init__(self) -> None:
        shape = (len(self.user_times), len(self.music_times))
        if self.matrix.shape != shape or 0 in shape:
            raise VectorError(
                f"similarity matrix is {self.matrix.shape}, expected {shape} (user x music "
                "moments, neither empty)"
            )

    @classmethod
    def from_vectors(
        cls,
        user_times: Sequence[float] | NDArray[np.float64],
        user_vectors: NDArray[np.floating[Any]],
        music_times: Sequence[float] | NDArray[np.float64],
        music_vectors: NDArray[np.floating[Any]],
    ) -> MomentSimilarity:
        """Cosine similarities of two videos' frame vectors (rows are normalised here)."""
        u = np.asarray(user_vectors, dtype=np.float32)
        m = np.asarray(music_vectors, dtype=np.float32)
        if u.ndim != 2 or m.ndim != 2 or u.shape[1] != m.shape[1]:
            raise VectorError(
                f"frame vectors must be (N, D) with one D, got {u.shape} and {m.shape}"
            )
        if not (np.isfinite(u).all() and np.isfinite(m).all()):
            raise VectorError("frame vectors contain NaN or inf")
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
        m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        return cls(
            np.asarray(user_times, dtype=np.float64),
            np.asarray(music_times, dtype=np.float64),
            (u @ m.T).astype(np.float32),
        )

    def music_column(self, t: float) -> int:
        """Index of the music moment on screen at ``t`` seconds: the last one at or before it.

        (The nearest one could lie after a shot change the cut comes before.)
        """
        i = int(np.searchsorted(self.music_times, t + 1e-9, side="right")) - 1
        return max(i, 0)


# --- beats -----------------------------------------------------------------------------------


def decode_audio(
    music: StrPath, *, rate: int = ANALYSIS_RATE, duration: float | None = None
) -> NDArray[np.float32]:
    """The music video's soundtrack as mono float32 at ``rate``, aligned to its picture.

    Sample ``n`` plays at output time ``n / rate`` (seconds from the first video frame), the
    same alignment the renderer gives the soundtrack. It covers at most ``duration`` seconds
    (default: the picture's length): audio starting after that is silence, never padding of
    whatever length its timestamps claim.
    """
    from avajams.media import decode, open_container, probe, pyav_errors

    info = probe(music)
    limit = round((duration if duration is not None else info.duration + 1.0) * rate)
    samples: list[NDArray[np.float32]] = []
    count = 0
    position: int | None = None
    try:
        with open_container(info.path) as container:
            if not container.streams.audio:
                return np.zeros(0, dtype=np.float32)
            stream = container.streams.audio[0]
            resampler = _resampler(rate)
            for decoded in decode(container, stream):
                if position is None and decoded.time is not None:
                    position = round((float(decoded.time) - info.start_time) * rate)
                    if position > 0:  # audio starts after the picture: silence first
                        count = min(position, limit)
                        samples.append(np.zeros(count, dtype=np.float32))
                if count >= limit:
                    break
                for frame in resampler.resample(decoded):
                    chunk = frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    if position is not None and position < 0:  # audio before the picture
                        skip = min(-position, len(chunk))
                        chunk, position = chunk[skip:], position + skip
                    samples.append(chunk)
                    count += len(chunk)
    except pyav_errors() as exc:
        raise VideoDecodeError(
            f"decoding the soundtrack of {info.path} failed: {exc}", path=info.path
        ) from exc
    audio = np.concatenate(samples) if samples else np.zeros(0, dtype=np.float32)
    return audio[:limit]


def _resampler(rate: int) -> Any:
    """A PyAV resampler to mono float32 at ``rate``."""
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=rate)


def track_beats(music: StrPath, *, duration: float | None = None) -> Beats:
    """The beats of the music video's soundtrack (needs the ``beats`` extra).

    Times are seconds of output (from the music video's first video frame). ``duration``
    analyses only the start. A soundtrack without a clear pulse gives ``reliable=False``.
    """
    _librosa()  # fail early, before decoding, when the extra is missing
    return beats_from_audio(decode_audio(music, duration=duration), ANALYSIS_RATE)


def beats_from_audio(samples: NDArray[np.floating[Any]], rate: int) -> Beats:
    """Track the beats of mono ``samples`` at ``rate`` with librosa (see :func:`track_beats`).

    The tempo is librosa's onset-autocorrelation estimate (log-normal prior around 120 BPM);
    when the track's first and second stretches settle on tempos more than 4% apart, the
    tracker follows that one change instead of one global tempo.
    """
    librosa = _librosa()
    y = np.asarray(samples, dtype=np.float32)
    seconds = len(y) / rate
    if seconds < 2.0 or not np.any(y):
        return Beats((), 0.0, reliable=False, note="the soundtrack is silent or too short")
    onset = librosa.onset.onset_strength(y=y, sr=rate, hop_length=_HOP)
    if float(onset.max()) <= 1e-6:
        return Beats((), 0.0, reliable=False, note="the soundtrack has no onsets (a steady tone?)")
    tempo = float(librosa.feature.tempo(onset_envelope=onset, sr=rate, hop_length=_HOP)[0])
    bpm, note = _tempo_curve(librosa, onset, rate, tempo)
    _, frames = librosa.beat.beat_track(
        onset_envelope=onset, sr=rate, hop_length=_HOP, bpm=bpm, units="frames"
    )
    frames = np.asarray(frames, dtype=np.int64)
    frames = frames[frames < len(onset)]
    times = librosa.frames_to_time(frames, sr=rate, hop_length=_HOP)
    salience = float(onset[frames].mean() / (onset.mean() + 1e-9)) if len(frames) else 0.0
    centred = onset - onset.mean()
    lag = round(60.0 / tempo * rate / _HOP) if tempo > 0 else 0
    energy = float(np.dot(centred, centred))
    periodicity = (
        float(np.dot(centred[:-lag], centred[lag:]) / energy)
        if 0 < lag < len(onset) and energy > 0
        else 0.0
    )
    span = float(times[-1] - times[0]) if len(times) > 1 else 0.0
    if len(times) > 1:
        tempo = 60.0 / float(np.median(np.diff(times)))  # what the beats actually do
    measures = f"salience {salience:.1f}, periodicity {periodicity:.2f}"
    if len(times) < 4 or span < 0.25 * seconds:
        why = f"only {len(times)} beats over {span:.1f} of {seconds:.1f} s"
    elif salience < _MIN_SALIENCE:
        why = f"beats barely stand out ({measures}; needs salience >= {_MIN_SALIENCE:g})"
    elif periodicity < _MIN_PERIODICITY:
        why = f"no steady pulse ({measures}; needs periodicity >= {_MIN_PERIODICITY:g})"
    else:
        return Beats(
            tuple(float(t) for t in times),
            tempo,
            reliable=True,
            note=f"librosa beat tracker, {tempo:.1f} BPM ({measures}){note}",
        )
    return Beats(
        tuple(float(t) for t in times), tempo, reliable=False, note=f"no clear beat: {why}"
    )


def _tempo_curve(
    librosa: Any, onset: NDArray[np.floating[Any]], rate: int, tempo: float
) -> tuple[float | NDArray[np.float64], str]:
    """One global tempo, or a two-step tempo curve when the track changes tempo once."""
    per_second = rate / _HOP
    window = round(10 * per_second)
    hop = round(5 * per_second)
    if len(onset) < 3 * window:
        return tempo, ""
    starts = list(range(0, len(onset) - window + 1, hop))
    local = np.array(
        [
            float(
                librosa.feature.tempo(
                    onset_envelope=onset[s : s + window],
                    sr=rate,
                    hop_length=_HOP,
                    start_bpm=tempo,
                )[0]
            )
            for s in starts
        ]
    )
    best: tuple[float, int] | None = None
    for split in range(2, len(local) - 1):
        before, after = np.median(local[:split]), np.median(local[split:])
        step = abs(math.log2(after / before))
        consistent = np.all(np.abs(np.log2(local[:split] / before)) < 0.04) and np.all(
            np.abs(np.log2(local[split:] / after)) < 0.04
        )
        if step > _TEMPO_STEP and consistent and (best is None or step > best[0]):
            best = (step, split)
    if best is None:
        return tempo, ""
    split = best[1]
    before, after = float(np.median(local[:split])), float(np.median(local[split:]))
    # the change happens somewhere in the window straddling the split; take its middle
    boundary = starts[split] + window // 2 - hop // 2
    curve = np.where(np.arange(len(onset)) < boundary, before, after).astype(np.float64)
    return curve, f"; tempo change {before:.1f} -> {after:.1f} BPM at {boundary / per_second:.1f} s"


# --- shots -----------------------------------------------------------------------------------

#: Thumbnail width for frame differences (luma, subsampled from the decoded plane).
_THUMB_WIDTH = 64
#: A cut's difference must exceed this (mean absolute luma difference, 0-255) ...
_MIN_CUT_DIFFERENCE = 12.0
#: ... and be this many times the typical difference around it (motion is not a cut).
_CUT_RATIO = 3.0
#: Frames either side that make up "around it".
_NEIGHBOURHOOD = 12
#: Codecs whose non-reference flag is exact, so their non-reference frames can be skipped.
_SKIPPABLE = frozenset({"h264", "hevc"})


def _thumbnail(frame: Any) -> NDArray[np.float32]:
    """A small luma picture of ``frame``, read from its decoded plane without conversion."""
    plane = frame.planes[0]
    fmt = frame.format.name
    if not fmt.startswith(("yuv", "yuvj", "gray", "nv")):
        luma = frame.reformat(width=_THUMB_WIDTH, height=36, format="gray").to_ndarray()
        return np.asarray(luma, dtype=np.float32)
    bytes_per = 2 if ("10" in fmt or "12" in fmt or "16" in fmt) else 1
    row = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    if bytes_per == 2:
        row = row.view(np.uint16)
    width = plane.width
    step = max(1, width // _THUMB_WIDTH)
    picture = row[::step, :width:step].astype(np.float32)
    return picture / 256.0 if bytes_per == 2 else picture


def detect_shots(video: StrPath, *, duration: float | None = None) -> Shots:
    """The hard cuts of ``video``: where a new shot starts, in seconds from its first frame.

    One forward decode; each decoded frame becomes a small luma thumbnail (a strided read of
    the decoded plane, no colour conversion) and is compared with the previous one. A cut is a
    difference well above both an absolute floor and its neighbourhood (camera motion raises
    the neighbourhood too). H.264/HEVC non-reference frames are not decoded; when a cut falls
    between two decoded frames with skipped ones between them and does not start on a
    keyframe (encoders put one at a scene cut), that stretch is decoded again in full to
    find the exact frame. ``duration`` reads only the start.
    """
    from avajams.media import FrameReader, probe

    info = probe(video)
    times: list[float] = []
    diffs: list[float] = []
    keys: list[bool] = []
    previous: NDArray[np.float32] | None = None
    skip = False
    with FrameReader(info.path, threads=1, strict=False) as reader:
        stream = reader.stream
        if stream.codec_context.name in _SKIPPABLE:
            stream.codec_context.skip_frame = "NONREF"
            skip = True
        # Deblocking is invisible at thumbnail size and costs a fifth of H.264 decoding.
        stream.codec_context.options = {"skip_loop_filter": "all"}
        for t, frame in reader.frames():
            if duration is not None and t >= duration:
                break
            thumb = _thumbnail(frame)
            if previous is not None and thumb.shape == previous.shape:
                diffs.append(float(np.mean(np.abs(thumb - previous))))
            elif previous is not None:
                diffs.append(255.0)  # the picture changed size: call it a cut
            else:
                diffs.append(0.0)
            times.append(t)
            keys.append(bool(frame.key_frame))
            previous = thumb
        end = reader.end_time
    total = float(end) if end is not None else info.duration
    cuts, scores = _find_cuts(np.asarray(diffs), times)
    step = 1.0 / info.fps if info.fps > 0 else 0.0
    refined = 0
    exact: list[float] = []
    for i in cuts:
        gap = times[i] - times[i - 1]
        if skip and step and gap > 1.5 * step and not keys[i]:
            exact.append(_refine_cut(info, times[i - 1], times[i]))
            refined += 1
        else:
            exact.append(times[i])
    return Shots(tuple(exact), tuple(scores), duration=total, refined=refined)


def _find_cuts(diffs: NDArray[np.float64], times: Sequence[float]) -> tuple[list[int], list[float]]:
    cuts: list[int] = []
    scores: list[float] = []
    n = len(diffs)
    for i in range(1, n):
        d = diffs[i]
        if d < _MIN_CUT_DIFFERENCE:
            continue
        lo, hi = max(1, i - _NEIGHBOURHOOD), min(n, i + _NEIGHBOURHOOD + 1)
        around = np.concatenate([diffs[lo:i], diffs[i + 1 : hi]])
        typical = float(np.median(around)) if len(around) else 0.0
        if d < _CUT_RATIO * max(typical, 1.0):
            continue
        score = float(d) / max(typical, 1.0)
        if cuts and times[i] - times[cuts[-1]] < 0.2:  # a flash: keep the stronger change
            if d > diffs[cuts[-1]]:
                cuts[-1], scores[-1] = i, score
            continue
        cuts.append(i)
        scores.append(score)
    return cuts, scores


def _refine_cut(info: VideoInfo, before: float, after: float) -> float:
    """The exact start of the shot that begins in ``(before, after]`` (decoding every frame)."""
    from avajams.media import FrameReader

    best, best_diff = after, -1.0
    previous: NDArray[np.float32] | None = None
    with FrameReader(info.path, threads=1, strict=False) as reader:
        reader.seek(before)
        for t, frame in reader.frames():
            if t > after + 1e-9:
                break
            if t < before - 1e-9:
                continue
            thumb = _thumbnail(frame)
            if previous is not None and thumb.shape == previous.shape:
                d = float(np.mean(np.abs(thumb - previous)))
                if d > best_diff:
                    best, best_diff = t, d
            previous = thumb
    return best


# --- everything a plan needs ---------------------------------------------------------------


def resolve_cut_mode(choice: str) -> tuple[CutMode, tuple[str, ...]]:
    """The cut mode ``choice`` stands for, and a note when ``"auto"`` could not use beats.

    Raises ConfigError for ``"beats"`` when the beats extra is missing.
    """
    if choice == "auto":
        if beats_available():
            return "beats", ()
        return "fixed", (
            f"beat-synchronised cuts need the beats extra ({BEATS_EXTRA}); "
            "cutting on the fixed grid",
        )
    if choice == "beats":
        _librosa()
    return cast("CutMode", choice), ()


def analyse(
    user: StrPath,
    music: StrPath,
    mode: CutMode,
    *,
    duration: float | None = None,
    similarity: MomentSimilarity | None = None,
    notes: Sequence[str] = (),
) -> CutAnalysis:
    """What :func:`~avajams.mashup.plan.plan_cuts` needs for ``mode``.

    Beats mode tracks the music's beats and, when they are reliable, both videos' shot
    changes; shots mode finds both videos' shot changes; fixed mode needs nothing.
    ``duration`` limits the music video's analysis to the output's length.
    """
    from avajams.mashup.plan import CutAnalysis

    beats = None
    if mode == "beats":
        started = time.perf_counter()
        beats = track_beats(music, duration=duration)
        log.info("beats: %s (%.2f s)", beats.note, time.perf_counter() - started)
        if not beats.reliable:  # the plan falls back to the fixed grid: no shots needed
            return CutAnalysis(beats=beats, similarity=similarity, notes=tuple(notes))
    if mode == "fixed":
        return CutAnalysis(similarity=similarity, notes=tuple(notes))
    started = time.perf_counter()
    music_shots = detect_shots(music, duration=duration)
    user_shots = detect_shots(user)
    log.info(
        "shot changes: %d in the music video, %d in the user's (%.2f s)",
        len(music_shots.times),
        len(user_shots.times),
        time.perf_counter() - started,
    )
    return CutAnalysis(
        beats=beats,
        music_shots=music_shots.times,
        user_shots=user_shots.times,
        similarity=similarity,
        notes=tuple(notes),
    )
