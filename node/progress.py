"""Progress of one long step (a sync, an upload, training), shown the way its reader sees it:
a live bar on a terminal, plain lines in a log.

A tqdm bar redraws itself with carriage returns; written to a file or a pipe, each redraw is
kept, so a log fills with ``\\r``-joined copies of the same line. Here the stream decides: on
a terminal the bar, anywhere else one clean line per milestone (the first step, each tenth of
the total, a change of phase, the end), never the same state twice.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

T = TypeVar("T")

#: Without a known total, at most one line per this many seconds (plus the last one).
LINE_SECONDS = 10.0
#: Lines at each this fraction of a known total.
MILESTONES = 10


def on_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream counts as not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """One step's progress on ``stream`` (default stderr): ``advance(n)`` adds to the count,
    ``move_to(n, total, **notes)`` sets it (a ``phase`` note starts a new milestone); ``close``
    (or leaving the ``with``) ends it, with a last line off a terminal."""

    def __init__(self, desc: str, unit: str, total: int | None = None, stream: IO[str] | None = None,
                 unit_scale: bool = False) -> None:
        self.desc = desc
        self.unit = unit
        self.total = total
        self.n = 0
        self.notes: dict[str, Any] = {}
        self.unit_scale = unit_scale
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._said: tuple[Any, ...] | None = None
        self._milestone = -1
        self._last_line = 0.0
        self._closed = False
        if on_terminal(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(desc=desc, unit=unit, total=total, file=self._stream, unit_scale=unit_scale,
                             mininterval=0.5, dynamic_ncols=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def advance(self, n: int) -> None:
        self.move_to(self.n + n)

    def move_to(self, n: int, total: int | None = None, **notes: Any) -> None:
        if total is not None:
            self.total = total
        self.n = n
        phase_changed = "phase" in notes and notes["phase"] != self.notes.get("phase")
        self.notes.update(notes)
        if self._bar is not None:
            self._bar.total = self.total
            if notes:
                self._bar.set_postfix(refresh=False, **self.notes)
            # One draw per change at most (tqdm's update draws when mininterval allows).
            if phase_changed:
                self._bar.n = n
                self._bar.refresh()
            else:
                self._bar.update(n - self._bar.n)
            return
        now = time.monotonic()
        if self.total:
            milestone = min(n, self.total) * MILESTONES // self.total
            due = milestone > self._milestone
        else:
            milestone = self._milestone
            due = self._said is None or now - self._last_line >= LINE_SECONDS
        if due or phase_changed:
            self._milestone = max(self._milestone, milestone)
            self._line(now)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        else:
            self._line(time.monotonic())

    def _line(self, now: float) -> None:
        state = (self.n, self.total, tuple(sorted(self.notes.items())))
        if state == self._said:
            return
        self._said, self._last_line = state, now
        self._stream.write(self.render() + "\n")
        self._stream.flush()

    def render(self) -> str:
        """The plain line: ``desc: n/total unit (p%), note=value ...``."""
        if self.unit_scale:  # 3.15MB/10.5MB, as tqdm writes sizes
            from tqdm import tqdm

            count = f"{tqdm.format_sizeof(self.n)}{self.unit}"
            if self.total:
                count += f"/{tqdm.format_sizeof(self.total)}{self.unit}"
        else:
            count = f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"
        if self.total:
            count += f" ({100 * min(self.n, self.total) // self.total}%)"
        notes = "".join(f", {k}={v}" for k, v in self.notes.items())
        return f"{self.desc}: {count}{notes}"


def progress_over(items: Iterable[T], desc: str, unit: str, total: int | None = None,
                  stream: IO[str] | None = None) -> Iterator[T]:
    """``items``, counted on a :class:`Progress` as they are taken."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(desc, unit, total, stream) as progress:
        for item in items:
            yield item
            progress.advance(1)
