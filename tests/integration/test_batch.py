"""`autograder batch` end to end with the real sandbox: outputs, bad submissions among good ones,
resume, interruption, nbgrader and Gradescope inputs, the report."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from autograder.batch import grade_batch
from autograder.batch.progress import QuietProgress
from autograder.batch.runner import LocalRunner
from autograder.course.config import KIT_ROOT, load_config
from autograder.feedback.report import results_json
from conftest import REFERENCE_LAYERS, notebook_submission

REFERENCE = REFERENCE_LAYERS.read_text()
# A ReLU whose gradient at exactly 0 is 1 (rule 4): fails relu.backward.zero_input only.
BUGGY_RELU = REFERENCE + '''

class ReLU:
    def forward(self, h):
        self.h = h
        return h.clamp(min=0)

    def backward(self, dr):
        return dr * (self.h >= 0).to(dr.dtype)
'''
CRASHES_THE_CHILD = "import os\nos._exit(3)\n"


def write_class(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


MIXED_CLASS = {
    "alice.py": REFERENCE,
    "bob.py": BUGGY_RELU,
    "carol.ipynb": "{ this is not json",
    "dave.py": CRASHES_THE_CHILD,
    "erin.py": "",
}


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def grader(config, tmp_path_factory):
    """One warm template for the module; pytest's temp folders (inputs, outputs) are hidden."""
    from autograder.pipeline import Grader

    with Grader(config, hide=(tmp_path_factory.getbasetemp(),), workers=2) as shared:
        yield shared


def batch(path, out, config, grader, **options):
    return grade_batch(path, out, config, runner=LocalRunner(config, workers=2, grader=grader),
                       progress=QuietProgress(), **options)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def result(out: Path, student: str) -> dict:
    return json.loads((out / "results" / f"{student}.json").read_text())


@pytest.fixture(scope="module")
def mixed(config, grader, tmp_path_factory):
    """The mixed class graded once: (input folder, output folder, outcome)."""
    root = tmp_path_factory.mktemp("mixed")
    course = write_class(root / "class", MIXED_CLASS)
    outcome = batch(course, root / "out", config, grader)
    return course, root / "out", outcome


def test_every_submission_gets_a_result_and_a_row(mixed, config):
    _, out, outcome = mixed
    assert (outcome.submissions, outcome.graded, outcome.skipped, outcome.failures) == (5, 5, 0, [])
    students = "alice bob carol dave erin".split()
    assert sorted(p.name for p in (out / "results").glob("*.json")) == [f"{s}.json" for s in students]
    assert sorted(p.name for p in (out / "results").glob("*.html")) == [f"{s}.html" for s in students]
    rows = read_csv(out / "grades.csv")
    assert [row["student"] for row in rows] == ["alice", "bob", "carol", "dave", "erin"]
    full = sum(config.points.values())
    scores = {row["student"]: float(row["score"]) for row in rows}
    assert scores["alice"] == full
    assert scores["bob"] == full - config.points["relu.backward.zero_input"]
    assert scores["carol"] == scores["dave"] == scores["erin"] == 0


def test_csv_columns_follow_grading_toml_with_fixed_formatting(mixed, config):
    _, out, _ = mixed
    text = (out / "grades.csv").read_text()
    header = text.splitlines()[0].split(",")
    parts = list(dict.fromkeys(name.split(".")[0] for name in config.points))
    # per-part subtotals come last: scripts reading the earlier columns by position keep working
    assert header == ["student", "score", "max_score", *config.points, *(f"{part} subtotal" for part in parts)]
    assert (out / "grades.csv").read_bytes().endswith(b"\r\n")  # RFC 4180 line ends
    bob = next(row for row in read_csv(out / "grades.csv") if row["student"] == "bob")
    assert bob["relu.backward.zero_input"] == "0"
    assert bob["max_score"] == f"{sum(config.points.values()):g}"  # "58", never "58.0"
    assert all(bob[name] == f"{points:g}"
               for name, points in config.points.items() if name != "relu.backward.zero_input")
    assert bob["relu subtotal"] == f"{config.part_points('relu') - config.points['relu.backward.zero_input']:g}"
    assert bob["linear subtotal"] == f"{config.part_points('linear'):g}"


def test_bad_submissions_get_a_zero_and_a_reason(mixed):
    _, out, _ = mixed
    assert "carol.ipynb is not a notebook: invalid JSON" in result(out, "carol")["output"]
    assert "erin.py is empty" in result(out, "erin")["output"]
    dave = result(out, "dave")
    assert dave["score"] == 0
    assert any("could not be run" in notice for notice in dave["extra_data"]["notices"])


@pytest.mark.slow  # grades the class a second time
def test_a_zip_of_the_class_grades_like_the_folder(mixed, config, grader, tmp_path):
    course, out, _ = mixed
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(course.iterdir()):
            zipped.write(path, f"class/{path.name}")
        zipped.writestr("__MACOSX/class/._alice.py", b"\0\1")
    outcome = batch(archive, tmp_path / "out", config, grader)
    assert (outcome.layout, outcome.graded) == ("folder", 5)
    assert (tmp_path / "out" / "grades.csv").read_bytes() == (out / "grades.csv").read_bytes()


def test_result_file_is_the_grade_json_object(mixed, config, grader):
    course, out, _ = mixed
    written = result(out, "bob")
    direct = results_json(grader.grade(course / "bob.py", student="bob"), config)
    for variable in (written, direct):
        variable.pop("execution_time")
        variable["extra_data"].pop("submission")
    assert written["extra_data"].pop("batch").keys() == {"config", "course_secret_id", "submission"}
    assert written == direct


def test_report_html_has_both_plots_and_every_student(mixed):
    _, out, _ = mixed
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 3  # scores, scores per part, pass rate per check
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    for student in ("alice", "bob", "carol", "dave", "erin"):
        assert f'href="results/{student}.html"' in html and f'href="results/{student}.json"' in html
    # the first table is the mistakes: bob's ReLU lets the gradient through at exactly 0
    assert html.index("Mistakes most students make") < html.index("<table")
    mistakes = html.split("id='mistakes'")[1].split("</table>")[0]
    assert "ReLU.backward lets the gradient through where h is exactly 0" in mistakes and "bob" in mistakes
    hardest = html.split("Checks most students fail")[1].split("</table>")[0]
    # every check fails for the three unusable submissions; zero_input fails for bob too; ten at most
    rows = re.findall(r"<tr><td>([^<]+)</td>", hardest)
    assert rows[0] == "relu.backward.zero_input" and len(rows) == 10
    assert "not graded: carol.ipynb is not a notebook" in html


def test_terminal_summary_lists_the_most_failed_check_first(mixed, config):
    from rich.console import Console

    from autograder.batch.summary import print_summary

    _, _, outcome = mixed
    buffer = io.StringIO()
    print_summary(outcome, config, Console(file=buffer, width=200))
    text = buffer.getvalue()
    table = text.split("checks most students fail")[1]
    first_row = next(line for line in table.splitlines() if "." in line and "/" in line)
    assert "relu.backward.zero_input" in first_row and "1/5" in first_row
    assert "3 submission(s) could not be graded" in text or "could not be graded" in text


# Full marks, and a walk of the interpreter's object graph at load time: for the instructor to review.
REACHES_IN = REFERENCE + "\nimport gc\n_everything = len(gc.get_objects())\n"


@pytest.mark.slow  # a batch of its own
def test_instructor_notices_reach_the_report_and_summary_never_the_student(config, grader, tmp_path):
    """#23 item 5: what the instructor should review is in results/<id>.json's extra_data, the
    note column of report.html and the terminal summary; not in the output, the checks' messages
    or the feedback page a student is shown."""
    from rich.console import Console

    from autograder.batch.summary import print_summary

    course = write_class(tmp_path / "class", {"alice.py": REFERENCE, "frank.py": REACHES_IN})
    out = tmp_path / "out"
    outcome = batch(course, out, config, grader)
    frank = result(out, "frank")
    assert frank["score"] == frank["max_score"]
    assert any("gc.get_objects" in notice for notice in frank["extra_data"]["instructor_notices"])
    shown = (frank["output"] + "".join(t["output"] for t in frank["tests"]) + json.dumps(frank["extra_data"]["notices"])
             + (out / "results" / "frank.html").read_text())
    assert "get_objects" not in shown and "review" not in shown
    html = (out / "report.html").read_text()
    rows = {student: html.split(f'href="results/{student}.html"')[1].split("</tr>")[0]
            for student in ("alice", "frank")}
    assert "review: " in rows["frank"] and "gc.get_objects" in rows["frank"]
    assert "review" not in rows["alice"]
    assert "1 submission(s) to review" in html
    buffer = io.StringIO()
    print_summary(outcome, config, Console(file=buffer, width=300))
    summary = buffer.getvalue()
    assert "1 submission(s) to review" in summary and re.search(r"frank: .*gc\.get_objects", summary), summary


def test_report_escapes_text_from_submissions(config):
    from autograder.batch.html_report import render
    from autograder.batch.run import BatchOutcome

    hostile = {"score": 0, "max_score": 1, "output": "Not graded: <script>alert(1)</script>", "tests": [],
               "extra_data": {"error": "<script>alert(1)</script>"}}
    html = render(BatchOutcome("folder", 1, 1, 0, {"mallory": hostile}), config)
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.slow  # two more batches of the class
def test_rerun_skips_graded_students_and_rebuilds_an_identical_csv(mixed, config, grader):
    course, out, _ = mixed
    before = (out / "grades.csv").read_bytes()
    (out / "grades.csv").unlink()
    again = batch(course, out, config, grader)
    assert (again.graded, again.skipped) == (0, 5)
    assert (out / "grades.csv").read_bytes() == before
    forced = batch(course, out, config, grader, force=True)
    assert (forced.graded, forced.skipped) == (5, 0)
    assert (out / "grades.csv").read_bytes() == before


@pytest.mark.slow  # two batches
def test_resume_regrades_only_what_is_missing_changed_or_cut_short(config, grader, tmp_path):
    course = write_class(tmp_path / "class", {"alice.py": REFERENCE, "bob.py": REFERENCE, "carol.py": REFERENCE})
    out = tmp_path / "out"
    batch(course, out, config, grader)
    (course / "bob.py").write_text(BUGGY_RELU)  # a resubmission
    (course / "dave.py").write_text(REFERENCE)  # a late one
    (out / "results" / "carol.json").write_text('{"score": 5')  # a result cut short (e.g. power loss)
    (out / "results" / ".alice.json.tmp123").write_text("{")  # a temporary file left by a kill
    outcome = batch(course, out, config, grader)
    assert (outcome.graded, outcome.skipped, outcome.failures) == (3, 1, []), outcome.failures
    rows = {row["student"]: row for row in read_csv(out / "grades.csv")}
    assert sorted(rows) == ["alice", "bob", "carol", "dave"]
    assert rows["bob"]["relu.backward.zero_input"] == "0"
    assert not list((out / "results").glob(".*"))


@pytest.mark.slow  # two batches
def test_a_changed_grading_toml_regrades_everyone(config, grader, tmp_path):
    course = write_class(tmp_path / "class", {"alice.py": REFERENCE})
    out = tmp_path / "out"
    batch(course, out, config, grader)
    changed = tmp_path / "grading.toml"
    changed.write_text(Path(config.path).read_text() + "\n# a comment changes the file\n")
    outcome = batch(course, out, load_config(changed), grader)
    assert (outcome.graded, outcome.skipped) == (1, 0)


class BrokenOnce(LocalRunner):
    """A runner whose machinery fails on one student the first time (as a dead Dask worker would)."""

    def __init__(self, *args, victim: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.victim = victim

    def submit(self, item):
        if item.key == self.victim:
            self._outbox.put((item, RuntimeError("worker lost")))
        else:
            super().submit(item)


@pytest.mark.slow  # two batches
def test_a_grader_fault_leaves_the_student_ungraded_for_the_next_run(config, grader, tmp_path):
    course = write_class(tmp_path / "class", {"alice.py": REFERENCE, "bob.py": REFERENCE})
    out = tmp_path / "out"
    runner = BrokenOnce(config, workers=2, grader=grader, victim="bob")
    outcome = grade_batch(course, out, config, runner=runner, progress=QuietProgress())
    assert outcome.failures == [("bob.py", "RuntimeError: worker lost")]
    assert [row["student"] for row in read_csv(out / "grades.csv")] == ["alice"]
    assert not (out / "results" / "bob.json").exists()
    again = batch(course, out, config, grader)
    assert (again.graded, again.skipped, again.failures) == (1, 1, [])
    assert [row["student"] for row in read_csv(out / "grades.csv")] == ["alice", "bob"]


@pytest.mark.slow  # a batch of its own
def test_nbgrader_course_tree(config, grader, tmp_path):
    course = tmp_path / "course"
    write_class(course / "submitted", {
        "alice/ps1/nn_from_scratch.ipynb": notebook_submission(),
        "alice/ps1/timestamp.txt": "2026-11-25 10:00:00 UTC",
        "bob/ps1/nn_from_scratch.ipynb": "{}",
    })
    outcome = batch(course, tmp_path / "out", config, grader)
    assert outcome.layout == "nbgrader"
    rows = {row["student"]: row for row in read_csv(tmp_path / "out" / "grades.csv")}
    assert rows["alice"]["score"] == rows["alice"]["max_score"]
    assert rows["bob"]["score"] == "0"
    assert result(tmp_path / "out", "alice")["extra_data"]["submission"] == "submitted/alice/ps1"


@pytest.mark.slow  # a batch of its own
def test_gradescope_export_zip_gives_each_group_member_the_grade(config, grader, tmp_path):
    top = "assignment_9_export/"
    metadata = (
        "submission_1:\n  :submitters:\n  - :name: Ada\n    :sid: '007'\n  - :name: Alan\n    :sid: '12'\n"
        "submission_2:\n  :submitters:\n  - :name: Grace\n    :sid: '31'\n"
    )
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr(top + "submission_metadata.yml", metadata)
        archive.writestr(top + "submission_1/layers.py", REFERENCE)
        archive.writestr(top + "submission_2/nn_from_scratch.ipynb", notebook_submission())
        archive.writestr("__MACOSX/" + top + "submission_2/._nn_from_scratch.ipynb", b"\0\1")
    out = tmp_path / "out"
    outcome = batch(export, out, config, grader)
    assert (outcome.layout, outcome.submissions, outcome.graded) == ("gradescope", 2, 2)
    rows = {row["student"]: row for row in read_csv(out / "grades.csv")}
    assert sorted(rows) == ["007", "12", "31"]
    assert rows["007"] == {**rows["12"], "student": "007"}
    ada = result(out, "007")["extra_data"]
    assert (ada["student"], ada["group"], ada["submission"]) == ("007", ["007", "12"], "submission_1")
    assert rows["31"]["score"] == rows["31"]["max_score"]


@pytest.mark.slow  # a batch of its own
def test_ids_never_become_spreadsheet_formulas_nor_collide_by_case(config, grader, tmp_path):
    """Gradescope SIDs (and file names) reach grades.csv: one starting with + - @ (or = before it
    is sanitised) would be a formula in a spreadsheet; it gets the usual leading apostrophe. Ids
    that differ only in letter case would share a file on a case-insensitive disk: renamed, and
    the warning says why."""
    sids = ["+1-555-0100", "-2", "@SUM(A1)", "=HYPERLINK(evil)", "Ada", "ada"]
    metadata = "".join(f"submission_{n}:\n  :submitters:\n  - :sid: '{sid}'\n" for n, sid in enumerate(sids))
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("submission_metadata.yml", metadata)
        for n in range(len(sids)):
            archive.writestr(f"submission_{n}/layers.py", "x = 1\n")
    out = tmp_path / "out"
    outcome = batch(export, out, config, grader)
    ids = ["+1-555-0100", "-2", "@SUM_A1_", "_HYPERLINK_evil_", "Ada", "ada-2"]
    assert sorted(p.stem for p in (out / "results").glob("*.json")) == sorted(ids)
    cells = [row["student"] for row in read_csv(out / "grades.csv")]
    assert cells == sorted(["'+1-555-0100", "'-2", "'@SUM_A1_", "_HYPERLINK_evil_", "Ada", "ada-2"])
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert any("submission_5 -> ada-2 (differs from Ada only in letter case)" in w for w in outcome.warnings)


def run_cli(*args, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder", *args], cwd=KIT_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)


@pytest.mark.slow  # `autograder batch` interrupted, then run again
def test_ctrl_c_leaves_a_consistent_state_that_a_rerun_completes(tmp_path):
    slow = "import time\ntime.sleep(1)\n" + REFERENCE
    course = write_class(tmp_path / "class", {f"s{i}.py": slow for i in range(6)})
    out = tmp_path / "out"
    process = run_cli("batch", str(course), "--out", str(out), "--workers", "1")
    deadline = time.monotonic() + 120
    while not list((out / "results").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    done = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert 1 <= len(done) < 6, stdout + stderr
    assert all(json.loads((out / "results" / f"{s}.json").read_text())["score"] > 0 for s in done)
    assert [row["student"] for row in read_csv(out / "grades.csv")] == done
    assert not list((out / "results").glob(".*"))

    rerun = run_cli("batch", str(course), "--out", str(out), "--workers", "1")
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert f"{6 - len(done)} graded now, {len(done)} already graded" in stdout, stdout + stderr
    assert re.search(r"graded \d+/\d+ \(\d+\.\d/s, ETA \d+s\)", stderr)  # progress lines, stderr is no TTY
    assert [row["student"] for row in read_csv(out / "grades.csv")] == [f"s{i}" for i in range(6)]


@pytest.mark.slow  # `autograder batch` in a fresh interpreter
@pytest.mark.skipif(os.geteuid() != 0, reason="folders are hidden from children only when grading as root")
def test_children_cannot_see_other_submissions_or_write_results(tmp_path):
    # World-readable and outside the folders every child gets covered anyway (/tmp, /run, ...), so
    # only the batch's own hiding of its input and output protects them.
    places = [p for p in ("/srv", "/opt", "/var/lib") if os.path.isdir(p) and os.access(p, os.W_OK)]
    if not places:
        pytest.skip("no writable folder outside the sandbox's always-covered ones")
    base = Path(tempfile.mkdtemp(prefix="autograder-batch-test-", dir=places[0]))
    try:
        base.chmod(0o755)
        course, out = base / "class", base / "out"
        snoop = f'''
seen = []
for folder in ({str(course)!r}, {str(out / "results")!r}):
    try:
        seen.append(sorted(__import__("os").listdir(folder)))
    except Exception as error:
        seen.append(type(error).__name__)
try:
    open({str(out / "results" / "alice.json")!r}, "w").write("{{}}")
    seen.append("wrote")
except Exception as error:
    seen.append(type(error).__name__)
print("SNOOP", seen)
''' + REFERENCE
        write_class(course, {"alice.py": REFERENCE, "mallory.py": snoop})
        course.chmod(0o755)
        process = run_cli("batch", str(course), "--out", str(out))
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        printed = result(out, "mallory")["extra_data"]["student_output"]
        # the class folder looks empty (hidden by the mount namespace) or cannot be listed (Landlock
        # refuses it first), the output folder has no results/ to list or write into
        assert printed.startswith(("SNOOP [[], ", "SNOOP ['PermissionError', ")), printed
        assert "alice" not in printed and "wrote" not in printed
        assert result(out, "alice")["score"] == result(out, "alice")["max_score"]
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("arguments, message", [
    (["batch", "/nonexistent/class", "--out", "OUT"], "no such file or folder"),
    (["batch", str(KIT_ROOT / "solution" / "layers.py"), "--out", "OUT"], "single file"),
    (["batch", "CLASS", "--out", "CLASS"], "must not be the input folder"),
    (["batch", "CLASS", "--out", "OUT", "--workers", "0"], "--workers must be at least 1"),
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path, arguments, message):
    (tmp_path / "class").mkdir()
    arguments = [a.replace("OUT", str(tmp_path / "out")).replace("CLASS", str(tmp_path / "class")) for a in arguments]
    process = run_cli(*arguments)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.count("\n") == 1 and message in stderr and "Traceback" not in stderr


@pytest.mark.slow  # a batch in a fresh interpreter
def test_local_grading_never_imports_dask(tmp_path):
    course = write_class(tmp_path / "class", {"alice.py": REFERENCE})
    code = (
        "import sys\nfrom pathlib import Path\nfrom autograder.batch import grade_batch\n"
        "from autograder.batch.progress import QuietProgress\nfrom autograder.course.config import load_config\n"
        f"grade_batch(Path({str(course)!r}), Path({str(tmp_path / 'out')!r}), load_config(), "
        "progress=QuietProgress())\n"
        "print('distributed' in sys.modules, 'dask' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=KIT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False False"


@pytest.mark.slow  # draws the report's figures in a second interpreter
def test_figures_drawn_by_a_second_interpreter_are_those_drawn_here(config, tmp_path):
    """The report's figures come from FiguresElsewhere (matplotlib loading while a batch grades):
    the same PNGs as drawn in this process; a drawer that cannot draw costs nothing but time."""
    from autograder.batch import html_report

    names = list(config.points)
    results = {f"s{k}": {"score": float(k), "max_score": float(sum(config.points.values())),
                         "tests": [{"name": n, "score": config.points[n] * ((i + k) % 2), "max_score": config.points[n],
                                    "status": "passed" if (i + k) % 2 else "failed"} for i, n in enumerate(names)]}
               for k in range(4)}
    inputs = html_report.figure_inputs(results, config)
    here = html_report.draw_figures(inputs)
    elsewhere = html_report.FiguresElsewhere()
    try:
        assert elsewhere.draw(inputs) == here
    finally:
        elsewhere.close()
    broken = html_report.FiguresElsewhere()
    broken.close()  # killed before it drew: the figures are drawn here instead
    assert broken.draw(inputs) == here
