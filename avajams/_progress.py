"""Progress reporting: a tqdm bar for people, a callback for programs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection
from types import TracebackType
from typing import TextIO

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


class LineProgress:
    """A progress callback writing plain lines, for logs where a bar cannot be drawn.

    Stages in ``each`` (counted in whole videos) get a line per update; the others a line at
    most every ``seconds`` and when they finish: ``avajams: videos 3/5``, ``avajams: frames 450``.
    """

    def __init__(
        self,
        *,
        each: Collection[str] = ("videos",),
        seconds: float = 10.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.each = frozenset(each)
        self.seconds = seconds
        self._stream = stream
        self._clock = clock
        self._last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = self._clock()
        finished = total is not None and done >= total
        if stage not in self.each and not finished:
            last = self._last.setdefault(stage, now)  # the first update starts the clock
            if now - last < self.seconds:
                return
        self._last[stage] = now
        count = f"{done}/{total}" if total is not None else str(done)
        print(f"avajams: {stage} {count}", file=self._stream or sys.stderr, flush=True)
