"""The kit's grader called from inside a notebook: the hidden-test region of each test cell.

    ### BEGIN HIDDEN TESTS
    from autograder.notebook import grade_part
    grade_part("linear")
    ### END HIDDEN TESTS

grade_part grades the notebook file being autograded (found in the kernel's working directory)
with the same sandboxed grader as `autograder grade`, once per notebook content, prints the part's
feedback to stdout (never stderr: nbgrader zeroes a cell with any stderr) and returns the part's
points, which nbgrader takes as the cell's partial credit.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .submission import PREFERRED_NOTEBOOK

_reports: dict[str, object] = {}  # notebook sha256 -> GradeReport


def find_notebook(folder: Path) -> Path | None:
    preferred = folder / PREFERRED_NOTEBOOK
    if preferred.is_file():
        return preferred
    notebooks = [p for p in folder.glob("*.ipynb") if p.is_file()]
    return notebooks[0] if len(notebooks) == 1 else None


def _report_for(path: Path):
    key = hashlib.sha256(path.read_bytes()).hexdigest()
    if key not in _reports:
        import warnings

        from .config import load_config
        from .pipeline import Grader

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Grader(load_config(), hide=(path.resolve().parent,), mode="spawn") as grader:
                _reports[key] = grader.grade(path)
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
        from .feedback import as_text

        lines.append(as_text(result.checks, indent="  "))
    lines.extend(f"  note: {notice}" for notice in report.notices)
    return "\n".join(lines)


def grade_part(part: str, notebook: str | Path | None = None) -> float:
    """Points earned by `part` of the notebook in the current directory (or `notebook`)."""
    path = Path(notebook) if notebook else find_notebook(Path.cwd())
    if path is None or not path.is_file():
        print(f"{part}: 0 points — the grader could not find the notebook in {Path.cwd()}")
        return 0.0
    try:
        report = _report_for(path)
    except Exception as failure:  # the grade must still be a number, and nothing may reach stderr
        print(f"{part}: 0 points — the grader failed: {type(failure).__name__}: {failure}")
        return 0.0
    print(part_feedback(report, part))
    result = report.parts.get(part)
    return float(result.score) if result else 0.0
