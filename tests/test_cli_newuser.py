"""What a new user tripped on (issue 10): each message and exit code, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from avajams.cli import main
from avajams.errors import OutputPathError


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mashup", "me.mp4"], "avajams mashup: error: no output file given; pass -o OUT.mp4"),
        (["match", "me.mp4", "-k", "0"], "argument -k: must be at least 1, got 0"),
        (["demo", "--videos", "9"], "argument --videos: must be between 1 and 6, got 9"),
        (["match", "me.mp4", "--where", "name"], "--where 'name' must look like KEY=VALUE"),
    ],
)
def test_usage_mistakes_exit_2_with_the_usage(
    argv: list[str],
    message: str,
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo would write ./avajams-demo
    with pytest.raises(SystemExit) as info:
        main([*argv, "--config", str(config)])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"usage: avajams {argv[0]} ")
    assert message in err
    assert list(tmp_path.iterdir()) == [config]  # nothing was done before the check


def test_locked_library_gives_cli_advice_to_the_cli_and_api_advice_to_the_api(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from avajams.errors import LibraryLockedError
    from avajams.index import VideoIndex
    from avajams.testing import make_clip

    clip = make_clip(tmp_path / "mv.mp4", duration=1.0)
    library = tmp_path / "library"
    with VideoIndex.create(library, dim=32, embedder_id="fake-32-0"):  # this process writes
        with pytest.raises(LibraryLockedError, match=r"readonly=True") as info:
            VideoIndex.open(library)
        assert info.value.write_lock
        assert info.value.holder == os.getpid()

        code, out, err = run(capsys, "index", str(clip), "--config", str(config))
    assert code == 1
    assert out == ""
    assert err.startswith(
        f"avajams: error: the library {library} is being written by process {os.getpid()} ("
    )
    if Path("/proc/self/cmdline").exists():
        assert "python" in err  # what that process runs (Linux tells)
    assert "wait for it to finish (or stop it), then run this command again" in err
    assert "readonly" not in err
    assert err.count("\n") == 1


def test_skipped_files_are_one_clean_sentence_each(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from avajams.testing import make_clip

    folder = tmp_path / "videos"
    folder.mkdir()
    make_clip(folder / "good.mp4", duration=1.0)
    fake = folder / "fake.mp4"
    fake.write_bytes(bytes(range(256)) * 12)
    empty = folder / "zero.mp4"
    empty.touch()
    code, _out, err = run(capsys, "index", str(folder), "--config", str(config))
    assert code == 1
    assert [line for line in err.splitlines() if "skipped" in line] == [
        f"avajams: skipped {fake}: it could not be opened as a video (invalid data found when "
        "processing input); check that it is a complete, supported video file",
        f"avajams: skipped {empty}: it is empty (0 bytes); the file is not a video",
    ]

    code, _out, err = run(capsys, "match", str(fake), "--config", str(config))
    assert code == 1
    assert err == (
        f"avajams: error: {fake} could not be opened as a video (invalid data found when "
        "processing input); check that it is a complete, supported video file\n"
    )


def test_progress_lines_when_standard_error_is_not_a_terminal() -> None:
    import io

    from avajams._progress import LineProgress

    now = [0.0]
    out = io.StringIO()
    lines = LineProgress(seconds=10.0, stream=out, clock=lambda: now[0])
    for done in range(1, 4):
        lines("videos", done, 3)  # one line per video
    for done in range(1, 100):  # frames: at most one line per 10 s
        now[0] = done * 0.5
        lines("frames", done, None)
    lines("render", 1, 2)
    now[0] += 1
    lines("render", 2, 2)  # a stage that finishes says so at once
    assert out.getvalue().splitlines() == [
        "avajams: videos 1/3",
        "avajams: videos 2/3",
        "avajams: videos 3/3",
        "avajams: frames 21",
        "avajams: frames 41",
        "avajams: frames 61",
        "avajams: frames 81",
        "avajams: render 2/2",
    ]


@pytest.fixture
def silent_and_sound(tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A library of a music video without sound (the user clip's twin) and one with sound."""
    from avajams.testing import make_clip

    videos = tmp_path / "videos"
    videos.mkdir()
    make_clip(videos / "silent.mp4", duration=2.0, tag=1)
    make_clip(videos / "sound.mp4", duration=2.0, tag=2, audio_hz=440.0)
    make_clip(tmp_path / "me.mp4", duration=2.0, tag=1, seed=7, size=(80, 48))
    assert run(capsys, "index", str(videos), "--config", str(config), "-q")[0] == 0
    return videos


def test_mashup_checks_output_and_options_before_matching(
    silent_and_sound: Path,
    tmp_path: Path,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from avajams.pipeline import Pipeline

    def no_match(*args: object, **kwargs: object) -> None:
        raise AssertionError("matched before checking the output")

    monkeypatch.setattr(Pipeline, "match", no_match)
    me = str(tmp_path / "me.mp4")
    for extra, message in [
        (["-o", str(tmp_path / "nowhere" / "o.mp4")], "does not exist; create it first"),
        (["-o", str(tmp_path / "o.avi")], "must end in one of"),
        (["-o", me], "is also an input of the mashup"),
        (["-o", str(tmp_path / "o.mp4"), "--segment-seconds", "0"], "--segment-seconds"),
    ]:
        code, _out, err = run(capsys, "mashup", me, *extra, "--config", str(config), "-q")
        assert code == 1, err
        assert message in err
        assert err.startswith("avajams: error: ")
    with (
        Pipeline.from_config(config) as pipe,
        pytest.raises(OutputPathError, match="does not exist"),
    ):
        pipe.mashup(me, tmp_path / "nowhere" / "o.mp4")


def test_mashup_skips_a_best_match_without_soundtrack(
    silent_and_sound: Path, tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import av

    out = tmp_path / "o.mp4"
    me = str(tmp_path / "me.mp4")
    code, printed, err = run(capsys, "mashup", me, "-o", str(out), "--config", str(config), "-q")
    assert code == 0, err
    lines = printed.splitlines()
    assert lines[0].startswith(f"skipped {silent_and_sound / 'silent.mp4'} (score ")
    assert lines[0].endswith("): it has no soundtrack")
    assert lines[1].startswith(f"best match: {silent_and_sound / 'sound.mp4'} (score ")
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1

    (silent_and_sound / "sound.mp4").unlink()  # now no candidate has a soundtrack
    code, printed, err = run(capsys, "mashup", me, "-o", str(out), "--config", str(config), "-q")
    assert code == 1
    assert err == (
        f"avajams: error: the matches for {me} that still exist have no soundtrack (silent.mp4); "
        "a mashup keeps the music video's sound, so pass a music video with sound "
        "(--music FILE) or index some\n"
    )
