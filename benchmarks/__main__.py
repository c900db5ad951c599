"""``python -m benchmarks [NAME...] [--quick] [--json out.json] [--media-dir DIR]``."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import BENCHMARKS, run_benchmark, select
from benchmarks._common import format_markdown, format_result, log, machine_info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run avajams benchmarks; every ratio compares cases measured in this run.",
        epilog="benchmarks: " + "; ".join(f"{b.name} ({b.summary})" for b in BENCHMARKS.values()),
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short media and few repeats (< 10 min for all)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.add_argument(
        "--media-dir",
        type=Path,
        metavar="DIR",
        help="keep generated media here and reuse it next time (default: a temporary directory)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="also write the results as Markdown tables (what benchmarks/README.md shows)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="run nothing: print (or --markdown) the results of an earlier --json run",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _jsonable(value: Any) -> Any:
    """NaN/inf become null (strict JSON); numpy scalars and paths become plain values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return str(value)


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for b in BENCHMARKS.values():
            print(f"{b.name:16} {b.summary}")
        return 0
    if args.from_json:
        earlier = json.loads(args.from_json.read_text())
        if args.markdown:
            args.markdown.write_text(format_markdown(earlier))
        for name, result in earlier["benchmarks"].items():
            print(format_result(name, result) + "\n")
        return 0
    try:
        benches = select(args.names)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2

    from benchmarks import _media

    _media.set_cache_dir(args.media_dir)
    report: dict[str, Any] = {
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(),
        "benchmarks": {},
    }
    t0 = time.perf_counter()
    failed = []
    for bench in benches:
        log(f"running {bench.name}{' (quick)' if args.quick else ''}")
        result = run_benchmark(bench, args.quick)
        report["benchmarks"][bench.name] = result
        if "error" in result:
            failed.append(bench.name)
            print(result.get("traceback", ""), file=sys.stderr)
        print(format_result(bench.name, result), flush=True)
        print(flush=True)
        if args.json:  # after every benchmark, so a late failure keeps the earlier figures
            report["total_wall_s"] = round(time.perf_counter() - t0, 2)
            write_json(args.json, report)
    report["total_wall_s"] = round(time.perf_counter() - t0, 2)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        write_json(args.json, report)
        log(f"wrote {args.json}")
    if args.markdown:
        args.markdown.write_text(format_markdown(_jsonable(report)))
        log(f"wrote {args.markdown}")
    log(f"total {report['total_wall_s']} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
