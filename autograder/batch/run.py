"""grade_batch: discover submissions, grade those without a current result, write every output.

    discover (layouts) -> skip current results (outputs) -> runner (local threads or Dask)
    -> results/<student>.json as each finishes -> grades.csv, report.html

Ctrl-C: the first stops new work and lets the submissions in flight finish (and be written); a
second abandons them. Either way grades.csv and report.html are written from what is done, and a
re-run grades the rest.
"""
from __future__ import annotations

import signal
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..records import GraderError
from ..sandbox import trees
from ..course.secret import course_secret_id
from . import gradebook, layouts, outputs
from .progress import for_stderr

POLL_SECONDS = 0.2


@dataclass
class BatchOutcome:
    layout: str
    submissions: int  # submissions found in the input
    graded: int  # graded in this run
    skipped: int  # already had a current result
    results: dict  # student -> results.json object: every current result of this input
    failures: list = field(default_factory=list)  # (label, reason): grading machinery faults, not graded
    warnings: list = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    csv_path: Path | None = None
    html_path: Path | None = None


class _Stop:
    """Set by Ctrl-C: `requested` stops new work, `abandon` stops waiting for work in flight."""

    def __init__(self):
        self.requested = threading.Event()
        self.abandon = threading.Event()

    def press(self, *_signal) -> None:
        (self.abandon if self.requested.is_set() else self.requested).set()


@contextmanager
def _ctrl_c(stop: _Stop, progress):
    """Turn SIGINT into flags while grading (only the main thread can install a handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(*_):
        first = not stop.requested.is_set()
        stop.press()
        progress.status("interrupted: finishing the submissions in flight (Ctrl-C again to abandon them)"
                        if first else "abandoning the submissions in flight")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _hidden_folders(path: Path, out: Path, staging: Path) -> tuple[Path, ...]:
    """What sandboxed children must not see: every submission, the results, the extracted zip."""
    source = path.resolve() if path.is_dir() else path.resolve().parent
    return tuple(p for p in (source, out.resolve(), staging) if p != Path("/"))


def grade_batch(path: Path, out: Path, config, *, workers: int | None = None, scheduler: str | None = None,
                force: bool = False, assignment: str | None = None, runner=None, progress=None,
                report: bool = True, layout: str = "auto") -> BatchOutcome:
    """Grade every submission at `path` into `out`; see the module docstring.

    layout: how the input is laid out (layouts.LAYOUTS), or "auto" to recognise it at its top;
    runner: a runner (see runner.py) to use instead of the default, e.g. one sharing a Grader;
    progress: a progress display (default: a bar on a terminal, plain lines otherwise)."""
    started = time.monotonic()
    path, out = Path(path), Path(out)
    if path.resolve() == out.resolve():
        raise GraderError("--out must not be the input folder itself")
    layouts.check_input(path)  # before a grader starts for nothing
    if layout != "auto" and layout not in layouts.LAYOUTS:
        raise GraderError(f"unknown layout {layout!r}: use auto, {', '.join(layouts.LAYOUTS)}")
    progress = progress or for_stderr()
    member_cap = 4 * config.limits.submission_kb * 1024
    outputs.prepare(out)
    overrides = gradebook.read_overrides(out)  # a malformed file stops the batch before it grades
    stop = _Stop()
    with ExitStack() as cleanup:
        # removed by trees (an extracted upload may hold anything a zip can: TemporaryDirectory's
        # rmtree recurses)
        staging = tempfile.mkdtemp(prefix="autograder-batch-")
        cleanup.callback(trees.remove, staging)
        # The grader starts before anything about the submissions is read: its warm template is a
        # fork of this process, and one forked later would hand the roster, earlier results and what
        # students printed to every child (tests/redteam/template_memory.py).
        if runner is None:
            runner = _default_runner(config, workers, scheduler, _hidden_folders(path, out, Path(staging)))
        runner.start()
        cleanup.callback(lambda: runner.close(abandon=stop.abandon.is_set()))
        # after the grader's template has forked: it must not hold this pipe (see FiguresElsewhere)
        if report:
            from .html_report import FiguresElsewhere

            figures = FiguresElsewhere()
        try:
            found = layouts.discover(path, Path(staging), member_cap, assignment, exclude=(out,), layout=layout)
        except OSError as failure:
            raise GraderError(f"cannot read {failure.filename or path}: {failure.strerror}") from None
        if not found.items:
            raise GraderError(f"no submissions found in {path} (looked for .ipynb, .py and .zip files, "
                              f"or folders holding one, as a {found.layout} layout)")
        secret_id = course_secret_id(config)  # another secret draws other hidden inputs: regrade
        stamps = {item.key: {"config": config.digest, "course_secret_id": secret_id,
                             "submission": outputs.submission_digest(item, member_cap)}
                  for item in found.items}
        results, todo = {}, []
        for item in found.items:
            current = {m: outputs.read_result(out, m) for m in item.members}
            if not force and all(outputs.is_current(r, stamps[item.key]) for r in current.values()):
                results.update(current)
            else:
                todo.append(item)
        outcome = BatchOutcome(found.layout, len(found.items), 0, len(found.items) - len(todo), results,
                               warnings=list(found.warnings))
        for warning in found.warnings:
            progress.status(f"warning: {warning}")
        if todo:
            _run(runner, todo, stamps, out, outcome, progress, stop)
    outcome.results = {m: outcome.results[m] for item in found.items for m in item.members if m in outcome.results}
    check_names = list(config.points)
    # the instructor's overrides.csv, laid over what was measured (results/ keeps the measurement)
    overridden = gradebook.apply_overrides(outcome.results, overrides, out)
    outcome.results = overridden.results
    outcome.warnings += overridden.warnings
    for warning in overridden.warnings:
        progress.status(f"warning: {warning}")
    outcome.csv_path = outputs.write_csv(out, outcome.results, check_names,
                                         overridden.reasons if overrides else None)
    gradebook.write_gradebook(out, outcome.results, assignment or path.name.removesuffix(".zip"))
    if report:
        from .html_report import write_report

        try:
            outcome.html_path = write_report(out, outcome, config, figures)
        finally:
            figures.close()
    outcome.seconds = time.monotonic() - started
    return outcome


def _default_runner(config, workers, scheduler, hide):
    if scheduler:
        from .dask_runner import DaskRunner  # only here: local grading never imports Dask

        return DaskRunner(scheduler, config, hide=hide)
    from .runner import LocalRunner

    return LocalRunner(config, workers, hide=hide)


def _run(runner, todo, stamps, out, outcome: BatchOutcome, progress, stop: _Stop) -> None:
    skipped = f" ({outcome.skipped} already graded)" if outcome.skipped else ""
    pending = list(reversed(todo))  # pop() from the end keeps input order
    in_flight = 0
    with _ctrl_c(stop, progress):
        progress.status(f"grading {len(todo)} submission(s){skipped} ...")
        progress.start(len(todo))
        try:
            while pending or in_flight:
                if stop.abandon.is_set() or (stop.requested.is_set() and not in_flight):
                    break
                while pending and not stop.requested.is_set() and in_flight < runner.capacity:
                    runner.submit(pending.pop())
                    in_flight += 1
                for item, result in runner.wait(POLL_SECONDS):
                    in_flight -= 1
                    _record(item, result, stamps[item.key], out, outcome)
                    progress.advance(failed=not isinstance(result, dict))
        finally:
            progress.stop()
            outcome.interrupted = stop.requested.is_set()


def _record(item, result, stamp: dict, out: Path, outcome: BatchOutcome) -> None:
    if not isinstance(result, dict):
        from .runner import GradingFault

        reason = str(result) if isinstance(result, GradingFault) else f"{type(result).__name__}: {result}"
        outcome.failures.append((item.label, reason))
        return
    for member, own in outputs.member_results(item, result, stamp).items():
        outputs.write_result(out, member, own)
        outcome.results[member] = own
    outcome.graded += 1

