"""The whole nbgrader round trip as a JupyterHub course runs it, with the real CLI and a real exchange.

The instructor (this process's user) sets the course up with `autograder nbgrader setup`, then runs
`generate_assignment` and `release_assignment`; students, each a uid of their own (setpriv), run
`fetch_assignment` and `submit` from their home folders; the instructor runs `collect`,
`autograde` (nbgrader's own, which grades in the kit's sandbox), `generate_feedback`,
`release_feedback` and `export`; the students `fetch_feedback`.

    alice    correct work
    bob      buggy work, then resubmits it fixed (the resubmission is what counts)
    mallory  an unfinished notebook with cells that replace grade_part and read the secrets
    dave, erin  submit at the same moment (correct; buggy)
    carol    correct work, after the due date (`penalty_method = "zero"`: scored 0, raw 58)
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
from test_nbgrader import ASSIGNMENT, NOTEBOOK, SOURCE_NOTEBOOK, submissions  # noqa: E402
from test_nbgrader_hostile import HOSTILE_CELLS, reads_secrets_cell, secret_markers, student_cell  # noqa: E402

from autograder.course.config import KIT_ROOT  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

COURSE_ID = "nn"
STUDENTS = {"alice": 2101, "bob": 2102, "mallory": 2103, "dave": 2104, "erin": 2105, "carol": 2106}
FEEDBACK_HTML = NOTEBOOK.replace(".ipynb", ".html")

if os.geteuid() != 0 or not shutil.which("setpriv"):
    pytest.skip("students as other uids need root and setpriv", allow_module_level=True)


def environment(home: Path, user: str) -> dict:
    path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"  # nbgrader runs alembic
    keep = {name: os.environ[name] for name in ("PYTHONPATH", "LANG") if name in os.environ}
    return {**keep, "HOME": str(home), "USER": user, "LOGNAME": user, "PATH": path}


def instructor(course: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          timeout=900, env=environment(Path.home(), "instructor"))
    assert done.returncode == 0, f"nbgrader {' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def student(home: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    uid = STUDENTS[name]
    command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
               sys.executable, "-m", "nbgrader", *args, "--course", COURSE_ID,
               f"--student={name}"]  # these uids have no passwd entry to take the name from
    done = subprocess.run(command, cwd=home, capture_output=True, text=True, timeout=900,
                          env=environment(home, name))
    assert done.returncode == 0, f"{name}: nbgrader {' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def hand_in(home: Path, name: str, notebook: dict) -> None:
    """The student's edit of the fetched notebook: their answers, saved as them."""
    path = home / ASSIGNMENT / NOTEBOOK
    path.write_text(json.dumps(notebook, indent=1))
    os.chown(path, STUDENTS[name], STUDENTS[name])


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    # Folders the students' uids can reach: /tmp itself, not pytest's private (0700) folder.
    shared = Path(tempfile.mkdtemp(prefix="nbgrader-hub-"))
    os.chmod(shared, 0o755)
    exchange = shared / "exchange"
    exchange.mkdir()
    os.chmod(exchange, 0o777)
    course = tmp_path_factory.mktemp("instructor") / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (course / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\nc.Exchange.root = {str(exchange)!r}\n"
        f"c.LateSubmissionPlugin.penalty_method = 'zero'\n")
    setup = subprocess.run([sys.executable, "-m", "autograder", "nbgrader", "setup"], cwd=course,
                           capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr
    homes = {}
    for name, uid in STUDENTS.items():
        home = shared / name
        home.mkdir()
        (home / "nbgrader_config.py").write_text(
            f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\nc.Exchange.root = {str(exchange)!r}\n")
        for path in (home, home / "nbgrader_config.py"):
            os.chown(path, uid, uid)
        homes[name] = home
    try:
        instructor(course, "generate_assignment", ASSIGNMENT, "--force")
        instructor(course, "release_assignment", ASSIGNMENT)
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda name: student(homes[name], name, "fetch_assignment", ASSIGNMENT), STUDENTS))

        base = submissions(course)
        hostile = json.loads(json.dumps(base["unfinished"]))
        secrets = [KIT_ROOT / "grading.secret", course / "source" / ASSIGNMENT / NOTEBOOK, course / "gradebook.db",
                   homes["alice"] / ASSIGNMENT / NOTEBOOK]
        for index, source in enumerate([HOSTILE_CELLS["patches_grade_part"], reads_secrets_cell(secrets)]):
            hostile["cells"].insert(2 + index, {**student_cell(source), "id": f"hostile-{index}"})
        final = {"alice": base["correct"], "bob": base["correct"], "mallory": hostile, "dave": base["correct"],
                 "erin": base["buggy"], "carol": base["correct"]}

        for name in ("alice", "mallory"):
            hand_in(homes[name], name, final[name])
            student(homes[name], name, "submit", ASSIGNMENT)
        hand_in(homes["bob"], "bob", base["buggy"])
        student(homes["bob"], "bob", "submit", ASSIGNMENT)
        for name in ("dave", "erin"):
            hand_in(homes[name], name, final[name])
        with ThreadPoolExecutor(max_workers=2) as pool:  # the same moment
            list(pool.map(lambda name: student(homes[name], name, "submit", ASSIGNMENT), ("dave", "erin")))
        hand_in(homes["bob"], "bob", final["bob"])
        student(homes["bob"], "bob", "submit", ASSIGNMENT)  # the resubmission, fixed
        # nbgrader keeps whole seconds: the due date is the second after bob's resubmission (taken
        # truncated, it could fall before it), and carol's submission comes after that second
        due_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
        time.sleep((due_at - datetime.now(timezone.utc)).total_seconds() + 0.05)
        due = due_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        instructor(course, "db", "assignment", "add", ASSIGNMENT, f"--duedate={due}")
        hand_in(homes["carol"], "carol", final["carol"])
        student(homes["carol"], "carol", "submit", ASSIGNMENT)  # after the due date

        instructor(course, "collect", ASSIGNMENT)
        graded = instructor(course, "autograde", ASSIGNMENT)
        instructor(course, "generate_feedback", ASSIGNMENT)
        instructor(course, "release_feedback", ASSIGNMENT)
        instructor(course, "export", "--to", str(course / "grades.csv"))
        for name in STUDENTS:
            student(homes[name], name, "fetch_feedback", ASSIGNMENT)
        with open(course / "grades.csv", newline="") as stream:
            grades = {row["student_id"]: row for row in csv.DictReader(stream)}
        yield {"course": course, "homes": homes, "final": final, "grades": grades, "log": graded.stderr,
               "first_bob": base["buggy"]}
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_every_student_is_collected_and_graded_once_from_their_last_submission(round_trip):
    assert set(round_trip["grades"]) == set(STUDENTS)
    for name in STUDENTS:
        collected = json.loads((round_trip["course"] / "submitted" / name / ASSIGNMENT / NOTEBOOK).read_text())
        assert collected["cells"] == round_trip["final"][name]["cells"], name  # bob: the resubmission


def test_each_grade_is_what_autograder_grade_gives_the_notebook_handed_in(round_trip, grader):
    for name, row in round_trip["grades"].items():
        report = grader.grade(round_trip["course"] / "submitted" / name / ASSIGNMENT / NOTEBOOK)
        assert float(row["raw_score"]) == pytest.approx(report.score), name
        assert float(row["max_score"]) == 58
    raw = {name: float(row["raw_score"]) for name, row in round_trip["grades"].items()}
    assert raw["alice"] == raw["bob"] == raw["dave"] == raw["carol"] == 58
    assert 0 < raw["erin"] < 58 and raw["mallory"] == 0


def test_the_late_submission_gets_the_courses_penalty_and_the_others_none(round_trip):
    for name, row in round_trip["grades"].items():
        late = name == "carol"
        assert float(row["late_submission_penalty"]) == (58 if late else 0), name
        assert float(row["score"]) == (0 if late else float(row["raw_score"])), name


def test_each_student_fetches_their_own_feedback_and_no_secret(round_trip):
    markers = secret_markers(round_trip["course"])
    for name, home in round_trip["homes"].items():
        fetched = list((home / ASSIGNMENT / "feedback").glob(f"*/{FEEDBACK_HTML}"))
        assert len(fetched) == 1, name
        html = fetched[0].read_text()
        assert "BEGIN HIDDEN TESTS" not in html, name
        if name != "mallory":  # whose own cells name it
            assert "grade_part" not in html, name
        if name == "mallory":
            assert "LEAKED" in html  # the attempt ran (in the sandbox) and found nothing
            assert not [marker for marker, text in markers.items() if text in html]
