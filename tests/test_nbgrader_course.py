"""A course's nbgrader config: `autograder nbgrader setup` makes nbgrader's own Autograde grade
through the kit, `autograder doctor` in the course folder says whether it does."""
from __future__ import annotations

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
