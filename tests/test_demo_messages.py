"""``avajams demo`` says each step before it runs, only when it does work (issue 10 item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avajams.cli import main


@pytest.mark.slow
def test_demo_messages_in_order_and_honest_on_a_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fake.toml"
    config.write_text(
        '[embedder]\nkind = "avajams.testing:FakeEmbedder"\noptions = { dim = 32 }\n'
        "[mashup]\nmax_size = [160, 120]\n",
        encoding="utf-8",
    )
    argv = ["demo", "--dir", str(tmp_path / "demo"), "--videos", "2", "--config", str(config)]
    assert main([*argv, "-q"]) == 0
    first = capsys.readouterr().out.splitlines()
    media = tmp_path / "demo" / "music-videos"
    assert first[0] == f"- writing 2 generated music video(s) into {media}"
    steps = [line for line in first if line.startswith("- ")]
    assert not any("model" in line for line in steps)  # the fake embedder builds nothing
    table = first.index("matches for my-clip.mp4:")
    rendering = next(i for i, line in enumerate(first) if line.startswith("- rendering"))
    assert table < rendering  # the answer is shown before the long render
    assert "the best match is right." in first[table:rendering]

    assert main([*argv, "-q"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0] == f"- using the 2 generated music videos already in {media}"
    assert not any(line.startswith("- writing") for line in again)
    assert any(line.startswith("- indexed: 0 added, 0 updated, 2 unchanged") for line in again)


def test_model_step_is_said_only_when_the_model_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avajams.config import PipelineConfig
    from avajams.demo import _model_missing
    from avajams.embedding import model_dir

    assert model_dir().is_relative_to(Path(__file__).resolve().parents[1])  # the test home
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path))
    assert _model_missing(PipelineConfig())
    (model_dir() / "manifest.json").parent.mkdir(parents=True)
    (model_dir() / "manifest.json").write_text("{}", encoding="utf-8")
    assert not _model_missing(PipelineConfig())
    fake = PipelineConfig.from_mapping({"embedder": {"kind": "avajams.testing:FakeEmbedder"}})
    monkeypatch.setenv("AVAJAMS_HOME", str(tmp_path / "empty"))
    assert not _model_missing(fake)
