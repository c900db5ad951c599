"""The fault-injection campaign's own logic: how a run is classified and reported."""

from __future__ import annotations

import random

import pytest

from benchmarks import hostile_campaign as campaign
from benchmarks.hostile_campaign import Run, classify


def _run(argv: list[str], code: int | None, expect_added: int | None = None) -> Run:
    run = Run("g", "c", argv, expect_added=expect_added)
    run.code = code
    return run


@pytest.mark.parametrize(
    ("code", "err", "out", "argv", "expected"),
    [
        (0, "", "{}", ["match", "--json", "f"], "ok"),
        (0, "", '{"score": NaN}', ["match", "--json", "f"], "traceback"),  # invalid JSON
        (0, "avajams: warning: truncated\n", "", ["match", "f"], "ok"),
        (1, "avajams: error: f is not a video\n", "", ["match", "f"], "typed error"),
        (1, "avajams: error: one\navajams: error: two\n", "", ["match", "f"], "traceback"),
        (1, "Traceback (most recent call last):\n  ...\nValueError\n", "", ["m"], "traceback"),
        (1, "avajams: error: x\nMoviePy error: ffmpeg said\n", "", ["mashup"], "traceback"),
        (70, "avajams: internal error: KeyError: 'x' — this is a bug\n", "", ["m"], "traceback"),
        (-11, "", "", ["match", "f"], "crash"),
        (134, "", "", ["match", "f"], "crash"),
    ],
)
def test_classify(code: int, err: str, out: str, argv: list[str], expected: str) -> None:
    assert classify(_run(argv, code), err, out) == expected


@pytest.mark.parametrize(
    ("code", "err", "out", "expected"),
    [
        (0, "", "2 added, 0 updated, 0 unchanged, 0 failed (4 frames in 0.1 s) -> lib", "ok"),
        (1, "avajams: skipped d/x.mp4: it is a FIFO\n", "2 added, 0 updated, 0 u", "typed error"),
        (1, "avajams: skipped d/x.mp4: it is a FIFO\n", "1 added, 0 updated, 0 u", "traceback"),
        (0, "", "1 added, 0 updated, 0 unchanged, 0 failed", "traceback"),  # lost a good file
        (1, "avajams: error: the library is read-only\n", "", "typed error"),
    ],
)
def test_classify_index_runs(code: int, err: str, out: str, expected: str) -> None:
    assert classify(_run(["index", "d"], code, expect_added=2), err, out) == expected


def test_mutations_are_seeded_and_change_the_bytes() -> None:
    data = bytes(range(256)) * 64
    for kind in campaign.KINDS:
        a, story_a = campaign.mutate(data, kind, random.Random(3))
        b, story_b = campaign.mutate(data, kind, random.Random(3))
        assert (a, story_a) == (b, story_b)
        assert a != data or kind in ("zero-box", "size-box", "sps"), kind  # no boxes here


def test_report_and_markdown_add_up() -> None:
    runs = [_run(["m"], 0), _run(["m"], 1), _run(["m"], None)]
    for run, outcome in zip(runs, ["ok", "typed error", "hang"], strict=True):
        run.outcome = outcome
    result = campaign.report(runs, 1.0, 3, 11, None)
    assert result["table"][-1] == {
        "inputs": "total",
        "tried": 3,
        "ok": 1,
        "typed error": 1,
        "traceback": 0,
        "crash": 0,
        "hang": 1,
        "leaked process": 0,
    }
    assert [f["outcome"] for f in result["failures"]] == ["hang"]
    table = campaign.markdown(result)
    assert table.splitlines()[0].startswith("| inputs | tried | ok | typed error |")
    assert "| total | 3 | 1 | 1 | 0 | 0 | 1 | 0 |" in table
