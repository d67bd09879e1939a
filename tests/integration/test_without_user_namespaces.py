"""An ordinary user whose user namespaces are refused (#15): bubblewrap where it works, else the
ordinary-user mode, and one line on stderr saying which, at the start of `grade`, `batch` and
`nbgrader autograde`.

The refusal is forced as a container's seccomp profile does it: a filter refusing new user
namespaces to the grader's whole process tree. For the bubblewrap mode root installs it (without
no_new_privs, as a container runtime does) before dropping to uid 65534, and the kit is pointed
(AUTOGRADER_BWRAP) at a set-uid copy of the system's bwrap: in set-uid mode bwrap makes its
namespaces as root, with no user namespace, as Ubuntu's AppArmor profile lets a plain bwrap do.
The red-team harness of test_redteam.py does the rest.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT
from autograder.sandbox import landlock
from redteam.harness import (HONEST, SECRET_NAME, attack, can_run_as_nobody, hostile, run_as_nobody, sandbox_processes,
                             wait_for_no_sandbox_processes)
from test_redteam import (REFUSE_USER_NAMESPACES, WARNING, arena, as_nobody, grader, honest_reports,  # noqa: F401
                          listeners, nobody_arena, refusing_user_namespaces)

NOTICE = "autograder: notice: user namespaces are refused here"
# the user mode's line: a notice where Landlock confines student code, else the warning
USER_MODE_LINE = "autograder: notice: user namespaces refused here" if landlock.available() else WARNING
NOBODY_ONLY = pytest.mark.skipif(not can_run_as_nobody(), reason="needs root, unshare and setpriv")

SIGNALS_AND_LIMITS = """
import os, resource, signal, sys, threading, time
from autograder.sandbox import seccomp
seccomp.prepare()
sibling = os.fork()
if sibling == 0:
    time.sleep(60)
    os._exit(0)
child = os.fork()
if child == 0:
    import ctypes
    ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as every child has
    assert seccomp.install() and seccomp.install_shared_sandbox_rules()  # both, as every child of bubblewrap
    tries = {"kill sibling": lambda: os.kill(sibling, 0), "kill parent": lambda: os.kill(os.getppid(), 0),
             "kill everyone": lambda: os.kill(-1, 0), "kill itself": lambda: os.kill(os.getpid(), 0),
             "kill its group": lambda: os.kill(0, 0), "raise": lambda: signal.pthread_kill(threading.get_ident(), 0),
             "limit parent": lambda: resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE),
             "limit itself": lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),
             "renice parent": lambda: os.setpriority(os.PRIO_PROCESS, os.getppid(), 5),
             "renice user": lambda: os.setpriority(os.PRIO_USER, 0, 5),
             "renice itself": lambda: os.setpriority(os.PRIO_PROCESS, 0, 1),
             "pin parent": lambda: os.sched_setaffinity(os.getppid(), {0}),
             "pin itself": lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)),
             "pidfd of parent": lambda: os.pidfd_open(os.getppid()),
             "chmod": lambda: os.chmod(sys.argv[1], 0o777),
             "System V segment": lambda: print("System V segment:",
                                               ctypes.CDLL(None, use_errno=True).shmget(0, 4096, 0o1600),
                                               os.strerror(ctypes.get_errno())) or sys.exit()}
    for name, attempt in tries.items():
        try:
            attempt()
            print(f"{name}: ok")
        except OSError as error:
            print(f"{name}: {error.strerror}")
        except SystemExit:
            pass
    sys.stdout.flush()
    os._exit(0)
os.waitpid(child, 0)
os.kill(sibling, 9)
"""


def test_the_shared_sandbox_filter_keeps_each_child_to_itself(tmp_path):
    """bubblewrap's children share one PID namespace and uid: the second filter lets each signal,
    limit and renice only itself, and refuses chmod (/tmp stays read-only), pidfds of others and
    System V IPC."""
    done = subprocess.run([sys.executable, "-c", SIGNALS_AND_LIMITS, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, cwd=KIT_ROOT)
    assert done.returncode == 0, done.stderr
    said = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    refused = "Operation not permitted"
    assert said == {
        "kill sibling": refused, "kill parent": refused, "kill everyone": refused, "kill itself": "ok",
        "kill its group": "ok", "raise": "ok", "limit parent": refused, "limit itself": "ok",
        "renice parent": refused, "renice user": refused, "renice itself": "ok", "pin parent": refused,
        "pin itself": "ok", "pidfd of parent": refused, "chmod": refused, "System V segment": f"-1 {refused}",
    }


@pytest.fixture(scope="module")
def setuid_bwrap():
    """A set-uid copy of the system's bwrap that uid 65534 can run under the filter, or a skip."""
    installed = shutil.which("bwrap")
    if not installed:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")
    folder = Path(tempfile.mkdtemp(prefix="autograder-bwrap-"))
    try:
        folder.chmod(0o755)
        copy = folder / "bwrap"
        shutil.copy(installed, copy)
        copy.chmod(0o4755)
        probe = run_as_nobody([sys.executable, "-c",
                               "from autograder.sandbox import bubblewrap; print(bubblewrap.refused())"],
                              cwd=KIT_ROOT, env={"PYTHONPATH": str(KIT_ROOT), "AUTOGRADER_BWRAP": str(copy)},
                              as_root_first=refusing_user_namespaces(False), timeout=60)
        if probe.returncode != 0 or probe.stdout.strip():
            pytest.skip(f"a set-uid bwrap does not work here (a nosuid /tmp?): "
                        f"{probe.stdout.strip()} {probe.stderr[-300:]}")
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stderr_says_once(stderr: str, line: str) -> None:
    """`line` opens stderr and is there once; no traceback."""
    assert stderr.startswith(line), stderr[:500]
    assert stderr.count(line) == 1 and "Traceback" not in stderr, stderr[-2000:]


@NOBODY_ONLY
def test_doctor_names_bubblewrap_and_why(nobody_arena, setuid_bwrap):
    done = as_nobody(nobody_arena, ["doctor"], nobody_arena[2], bubblewrap=setuid_bwrap)
    assert done.returncode == 0, done.stderr
    assert "isolation: bubblewrap\n" in done.stdout
    assert "as an ordinary user: bubblewrap — " in done.stdout
    assert "because: unshare(CLONE_NEWUSER): Operation not permitted" in done.stdout
    assert f"bwrap: {setuid_bwrap}\n" in done.stdout


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_grade_gives_the_same_full_marks_as_root(nobody_arena, arena, setuid_bwrap, honest_reports):
    root, config_path, targets = nobody_arena
    path = root / "bubblewrap-reference.py"
    path.write_text(HONEST["reference"])
    path.chmod(0o644)
    done = as_nobody(nobody_arena, ["grade", str(path), "--json"], targets, bubblewrap=setuid_bwrap)
    assert done.returncode == 0, done.stderr
    stderr_says_once(done.stderr, NOTICE)
    assert "unshare(CLONE_NEWUSER): Operation not permitted" in done.stderr.splitlines()[0]
    results = json.loads(done.stdout)
    assert results["extra_data"]["isolation"] == "bubblewrap"
    assert results["extra_data"]["bounds"]["seccomp"] == "system-call filter"
    as_root = {check.name: check.score for check in honest_reports["reference"].checks}
    assert {test["name"]: test["score"] for test in results["tests"]} == as_root
    assert results["score"] == results["max_score"] == honest_reports["reference"].max_score > 0


# The red-team attacks in a batch graded in bubblewrap: test_every_mode.py.


GRADE_IN_ONE_GRADER = """
import json, os, sys, time
from autograder.course.config import load_config
from autograder.pipeline import Grader
from autograder.sandbox import modes
from redteam.harness import wait_for_no_sandbox_processes
config, hidden, marker, *paths = sys.argv[1:]
if os.environ.get("TEST_BUBBLEWRAP_IN_A_USER_NAMESPACE"):  # Ubuntu's way, where user namespaces are allowed here
    modes.mode = lambda: modes.Mode("bubblewrap", "chosen by the test")
with Grader(load_config(config), hide=(hidden,)) as grader:
    for path in paths:
        report = grader.grade(path)
        left = wait_for_no_sandbox_processes(marker, uids=(), patience=10)  # while the template still runs
        time.sleep(0.5)  # the template reaps the child and wipes its folder (the next child may get it)
        print(json.dumps({"isolation": report.isolation, "score": report.score, "max": report.max_score,
                          "output": report.student_output, "left": left}))
"""


def grade_in_one_bubblewrap_grader(nobody_arena, bwrap, sources: list[str], in_a_user_namespace=False) -> list[dict]:
    """Grade `sources` one after the other with one Grader (one template) as uid 65534 in bubblewrap:
    a set-uid `bwrap` with user namespaces refused, or (in_a_user_namespace) a plain one where
    they are allowed, which makes one for its sandbox as Ubuntu's bwrap does."""
    root, config_path, targets = nobody_arena
    paths = []
    for number, source in enumerate(sources):
        paths.append(root / f"one-grader-{number}.py")
        paths[-1].write_text(source)
        paths[-1].chmod(0o644)
    in_user_namespace = {"TEST_BUBBLEWRAP_IN_A_USER_NAMESPACE": "1"} if in_a_user_namespace else {}
    done = run_as_nobody([sys.executable, "-c", GRADE_IN_ONE_GRADER, str(config_path), str(root), targets["marker"],
                          *map(str, paths)],
                         cwd=KIT_ROOT, env={"PYTHONPATH": f"{KIT_ROOT}{os.pathsep}{KIT_ROOT / 'tests'}",
                                            "AUTOGRADER_BWRAP": str(bwrap), **in_user_namespace},
                         as_root_first=() if in_a_user_namespace else refusing_user_namespaces(False))
    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"isolation"')]
    assert [report["isolation"] for report in reports] == ["bubblewrap"] * len(sources)
    return reports


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_a_setsid_daemon_dies_with_its_child_not_with_the_grader(nobody_arena, setuid_bwrap):
    """Children share the template's PID namespace, which lives as long as the grader: the
    template adopts what a child leaves running and kills it when the child ends."""
    targets = nobody_arena[2]
    (report,) = grade_in_one_bubblewrap_grader(nobody_arena, setuid_bwrap, [
        hostile("setsid_survivor", "reference", {**targets, "delay": 60.0})])
    assert report["score"] == report["max"] > 0
    assert report["left"] == []
    assert wait_for_no_sandbox_processes(targets["marker"], uids=()) == []


FILLS_ITS_FOLDER = """
import os
written = 0
try:
    for number in range(400):
        with open(f"fill-{number}", "wb") as chunk:
            chunk.write(bytes(1 << 20))
        written += 1
except OSError as error:
    print(f"filled {written} MB, then {error.strerror}")
"""


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_in_its_own_user_namespace_bounds_tmp(nobody_arena, arena):
    """Ubuntu 24.04's way (a plain bwrap that may make a user namespace for its sandbox, where the
    kit may not), tried where uid 65534 has user namespaces: the same sandbox, and /tmp, where the
    children work, holds at most tmpfs_mb per child slot (8 slots here)."""
    from test_redteam import nobody_has_user_namespaces

    if not nobody_has_user_namespaces() or not shutil.which("bwrap"):
        pytest.skip("needs bwrap and user namespaces for uid 65534")
    reference, filler = grade_in_one_bubblewrap_grader(nobody_arena, shutil.which("bwrap"), [
        HONEST["reference"], HONEST["reference"] + FILLS_ITS_FOLDER], in_a_user_namespace=True)
    assert reference["score"] == reference["max"] == filler["score"] > 0
    filled = re.search(r"filled (\d+) MB, then No space left on device", filler["output"])
    assert filled and 0 < int(filled.group(1)) <= 8 * arena.config.limits.tmpfs_mb, filler["output"]


SLOWLY_FILLS_ITS_FOLDER = """
import os, time
for number in range(1, 401):
    with open(f"fill-{number}", "wb") as chunk:
        chunk.write(bytes(1 << 20))
    if number % 16 == 0:
        print(f"wrote {number} MB", flush=True)
    time.sleep(0.01)
print("wrote everything: no limit")
"""
SLOWLY_FLOODS_ITS_FOLDER = """
import os, time
for number in range(1, 200_001):
    os.close(os.open(f"e{number}", os.O_CREAT | os.O_WRONLY, 0o600))
    if number % 4096 == 0:
        print(f"made {number} files", flush=True)
        time.sleep(0.02)
print("made everything: no limit")
"""


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_a_child_filling_tmp_is_killed(nobody_arena, arena, setuid_bwrap):
    """A set-uid bwrap cannot bound /tmp's size (and no bwrap its inodes): past every slot's share,
    the template kills the child holding more than its own, wipes its folder, and grades on."""
    limits = arena.config.limits
    filler, flooder, honest = grade_in_one_bubblewrap_grader(nobody_arena, setuid_bwrap, [
        HONEST["reference"] + SLOWLY_FILLS_ITS_FOLDER, HONEST["reference"] + SLOWLY_FLOODS_ITS_FOLDER,
        HONEST["reference"]])
    wrote = [int(mb) for mb in re.findall(r"^wrote (\d+) MB", filler["output"], re.MULTILINE)]
    made = [int(files) for files in re.findall(r"^made (\d+) files", flooder["output"], re.MULTILINE)]
    assert wrote and max(wrote) <= 8 * limits.tmpfs_mb + 64 and "no limit" not in filler["output"], filler["output"]
    assert made and max(made) <= 8 * limits.tmpfs_inodes + 4 * 4096 and "no limit" not in flooder["output"]
    assert filler["score"] == flooder["score"] == 0  # killed while its cells ran
    assert honest["score"] == honest["max"] > 0


def grader_processes(path: Path) -> list[int]:
    """Pids of `autograder ... grade PATH` processes."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if str(path) in words and "grade" in words and "autograder" in words:
            found.append(int(pid))
    return found


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_a_grader_killed_from_outside_leaves_no_process(nobody_arena, setuid_bwrap):
    """kill -9 of the grader while a child sleeps and its setsid daemon waits: the template sees
    its control socket close and exits, and the sandbox's PID namespace takes everything with it."""
    root, config_path, targets = nobody_arena
    path = root / "bubblewrap-grader-killed.py"
    path.write_text(hostile("setsid_survivor", "reference", {**targets, "delay": 3600.0}) + "\n"
                    + attack("grader_killed"))
    path.chmod(0o644)
    with ThreadPoolExecutor(1) as pool:
        grading = pool.submit(as_nobody, nobody_arena, ["grade", str(path)], targets, bubblewrap=setuid_bwrap)
        deadline = time.monotonic() + 120
        while len(sandbox_processes(targets["marker"], uids=())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert time.monotonic() < deadline, "the daemon and the sleeping child never ran at once"
        for pid in grader_processes(path):
            os.kill(pid, signal.SIGKILL)
        done = grading.result(timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert wait_for_no_sandbox_processes(targets["marker"], uids=()) == []


WRITES_ITS_FOLDER = """
import os
print("working in", os.getcwd())
try:
    print("beside", os.listdir("/tmp"))
except OSError as error:
    print("listing /tmp ->", error.strerror)
with open("left-behind.txt", "w") as note:
    note.write("for the next student")
"""
LOOKS_AROUND = """
import os
print("working in", os.getcwd())
print("found:", [os.path.join(folder, name) for folder, _, names in os.walk(".") for name in names])
"""


@NOBODY_ONLY
@pytest.mark.slow
def test_bubblewrap_each_child_works_in_a_folder_of_its_own_wiped_when_it_ends(nobody_arena, setuid_bwrap):
    """One child after another in the same folder (the template reuses it): the second finds
    nothing of the first. /tmp cannot be listed, so no child learns another's folder."""
    first, second = grade_in_one_bubblewrap_grader(nobody_arena, setuid_bwrap, [
        HONEST["reference"] + WRITES_ITS_FOLDER, HONEST["reference"] + LOOKS_AROUND])
    folder = re.search(r"working in (/tmp/slot-\d+/child-[0-9a-f]{16})\n", first["output"])
    assert folder and f"working in {folder.group(1)}\n" in second["output"], (first["output"], second["output"])
    assert "listing /tmp -> Permission denied" in first["output"]
    assert "found: []" in second["output"], second["output"]
    assert first["score"] == second["score"] == first["max"]


# --- the warning of `autograder nbgrader autograde` ------------------------------------------------

@pytest.fixture(scope="module")
def nobody_course(nobody_arena):
    """A released nbgrader course with one correct submission, which uid 65534 can grade."""
    pytest.importorskip("nbgrader")
    from test_routes import ASSIGNMENT, NBGRADER_CONFIG, NOTEBOOK, SOURCE_NOTEBOOK, build_corpus, run

    course = nobody_arena[0] / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"], course)
    correct = build_corpus(json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text()))["correct"]
    submitted = course / "submitted" / "alice" / ASSIGNMENT
    submitted.mkdir(parents=True)
    (submitted / NOTEBOOK).write_text(json.dumps(correct, indent=1))
    for folder, _, files in os.walk(course):
        os.chmod(folder, 0o777)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o666)
    return course


@NOBODY_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["user", "bubblewrap"])
def test_nbgrader_autograde_says_once_how_student_code_runs_and_grades_right(mode, nobody_arena, nobody_course,
                                                                           request):
    from test_routes import ASSIGNMENT, part_points_of_gradebook

    root, config_path, targets = nobody_arena
    bwrap = request.getfixturevalue("setuid_bwrap") if mode == "bubblewrap" else None
    env = {"PYTHONPATH": str(KIT_ROOT), SECRET_NAME: targets["marker"] + "-secret",
           "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",  # nbgrader runs alembic
           **({"AUTOGRADER_BWRAP": str(bwrap)} if bwrap else {})}
    done = run_as_nobody([*([] if bwrap else REFUSE_USER_NAMESPACES), sys.executable, "-m", "autograder",
                          "--config", str(config_path), "nbgrader", "autograde", ASSIGNMENT,
                          "--course-dir", str(nobody_course)], cwd=nobody_course, env=env,
                         as_root_first=refusing_user_namespaces(False) if bwrap else ())
    assert done.returncode == 0, done.stderr[-3000:]
    stderr_says_once(done.stderr, NOTICE if bwrap else USER_MODE_LINE)
    points = part_points_of_gradebook(nobody_course, ["alice"])["alice"]
    assert points and all(score == maximum > 0 for score, maximum in points.values()), points
    assert sum(maximum for _, maximum in points.values()) == 58
