"""Qt-free progress reporting and cancellation for long work.

Long operations are generators that yield :class:`Progress` events between
chunks of work; a consumer (terminal bar, Qt worker) shows them and may stop the
work by setting a :class:`CancelToken`, which the generator checks at each
yield and answers by raising :class:`~volumedr.errors.Cancelled`.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from .errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress event: ``done`` of ``total`` units of ``stage``."""

    stage: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


class CancelToken:
    """A thread-safe flag that long work checks between chunks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def drive(gen, *, on_progress=None, cancel: CancelToken | None = None):
    """Run a progress generator to completion and return its return value."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if cancel is not None and cancel.cancelled:
            gen.close()
            raise Cancelled("cancelled by the user")
        if on_progress is not None:
            on_progress(event)


class TerminalBar:
    """A minimal progress bar on stderr, shown only on a terminal."""

    def __init__(self, stream=None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._stage = None

    def __call__(self, event: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if event.stage == self._stage and now - self._last < 0.1 and event.done < event.total:
            return
        self._last, self._stage = now, event.stage
        n = int(round(event.fraction * self.width))
        bar = "#" * n + "-" * (self.width - n)
        self.stream.write(f"\r{event.stage:<16} [{bar}] {event.done}/{event.total}")
        if event.done >= event.total:
            self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._stage is not None:
            self.stream.write("\r" + " " * (self.width + 40) + "\r")
            self.stream.flush()
