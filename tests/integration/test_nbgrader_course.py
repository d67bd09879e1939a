"""A course's nbgrader config: `autograder nbgrader setup` makes nbgrader's own Autograde grade
through the kit, `autograder doctor` in the course folder says whether it does."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
from autograder.platforms.nbgrader_course import BEGIN, doctor_line, setup, status  # noqa: E402

COURSE_ID = 'c = get_config()\nc.CourseDirectory.course_id = "nn"\n'


@pytest.fixture
def course(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter"))  # no instructor-wide config of this machine's
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path / "jupyter"))
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(COURSE_ID)
    return course


def test_a_course_that_runs_kernels_is_not_through_the_kit(course):
    found = status(course)
    assert not found.through_kit and "Execute" in found.why
    assert "autograder nbgrader setup" in found.line()


def test_setup_puts_the_kits_preprocessors_in_and_keeps_the_course_settings(course):
    setup(course)
    text = (course / "nbgrader_config.py").read_text()
    assert text.startswith(COURSE_ID) and text.count(BEGIN) == 1
    assert status(course).through_kit
    setup(course, grading_toml="/srv/course/grading.toml")  # rerun: its block replaced, not repeated
    text = (course / "nbgrader_config.py").read_text()
    assert text.count(BEGIN) == 1 and "c.KitGrade.grading_toml = '/srv/course/grading.toml'" in text
    assert status(course).through_kit


def test_a_later_line_that_puts_execute_back_is_caught(course):
    setup(course)
    with (course / "nbgrader_config.py").open("a") as config:
        config.write("c.Autograde.autograde_preprocessors = c.Autograde.autograde_preprocessors + "
                     "['nbgrader.preprocessors.Execute']\n")
    assert not status(course).through_kit


def test_an_instructor_wide_config_counts_as_nbgrader_reads_it(course, tmp_path):
    """~/.jupyter/nbgrader_config.py is read before the course's own file: the course's wins."""
    (tmp_path / "jupyter").mkdir()
    (tmp_path / "jupyter" / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.Autograde.autograde_preprocessors = ['autograder.platforms.nbgrader_autograde.KitGrade']\n")
    assert status(course).through_kit
    (course / "nbgrader_config.py").write_text(COURSE_ID + "c.Autograde.autograde_preprocessors = "
                                               "['nbgrader.preprocessors.Execute']\n")
    assert not status(course).through_kit


def test_a_broken_config_is_a_sentence_not_a_traceback(course):
    (course / "nbgrader_config.py").write_text("c = get_config(\n")
    found = status(course)
    assert not found.through_kit and "SyntaxError" in found.why


@pytest.mark.slow  # `autograder doctor`, in and out of a course
def test_doctor_speaks_of_the_course_only_in_a_course_folder(course, tmp_path):
    assert doctor_line(tmp_path / "nothing") is None
    assert "NOT through the kit" in doctor_line(course)
    done = subprocess.run([sys.executable, "-m", "autograder", "nbgrader", "setup"], cwd=course,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doctor = subprocess.run([sys.executable, "-m", "autograder", "doctor"], cwd=course, capture_output=True,
                            text=True, timeout=300)
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stdout.splitlines()[-1] == f"nbgrader course {course.resolve()}: `nbgrader autograde` and " \
                                              f"formgrader grade through the kit's sandbox"


def test_setup_of_a_missing_course_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "nbgrader", "setup", "--course-dir",
                           str(tmp_path / "missing")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no such course directory" in done.stderr


def test_the_bridge_leaves_the_course_grading_through_the_kit(course):
    """`autograder nbgrader autograde` writes the block where it is missing, once, and says so."""
    from autograder.platforms.nbgrader_course import make_it_grade_through_the_kit

    said = make_it_grade_through_the_kit(course)
    assert said.startswith("wrote the kit's preprocessors into") and status(course).through_kit
    assert make_it_grade_through_the_kit(course) is None
    assert (course / "nbgrader_config.py").read_text().count(BEGIN) == 1


def plain_assignment(course: Path, name: str, tests: list[tuple[str, float]]) -> None:
    """An nbgrader assignment of the course that is not the kit's: an answer cell and test cells."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell("answer = 41 + 1", metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "grade_id": "answer", "schema_version": 3}})]
    for index, (source, points) in enumerate(tests):
        cells.append(new_code_cell(source, metadata={"nbgrader": {
            "grade": True, "solution": False, "locked": True, "grade_id": f"test_{index}", "points": points,
            "schema_version": 3}}))
    (course / "source" / name).mkdir(parents=True)
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), course / "source" / name / "work.ipynb")


@pytest.mark.slow
def test_another_assignment_of_the_course_is_left_to_nbgrader_and_a_mixed_one_refused(course):
    """KitGrade grades kit test cells only: a course's other assignments run as nbgrader runs them,
    and a notebook mixing both kinds is refused rather than run in a kernel beside the kit's."""
    from nbgrader.api import Gradebook

    from autograder.course.config import load_config

    plain_assignment(course, "plain", [("assert answer == 42", 1)])
    plain_assignment(course, "mixed", [("assert answer == 42", 1),
                                       ('from autograder.notebook import grade_part\ngrade_part("relu")',
                                        load_config().part_points("relu"))])
    setup(course)
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("plain", "mixed"):
        def nbgrader(*args):
            return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True,
                                  text=True, timeout=600, env=environment)
        assert nbgrader("generate_assignment", name, "--force").returncode == 0
        folder = course / "submitted" / "alice" / name
        folder.mkdir(parents=True)
        handed_in = json.loads((course / "release" / name / "work.ipynb").read_text())
        handed_in["cells"][0]["source"] = "answer = 42"
        (folder / "work.ipynb").write_text(json.dumps(handed_in))
        done = nbgrader("autograde", name)
        if name == "plain":
            assert done.returncode == 0, done.stderr[-3000:]
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "nn") as gradebook:
                assert gradebook.find_submission(name, "alice").score == 1  # nbgrader's Execute ran it
        else:
            assert done.returncode != 0 and "mixes kit test cells with others (test_0)" in done.stderr
