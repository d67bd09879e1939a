"""grade(path) -> GradeReport: the only place that knows the order of the stages.

    submission (read) -> extract (cells) -> forbidden (AST scan)
    -> sandbox (student code runs in a child) -> score (parent compares with the oracle) -> report
"""
from __future__ import annotations

import gc
import time
from pathlib import Path

from .intake import extract, forbidden
from .course.config import Config
from .files import KIT_ROOT
from .records import CheckResult, GradeReport, student_id_from_path
from .sandbox.session import Sandbox
from .intake.submission import PREFERRED_NOTEBOOK, SubmissionError, load_submission


class Grader:
    """A warm sandbox template plus the hidden suite with its expected values; grade many with one.

    hide: extra folders the children must not see (as root), e.g. the batch input and output."""

    def __init__(self, config: Config, hide=(), mode: str = "auto", workers: int = 1):
        # The template is started before the checks (and so `solution`) are imported, so it never
        # holds expected values; see sandbox/zygote.py.
        self.config = config
        self.sandbox = Sandbox(config.limits, config.forbidden, hide=(KIT_ROOT, *hide), mode=mode,
                               slots=max(8, workers))
        from .checks import build_suite
        from .course.secret import course_inputs

        try:  # read only now, in the parent: the template forked above never holds the course secret
            seed, self.course_secret_id = course_inputs(config)
            self.suite = build_suite(config, seed)
        except BaseException:
            self.sandbox.close()
            raise
        # locked set-up cells run as released, whatever a student did to them (as in nbgrader)
        self.released = extract.released_cells(KIT_ROOT / "student_template" / PREFERRED_NOTEBOOK)
        self.answer_ids = [part.grade_id for part in config.parts.values() if part.grade_id]  # the registry's
        from .checks import oracle_classes
        from .scoring.diagnosis import Catalogue

        # the wrong variants' outputs on the suite's inputs, computed once
        self.catalogue = Catalogue(oracle_classes(config))
        # torch, the kit, the suite and the catalogue live as long as the grader: the collector need
        # not walk them again after each submission (a full walk cost ~5 ms a submission in a batch)
        gc.freeze()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sandbox.close()

    def grade(self, path: str | Path, parts=None, student: str | None = None) -> GradeReport:
        """Never raises for a bad submission: it gets a zero report with the reason."""
        path = Path(path)
        started = time.perf_counter()
        report = GradeReport(student=student or student_id_from_path(path), submission=str(path),
                             isolation=self.sandbox.isolation, course_secret_id=self.course_secret_id,
                             bounds=self.sandbox.bounds)
        entries = [e for e in self.suite if parts is None or e.check.part in parts]
        try:
            submission = load_submission(path, self.config.limits.submission_kb * 1024)
        except SubmissionError as unusable:
            report.error = str(unusable)
            report.checks = [CheckResult(e.check.name, 0.0, e.points, False, f"Not graded: {unusable}")
                             for e in entries]
            report.execution_time = time.perf_counter() - started
            return report
        code = extract.extract(submission, self.released, self.answer_ids)
        report.notices.extend(code.notices)
        static, suspicious = forbidden.scan(code, self.config.forbidden)
        if suspicious:
            report.instructor_notices.append("this code reaches into the interpreter, the OS or torch's internals "
                                             f"({', '.join(suspicious)}); please review it")
        if static.get("module level"):
            report.notices.append("forbidden at module level (not scored, but don't use them in the layers): "
                                  + ", ".join(static["module level"]))
        run = self.sandbox.run(
            [{"label": cell.label, "source": cell.source} for cell in code.cells],
            [e.check.probe for e in entries],
            extra_hide=(path.resolve().parent,),
        )
        report.notices.extend(run.notices)
        report.instructor_notices.extend(run.instructor_notices)
        if run.audit:
            report.instructor_notices.append("while it ran, this code reached into the interpreter, the OS or "
                                             f"torch's internals ({', '.join(run.audit)}); please review it")
        if run.load_failure:
            report.notices.append("Your code could not be run: " + run.load_failure)
        for error in run.cell_errors:
            report.notices.append(
                f"{error.get('where')}: {error.get('type')}: {error.get('message')}"
                + (f" ({error['line']})" if error.get("line") else ""))
        if run.more_cell_errors:
            report.notices.append(f"... and {run.more_cell_errors} more cells raised an error")
        from .scoring.score import score_all

        # A method seen calling a forbidden API in any check loses every check that calls it.
        known = {method: list(calls) for method, calls in static.items()}
        for outcome in run.outcomes:
            for method, calls in (outcome.forbidden if outcome else {}).items():
                known.setdefault(method, []).extend(c for c in calls if c not in known[method])
        report.checks = score_all(entries, run.outcomes, known, self.config.tolerance, self.catalogue)
        report.student_output = run.output
        report.execution_time = time.perf_counter() - started
        return report
