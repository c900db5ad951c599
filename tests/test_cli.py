"""The ``avajams`` command end to end: index, match (--json, --report), mashup, info, errors.

The embedder is FakeEmbedder, chosen through ``--config`` with an import string, exactly as a
user would plug in their own; tests/test_cli_model.py repeats the journey with Inception v3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import av
import pytest
from PIL import Image

from avajams.cli import build_parser, main
from avajams.photo import make_excerpt, make_photo_video

PHOTOS = [("chelsea", "coffee"), ("astronaut", "rocket"), ("motorcycle", "hubble")]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-media")
    (root / "music videos").mkdir()
    for i, photos in enumerate(PHOTOS):
        make_photo_video(
            root / "music videos" / f"mv{i}.mp4",
            photos=photos,
            duration=4.0,
            fps=12,
            size=(160, 120),
            seed=20 + i,
        )
    make_excerpt(
        root / "music videos" / "mv2.mp4",
        root / "me.mp4",
        start=0.5,
        duration=3.0,
        zoom=1.25,
        size=(128, 96),
        fps=15,
    )
    return root


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "avajams.toml"
    path.write_text(
        '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 32 }\n'
        '[library]\ndirectory = "library"\n'
        "[mashup]\nmax_size = [160, 120]\n",
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_takes_the_common_options() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(subparsers, argparse._SubParsersAction)
    names = set(subparsers.choices)
    assert {"index", "match", "mashup", "model", "demo", "info"} <= names
    for name, sub in subparsers.choices.items():
        options = {o for a in sub._actions for o in a.option_strings}
        assert {"--config", "--quiet", "--debug"} <= options, name


@pytest.mark.parametrize(
    "argv",
    [[], ["match"], ["index"], ["match", "x.mp4", "-k", "many"], ["frobnicate"], ["info", "--x"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_index_match_mashup_end_to_end(
    media: Path, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "index", str(media / "music videos"), "--config", str(config))
    assert code == 0, err
    assert "3 added" in out
    # standard error is not a terminal: no bars, but a plain line per video (and frame counts
    # every 10 s) so a log shows progress; the labeller's model may be built on first use
    assert "\r" not in err
    one_off = ("avajams: frames ", "avajams: warning: building the EfficientNet-Lite0 model")
    assert [line for line in err.splitlines() if not line.startswith(one_off)] == [
        "avajams: videos 1/3",
        "avajams: videos 2/3",
        "avajams: videos 3/3",
    ]

    code, out, err = run(
        capsys, "match", str(media / "me.mp4"), "--json", "-k", "2", "--config", str(config)
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == 1
    assert doc["query"] == str((media / "me.mp4").resolve())
    assert doc["library"] == str(tmp_path / "library")
    assert len(doc["matches"]) == 2
    first = doc["matches"][0]
    assert Path(first["path"]).name == "mv2.mp4"
    assert first["rank"] == 1
    assert {"key", "path", "score", "signature_score", "metadata", "aligned"} <= first.keys()
    assert first["score"] >= doc["matches"][1]["score"]
    assert [p["query_time"] for p in first["aligned"]] == [0.0, 1.0, 2.0]
    for pair in first["aligned"]:
        assert set(pair) == {"query_time", "music_time", "similarity"}
        assert 0.0 <= pair["music_time"] < 4.0

    code, out, err = run(capsys, "match", str(media / "me.mp4"), "--config", str(config))
    assert code == 0
    assert out.splitlines()[1].split()[-1] == "mv2.mp4"  # the table, best first

    out_mp4 = tmp_path / "out.mp4"
    code, out, err = run(
        capsys, "mashup", str(media / "me.mp4"), "-o", str(out_mp4), "--config", str(config)
    )
    assert code == 0, err
    assert "mv2.mp4" in out  # says which music video it picked
    with av.open(str(out_mp4)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264"
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
        assert container.duration / 1e6 == pytest.approx(4.0, abs=0.15)

    code, out, err = run(capsys, "info", "--json", "--config", str(config))
    assert code == 0
    info = json.loads(out)
    assert info["library"]["videos"] == 3
    assert info["library"]["embedder_id"] == "fake-32-0"


def test_match_report_picture(
    media: Path, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(media / "music videos"), "--config", str(config)]) == 0
    capsys.readouterr()
    png = tmp_path / "match.png"
    code, out, err = run(
        capsys, "match", str(media / "me.mp4"), "-k", "3", "--report", str(png), "--config",
        str(config), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["report"] == str(png.resolve())
    with Image.open(png) as image:
        assert image.format == "PNG"
        from avajams.report import report_size

        # labels are on by default: the header also says what the query shows
        assert image.size == report_size(3, 4, query_labels=True)


def test_runtime_errors_exit_1_with_one_line(
    media: Path, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "match", str(media / "me.mp4"), "--config", str(config))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("avajams: error:")
    assert str(tmp_path / "library") in lines[0]
    assert "avajams index" in lines[0]

    code, _out, err = run(
        capsys, "match", str(tmp_path / "nope.mp4"), "--config", str(tmp_path / "x.toml")
    )
    assert code == 1
    assert "x.toml" in err

    code, _, err = run(capsys, "match", str(media / "me.mp4"), "--config", str(config), "--debug")
    assert code == 1
    assert "Traceback" in err


def test_index_reports_failed_files_and_exits_1(
    media: Path, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    code, out, err = run(
        capsys, "index", str(media / "music videos" / "mv0.mp4"), str(bad), "--config", str(config)
    )
    assert code == 1
    assert "1 added" in out
    assert "1 failed" in out
    assert f"skipped {bad}" in err


def test_progress_bars_only_on_a_terminal(
    media: Path, config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _out, err = run(
        capsys, "index", str(media / "music videos" / "mv0.mp4"), "--config", str(config)
    )
    assert code == 0
    assert "videos" in err  # the tqdm bar
    code, _, err = run(
        capsys,
        "index",
        str(media / "music videos" / "mv1.mp4"),
        "--config",
        str(config),
        "--quiet",
    )
    assert code == 0
    assert err == ""


def test_console_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "avajams", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("index", "match", "mashup", "demo", "info", "model"):
        assert command in result.stdout
