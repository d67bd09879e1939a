"""nbgrader on the same submissions (correct, buggy, unfinished, half finished) in one temporary course:

  a. the real `nbgrader generate_assignment` + `nbgrader autograde` with a course config that still
     runs notebooks in Jupyter kernels: every hidden `grade_part(...)` call refuses (0 points, and
     the command that fixes it), since a kernel that ran student code cannot be trusted;
  b. `autograder nbgrader setup`, then the same `nbgrader autograde`: nbgrader's own Autograde
     grades through the kit's sandbox, every test cell gets the kit's part score;
  c. `autograder nbgrader autograde` (the bridge) gives the same, and `nbgrader export` /
     `nbgrader generate_feedback` work on them.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course.config import KIT_ROOT, load_config

pytest.importorskip("nbgrader")
from nbgrader.api import Gradebook  # noqa: E402

pytestmark = pytest.mark.slow  # real nbgrader: a course set up and autograded in Jupyter kernels

SOURCE_NOTEBOOK = KIT_ROOT / "assignment" / "nn_from_scratch.ipynb"
NOTEBOOK = SOURCE_NOTEBOOK.name
ASSIGNMENT = "ps1"
STUDENTS = ("correct", "buggy", "unfinished")
# Appended to the correct Linear answer (independent of how the answer is written):
BUGGY_LINEAR = """

class Linear(Linear):  # db of shape (1, D_out): summed with keepdim=True
    def backward(self, dh):
        dx = super().backward(dh)
        self.db = self.db.reshape(1, -1)
        return dx
"""
HALF_FINISHED = "half_finished"  # Linear.forward written, Linear.backward not yet
HALF_FINISHED_LINEAR = """

class Linear(Linear):
    def backward(self, dh):
        # YOUR CODE HERE
        raise NotImplementedError()
"""
TEST_CELLS = {f"test_{part}": part for part in load_config().parts}  # the source notebook names them so


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs the `alembic` script when it creates a gradebook: it must be on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True,
                          text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def kit(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "nbgrader", "autograde", *args],
                          cwd=course, capture_output=True, text=True, timeout=600)


def without_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.split("\n")
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def submissions(course: Path) -> dict[str, dict]:
    """The released notebook as handed in by four students."""
    released = json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text())
    source = json.loads(SOURCE_NOTEBOOK.read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: without_solution_markers("".join(c["source"]))
               for c in source["cells"] if c["metadata"].get("nbgrader", {}).get("solution")}
    correct = json.loads(json.dumps(released))
    for cell in correct["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    variants = {}
    for name, appended in (("buggy", BUGGY_LINEAR), (HALF_FINISHED, HALF_FINISHED_LINEAR)):
        variants[name] = json.loads(json.dumps(correct))
        linear = next(c for c in variants[name]["cells"]
                      if c["metadata"].get("nbgrader", {}).get("grade_id") == "linear")
        linear["source"] += appended
    return {"correct": correct, "unfinished": released, **variants}


def cell_scores(course: Path, students=(*STUDENTS, HALF_FINISHED)) -> dict[str, dict[str, float]]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {student: {grade.name: grade.auto_score
                          for grade in gradebook.find_submission(ASSIGNMENT, student).notebooks[0].grades}
                for student in students}


def grade_cells_of(notebook_path: Path) -> dict[str, dict]:
    notebook = nbformat.read(notebook_path, as_version=4)  # multi-line fields joined into strings
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in notebook["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")}


def setup(course: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "autograder", "nbgrader", "setup"], cwd=course,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def autograde_aside(course: Path, name: str) -> dict:
    """`nbgrader autograde --force`, its gradebook scores and autograded notebooks kept aside."""
    nbgrader(course, "autograde", ASSIGNMENT, "--force")
    kept = course / f"autograded.{name}"
    shutil.copytree(course / "autograded", kept)
    return {"scores": cell_scores(course), "autograded": kept}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """generate_assignment, four submissions, nbgrader's autograde in kernels (refused), then through
    the kit after `autograder nbgrader setup`, then the kit's bridge over the same course."""
    course = tmp_path_factory.mktemp("course")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "nn"\n')
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    for student, notebook in submissions(course).items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_text(json.dumps(notebook, indent=1))
    in_kernels = autograde_aside(course, "kernels")
    setup(course)
    own = autograde_aside(course, "nbgrader")
    bridge = kit(course, ASSIGNMENT, "--course-dir", str(course))
    return {"path": course, "kernels": in_kernels, "real": own, "bridge": bridge, "kit_scores": cell_scores(course)}


@pytest.fixture(scope="module")
def kit_reports(course, grader):
    """The kit's own grade of each submitted notebook, graded directly."""
    return {student: grader.grade(course["path"] / "submitted" / student / ASSIGNMENT / NOTEBOOK)
            for student in STUDENTS}


def test_nbgrader_autograde_in_kernels_refuses_in_every_test_cell(course):
    for student in STUDENTS:
        assert all(score == 0 for score in course["kernels"]["scores"][student].values()), student
        cells = grade_cells_of(course["kernels"]["autograded"] / student / ASSIGNMENT / NOTEBOOK)
        for grade_id in TEST_CELLS:
            outputs = cells[grade_id]["outputs"]
            assert not [o for o in outputs if o.get("name") == "stderr"], (student, grade_id)
            said = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
            assert "not graded" in said and "autograder nbgrader setup" in said, (student, grade_id, said)


def test_nbgrader_autograde_through_the_kit_gives_every_test_cell_the_kits_part_score(course, kit_reports, config):
    for student in STUDENTS:
        parts = kit_reports[student].parts
        for cell, part in TEST_CELLS.items():
            assert course["real"]["scores"][student][cell] == pytest.approx(parts[part].score), (student, cell)
    scores = course["real"]["scores"]
    assert scores["correct"] == {cell: config.part_points(part) for cell, part in TEST_CELLS.items()}
    assert 0 < scores["buggy"]["test_linear"] < config.part_points("linear")
    assert all(score == 0 for score in scores["unfinished"].values())  # no full credit for nothing


def test_nbgrader_test_cells_write_nothing_to_stderr_and_end_in_the_score(course, kit_reports):
    for student in STUDENTS:
        cells = grade_cells_of(course["real"]["autograded"] / student / ASSIGNMENT / NOTEBOOK)
        for grade_id, part in TEST_CELLS.items():
            outputs = cells[grade_id]["outputs"]
            assert not [o for o in outputs if o.get("name") == "stderr"], (student, grade_id)
            if any(o["output_type"] == "error" for o in outputs):  # a visible self-check stopped the cell
                assert kit_reports[student].parts[part].score == 0, (student, grade_id)
                continue
            (value,) = [o for o in outputs if o["output_type"] == "execute_result"]
            assert float(value["data"]["text/plain"]) == kit_reports[student].parts[part].score  # not True


def test_nbgrader_gives_partial_credit_to_a_half_finished_class(course, grader):
    report = grader.grade(course["path"] / "submitted" / HALF_FINISHED / ASSIGNMENT / NOTEBOOK)
    assert report.parts["linear"].score > 0  # the forward checks pass
    assert course["real"]["scores"][HALF_FINISHED]["test_linear"] == report.parts["linear"].score


def test_kit_bridge_agrees_with_nbgrader_autograde_cell_by_cell(course):
    assert course["bridge"].returncode == 0, course["bridge"].stderr
    real = {student: course["real"]["scores"][student] for student in STUDENTS}
    assert {student: course["kit_scores"][student] for student in STUDENTS} == real
    for student in STUDENTS:
        assert student in course["bridge"].stdout


def test_kit_bridge_notebooks_show_the_kits_feedback_and_no_hidden_tests(course, kit_reports):
    from autograder.platforms.kernel_hook import part_feedback

    for student in STUDENTS:
        cells = grade_cells_of(course["path"] / "autograded" / student / ASSIGNMENT / NOTEBOOK)
        for grade_id, part in TEST_CELLS.items():
            cell = cells[grade_id]
            assert "grade_part" not in cell["source"] and "HIDDEN TESTS" not in cell["source"]
            stream, result = cell["outputs"]
            assert stream["name"] == "stdout"
            assert stream["text"].strip() == part_feedback(kit_reports[student], part).strip()
            assert float(result["data"]["text/plain"]) == kit_reports[student].parts[part].score


def test_nbgrader_export_and_generate_feedback_work_on_the_bridges_gradebook(course, config):
    path = course["path"]
    nbgrader(path, "export", "--to", str(path / "grades.csv"))
    rows = {row["student_id"]: row for row in csv.DictReader((path / "grades.csv").open())}
    for student in STUDENTS:
        assert float(rows[student]["score"]) == pytest.approx(sum(course["kit_scores"][student].values()))
        assert float(rows[student]["max_score"]) == sum(config.part_points(p) for p in TEST_CELLS.values())
    nbgrader(path, "generate_feedback", ASSIGNMENT, "--force")
    html = (path / "feedback" / "buggy" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    total = sum(course["kit_scores"]["buggy"].values())
    assert f"Score: {total:.1f} / {float(rows['buggy']['max_score']):.1f}" in html
    assert "linear.backward.grad_b" in html  # the failing check's feedback reaches the student
    assert "grade_part" not in html and "BEGIN HIDDEN TESTS" not in html


def test_an_unreadable_notebook_is_a_zero_with_a_note_not_a_crash(course):
    path = course["path"]
    folder = path / "submitted" / "mallory" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / NOTEBOOK).write_text("{ this is not json")
    done = kit(path, ASSIGNMENT, "--course-dir", str(path), "--student", "mallory")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "mallory" in done.stdout and "not a readable notebook" in done.stdout
    with Gradebook(f"sqlite:///{path / 'gradebook.db'}") as gradebook:
        grades = gradebook.find_submission(ASSIGNMENT, "mallory").notebooks[0].grades
        assert grades and all(grade.auto_score == 0 for grade in grades)


@pytest.mark.parametrize("problem", ["unknown assignment", "no gradebook"])
def test_unusable_course_is_one_line_and_exit_2(course, tmp_path, problem):
    if problem == "unknown assignment":
        done = kit(course["path"], "ps9", "--course-dir", str(course["path"]))
        expected = "generate_assignment ps9"
    else:
        done = kit(tmp_path, ASSIGNMENT, "--course-dir", str(tmp_path))
        expected = "no gradebook"
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr


def test_a_test_cell_worth_other_points_than_grading_toml_is_refused(tmp_path):
    from autograder.platforms.nbgrader_autograde import course_directory, parts_of_test_cells
    from autograder.records import GraderError

    course = tmp_path / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    notebook = json.loads(SOURCE_NOTEBOOK.read_text())
    cell = next(c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_relu")
    cell["metadata"]["nbgrader"]["points"] = 1
    (course / "source" / ASSIGNMENT / NOTEBOOK).write_text(json.dumps(notebook))
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    coursedir, _ = course_directory(course, ASSIGNMENT, None)
    with pytest.raises(GraderError, match="test_relu.*worth 1 points.*'relu' is worth 9"):
        parts_of_test_cells(coursedir, ASSIGNMENT, load_config())
