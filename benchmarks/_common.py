"""Timing, ratio and reporting helpers shared by the benchmarks.

Every benchmark returns a plain JSON-able dict. The ones in this package use these keys (the
printer shows any dict, and falls back to flattened ``key: value`` lines for the others):

- ``description``: one line on what was measured;
- ``params``: the inputs (media, frame counts, settings);
- ``rows``: a list of flat dicts, one per measured case (printed as a table);
- ``ratios``: name -> number, each computed from rows measured in the same run;
- ``targets``: list of ``{"target", "value", "goal", "met"}``;
- ``notes``: free text lines.
"""

from __future__ import annotations

import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds (this process plus waited-for children) of one call."""

    wall: float
    cpu: float

    @property
    def cpu_utilisation(self) -> float:
        """Average number of cores busy during the call."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], T]) -> tuple[Timing, T]:
    """Run ``fn`` once; return its :class:`Timing` and its result."""
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    return Timing(wall, cpu_seconds() - cpu0), result


def interleaved(cases: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, list[Timing]]:
    """Time every case ``repeats`` times, round-robin (A B C A B C ...).

    Interleaving spreads a noisy neighbour's load over all cases instead of one of them.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    out: dict[str, list[Timing]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            timing, _ = timed(fn)
            out[name].append(timing)
    return out


def best(timings: Sequence[Timing]) -> Timing:
    """The fastest run: on a shared machine noise only ever adds time."""
    if not timings:
        raise ValueError("no timings")
    return min(timings, key=lambda t: t.wall)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when the denominator is zero or either is NaN."""
    if denominator == 0 or math.isnan(numerator) or math.isnan(denominator):
        return math.nan
    return numerator / denominator


def speedup(baseline_seconds: float, candidate_seconds: float) -> float:
    """How many times faster the candidate is than the baseline (> 1 means faster)."""
    return ratio(baseline_seconds, candidate_seconds)


def target(name: str, value: float, goal: str) -> dict[str, Any]:
    """A target row; ``goal`` is ``">= X"`` or ``"<= X"``."""
    op, _, threshold_text = goal.partition(" ")
    threshold = float(threshold_text)
    if op == ">=":
        met = value >= threshold
    elif op == "<=":
        met = value <= threshold
    else:
        raise ValueError(f"goal must start with '>=' or '<=', got {goal!r}")
    return {"target": name, "value": round_sig(value), "goal": goal, "met": bool(met)}


def round_sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (for readable JSON)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --- machine description ----------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")
                    return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """What the figures came from: CPU, cores, load, library versions."""
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            name: _version(name)
            for name in ("numpy", "onnxruntime", "onnx", "av", "imageio-ffmpeg", "hnswlib")
        },
        "env": {
            k: os.environ[k]
            for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
            if k in os.environ
        },
        "git_commit": _git_commit(),
    }
    try:
        import av

        info["versions"]["ffmpeg (PyAV)"] = str(getattr(av, "ffmpeg_version_info", ""))
    except ImportError:
        pass
    try:
        import imageio_ffmpeg

        info["versions"]["ffmpeg (imageio-ffmpeg)"] = imageio_ffmpeg.get_ffmpeg_version()
    except ImportError:
        pass
    return info


# --- printing ---------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{round_sig(value, 4):g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows (flat dicts) as an aligned text table; columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    cells = [[_fmt(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) for r in cells]
    return "\n".join(lines)


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts/lists as ``(dotted.key, leaf)`` pairs."""
    if isinstance(data, Mapping):
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(data, list) and data and all(isinstance(x, Mapping) for x in data):
        out = []
        for i, value in enumerate(data):
            out += flatten(value, f"{prefix}[{i}]")
        return out
    return [(prefix, data)]


def format_result(name: str, result: Mapping[str, Any]) -> str:
    """A benchmark's result as readable text."""
    lines = [f"== {name} " + "=" * max(0, 70 - len(name))]
    known = {
        "description",
        "params",
        "rows",
        "ratios",
        "targets",
        "notes",
        "wall_s",
        "error",
        "traceback",
    }
    if "description" in result:
        lines.append(str(result["description"]))
    if "error" in result:
        lines.append(f"FAILED: {result['error']}")
    if result.get("params"):
        lines.append("params: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result["params"].items()))
    if result.get("rows"):
        lines.append(format_table(result["rows"]))
    if result.get("ratios"):
        lines.append("ratios (same run):")
        lines += [f"  {k}: {_fmt(v)}" for k, v in result["ratios"].items()]
    if result.get("targets"):
        lines.append("targets:")
        for t in result["targets"]:
            verdict = "met" if t["met"] else "MISSED"
            lines.append(f"  [{verdict}] {t['target']}: {_fmt(t['value'])} (goal {t['goal']})")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    extra = {k: v for k, v in result.items() if k not in known}
    for key, value in flatten(extra):
        lines.append(f"  {key}: {_fmt(value)}")
    if "wall_s" in result:
        lines.append(f"(benchmark took {_fmt(result['wall_s'])} s)")
    return "\n".join(lines)


def log(message: str) -> None:
    """Progress line on standard error (standard output carries the report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _md_cell(value: Any) -> str:
    return _fmt(value).replace("|", "\\|")


def format_markdown(report: Mapping[str, Any]) -> str:
    """A whole run (the JSON report) as Markdown: machine, then each benchmark's tables."""
    machine = report.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v)
    lines = [
        f"Run of {report.get('started', '?')} ({'quick' if report.get('quick') else 'full'}"
        f" mode, {_fmt(report.get('total_wall_s', math.nan))} s) on "
        f"{machine.get('cpu_model', '?')}, {machine.get('usable_cpus', '?')} cores "
        f"({', '.join(machine.get('cpu_flags', []))}), load average at start "
        f"{machine.get('load_average', '?')}; {versions}.",
        "",
    ]
    for name, result in report.get("benchmarks", {}).items():
        lines.append(f"### {name}")
        lines.append("")
        if "error" in result:
            lines += [f"Failed: `{result['error']}`", ""]
            continue
        if result.get("description"):
            lines += [str(result["description"]), ""]
        rows = result.get("rows") or []
        if rows:
            columns: list[str] = []
            for row in rows:
                columns += [c for c in row if c not in columns]
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("|" + "---|" * len(columns))
            for row in rows:
                lines.append("| " + " | ".join(_md_cell(row.get(c, "")) for c in columns) + " |")
            lines.append("")
        extras = {k: v for k, v in result.items() if k in ("ratios",)}
        for key, value in flatten(extras):
            lines.append(f"- {key.removeprefix('ratios.')}: {_md_cell(value)}")
        for t in result.get("targets", []):
            verdict = "met" if t["met"] else "**missed**"
            lines.append(f"- target {t['target']} {t['goal']}: {_md_cell(t['value'])} ({verdict})")
        lines.append("")
    return "\n".join(lines)
