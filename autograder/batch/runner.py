"""Where submissions are graded: one small interface, two implementations.

    runner.start()         start the grader(s)
    runner.capacity        how many submissions to keep in flight
    runner.submit(item)    start grading one submission
    runner.wait(timeout)   [(item, results.json dict | exception)] finished since the last call
    runner.close(abandon)  stop; abandon=True leaves work in flight behind

LocalRunner (here): threads of this process share one Grader, so one warm template; the heavy
work runs in the sandboxed children, so threads are enough. DaskRunner (dask_runner.py): each Dask
worker hosts its own Grader. Either way a runner returns plain results.json data and never raises
for a bad submission (the Grader gives it a zero with the reason); an exception means the grading
machinery failed, and that submission is left ungraded so a re-run retries it.
"""
from __future__ import annotations

import os
import queue
import threading
import traceback
from pathlib import Path

import torch

from ..feedback.report import results_json
from .layouts import Item


class GradingFault(Exception):
    """The grading machinery failed on a submission (a bug or a dead worker, not the student's
    doing); the message names the exception and where it was raised, for a bug report."""

    @classmethod
    def from_exception(cls, failure: BaseException) -> "GradingFault":
        frames = traceback.extract_tb(failure.__traceback__)
        where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        return cls(f"{type(failure).__name__}: {failure}{where}")


def grade_to_result(grader, source, student: str, notice: str = "") -> dict:
    """Grade one submission and return its results.json object (plain data only)."""
    report = grader.grade(source, student=student)
    if notice:
        report.notices.append(notice)
    return results_json(report, grader.config)


def grade_with_one_retry(grader, item: Item):
    """The submission's results.json object, or the GradingFault that kept it from one. A fault of
    the grader (not of the submission: that is a zero with the reason) gets one more try, which the
    result then mentions; a second fault is left for a re-run of the batch."""
    try:
        return grade_to_result(grader, item.source, item.key)
    except Exception as failure:
        first = GradingFault.from_exception(failure)
    try:
        return grade_to_result(grader, item.source, item.key,
                               notice=f"graded a second time: the grader failed the first time ({first})")
    except Exception as failure:
        return GradingFault.from_exception(failure)


class LocalRunner:
    def __init__(self, config, workers: int | None = None, hide=(), grader=None):
        """grader: an already started Grader to share (tests); otherwise one is started here with
        `hide` (the batch input, output and staging folders) out of the children's sight."""
        self.config = config
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._hide = tuple(hide)
        self._grader = grader
        self._owns_grader = grader is None
        self._inbox: queue.Queue = queue.Queue()
        self._outbox: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []

    @property
    def capacity(self) -> int:
        return 2 * self.workers  # one waiting per thread keeps every thread busy

    def start(self) -> None:
        # The parent's torch work (the oracle, scoring, the train judge, diagnosis) is small
        # tensors: one thread is several times faster than two on a machine whose every core
        # runs a child (the train judge took 20 ms a submission on two threads, 1 ms on one).
        torch.set_num_threads(1)
        if self._grader is None:
            from ..pipeline import Grader

            self._grader = Grader(self.config, hide=self._hide, workers=self.workers)
        # Daemon threads: after a second Ctrl-C the batch may leave a hung submission behind.
        self._threads = [threading.Thread(target=self._work, name=f"batch-{n}", daemon=True)
                         for n in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            self._outbox.put((item, grade_with_one_retry(self._grader, item)))

    def submit(self, item: Item) -> None:
        self._inbox.put(item)

    def wait(self, timeout: float) -> list:
        try:
            finished = [self._outbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                finished.append(self._outbox.get_nowait())
            except queue.Empty:
                return finished

    def close(self, abandon: bool = False) -> None:
        for _ in self._threads:
            self._inbox.put(None)
        if not abandon:
            for thread in self._threads:
                thread.join()
        self._threads = []
        if self._owns_grader and self._grader is not None:
            self._grader.close()
            self._grader = None
