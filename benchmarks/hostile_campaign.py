"""Fault-injection campaign: the ``avajams`` CLI against hundreds of damaged files and hostile
paths, each run in its own process, classified by what happened.

    python -m benchmarks.hostile_campaign                  # 320 damaged files + the path cases
    python -m benchmarks.hostile_campaign --files 60 --json out.json --markdown out.md

Every damaged file (made here from generated clips: truncations, bit flips at zzuf-like
ratios, zeroed or resized MP4 boxes, header and SPS edits, PTS spikes, streams appearing
mid-file, inserted bytes) is matched (``match --json``) and used as the music of a rendered
mashup; the whole damaged folder is indexed in one run. The hostile-directory cases index a
folder holding one good video and one hostile entry (a FIFO, a device, a symlink loop, ...);
the path cases give hostile paths to ``match``, ``mashup``, ``--config`` and ``--library``.

Each run is classified as

- ``ok``: exit 0 (for ``index``: every good file added);
- ``typed error``: exit 1 with exactly one ``avajams: error:`` line (``index``: each bad file
  reported as ``avajams: skipped`` and the good ones added);
- ``traceback``: a Python traceback, the last-resort ``internal error`` (exit 70), an error
  that is not one line, or an ``index`` run that lost a good file;
- ``crash``: killed by a signal or any other exit code;
- ``hang``: still running after ``--timeout`` seconds (then killed);
- ``leaked process``: a process of its session still alive after it exited.

The target is 0 in every column after ``typed error``. ``--pythonpath DIR`` runs another
avajams checkout (e.g. the release before these fixes) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("ok", "typed error", "traceback", "crash", "hang", "leaked process")
BAD = COLUMNS[2:]
#: Address space a run may use; a runaway allocation fails instead of swapping the machine.
MEMORY_LIMIT = 4 << 30


@dataclass
class Run:
    """One CLI run of the campaign and what became of it."""

    group: str
    case: str
    argv: list[str]
    expect_added: int | None = None  # index runs: good files that must be added
    outcome: str = ""
    code: int | None = None
    seconds: float = 0.0
    stderr_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# -- inputs ------------------------------------------------------------------------------------


def make_seeds(root: Path) -> dict[str, Path]:
    """Small clean clips in the containers and codecs users have: the mutation seeds."""
    import av

    from avajams._testing import hostile
    from avajams.testing import make_clip

    root.mkdir(parents=True, exist_ok=True)
    seeds = {
        "mp4": make_clip(
            root / "plain.mp4", duration=3.0, fps=12, size=(96, 64), tag=1, audio_hz=440
        ),
        "faststart": make_clip(
            root / "faststart.mp4",
            duration=3.0,
            fps=15,
            size=(96, 64),
            tag=2,
            audio_hz=330,
            faststart=True,
        ),
        "rot_vfr": make_clip(
            root / "rot_vfr.mp4",
            duration=3.0,
            fps=24,
            size=(64, 96),
            tag=3,
            rotation=90,
            vfr=True,
            audio_hz=550,
        ),
        "ts": hostile.make_ts(root / "plain.ts", duration=3.0, size=(96, 64)),
    }
    seeds["mov"] = _remux(seeds["mp4"], root / "plain.mov", "mov")
    seeds["mkv"] = _remux(seeds["faststart"], root / "plain.mkv", "matroska")
    webm = root / "plain.webm"
    with av.open(str(webm), "w", format="webm") as container:
        video = container.add_stream("libvpx-vp9", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for index in range(36):
            frame = hostile._frame(index, (64, 48))
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    seeds["webm"] = webm
    return seeds


def _remux(source: Path, target: Path, fmt: str) -> Path:
    import av

    with av.open(str(source)) as src, av.open(str(target), "w", format=fmt) as dst:
        mapping = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)
    return target


def _sps_range(data: bytes) -> tuple[int, int] | None:
    from avajams._testing import hostile

    box = next((b for b in hostile.atoms(data) if b[2] == b"stsd"), None)
    if box is None:
        return None
    at = data.find(b"avcC", box[0], box[0] + box[1])
    return None if at < 0 else (at + 4, min(at + 40, box[0] + box[1]))


def mutate(data: bytes, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """One damaged copy of ``data``; returns it with a short description."""
    from avajams._testing import hostile

    n = len(data)
    if kind == "truncate":
        at = rng.randrange(n)
        return hostile.truncate(data, at), f"truncated at {at} of {n}"
    if kind == "flip":
        count = rng.choice((1, 4, 16, 64))
        bits = [rng.randrange(8 * n) for _ in range(count)]
        return hostile.flip_bits(data, bits), f"{count} bit flips"
    if kind == "zzuf":
        ratio = rng.choice((0.0001, 0.001, 0.01))
        bits = [rng.randrange(8 * n) for _ in range(max(1, round(8 * n * ratio)))]
        return hostile.flip_bits(data, bits), f"zzuf ratio {ratio}"
    if kind == "header":
        bits = [rng.randrange(8 * min(n, 4096)) for _ in range(rng.choice((1, 3, 10)))]
        return hostile.flip_bits(data, bits), "bit flips in the first 4 KB"
    boxes = [b for b in hostile.atoms(data) if b[2] != b"mdat"]
    if kind == "zero-box" and boxes:
        offset, size, name = rng.choice(boxes)
        return hostile.zero_range(data, offset + 8, size - 8), f"zeroed {name.decode()} box"
    if kind == "size-box" and boxes:
        offset, size, name = rng.choice(boxes)
        new = rng.choice((0, 1, 8, size - 1, size + 1, 4 * size, 0x7FFFFFFF, 0xFFFFFFFF))
        return hostile.resize_atom(data, offset, new), f"{name.decode()} box size {new}"
    if kind == "sps":
        span = _sps_range(data)
        if span is not None:
            bits = [8 * rng.randrange(*span) + rng.randrange(8) for _ in range(rng.choice((1, 3)))]
            return hostile.flip_bits(data, bits), "H.264 SPS/avcC edited"
    if kind == "insert":
        at = rng.randrange(n)
        junk = rng.randbytes(rng.choice((1, 7, 188, 4096)))
        return data[:at] + junk + data[at:], f"{len(junk)} bytes inserted at {at}"
    at = rng.randrange(n)
    length = rng.choice((16, 512, 8192))
    return hostile.zero_range(data, at, length), f"{length} bytes zeroed at {at}"


KINDS = ("truncate", "flip", "zzuf", "header", "zero-box", "size-box", "sps", "insert", "zero")


def make_damaged(seeds: dict[str, Path], folder: Path, count: int, seed: int) -> dict[Path, str]:
    """``count`` damaged files in ``folder`` plus the corpus-shaped specials; path -> story."""
    from avajams._testing import hostile

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    made: dict[Path, str] = {}
    names = sorted(seeds)
    for number in range(count):
        name = names[number % len(names)]
        data = seeds[name].read_bytes()
        stories = []
        for _ in range(rng.choice((1, 1, 2))):
            data, story = mutate(data, rng.choice(KINDS), rng)
            stories.append(story)
        path = folder / f"{number:03d}_{name}{seeds[name].suffix}"
        path.write_bytes(data)
        made[path] = f"{name}: " + ", ".join(stories)
    specials: dict[str, Callable[[Path], Path]] = {
        "late_streams.ts": lambda p: hostile.with_late_streams(seeds["ts"], p),
        "pts_spike.ts": lambda p: hostile.with_pts_spikes(seeds["ts"], p, at=(0.5,)),
        "pts_spikes.ts": lambda p: hostile.with_pts_spikes(seeds["ts"], p, at=(0.0, 0.6)),
        "zero_mdhd.mp4": lambda p: hostile.with_zeroed_atom(seeds["mp4"], p),
        "badutf8_title.mp4": lambda p: hostile.with_title(seeds["mp4"], p),
        "audio_late.mp4": lambda p: hostile.make_late_audio_clip(p),
        "animated.webp": lambda p: hostile.make_animated_webp(p),
    }
    for name, build in specials.items():
        made[build(folder / f"special_{name}")] = f"corpus case: {name}"
    return made


def _good(root: Path) -> tuple[Path, Path]:
    from avajams.testing import make_clip

    root.mkdir(parents=True, exist_ok=True)
    user = make_clip(root / "user.mp4", duration=2.0, fps=12, size=(64, 48), tag=5)
    music = make_clip(root / "music.mp4", duration=3.0, fps=12, size=(64, 48), tag=6, audio_hz=440)
    return user, music


def directory_cases(root: Path, good: Path, other: Path) -> list[tuple[str, Path, int]]:
    """(case, folder, good files in it): one good video plus one hostile entry each (a good
    video ``other`` under a hostile name counts as a second good file)."""
    cases: list[tuple[str, Path, int]] = []

    def case(name: str, build: Callable[[Path], object], goods: int = 1) -> None:
        folder = root / name
        folder.mkdir(parents=True)
        shutil.copy(good, folder / "good.mp4")
        try:
            build(folder)
        except (OSError, ValueError) as exc:
            print(f"  (skipped directory case {name}: {exc})", file=sys.stderr)
            return
        cases.append((name, folder, goods))

    case("fifo", lambda d: os.mkfifo(d / "x.mp4"))
    case("device link", lambda d: (d / "zero.mp4").symlink_to("/dev/zero"))
    case("urandom link", lambda d: (d / "random.mp4").symlink_to("/dev/urandom"))

    def loop(d: Path) -> None:
        (d / "a.mp4").symlink_to("b.mp4")
        (d / "b.mp4").symlink_to("a.mp4")

    case("symlink loop", loop)
    case("self link", lambda d: (d / "self.mp4").symlink_to("self.mp4"))
    case("dangling link", lambda d: (d / "gone.mp4").symlink_to("nowhere.mp4"))
    case("directory link loop", lambda d: (d / "sub").symlink_to(".", target_is_directory=True))
    case(
        "undecodable name",
        lambda d: Path(os.fsdecode(os.path.join(os.fsencode(d), b"bad\xff.mp4"))).write_bytes(
            good.read_bytes()
        ),
        1,
    )
    case("newline in name", lambda d: shutil.copy(other, d / "a\nb.mp4"), 2)
    case("dash name", lambda d: shutil.copy(other, d / "-rf.mp4"), 2)
    case("protocol name", lambda d: shutil.copy(other, d / "pipe:0.mp4"), 2)
    case("long name", lambda d: shutil.copy(other, d / ("x" * 250 + ".mp4")), 2)
    case("empty file", lambda d: (d / "empty.mp4").write_bytes(b""))
    case("text file", lambda d: (d / "notes.mp4").write_text("not a video\n" * 100))
    case("directory named .mp4", lambda d: (d / "folder.mp4").mkdir())
    case("unreadable file", lambda d: _unreadable(d / "secret.mp4", good))
    case("unreadable folder", lambda d: _unreadable_dir(d / "locked", good))
    case("hard link", lambda d: os.link(d / "good.mp4", d / "again.mp4"))
    case("still image", lambda d: _jpeg(d / "photo.mp4"))
    case("audio only", lambda d: _audio_only(d / "song.mp4"))
    case("m3u8 playlist", lambda d: (d / "list.ts").write_text("#EXTM3U\n#EXTINF:10,\n/dev/zero\n"))
    case("ffconcat", lambda d: (d / "cat.mp4").write_text("ffconcat version 1.0\nfile /dev/zero\n"))
    return cases


def _unreadable(path: Path, good: Path) -> None:
    shutil.copy(good, path)
    path.chmod(0)


def _unreadable_dir(path: Path, good: Path) -> None:
    path.mkdir()
    shutil.copy(good, path / "hidden.mp4")
    path.chmod(0)


def _jpeg(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, format="JPEG")


def _audio_only(path: Path) -> None:
    from avajams._testing.media import make_audio_only

    make_audio_only(path)


# -- running -----------------------------------------------------------------------------------


def _session_alive(sid: int) -> list[int]:
    """Processes still alive in session ``sid`` (Linux /proc)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def _limits() -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def execute(run: Run, *, timeout: float, env: dict[str, str], cwd: Path) -> Run:
    """Run one case in its own session and classify it."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "avajams", *run.argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limits,
        env=env,
        cwd=cwd,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        run.outcome = "hang"
    run.seconds = time.monotonic() - started
    run.code = process.returncode
    text = err.decode(errors="replace")
    run.stderr_tail = text[-600:]
    leftover = _session_alive(process.pid)
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if run.outcome:
        return run
    if leftover:
        run.outcome = "leaked process"
    else:
        run.outcome = classify(run, text, out.decode(errors="replace"))
    return run


def classify(run: Run, err: str, out: str) -> str:
    code = run.code
    if code is None or code < 0 or code not in (0, 1, 2, 70):
        return "crash"
    if code == 70 or "Traceback" in err or "internal error" in err:
        return "traceback"
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("avajams: error:")]
    stray = [line for line in lines if not line.startswith("avajams: ")]
    if stray or len(errors) > 1:
        return "traceback"  # not one line: a raw message leaked through
    if run.expect_added is not None:  # an index run: the good files must be in
        added = int(out.split(" added")[0]) if " added" in out else -1
        if code == 0:
            return "ok" if added >= run.expect_added else "traceback"
        if errors:
            return "typed error"
        if added < run.expect_added:
            return "traceback"
        return "typed error"
    if code == 0:
        if "--json" in run.argv:
            try:
                json.loads(out, parse_constant=_not_json)
            except ValueError:
                return "traceback"  # invalid JSON (NaN) counts as a broken result
        return "ok"
    return "typed error" if errors else "traceback"


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def write_config(path: Path, library: Path) -> Path:
    path.write_text(
        '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 32 }\n'
        f'[library]\ndirectory = "{library.as_posix()}"\n'
        "[mashup]\nmax_size = [96, 64]\n",
        encoding="utf-8",
    )
    return path


def plan_runs(work: Path, files: int, seed: int) -> list[Run]:
    """Build every input and list the runs."""
    seeds = make_seeds(work / "seeds")
    user, music = _good(work / "good")
    library = work / "library"
    config = write_config(work / "avajams.toml", library)
    damaged = make_damaged(seeds, work / "damaged", files, seed)
    runs: list[Run] = []
    base = ["--config", str(config), "-q"]
    runs.append(Run("setup", "library", ["index", *base, str(user), str(music)], expect_added=2))
    for path, story in damaged.items():
        runs.append(Run("damaged file", f"match: {story}", ["match", *base, "--json", str(path)]))
        out = work / "renders" / f"{path.stem}.mp4"
        runs.append(
            Run(
                "damaged file",
                f"mashup music: {story}",
                ["mashup", *base, str(user), "--music", str(path), "-o", str(out)],
            )
        )
    (work / "renders").mkdir()
    other = write_config(work / "other.toml", work / "other-library")
    runs.append(
        Run(
            "damaged folder",
            "index the damaged folder",
            ["index", "--config", str(other), "-q", str(work / "damaged")],
            expect_added=0,
        )
    )
    for name, folder, goods in directory_cases(work / "dirs", user, music):
        conf = write_config(work / f"dir-{len(runs)}.toml", work / f"dir-lib-{len(runs)}")
        runs.append(
            Run("hostile folder", name, ["index", "--config", str(conf), "-q", str(folder)], goods)
        )
    runs += path_cases(work, base, user, music, config)
    return runs


def path_cases(work: Path, base: list[str], user: Path, music: Path, config: Path) -> list[Run]:
    paths = work / "paths"
    paths.mkdir()
    fifo = paths / "fifo.mp4"
    os.mkfifo(fifo)
    (paths / "dir.mp4").mkdir()
    shutil.copy(user, paths / "pipe:0.mp4")
    (paths / "config-fifo.toml").parent.mkdir(exist_ok=True)
    os.mkfifo(paths / "config-fifo.toml")
    (paths / "latin1.toml").write_bytes(b"# caf\xe9\n[library]\n")
    (paths / "a-file").write_text("x")
    readonly = paths / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    cases: list[tuple[str, list[str]]] = [
        ("match /dev/zero", ["match", *base, "/dev/zero"]),
        ("match /dev/urandom", ["match", *base, "/dev/urandom"]),
        ("match /dev/null", ["match", *base, "/dev/null"]),
        ("match a FIFO", ["match", *base, str(fifo)]),
        ("match a directory", ["match", *base, str(paths / "dir.mp4")]),
        ("match a missing file", ["match", *base, str(paths / "missing.mp4")]),
        ("match pipe:0.mp4 (relative)", ["match", *base, "pipe:0.mp4"]),
        ("match a control-character path", ["match", *base, "a\x01b.mp4"]),
        (
            "mashup user FIFO",
            ["mashup", *base, str(fifo), "--music", str(music), "-o", str(paths / "o1.mp4")],
        ),
        (
            "mashup music /dev/zero",
            ["mashup", *base, str(user), "--music", "/dev/zero", "-o", str(paths / "o2.mp4")],
        ),
        (
            "mashup -o /dev/full",
            ["mashup", *base, str(user), "--music", str(music), "-o", "/dev/full"],
        ),
        (
            "mashup -o a directory",
            ["mashup", *base, str(user), "--music", str(music), "-o", str(paths / "dir.mp4")],
        ),
        (
            "mashup -o missing folder",
            ["mashup", *base, str(user), "--music", str(music), "-o", str(paths / "no" / "o.mp4")],
        ),
        (
            "mashup -o the music",
            ["mashup", *base, str(user), "--music", str(music), "-o", str(music)],
        ),
        (
            "mashup -o under a file",
            [
                "mashup",
                *base,
                str(user),
                "--music",
                str(music),
                "-o",
                str(paths / "a-file" / "o.mp4"),
            ],
        ),
        (
            "mashup -o read-only folder",
            ["mashup", *base, str(user), "--music", str(music), "-o", str(readonly / "o.mp4")],
        ),
        ("--config a FIFO", ["match", "--config", str(paths / "config-fifo.toml"), str(user)]),
        ("--config /dev/zero", ["match", "--config", "/dev/zero", str(user)]),
        ("--config not UTF-8", ["match", "--config", str(paths / "latin1.toml"), str(user)]),
        (
            "--library a file",
            ["index", "--config", str(config), "-q", "--library", str(paths / "a-file"), str(user)],
        ),
        (
            "--library /dev/null",
            ["match", "--config", str(config), "-q", "--library", "/dev/null", str(user)],
        ),
        (
            "--library read-only folder",
            ["index", "--config", str(config), "-q", "--library", str(readonly / "lib"), str(user)],
        ),
    ]
    return [Run("hostile path", name, argv) for name, argv in cases]


def campaign(
    files: int, seed: int, timeout: float, jobs: int, pythonpath: str | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="avajams-campaign-") as scratch:
        work = Path(scratch)
        print(f"making inputs in {work} ...", file=sys.stderr)
        runs = plan_runs(work, files, seed)
        env = {**os.environ, "AVAJAMS_HOME": str(work / "home")}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        setup, rest = runs[0], runs[1:]
        execute(setup, timeout=timeout, env=env, cwd=work / "paths")
        if setup.outcome != "ok":
            raise SystemExit(f"could not build the campaign's library: {setup.stderr_tail}")
        print(f"{len(rest)} runs, {jobs} at a time ...", file=sys.stderr)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = [
                pool.submit(execute, run, timeout=timeout, env=env, cwd=work / "paths")
                for run in rest
            ]
            for number, future in enumerate(concurrent.futures.as_completed(futures), 1):
                run = future.result()
                if run.outcome in BAD:
                    print(f"  {run.outcome}: {run.group}: {run.case}", file=sys.stderr)
                if number % 50 == 0:
                    print(f"  {number}/{len(rest)} done", file=sys.stderr)
        with contextlib.suppress(OSError):
            (work / "paths" / "readonly").chmod(0o755)
            for locked in (work / "dirs").rglob("*"):
                if locked.is_dir() and not locked.is_symlink():
                    locked.chmod(0o755)
        return report(rest, time.monotonic() - started, files, seed, pythonpath)


def report(
    runs: Sequence[Run], seconds: float, files: int, seed: int, pythonpath: str | None
) -> dict[str, Any]:
    groups: dict[str, Counter[str]] = {}
    for run in runs:
        groups.setdefault(run.group, Counter())[run.outcome] += 1
    table = [
        {"inputs": group, "tried": sum(c.values()), **{col: c.get(col, 0) for col in COLUMNS}}
        for group, c in groups.items()
    ]
    total = Counter(run.outcome for run in runs)
    table.append({"inputs": "total", "tried": len(runs), **{c: total.get(c, 0) for c in COLUMNS}})
    return {
        "files": files,
        "seed": seed,
        "pythonpath": pythonpath,
        "seconds": round(seconds, 1),
        "slowest_run_seconds": round(max((r.seconds for r in runs), default=0.0), 2),
        "table": table,
        "failures": [asdict(r) for r in runs if r.outcome in BAD],
    }


def markdown(result: dict[str, Any]) -> str:
    header = "| inputs | tried | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for row in result["table"]:
        cells = [str(row["inputs"]), str(row["tried"]), *(str(row[c]) for c in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hostile_campaign", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--files", type=int, default=320, help="damaged files to make (default 320)"
    )
    parser.add_argument("--seed", type=int, default=11, help="seed of the mutations (default 11)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds before a run is a hang"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--pythonpath", help="run the avajams found here instead (a comparison)")
    parser.add_argument("--json", type=Path, help="write the table and every failure here")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    args = parser.parse_args(argv)
    if not hasattr(os, "mkfifo") or not Path("/proc").is_dir():
        parser.error("the campaign needs Linux (FIFOs and /proc)")
    result = campaign(args.files, args.seed, args.timeout, args.jobs, args.pythonpath)
    text = markdown(result)
    print(text)
    print(f"{result['seconds']} s; slowest run {result['slowest_run_seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    bad = sum(result["table"][-1][c] for c in BAD)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
