"""Fuzzing: damaged copies of generated clips through the sampler, ``Pipeline.match`` and the
mashup's probe, asserting only typed errors or results, in bounded time and memory, leaking no
thread, process or file descriptor.

Hypothesis picks a clip (MP4, fast-start MP4 with sound, MPEG-TS) and one to three mutations:
truncation, bit flips anywhere or in the header, a zeroed MP4 box, a box whose size field lies,
a zeroed or flipped stretch of bytes. The normal suite runs a fixed, derandomised set of
examples (100) in seconds; ``pytest -m fuzz`` runs a long random campaign
(``AVAJAMS_FUZZ_EXAMPLES``, default 500).
"""

from __future__ import annotations

import os
import resource
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avajams import AvajamsError, FrameSampler, Pipeline, PipelineConfig
from avajams._testing import hostile
from avajams.mashup.render import probe_music
from avajams.media import VideoDecodeWarning
from avajams.testing import FakeEmbedder, make_clip

#: Seconds one example may take (all three stages), on a loaded 2-core machine.
TIME_LIMIT = 30.0
#: Growth of the process's peak memory the whole run may cause.
MEMORY_LIMIT_KIB = 1_000_000


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("fuzz-seeds")
    clips = {
        "mp4": make_clip(root / "a.mp4", duration=2.0, fps=12, size=(64, 48), tag=1),
        "faststart": make_clip(
            root / "b.mp4",
            duration=2.0,
            fps=15,
            size=(48, 64),
            tag=2,
            rotation=90,
            audio_hz=440,
            faststart=True,
        ),
        "ts": hostile.make_ts(root / "c.ts", duration=2.0, size=(64, 48)),
    }
    return {name: path.read_bytes() for name, path in clips.items()}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, seeds: dict[str, bytes]) -> Pipeline:
    root = tmp_path_factory.mktemp("fuzz-library")
    for name, data in seeds.items():
        (root / f"{name}.{'ts' if name == 'ts' else 'mp4'}").write_bytes(data)
    config = PipelineConfig.model_validate(
        {"library": {"directory": str(root / "lib")}, "sampler": {"size": 32}}
    )
    pipe = Pipeline(config, embedder=FakeEmbedder(dim=16))
    summary = pipe.index(root)
    assert len(summary.added) == 3
    pipe.close()
    return Pipeline(config, embedder=FakeEmbedder(dim=16))


def _special_sizes(size: int) -> list[int]:
    return [0, 1, 7, 8, 9, size - 1, size + 1, 2 * size, 0x7FFFFFFF, 0xFFFFFFFF]


#: A mutation as Hypothesis reports it: a name and its arguments.
Spec = tuple[str, int, int]


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> list[Spec]:
    """One to three mutations of ``data``, as small specs (so a failure reads well)."""
    n = len(data)
    boxes = [b for b in hostile.atoms(data) if b[2] != b"mdat"]
    chosen: list[Spec] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "flip", "header", "zero", "box-zero", "box-size"]))
        if kind == "truncate":  # near the end as often as near the start
            at = draw(st.one_of(st.integers(0, n), st.integers(0, n).map(lambda x: n - x)))
            chosen.append((kind, at, 0))
        elif kind in ("flip", "header"):  # the first 4 KB hold the container's description
            limit = 8 * (n if kind == "flip" else min(n, 4096)) - 1
            chosen += [
                ("flip", draw(st.integers(0, limit)), 0) for _ in range(draw(st.integers(1, 8)))
            ]
        elif kind == "zero":
            start = draw(
                st.one_of(st.integers(0, n - 1), st.integers(0, n - 1).map(lambda x: n - 1 - x))
            )
            chosen.append((kind, start, draw(st.integers(1, 4096))))
        elif boxes:
            offset, size, _ = draw(st.sampled_from(boxes))
            if kind == "box-zero":
                chosen.append(("zero", offset + 8, size - 8))
            else:
                chosen.append((kind, offset, draw(st.sampled_from(_special_sizes(size)))))
    return chosen


def mutate(data: bytes, specs: list[Spec]) -> bytes:
    """``data`` with the mutations ``specs`` applied in order."""
    for kind, a, b in specs:
        if kind == "truncate":
            data = hostile.truncate(data, a)
        elif kind == "flip":
            data = hostile.flip_bits(data, [a])
        elif kind == "zero":
            data = hostile.zero_range(data, a, b)
        elif kind == "box-size":
            data = hostile.resize_atom(data, a, b)
    return data


@st.composite
def damaged(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, list[Spec]]:
    name = draw(st.sampled_from(sorted(seeds)))
    return name, draw(mutations(seeds[name]))


def _children() -> set[int]:
    """Process ids whose parent is this process (Linux), else an empty set."""
    found: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    me = str(os.getpid())
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                found.add(int(entry))
    return found


def _fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def exercise(path: Path, pipe: Pipeline) -> list[str]:
    """Run the three stages on ``path``; return what each gave (a result or a typed error).

    Anything else propagates and fails the test: a traceback is a bug.
    """
    outcomes: list[str] = []
    stages: list[tuple[str, Callable[[], object]]] = [
        ("sample", lambda: len(FrameSampler(size=32, max_bytes=1 << 26).sample(path))),
        ("match", lambda: len(pipe.match(path, k=2))),
        ("probe", lambda: probe_music(path).duration),
    ]
    for stage, run in stages:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VideoDecodeWarning)
                value = run()
            outcomes.append(f"{stage}: {value}")
        except AvajamsError as exc:
            outcomes.append(f"{stage}: {type(exc).__name__}: {exc}")
    return outcomes


def _check_example(path: Path, pipe: Pipeline, data: bytes) -> None:
    path.write_bytes(data)
    threads = set(threading.enumerate())
    children = _children()
    fds = _fds()
    started = time.monotonic()
    exercise(path, pipe)
    elapsed = time.monotonic() - started
    assert elapsed < TIME_LIMIT, f"{elapsed:.1f} s on one file"
    leaked = [t.name for t in set(threading.enumerate()) - threads if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
    assert _children() - children == set(), "child processes left running"
    if fds is not None:
        assert _fds() == fds, "file descriptors leaked"


def _fuzz(seeds: dict[str, bytes], pipe: Pipeline, tmp: Path, examples: int, fixed: bool) -> None:
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pipe.open_library(readonly=True)  # opened once: its descriptors are not a leak

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=fixed,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=damaged(seeds))
    def run(case: tuple[str, list[Spec]]) -> None:
        name, specs = case
        path = tmp / f"fuzz.{'ts' if name == 'ts' else 'mp4'}"
        _check_example(path, pipe, mutate(seeds[name], specs))

    run()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
    assert grown < MEMORY_LIMIT_KIB, f"peak memory grew by {grown} KiB"


def test_fuzz_damaged_clips(
    seeds: dict[str, bytes], pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _fuzz(seeds, pipeline, tmp_path_factory.mktemp("fuzz"), examples=100, fixed=True)


@pytest.mark.fuzz
def test_fuzz_campaign(
    seeds: dict[str, bytes], pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
) -> None:
    examples = int(os.environ.get("AVAJAMS_FUZZ_EXAMPLES", "500"))
    _fuzz(seeds, pipeline, tmp_path_factory.mktemp("fuzz"), examples=examples, fixed=False)


def test_the_stages_see_the_seeds_whole(seeds: dict[str, bytes], pipeline: Pipeline) -> None:
    """The harness itself: undamaged clips give results in every stage."""
    tmp = Path(pipeline.library_directory).parent
    for name, data in seeds.items():
        path = tmp / f"whole.{'ts' if name == 'ts' else 'mp4'}"
        path.write_bytes(data)
        sampled, matched, probed = exercise(path, pipeline)
        assert sampled == "sample: 2"
        assert matched == "match: 2"
        if name == "mp4":  # the one clip without sound
            assert probed.startswith("probe: MissingAudioError")
        else:
            assert float(probed.split(": ")[1]) == pytest.approx(2.0, abs=0.1)
