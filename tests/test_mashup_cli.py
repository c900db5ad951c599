"""``avajams mashup``: dry-run plans, renders and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from avajams.cli import main
from avajams.mashup import CutPlan, Mashup
from avajams.testing import make_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli-media")
    return {
        "user": make_clip(d / "me.mp4", tag=1, fps=24, duration=2.0, size=(96, 64)),
        "music": make_clip(d / "mv.mp4", tag=2, fps=25, duration=3.0, size=(128, 72), audio_hz=500),
        "silent": make_clip(d / "silent.mp4", tag=3, fps=25, duration=1.0, size=(96, 64)),
    }


def test_dry_run_prints_the_plan(
    clips: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["mashup", str(clips["user"]), "--music", str(clips["music"]), "--dry-run"]
    code = main([*argv, "--segment-seconds", "0.8", "--user-end", "hold", "--start-with", "music"])
    assert code == 0
    plan = CutPlan.from_json(capsys.readouterr().out)
    expected = Mashup(0.8, user_end="hold", start_with="music").plan(clips["user"], clips["music"])
    assert plan == expected
    assert list(tmp_path.iterdir()) == []

    assert main([*argv, "--cut-times", "0.5,2", "--max-duration", "2.5"]) == 0
    plan = CutPlan.from_json(capsys.readouterr().out)
    assert plan.cuts == (12, 50)
    assert plan.frames == 62


def test_config_file_sets_the_plan_and_flags_override_it(
    clips: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "avajams.toml"
    config.write_text('[mashup]\nsegment_seconds = 0.5\nstart_with = "music"\n')
    argv = ["mashup", str(clips["user"]), "--music", str(clips["music"]), "--dry-run"]

    assert main([*argv, "--config", str(config)]) == 0
    plan = CutPlan.from_json(capsys.readouterr().out)
    assert plan == Mashup(0.5, start_with="music").plan(clips["user"], clips["music"])

    assert main([*argv, "--config", str(config), "--segment-seconds", "1"]) == 0
    plan = CutPlan.from_json(capsys.readouterr().out)
    assert plan == Mashup(1.0, start_with="music").plan(clips["user"], clips["music"])


def test_render(clips: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "mashup.mp4"
    argv = ["mashup", str(clips["user"]), "--music", str(clips["music"]), "-o", str(out), "-q"]
    code = main([*argv, "--fit", "crop", "--size", "64x64", "--crossfade-ms", "80"])
    assert code == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    assert "64x64 at 25 fps" in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--music", "{silent}", "-o", "{out}"], "has no audio track"),
        (["--music", "{music}", "-o", "{tmp}/nowhere/o.mp4"], "does not exist"),
        (["--music", "{music}", "-o", "{tmp}/o.avi"], "must end in one of"),
        (["--music", "{tmp}/missing.mp4", "-o", "{out}"], "missing.mp4"),
    ],
)
def test_errors_are_one_line(
    clips: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    names = {k: str(v) for k, v in clips.items()} | {
        "out": str(tmp_path / "o.mp4"),
        "tmp": str(tmp_path),
    }
    argv = ["mashup", str(clips["user"]), *(e.format(**names) for e in extra)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("avajams: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o.mp4").exists()


def test_usage_errors_exit_2(clips: dict[str, Path]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["mashup", str(clips["user"]), "--size", "big"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["mashup", str(clips["user"]), "--fit", "stretch"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:  # no -o: a usage mistake too (was exit 1)
        main(["mashup", str(clips["user"]), "--music", str(clips["music"])])
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--segment-seconds", "0"),
        ("--segment-seconds", "nan"),
        ("--fps", "0"),
        ("--max-duration", "0"),
        ("--crossfade-ms", "-5"),
    ],
)
def test_out_of_range_options_are_one_line_errors(
    clips: dict[str, Path], capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    argv = ["mashup", str(clips["user"]), "--music", str(clips["music"]), "--dry-run"]
    assert main([*argv, flag, value]) == 1
    err = capsys.readouterr().err
    assert err.startswith("avajams: error: ")
    assert flag in err
    assert "Traceback" not in err


@pytest.mark.parametrize("max_size", ["[1, 1]", "[0, 0]"])
def test_degenerate_max_size_is_a_config_error(
    clips: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path, max_size: str
) -> None:
    config = tmp_path / "avajams.toml"
    config.write_text(f"[mashup]\nmax_size = {max_size}\n")
    out = tmp_path / "out.mp4"
    argv = ["mashup", str(clips["user"]), "--music", str(clips["music"]), "-o", str(out)]
    assert main([*argv, "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("avajams: error: max_size")
    assert not out.exists()
