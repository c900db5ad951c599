"""The avajams error tree.

Every error avajams raises descends from :class:`AvajamsError`; each leaf also subclasses the
built-in exception a caller would naturally catch, so ``except FileNotFoundError`` keeps working::

    AvajamsError
    ├── ConfigError (ValueError)               an option or configuration value is invalid
    ├── VideoError                             reading a media file failed
    │   ├── VideoNotFoundError (FileNotFoundError)
    │   ├── VideoDecodeError (ValueError)      not a video, corrupt, truncated, no frames
    │   └── VideoTooLargeError (ValueError)    dimensions or duration beyond the set bounds
    ├── ModelError                             building, fetching or loading a model
    │   ├── ModelFetchError (OSError)          the weights could not be fetched
    │   └── ModelIntegrityError (ValueError)   a hash or a manifest does not match
    ├── EmbedderError (ValueError)             unknown embedder, broken plugin, contract violation
    │   └── ProviderError                      an unavailable onnxruntime execution provider
    ├── LibraryError                           a video library on disk
    │   ├── LibraryNotFoundError (FileNotFoundError)
    │   ├── LibraryCorruptError (ValueError)   truncated or damaged files; says how to repair
    │   ├── LibraryLockedError (BlockingIOError) another process is writing
    │   ├── EmbedderMismatchError (ValueError) the library was built with another embedder
    │   └── VectorError (ValueError)           wrong dimension, NaN or inf
    ├── RenderError                            rendering a mashup
    │   ├── MissingAudioError (ValueError)     the music video has no soundtrack
    │   └── OutputPathError (OSError)          the output cannot be written
    └── ClusterError (ConnectionError)         a Ray cluster cannot be reached or run the work

Messages name the file or value at fault and say what to do next. Errors about a file carry it
in ``.path``.
"""

from __future__ import annotations

import os

__all__ = [
    "AvajamsError",
    "ClusterError",
    "ConfigError",
    "EmbedderError",
    "EmbedderMismatchError",
    "LibraryCorruptError",
    "LibraryError",
    "LibraryLockedError",
    "LibraryNotFoundError",
    "MissingAudioError",
    "ModelError",
    "ModelFetchError",
    "ModelIntegrityError",
    "OutputPathError",
    "ProviderError",
    "RenderError",
    "VectorError",
    "VideoDecodeError",
    "VideoError",
    "VideoNotFoundError",
    "VideoTooLargeError",
]


class AvajamsError(Exception):
    """Root of every error raised by avajams.

    ``path`` is the file or directory the error is about, when there is one.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = os.fspath(path) if path is not None else None

    def __str__(self) -> str:
        return self.message


class ConfigError(AvajamsError, ValueError):
    """An option or configuration value is invalid."""


class VideoError(AvajamsError):
    """Reading a media file failed."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The media file does not exist (or is a directory)."""


class VideoDecodeError(VideoError, ValueError):
    """The file is not a decodable video: corrupt, truncated, audio-only or without frames."""


class VideoTooLargeError(VideoError, ValueError):
    """The video's dimensions or length exceed the configured bounds."""


class ModelError(AvajamsError):
    """Building, fetching or loading a model failed."""


class ModelFetchError(ModelError, OSError):
    """The model weights could not be fetched."""


class ModelIntegrityError(ModelError, ValueError):
    """A downloaded or cached model file does not match its expected hash or manifest."""


class EmbedderError(AvajamsError, ValueError):
    """An embedder could not be resolved, loaded, or broke its contract."""


class ProviderError(EmbedderError):
    """A requested onnxruntime execution provider is not available."""


class LibraryError(AvajamsError):
    """A video library on disk could not be opened, read or written."""


class LibraryNotFoundError(LibraryError, FileNotFoundError):
    """No library exists at the given directory."""


class LibraryCorruptError(LibraryError, ValueError):
    """A library file is truncated or damaged."""


class LibraryLockedError(LibraryError, BlockingIOError):
    """Another process holds the library's write lock (or keeps its catalogue busy).

    ``write_lock`` is True for the write lock, whose holder's process id is ``holder`` when
    known; the message advises the Python API (a command line gives its own advice).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        write_lock: bool = False,
        holder: int | None = None,
    ) -> None:
        super().__init__(message, path=path)
        self.write_lock = write_lock
        self.holder = holder


class EmbedderMismatchError(LibraryError, ValueError):
    """The library was built with a different embedder than the one in use."""


class VectorError(LibraryError, ValueError):
    """A vector has the wrong dimension or contains NaN or inf."""


class RenderError(AvajamsError):
    """Rendering a mashup failed."""


class MissingAudioError(RenderError, ValueError):
    """The music video has no audio track, so there is no soundtrack to keep."""


class OutputPathError(RenderError, OSError):
    """The output file cannot be written (missing directory, no permission)."""


class ClusterError(AvajamsError, ConnectionError):
    """A Ray cluster cannot be reached, lacks the resources asked for, or lost the work."""


#: Starts the CLI's message for an exception avajams did not expect: a bug, never a bad input
#: (exit code :data:`INTERNAL_ERROR_EXIT`); the tests assert that no input ever produces it.
INTERNAL_ERROR = "internal error"
#: The CLI's exit code for an internal error (``EX_SOFTWARE``).
INTERNAL_ERROR_EXIT = 70
