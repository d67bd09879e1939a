"""The instructor's grades after a batch: overrides.csv kept across re-runs, gradebook.csv, and the
Canvas import file written by `autograder export` from Canvas's own export."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import notebook_submission

pytestmark = pytest.mark.slow  # a real batch


def autograder(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("gradebook")
    submissions = root / "ps1"
    submissions.mkdir()
    correct = notebook_submission()
    (submissions / "alice@uni.edu.ipynb").write_text(correct)
    buggy = correct.replace("return h.clamp(min=0)", "return h.clamp(min=-1)")
    assert buggy != correct
    (submissions / "bob.ipynb").write_text(buggy)
    out = root / "graded"
    done = autograder("batch", str(submissions), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return submissions, out


def test_gradebook_csv_has_one_column_for_the_assignment(graded):
    _, out = graded
    book = rows(out / "gradebook.csv")
    assert [list(row) for row in book][0] == ["student", "ps1"]
    by_student = {row["student"]: row["ps1"] for row in book}
    totals = {row["student"]: row["score"] for row in rows(out / "grades.csv")}
    assert by_student == totals and by_student["alice@uni.edu"] == "58"


def test_overrides_change_the_grades_survive_a_rerun_and_leave_results_as_measured(graded):
    submissions, out = graded
    before = {row["student"]: row for row in rows(out / "grades.csv")}
    measured = json.loads((out / "results" / "bob.json").read_text())
    check = next(t for t in measured["tests"] if t["score"] < t["max_score"])
    (out / "overrides.csv").write_text(
        "student,check,points,reason\n"
        f"bob,{check['name']},{check['max_score']},regrade request\n"
        "alice@uni.edu,adjust,-5,late by two days\n"
        "carol,adjust,3,no such student\n")
    for _ in range(2):  # the second run grades nothing and keeps the overrides
        done = autograder("batch", str(submissions), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "no graded student 'carol'" in done.stderr
        after = {row["student"]: row for row in rows(out / "grades.csv")}
        assert float(after["bob"]["score"]) == float(before["bob"]["score"]) + check["max_score"] - check["score"]
        assert float(after["bob"][check["name"]]) == check["max_score"]
        assert after["bob"]["override"] == "regrade request"
        assert float(after["alice@uni.edu"]["score"]) == float(before["alice@uni.edu"]["score"]) - 5
        assert {row["student"]: row["ps1"] for row in rows(out / "gradebook.csv")}["alice@uni.edu"] == "53"
        assert json.loads((out / "results" / "bob.json").read_text())["score"] == measured["score"]
    (out / "overrides.csv").unlink()


def test_a_malformed_overrides_file_is_one_line_and_exit_2(graded):
    submissions, out = graded
    (out / "overrides.csv").write_text("student,check,points\nbob,adjust,lots\n")
    try:
        done = autograder("batch", str(submissions), "--out", str(out))
    finally:
        (out / "overrides.csv").unlink()
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "line 2" in done.stderr and "Traceback" not in done.stderr


def test_export_writes_canvas_import_from_canvas_export(graded, tmp_path):
    _, out = graded
    canvas = tmp_path / "canvas.csv"
    canvas.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (11)\n"
                      "    Points Possible,,,,,10\n"
                      "\"Liddell, Alice\",101,s1,alice@uni.edu,A,7\n"
                      "Dan Nobody,103,s3,dan,A,9\n")
    target = tmp_path / "import.csv"
    done = autograder("export", str(out), "--canvas", str(canvas), "--assignment", "NN from scratch",
                      "--out", str(target))
    assert done.returncode == 0, done.stderr
    assert "bob is not in the Canvas export" in done.stderr
    table = list(csv.reader(io.StringIO(target.read_text())))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "NN from scratch"]
    assert table[1][0] == "Points Possible" and table[1][-1] == "58"
    assert table[2] == ["Liddell, Alice", "101", "s1", "alice@uni.edu", "A", "58"]
    assert table[3] == ["Dan Nobody", "103", "s3", "dan", "A", ""]  # not graded: left empty


def test_export_refuses_what_is_no_batch_folder_or_no_canvas_export(graded, tmp_path):
    _, out = graded
    done = autograder("export", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "grades.csv" in done.stderr
    (tmp_path / "other.csv").write_text("name,score\nalice,3\n")
    done = autograder("export", str(out), "--canvas", str(tmp_path / "other.csv"))
    assert done.returncode == 2 and "Canvas" in done.stderr and "Traceback" not in done.stderr


def test_the_readmes_export_line_runs_as_pasted(graded, tmp_path):
    from test_readme import bash_blocks

    _, out = graded
    [line] = bash_blocks("## Grading a class")
    (tmp_path / "canvas_export.csv").write_text("Student,ID,SIS User ID,SIS Login ID,Section\n"
                                                "Bob,102,s2,bob,A\n")
    script = line.replace(".venv/bin/", f"{Path(sys.executable).parent}/").replace(" DIR ", f" {out} ")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    table = list(csv.reader(io.StringIO((tmp_path / "canvas_import.csv").read_text())))
    assert table[0][-1] == "NN from scratch" and table[2][:4] == ["Bob", "102", "s2", "bob"] and table[2][-1]
