"""How a run reports its progress: a bar on a terminal, plain lines for a log file, or nothing.

`Progress.parse` turns what a caller gave (a Progress, its name, or a bool) into one of the three,
once, at the edge; `reporter(...)` gives the object the runner updates once per finished point.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_S = 10.0  # seconds between log lines at most (while points finish)
LOG_STEPS = 10  # log lines at each tenth of the points, besides


class Progress(enum.Enum):
    """NONE prints nothing; BAR draws tqdm's bar (carriage returns); LOG writes whole lines."""

    NONE = "none"
    BAR = "bar"
    LOG = "log"

    @classmethod
    def parse(cls, value: Progress | str | bool, stream: TextIO | None = None) -> Progress:
        """A Progress from a Progress, 'none' / 'bar' / 'log' / 'auto', or a bool; 'auto' and True
        mean a bar where `stream` (default: stderr) is a terminal and log lines elsewhere."""
        if isinstance(value, Progress):
            return value
        if value is True or value == "auto":
            return cls.BAR if _is_terminal(stream or sys.stderr) else cls.LOG
        if value is False:
            return cls.NONE
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(p.value) for p in cls)
            raise ValueError(f"progress: must be one of {allowed}, 'auto', True or False, got {value!r}") from None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class LogLines:
    """Progress as whole lines, `desc: done/total points (pct%), elapsed s`, written at each tenth
    of the points and at least every LOG_EVERY_S seconds while points finish; no carriage return."""

    def __init__(self, total: int, desc: str, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.total, self.desc, self.stream, self.clock = total, desc, stream, clock
        self.done = 0
        self.start = self.last = clock()
        self.step = max(1, -(-total // LOG_STEPS))  # points per tenth, rounded up

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.done == self.total or self.done % self.step == 0 or now - self.last >= LOG_EVERY_S:
            self.last = now
            pct = 100 * self.done / self.total if self.total else 100
            print(f"{self.desc}: {self.done}/{self.total} points ({pct:.0f}%), {now - self.start:.1f} s",
                  file=self.stream, flush=True)  # fmt: skip

    def __enter__(self) -> LogLines:
        print(f"{self.desc}: {self.total} points to compute", file=self.stream, flush=True)
        return self

    def __exit__(self, *exc) -> None:
        return None


class _Silent:
    def update(self, n: int = 1) -> None:
        return None

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc) -> None:
        return None


def reporter(kind: Progress, total: int, desc: str, stream: TextIO | None = None):
    """A context manager with `update()`, one call per finished point: a bar, log lines or nothing
    (nothing as well when there is no point to compute). Writes to `stream` (default: stderr)."""
    stream = stream or sys.stderr
    if kind is Progress.NONE or total == 0:
        return _Silent()
    if kind is Progress.LOG:
        return LogLines(total, desc, stream)
    return tqdm(total=total, desc=desc, unit="point", file=stream)
