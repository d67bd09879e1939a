"""nbgrader's own Autograde on hostile notebooks, in a course set up with `autograder nbgrader setup`.

`nbgrader autograde` (the CLI a cron job runs) and `NbGraderAPI.autograde` (what formgrader's
Autograde button calls) must give every notebook exactly what `autograder grade` gives it, whatever
its cells try: replacing `grade_part`, `sys.modules`, builtins, `AssertionError`, IPython's
`showtraceback` or nbgrader's own preprocessors, or lying in the notebook's nbgrader metadata (or
not being a notebook at all).
And nothing secret (the course secret, the source's answers and hidden tests, the gradebook) may
reach what nbgrader writes: the autograded notebooks and `nbgrader generate_feedback`'s HTML.
Hostile cells are added to an unfinished notebook (worth 0): a kernel that ran them would give
it full marks.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT

pytest.importorskip("nbgrader")
from nbgrader.api import Gradebook  # noqa: E402

from test_nbgrader import ASSIGNMENT, NOTEBOOK, SOURCE_NOTEBOOK, nbgrader, submissions  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

FAKE = "lambda *args, **kwargs: 99.0"
HOSTILE_CELLS = {
    "patches_grade_part": f"""
import autograder.notebook, autograder.platforms.kernel_hook as hook
autograder.notebook.grade_part = hook.grade_part = {FAKE}
""",
    "patches_sys_modules": f"""
import sys, types
fake = types.ModuleType("autograder.notebook")
fake.grade_part = {FAKE}
sys.modules["autograder"] = types.ModuleType("autograder")
sys.modules["autograder.notebook"] = fake
""",
    "patches_builtins": """
import builtins
real_import = builtins.__import__
class Anything:
    def __getattr__(self, name):
        return lambda *args, **kwargs: 99.0
def fake_import(name, *args, **kwargs):
    return Anything() if name.startswith("autograder") else real_import(name, *args, **kwargs)
builtins.__import__ = fake_import
builtins.NotImplementedError = type("NotImplementedError", (BaseException,), {})
""",
    "patches_assertion_error": """
import builtins
class AssertionError(Exception):
    pass
builtins.AssertionError = AssertionError
""",
    "patches_showtraceback": """
try:
    shell = get_ipython()
    shell.showtraceback = shell._showtraceback = lambda *args, **kwargs: None
except NameError:
    pass
""",
    "patches_nbgrader": """
import nbgrader.utils, nbgrader.preprocessors as steps
nbgrader.utils.determine_grade = lambda cell, log=None: (cell.metadata.nbgrader["points"],) * 2
steps.SaveAutoGrades.preprocess_cell = lambda self, cell, resources, index: (cell, resources)
""",
    "rewrites_its_metadata": """
import glob, json
for path in glob.glob("*.ipynb"):
    notebook = json.load(open(path))
    for cell in notebook["cells"]:
        cell["metadata"].setdefault("nbgrader", {})["points"] = 0
        cell["outputs"] = [{"output_type": "execute_result", "data": {"text/plain": "99.0"}, "metadata": {},
                            "execution_count": 1}]
    json.dump(notebook, open(path, "w"))
""",
}


CORRECT_WORK = ("correct", "unflags_its_test_cells", "schema_from_the_future")  # the rest is unfinished work


def reads_secrets_cell(paths: list[Path]) -> str:
    """Reads every secret it can and raises with them: the message reaches the student's feedback."""
    return f"""
leaked = []
for path in {[str(p) for p in paths]!r}:
    try:
        leaked.append(open(path, errors="replace").read()[:4000])
    except Exception as error:
        leaked.append(type(error).__name__)
for name in ("solution.layers", "autograder.checks", "autograder.course.secret"):
    try:
        module = __import__(name, fromlist=["*"])
        leaked.append(repr(vars(module))[:4000])
    except Exception as error:
        leaked.append(type(error).__name__)
raise RuntimeError("LEAKED " + " | ".join(leaked))
"""


def student_cell(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": source.strip()}


def nbgrader_meta(cell: dict) -> dict:
    return cell["metadata"].setdefault("nbgrader", {})


def metadata_attacks(correct: dict, unfinished: dict) -> dict[str, dict]:
    """Notebooks whose nbgrader metadata lies (no code needed)."""
    attacks = {name: json.loads(json.dumps(base)) for name, base in (
        ("unflags_its_test_cells", correct), ("answer_cell_worth_58", unfinished),
        ("schema_from_the_future", correct), ("forged_test_cells", unfinished))}
    for cell in attacks["unflags_its_test_cells"]["cells"]:
        if nbgrader_meta(cell).get("grade"):
            nbgrader_meta(cell).update(grade=False, locked=False)
    for cell in attacks["answer_cell_worth_58"]["cells"]:
        if nbgrader_meta(cell).get("grade_id") == "linear":
            nbgrader_meta(cell).update(grade=True, points=58)
    for cell in attacks["schema_from_the_future"]["cells"]:
        if nbgrader_meta(cell).get("grade_id"):
            nbgrader_meta(cell)["schema_version"] = 99  # plain nbgrader stops the whole class on this
    forged = attacks["forged_test_cells"]["cells"]
    full_marks = [{"output_type": "execute_result", "data": {"text/plain": "58.0"}, "metadata": {},
                   "execution_count": 1}]
    for cell in list(forged):
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            copy = json.loads(json.dumps(cell))
            copy.update(source="pass", outputs=full_marks, id=f"forged-{meta['grade_id']}")
            forged.append(copy)  # the last of a duplicated grade_id is the one nbgrader keeps
    forged.append({**student_cell("pass"), "outputs": full_marks, "metadata": {"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "bonus", "points": 100, "schema_version": 3}}})
    for notebook in attacks.values():
        for index, cell in enumerate(notebook["cells"]):
            cell.setdefault("id", f"cell-{index}")
    return attacks


def secret_markers(course: Path) -> dict[str, str]:
    """Text that must never reach what nbgrader writes for the hostile students."""
    released = "\n".join("".join(cell["source"]) for cell in
                         json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text())["cells"])
    source = json.loads(SOURCE_NOTEBOOK.read_text())
    answers = [line.strip() for cell in source["cells"] if cell["metadata"].get("nbgrader", {}).get("solution")
               for line in "".join(cell["source"]).splitlines()]
    answer_lines = [line for line in answers if len(line) > 25 and line not in released
                    and not line.startswith("#") and not set(line) & set("<>&'\"")]  # as they read in HTML too
    assert answer_lines
    secret = (KIT_ROOT / "grading.secret").read_text().strip()
    return {"course secret": secret, "hidden tests": "BEGIN HIDDEN TESTS", "gradebook": "SQLite format 3",
            **{f"answer line {i}": line for i, line in enumerate(answer_lines[:5])}}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("hostile") / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "source" / ASSIGNMENT / NOTEBOOK).write_text(SOURCE_NOTEBOOK.read_text())
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "nn"\n')
    setup = subprocess.run([sys.executable, "-m", "autograder", "nbgrader", "setup"], cwd=course,
                           capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0 and "grade through the kit's sandbox" in setup.stdout, setup.stdout + setup.stderr
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    base = submissions(course)
    notebooks = {"correct": base["correct"], "unfinished": base["unfinished"]}
    secrets = [KIT_ROOT / "grading.secret", course / "source" / ASSIGNMENT / NOTEBOOK, course / "gradebook.db",
               KIT_ROOT / "solution" / "layers.py", course / "submitted" / "correct" / ASSIGNMENT / NOTEBOOK]
    for name, source in {**HOSTILE_CELLS, "reads_secrets": reads_secrets_cell(secrets)}.items():
        notebook = json.loads(json.dumps(base["unfinished"]))
        notebook["cells"].insert(2, {**student_cell(source), "id": f"hostile-{name}"})
        notebooks[name] = notebook
    notebooks.update(metadata_attacks(base["correct"], base["unfinished"]))
    for student, notebook in notebooks.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_text(json.dumps(notebook, indent=1))
    unreadable = course / "submitted" / "unreadable" / ASSIGNMENT
    unreadable.mkdir(parents=True)
    (unreadable / NOTEBOOK).write_text("{ this is not json")  # nbgrader alone fails this student (exit 1)
    done = nbgrader(course, "autograde", ASSIGNMENT, "--force")
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    return {"path": course, "students": [*notebooks, "unreadable"], "log": done.stderr}


def gradebook_cells(course: Path, student: str) -> dict[str, float]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "nn") as gradebook:
        notebook = gradebook.find_submission(ASSIGNMENT, student).notebooks[0]
        return {grade.name: grade.auto_score for grade in notebook.grades}


@pytest.fixture(scope="module")
def kit_reports(course, grader):
    """`autograder grade`'s verdict on each submitted notebook, as submitted."""
    return {student: grader.grade(course["path"] / "submitted" / student / ASSIGNMENT / NOTEBOOK)
            for student in course["students"]}


def test_every_hostile_notebook_gets_from_nbgrader_autograde_what_autograder_grade_gives(course, kit_reports):
    assert "Traceback" not in course["log"], course["log"][-3000:]
    wrong = {}
    for student, report in kit_reports.items():
        expected = {f"test_{part}": result.score for part, result in report.parts.items()}
        got = gradebook_cells(course["path"], student)
        if got != expected:
            wrong[student] = {"nbgrader": got, "autograder grade": expected}
    assert not wrong, json.dumps(wrong, indent=1)


def test_no_hostile_cell_earns_a_point_an_unfinished_notebook_does_not(course, kit_reports):
    for student in [*HOSTILE_CELLS, "reads_secrets", "answer_cell_worth_58", "forged_test_cells", "unreadable"]:
        assert kit_reports[student].score == 0, student
        assert sum(gradebook_cells(course["path"], student).values()) == 0, student
    for student in CORRECT_WORK:
        assert sum(gradebook_cells(course["path"], student).values()) == 58, student


def test_nothing_secret_reaches_the_autograded_notebooks_or_the_feedback(course):
    markers = secret_markers(course["path"])
    leaks = []
    for student in course["students"]:
        if student in CORRECT_WORK:
            continue  # their own answers are in their own feedback, rightly
        written = [course["path"] / "autograded" / student / ASSIGNMENT / NOTEBOOK,
                   course["path"] / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")]
        for path in written:
            text = path.read_text()
            leaks += [(student, path.name, name) for name, marker in markers.items() if marker in text]
    assert not leaks
    feedback = (course["path"] / "feedback" / "reads_secrets" / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html"))
    assert "LEAKED" in feedback.read_text()  # the attempt ran, and its message reached the feedback


def test_formgraders_autograde_button_grades_through_the_kit_too(course, kit_reports):
    """NbGraderAPI.autograde, one student at a time in one long-lived process, as formgrader calls it."""
    students = ["patches_grade_part", "forged_test_cells", "correct"]
    script = f"""
import json
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader
config = PyFileConfigLoader("nbgrader_config.py", path=".").load_config()
config.CourseDirectory.root = "."
api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
print(json.dumps([api.autograde({ASSIGNMENT!r}, student)["success"] for student in {students!r}]))
"""
    with Gradebook(f"sqlite:///{course['path'] / 'gradebook.db'}", "nn") as gradebook:  # forget the CLI's grades
        for student in students:
            for grade in gradebook.find_submission(ASSIGNMENT, student).notebooks[0].grades:
                grade.auto_score = None
        gradebook.db.commit()
    done = subprocess.run([sys.executable, "-c", script], cwd=course["path"], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0 and json.loads(done.stdout.splitlines()[-1]) == [True] * 3, done.stderr[-3000:]
    for student in students:
        expected = {f"test_{part}": result.score for part, result in kit_reports[student].parts.items()}
        assert gradebook_cells(course["path"], student) == expected, student


def test_what_the_instructor_should_review_is_in_nbgraders_log_never_in_the_feedback(course, kit_reports):
    """A notebook that reaches into the interpreter gets a notice for the instructor: nbgrader's
    own Autograde logs it (the instructor's terminal or formgrader's log); the student's autograded
    notebook and feedback never show it."""
    flagged = {student: report.instructor_notices for student, report in kit_reports.items()
               if report.instructor_notices}
    assert flagged, "no hostile notebook was flagged for review"
    reviews = [line for line in course["log"].splitlines() if "Please review" in line]
    for student, notices in flagged.items():
        assert any(f" of {student}: {notices[0][:60]}" in line for line in reviews), (student, reviews)
        for path in (course["path"] / "autograded" / student / ASSIGNMENT / NOTEBOOK,
                     course["path"] / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")):
            assert "please review" not in path.read_text().lower(), path
    assert not any(f" of {student}:" in line for line in reviews for student in CORRECT_WORK)
