"""Landlock (sandbox/landlock.py) on this kernel, and what a child can import and reach.

A process restricted as a child is reads the Python environment (a module nobody loaded yet
imports), its own /proc entries and its work folder; not the kit, another process's /proc entries
or /tmp; it cannot connect over TCP (ABI 4) or signal its parent (ABI 6). Graded submissions see
nothing of the grader's working directory or the kit on sys.path (issue 21 item 2).
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT
from autograder.sandbox import child, isolation, landlock, modes

LANDLOCK = landlock.version() or 0
pytestmark = pytest.mark.skipif(not LANDLOCK, reason=f"no Landlock here: {landlock.why_unavailable()}")


def attempt(action) -> str:
    try:
        action()
        return "done"
    except OSError as failure:
        return failure.strerror or type(failure).__name__


def restricted(look) -> dict:
    """Fork, restrict the fork as a child is restricted (rules from the template's preparation),
    run `look(workdir)` there and return what it found."""
    workdir = tempfile.mkdtemp(prefix="landlock-test-")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            landlock.prepare(isolation.python_environment(), unreadable=child._kit_folders())
            isolation.die_with_parent()  # no_new_privs, which restrict_self needs
            landlock.restrict(workdir)
            os.write(write, json.dumps(look(workdir)).encode())
        except BaseException as failure:
            os.write(write, json.dumps({"error": repr(failure)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as result:
        seen = json.loads(result.read())
    os.waitpid(pid, 0)
    return seen


def test_a_restricted_process_reads_the_environment_and_its_folder_only():
    parent = os.getpid()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        seen = restricted(lambda work: {
            "import": attempt(lambda: __import__("xml.dom.minidom")),  # loaded by nobody before
            "kit": attempt(lambda: (KIT_ROOT / "grading.toml").read_text()),
            "kit package": attempt(lambda: Path(child.__file__).read_text()),
            "own proc": attempt(lambda: Path("/proc/self/status").read_text()),
            "parent's cmdline": attempt(lambda: Path(f"/proc/{parent}/cmdline").read_bytes()),
            "proc": attempt(lambda: os.listdir("/proc")),
            "work": attempt(lambda: Path(work, "mine.txt").write_text("x")),
            "tmp": attempt(lambda: Path(tempfile.gettempdir(), f"landlock-{os.getpid()}").write_text("x")),
            "tcp": attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
            "signal": attempt(lambda: os.kill(parent, 0)),
        })
    assert "error" not in seen, seen
    assert seen["import"] == seen["own proc"] == seen["work"] == "done", seen
    for closed in ("kit", "kit package", "parent's cmdline", "proc", "tmp"):
        assert seen[closed] == "Permission denied", (closed, seen)
    assert seen["tcp"] == ("Permission denied" if LANDLOCK >= 4 else "done"), seen
    assert seen["signal"] == ("Operation not permitted" if LANDLOCK >= 6 else "done"), seen


def test_bounds_say_what_is_in_force(grader, tmp_path):
    path = tmp_path / "nothing.py"
    path.write_text("x = 1\n")
    bounds = grader.grade(path).bounds
    assert bounds["landlock"] == landlock.describe() and bounds["landlock"].startswith(f"ABI {LANDLOCK}: files")


def test_the_child_sees_nothing_of_the_kit_or_the_graders_folder_on_its_path(grader, tmp_path, reference_source):
    """A submission graded from the kit's checkout found `solution` on sys.path (the grader's
    working directory): 58/58 with a wrong backward. Now its path holds only the environment."""
    probe = reference_source + (
        "\nimport sys, os, importlib\n"
        f"_kit, _environment = {str(KIT_ROOT)!r}, {isolation.python_environment()!r}\n"
        "print('PATH', [p for p in sys.path if p in ('', '.') or (p + os.sep).startswith(_kit + os.sep)\n"
        "               and not any((p + os.sep).startswith(e + os.sep) for e in _environment)])\n"
        "print('CWD', os.getcwd().startswith(_kit))\n"

        "try:\n    importlib.import_module('solution.layers')\n    print('SOLUTION imported')\n"
        "except Exception as e:\n    print('SOLUTION', type(e).__name__)\n")
    path = tmp_path / "probe.py"
    path.write_text(probe)
    cwd = os.getcwd()
    os.chdir(KIT_ROOT)  # as a grader started from the checkout
    try:
        report = grader.grade(path)
    finally:
        os.chdir(cwd)
    assert "PATH []" in report.student_output and "CWD False" in report.student_output, report.student_output
    assert "SOLUTION imported" not in report.student_output and "SOLUTION " in report.student_output
    assert isolation.python_environment() and all(isolation.importable(p) for p in isolation.python_environment())


@pytest.mark.slow  # `autograder grade` as a subprocess
def test_the_child_reads_nothing_of_the_graders_command_line(tmp_path):
    """A template forked from `autograder grade PATH` (or `batch SUBMISSIONS --out DIR`) carries
    the grader's command line, which names the folders: sys.argv, /proc/self/cmdline."""
    import subprocess
    import sys

    folder = tmp_path / "batch-folder-f00d"
    folder.mkdir()
    path = folder / "probe.py"
    path.write_text("import sys\nprint('ARGV', repr(sys.argv + sys.orig_argv), open('/proc/self/cmdline').read())\n")
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(path), "--json"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = json.loads(done.stdout)["extra_data"]["student_output"]
    assert "ARGV" in output and "f00d" not in output, output


def test_the_notice_says_what_is_left_open_without_landlock(monkeypatch):
    monkeypatch.setattr(landlock, "_probe", lambda: (None, "this kernel has no Landlock (Linux 5.13 or newer has it)"))
    warning = modes.Mode("uid", "unshare: Operation not permitted").warning()
    assert "Landlock is missing (this kernel has no Landlock" in warning and "every world-readable file" in warning
    assert landlock.describe() == "none (this kernel has no Landlock (Linux 5.13 or newer has it))"
    assert landlock.left_open().startswith("no file allow-list")


# --- as root in a Docker-like container (tests/docker_like): the `uid` mode --------------------------

DOCKERLIKE = KIT_ROOT / "tests" / "docker_like"  # vendored: a clean clone anywhere has it
FILE_ATTACKS = """
import os
def _try(what, action):
    try:
        action()
        print(what, "done")
    except OSError as e:
        print(what, e.strerror)
_try("kit", lambda: open(KIT + "/grading.toml").read())
_try("solution", lambda: open(KIT + "/solution/layers.py").read())
_try("grader cmdline", lambda: open(f"/proc/{os.getppid()}/cmdline").read())
_try("proc", lambda: os.listdir("/proc"))
_try("results", lambda: open("/tmp/results.json", "w").write("{}"))
"""


def docker_like(tmp_path, profile: str, source: str) -> tuple[dict, str]:
    """`autograder grade --json` as root the way Docker runs a container (no CAP_SYS_ADMIN: the uid
    mode), under Docker's seccomp profile `profile`."""
    import subprocess
    import sys

    path = tmp_path / "submission.py"
    path.write_text(source)
    tmp_path.chmod(0o755)
    done = subprocess.run([sys.executable, str(DOCKERLIKE / "dockerlike.py"),
                           "--profile", str(DOCKERLIKE / profile), "--",
                           sys.executable, "-m", "autograder", "grade", str(path), "--json"],
                          capture_output=True, text=True, timeout=600, cwd=KIT_ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


needs_docker_like = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.mark.slow
@needs_docker_like
def test_in_a_docker_like_container_honest_code_imports_and_landlock_holds_the_files(tmp_path, reference_source):
    from corpus import VALID, assembled_valid_source

    honest, _ = docker_like(tmp_path, "default-docker-v29.7.2.json",
                            assembled_valid_source(next(p for p in VALID if p.stem == "prints_tensors")))
    assert honest["extra_data"]["isolation"] == "uid" and honest["score"] == honest["max_score"]
    hostile, notice = docker_like(tmp_path, "default-docker-v29.7.2.json",
                                  reference_source + f"\nKIT = {str(KIT_ROOT)!r}\n" + FILE_ATTACKS)
    output = hostile["extra_data"]["student_output"]
    for attack in ("kit", "solution", "grader cmdline", "proc", "results"):
        assert f"{attack} Permission denied" in output, output
    assert not Path("/tmp/results.json").exists() or Path("/tmp/results.json").read_text() != "{}"
    assert hostile["extra_data"]["bounds"]["landlock"] == landlock.describe()
    assert "confined by Landlock" in notice


@pytest.mark.slow
@needs_docker_like
def test_under_an_older_docker_profile_the_notice_says_landlock_is_missing_and_what_that_leaves_open(tmp_path):
    result, notice = docker_like(tmp_path, "default-docker-v20.10.17.json", "x = 1\n")
    assert result["extra_data"]["bounds"]["landlock"].startswith("none (a system-call filter refuses it")
    assert "Landlock is missing" in notice and "every world-readable file" in notice


def test_a_kit_installed_in_site_packages_stays_unreadable(tmp_path, monkeypatch):
    """Landlock only allows: an environment holding the kit's packages (a non-editable install) is
    allowed entry by entry, without them."""
    site = tmp_path / "env" / "lib" / "site-packages"
    for name in ("torch", "numpy", "autograder", "solution"):
        (site / name).mkdir(parents=True)
    (tmp_path / "env" / "bin").mkdir()
    monkeypatch.setattr(landlock, "SYSTEM_READ_ONLY", ())
    monkeypatch.setattr(landlock, "_read_only", ())
    landlock.prepare([str(tmp_path / "env")], unreadable=[str(site / "autograder"), str(site / "solution")])
    allowed = {path for path, _ in landlock._read_only}
    assert allowed == {str(tmp_path / "env" / "bin"), str(site / "torch"), str(site / "numpy")}
    landlock.prepare([str(tmp_path / "env")], unreadable=[str(tmp_path)])  # the env inside the kit's checkout
    assert {path for path, _ in landlock._read_only} == {str(tmp_path / "env")}
