"""One grade on every route: the same notebooks through all five ways a course can grade them.

    grade    `autograder grade NOTEBOOK --json`, one process per notebook
    batch    `autograder batch FOLDER --out DIR`
    gradescope  the real run_autograder of a built zip, in a temporary /autograder layout
    nbgrader  the real `nbgrader autograde` on a temporary course set up by `autograder nbgrader setup`
    bridge   `autograder nbgrader autograde` on the same course

Each route must give every part the same points, with the same maximum (58 with the kit's
grading.toml: the train part included). The corpus: correct work, a typical bug in each layer, an
unfinished method, a method that hangs, methods that warn or write to stderr (Python-level and
straight to file descriptor 2), a student who prints a lot, one who prints tensors and uses
numpy.random, an edited locked set-up cell and a deleted test cell. Limits are shortened
(grading.toml copy) so the hang costs seconds, not minutes; nbgrader's own cell timeout stays at
its default.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT, load_config

pytest.importorskip("nbgrader")
from nbgrader.api import Gradebook  # noqa: E402

from autograder.platforms.nbgrader_course import block  # noqa: E402
from corpus import MUTATIONS, mutated_source, reference_source  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

SOURCE_NOTEBOOK = KIT_ROOT / "assignment" / "nn_from_scratch.ipynb"
NOTEBOOK = SOURCE_NOTEBOOK.name
ASSIGNMENT = "ps1"
ANSWER_CELLS = {"linear": "Linear", "relu": "ReLU", "softmax": "Softmax", "nll": "NLLLoss"}
TYPICAL_BUGS = ("linear_db_keepdim", "relu_gradient_one_at_zero", "softmax_no_max_subtraction", "nll_sum_not_mean")
GRADE_PART = re.compile(r"""grade_part\(\s*["'](\w+)["']""")
# The course configuration the README recommends: `autograder nbgrader setup`'s block at its end.
NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "nn"
c.OverwriteCells.add_missing_cells = True  # a deleted test cell is put back and graded
""" + "\n" + block()


def class_sources(layers_source: str) -> dict[str, str]:
    """grade_id of an answer cell -> the source of its class in `layers_source`."""
    tree = ast.parse(layers_source)
    classes = {node.name: ast.get_source_segment(layers_source, node) for node in tree.body
               if isinstance(node, ast.ClassDef)}
    return {grade_id: classes[name] for grade_id, name in ANSWER_CELLS.items()}


def override(cls: str, body: str) -> str:
    """A subclass that replaces methods of `cls`, appended to its answer cell (nothing else changes)."""
    return f"\n\nclass {cls}({cls}):\n" + "\n".join("    " + line for line in body.strip("\n").split("\n"))


FORWARD_CALLS_SUPER = "    return super().forward({args})"
VARIANTS = {  # name -> (answer cell grade_id, appended source)
    "unfinished": ("linear", override("Linear", "def backward(self, dh):\n    raise NotImplementedError()")),
    "hangs": ("softmax", override("Softmax", "def backward(self, dS):\n    while True:\n        pass")),
    "warns": ("linear", override("Linear", "def forward(self, x):\n    import warnings\n"
                                 "    warnings.warn('careful: a UserWarning from forward')\n"
                                 "    return super().forward(x)")),
    "writes_stderr": ("relu", override("ReLU", "def forward(self, h):\n    import os, sys\n"
                                       "    print('python-level stderr', file=sys.stderr)\n"
                                       "    os.write(2, b'fd-level stderr\\n')\n"
                                       "    return super().forward(h)")),
    "prints_a_lot": ("nll", override("NLLLoss", "def forward(self, S, y):\n"
                                     "    for line in range(300):\n        print('debugging: line', line)\n"
                                     "    return super().forward(S, y)")),
    # Debugging as in the notebook: printing a tensor and numpy's submodules load modules lazily.
    "prints_tensors": ("linear", override("Linear", "def forward(self, x):\n    import numpy.random, logging\n"
                                          "    print('x =', x, f'{x!r}', numpy.random.default_rng(0).random())\n"
                                          "    logging.getLogger('mine').warning('forward %s', x.shape)\n"
                                          "    return super().forward(x)")),
    # The edit defines a helper the answer relies on; restored from the release, it is gone.
    "edited_setup": ("relu", override("ReLU", "def forward(self, h):\n    return positive_part(h)")),
}


def build_corpus(released: dict) -> dict[str, dict]:
    """student id -> the released notebook as that student hands it in."""
    def with_answers(answers: dict[str, str]) -> dict:
        notebook = json.loads(json.dumps(released))
        for cell in notebook["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell["source"] = answers[grade_id]
        return notebook

    correct = class_sources(reference_source())
    corpus = {"correct": with_answers(correct)}
    for mutation in MUTATIONS:
        if mutation.name in TYPICAL_BUGS:
            corpus[f"bug_{mutation.part}"] = with_answers(class_sources(mutated_source(mutation)))
    for name, (grade_id, appended) in VARIANTS.items():
        corpus[name] = with_answers({**correct, grade_id: correct[grade_id] + appended})
    setup = next(c for c in corpus["edited_setup"]["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade_id", "").startswith("setup"))
    setup["source"] = "".join(setup["source"]) + "\n\ndef positive_part(h):\n    return h.clamp(min=0)\n"
    deleted = with_answers(correct)
    deleted["cells"] = [c for c in deleted["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") != "test_relu"]
    corpus["deleted_test_cell"] = deleted
    return corpus


def part_points_of_results(results: dict) -> dict[str, tuple[float, float]]:
    parts: dict[str, list[float]] = {}
    for test in results["tests"]:
        score = parts.setdefault(test["name"].split(".")[0], [0.0, 0.0])
        score[0] += test["score"]
        score[1] += test["max_score"]
    return {part: (round(score, 6), maximum) for part, (score, maximum) in parts.items()}


def source_test_cell_parts() -> dict[str, str]:
    notebook = json.loads(SOURCE_NOTEBOOK.read_text())
    found = {}
    for cell in notebook["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        calls = GRADE_PART.findall("".join(cell["source"]))
        if meta.get("grade") and calls:
            found[meta["grade_id"]] = calls[0]
    return found


def part_points_of_gradebook(course: Path, students) -> dict[str, dict[str, tuple[float, float]]]:
    cells = source_test_cell_parts()
    points = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in students:
            notebook = gradebook.find_submission(ASSIGNMENT, student).notebooks[0]
            points[student] = {cells[g.name]: (round(g.score, 6), g.max_score) for g in notebook.grades
                               if g.name in cells}
    return points


def run(args, cwd, timeout=1800, **env) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # nbgrader runs alembic
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": path, **env})
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def short_limits(folder: Path) -> Path:
    """The kit's grading.toml with limits short enough that a hang costs seconds."""
    text = (KIT_ROOT / "grading.toml").read_text()
    text = re.sub(r"(?m)^wall_seconds = \d+", "wall_seconds = 4", text, count=2)  # [limits] and [train]
    toml = folder / "grading.toml"
    toml.write_text(text)
    return toml


@pytest.fixture(scope="module")
def routes(tmp_path_factory):
    work = tmp_path_factory.mktemp("routes")
    toml = short_limits(work)
    kit = [sys.executable, "-m", "autograder", "--config", str(toml)]
    course = work / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"], course)
    corpus = build_corpus(json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text()))
    flat = work / "submissions"
    flat.mkdir()
    for student, notebook in corpus.items():
        text = json.dumps(notebook, indent=1)
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_text(text)
        (flat / f"{student}.ipynb").write_text(text)
    points = {}

    def graded_alone(student: str) -> dict:
        done = run([*kit, "grade", str(flat / f"{student}.ipynb"), "--json"], work)
        return part_points_of_results(json.loads(done.stdout))

    built = work / "autograder.zip"
    run([*kit, "gradescope", "build", "--out", str(built)], work)
    base = "/srv" if os.access("/srv", os.W_OK) else None  # the sandbox gives children a private /tmp

    def graded_on_gradescope(student: str) -> dict:
        root = Path(tempfile.mkdtemp(prefix="autograder-routes-", dir=base))
        try:
            with zipfile.ZipFile(built) as archive:
                for info in archive.infolist():
                    target = root / "source" / info.filename
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(info))
                    os.chmod(target, (info.external_attr >> 16) & 0o777)
            (root / "submission").mkdir()
            (root / "results").mkdir()
            shutil.copy(flat / f"{student}.ipynb", root / "submission" / NOTEBOOK)
            run([str(root / "source" / "run_autograder")], root, AUTOGRADER_ROOT=str(root),
                AUTOGRADER_PYTHON=sys.executable)
            return part_points_of_results(json.loads((root / "results" / "results.json").read_text()))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    # One process per notebook on these two routes, as on the platforms: a few at a time.
    with ThreadPoolExecutor(max_workers=3) as pool:
        points["grade"] = dict(zip(corpus, pool.map(graded_alone, corpus)))
        points["gradescope"] = dict(zip(corpus, pool.map(graded_on_gradescope, corpus)))

    run([*kit, "batch", str(flat), "--out", str(work / "batch")], work)
    points["batch"] = {student: part_points_of_results(json.loads(
        (work / "batch" / "results" / f"{student}.json").read_text())) for student in corpus}

    # nbgrader's own autograde, through the kit: KitGrade reads the same short-limits grading.toml.
    logs = {}
    logs["nbgrader"] = run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"], course,
                           AUTOGRADER_CONFIG=str(toml)).stderr
    points["nbgrader"] = part_points_of_gradebook(course, corpus)
    shutil.copytree(course / "autograded", work / "autograded.nbgrader")

    logs["bridge"] = run([*kit, "nbgrader", "autograde", ASSIGNMENT, "--course-dir", str(course)], course).stderr
    points["bridge"] = part_points_of_gradebook(course, corpus)
    return {"points": points, "corpus": corpus, "course": course, "work": work, "logs": logs}


ROUTES = ("batch", "gradescope", "nbgrader", "bridge")


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_gives_every_part_the_same_points_as_grade(routes, route):
    expected, got = routes["points"]["grade"], routes["points"][route]
    differences = {student: (expected[student], got.get(student)) for student in expected
                   if got.get(student) != expected[student]}
    assert not differences, f"{route} differs from `autograder grade`: {json.dumps(differences, indent=1)}"


def test_the_maximum_is_the_whole_of_grading_toml_train_included(routes):
    config = load_config()
    maximum = {part: config.part_points(part) for part in ("linear", "relu", "softmax", "nll", "train")}
    assert sum(maximum.values()) == sum(config.points.values())
    for route, students in routes["points"].items():
        for student, parts in students.items():
            assert {part: top for part, (_, top) in parts.items()} == maximum, (route, student)


def test_the_corpus_spans_full_partial_and_zero_parts(routes):
    """The agreement above is not vacuous: the corpus reaches each kind of outcome."""
    config = load_config()
    points = routes["points"]["grade"]
    assert all(score == config.part_points(part) for part, (score, _) in points["correct"].items())
    for mutation in TYPICAL_BUGS:
        part = mutation.split("_")[0]
        assert points[f"bug_{part}"][part][0] < config.part_points(part), mutation
    assert 0 < points["unfinished"]["linear"][0] < config.part_points("linear")  # forward still earns
    assert 0 < points["hangs"]["softmax"][0] < config.part_points("softmax")  # a hang costs that part only
    assert points["hangs"]["train"][0] == 0 and points["hangs"]["linear"] == points["correct"]["linear"]
    for student in ("warns", "writes_stderr", "prints_a_lot", "prints_tensors", "deleted_test_cell"):
        assert points[student] == points["correct"], student
    assert points["edited_setup"]["relu"][0] < points["correct"]["relu"][0]  # the edit was not run


def test_nbgrader_test_cells_carry_no_stderr_and_end_in_the_parts_score(routes):
    cells = source_test_cell_parts()
    for student in routes["corpus"]:
        path = routes["work"] / "autograded.nbgrader" / student / ASSIGNMENT / NOTEBOOK
        for cell in json.loads(path.read_text())["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id not in cells:
                continue
            kinds = [(o["output_type"], o.get("name")) for o in cell["outputs"]]
            assert ("stream", "stderr") not in kinds and ("error", None) not in kinds, (student, grade_id, kinds)
            assert kinds[-1] == ("execute_result", None), (student, grade_id)


@pytest.mark.parametrize("route", ["nbgrader", "bridge"])
def test_nbgrader_warns_of_the_edited_locked_cell_and_of_nothing_the_kit_caused(routes, route):
    """nbgrader#1961: every untouched hidden-test cell used to 'change its checksum'."""
    changed = [line for line in routes["logs"][route].splitlines() if "has changed!" in line]
    assert len(changed) == 1 and "cell setup_imports" in changed[0], changed


@pytest.fixture(scope="module")
def released_for_validate(tmp_path_factory):
    course = tmp_path_factory.mktemp("validate")
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"], course)
    return course, json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text())


@pytest.mark.parametrize("student", ["correct", "bug_linear", "warns"])
def test_nbgrader_validate_fails_naming_the_failed_self_checks_and_passes_correct_work(released_for_validate,
                                                                                        student):
    course, released = released_for_validate
    notebook = course / f"{student}.ipynb"
    notebook.write_text(json.dumps(build_corpus(released)[student]))
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(notebook)], cwd=course,
                          capture_output=True, text=True, timeout=900, env={**os.environ, "PATH": path})
    if student == "bug_linear":
        assert "VALIDATION FAILED" in done.stdout, done.stdout[-2000:]
        assert "VALIDATION FAILED ON 1 CELL(S)" in done.stdout  # test_linear's, and no other
        assert "self-check(s) of Linear failed: backward: self.dW" in done.stdout
    else:  # a warning in the student's code is shown, and does not fail validation
        assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout[-3000:]
