"""The assignment notebook, its student release, and how both fit the kit.

Most tests read the notebooks' JSON. Three run a real Jupyter kernel through nbclient (each kernel
start costs seconds): the source without its hidden tests, the student template, and the full
source with hidden tests (scored by the kit's grader). nbgrader's own CLI checks the source.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

import solution
from autograder.course.config import load_config
from autograder.platforms.nbgrader_release import release
from autograder.records import GraderError

KIT = Path(__file__).resolve().parents[2]
SOURCE = KIT / "assignment" / "nn_from_scratch.ipynb"
TEMPLATE = KIT / "student_template" / "nn_from_scratch.ipynb"
PARTS = tuple(part.grade_id for part in load_config().layers)  # the parts with an answer cell
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
KERNEL_TIMEOUT = 300  # seconds per cell


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def grading() -> dict:
    with open(KIT / "grading.toml", "rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def part_points(grading) -> dict[str, float]:
    """Every part of grading.toml (the four layers and train) -> its points."""
    return {part: sum(body["checks"].values()) for part, body in grading["parts"].items()}


@pytest.fixture(scope="module")
def source():
    return nbformat.read(SOURCE, as_version=4)


@pytest.fixture(scope="module")
def template():
    return nbformat.read(TEMPLATE, as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cell(nb, grade_id: str):
    matches = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id]
    assert len(matches) == 1, f"{len(matches)} cells with grade_id {grade_id!r}"
    return matches[0]


def flat(text: str) -> str:
    """Text with every run of whitespace made one space (line breaks in markdown don't matter)."""
    return " ".join(text.split())


def markdown_text(nb) -> str:
    return flat("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"))


def solution_lines(nb) -> set[str]:
    """Every non-blank, non-comment line written inside a BEGIN/END SOLUTION region."""
    lines = set()
    for c in nb.cells:
        for region in SOLUTION.findall(c.source):
            lines.update(line.strip() for line in region.splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def execute(nb, cwd: Path):
    """Run `nb` top to bottom in a fresh python3 kernel with working directory `cwd` (in place)."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=KERNEL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def stream(c, name: str) -> str:
    return "".join(o.text for o in c.get("outputs", []) if o.output_type == "stream" and o.name == name)


def errors(c) -> list:
    return [o for o in c.get("outputs", []) if o.output_type == "error"]


# --------------------------------------------------------------------------- the source notebook


def test_reference_solution_is_the_notebooks_answer_cells():
    """solution.layers runs the set-up and answer cells: one copy of the reference answers."""
    for name, grade_id in [("Linear", "linear"), ("ReLU", "relu"), ("Softmax", "softmax"), ("NLLLoss", "nll")]:
        layer = getattr(solution, name)
        assert layer.__module__ == "solution.layers"
        assert layer.backward.__code__.co_filename == f"{SOURCE}#{grade_id}"


def test_notebook_uses_nbgrader_metadata_schema_3(source):
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(source)  # raises on bad metadata or duplicate grade_ids
    for c in source.cells:
        assert nbgrader_meta(c).get("schema_version") == 3, c.id


def test_answer_cells_are_the_four_parts_each_with_two_solution_regions(source):
    answers = [nbgrader_meta(c)["grade_id"] for c in source.cells if nbgrader_meta(c).get("solution")]
    assert sorted(answers) == sorted(PARTS)
    for part in PARTS:
        answer = cell(source, part)
        meta = nbgrader_meta(answer)
        assert answer.cell_type == "code" and meta["locked"] is False and meta["grade"] is False
        assert len(SOLUTION.findall(answer.source)) == 2, f"{part}: forward and backward regions"
    init = cell(source, "linear").source.split("### BEGIN SOLUTION")[0]
    assert "def __init__(self, in_features, out_features, generator=None):" in init
    assert "self.W =" in init and "self.b =" in init  # given to students, not a stub


def test_each_answer_cell_is_followed_by_its_locked_test_cell_worth_the_parts_points(source, part_points):
    """Four answer cells, each followed by its test cell; the train part's test cell ends section 7."""
    code = [c for c in source.cells if c.cell_type == "code"]
    for part in PARTS:
        answer_at = code.index(cell(source, part))
        test = code[answer_at + 1]
        meta = nbgrader_meta(test)
        assert meta["grade_id"] == f"test_{part}"
        assert meta["grade"] is True and meta["locked"] is True and meta["solution"] is False
        assert meta["points"] == part_points[part]
    assert nbgrader_meta(cell(source, "test_train"))["points"] == part_points["train"]
    graded = [nbgrader_meta(c) for c in source.cells if nbgrader_meta(c).get("grade")]
    assert sum(meta["points"] for meta in graded) == sum(part_points.values())


def test_each_test_cell_ends_with_the_hidden_grade_part_region(source):
    for part in PARTS:
        text = cell(source, f"test_{part}").source
        assert text.endswith(
            "\n\n### BEGIN HIDDEN TESTS\n"
            "from autograder.notebook import grade_part\n"
            f'grade_part("{part}")\n'
            "### END HIDDEN TESTS")
        visible = HIDDEN.sub("", text)
        assert "autograder" not in visible and "assert " not in visible  # verdicts go through check()
        # never a bare boolean (nbgrader would give full credit); failed self-checks stop the cell
        # at its end, so nbgrader's Validate fails (tests/integration/test_routes.py runs it)
        last = ast.parse(visible).body[-1]
        assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
        assert last.value.func.id == "self_checks_done"


def test_instructor_code_cells_are_locked_and_setup_cells_only_import(source):
    """The grader runs answer cells, locked `setup*` cells and unmarked cells; every other cell is skipped."""
    for c in source.cells:
        meta = nbgrader_meta(c)
        assert meta, f"cell {c.id} has no nbgrader metadata"
        assert c.id == meta["grade_id"]
        if c.cell_type == "code" and not meta["solution"]:
            assert meta["locked"] is True, meta["grade_id"]
    setups = [c for c in source.cells if nbgrader_meta(c)["grade_id"].startswith("setup")]
    assert [nbgrader_meta(c)["grade_id"] for c in setups] == ["setup_imports"]
    for node in ast.parse(setups[0].source).body:
        assert isinstance(node, ast.Import), ast.dump(node)
        assert {alias.name for alias in node.names} <= {"math", "torch"}


def test_every_rule_of_the_student_contract_is_stated(source, grading):
    text = markdown_text(source)
    for phrase in [
        "(D_out,)", "N ≥ 1", "N = 1", "dimensions that differ",  # 1. shapes
        "float64 inputs give float64", "float32 inputs",  # 2. dtype
        "compared with\ntorch autograd in float64",  # 3. values
        "gradient at exactly 0 is 0",  # 4. ReLU
        "magnitude 1000", "exact zeros off the true class",  # 5. stability
        "in place",  # 6. no in-place changes
        "overwrites",  # 7. backward overwrites
        "**Everything else is\nallowed**",  # 8. allowed
        "sandbox", "no network access", "time limit", "hidden tests",  # how grading works
        "your four answer cells, any cells you added, and the set-up\ncell",
    ]:
        assert flat(phrase) in text, phrase
    for name in [*grading["forbidden"]["modules"], *grading["forbidden"]["functions"],
                 *grading["forbidden"]["attributes"]]:
        assert f"`{name}`" in text, name


@pytest.mark.parametrize("part, phrases", [
    ("nll", ["0-dim tensor", "exact zeros off the true\nclass", "calling `backward()` twice", "in place",
             "dtype\npreserved", "N ≥ 1", "autograd", "`nll_loss`"]),
    ("softmax", ["magnitude\n1000", "±1000", "in place", "dtype\npreserved", "N ≥ 1", "autograd", "`softmax`"]),
    ("relu", ["exactly `h == 0` is 0", "in place", "dtype preserved", "autograd", "`torch.relu`"]),
    ("linear", ["`(D_out,)`, not `(1, D_out)`", "overwrites `self.dW` and `self.db`", "twice", "in place",
                "dtype\npreserved", "N ≥ 1", "D_in ≠ D_out", "autograd", "sets `.W` and `.b` itself"]),
])
def test_rules_are_repeated_next_to_the_answer_cell_they_concern(source, part, phrases):
    at = source.cells.index(cell(source, part))
    task = source.cells[at - 1]
    assert task.cell_type == "markdown" and task.source.startswith("### Your task")
    for phrase in phrases:
        assert flat(phrase) in flat(task.source), f"{part}: {phrase!r}"


def test_derivations_end_in_the_formulas_the_code_implements(source):
    text = markdown_text(source)
    for formula in [
        r"dS_{ic} = \frac{\partial L}{\partial S_{ic}} = -\frac{1}{N}\,\frac{y_{ic}}{S_{ic}}",
        r"J_i = \operatorname{diag}(s) - s\,s^{\top}",
        r"dr = S \odot \big(dS - \operatorname{rowsum}(dS \odot S)\big)",
        r"dh = dr \odot \mathbb{1}[h > 0]",
        r"dx = dh\,W^{\top}", r"dW = x^{\top} dh", r"db = \textstyle\sum_{\text{rows}} dh",
        r"dr = \frac{S - y}{N}",
        r"W \leftarrow W - \eta\, \nabla_W L",  # the post's update, with a learning rate
        "broadcast\nover the rows",  # the post's b, a vector
    ]:
        assert flat(formula) in text, formula


# --------------------------------------------------------------------------- the student template


def test_template_holds_no_solution_code_and_no_hidden_tests(source, template):
    secret = solution_lines(source)
    assert len(secret) >= 12
    for c in template.cells:
        shown = {line.strip() for line in c.source.splitlines()}
        assert not secret & shown, f"cell {c.id} shows solution lines {secret & shown}"
    text = TEMPLATE.read_text(encoding="utf-8")
    # the helpers may use the kit's forbidden-function scan when it is installed; the hidden
    # tests' entry point (autograder.notebook) must not show
    for marker in ["BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "grade_part", "autograder.notebook"]:
        assert marker not in text, marker
    assert text.count("autograder") == text.count("from autograder.forbidden import scan_class")


def test_template_has_stubs_locked_cells_and_checksums(source, template):
    assert [c.id for c in template.cells] == [c.id for c in source.cells]
    for part in PARTS:
        stubbed = cell(template, part).source
        assert stubbed.count("# YOUR CODE HERE\n") == 2
        assert stubbed.count("raise NotImplementedError()") == 2
    assert "def __init__(self, in_features, out_features, generator=None):" in cell(template, "linear").source
    for c in template.cells:
        meta = nbgrader_meta(c)
        assert len(meta["checksum"]) == 32 and meta["cell_type"] == c.cell_type
        if meta["locked"]:
            assert c.metadata["editable"] is False and c.metadata["deletable"] is False
        assert not c.get("outputs")


def test_committed_template_equals_a_fresh_release(tmp_path):
    written = release(SOURCE, tmp_path / "out")
    assert written == tmp_path / "out" / "nn_from_scratch.ipynb"
    assert written.read_bytes() == TEMPLATE.read_bytes(), \
        "student_template/ is stale: run autograder release"


@pytest.mark.parametrize("name, content, message", [
    ("missing.ipynb", None, "no such notebook"),
    ("notes.txt", "hello", "not a notebook"),
    ("broken.ipynb", "{not json", "not a readable notebook"),
])
def test_release_refuses_unusable_input_with_a_grader_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(GraderError, match=message):
        release(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_release_reports_nbgrader_rejections_in_one_line(tmp_path, source):
    """A rule of nbgrader's own that `autograder check` leaves to it: solution regions only in answer cells."""
    broken = nbformat.from_dict(source)
    cell(broken, "plot_loss").source += "\n### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"
    path = tmp_path / "nn_from_scratch.ipynb"
    nbformat.write(broken, path)
    with pytest.raises(GraderError, match="Solution region detected in a non-solution cell") as raised:
        release(path, tmp_path / "out")
    assert "\n" not in str(raised.value)


@pytest.mark.slow  # nbgrader's own command line on the source
def test_nbgrader_generate_assignment_cli_accepts_the_source(tmp_path, part_points):
    """The real CLI with its gradebook, in a temporary course; its release equals the committed template."""
    course = tmp_path / "course"
    (course / "source" / "ps1").mkdir(parents=True)
    shutil.copy(SOURCE, course / "source" / "ps1" / SOURCE.name)
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'kit'\n")
    bin_dir = Path(sys.executable).parent  # nbgrader runs `alembic` from PATH
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter")}
    done = subprocess.run([str(bin_dir / "nbgrader"), "generate_assignment", "ps1", "--force"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"\| (WARNING|ERROR|CRITICAL)\]", done.stderr), done.stderr
    released = course / "release" / "ps1" / SOURCE.name
    assert released.read_bytes() == TEMPLATE.read_bytes()

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "kit") as gradebook:
        notebook = gradebook.find_notebook("nn_from_scratch", "ps1")
        assert {c.name for c in notebook.grade_cells} == {f"test_{part}" for part in part_points}
        assert {c.name for c in notebook.solution_cells} == set(PARTS)
        assert {c.name: c.max_score for c in notebook.grade_cells} == {f"test_{p}": v for p, v in part_points.items()}


# --------------------------------------------------------------------------- in a real kernel


@pytest.mark.slow  # runs the notebook in a Jupyter kernel
def test_source_runs_top_to_bottom_in_a_kernel(tmp_path, source):
    """Hidden regions removed (they need the kit's grader; see the next test): no error, no stderr."""
    nb = nbformat.from_dict(source)
    for c in nb.cells:
        c.source = HIDDEN.sub("", c.source)
    execute(nb, tmp_path)
    for c in nb.cells:
        assert not errors(c), c.id
        assert stream(c, "stderr") == "", f"{c.id} wrote to stderr: {stream(c, 'stderr')}"
        assert "✗" not in stream(c, "stdout"), stream(c, "stdout")
    for part in PARTS:
        verdicts = stream(cell(nb, f"test_{part}"), "stdout").splitlines()
        assert len([line for line in verdicts if line.startswith("✓")]) >= 4, verdicts
    for plot in ("plot_loss", "plot_predictions"):
        assert any("image/png" in o.get("data", {}) for o in cell(nb, plot).outputs), plot
    accuracy = re.search(r"test accuracy: ([\d.]+)%", stream(cell(nb, "plot_predictions"), "stdout"))
    assert accuracy and float(accuracy.group(1)) >= 95.0


@pytest.mark.slow  # runs the notebook in a Jupyter kernel
def test_template_runs_until_the_first_stub_and_fails_there(tmp_path, template):
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.from_dict(template)
    with pytest.raises(CellExecutionError):
        execute(nb, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    failed = [c for c in code if errors(c)]
    first_answer = next(i for i, c in enumerate(code) if nbgrader_meta(c)["solution"])
    assert [c.id for c in failed] == [code[first_answer + 1].id]  # the test cell of the first answer
    assert errors(failed[0])[0].ename == "NotImplementedError"
    assert all(c.get("execution_count") for c in code[: first_answer + 1])  # everything before ran
    assert not any(c.get("outputs") for c in code[first_answer + 2:])  # nothing after ran


@pytest.mark.skipif(importlib.util.find_spec("autograder.notebook") is None,
                    reason="needs the kit's grader (autograder.notebook.grade_part)")
@pytest.mark.slow  # runs the notebook, hidden tests and all, in a Jupyter kernel
def test_source_with_hidden_tests_scores_each_part_in_full(tmp_path, part_points):
    """As under `nbgrader autograde`: each test cell's last value is the part's points."""
    shutil.copy(SOURCE, tmp_path / SOURCE.name)  # grade_part grades the notebook in the working directory
    nb = execute(nbformat.read(tmp_path / SOURCE.name, as_version=4), tmp_path)
    for part in part_points:
        test = cell(nb, f"test_{part}")
        assert stream(test, "stderr") == "", stream(test, "stderr")
        results = [o for o in test.outputs if o.output_type == "execute_result"]
        assert len(results) == 1 and test.outputs[-1] is results[0]
        assert float(results[0].data["text/plain"]) == part_points[part], stream(test, "stdout")
