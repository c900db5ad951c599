"""``avajams demo``: the whole job on generated media, with a known right answer.

It writes a handful of "music videos" made from real photographs (scikit-image's bundled
data) panned, zoomed and cut, each with its own generated music; indexes them; makes a user
clip by re-shooting part of one of them (another crop and zoom, another size and frame rate,
re-encoded); matches the clip against the library; and renders the mashup with the best match.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avajams.errors import OutputPathError
from avajams.pipeline import IndexSummary, Pipeline, PipelineConfig

if TYPE_CHECKING:
    from avajams._progress import ProgressCallback
    from avajams.embedding import Embedder
    from avajams.index import Match

__all__ = [
    "DEMO_PHOTOS",
    "DemoResult",
    "demo_video_path",
    "make_demo_clip",
    "make_demo_media",
    "run_demo",
]

#: The photographs of each demo music video (two per video, cut between).
DEMO_PHOTOS: tuple[tuple[str, str], ...] = (
    ("chelsea", "coffee"),
    ("astronaut", "rocket"),
    ("motorcycle", "hubble"),
    ("retina", "ihc"),
    ("camera", "coins"),
    ("moon", "brick"),
)

#: Which demo video the user clip is re-shot from (0-based).
DEMO_SOURCE = 1


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` made and found."""

    directory: Path
    library: Path
    videos: tuple[Path, ...]
    clip: Path
    expected: Path
    summary: IndexSummary
    matches: tuple[Match, ...]
    mashup: Path
    report: Path
    seconds: float

    @property
    def correct(self) -> bool:
        """Whether the best match is the video the clip was made from."""
        return bool(self.matches) and self.matches[0].path == str(self.expected.resolve())


def make_demo_media(
    directory: str | os.PathLike[str],
    *,
    count: int = 5,
    duration: float = 10.0,
    fps: float = 24.0,
    size: tuple[int, int] = (320, 240),
) -> list[Path]:
    """Write ``count`` generated music videos into ``directory`` (kept if already there)."""
    from avajams.photo import make_photo_video

    if not 1 <= count <= len(DEMO_PHOTOS):
        raise ValueError(f"count must be between 1 and {len(DEMO_PHOTOS)}, got {count}")
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot create the demo directory {folder}: {exc.strerror or exc}; pass --dir "
            "with a writable directory path",
            path=folder,
        ) from exc
    videos = []
    for i, photos in enumerate(DEMO_PHOTOS[:count]):
        path = demo_video_path(folder, i)
        if not path.is_file():
            partial = path.with_name(path.stem + ".partial.mp4")
            make_photo_video(
                partial, photos=photos, duration=duration, fps=fps, size=size, seed=100 + i
            )
            partial.replace(path)
        videos.append(path)
    return videos


def demo_video_path(directory: str | os.PathLike[str], number: int) -> Path:
    """Where :func:`make_demo_media` writes demo music video ``number`` (0-based)."""
    return Path(directory) / f"mv{number + 1:02d}-{'-'.join(DEMO_PHOTOS[number])}.mp4"


def make_demo_clip(source: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """The user's clip: 6 s of ``source`` re-shot closer (zoom 1.3), at 256x192 and 25 fps."""
    from avajams.photo import make_excerpt

    return make_excerpt(
        source,
        out,
        start=2.0,
        duration=6.0,
        zoom=1.3,
        center=(0.45, 0.55),
        size=(256, 192),
        fps=25.0,
        audio="music",
        seed=99,
    )


def run_demo(
    directory: str | os.PathLike[str] = "avajams-demo",
    *,
    config: PipelineConfig | None = None,
    embedder: Embedder | None = None,
    count: int = 5,
    say: Callable[[str], None] | None = None,
    on_matches: Callable[[Path, tuple[Match, ...], Path], None] | None = None,
    show_progress: bool | None = None,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Generate the demo media in ``directory``, index it, match the clip, render the mashup.

    The library goes to ``directory/library`` whatever ``config`` says (the rest of ``config``
    applies). ``say`` receives one line per step, each said before the step runs and only when
    it does work (media already written are reused, the model is built only once);
    ``on_matches(clip, matches, right_answer)`` is called before the mashup is rendered.
    """
    started = time.perf_counter()
    say = say or (lambda line: None)
    folder = Path(directory).resolve()
    base = config or PipelineConfig()
    config = base.model_copy(
        update={"library": base.library.model_copy(update={"directory": folder / "library"})}
    )
    media = folder / "music-videos"
    missing = sum(not demo_video_path(media, i).is_file() for i in range(count))
    if missing:
        say(f"writing {missing} generated music video(s) into {media}")
    else:
        say(f"using the {count} generated music videos already in {media}")
    videos = make_demo_media(media, count=count)
    expected = videos[DEMO_SOURCE % len(videos)]
    clip = make_demo_clip(expected, folder / "my-clip.mp4")
    say(f"made the user clip {clip.name} from {expected.name} (cropped, zoomed, re-encoded)")
    with Pipeline(config, embedder=embedder) as pipe:
        if embedder is None and _model_missing(config):
            say("building the Inception v3 model (first run only, a minute or two)")
        pipe.embedder  # noqa: B018  (built now, so the steps below say what they do)
        say(f"indexing into {folder / 'library'}")
        summary = pipe.index(
            [folder / "music-videos"], show_progress=show_progress, progress=progress
        )
        say(
            f"indexed: {len(summary.added)} added, {len(summary.updated)} updated, "
            f"{len(summary.skipped)} unchanged, {len(summary.failed)} failed"
        )
        matches = tuple(pipe.match(clip, k=min(5, count)))
        report = pipe.report(clip, folder / "match-report.png", matches=matches, expected=expected)
        if not matches or matches[0].path is None:
            from avajams.errors import LibraryError

            raise LibraryError(f"the demo library in {folder} returned no match", path=folder)
        if on_matches is not None:
            on_matches(clip, matches, expected)
        say(f"rendering the mashup of {clip.name} with {Path(matches[0].path).name}")
        result = pipe.mashup(
            clip,
            folder / "mashup.mp4",
            music=matches[0].path,
            show_progress=show_progress,
            progress=progress,
        )
    return DemoResult(
        directory=folder,
        library=folder / "library",
        videos=tuple(videos),
        clip=clip,
        expected=expected,
        summary=summary,
        matches=matches,
        mashup=Path(result.path),
        report=report,
        seconds=time.perf_counter() - started,
    )


def _model_missing(config: PipelineConfig) -> bool:
    """Whether building the pipeline's embedder will build the Inception model first."""
    from avajams.config import InceptionConfig
    from avajams.embedding import model_dir

    section = config.embedder
    if not isinstance(section, InceptionConfig) or section.source != "fid2015":
        return False
    return not (model_dir(section.source) / "manifest.json").is_file()
