"""Notebook -> the code the student wrote, in notebook order, labelled by cell for messages.

Runs: answer cells (nbgrader `solution: true`), the instructor's locked set-up cells (grade_id
starting with `setup`) and cells without nbgrader metadata (added by the student). Skips the
instructor's demo, training and test cells. IPython magics and `!` shell lines are dropped.

Like nbgrader's autograde, a locked set-up cell the student edited runs as released (given the
released notebook's cells), with a notice; a deleted test cell is noted, its part graded as usual
(nbgrader puts it back when the course sets `c.OverwriteCells.add_missing_cells = True`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..records import CodeCell, StudentCode
from .submission import Submission


def _strip_magics(source: str) -> tuple[str, bool]:
    if source.lstrip().startswith("%%"):
        return "", True
    kept, dropped = [], False
    for line in source.splitlines():
        if line.lstrip().startswith(("%", "!")):
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(f"{indent}pass  # IPython line dropped by the grader")
            dropped = True
        else:
            kept.append(line)
    return "\n".join(kept), dropped


def released_cells(notebook: Path) -> dict[str, dict]:
    """grade_id -> nbgrader cell of the released notebook (empty when there is none to read)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    found = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            source = cell.get("source", "")
            found[meta["grade_id"]] = {**cell, "source": "".join(source) if isinstance(source, list) else source}
    return found


def _is_test_cell(cell: dict) -> bool:
    meta = cell["metadata"].get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _answer_label(source, grade_id: str) -> str:
    """'your answer cell for class Linear': the class the cell defines, as the student wrote it."""
    found = re.search(r"^class\s+(\w+)", _text(source), re.M)
    return f"your answer cell for class {found.group(1)}" if found else f"your answer cell '{grade_id}'"


def extract(submission: Submission, released: dict[str, dict] | None = None, answer_ids=()) -> StudentCode:
    """released: grade_id -> the released notebook's cell (released_cells); answer_ids: the grade_ids
    of the answer cells the notebook must have (the registry's): a missing, repeated or retyped one
    becomes a notice."""
    released = released or {}
    if submission.kind == "python":
        return StudentCode((CodeCell(submission.name, submission.text),), "python")
    cells, notices, seen = [], [], {}
    for number, cell in enumerate(submission.cells, start=1):
        meta = cell["metadata"]["nbgrader"]
        grade_id = str(meta.get("grade_id", ""))
        if grade_id:
            seen.setdefault(grade_id, []).append((number, cell.get("cell_type")))
        if cell.get("cell_type") != "code":
            continue
        # labels name what a student sees in Jupyter (no cell numbers: Jupyter shows none)
        if meta.get("solution"):
            label = _answer_label(cell["source"], grade_id)
        elif meta.get("locked") and grade_id.startswith("setup"):
            label = f"the set-up cell '{grade_id}'"
            original = released.get(grade_id, {}).get("source")
            if original is not None and cell["source"] != original:
                notices.append(f"{label}: this locked set-up cell was edited; the grader ran it as released "
                               f"(as nbgrader does), so your changes there were not used")
                cell = {**cell, "source": original}
        elif not meta:
            first = next((line.strip() for line in _text(cell["source"]).splitlines() if line.strip()), "")
            label = f"a cell you added ({first[:40]!r})" if first else "an empty cell you added"
        else:
            continue
        source, dropped = _strip_magics(cell["source"])
        if dropped:
            notices.append(f"{label}: IPython magics and ! shell lines are not run by the grader")
        cells.append(CodeCell(label, source))
    for grade_id in answer_ids:
        places = seen.get(grade_id, [])
        if not places:
            notices.append(f"the answer cell '{grade_id}' is missing (deleted, or its metadata changed?); "
                           f"code in cells you added is still run")
        elif len(places) > 1:
            notices.append(f"the answer cell id '{grade_id}' appears {len(places)} times "
                           f"(cells {', '.join(str(n) for n, _ in places)}); all are run in order")
        elif places[0][1] != "code":
            notices.append(f"the answer cell '{grade_id}' was changed to a {places[0][1]} cell, so it is not run")
    for grade_id, cell in released.items():
        if _is_test_cell(cell) and grade_id not in seen:
            notices.append(f"the test cell '{grade_id}' is missing (deleted?); its part is graded all the same")
    return StudentCode(tuple(cells), "notebook", tuple(notices))
