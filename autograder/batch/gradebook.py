"""The instructor's side of a batch's grades: overrides.csv laid over the measured results, and the
grades in the shapes gradebooks import (gradebook.csv; Canvas's import file from its own export).

results/<student>.json stays what the grader measured; an override lives only in overrides.csv,
which the kit reads every time it writes the grades and never writes, so it survives every re-run.
"""
from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..files import write_atomic
from ..records import GraderError
from .outputs import as_text_cell, format_number

OVERRIDES_NAME = "overrides.csv"
GRADEBOOK_NAME = "gradebook.csv"
OVERRIDE_COLUMNS = ("student", "check", "points", "reason")
ADJUST = "adjust"  # the `check` of a change to the total rather than to one check
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


@dataclass(frozen=True)
class Override:
    line: int
    student: str
    check: str
    points: float
    reason: str


@dataclass
class Overridden:
    results: dict[str, dict]             # the results with every override applied (copies)
    reasons: dict[str, str] = field(default_factory=dict)   # student -> "reason; reason"
    warnings: list[str] = field(default_factory=list)


def read_overrides(out: Path) -> list[Override]:
    """The rows of DIR/overrides.csv (none when there is no such file); GraderError names a bad line."""
    path = Path(out) / OVERRIDES_NAME
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as failure:
        raise GraderError(f"cannot read {path}: {getattr(failure, 'strerror', None) or failure}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in OVERRIDE_COLUMNS[:3] if column not in (reader.fieldnames or [])]
    if missing:
        raise GraderError(f"{path}: the first line must name the columns {','.join(OVERRIDE_COLUMNS)} "
                          f"(missing: {', '.join(missing)})")
    rows = []
    for row in reader:
        student, check = (row.get("student") or "").strip(), (row.get("check") or "").strip()
        if not student and not check:
            continue  # a blank line
        try:
            points = float((row.get("points") or "").strip())
        except ValueError:
            raise GraderError(f"{path}, line {reader.line_num}: points must be a number, "
                              f"not {row.get('points')!r}") from None
        if points != points or points in (float("inf"), float("-inf")):
            raise GraderError(f"{path}, line {reader.line_num}: points must be a finite number")
        rows.append(Override(reader.line_num, student, check, points, (row.get("reason") or "").strip()))
    return rows


def apply_overrides(results: dict[str, dict], overrides: list[Override], out: Path) -> Overridden:
    """The results with each override applied: a check's score set (0 to its maximum), or `adjust`
    added to the total. Overrides naming no graded student or no check of theirs are warned about."""
    overridden = Overridden(dict(results))
    reasons: dict[str, list[str]] = {}
    where = Path(out) / OVERRIDES_NAME
    for override in overrides:
        result = overridden.results.get(override.student)
        if result is None:
            overridden.warnings.append(f"{where}, line {override.line}: no graded student "
                                       f"'{override.student}'; ignored")
            continue
        if result is results.get(override.student):  # copy once, before the first change
            result = overridden.results[override.student] = copy.deepcopy(result)
        if override.check == ADJUST:
            result["score"] = float(result.get("score") or 0) + override.points
        else:
            test = next((t for t in result.get("tests", []) if isinstance(t, dict) and t.get("name") == override.check),
                        None)
            if test is None:
                overridden.warnings.append(f"{where}, line {override.line}: '{override.check}' is no check of "
                                           f"{override.student}'s result (a check name, or '{ADJUST}'); ignored")
                continue
            maximum = float(test.get("max_score") or 0)
            points = min(max(override.points, 0.0), maximum)
            result["score"] = float(result.get("score") or 0) - float(test.get("score") or 0) + points
            test["score"] = points
        reasons.setdefault(override.student, []).append(override.reason or f"{override.check} overridden")
        extra = result.setdefault("extra_data", {})
        extra.setdefault("overrides", []).append({"check": override.check, "points": override.points,
                                                  "reason": override.reason})
    overridden.reasons = {student: "; ".join(texts) for student, texts in reasons.items()}
    return overridden


def gradebook_text(results: dict[str, dict], assignment: str) -> str:
    """One row per student, one column for the assignment's total: what gradebooks import."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["student", assignment])
    for student in sorted(results):
        writer.writerow([as_text_cell(student), format_number(results[student].get("score"))])
    return buffer.getvalue()


def write_gradebook(out: Path, results: dict[str, dict], assignment: str) -> Path:
    path = Path(out) / GRADEBOOK_NAME
    write_atomic(path, gradebook_text(results, assignment))
    return path


def _keys(text: str) -> set[str]:
    """The forms an id is matched by: as written and, for an e-mail address, its user part."""
    text = text.strip().lower()
    return {text, text.split("@", 1)[0]} - {""}


def canvas_import_text(results: dict[str, dict], canvas_export: Path, assignment: str) -> tuple[str, list[str]]:
    """Canvas's gradebook import file: its five student columns from its own export, then the
    assignment's column (the "Points Possible" row first); and the graded students Canvas does not list."""
    try:
        text = Path(canvas_export).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as failure:
        raise GraderError(f"cannot read {canvas_export}: {getattr(failure, 'strerror', None) or failure}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or any(column not in rows[0] for column in CANVAS_STUDENT_COLUMNS):
        raise GraderError(f"{canvas_export} is not a Canvas gradebook export (its first line must name the "
                          f"columns {', '.join(CANVAS_STUDENT_COLUMNS)}: Grades → Export → CSV)")
    by_key: dict[str, str] = {}
    for student in results:
        for key in _keys(student):
            by_key.setdefault(key, student)
    maximum = max((float(r.get("max_score") or 0) for r in results.values()), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_STUDENT_COLUMNS, assignment])
    writer.writerow(["Points Possible", "", "", "", "", format_number(maximum)])
    matched = set()
    for row in rows:
        if "Points Possible" in (row.get("Student") or ""):  # its own row, written above
            continue
        student = next((by_key[key] for column in ("SIS Login ID", "SIS User ID")
                        for key in _keys(row.get(column) or "") if key in by_key), None)
        score = format_number(results[student].get("score")) if student else ""
        matched.update([student] if student else [])
        # the student columns are Canvas's own, as it wrote them
        writer.writerow([row.get(column) or "" for column in CANVAS_STUDENT_COLUMNS] + [score])
    return buffer.getvalue(), sorted(set(results) - matched)
