"""The `autograder grade` command as a user meets it: exit codes, one-line errors, --json."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REFERENCE_LAYERS


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # a whole grading in a fresh interpreter
def test_json_is_gradescope_shaped_and_free_of_student_prints(tmp_path):
    path = tmp_path / "ivy.py"
    path.write_text(REFERENCE_LAYERS.read_text() + "\nprint('STUDENT-PRINT')\n")
    done = run("grade", str(path), "--json", "--parts", "relu,nll")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)  # stdout is the JSON object and nothing else
    assert results["score"] == results["max_score"] > 0
    assert {t["name"].split(".")[0] for t in results["tests"]} == {"relu", "nll"}
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output"}
        assert test["status"] == "passed" and len(test["name"].split(".")) == 3
    assert "STUDENT-PRINT" in results["extra_data"]["student_output"]
    from autograder.sandbox.modes import mode

    assert results["extra_data"]["isolation"] == mode().name  # README: how to tell which mode ran
    assert results["extra_data"]["isolation"] in ("namespaces", "user-namespaces", "uid", "user")
    assert set(results["extra_data"]["bounds"]) >= {"seccomp", "sockets", "landlock", "cgroup", "tmpfs_inodes",
                                                    "open_files"}


def test_terminal_report_names_failed_checks(tmp_path):
    path = tmp_path / "jon.py"
    path.write_text(REFERENCE_LAYERS.read_text().replace("self.db = dh.sum(dim=0)",
                                                         "self.db = dh.sum(dim=0, keepdim=True)"))
    done = run("grade", str(path), "--parts", "linear")
    assert done.returncode == 0, done.stderr
    assert "linear.backward.grad_b" in done.stdout and "keepdim" in done.stdout


@pytest.mark.parametrize("name, content, message", [
    ("missing.ipynb", None, "no such file"),
    ("broken.ipynb", b"{ not json", "not a notebook"),
    ("broken.zip", b"PK\x03\x04 definitely not a zip", "not a readable zip"),
    ("notes.txt", b"hello", "unsupported file type"),
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    done = run("grade", str(path))
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_bad_config_is_exit_2(tmp_path):
    config = tmp_path / "grading.toml"
    config.write_text("[limits\n")
    done = run("--config", str(config), "grade", str(REFERENCE_LAYERS))
    assert done.returncode == 2 and "not valid TOML" in done.stderr


def one_line_exit_2(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    return done.stderr


def test_an_unknown_part_is_exit_2_naming_the_valid_ones():
    message = one_line_exit_2(run("grade", str(REFERENCE_LAYERS), "--parts", "nlll"))
    assert "unknown part(s) nlll; valid parts: linear, relu, softmax, nll, train" in message


def test_a_misspelt_key_in_a_course_file_is_exit_2_naming_the_valid_ones(tmp_path):
    course = tmp_path / "course.toml"
    course.write_text("[tolerance]\nfloat64 = { rtol = 1e-6, atl = 1e-8 }\n")
    message = one_line_exit_2(run("--config", str(course), "grade", str(REFERENCE_LAYERS)))
    assert "unknown key(s) atl; valid keys: rtol, atol" in message


@pytest.mark.slow  # a whole grading in a fresh interpreter
def test_config_works_after_the_command_and_a_course_file_names_only_what_it_changes(tmp_path):
    course = tmp_path / "course.toml"
    course.write_text('[gradescope]\nvisibility = "after_due_date"\n')
    done = run("grade", str(REFERENCE_LAYERS), "--json", "--parts", "relu", "--config", str(course))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["visibility"] == "after_due_date" and results["score"] == results["max_score"] > 0


def test_an_empty_class_folder_says_so(tmp_path):
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "notes.txt").write_text("not a submission")
    message = one_line_exit_2(run("batch", str(tmp_path / "class"), "--out", str(tmp_path / "out")))
    assert "no submissions found in" in message


def test_help_reads_like_a_manual_and_every_argument_is_explained():
    from autograder.cli import build_parser

    top = run("--help").stdout
    assert "examples:" in top and "exit status:" in top and "autograder batch submissions/ --out graded" in top
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if action.choices and isinstance(action.choices, dict):
                parsers.extend(action.choices.values())
            elif action.dest != "help":
                assert action.help, f"{parser.prog}: {'/'.join(action.option_strings) or action.dest} has no help"


@pytest.mark.slow  # a grading and doctor, each a fresh interpreter
def test_doctor_names_the_cgroup_bounds_a_child_gets_and_commands_that_run_from_anywhere(tmp_path):
    """doctor's cgroup line is what results' extra_data.bounds.cgroup says (the same [limits]), and
    the commands it suggests name this venv's autograder (sudo does not search the venv's PATH)."""
    path = tmp_path / "ivy.py"
    path.write_text(REFERENCE_LAYERS.read_text())
    done = run("grade", str(path), "--json", "--parts", "relu")
    assert done.returncode == 0, done.stderr
    cgroup = json.loads(done.stdout)["extra_data"]["bounds"]["cgroup"]
    doctor = run("doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert f"memory and task bounds per child (cgroup): {cgroup}" in doctor.stdout
    assert "sudo autograder " not in doctor.stdout and "systemd-run --user --scope -p Delegate=yes autograder" \
        not in doctor.stdout
