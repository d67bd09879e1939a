"""Progress of a batch on stderr: a live bar with rate and ETA on a terminal, plain lines otherwise
(a log file or CI gets a line every 10% or 15 s instead of a redraw per submission)."""
from __future__ import annotations

import sys
import time

from ..feedback.terminal import printable


class PlainProgress:
    """Occasional `graded 120/1000 (9.8/s, ETA 1m30s)` lines, for logs."""

    def __init__(self, stream=None, every_seconds: float = 15.0):
        self.stream = stream or sys.stderr
        self.every_seconds = every_seconds

    def start(self, total: int) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.started = self.last = time.monotonic()
        self.next_share = 0.1

    def status(self, text: str) -> None:
        print(printable(text), file=self.stream, flush=True)

    def advance(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        now = time.monotonic()
        if (self.done == self.total or self.done >= self.next_share * self.total
                or now - self.last >= self.every_seconds):
            while self.next_share * self.total <= self.done:
                self.next_share += 0.1
            self.last = now
            print(self._line(now), file=self.stream, flush=True)

    def _line(self, now: float) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        failed = f", {self.failed} failed" if self.failed else ""
        return f"graded {self.done}/{self.total} ({rate:.1f}/s, ETA {_duration(eta)}{failed})"

    def stop(self) -> None:
        pass


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class BarProgress:
    """rich's live bar: done/total, submissions per second, elapsed and remaining time."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)

    def start(self, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._bar = Progress(
            TextColumn("[bold]grading[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[failed]}"),
            console=self.console, refresh_per_second=8, speed_estimate_period=10,
        )
        self._started = time.monotonic()
        self._done = self._failed = 0
        self._task = self._bar.add_task("grading", total=total, rate="", failed="")
        self._bar.start()

    def status(self, text: str) -> None:
        self.console.print(printable(text), markup=False)

    def advance(self, failed: bool = False) -> None:
        self._done += 1
        self._failed += failed
        elapsed = time.monotonic() - self._started
        self._bar.update(self._task, advance=1, rate=f"{self._done / elapsed:.1f}/s" if elapsed > 0 else "",
                         failed=f"[red]{self._failed} failed[/]" if self._failed else "")

    def stop(self) -> None:
        self._bar.stop()


class QuietProgress:
    """For callers that show nothing (tests, other front ends)."""

    def start(self, total: int) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def advance(self, failed: bool = False) -> None:
        pass

    def stop(self) -> None:
        pass


def for_stderr():
    return BarProgress() if sys.stderr.isatty() else PlainProgress()
