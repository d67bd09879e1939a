"""The kit's grader called from inside a notebook: the hidden-test region of each test cell.

    ### BEGIN HIDDEN TESTS
    from autograder.notebook import grade_part
    grade_part("linear")
    ### END HIDDEN TESTS

grade_part grades one part of the notebook file being autograded (found in the kernel's working
directory) with the same sandboxed grader as `autograder grade`, prints the part's feedback to
stdout and returns the part's points, which nbgrader takes as the cell's partial credit. What a
test cell gets is what every other route gives that part, within nbgrader's cell timeout:

- one part per call, with one time budget (grading.toml [limits] notebook_cell_seconds, under
  nbgrader's default 30 s `c.Execute.timeout`): a hang costs its own part only, never the
  cells after it;
- nothing reaches the cell's stderr (nbgrader zeroes a cell with any stderr): the sandbox's
  processes write to /dev/null, and the grader's own warnings are silenced;
- one warm sandbox per kernel, started on the first call (a notebook's test cells share it);
- grading.toml is the kit's, or the file named by AUTOGRADER_CONFIG in nbgrader's environment.

Except under nbgrader's autograde (NBGRADER_EXECUTION=autograde): there the kernel has run the
student's cells as the instructor, so nothing it computes can be trusted (a cell can replace
grade_part itself, or read the course secret). A course whose nbgrader_config.py still grades in
kernels gets 0 points and, in every test cell, the command that makes nbgrader grade through the
kit's sandbox instead (`autograder nbgrader setup`; nbgrader_autograde.py). Students' own runs and
`nbgrader validate` grade as described above.
"""
from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..intake.submission import PREFERRED_NOTEBOOK

_grader = None  # one warm Grader per kernel, closed when the kernel exits
_reports: dict[tuple[str, str], object] = {}  # (notebook sha256, part) -> GradeReport


def find_notebook(folder: Path) -> Path | None:
    preferred = folder / PREFERRED_NOTEBOOK
    if preferred.is_file():
        return preferred
    notebooks = [p for p in folder.glob("*.ipynb") if p.is_file()]
    return notebooks[0] if len(notebooks) == 1 else None


@contextmanager
def _stderr_to_devnull():
    """File descriptor 2 and sys.stderr point at /dev/null meanwhile: processes started now (the
    sandbox template, its children) inherit it, and the kernel's own stderr stays clean."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _shared_grader(notebook: Path):
    """One grader per kernel; the notebook's folder is hidden from its children from the start."""
    global _grader
    if _grader is None:
        from ..course.config import load_config
        from ..pipeline import Grader

        config = load_config(os.environ.get("AUTOGRADER_CONFIG") or None)
        limits = config.limits
        # The whole part within one test cell's budget, whatever the submission-wide budget is.
        budget = min(limits.submission_seconds, limits.notebook_cell_seconds)
        config = dataclasses.replace(config, limits=dataclasses.replace(limits, submission_seconds=budget))
        _grader = Grader(config, hide=(notebook.resolve().parent,), mode="spawn")
        atexit.register(_grader.close)
    return _grader


def _report_for(path: Path, part: str):
    key = (hashlib.sha256(path.read_bytes()).hexdigest(), part)
    if key not in _reports:
        with _stderr_to_devnull():
            grader = _shared_grader(path)
            if part not in {name.split(".")[0] for name in grader.config.points}:
                raise ValueError(f"grading.toml has no part '{part}'")
            _reports[key] = grader.grade(path, parts=[part])
    return _reports[key]


def part_feedback(report, part: str) -> str:
    result = report.parts.get(part)
    if result is None:
        return f"{part}: not graded ({report.error or 'no checks for this part'})"
    lines = [f"{part}: {result.score:g} / {result.max_score:g} points from the hidden tests"]
    passed = [c.name.split(".", 1)[1] for c in result.checks if c.passed]
    if passed:
        lines.append("  passed: " + ", ".join(passed))
    if any(not check.passed for check in result.checks):
        from ..feedback.causes import as_text

        lines.append(as_text(result.checks, indent="  "))
    lines.extend(f"  note: {notice}" for notice in report.notices)
    return "\n".join(lines)


def grade_part(part: str, notebook: str | Path | None = None) -> float:
    """Points earned by `part` of the notebook in the current directory (or `notebook`)."""
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        print(f"{part}: not graded — this course's nbgrader runs student notebooks in a Jupyter kernel as the "
              f"instructor, where a notebook can fake any grade. Instructor: run `autograder nbgrader setup` in "
              f"the course folder, then autograde again (the kit's sandbox grades it).")
        return 0.0
    path = Path(notebook) if notebook else find_notebook(Path.cwd())
    if path is None or not path.is_file():
        print(f"{part}: 0 points — the grader could not find the notebook in {Path.cwd()}")
        return 0.0
    try:
        report = _report_for(path, part)
    except Exception as failure:  # the grade must still be a number, and nothing may reach stderr
        print(f"{part}: 0 points — the grader failed: {type(failure).__name__}: {failure}")
        return 0.0
    print(part_feedback(report, part))
    result = report.parts.get(part)
    return float(result.score) if result else 0.0
