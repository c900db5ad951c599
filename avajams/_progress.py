"""Progress reporting: a tqdm bar for people, a callback for programs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

from tqdm import tqdm

#: ``callback(stage, done, total)``; ``total`` is None when unknown.
ProgressCallback = Callable[[str, int, "int | None"], None]


class Progress:
    """Counts work done for one stage, drawing a bar and/or calling a callback.

    ``show=None`` draws the bar only when standard error is a terminal.
    """

    def __init__(
        self,
        stage: str,
        total: int | None = None,
        *,
        unit: str = "it",
        show: bool | None = None,
        callback: ProgressCallback | None = None,
    ) -> None:
        self.stage = stage
        self.total = total
        self.done = 0
        self._callback = callback
        if show is None:
            show = sys.stderr.isatty()
        self._bar = (
            tqdm(total=total, desc=stage, unit=unit, leave=False, dynamic_ncols=True)
            if show
            else None
        )

    def update(self, n: int = 1) -> None:
        """Record ``n`` more units of work done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._callback is not None:
            self._callback(self.stage, self.done, self.total)

    def close(self) -> None:
        """Remove the bar; idempotent."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
