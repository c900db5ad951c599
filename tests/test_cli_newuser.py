"""What a new user tripped on (issue 10): each message and exit code, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from avajams.cli import main


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


@pytest.mark.parametrize("content", [[], ["notes.txt", "cover.jpg"]], ids=["empty", "no-videos"])
def test_index_without_videos_fails_and_creates_no_library(
    content: list[str], tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "music videos"
    folder.mkdir()
    for name in content:
        (folder / name).write_text("not a video", encoding="utf-8")
    code, out, err = run(capsys, "index", str(folder), "--config", str(config))
    assert code == 1
    assert out == ""
    assert err.startswith(f"avajams: error: no videos found under {folder} (looked for: ")
    assert ".mp4" in err
    assert ".mov" in err
    assert not (tmp_path / "library").exists()


def test_remove_missing_still_prunes_a_folder_emptied_of_videos(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from avajams.testing import make_clip

    folder = tmp_path / "music videos"
    folder.mkdir()
    clip = make_clip(folder / "a.mp4", duration=1.0)
    assert run(capsys, "index", str(folder), "--config", str(config))[0] == 0
    clip.unlink()
    code, out, err = run(capsys, "index", str(folder), "--remove-missing", "--config", str(config))
    assert code == 0, err
    assert "1 removed" in out


@pytest.mark.parametrize("command", [["match", "me.mp4"], ["info"], ["info", "--json"]])
def test_library_that_is_a_file_is_named_as_such(
    command: list[str], tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from avajams.testing import make_clip

    make_clip(tmp_path / "me.mp4", duration=1.0)
    not_a_library = tmp_path / "notes.txt"
    not_a_library.write_text("hello", encoding="utf-8")
    argv = [tmp_path / a if a.endswith(".mp4") else a for a in command]
    code, out, err = run(
        capsys, *map(str, argv), "--library", str(not_a_library), "--config", str(config)
    )
    assert code == 1
    assert out == ""
    assert err == (
        f"avajams: error: {not_a_library} is a file, not a library directory; "
        "pass the library's folder (the one holding catalogue.sqlite)\n"
    )


def test_catalogue_file_given_as_library_points_at_its_folder(tmp_path: Path) -> None:
    from avajams.errors import LibraryError
    from avajams.index import VideoIndex

    VideoIndex.create(tmp_path / "lib", dim=4, embedder_id="x").close()
    with pytest.raises(LibraryError, match=r"pass the folder that holds it, .*lib$"):
        VideoIndex.open(tmp_path / "lib" / "catalogue.sqlite")


def test_match_json_paths_are_absolute_even_when_given_relative(
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from avajams.testing import make_clip

    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "mv.mp4", duration=1.0)
    common = ["--library", "rel-lib", "--config", str(config)]
    assert run(capsys, "index", "mv.mp4", *common)[0] == 0
    code, out, err = run(capsys, "match", "mv.mp4", "--json", "--report", "r.png", *common)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["library"] == str(tmp_path / "rel-lib")
    assert doc["query"] == str(tmp_path / "mv.mp4")
    assert doc["report"] == str(tmp_path / "r.png")
    assert doc["matches"][0]["path"] == str(tmp_path / "mv.mp4")
