"""`autograder check` and the stamping `release` does: the notebook, grading.toml and the checks agree.

Each test edits a copy of the source notebook as Jupyter would (nbformat read, change, write) or a
copy of grading.toml, and expects the disagreement at its exact place. The end-to-end test runs the
real CLIs (`autograder`, `nbgrader`) on a temporary course.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course.config import KIT_ROOT, load_config
from autograder.consistency import check_assignment
from autograder.records import GraderError
from autograder.platforms.nbgrader_release import release

SOURCE = KIT_ROOT / "assignment" / "nn_from_scratch.ipynb"
TWIN = SOURCE.with_suffix(".md")
PAIRING = SOURCE.parent / "jupytext.toml"  # pairs the notebook with its twin
GRADING = KIT_ROOT / "grading.toml"
BIN = Path(sys.executable).parent


@pytest.fixture
def kit(tmp_path) -> Path:
    """A folder with a copy of the source notebook (without its twin) and of grading.toml."""
    shutil.copy(SOURCE, tmp_path / SOURCE.name)
    shutil.copy(GRADING, tmp_path / "grading.toml")
    return tmp_path


def edit_notebook(path: Path, change) -> None:
    """Read, change and save the notebook as Jupyter does."""
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def edit_toml(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def replace_in_cell(grade_id: str, old: str, new: str):
    def change(nb):
        target = cell(nb, grade_id)
        assert target.source.count(old) == 1, old
        target.source = target.source.replace(old, new)
    return change


def as_markdown(code_cell):
    """The cell turned into a markdown cell (Jupyter's M key), its metadata kept."""
    return nbformat.v4.new_markdown_cell(code_cell.source, metadata=code_cell.metadata)


def disagreements(kit: Path) -> list[str]:
    config = load_config(kit / "grading.toml")
    return [d.describe(SOURCE.name) for d in check_assignment(kit / SOURCE.name, config)]


def autograder(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "autograder"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_the_committed_notebook_agrees_with_grading_toml_its_twin_and_the_checks():
    assert check_assignment(SOURCE, load_config()) == []
    done = autograder("check", cwd=KIT_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(f"{SOURCE} agrees with {GRADING}")


def test_a_changed_point_value_is_reported_in_the_test_cell_and_in_the_text(kit):
    edit_toml(kit / "grading.toml", '[parts.relu.checks]\n"forward.value" = 2',
              '[parts.relu.checks]\n"forward.value" = 4')
    found = disagreements(kit)
    assert found == [
        "nn_from_scratch.ipynb, cell 21 (test_relu): worth 9 points here, 11 in grading.toml "
        "[parts.relu.checks] (autograder release stamps it)",
        "nn_from_scratch.ipynb, cell 2 (grading), line 7: states parts.relu as '9'; grading.toml has 11 "
        "(autograder release stamps it)",
        "nn_from_scratch.ipynb, cell 2 (grading), line 10: states parts as '58'; grading.toml has 60 "
        "(autograder release stamps it)",
    ]


@pytest.mark.parametrize("change, expected", [
    (replace_in_cell("grading", '<data value="limits.wall_seconds">10</data>',
                     '<data value="limits.wall_seconds">15</data>'),
     "cell 2 (grading), line 16: states limits.wall_seconds as '15'; grading.toml has 10"),
    (replace_in_cell("rules", '<data value="tolerance.float32.atol">1e-5</data>',
                     '<data value="tolerance.float32.atol">1e-6</data>'),
     "cell 3 (rules), line 14: states tolerance.float32.atol as '1e-6'; grading.toml has 1e-5"),
    (replace_in_cell("train_intro", '<data value="train.accuracy_tolerance">1%</data>',
                     '<data value="train.accuracy_tolerance">2%</data>'),
     "cell 26 (train_intro), line 21: states train.accuracy_tolerance as '2%'; grading.toml has 1%"),
    (replace_in_cell("train_intro", '<data value="train.batch_size">150</data>',
                     '<data value="train.batch_size">a few</data>'),
     "states train.batch_size as 'a few'; not a number; grading.toml has 150"),
    (replace_in_cell("rules", "`relu`, `relu_`, ", "`relu`, "),
     "states forbidden.functions as '`softmax`, `log_softmax`, `relu`, `nll_loss`, `cross_entropy`, "
     "`backward`, `grad`, `requires_grad_`'; grading.toml lists softmax, log_softmax, relu, relu_, nll_loss, "
     "cross_entropy, backward, grad, requires_grad_ (missing relu_)"),
    (replace_in_cell("grading", 'value="limits.submission_seconds"', 'value="limits.submision_seconds"'),
     ("states 'limits.submision_seconds', which is no key of grading.toml",
      "nn_from_scratch.ipynb: never states grading.toml's limits.submission_seconds")),
    (replace_in_cell("grading", '<data value="limits.submission_seconds">90</data>', "90"),
     "nn_from_scratch.ipynb: never states grading.toml's limits.submission_seconds"),
])
def test_a_stated_value_that_differs_from_grading_toml_is_reported_where_it_is(kit, change, expected):
    expected = (expected,) if isinstance(expected, str) else expected
    edit_notebook(kit / SOURCE.name, change)
    found = disagreements(kit)
    assert len(found) == len(expected), found
    for line, fragment in zip(found, expected):
        assert fragment in line, (fragment, found)


@pytest.mark.parametrize("change, expected", [
    (lambda nb: cell(nb, "rules").metadata["nbgrader"].update(grade_id="intro"),
     ["cell 3 (intro): duplicate grade_id 'intro' (also cell 1 (intro))"]),
    (lambda nb: cell(nb, "plot_loss").metadata["nbgrader"].pop("grade_id"),
     ["cell 29: an nbgrader cell without a grade_id"]),
    (lambda nb: cell(nb, "plot_loss").metadata["nbgrader"].update(grade_id="plot loss"),
     ["cell 29 (plot loss): grade_id 'plot loss' has characters nbgrader refuses"]),
    (lambda nb: cell(nb, "relu").metadata["nbgrader"].update(grade_id="relu_layer"),
     ["cell 20 (relu_layer): answer cell 'relu_layer' is no part of grading.toml with an answer",
      "nn_from_scratch.ipynb: part 'relu' of grading.toml has no answer cell"]),
    (lambda nb: nb.cells.__setitem__(nb.cells.index(cell(nb, "softmax")), as_markdown(cell(nb, "softmax"))),
     ["cell 14 (softmax): answer cell 'softmax' is a markdown cell; the grader runs only code cells"]),
    (replace_in_cell("linear", "return dh @ self.W.T\n        ### END SOLUTION", "return dh @ self.W.T"),
     ["cell 24 (linear): 2 '### BEGIN SOLUTION' but 1 '### END SOLUTION' lines"]),
])
def test_grade_ids_and_answer_cells_are_checked(kit, change, expected):
    edit_notebook(kit / SOURCE.name, change)
    found = disagreements(kit)
    assert len(found) == len(expected), found
    for line, fragment in zip(found, expected):
        assert fragment in line, (fragment, found)


def test_test_cells_are_checked_against_the_parts_of_grading_toml(kit):
    def change(nb):
        replace_in_cell("test_nll", 'grade_part("nll")', 'grade_part("nlll")')(nb)
        replace_in_cell("test_relu", 'grade_part("relu")\n', "")(nb)
        second = nbformat.from_dict(cell(nb, "test_linear"))
        second.metadata["nbgrader"]["grade_id"] = second.id = "test_linear_again"
        nb.cells.append(second)
        nb.cells.remove(cell(nb, "test_train"))
    edit_notebook(kit / SOURCE.name, change)
    found = disagreements(kit)
    expected = [
        "cell 11 (test_nll): grade_part('nlll') names no part of grading.toml "
        "(parts: linear, relu, softmax, nll, train)",
        "cell 21 (test_relu): calls no grade_part(\"<part>\"): no part of grading.toml scores it",
        "cell 32 (test_linear_again): a second test cell for part 'linear' (the first is cell 25 (test_linear))",
        "grading.toml [parts.relu.checks]: part 'relu' (9 points) has no test cell",
        "grading.toml [parts.nll.checks]: part 'nll' (12 points) has no test cell",
        "grading.toml [parts.train.checks]: part 'train' (5 points) has no test cell",
    ]
    assert len(found) == len(expected), found
    for line, fragment in zip(found, expected):
        assert fragment in line, (fragment, found)


def test_a_check_grading_toml_names_but_no_checks_module_defines_is_reported(kit):
    edit_toml(kit / "grading.toml", '"backward.repeat" = 1\n\n[parts.relu', '"backward.reepeat" = 1\n\n[parts.relu')
    found = disagreements(kit)
    [line] = [line for line in found if "reepeat" in line]
    assert line.startswith(f"grading.toml {kit / 'grading.toml'}: names checks that do not exist: "
                           f"linear.backward.reepeat; linear has: forward.shape, ")


@pytest.mark.slow  # jupytext syncs a copy of the notebook
def test_an_edit_to_the_notebook_alone_is_reported_until_its_twin_is_synced(kit):
    shutil.copy(TWIN, kit / TWIN.name)
    shutil.copy(PAIRING, kit / PAIRING.name)
    assert disagreements(kit) == []
    edit_notebook(kit / SOURCE.name, replace_in_cell("intro", "Here we finish them.", "Here we finish them all."))
    found = disagreements(kit)
    assert len(found) == 1 and "differs from its twin nn_from_scratch.md" in found[0], found
    assert "jupytext --sync nn_from_scratch.ipynb" in found[0]
    done = subprocess.run([str(BIN / "jupytext"), "--sync", SOURCE.name], cwd=kit, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Here we finish them all." in (kit / TWIN.name).read_text()
    assert disagreements(kit) == []


@pytest.mark.slow  # `autograder release` as a subprocess
def test_release_rewrites_a_twin_the_notebook_has_moved_past_and_says_so(kit):
    """The .ipynb is the source: a notebook edited in Jupyter without jupytext is released, not
    refused, and its twin rewritten from it (the message names the twin, never grading.toml)."""
    shutil.copy(TWIN, kit / TWIN.name)
    shutil.copy(PAIRING, kit / PAIRING.name)
    edit_notebook(kit / SOURCE.name, replace_in_cell("intro", "Here we finish them.", "Here we finish them all."))
    [line] = disagreements(kit)
    assert "twin nn_from_scratch.md" in line and "autograder release rewrites the twin" in line
    done = autograder("--config", str(kit / "grading.toml"), "release", "--source", str(kit / SOURCE.name),
                      "--out", str(kit / "out"), cwd=kit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rewrote the twin nn_from_scratch.md" in done.stdout
    assert "Here we finish them all." in (kit / TWIN.name).read_text()
    assert disagreements(kit) == []


@pytest.mark.slow  # `autograder release` as a subprocess
def test_release_refuses_a_notebook_that_disagrees_beyond_points(kit):
    edit_notebook(kit / SOURCE.name, lambda nb: cell(nb, "relu").metadata["nbgrader"].update(grade_id="relu_layer"))
    before = (kit / SOURCE.name).read_bytes()
    with pytest.raises(GraderError, match=r"disagrees with grading.toml in 2 place\(s\)") as raised:
        release(kit / SOURCE.name, kit / "out", load_config(kit / "grading.toml"))
    assert "\n" not in str(raised.value)
    assert not (kit / "out").exists() and (kit / SOURCE.name).read_bytes() == before
    done = autograder("--config", str(kit / "grading.toml"), "release", "--source", str(kit / SOURCE.name),
                      "--out", str(kit / "out"), cwd=kit)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "cell 20 (relu_layer): answer cell 'relu_layer'" in done.stdout
    assert "release refused" in done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_an_instructor_edits_the_notebook_and_changes_points_and_every_tool_follows(tmp_path):
    """Jupyter edits a markdown and a code cell, grading.toml gets new points: `check` lists the
    mismatches (exit 1) until `release` stamps them; the student notebook and the gradebook of
    `nbgrader generate_assignment` (the real CLI) follow grading.toml."""
    kit = tmp_path / "kit"
    kit.mkdir()
    for path in (SOURCE, TWIN, PAIRING, GRADING):
        shutil.copy(path, kit / path.name)
    notebook, toml = kit / SOURCE.name, kit / "grading.toml"

    def instructor_edits(nb):
        replace_in_cell("relu_task", "### Your task: `ReLU`", "### Your task: the `ReLU` layer")(nb)
        replace_in_cell("setup_imports", "import math\n", "import math\nimport numbers\n")(nb)
    edit_notebook(notebook, instructor_edits)
    subprocess.run([str(BIN / "jupytext"), "--sync", notebook.name], cwd=kit, check=True, capture_output=True)
    edit_toml(toml, '"backward.grad" = 3', '"backward.grad" = 5')  # softmax: 15 -> 17 points

    checked = autograder("--config", str(toml), "check", str(notebook), cwd=kit)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "nn_from_scratch.ipynb, cell 15 (test_softmax): worth 15 points here, 17 in grading.toml" in checked.stdout
    assert "cell 2 (grading), line 6: states parts.softmax as '15'; grading.toml has 17" in checked.stdout
    assert checked.stdout.strip().endswith(f"3 disagreement(s) between {notebook} and {toml}")

    out = kit / "student"
    released = autograder("--config", str(toml), "release", "--source", str(notebook), "--out", str(out), cwd=kit)
    assert released.returncode == 0, released.stdout + released.stderr
    assert "from grading.toml: cell 15 (test_softmax): points 15 -> 17" in released.stdout
    assert autograder("--config", str(toml), "check", str(notebook), cwd=kit).returncode == 0  # twin too
    student = nbformat.read(out / SOURCE.name, as_version=4)
    assert cell(student, "test_softmax").metadata["nbgrader"]["points"] == 17
    assert "**<data value=\"parts\">60</data>**" in cell(student, "grading").source
    assert "the `ReLU` layer" in cell(student, "relu_task").source
    assert "import numbers" in cell(student, "setup_imports").source
    assert "BEGIN SOLUTION" not in (out / SOURCE.name).read_text()

    # nbgrader's own generate_assignment on the stamped source: the gradebook has grading.toml's points
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(notebook, course / "source" / "ps1" / notebook.name)
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'kit'\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    done = subprocess.run([str(BIN / "nbgrader"), "generate_assignment", "ps1", "--force"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"\| (WARNING|ERROR|CRITICAL)\]", done.stderr), done.stderr
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "kit") as gradebook:
        cells = {c.name: c.max_score for c in gradebook.find_notebook("nn_from_scratch", "ps1").grade_cells}
    config = load_config(toml)
    assert cells == {f"test_{part}": config.part_points(part) for part in ("linear", "relu", "softmax", "nll", "train")}
    assert cells["test_softmax"] == 17


@pytest.mark.slow
def test_plain_nbgrader_with_the_kits_preprocessor_stamps_an_unstamped_source(tmp_path):
    """nbgrader_config.py puts StampGradingToml first in GenerateAssignment.preprocessors: the
    release and the gradebook follow grading.toml although the source still says 15 points."""
    toml = tmp_path / "grading.toml"
    shutil.copy(GRADING, toml)
    edit_toml(toml, '"backward.grad" = 3', '"backward.grad" = 5')
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(SOURCE, course / "source" / "ps1" / SOURCE.name)
    (course / "nbgrader_config.py").write_text(
        "from autograder.stamp import stamped_preprocessors\n"
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'kit'\n"
        "c.GenerateAssignment.preprocessors = stamped_preprocessors()\n"
        f"c.StampGradingToml.grading_toml = {str(toml)!r}\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    done = subprocess.run([str(BIN / "nbgrader"), "generate_assignment", "ps1", "--force"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    student = nbformat.read(course / "release" / "ps1" / SOURCE.name, as_version=4)
    assert cell(student, "test_softmax").metadata["nbgrader"]["points"] == 17
    assert '<data value="parts.softmax">17</data>' in cell(student, "grading").source
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "kit") as gradebook:
        cells = {c.name: c.max_score for c in gradebook.find_notebook("nn_from_scratch", "ps1").grade_cells}
    assert cells["test_softmax"] == 17


TANH_COURSE = KIT_ROOT / "tests" / "fixtures" / "tanh_course"  # the README's add-a-layer example


@pytest.mark.slow
@pytest.mark.skipif(not TANH_COURSE.is_dir(), reason="needs the part registry's Tanh course fixture")
def test_a_course_that_adds_a_tanh_layer_is_checked_then_released(tmp_path):
    """The README's add-a-layer recipe (tests/fixtures/tanh_course): until the notebook has the Tanh
    cells, `check` names them; once it has them, release stamps the new total and the test cell's
    points, and the student notebook carries the new part."""
    course = tmp_path / "course"
    shutil.copytree(TANH_COURSE, course)
    notebook, toml = course / SOURCE.name, course / "course.toml"
    shutil.copy(SOURCE, notebook)
    config = load_config(toml)
    before = [d.describe(SOURCE.name) for d in check_assignment(notebook, config)]
    assert before == [
        "nn_from_scratch.ipynb: part 'tanh' of grading.toml has no answer cell (a code cell with nbgrader "
        "solution: true and grade_id 'tanh')",
        "grading.toml [parts.tanh.checks]: part 'tanh' (6 points) has no test cell calling grade_part('tanh') in "
        "the notebook: its points never reach the nbgrader gradebook",
        "nn_from_scratch.ipynb, cell 2 (grading), line 10: states parts as '58'; grading.toml has 64 "
        "(autograder release stamps it)",
    ]

    def add_tanh_section(nb):
        """What the instructor writes in Jupyter: the answer cell and its test cell (worth 0 for now)."""
        answer = nbformat.v4.new_code_cell(
            (course / "tanh_layer.py").read_text().replace(
                "        self.out = torch.tanh(z)\n        return self.out\n",
                "        ### BEGIN SOLUTION\n        self.out = torch.tanh(z)\n        return self.out\n"
                "        ### END SOLUTION\n"),
            metadata={"nbgrader": {"grade": False, "grade_id": "tanh", "locked": False, "schema_version": 3,
                                   "solution": True, "task": False}})
        test = nbformat.v4.new_code_cell(
            "# Graded by the hidden test below.\n\n### BEGIN HIDDEN TESTS\n"
            "from autograder.notebook import grade_part\ngrade_part(\"tanh\")\n### END HIDDEN TESTS",
            metadata={"nbgrader": {"grade": True, "grade_id": "test_tanh", "locked": True, "points": 0,
                                   "schema_version": 3, "solution": False, "task": False}})
        answer.id, test.id = "tanh", "test_tanh"
        at = nb.cells.index(cell(nb, "train_intro"))
        nb.cells[at:at] = [answer, test]
    edit_notebook(notebook, add_tanh_section)
    after = [d for d in check_assignment(notebook, config)]
    assert [d.stampable for d in after] == [True, True], after
    assert "cell 27 (test_tanh): worth 0 points here, 6 in grading.toml [parts.tanh.checks]" in str(after[0])

    released = release(notebook, course / "student", config)
    assert check_assignment(notebook, config) == []
    student = nbformat.read(released, as_version=4)
    assert cell(student, "test_tanh").metadata["nbgrader"]["points"] == 6
    assert "raise NotImplementedError()" in cell(student, "tanh").source
    assert "torch.tanh" not in cell(student, "tanh").source
    assert '<data value="parts">64</data>' in cell(student, "grading").source
