"""Options shared by every command work before the command name as well as after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from avajams.cli import build_parser, main


@pytest.mark.parametrize("before", [True, False])
def test_config_is_honoured_before_or_after_the_command(
    before: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "avajams.toml"
    config.write_text(f'[library]\ndirectory = "{tmp_path / "lib"}"\n')
    argv = ["--config", str(config), "info"] if before else ["info", "--config", str(config)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert str(config) in out
    assert str(tmp_path / "lib") in out


@pytest.mark.parametrize(
    ("argv", "quiet", "debug"),
    [
        (["-q", "--debug", "info"], True, True),
        (["info", "-q"], True, False),
        (["--debug", "info"], False, True),
        (["info"], False, False),
    ],
)
def test_flags_before_the_command_are_not_reset(argv: list[str], quiet: bool, debug: bool) -> None:
    args = build_parser().parse_args(argv)
    assert args.quiet is quiet
    assert args.debug is debug
    assert args.config is None
