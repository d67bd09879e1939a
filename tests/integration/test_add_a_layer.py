"""The README's "add a layer" recipe, followed to the letter: a course adds a Tanh layer from files of
its own (tests/fixtures/tanh_course: reference class, oracle, checks module, course.toml) and
notebook cells, without touching autograder/, and every route grades it."""
from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.course.config import load_config
from conftest import notebook_submission

COURSE = Path(__file__).parent.parent / "fixtures" / "tanh_course"
COURSE_TOML = COURSE / "course.toml"
TANH_CHECKS = ["tanh.forward.value", "tanh.forward.float32", "tanh.backward.grad", "tanh.backward.inputs_unchanged"]
BUGGY = "    def backward(self, dout):\n        return dout * (1 - self.out)\n"


def tanh_answer(buggy: bool = False) -> str:
    source = (COURSE / "tanh_layer.py").read_text()
    if buggy:
        source = source[: source.index("    def backward")] + BUGGY
    return source


def notebook_with_tanh(path: Path, buggy: bool = False) -> Path:
    """A correct notebook plus the course's Tanh section: an answer cell and its test cell."""
    nb = json.loads(notebook_submission())
    cell = copy.deepcopy(next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "relu"))
    cell["source"] = tanh_answer(buggy)
    cell["metadata"]["nbgrader"]["grade_id"] = "tanh"
    cell["id"] = "tanh"
    test = copy.deepcopy(next(c for c in nb["cells"]
                              if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_relu"))
    test["source"] = "from autograder.notebook import grade_part\ngrade_part(\"tanh\")\n"
    test["metadata"]["nbgrader"].update(grade_id="test_tanh", points=6)
    test["id"] = "test_tanh"
    nb["cells"][-1:-1] = [cell, test]
    path.write_text(json.dumps(nb))
    return path


def autograder(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_the_course_file_adds_the_part_to_the_registry():
    config = load_config(COURSE_TOML)
    assert list(config.parts) == ["linear", "relu", "softmax", "nll", "train", "tanh"]
    tanh = config.parts["tanh"]
    assert (tanh.cls, tanh.grade_id, tanh.max_score) == ("Tanh", "tanh", 6)
    assert [f"tanh.{name}" for name in tanh.points] == TANH_CHECKS


@pytest.mark.slow
def test_grade_gives_the_new_layer_its_points_and_feedback(tmp_path):
    right = autograder("grade", str(notebook_with_tanh(tmp_path / "right.ipynb")), "--json",
                       "--config", str(COURSE_TOML))
    assert right.returncode == 0, right.stderr
    results = json.loads(right.stdout)
    tests = {t["name"]: t for t in results["tests"]}
    assert [name for name in tests if name.startswith("tanh.")] == TANH_CHECKS
    assert results["score"] == results["max_score"] == 58 + 6
    wrong = autograder("--config", str(COURSE_TOML), "grade",
                       str(notebook_with_tanh(tmp_path / "wrong.ipynb", buggy=True)), "--parts", "tanh")
    assert wrong.returncode == 0, wrong.stderr
    assert "4 / 6 points" in wrong.stdout
    assert "tanh.backward.grad" in wrong.stdout and "dz has wrong values" in wrong.stdout
    # the course's own catalogue (tanh_checks.py's VARIANTS) names the mistake
    assert "Tanh.backward uses 1 − a where the derivative of tanh is 1 − a²" in wrong.stdout
    assert "linear" not in wrong.stdout.split("tanh")[0]  # only the part asked for
    without = tmp_path / "without.ipynb"
    without.write_text(notebook_submission())
    missing = autograder("--config", str(COURSE_TOML), "grade", str(without), "--parts", "tanh")
    assert "the answer cell 'tanh' is missing" in missing.stdout and "Tanh" in missing.stdout


TANH_MISTAKES = {  # a course's own mistakes -> the cause its checks module names for them
    "return dout * (1 - self.out)": "Tanh.backward:one_minus_a",
    "return 1 - self.out * self.out": "Tanh.backward:ignores_upstream",
    "return dout * (1 - self.z * self.z)": "Tanh.backward:uses_input",
    "return dout * (1 - self.out * self.out) / len(dout)": "Tanh.backward:dz:over_N",  # the kit's own transforms
}


@pytest.mark.parametrize("body", TANH_MISTAKES)
def test_the_course_names_its_own_mistakes_with_no_edit_under_autograder(body, reference_source):
    from autograder.checks import build_suite, oracle_classes
    from autograder.scoring.diagnosis import Catalogue
    from autograder.course.secret import course_inputs
    from test_diagnosis import grade_in_process

    config = load_config(COURSE_TOML)
    suite = [e for e in build_suite(config, course_inputs(config)[0]) if e.check.part == "tanh"]
    answer = tanh_answer().replace("self.out = torch.tanh(z)", "self.z = z\n        self.out = torch.tanh(z)")
    answer = answer.replace("return dout * (1 - self.out * self.out)", body)
    results = grade_in_process(reference_source + "\n\n" + answer, suite, config.tolerance,
                               Catalogue(oracle_classes(config)))
    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == ["tanh.backward.grad"]
    assert failed[0].cause["key"] == TANH_MISTAKES[body]
    right = grade_in_process(reference_source + "\n\n" + tanh_answer(), suite, config.tolerance,
                             Catalogue(oracle_classes(config)))
    assert all(r.passed and r.cause is None for r in right)


@pytest.mark.slow  # `autograder grade` as a subprocess
def test_a_catalogue_that_is_not_one_is_a_one_line_error(tmp_path, reference_source):
    course = tmp_path / "course"
    course.mkdir()
    for name in ("course.toml", "tanh_oracle.py", "tanh_layer.py"):
        (course / name).write_text((COURSE / name).read_text())
    (course / "tanh_checks.py").write_text((COURSE / "tanh_checks.py").read_text()
                                           + '\nVARIANTS = VARIANTS + ["1 - a"]\n')
    submission = tmp_path / "submission.py"
    submission.write_text(reference_source + "\n\n" + tanh_answer())
    done = autograder("--config", str(course / "course.toml"), "grade", str(submission))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "VARIANTS must hold diagnosis.variant(...)" in done.stderr and "'1 - a'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.slow
def test_batch_puts_the_new_layer_in_the_gradebook_and_the_report(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    notebook_with_tanh(folder / "ada.ipynb")
    notebook_with_tanh(folder / "bob.ipynb", buggy=True)
    done = autograder("batch", str(folder), "--out", str(tmp_path / "out"), "--config", str(COURSE_TOML))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out" / "grades.csv", newline="") as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    assert rows["ada"]["score"] == rows["ada"]["max_score"] == "64"
    assert rows["bob"]["tanh.backward.grad"] == "0" and rows["bob"]["tanh.forward.value"] == "2"
    assert rows["bob"]["score"] == "62"
    assert "tanh.backward.grad" in (tmp_path / "out" / "results" / "bob.html").read_text()  # bob's feedback page


@pytest.mark.slow
def test_gradescope_zip_carries_the_course_part_and_its_self_check_passes(tmp_path):
    built = autograder("--config", str(COURSE_TOML), "gradescope", "build", "--out", str(tmp_path / "a.zip"),
                       "--torch", "2.13.0")
    assert built.returncode == 0, built.stderr
    kit = tmp_path / "kit"
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert {"course.toml", "tanh_checks.py", "tanh_oracle.py", "tanh_layer.py"} <= set(archive.namelist())
        archive.extractall(kit)
    # the unzipped kit, run as Gradescope's setup.sh ends: the reference answers, Tanh included, get full marks
    check = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
                            "from autograder.cli import main; sys.exit(main(['gradescope', 'selfcheck']))"],
                           cwd=kit, capture_output=True, text=True,
                           timeout=600)
    assert check.returncode == 0, check.stderr
    assert "scored 64 / 64" in check.stdout


def source_with_tanh(path: Path) -> Path:
    """The kit's source notebook plus the course's Tanh section, as an instructor adds it in Jupyter:
    an answer cell (reference answer between the solution markers) and a test cell worth 6 points."""
    from autograder.course.config import KIT_ROOT

    nb = json.loads((KIT_ROOT / "assignment" / "nn_from_scratch.ipynb").read_text())
    by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    answer, test = copy.deepcopy(by_id["relu"]), copy.deepcopy(by_id["test_relu"])
    body = tanh_answer().split("class Tanh:\n", 1)[1]
    answer["source"] = "class Tanh:\n    ### BEGIN SOLUTION\n" + body.rstrip("\n") + "\n    ### END SOLUTION\n"
    answer["metadata"]["nbgrader"]["grade_id"], answer["id"] = "tanh", "tanh"
    test["source"] = ("### BEGIN HIDDEN TESTS\nfrom autograder.notebook import grade_part\n"
                      "grade_part(\"tanh\")\n### END HIDDEN TESTS\n")
    test["metadata"]["nbgrader"].update(grade_id="test_tanh", points=6)
    test["id"] = "test_tanh"
    for cell in (answer, test):
        cell["outputs"], cell["execution_count"] = [], None
    nb["cells"][-1:-1] = [answer, test]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def tanh_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {student: gradebook.find_grade("test_tanh", "nn_from_scratch", "ps1", student).score
                for student in ("ada", "bob")}


@pytest.mark.slow
def test_nbgrader_grades_the_new_layer_both_ways(tmp_path):
    pytest.importorskip("nbgrader")
    course = tmp_path / "course"
    source = source_with_tanh(course / "source" / "ps1" / "nn_from_scratch.ipynb")
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "nn"\n')
    env = {**os.environ, "AUTOGRADER_CONFIG": str(COURSE_TOML),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", *args], cwd=course, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    # release stamps the new total into the source's grading table, and the student gets a Tanh stub
    run("autograder", "release", "--source", str(source), "--out", str(tmp_path / "student"))
    student = (tmp_path / "student" / "nn_from_scratch.ipynb").read_text()
    assert "class Tanh" in student and "grade_part(\\\"tanh\\\")" not in student
    checked = run("autograder", "check", str(source))  # the notebook now agrees with the course's parts
    assert "agrees with" in checked.stdout
    run("nbgrader", "generate_assignment", "ps1", "--force")
    released = json.loads((course / "release" / "ps1" / "nn_from_scratch.ipynb").read_text())
    for student, buggy in (("ada", False), ("bob", True)):
        handed_in = copy.deepcopy(released)
        for cell in handed_in["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if cell["metadata"].get("nbgrader", {}).get("solution"):
                answer = json.loads(source.read_text())
                cell["source"] = next(c["source"] for c in answer["cells"]
                                      if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
                if grade_id == "tanh":
                    cell["source"] = tanh_answer(buggy)
        path = course / "submitted" / student / "ps1" / "nn_from_scratch.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(handed_in))
    run("autograder", "nbgrader", "autograde", "ps1")
    kit_way = tanh_scores(course)
    run("nbgrader", "autograde", "ps1", "--force")
    plain_way = tanh_scores(course)
    assert kit_way == plain_way == {"ada": 6, "bob": 4}  # bob's backward loses tanh.backward.grad (2)
