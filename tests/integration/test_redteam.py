"""Hostile submissions (tests/redteam/, one attack per file) against the real sandbox.

For every attack: grading finishes within its limits; no check scores above what the honest part
of the submission earns alone, and only the checks the attack breaks lose points; the report says
what happened in words a student understands; nothing outside the sandbox changes (kit files,
another student's results, a world-writable canary on the host, files named after the attack);
and no process of the submission is left. A few attacks also go through `autograder grade` and
`autograder batch`, where every other student must be graded normally, and through a batch run
as an ordinary user, which shows what still holds without root and what does not (README).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from autograder.course.config import KIT_ROOT, load_config
from autograder.feedback.report import results_json
from autograder.sandbox import landlock
from autograder.sandbox.session import MAX_RESTARTS
from redteam.harness import (HONEST, NOBODY, SANDBOX_UID, SECRET_NAME, TEST_LIMITS, can_run_as_nobody, host_snapshot,
                             hostile, keys_of_sandbox_uids, make_targets, remove_targets, run_as_nobody,
                             sandbox_processes, shared_memory_of, solution_copies, stray_solution_files,
                             wait_for_no_sandbox_processes, write_config)

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the root guarantees need root")


@dataclass(frozen=True)
class Case:
    """attack: file in tests/redteam; honest: the part it is appended to (harness.HONEST);
    lost: check-name prefixes that must score 0 ("" = every check); affected: prefixes that may
    score less than the honest part; every other check must score exactly what the honest part
    does. says: regex the report must contain; absent: regex the captured output must not."""

    attack: str
    honest: str = "reference"
    lost: tuple = ()
    affected: tuple = ()
    says: str = ""
    absent: str = ""


CASES = [
    Case("output_flood", lost=("linear", "train"), says=r"OSError: \[Errno 27\] File too large"),
    Case("exit_os_at_import", lost=("",), says=r"your code ended the grader's process \(exit code 0"),
    Case("exit_sys_at_import", says=r"SystemExit: grading is over"),
    Case("exit_os_in_method", lost=("softmax", "train"), says=r"ended the grader's process \(exit code 3"),
    Case("exit_sys_in_method", lost=("nll.backward", "train"), says=r"raised SystemExit"),
    Case("signals_ignored", lost=("relu.backward", "train"), says=r"time limit exceeded"),
    Case("baseexception_sleep", lost=("nll", "train"), says=r"time limit exceeded"),
    Case("fork_loop", says=r"forked \d+ times before fork failed"),
    Case("memory_hog", lost=("linear", "softmax", "train"), says=r"raised MemoryError"),
    Case("disk_fill", says=r"\.: \d+ MB, then No space left on device",  # /tmp: Landlock refuses it
         absent=r"^(?!\.:|/tmp[:/]|/var/tmp:|/dev/shm:)\S+: [1-9]"),  # only the private tmpfs took data
    Case("setsid_survivor"),
    Case("loopback_connect", says=r"Operation not permitted", absent=r"^connected"),
    Case("read_solution", honest="stubs", says=r"import solution.layers -> ", absent=r"^FOUND"),
    Case("tamper_kit", says=r"append .*grading.toml -> ", absent=r"^TAMPERED"),
    Case("fake_results", honest="stubs", affected=("",), says=r"could not write results.json", absent=r"^wrote /"),
    Case("patch_comparisons", honest="buggy"),
    Case("lying_tensor", lost=("train",), affected=("linear.forward", "softmax.forward"),
         says=r"h was a _Pretender, expected a tensor"),
    Case("recursion_bomb", lost=("relu", "softmax", "nll", "train"), says=r"segmentation fault"),
    Case("slow_correct", lost=("train",), says=r"time limit exceeded"),
    Case("env_secrets", says=r"no secrets in this environment"),
    Case("wire_deep_json", lost=("linear", "train"), says=r"stopped unexpectedly"),
    Case("wire_bad_fields", affected=("",)),
    Case("wire_slow_drip", lost=("linear", "train"), says=r"time limit exceeded"),
    Case("huge_outputs", lost=("linear", "train"), says=r"outputs over 4 MB"),
    Case("sysv_ipc", says=r"segment -1"),
    Case("kill_grader", says=r"ancestor\(s\) seen", absent=r"^killed"),
    Case("do_nothing_layers", honest="stubs", says=r"counts only when forward returns a tensor"),
    Case("terminal_escapes", says=r"_Escapes: escapes in a message"),
    Case("userns_mount", says=r"unshare\(CLONE_NEWUSER\|CLONE_NEWNS\) -> Operation not permitted",
         absent=r"^filled|-> ok|^\w+_map:"),
    Case("keyring_handoff", says=r"add_key -> Operation not permitted", absent=r"^FOUND|-> \d"),
    Case("memfd_hoard", says=r"memfd: 0 MB, then Operation not permitted.*shm: 0 MB, then Operation not permitted"),
    Case("inode_flood", says=r"empty files: \d+, then No space left on device"),
    Case("fd_hoard", says=r"pipes: \d+, then Too many open files"),
    Case("capabilities", says=r"CapBnd:[^0-9a-f]*0{16}", absent=r"^Cap(Eff|Prm|Bnd|Amb):\s+0*[1-9a-f]"),
    Case("forbidden_private_names", lost=("relu", "softmax", "nll", "train"),
         says=r"Softmax.backward uses aten._softmax_backward_data"),
    Case("forbidden_autograd_popped", lost=("linear.backward", "relu.backward", "softmax.backward", "nll.backward",
                                            "train"), says=r"Linear.backward uses autograd"),
    Case("solution_on_the_path", honest="stubs", says=r"import solution.layers -> ", absent=r"^(FOUND|ON THE PATH)"),
    # what it writes in a private /tmp is gone with the child: the host's folders are checked instead
    Case("results_outside_workdir", honest="stubs", says=r"(wrote|could not write) /tmp/"),
    Case("snoop_batch", says=r"\d+ file\(s\) read", absent=r"^READ "),
    Case("process_list", says=r"\d+ other process\(es\) seen", absent=r"^OTHER "),
    # refused at tmpfs_mb (a tmpfs of its own), or killed by the template watching it (bubblewrap)
    Case("hidden_disk_use", affected=("",), says=r"No space left on device|SIGKILL",
         absent=r"^(holding \d{3,} MB|held \d+ MB: no limit)"),
]
BY_NAME = {case.attack: case for case in CASES}


def under(name: str, prefixes) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def check_table(report) -> dict:
    """check name -> (score, message), from a GradeReport or a results.json object."""
    if isinstance(report, dict):
        return {t["name"]: (t["score"], t["output"]) for t in report["tests"]}
    return {c.name: (c.score, c.message) for c in report.checks}


def report_text(report) -> str:
    data = report if isinstance(report, dict) else results_json(report, load_config())
    return json.dumps(data)


def time_budget(config, checks: int) -> float:
    """The longest a grading may take when every check runs into its time limit and every
    restarted child waits for its cells: what 'finishes within its limit' means."""
    longest = max(config.limits.wall_seconds, config.train.wall_seconds)
    return checks * config.limits.wall_seconds + config.train.wall_seconds + MAX_RESTARTS * longest + 30


def assert_contained(case: Case, report, honest, output: str, config) -> None:
    got, fair = check_table(report), check_table(honest)
    assert got.keys() == fair.keys()
    for name, (score, message) in got.items():
        assert score <= fair[name][0], f"{name} scored above the honest part: {message}"
        if under(name, case.lost):
            assert score == 0, f"{name} should have lost its points: {message}"
        elif not under(name, case.affected):
            assert score == fair[name][0], f"{name} changed although the attack does not touch it: {message}"
        assert len(message) < 1500, f"{name}: a message of {len(message)} characters"
    if case.lost:
        assert any(under(name, case.lost) and fair[name][0] > 0 for name in got), "the case loses nothing"
    text = report_text(report)
    assert re.search(case.says, text, re.IGNORECASE), f"the report does not say {case.says!r}"
    if case.absent:
        assert not re.search(case.absent, output, re.MULTILINE), output[:2000]
    assert len(output) <= config.limits.output_kb * 1024 + 100


# --- the arena: short limits, the targets, listeners, one warm grader ----------------------------

@dataclass
class Arena:
    root: Path
    config_path: Path
    config: object
    targets: dict


class Listeners:
    """A TCP listener on 127.0.0.1, an abstract and a path Unix socket: what the loopback attack
    tries to reach. `connections()` lists whatever connected."""

    def __init__(self, targets: dict):
        self.sockets = []
        for family, address in ((socket.AF_INET, ("127.0.0.1", 0)), (socket.AF_UNIX, "\0" + targets["abstract"]),
                                (socket.AF_UNIX, targets["unix_path"])):
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.bind(address)
            listener.listen(8)
            listener.setblocking(False)
            self.sockets.append(listener)
        os.chmod(targets["unix_path"], 0o777)
        targets["port"] = self.sockets[0].getsockname()[1]

    def connections(self) -> list:
        """Every connection waiting now (all of them: one left over would count for the next test)."""
        arrived = []
        for listener in self.sockets:
            while True:
                try:
                    connection, peer = listener.accept()
                except BlockingIOError:
                    break
                arrived.append((listener.getsockname(), peer))
                connection.close()
        return arrived

    def close(self) -> None:
        for listener in self.sockets:
            listener.close()


@pytest.fixture(scope="module")
def arena(tmp_path_factory):
    root = tmp_path_factory.mktemp("redteam")
    config_path = write_config(root / "grading.toml")
    targets = make_targets(root / "targets")
    yield Arena(root, config_path, load_config(config_path), targets)
    remove_targets(targets)


@pytest.fixture(scope="module")
def listeners(arena):
    opened = Listeners(arena.targets)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def grader(arena, listeners):
    """One warm grader for the module, started while the grader's environment holds a secret."""
    from autograder.pipeline import Grader

    os.environ[SECRET_NAME] = arena.targets["marker"] + "-secret"
    try:
        with Grader(arena.config, hide=(arena.root, *solution_copies())) as shared:
            yield shared
    finally:
        os.environ.pop(SECRET_NAME, None)


@pytest.fixture(scope="module")
def honest_reports(arena, grader):
    reports = {}
    for name, source in HONEST.items():
        path = arena.root / "honest" / f"{name}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(source)
        reports[name] = grader.grade(path)
    assert reports["reference"].score == reports["reference"].max_score
    assert reports["stubs"].score == 0
    assert 0 < reports["buggy"].score < reports["buggy"].max_score
    return reports


def grade_attack(arena, grader, case: Case):
    path = arena.root / "attacks" / f"{case.attack}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(hostile(case.attack, case.honest, arena.targets))
    return grader.grade(path)


# --- every attack, graded by one warm grader (as root: the guarantees) ---------------------------

# slow: these run into a time limit, or recurse or allocate up to a limit, for seconds each
SLOW_ATTACKS = {"signals_ignored", "baseexception_sleep", "slow_correct", "wire_slow_drip", "memory_hog",
                "recursion_bomb"}


@ROOT_ONLY
@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.slow) if case.attack in SLOW_ATTACKS else case
                                  for case in CASES], ids=lambda case: case.attack)
def test_attack_is_contained(case, arena, grader, honest_reports, listeners):
    if case.attack == "read_solution" and stray_solution_files():
        pytest.skip(f"a readable copy of the layers lies on this machine: {stray_solution_files()[0]}")
    before = host_snapshot(arena.targets)
    report = grade_attack(arena, grader, case)
    assert not report.error, report.error
    assert report.execution_time <= time_budget(arena.config, len(report.checks))
    assert_contained(case, report, honest_reports[case.honest], report.student_output, arena.config)
    assert wait_for_no_sandbox_processes(arena.targets["marker"]) == []
    assert host_snapshot(arena.targets) == before
    assert listeners.connections() == []


@pytest.mark.slow  # waits out the survivor's delay
@ROOT_ONLY
def test_setsid_survivor_dies_with_the_sandbox(arena, grader):
    """The daemon would write its file `delay` seconds after starting: wait past that."""
    case = BY_NAME["setsid_survivor"]
    before = host_snapshot(arena.targets)
    grade_attack(arena, grader, case)
    time.sleep(arena.targets["delay"] + 1.5)
    assert sandbox_processes(arena.targets["marker"]) == []
    assert host_snapshot(arena.targets) == before
    assert not (Path(arena.targets["canary_dir"]) / (arena.targets["marker"] + "-survivor")).exists()


@ROOT_ONLY
def test_fork_loop_stops_at_the_process_limit(arena, grader):
    report = grade_attack(arena, grader, BY_NAME["fork_loop"])
    forked = int(re.search(r"forked (\d+) times", report.student_output).group(1))
    assert 0 < forked < arena.config.limits.processes


FILTERED_CALLS = """
import ctypes, os, socket, sys
from autograder.sandbox import seccomp
seccomp.prepare()
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as every child has
assert seccomp.install()
libc = ctypes.CDLL(None, use_errno=True)


def unix(call, *args, kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_UNIX, kind) as made:
        getattr(made, call)(*args)


def ipc(call, *args):
    if getattr(libc, call)(*args) < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def talk():
    ours, theirs = socket.socketpair()
    ours.sendall(b"hello")
    assert theirs.recv(5) == b"hello"


tries = {"tcp": lambda: socket.socket(socket.AF_INET).close(),
         "udp6": lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close(),
         "netlink": lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close(),
         "unix": lambda: unix("fileno"), "socketpair": talk,
         "bind abstract": lambda: unix("bind", "\\0autograder-filter"),
         "bind path": lambda: unix("bind", sys.argv[1] + "/s"),
         "connect abstract": lambda: unix("connect", "\\0autograder-filter"),
         "sendto": lambda: unix("sendto", b"x", "\\0autograder-filter", kind=socket.SOCK_DGRAM),
         "sendmsg": lambda: socket.socketpair()[0].sendmsg([b"x"]),
         "shmget": lambda: ipc("shmget", 0, 4096, 0o1600), "msgget": lambda: ipc("msgget", 0, 0o1600),
         "semget": lambda: ipc("semget", 0, 1, 0o1600),
         "mq_open": lambda: ipc("mq_open", b"/autograder-filter", 0o100 | 2, 0o600, None)}
for name, attempt in tries.items():
    try:
        attempt()
        print(f"{name}: ok")
    except OSError as error:
        print(f"{name}: {error.strerror}")
"""


def test_a_child_may_use_unnamed_unix_sockets_and_nothing_else(tmp_path):
    """The filter every child installs, in every mode (also without a network or IPC namespace of
    its own): no socket but AF_UNIX, no address to reach or offer (bind, listen, connect, sendto an
    address, sendmsg), no System V IPC or POSIX message queue; its socketpair still talks."""
    pytest.importorskip("pyseccomp")
    done = subprocess.run([sys.executable, "-c", FILTERED_CALLS, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, cwd=KIT_ROOT)
    assert done.returncode == 0, done.stderr
    said = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    allowed = {"unix", "socketpair"}
    assert said == {name: "ok" if name in allowed else "Operation not permitted" for name in said}, said
    assert len(said) == 14


def test_a_batchs_folders_and_files_are_the_graders_alone(tmp_path):
    """--out, results/ (0700) and every result and grades.csv (0600): a child running under another
    uid that finds the folder (in the grader's command line) reads nothing, also where the folder
    was made earlier with looser modes."""
    from autograder.batch import outputs

    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    for folder in (out, out / "results"):
        folder.chmod(0o755)
    outputs.prepare(out)
    outputs.write_result(out, "alice", {"score": 1.0, "tests": []})
    outputs.write_csv(out, {"alice": {"score": 1.0, "tests": []}}, [])
    modes = {path.relative_to(out).as_posix(): path.stat().st_mode & 0o777 for path in [out, *out.rglob("*")]}
    assert modes == {".": 0o700, "results": 0o700, "results/alice.json": 0o600, "grades.csv": 0o600}


@ROOT_ONLY
def test_shared_memory_does_not_outlive_the_child(arena, grader):
    report = grade_attack(arena, grader, BY_NAME["sysv_ipc"])
    assert report.student_output.count("segment -1") == 3  # refused by the filter, in every mode
    assert shared_memory_of() == []


@ROOT_ONLY
def test_no_key_is_left_in_a_sandbox_uids_keyring(arena, grader):
    """Run twice, so the second run is the 'later submission' looking for the first one's key."""
    before = keys_of_sandbox_uids()
    for _ in range(2):
        report = grade_attack(arena, grader, BY_NAME["keyring_handoff"])
        assert "keyctl(SEARCH) -> Operation not permitted" in report.student_output
    assert keys_of_sandbox_uids() == before


@ROOT_ONLY
def test_empty_files_stop_at_the_tmpfs_inode_limit(arena, grader):
    report = grade_attack(arena, grader, BY_NAME["inode_flood"])
    made = int(re.search(r"empty files: (\d+), then", report.student_output).group(1))
    assert 0 < made <= arena.config.limits.tmpfs_inodes
    assert report.bounds["tmpfs_inodes"] == arena.config.limits.tmpfs_inodes


@ROOT_ONLY
def test_open_files_stop_at_the_limit(arena, grader):
    report = grade_attack(arena, grader, BY_NAME["fd_hoard"])
    pipes = int(re.search(r"pipes: (\d+), then", report.student_output).group(1))
    assert 0 < 2 * pipes <= arena.config.limits.open_files
    assert report.bounds["open_files"] == arena.config.limits.open_files


@ROOT_ONLY
def test_memory_no_process_owns_cannot_be_made(arena, grader):
    """memfd files and System V segments (which outlive their process, outside its address space)
    are refused by the filter, in every mode: nothing to hoard, the honest score kept."""
    report = grade_attack(arena, grader, BY_NAME["memfd_hoard"])
    assert "memfd: 0 MB, then Operation not permitted\nshm: 0 MB, then Operation not permitted" in report.student_output
    assert report.score == report.max_score > 0


@ROOT_ONLY
def test_no_secret_from_the_graders_environment_reaches_the_report(arena, grader, honest_reports):
    report = grade_attack(arena, grader, BY_NAME["env_secrets"])
    assert arena.targets["marker"] + "-secret" not in report_text(report) + report.student_output
    assert report.score == honest_reports["reference"].score


def test_a_hidden_forbidden_call_is_caught_by_what_runs(arena, grader):
    """The name guard switched off and the name built at run time: the operation that runs is
    softmax's all the same (#22 item 1), and the instructor hears of the switch."""
    report = grade_attack(arena, grader, Case("forbidden_api_hidden"))
    softmax_forward = [c for c in report.checks if c.name.startswith("softmax.forward.")]
    assert softmax_forward and all("Forbidden API: Softmax.forward uses aten._softmax" in c.message
                                   for c in softmax_forward)
    assert any("DisableTorchFunction" in notice for notice in report.instructor_notices), report.instructor_notices


@ROOT_ONLY
@pytest.mark.parametrize("attack, lost, scanned, seen", [
    ("forbidden_by_name", ("softmax.forward", "train"), r"getattr\(torch, <name computed at run time>\)",
     "torch._C.DisableTorchFunction"),
    ("gc_probe_inputs", (), r"__builtins__", "gc.get_objects"),
])
def test_reaching_into_the_interpreter_is_noticed_by_scan_and_at_run_time(attack, lost, scanned, seen, arena, grader,
                                                                          honest_reports):
    """#14 item 10: code that hides a forbidden call (the name guard switched off by names built at
    run time: the softmax that runs is caught all the same, #22 item 1) or finds the hidden inputs
    through the garbage collector (it keeps its points: the child cannot tell); both the syntax scan
    and the child's audit hook tell the instructor, and only the instructor (#23 item 5)."""
    case = Case(attack, lost=lost, says="please review it")
    report = grade_attack(arena, grader, case)
    assert_contained(case, report, honest_reports["reference"], report.student_output, arena.config)
    static = [n for n in report.instructor_notices if n.startswith("this code reaches")]
    at_run_time = [n for n in report.instructor_notices if n.startswith("while it ran")]
    assert static and re.search(scanned, static[0]), report.instructor_notices
    assert at_run_time and seen in at_run_time[0], report.instructor_notices
    assert not any("review" in notice for notice in report.notices), report.notices
    if attack == "gc_probe_inputs":
        assert re.search(r"precomputed [1-9]\d* answers", report.student_output), report.student_output


@ROOT_ONLY
def test_a_guard_undone_is_told_to_the_instructor(arena, grader, honest_reports):
    """#22 item 2: backwards by autograd with both halves of the guard popped (the switch's name
    built at run time) keep their points, since nothing was seen running; the instructor is told
    that student code used the switch and returned tensors no operation the guard saw made."""
    path = arena.root / "attacks" / "forbidden_guard_undone.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(hostile("forbidden_autograd_popped", "reference", arena.targets) + "\n\n"
                    + (Path(__file__).parent.parent / "redteam" / "forbidden_guard_undone.py").read_text())
    report = grader.grade(path)
    assert report.score == honest_reports["reference"].score
    told = "\n".join(report.instructor_notices)
    assert "torch.utils._python_dispatch._pop_mode_temporarily" in told, told
    assert "Linear.backward returned or kept a tensor made with the guard off" in told, told
    assert not any("guard" in notice for notice in report.notices)


def test_parser_bomb_is_a_zero_not_a_crash(arena, grader):
    """Python's parser gives up (MemoryError) in the child and in the grader's syntax scan."""
    report = grade_attack(arena, grader, Case("parser_bomb"))
    assert report.score == 0 and not report.error
    assert "parser_bomb.py: SyntaxError: the code is nested too deeply for Python to read it" in report.notices


# --- through the command line --------------------------------------------------------------------

def cli(arena, *args, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "--config", str(arena.config_path), *args],
                          capture_output=True, text=True, timeout=600, env=env, **kwargs)


@pytest.mark.slow  # `autograder grade` as a subprocess, per attack
@ROOT_ONLY
@pytest.mark.parametrize("name", ["fake_results", "output_flood", "exit_os_at_import", "env_secrets"])
def test_autograder_grade_reports_only_what_the_grader_measured(name, arena, honest_reports, listeners):
    case = BY_NAME[name]
    path = arena.root / "cli" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(hostile(name, case.honest, arena.targets))
    secret = arena.targets["marker"] + "-cli-secret"
    before = host_snapshot(arena.targets)
    done = cli(arena, "grade", str(path), "--json", env={**os.environ, SECRET_NAME: secret})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = json.loads(done.stdout)  # stdout is the grader's JSON, whatever the student printed
    assert_contained(case, results, honest_reports[case.honest], results["extra_data"]["student_output"], arena.config)
    assert secret not in done.stdout + done.stderr
    assert wait_for_no_sandbox_processes(arena.targets["marker"]) == []
    assert host_snapshot(arena.targets) == before


TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.slow  # `autograder grade` and `batch` as subprocesses
def test_no_escape_sequence_reaches_the_instructors_terminal(arena, tmp_path):
    """Student prints, exception messages, file names and zip member names are stripped of escape
    sequences and control characters on the terminal (`grade`, `batch`, `gradescope run`), and
    kept as they were in results.json."""
    esc = "\x1b"
    evil_name = f"mmm{esc}]52;c;cHduZWQ=\x07{esc}[2J"
    source = hostile("terminal_escapes", "reference", arena.targets)
    single = tmp_path / "grade" / f"{evil_name}.py"
    single.parent.mkdir()
    single.write_text(source)
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "mmm_terminal_escapes.py").write_text(source)
    (batch / f"notes{esc}[2J.txt").write_text("not a submission")
    with zipfile.ZipFile(batch / "carol.zip", "w") as two_candidates:
        two_candidates.writestr(f"a{esc}]0;owned\x07.py", "x = 1")
        two_candidates.writestr(f"b{esc}[31m.py", "x = 2")
    gradescope = tmp_path / "gradescope"
    (gradescope / "submission").mkdir(parents=True)
    (gradescope / "submission" / f"{evil_name}.py").write_text(source)
    runs = {
        "grade": cli(arena, "grade", str(single)),
        "batch": cli(arena, "batch", str(batch), "--out", str(tmp_path / "out"), "--workers", "1"),
        "gradescope run": cli(arena, "gradescope", "run", "--root", str(gradescope)),
    }
    for command, done in runs.items():
        assert done.returncode == 0, (command, done.stderr)
        shown = done.stdout + done.stderr
        assert "escapes in a message" in shown or command == "batch", command
        assert not TERMINAL_CONTROLS.search(shown), (command, repr(TERMINAL_CONTROLS.search(shown)))
    assert "holds several candidate files" in runs["batch"].stdout
    kept = json.loads((tmp_path / "out" / "results" / "mmm_terminal_escapes.json").read_text())
    assert f"{esc}]52;c;ZWNobyBwd25lZA==" in kept["extra_data"]["student_output"]
    assert any(f"{esc}[2J" in notice for notice in kept["extra_data"]["notices"])


@pytest.mark.slow  # `autograder batch`, twice
def test_a_batch_rerun_leaves_no_other_student_in_a_childs_memory(arena, tmp_path):
    """On a re-run the grader reads the roster and the earlier results (with what each student
    printed) before grading the new submissions. The spy (graded last, after a new honest student)
    searches the objects and the raw memory its child inherited for the other students' ids and
    prints: it finds its own control string and nothing of anyone else's."""
    marker = arena.targets["marker"]
    folder, out = tmp_path / "class", tmp_path / "out"
    # the kit's own time limits: reading ~200 MB of memory takes seconds on a busy machine
    config = write_config(tmp_path / "grading.toml", {("limits", "sandbox_uid"): SANDBOX_UID})

    def batch() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "autograder", "--config", str(config), "batch", str(folder),
                               "--out", str(out), "--workers", "1"], capture_output=True, text=True, timeout=600)

    def student(name: str, source: str) -> None:
        (folder / name).mkdir(parents=True)
        (folder / name / "layers.py").write_text(source)

    printed = {"aaa_alice": f"ALICE-PRINTED-{marker}", "zzz_zoe": f"ZOE-PRINTED-{marker}",
               "bbb_bob": f"BOB-PRINTED-{marker}"}
    for name in ("aaa_alice", "zzz_zoe"):
        student(name, HONEST["reference"] + f"\nprint({printed[name]!r})\n")
    first = batch()
    assert first.returncode == 0, first.stderr
    assert printed["aaa_alice"] in (out / "results" / "aaa_alice.json").read_text()
    student("bbb_bob", HONEST["reference"] + f"\nprint({printed['bbb_bob']!r})\n")  # graded before the spy
    needles = [*printed, *printed.values()]
    targets = {**arena.targets, "needles": [(needle[:4], needle[4:]) for needle in needles]}
    student("mmm_spy", hostile("template_memory", "reference", targets))
    second = batch()
    assert second.returncode == 0, second.stderr
    spy = json.loads((out / "results" / "mmm_spy.json").read_text())
    seen = spy["extra_data"]["student_output"]
    assert re.search(r"memory scanned: [1-9]\d* MB; control found: True", seen), seen
    leaks = [needles[int(n)] for n in re.findall(r"^LEAK needle (\d+)", seen, re.MULTILINE)]
    assert leaks == [], f"the child found other students in its memory: {leaks}"
    assert spy["score"] == spy["max_score"]


@pytest.mark.slow  # starts `autograder batch` to kill it
@ROOT_ONLY
def test_a_grader_killed_from_outside_leaves_no_process(arena):
    """kill -9 of the grader while a child sleeps (a platform time-out does this)."""
    path = arena.root / "cli" / "grader_killed.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(hostile("grader_killed", "reference", arena.targets))
    grading = subprocess.Popen([sys.executable, "-m", "autograder", "--config", str(arena.config_path), "grade",
                                str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not sandbox_processes(arena.targets["marker"], uids=()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox_processes(arena.targets["marker"], uids=()), "the sleeping child never started"
    finally:
        grading.send_signal(signal.SIGKILL)
        grading.wait()
    assert wait_for_no_sandbox_processes(arena.targets["marker"]) == []


# Every attack but three that only sleep (they cannot disturb anyone else, and cost ~9 s each),
# and read_solution where another copy of the kit lies around (the CLI cannot be told to hide it).
BATCH_ATTACKS = [case.attack for case in CASES
                 if case.attack not in ("baseexception_sleep", "slow_correct", "wire_slow_drip")
                 and not (case.attack == "read_solution" and solution_copies())]


def write_batch(folder: Path, attacks, targets: dict) -> Path:
    """Honest aaa_alice and zzz_zoe around the attackers (graded in name order)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aaa_alice.py").write_text(HONEST["reference"])
    (folder / "zzz_zoe.py").write_text(HONEST["reference"])
    for name in attacks:
        (folder / f"mmm_{name}.py").write_text(hostile(name, BY_NAME[name].honest, targets))
    return folder


def assert_batch_graded_everyone(out: Path, attacks, honest_reports, config, also=()) -> dict:
    """aaa_alice and zzz_zoe got full marks and every attack in `attacks` was contained; the
    students in `also` (attacks that are not contained here) only had to be graded."""
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    assert set(results) == {"aaa_alice", "zzz_zoe", *(f"mmm_{name}" for name in [*attacks, *also])}  # no fake file
    for student in ("aaa_alice", "zzz_zoe"):
        assert results[student]["score"] == results[student]["max_score"] > 0
        assert all(test["status"] == "passed" for test in results[student]["tests"])
    for name in attacks:
        case, result = BY_NAME[name], results[f"mmm_{name}"]
        assert_contained(case, result, honest_reports[case.honest], result["extra_data"]["student_output"], config)
    assert (out / "grades.csv").read_text().count("\n") == len(results) + 1
    return results


@pytest.mark.slow  # `autograder batch` over every attack
@ROOT_ONLY
def test_autograder_batch_grades_every_other_student_normally(arena, honest_reports, listeners):
    out = arena.root / "batch-out"
    targets = {**arena.targets, "results_dir": str(out / "results")}
    folder = write_batch(arena.root / "batch-in", BATCH_ATTACKS, targets)
    before = host_snapshot(arena.targets)
    done = cli(arena, "batch", str(folder), "--out", str(out), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert_batch_graded_everyone(out, BATCH_ATTACKS, honest_reports, arena.config)
    time.sleep(arena.targets["delay"] + 1.5)  # the survivor's delay
    assert wait_for_no_sandbox_processes(arena.targets["marker"]) == []
    assert host_snapshot(arena.targets) == before


# --- as root without CAP_SYS_ADMIN and as an ordinary user: test_every_mode.py grades every attack
# in one batch per mode; what is shown here is what only these modes show -----------------------

WITHOUT_SYS_ADMIN = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]
# Landlock (sandbox/landlock.py) closes the file gaps
LANDLOCK = landlock.version() or 0

NOBODY_ONLY = pytest.mark.skipif(not can_run_as_nobody(), reason="needs root, unshare and setpriv")
GRADE_ATTACKS = ["fake_results", "env_secrets", "kill_grader", "setsid_survivor", "tamper_kit", "loopback_connect",
                 "userns_mount", "sysv_ipc", "capabilities"]
# Where user namespaces are refused (forced below by a seccomp filter, as a container's profile
# does): the gaps.
NON_ROOT_GAPS = ["env_secrets", "read_solution", "setsid_survivor", "tamper_kit"]


def refusing_user_namespaces(no_new_privileges: bool = True) -> list[str]:
    """A command prefix that runs the rest of the command line under a filter refusing new user
    namespaces (EPERM), as Docker's default profile and sysctls do: the grader must notice, fall
    back and say so. Without no_new_privileges (root only) a set-uid program started later under
    the filter still gains root, as it would in such a container (test_without_user_namespaces)."""
    return [sys.executable, "-c", f"""
import errno, os, sys
import pyseccomp as s
rules = s.SyscallFilter(s.ALLOW)
rules.set_attr(s.Attr.CTL_NNP, {int(no_new_privileges)})
for call in ("unshare", "clone"):
    rules.add_rule(s.ERRNO(errno.EPERM), call, s.Arg(0, s.MASKED_EQ, 0x10000000, 0x10000000))
rules.add_rule(s.ERRNO(errno.ENOSYS), "clone3")
rules.load()
os.execvp(sys.argv[1], sys.argv[1:])
"""]


REFUSE_USER_NAMESPACES = refusing_user_namespaces()
WARNING = "autograder: warning: student code is NOT isolated here"


def nobody_has_user_namespaces() -> bool:
    from autograder.sandbox.isolation import user_namespaces_refused

    return can_run_as_nobody() and user_namespaces_refused(uid=NOBODY) == ""


USER_NAMESPACES_ONLY = pytest.mark.skipif(not nobody_has_user_namespaces(),
                                          reason="this kernel refuses user namespaces to uid 65534")


@pytest.fixture(scope="module")
def nobody_arena(arena, listeners):
    """Folders an unprivileged user can use (pytest's own temp folder is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="autograder-redteam-nobody-"))
    config_path = root / "grading.toml"
    config_path.write_text(arena.config_path.read_text())
    targets = {**make_targets(root / "targets"), "port": arena.targets["port"]}
    for folder in (root, root / "targets", root / "targets" / "results"):
        folder.chmod(0o777)
    yield root, config_path, targets
    remove_targets(targets)
    shutil.rmtree(root, ignore_errors=True)


def as_nobody(nobody_arena, args, targets, refuse_user_namespaces=False, config_path=None,
              bubblewrap=None) -> subprocess.CompletedProcess:
    """`autograder ARGS` run by uid 65534 (with SECRET_NAME in its environment). bubblewrap: a
    set-uid bwrap for the kit, with user namespaces refused (by root, before the drop)."""
    config_path = config_path or nobody_arena[1]
    wrapper = REFUSE_USER_NAMESPACES if refuse_user_namespaces else []
    env = {SECRET_NAME: targets["marker"] + "-secret", "PYTHONPATH": str(KIT_ROOT)}
    if bubblewrap:
        env["AUTOGRADER_BWRAP"] = str(bubblewrap)
    return run_as_nobody([*wrapper, sys.executable, "-m", "autograder", "--config", str(config_path), *args],
                         cwd=KIT_ROOT, env=env, as_root_first=refusing_user_namespaces(False) if bubblewrap else ())


def nobody_batch(nobody_arena, name: str, attacks, workers: int = 2, refuse_user_namespaces=False, config_path=None,
                 bubblewrap=None, **overrides):
    """`autograder batch` run by uid 65534 over aaa_alice, the attacks and zzz_zoe; results_dir is
    the batch's own results folder. Returns (output folder, finished process, targets)."""
    root, _, targets = nobody_arena
    out = root / f"{name}-out"
    targets = {**targets, "results_dir": str(out / "results"), **overrides}
    folder = write_batch(root / f"{name}-in", attacks, targets)
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    done = as_nobody(nobody_arena, ["batch", str(folder), "--out", str(out), "--workers", str(workers)], targets,
                     refuse_user_namespaces, config_path, bubblewrap)
    return out, done, targets


def assert_nothing_escaped(targets: dict, before: dict, listeners) -> None:
    time.sleep(targets["delay"] + 1.5)  # the survivor's delay
    assert wait_for_no_sandbox_processes(targets["marker"], uids=()) == []
    assert host_snapshot(targets) == before
    assert listeners.connections() == []
    assert shared_memory_of(uids=(NOBODY,)) == []


@pytest.mark.slow
@USER_NAMESPACES_ONLY
@pytest.mark.parametrize("name", GRADE_ATTACKS)
def test_as_an_ordinary_user_with_user_namespaces_grade_contains(name, nobody_arena, arena, honest_reports, listeners):
    root, _, targets = nobody_arena
    case = BY_NAME[name]
    path = root / f"grade-{name}.py"
    path.write_text(hostile(name, case.honest, targets))
    path.chmod(0o644)
    before = host_snapshot(targets)
    done = as_nobody(nobody_arena, ["grade", str(path), "--json"], targets)
    assert done.returncode == 0, done.stderr  # kill_grader could not reach the grader
    assert "Traceback" not in done.stderr and WARNING not in done.stderr
    results = json.loads(done.stdout)
    assert results["extra_data"]["isolation"] == "user-namespaces"
    assert_contained(case, results, honest_reports[case.honest], results["extra_data"]["student_output"], arena.config)
    assert targets["marker"] + "-secret" not in done.stdout
    assert_nothing_escaped(targets, before, listeners)


@pytest.mark.slow  # `autograder batch` as uid 65534
@NOBODY_ONLY
def test_without_user_namespaces_what_is_protected_and_what_is_not_and_it_says_so(
        nobody_arena, honest_reports, listeners):
    """Where user namespaces are refused, the README's threat model for an ordinary user without
    them, shown. With Landlock (ABI 6 and later): the grader's environment, the solution, another
    student's results and the host's files are out of reach. Without it, all of those are open; a
    setsid daemon is killed when its child ends in either case (the template adopts it). The
    network and System V IPC are closed in any case (the system-call filter). The batch
    says which at its start, and every result records it. If a gap closes, update README."""
    # read_solution searches the disk for 3 s while its cells load: give the cells time for that
    slow = write_config(nobody_arena[0] / "slow.toml", {**TEST_LIMITS, ("train", "wall_seconds"): 12})
    slow.chmod(0o644)
    out, done, targets = nobody_batch(nobody_arena, "gaps", NON_ROOT_GAPS, workers=1, delay=20.0,
                                      refuse_user_namespaces=True, config_path=slow)
    assert done.returncode == 0, done.stderr
    assert "unshare(CLONE_NEWUSER): Operation not permitted" in done.stderr.splitlines()[0]
    results = {p.name.split(".")[0]: json.JSONDecoder().raw_decode(p.read_text())[0]
               for p in (out / "results").glob("*.json*")}
    assert {result["extra_data"]["isolation"] for name, result in results.items()
            if name != "mmm_tamper_kit"} == {"user"}
    assert listeners.connections() == []  # the filter: no socket but AF_UNIX, no connect
    if LANDLOCK >= 6:
        assert done.stderr.startswith("autograder: notice: user namespaces refused here")
        assert "confined by Landlock" in done.stderr and WARNING not in done.stderr
        assert not list((out / "results").glob("*.moved")), "another student's results were changed"
        assert targets["marker"] + "-secret" not in json.dumps(results)
        assert results["mmm_read_solution"]["score"] == honest_reports["stubs"].score
        assert "# tampered" not in Path(targets["canary_file"]).read_text()
        assert all(r["extra_data"]["bounds"]["landlock"] == landlock.describe() for r in results.values())
    else:
        assert done.stderr.startswith(WARNING) and done.stderr.count(WARNING) == 1
        # tamper_kit (graded after the others) appended to and renamed every result before its own
        assert "tampered" in (out / "results" / "aaa_alice.json.moved").read_text()
        assert targets["marker"] + "-secret" in json.dumps(results["mmm_env_secrets"])
        assert results["mmm_read_solution"]["score"] > honest_reports["stubs"].score
        assert "# tampered" in Path(targets["canary_file"]).read_text()
    # the setsid daemon was adopted by the template (a subreaper) and killed when its child ended
    deadline = time.monotonic() + 5  # killing is asynchronous
    while sandbox_processes(targets["marker"], uids=()) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = sandbox_processes(targets["marker"], uids=())
    for survivor in survivors:  # not to be taken for the next test's
        os.kill(int(survivor.split()[0]), signal.SIGKILL)
    assert survivors == []
    assert not (Path(targets["canary_dir"]) / (targets["marker"] + "-survivor")).exists()


@pytest.mark.slow  # `autograder grade` as uid 65534
@NOBODY_ONLY
def test_without_user_namespaces_a_submission_can_kill_the_grader_unless_landlock_scopes_signals(nobody_arena):
    """The grader runs under the student's uid: its process can be signalled, unless Landlock
    (ABI 6 and later) keeps a child's signals to its own processes."""
    root, config_path, targets = nobody_arena
    path = root / "kill_grader.py"
    path.write_text(hostile("kill_grader", "reference", targets))
    path.chmod(0o644)
    workdirs = set(Path(tempfile.gettempdir()).glob("autograder-child-*"))
    try:
        done = as_nobody(nobody_arena, ["grade", str(path), "--json"], targets, refuse_user_namespaces=True)
        if LANDLOCK >= 6:
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["score"] > 0
        else:
            assert done.returncode == -signal.SIGKILL and done.stdout == ""  # no report at all
            assert done.stderr.startswith(WARNING)
        assert wait_for_no_sandbox_processes(targets["marker"], uids=()) == []
    finally:  # the killed grader could not remove its child's work folder
        for left in set(Path(tempfile.gettempdir()).glob("autograder-child-*")) - workdirs:
            shutil.rmtree(left, ignore_errors=True)


@NOBODY_ONLY
def test_doctor_says_which_isolation_and_what_refused_it(nobody_arena, arena):
    from autograder.sandbox.modes import mode

    as_root = cli(arena, "doctor")
    assert as_root.returncode == 0, as_root.stderr
    assert f"isolation: {mode().name}\n" in as_root.stdout
    assert ("as an ordinary user: user-namespaces" in as_root.stdout) == nobody_has_user_namespaces()
    targets = nobody_arena[2]
    refused = as_nobody(nobody_arena, ["doctor"], targets, refuse_user_namespaces=True)
    assert refused.returncode == 0, refused.stderr
    assert "isolation: user\n" in refused.stdout
    assert "because: unshare(CLONE_NEWUSER): Operation not permitted" in refused.stdout
    assert "to improve: " in refused.stdout
    if nobody_has_user_namespaces():
        allowed = as_nobody(nobody_arena, ["doctor"], targets)
        assert "isolation: user-namespaces\n" in allowed.stdout


def public_seed_answers(config) -> dict:
    """What a student can compute from the public kit: every forward probe's input and output,
    with the inputs drawn from grading.toml's [inputs] seed alone."""
    from autograder.checks import build_suite

    answers = {}
    for entry in build_suite(config, config.inputs.seed):
        steps, tensors = entry.check.probe.steps, entry.check.probe.tensors
        outputs = entry.expected  # the oracle's outputs for these inputs
        for step in steps:
            if step["op"] == "call" and step["method"] == "forward":
                given, answer = tensors[step["args"][0]], outputs[step["out"]]
                key = " ".join(f"{v:.6e}" for v in given.double().flatten().tolist())
                answers[key] = (list(answer.shape), str(answer.dtype)[6:], answer.flatten().tolist())
    return answers


@pytest.mark.slow  # starts a second grader, on the public seed
@ROOT_ONLY
def test_hidden_inputs_cannot_be_predicted_from_the_public_seed(arena, grader, honest_reports, monkeypatch):
    targets = dict(arena.targets, answers=public_seed_answers(arena.config))
    path = arena.root / "attacks" / "predicted_inputs.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(hostile("predicted_inputs", "stubs", targets))
    report = grader.grade(path)
    assert not report.error, report.error
    assert check_table(report) == {name: (0.0, check_table(report)[name][1]) for name in check_table(report)}
    assert report.course_secret_id and "KeyError" in report_text(report)
    # the control: with the public seed as the hidden one (the kit before the course secret),
    # the same table earns the forward checks
    import autograder.course.secret
    from autograder.pipeline import Grader

    monkeypatch.setattr(autograder.course.secret, "course_inputs", lambda config: (config.inputs.seed, "public"))
    with Grader(arena.config, hide=(arena.root, *solution_copies())) as public:
        predicted = public.grade(path, parts=[part.name for part in arena.config.layers])
    assert predicted.score >= 10, "the control attack should work against public inputs"


def public_digits() -> dict:
    """The whole public digits data set as an attacker carries it: pixels (0..16) -> label."""
    from solution.digits import load_digits_split

    X, y, X_test, y_test = load_digits_split()
    return {" ".join(str(round(v * 16)) for v in row.tolist()): int(label)
            for row, label in zip(torch.cat([X, X_test]), torch.cat([y, y_test]))}


def weights_trained_at_home(config) -> dict:
    """The train check's MLP trained by the reference layers from a start of the attacker's own."""
    from autograder.sandbox.trainer import train_mlp
    from solution import layers
    from solution.digits import load_digits_split, one_hot

    X, y, _, _ = load_digits_split()
    start = torch.Generator().manual_seed(1)
    d, h = X.shape[1], config.train.hidden
    tensors = {"X": X, "Y": one_hot(y, 10), "W1": (torch.rand(d, h, generator=start) - 0.5) / 4,
               "b1": torch.zeros(h), "W2": (torch.rand(h, 10, generator=start) - 0.5) / 3, "b2": torch.zeros(10)}
    classes = {name: getattr(layers, name) for name in ("Linear", "ReLU", "Softmax", "NLLLoss")}
    trained = train_mlp(classes, tensors, {"epochs": 20, "batch_size": 100, "lr": 0.5, "seed": 0,
                                           "guarded_epochs": 0}, lambda where, fn, args: fn(*args))
    return {f"{d}x{h}": {"W": trained["W1"].tolist(), "b": trained["b1"].tolist()},
            f"{h}x10": {"W": trained["W2"].tolist(), "b": trained["b2"].tolist()}}


@ROOT_ONLY
@pytest.mark.parametrize("attack", ["train_lookup_digits", "train_pretrained_weights"])
def test_the_train_check_needs_layers_that_train(attack, arena, grader, honest_reports):
    carried = {"digits": public_digits()} if attack == "train_lookup_digits" else {
        "pretrained": weights_trained_at_home(arena.config)}
    path = arena.root / "attacks" / f"{attack}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(hostile(attack, "stubs", dict(arena.targets, **carried)))
    report = grader.grade(path)
    assert not report.error, report.error
    (train,) = [check for check in report.checks if check.part == "train"]
    assert train.score == 0, train.message
    assert "after the first step" in train.message and "correct layers reach" in train.message, train.message
