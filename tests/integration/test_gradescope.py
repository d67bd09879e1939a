"""The Gradescope zip, and its real run_autograder script run on a laid-out /autograder folder.

setup.sh needs the internet (pip), so it is only checked for syntax and content here; run_autograder
runs for real with AUTOGRADER_ROOT pointing at a temporary layout and AUTOGRADER_PYTHON at this
venv's interpreter, and imports the kit from the unzipped copy in <root>/source.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT, load_config
from autograder.course.secret import fingerprint, read_secret
from conftest import REFERENCE_LAYERS

SOLUTION = REFERENCE_LAYERS.read_text()
SPEC_TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
            "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
SPEC_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
             "tags", "visibility", "extra_data"}
FORMATS = {"text", "html", "md", "ansi", "simple_format"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def validate_results(results: dict) -> None:
    """results.json as https://gradescope-autograders.readthedocs.io/en/latest/specs/ describes it."""
    assert set(results) <= SPEC_TOP, set(results) - SPEC_TOP
    assert isinstance(results["score"], (int, float)) and not isinstance(results["score"], bool)
    assert isinstance(results["execution_time"], (int, float))
    assert isinstance(results["output"], str) and results["output_format"] in FORMATS
    assert results["visibility"] in VISIBILITIES and results["stdout_visibility"] in VISIBILITIES
    assert isinstance(results["extra_data"], dict)
    assert results["tests"], "one entry per hidden check"
    for test in results["tests"]:
        assert set(test) <= SPEC_TEST, set(test) - SPEC_TEST
        assert isinstance(test["name"], str) and test["name"]
        for key in ("score", "max_score"):
            assert isinstance(test[key], (int, float)) and not isinstance(test[key], bool)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed")
        assert (test["status"] == "passed") == (test["score"] == test["max_score"])
        assert isinstance(test["output"], str) and test["output_format"] in FORMATS
        assert all(isinstance(tag, str) for tag in test["tags"])
        assert test["visibility"] in VISIBILITIES
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def unzip_keeping_modes(archive_path: Path, into: Path) -> None:
    """Like Gradescope's unzip: files keep the mode bits stored in the zip."""
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            target = into / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            os.chmod(target, (info.external_attr >> 16) & 0o777)


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zip") / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "build", "--out", str(out)],
                          cwd=tmp_path_factory.getbasetemp(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "autograder.zip" in done.stdout
    return out


@pytest.fixture
def container(built_zip):
    """A fresh /autograder layout (source = the unzipped zip). Made outside /tmp when possible:
    the sandbox gives children a private /tmp, which would hide a /tmp layout for another reason
    than the one under test."""
    base = "/srv" if os.access("/srv", os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="autograder-test-", dir=base))
    os.chmod(root, 0o755)
    unzip_keeping_modes(built_zip, root / "source")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run_autograder(root: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable, **env}
    done = subprocess.run([str(root / "source" / "run_autograder")], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)
    results_file = root / "results" / "results.json"
    return done, json.loads(results_file.read_text()) if results_file.exists() else None


# ----------------------------------------------------------------------------------------- the zip


def test_zip_has_the_scripts_at_its_root_executable_and_the_kit_without_tests_or_venv(built_zip):
    with zipfile.ZipFile(built_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[script].external_attr >> 16) == 0o755, script
    names = set(infos)
    assert {"grading.toml", "pyproject.toml", "autograder/pipeline.py", "solution/layers.py",
            "autograder/platforms/gradescope_files/run_autograder"} <= names
    assert not [n for n in names if n.startswith(("tests/", ".venv/", ".git/")) or "__pycache__" in n
                or n.endswith(".pyc")]


def test_setup_script_pins_cpu_torch_from_the_cpu_index_and_is_valid_bash(built_zip, tmp_path):
    with zipfile.ZipFile(built_zip) as archive:
        setup = archive.read("setup.sh").decode()
    from importlib.metadata import version

    torch_version = version("torch").split("+")[0]
    assert f'TORCH_VERSION="{torch_version}"' in setup and "@@" not in setup
    assert '"torch==${TORCH_VERSION}+cpu"' in setup and "download.pytorch.org/whl/cpu" in setup
    assert "pip\" install -q -e \"$SOURCE\"" in setup and "useradd" in setup
    script = tmp_path / "setup.sh"
    script.write_text(setup)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.slow  # pip builds the unzipped kit
def test_unzipped_kit_builds_as_a_package_offline_with_its_gradescope_files(built_zip, tmp_path):
    unzip_keeping_modes(built_zip, tmp_path / "source")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "wheel"), str(tmp_path / "source")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"autograder/platforms/gradescope_files/setup.sh", "autograder/platforms/gradescope_files/run_autograder",
            "solution/layers.py"} <= names


def test_build_refuses_an_unknown_visibility_with_one_line_and_exit_2(tmp_path):
    config = tmp_path / "grading.toml"
    config.write_text((KIT_ROOT / "grading.toml").read_text().replace(
        'hidden_check_visibility = "after_due_date"', 'hidden_check_visibility = "after_deadline"'))
    done = subprocess.run([sys.executable, "-m", "autograder", "--config", str(config), "gradescope", "build",
                           "--out", str(tmp_path / "a.zip")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "after_deadline" in done.stderr
    assert not (tmp_path / "a.zip").exists()


def test_build_with_config_puts_that_config_in_the_zip_beside_the_kits(tmp_path):
    config = tmp_path / "course.toml"
    config.write_text((KIT_ROOT / "grading.toml").read_text().replace(
        'hidden_check_visibility = "after_due_date"', 'hidden_check_visibility = "visible"'))
    from autograder.platforms.gradescope_build import build_zip

    built = build_zip(tmp_path / "a.zip", config_path=config, torch_version="2.99.0")
    with zipfile.ZipFile(built.path) as archive:
        assert archive.read("course.toml").decode() == config.read_text()
        assert archive.read("grading.toml") == (KIT_ROOT / "grading.toml").read_bytes()
        # that course's own secret (drawn now), beside course.toml, closed to every other uid once unzipped
        assert archive.read("course.secret") == (tmp_path / "course.secret").read_bytes()
        assert stat.S_IMODE(archive.getinfo("course.secret").external_attr >> 16) == 0o600
        assert 'TORCH_VERSION="2.99.0"' in archive.read("setup.sh").decode()


# ------------------------------------------------------------------------------- run_autograder


def test_full_marks_submission_gets_a_valid_results_json_with_the_student_name(container):
    (container / "submission" / "nn_from_scratch.py").write_text(SOLUTION)
    (container / "submission_metadata.json").write_text(json.dumps(
        {"id": 1, "users": [{"email": "ada@example.com", "id": 7, "name": "Ada Lovelace"}]}))
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    validate_results(results)
    config = load_config()
    assert results["score"] == sum(config.points.values())
    assert all(t["status"] == "passed" for t in results["tests"])
    assert {t["name"] for t in results["tests"]} == set(config.points)
    # the hidden inputs came from the kit's own course secret, as in a local regrade
    secret = read_secret(KIT_ROOT / "grading.secret")
    assert results["extra_data"]["course_secret_id"] == fingerprint(secret)
    assert results["extra_data"]["student"] == "Ada Lovelace"
    from autograder.platforms.gradescope import stricter

    # the top level shows the score, which gives the hidden checks away: the stricter of the two
    assert results["visibility"] == stricter(config.gradescope.visibility, config.gradescope.hidden_check_visibility)
    assert results["stdout_visibility"] == config.gradescope.stdout_visibility
    assert "Score:" in done.stdout  # the instructor's view of the run


@pytest.mark.slow  # run_autograder in a fresh interpreter
def test_instructor_notices_go_to_extra_data_never_to_what_students_see(container):
    """#23 item 5: a full-marks submission that walks the interpreter's object graph: the note
    asking the instructor to review it is in extra_data, not in the output or a check's output."""
    (container / "submission" / "nn_from_scratch.py").write_text(
        SOLUTION + "\nimport gc\n_everything = len(gc.get_objects())\n")
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    validate_results(results)
    assert results["score"] == sum(load_config().points.values())
    told = results["extra_data"]["instructor_notices"]
    assert any("gc.get_objects" in notice and "please review it" in notice for notice in told), told
    shown = (results["output"] + "".join(t["output"] for t in results["tests"])
             + json.dumps(results["extra_data"]["notices"]))
    assert "get_objects" not in shown and "review" not in shown, shown


BUGGY_RELU = """

class ReLU(ReLU):  # the classic slip: gradient 1 instead of 0 at h == 0
    def forward(self, h):
        self.h_seen = h
        return super().forward(h)

    def backward(self, dr):
        return torch.where(self.h_seen >= 0, dr, torch.zeros_like(dr))
"""


@pytest.mark.slow  # run_autograder in a fresh interpreter
def test_buggy_submission_loses_exactly_the_failing_checks(container):
    buggy = SOLUTION + BUGGY_RELU
    (container / "submission" / "nn_from_scratch.py").write_text(buggy)
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    validate_results(results)
    failed = {t["name"] for t in results["tests"] if t["status"] == "failed"}
    assert "relu.backward.zero_input" in failed
    assert all(name.startswith("relu.") for name in failed)
    assert 0 < results["score"] < sum(t["max_score"] for t in results["tests"])


@pytest.mark.parametrize("files", [{}, {"layers.txt": SOLUTION, "notes.pdf": "%PDF-1.4"}],
                         ids=["nothing uploaded", "wrongly named files"])
@pytest.mark.slow  # run_autograder in a fresh interpreter
def test_missing_or_wrongly_named_submission_is_a_zero_with_a_clear_message(container, files):
    for name, text in files.items():
        (container / "submission" / name).write_text(text)
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    validate_results(results)
    assert results["score"] == 0
    assert all(t["score"] == 0 and t["status"] == "failed" for t in results["tests"])
    first_lines = results["output"].splitlines()[:3]
    assert first_lines[0].startswith("Your submission could not be graded")
    assert first_lines[1] == ("We received: no files." if not files else "We received: layers.txt, notes.pdf.")
    assert "nn_from_scratch.ipynb" in first_lines[2]


def shown_to_student(results: dict, moment: str) -> dict:
    """What a student sees of results.json at `moment` ("before_due", "after_due", "published"),
    by Gradescope's rules: a test's own visibility overrides the top level's; the top-level output
    and score follow the top level."""
    open_at = {"visible": {"before_due", "after_due", "published"}, "after_due_date": {"after_due", "published"},
               "after_published": {"published"}, "hidden": set()}
    top = results.get("visibility", "visible")
    shown = {"tests": [t["name"] for t in results["tests"] if moment in open_at[t.get("visibility", top)]]}
    if moment in open_at[top]:
        shown.update(output=results["output"], score=results["score"])
    return shown


def set_visibility(toml: Path, **values: str) -> None:
    import re

    text = toml.read_text()
    for key, value in values.items():
        text = re.sub(rf'(?m)^{key} = "[a-z_]+"', f'{key} = "{value}"', text)
    toml.write_text(text)


def visibility_config(tmp_path: Path, **values: str):
    toml = tmp_path / "grading.toml"
    toml.write_text((KIT_ROOT / "grading.toml").read_text())
    set_visibility(toml, **values)
    return load_config(toml)


def assert_shown_no_earlier_than_both_settings(results: dict, visibility: str, checks: str) -> None:
    """`visibility` is when the whole result shows; `hidden_check_visibility` is when the checks
    show, and with them anything that gives them away (the score, the per-part breakdown)."""
    first = {"visible": 0, "after_due_date": 1, "after_published": 2, "hidden": 3}
    opens = max(first[visibility], first[checks])
    for number, moment in enumerate(["before_due", "after_due", "published"]):
        seen = shown_to_student(results, moment)
        if number >= opens:
            assert len(seen["tests"]) == len(results["tests"]) and seen["score"] == results["score"], moment
            assert "relu" in seen["output"]
        else:
            assert seen == {"tests": []}, moment  # no check, no score, no breakdown


@pytest.mark.parametrize("visibility, checks", [
    ("visible", "visible"), ("visible", "after_due_date"), ("after_due_date", "visible"),
    ("after_published", "after_due_date"), ("hidden", "visible"), ("visible", "hidden"),
    ("after_due_date", "after_published")])
def test_visibility_does_what_the_readme_says_under_gradescopes_rules(grader, tmp_path, visibility, checks):
    from autograder.platforms.gradescope import gradescope_results

    (tmp_path / "submission").mkdir()
    submitted = tmp_path / "submission" / "nn_from_scratch.py"
    submitted.write_text(SOLUTION + BUGGY_RELU)
    config = visibility_config(tmp_path, visibility=visibility, hidden_check_visibility=checks)
    results = gradescope_results(grader.grade(submitted), config, submitted.parent)
    validate_results(results)
    assert_shown_no_earlier_than_both_settings(results, visibility, checks)


@pytest.mark.slow  # run_autograder in a fresh interpreter
def test_run_autograder_applies_the_visibility_in_the_zips_grading_toml(container):
    set_visibility(container / "source" / "grading.toml", hidden_check_visibility="after_due_date",
                   stdout_visibility="visible")
    (container / "submission" / "nn_from_scratch.py").write_text(SOLUTION + BUGGY_RELU)
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    validate_results(results)
    assert results["stdout_visibility"] == "visible"
    assert_shown_no_earlier_than_both_settings(results, "visible", "after_due_date")


@pytest.mark.slow  # run_autograder in a fresh interpreter
@pytest.mark.parametrize("files", [{}, {"notes.txt": "hello"}], ids=["nothing uploaded", "wrong file"])
def test_a_student_who_uploaded_the_wrong_file_sees_why_even_while_checks_are_hidden(container, files):
    set_visibility(container / "source" / "grading.toml", hidden_check_visibility="after_due_date")
    for name, text in files.items():
        (container / "submission" / name).write_text(text)
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    seen = shown_to_student(results, "before_due")
    assert seen["score"] == 0 and seen["output"].startswith("Your submission could not be graded")
    assert seen["tests"] == []


@pytest.mark.parametrize("breakage", ["broken grading.toml", "no interpreter", "grader crashes"])
def test_a_grader_failure_still_writes_a_results_json_and_exits_non_zero(container, breakage):
    (container / "submission" / "nn_from_scratch.py").write_text(SOLUTION)
    (container / "results" / "results.json").write_text('{"score": 58}')  # stale: must not survive
    env = {}
    if breakage == "broken grading.toml":
        (container / "source" / "grading.toml").write_text("[limits\nwall_seconds = ")
    elif breakage == "no interpreter":
        env["AUTOGRADER_PYTHON"] = str(container / "no-such-python")
    else:  # the kit itself is broken in the container: an import fails mid-run
        (container / "source" / "autograder" / "pipeline.py").write_text("raise RuntimeError('kit broken')\n")
    done, results = run_autograder(container, **env)
    assert done.returncode != 0
    assert "Traceback" not in done.stdout
    assert results is not None, "Gradescope must get a results.json that says what happened"
    assert set(results) <= SPEC_TOP and results["score"] == 0 and results["tests"] == []
    assert results["visibility"] == "visible"
    assert "not a problem with your work" in results["output"] and "instructor" in results["output"]
    error = results["extra_data"]["error"]
    assert error and "\n" not in error
    expected = {"broken grading.toml": "grading.toml", "no interpreter": "no-such-python",
                "grader crashes": "kit broken"}[breakage]
    assert expected in error
    assert "not a grade" in results["extra_data"]["for_instructor"]


def _processes_of_run(root: Path) -> list[str]:
    """Processes still alive that were started by the run for `root` (they inherit its environment)."""
    marker = f"AUTOGRADER_ROOT={root}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker in environ.read_bytes().split(b"\0"):
                found.append(environ.parent.name)
        except OSError:
            continue
    return found


HOSTILE = '''
import os, time
TARGETS = [{results!r}, os.environ.get("AUTOGRADER_ROOT", "/autograder") + "/results/results.json"]
FAKE = '{{"score": 1000, "tests": []}}'

def plant(tag):
    for target in TARGETS:
        try:
            with open(target, "w") as stream:
                stream.write(FAKE)
            print("planted", tag, target)
        except OSError as refused:
            print("refused", tag, target, refused)

plant("at import")
if os.fork() == 0:  # a writer that tries to outlive the grader
    while True:
        plant("in the background")
        time.sleep(0.05)

'''


PLANT_IN_FORWARD = """

class Linear(Linear):  # and again while the hidden checks run
    def forward(self, x):
        plant("in forward")
        return super().forward(x)
"""


@pytest.mark.slow  # run_autograder in a fresh interpreter
@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox hides folders and drops privileges only as root")
def test_hostile_submission_cannot_leave_its_own_results_json(container):
    results_dir = container / "results"
    os.chmod(results_dir, 0o777)  # as if anyone could write there: run_autograder closes it to root
    (results_dir / "results.json").write_text('{"score": 999}')  # left over, e.g. from a planted file
    hostile = HOSTILE.format(results=str(results_dir / "results.json")) + SOLUTION + PLANT_IN_FORWARD
    (container / "submission" / "nn_from_scratch.py").write_text(hostile)
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    validate_results(results)
    assert results["score"] == sum(load_config().points.values())
    printed = results["extra_data"]["student_output"]
    assert "refused at import" in printed and "refused in forward" in printed and "planted" not in printed
    assert not _processes_of_run(container), "a sandboxed process outlived the grader"
    assert json.loads((results_dir / "results.json").read_text()) == results
    assert [p.name for p in results_dir.iterdir()] == ["results.json"]  # no temporary files left
    assert stat.S_IMODE(results_dir.stat().st_mode) == 0o700


@pytest.mark.slow  # `autograder gradescope selfcheck`, twice
def test_selfcheck_passes_here_and_explains_a_container_that_refuses_namespaces():
    done = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "selfcheck"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "self-check passed" in done.stdout
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        return
    # Docker's defaults: root without CAP_SYS_ADMIN. Either the sandbox copes, or setup.sh's
    # self-check fails the build with a reason an instructor can act on; never silent zeros.
    limited = subprocess.run([setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable,
                              "-m", "autograder", "gradescope", "selfcheck"], capture_output=True, text=True,
                             timeout=300)
    if limited.returncode != 0:
        assert limited.returncode == 2 and limited.stderr.count("\n") == 1
        assert "refuses unshare" in limited.stderr
