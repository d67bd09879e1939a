"""The batch's files: results/<student>.json (the source of truth), grades.csv built from them.

Each result is written atomically (a temporary file renamed over the target) the moment it is
done, so an interrupted batch leaves only whole results behind. A result records digests of the
grading.toml and of the submission it was graded with; a re-run regrades a student only when
there is no whole, current result (or with --force). grades.csv is derived data: rebuilt from the
results at the end of every run, byte-identical for the same results.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

from ..files import write_atomic
from ..records import GraderError
from ..intake import safezip
from ..sandbox.trees import open_file, walk
from .layouts import Item

RESULTS = "results"
CSV_NAME = "grades.csv"
FIXED_COLUMNS = ("student", "score", "max_score")
SUBTOTAL = " subtotal"  # the last columns: "<part> subtotal"
UNREADABLE = "unreadable"
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection); ids can
# (Gradescope SIDs, file names like "+1.ipynb"). The usual leading apostrophe makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def submission_digest(item: Item, member_cap: int) -> str:
    """What was graded: the file's bytes, or a folder's usable files with their relative paths."""
    digest = hashlib.sha256()
    try:
        if item.source.is_file():
            with open(item.source, "rb") as stream:
                digest.update(stream.read(member_cap))
        else:  # within trees' caps: a tree past them is refused by the grader, whatever it holds
            for entry in walk(item.source, skip=lambda name: safezip.is_junk((name,)), complete=False):
                if entry.kind == "file" and Path(entry.name).suffix.lower() in safezip.KEPT_SUFFIXES:
                    digest.update(os.fsencode("/".join(entry.parts)) + b"\0")
                    with open_file(item.source, entry.parts) as stream:
                        digest.update(stream.read(member_cap))
                    digest.update(b"\0")
    except OSError:  # the grader reports an unreadable submission to the student; never reuse its result
        return UNREADABLE
    return digest.hexdigest()[:16]


# The output folder, its results and grades.csv are the grader's alone (0700, 0600): where children
# run under another uid but see the host's files (root without namespaces, as in Docker), a
# submission that found the folder (in the grader's command line) could otherwise read every result.
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600


def prepare(out: Path) -> Path:
    results = out / RESULTS
    try:
        out.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        results.mkdir(exist_ok=True, mode=PRIVATE_FOLDER)
        for folder in (out, results):  # made by an earlier run, or by the instructor
            folder.chmod(PRIVATE_FOLDER)
        for leftover in results.glob(".*.tmp*"):  # an earlier run was killed mid-write
            leftover.unlink(missing_ok=True)
    except OSError as failure:
        raise GraderError(f"cannot use {out} as the output folder: {failure.strerror}") from None
    return results


def result_path(out: Path, student: str) -> Path:
    return out / RESULTS / f"{student}.json"


def member_results(item: Item, result: dict, stamp: dict) -> dict[str, dict]:
    """The one result of a submission as each member's own results.json object."""
    per_member = {}
    for member in item.members:
        copy = dict(result)
        extra = dict(copy.get("extra_data") or {})
        extra.update(student=member, submission=item.label, batch=stamp)
        if len(item.members) > 1:
            extra["group"] = list(item.members)
        copy["extra_data"] = extra
        per_member[member] = copy
    return per_member


def write_result(out: Path, student: str, result: dict) -> None:
    write_atomic(result_path(out, student), json.dumps(result, indent=1, sort_keys=True) + "\n", mode=PRIVATE_FILE)


def read_result(out: Path, student: str) -> dict | None:
    """A whole result, or None (missing, cut short or not ours)."""
    try:
        result = json.loads(result_path(out, student).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or not isinstance(result.get("tests"), list):
        return None
    return result


def is_current(result: dict | None, stamp: dict) -> bool:
    if not result or stamp.get("submission") == UNREADABLE:
        return False
    return (result.get("extra_data") or {}).get("batch") == stamp


def format_number(value) -> str:
    """Fixed formatting for the CSV: integers without a point, others with at most 6 decimals."""
    if value is None or value == "":
        return ""
    number = round(float(value), 6) + 0.0  # + 0.0 turns -0.0 into 0.0
    if number == int(number):
        return str(int(number))
    return f"{number:.6f}".rstrip("0")


def as_text_cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as the text it is, never evaluates."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _points(value) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def csv_text(results: dict[str, dict], check_names: list[str], overrides: dict[str, str] | None = None) -> str:
    """One row per student, sorted; columns student (as_text_cell), score, max_score, then every
    check in grading.toml order (empty where a result has no such check), then one subtotal per part
    ("<part> subtotal", appended last so scripts reading the earlier columns by position keep working),
    and, when the instructor has an overrides.csv, an `override` column with each student's reasons."""
    parts = list(dict.fromkeys(name.split(".", 1)[0] for name in check_names))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    with_overrides = overrides is not None
    writer.writerow([*FIXED_COLUMNS, *check_names, *(f"{part}{SUBTOTAL}" for part in parts),
                     *(["override"] if with_overrides else [])])
    for student in sorted(results):
        result = results[student]
        by_name = {t.get("name"): t.get("score") for t in result["tests"] if isinstance(t, dict)}
        score = result.get("score", sum(float(s or 0) for s in by_name.values()))
        max_score = result.get("max_score", sum(float(t.get("max_score") or 0) for t in result["tests"]))
        subtotals = {part: sum(_points(by_name.get(name)) for name in check_names if name.startswith(part + "."))
                     for part in parts}
        writer.writerow([as_text_cell(student), format_number(score), format_number(max_score),
                         *(format_number(by_name.get(name)) for name in check_names),
                         *(format_number(subtotals[part]) for part in parts),
                         *([as_text_cell(overrides.get(student, ""))] if with_overrides else [])])
    return buffer.getvalue()


def write_csv(out: Path, results: dict[str, dict], check_names: list[str],
              overrides: dict[str, str] | None = None) -> Path:
    path = out / CSV_NAME
    write_atomic(path, csv_text(results, check_names, overrides), mode=PRIVATE_FILE)
    return path
