"""End-to-end behaviour of `grade`: inputs, what runs, scoring, feedback, forbidden APIs."""
from __future__ import annotations

import re
import zipfile

import pytest

from conftest import LAYER_PARTS, answer, locked, write_notebook


def split_classes(source: str) -> dict[str, str]:
    """The reference source cut into its import header and one chunk per class."""
    chunks = re.split(r"(?m)^(?=class )", source)
    header, classes = chunks[0], chunks[1:]
    return {"header": header, **{re.match(r"class (\w+)", c).group(1): c for c in classes}}


@pytest.fixture(scope="module")
def reference_notebook(tmp_path_factory, reference_source):
    parts = split_classes(reference_source)
    return write_notebook(tmp_path_factory.mktemp("nb") / "nn_from_scratch.ipynb", [
        ("markdown", None, "# Neural network from scratch"),
        ("code", locked("setup_imports"), parts["header"]),
        ("code", answer("linear"), parts["Linear"]),
        ("code", locked("test_linear", 17), "raise AssertionError('instructor test cells are not run')"),
        ("code", answer("relu"), parts["ReLU"]),
        ("code", locked("demo_relu"), "import sys; sys.exit('demo cells are not run')"),
        ("code", answer("softmax"), "%matplotlib inline\n" + parts["Softmax"] + "!ls /\n"),
        ("code", None, "def helper_added_by_student(t):\n    return t\n"),
        ("code", answer("nll"), parts["NLLLoss"]),
    ])


def test_reference_py_gets_full_marks(grader, tmp_path, reference_source):
    path = tmp_path / "alice.py"
    path.write_text(reference_source)
    report = grader.grade(path)
    assert report.error == ""
    assert report.score == report.max_score == grader.config.part_points("linear") + sum(
        grader.config.part_points(p) for p in ("relu", "softmax", "nll", "train"))
    assert all(c.passed for c in report.checks)


def test_notebook_runs_answer_setup_and_added_cells_only(grader, reference_notebook):
    report = grader.grade(reference_notebook)
    assert report.score == report.max_score, [c.message for c in report.checks if not c.passed]
    assert any("magics" in notice for notice in report.notices)


def test_zip_holding_a_notebook_and_junk(grader, reference_notebook, tmp_path):
    archive = tmp_path / "bob.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(reference_notebook, "bob/nn_from_scratch.ipynb")
        z.writestr("__MACOSX/bob/._nn_from_scratch.ipynb", b"\x00\x01junk")
        z.writestr("bob/.DS_Store", b"\x00")
    report = grader.grade(archive)
    assert report.student == "bob"
    assert report.score == report.max_score


def test_unfinished_part_loses_only_its_points(grader, tmp_path, reference_source):
    stub = "class Softmax:\n    def forward(self, r):\n        raise NotImplementedError()\n" \
           "    def backward(self, dS):\n        raise NotImplementedError()\n"
    path = tmp_path / "carol.py"
    path.write_text(reference_source + "\n" + stub)
    report = grader.grade(path, parts=LAYER_PARTS)
    parts = report.parts
    assert parts["softmax"].score == 0
    assert all(parts[p].score == parts[p].max_score for p in ("linear", "relu", "nll"))
    message = next(c.message for c in parts["softmax"].checks)
    assert "Softmax.forward raised NotImplementedError" in message


@pytest.mark.parametrize("old, new, check, hint", [
    ("self.db = dh.sum(dim=0)", "self.db = dh.sum(dim=0, keepdim=True)", "linear.backward.grad_b", "keepdim"),
    ("return -self.p.log().mean()", "return -self.p.log().sum()", "nll.forward.value", "a 1/N is missing"),
])
def test_known_mistakes_get_a_hint(grader, tmp_path, reference_source, old, new, check, hint):
    assert reference_source.count(old) == 1, f"reference changed: update this test ({old!r})"
    path = tmp_path / "dave.py"
    path.write_text(reference_source.replace(old, new))
    report = grader.grade(path, parts=LAYER_PARTS)
    failed = {c.name: c.message for c in report.checks if not c.passed}
    assert check in failed
    assert hint in failed[check]
    assert "Given:" in failed[check]


def test_forbidden_api_through_an_alias_zeroes_that_method(grader, tmp_path, reference_source):
    sneaky = ("class Softmax(Softmax):\n    def forward(self, r):\n"
              "        self.S = getattr(torch, 'soft' + 'max')(r, 1)\n        return self.S\n")
    path = tmp_path / "erin.py"
    path.write_text(reference_source + "\n" + sneaky)
    report = grader.grade(path, parts=LAYER_PARTS)
    forward = [c for c in report.parts["softmax"].checks if ".forward." in c.name]
    assert forward and all(not c.passed and "softmax" in c.message for c in forward)
    assert all(report.parts[p].score == report.parts[p].max_score for p in ("linear", "relu", "nll"))


def test_forbidden_api_named_statically(grader, tmp_path, reference_source):
    direct = ("import torch.nn.functional as F\nclass ReLU(ReLU):\n    def forward(self, h):\n"
              "        self.h = h\n        return F.relu(h)\n")
    path = tmp_path / "frank.py"
    path.write_text(reference_source + "\n" + direct)
    report = grader.grade(path, parts=("relu",))
    forward = [c for c in report.checks if c.name.startswith("relu.forward")]
    assert all("Forbidden API" in c.message and "relu" in c.message for c in forward)
    assert any("module level" in n for n in report.notices)


def test_unusable_file_is_a_zero_with_a_reason(grader, tmp_path):
    path = tmp_path / "gina.ipynb"
    path.write_text("{ not json")
    report = grader.grade(path)
    assert report.score == 0 and "not a notebook" in report.error
    assert all(c.score == 0 and "Not graded" in c.message for c in report.checks)


def test_student_prints_are_captured(grader, tmp_path, reference_source):
    path = tmp_path / "hal.py"
    path.write_text(reference_source + "\nprint('hello from the student')\n")
    report = grader.grade(path, parts=("relu",))
    assert "hello from the student" in report.student_output


def test_tampering_shapes_are_flagged_for_the_instructor(grader, tmp_path, reference_source):
    path = tmp_path / "ian.py"
    path.write_text(reference_source + "\nimport sys\nguard = [m for m in sys.modules if 'guard' in m]\n")
    report = grader.grade(path, parts=("relu",))
    assert any("modules" in n for n in report.instructor_notices)
    assert not any("modules" in n for n in report.notices)  # the student is not shown it (#23 item 5)
    assert report.parts["relu"].score == report.parts["relu"].max_score


@pytest.mark.slow  # sleeps into the time limits
def test_a_submission_has_one_total_time_budget(config, tmp_path, reference_source):
    """Code that sleeps just under every check's limit must not hold a worker for checks × limit."""
    import dataclasses

    from autograder.pipeline import Grader

    limits = dataclasses.replace(config.limits, wall_seconds=2, submission_seconds=3)
    path = tmp_path / "kim.py"
    path.write_text(reference_source + "\nclass ReLU(ReLU):\n    def forward(self, h):\n"
                    "        import time\n        time.sleep(1.5)\n        return super().forward(h)\n")
    with Grader(dataclasses.replace(config, limits=limits), hide=(tmp_path,)) as slow:
        report = slow.grade(path)
    assert report.execution_time < 8  # the 3 s budget (plus slack for a loaded machine), not checks × 2 s
    assert report.parts["linear"].score == report.parts["linear"].max_score
    last = report.checks[-1]
    assert not last.passed and "total time limit (3 s)" in last.message


@pytest.mark.slow  # starts a template in a fresh interpreter
def test_code_that_forks_runs_in_a_spawned_template_too(config, tmp_path, reference_source):
    """A template started as a fresh interpreter (Jupyter kernels, Dask workers, any host that
    imported `solution`) must give children a working fork: a regression of the raw-clone zygote."""
    from autograder.pipeline import Grader

    path = tmp_path / "lea.py"
    path.write_text(reference_source + "\n_os = __import__('random')._os\n_pid = _os.fork()\n"
                    "if _pid == 0:\n    _os._exit(0)\n_os.waitpid(_pid, 0)\nprint('forked and reaped')\n")
    with Grader(config, hide=(tmp_path,), mode="spawn") as spawned:
        report = spawned.grade(path, parts=("relu",))
    assert "forked and reaped" in report.student_output
    assert report.score == report.max_score
