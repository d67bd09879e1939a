"""The red-team suite in every mode the kit grades in: one `autograder batch` of every attack per
mode, honest aaa_alice and zzz_zoe around them, each attack contained (test_redteam.assert_contained)
and nothing left on the host: no survivor, no file, no connection, no System V segment.

The modes, as README's threat-model columns (root with namespaces is test_redteam.py's):

- docker-like: root inside tests/docker_like/dockerlike.py, as Gradescope runs the autograder:
  Docker's default seccomp profile and capabilities (no CAP_SYS_ADMIN), a read-only /sys; the kit
  then picks its `uid` mode.
- uid: root without CAP_SYS_ADMIN (setpriv), no other restriction.
- user-namespaces: uid 65534 where the kernel allows it user namespaces.
- user: uid 65534, user namespaces refused by a filter (as a container's profile does).
- bubblewrap: the same, with a set-uid bwrap (test_without_user_namespaces.py).

Every batch is graded from the kit's checkout (its working directory, as `cd kit && autograder
batch ...`), from input and output folders any uid may enter, so only the sandbox stands between a
child and them. GAPS lists, per mode, what is not contained yet (graded only; README's "no"): a
gap closed makes the test fail until it is taken off the list and README's table.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.config import KIT_ROOT
from redteam.harness import (HONEST, SECRET_NAME, can_run_as_nobody, host_snapshot, hostile, sandbox_processes,
                             shared_memory_of)
from test_redteam import (BATCH_ATTACKS, BY_NAME, WITHOUT_SYS_ADMIN, arena, as_nobody, assert_contained,  # noqa: F401
                          honest_reports, listeners, nobody_arena, nobody_has_user_namespaces, refusing_user_namespaces,
                          write_batch)
from test_without_user_namespaces import grade_in_one_bubblewrap_grader, setuid_bwrap  # noqa: F401

DOCKER_LIKE = Path(__file__).parent / "docker_like" / "dockerlike.py"
ROOT_ONLY = pytest.mark.skipif(not can_run_as_nobody(), reason="needs root, unshare and setpriv")

# Mode -> the isolation the kit must pick there (README's column).
ISOLATION = {"docker-like": "uid", "uid": "uid", "user-namespaces": "user-namespaces", "user": "user",
             "bubblewrap": "bubblewrap"}
# Left out of a mode's batch: recursion_bomb's C stack overflow can outlast the tests' 2 s limit on a loaded machine
# (test_redteam.py grades it as root); where the grader shares the child's uid with no wall on
# signals, kill_grader ends the whole batch (test_redteam's test_without_user_namespaces_a_submission_can_kill_the_grader).
LEFT_OUT = {
    "docker-like": set(), "uid": set(),
    "user-namespaces": {"recursion_bomb"},
    "user": {"recursion_bomb", "kill_grader"},
    "bubblewrap": {"recursion_bomb"},
}
# What each mode does not contain yet: README's threat model says so, row by row.
GAPS = {
    "docker-like": {"read_solution", "tamper_kit", "solution_on_the_path", "results_outside_workdir", "snoop_batch",
                    "process_list"},
    "uid": {"read_solution", "tamper_kit", "solution_on_the_path", "results_outside_workdir", "snoop_batch",
            "process_list"},
    "user-namespaces": set(),
    "user": {"env_secrets", "read_solution", "setsid_survivor", "tamper_kit", "fake_results", "solution_on_the_path",
             "results_outside_workdir", "snoop_batch", "process_list"},
    "bubblewrap": {"process_list"},
}
# What is left on the host, and the attacks that leave it: a gap excuses only its own traces.
TRACES = {"survivors": {"setsid_survivor"}, "connections": {"loopback_connect"}, "shared memory": {"sysv_ipc"},
          "host files": {"tamper_kit", "fake_results", "results_outside_workdir", "setsid_survivor", "disk_fill"}}


def mode_attacks(mode: str) -> list[str]:
    return [name for name in BATCH_ATTACKS if name not in LEFT_OUT[mode]]


def run_batch(mode: str, nobody_arena, bwrap=None) -> tuple[Path, subprocess.CompletedProcess, dict]:
    """`autograder batch` over every attack of `mode`, run as that mode runs it."""
    root, config_path, targets = nobody_arena
    out = root / f"every-{mode}-out"
    targets = {**targets, "results_dir": str(out / "results")}
    folder = write_batch(root / f"every-{mode}-in", mode_attacks(mode), targets)
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    args = ["batch", str(folder), "--out", str(out), "--workers", "2"]
    if mode in ("user-namespaces", "user", "bubblewrap"):
        done = as_nobody(nobody_arena, args, targets, refuse_user_namespaces=mode == "user", bubblewrap=bwrap)
        return out, done, targets
    prefix = [sys.executable, str(DOCKER_LIKE), "--"] if mode == "docker-like" else WITHOUT_SYS_ADMIN
    done = subprocess.run([*prefix, sys.executable, "-m", "autograder", "--config", str(config_path), *args],
                          capture_output=True, text=True, timeout=900, cwd=KIT_ROOT,
                          env={**os.environ, SECRET_NAME: targets["marker"] + "-secret"})
    return out, done, targets


def uncontained(results: dict, attacks, honest_reports, config) -> dict[str, str]:
    """attack -> why it is not contained (the first assertion that failed)."""
    failed = {}
    for name in attacks:
        case, result = BY_NAME[name], results[f"mmm_{name}"]
        try:
            assert_contained(case, result, honest_reports[case.honest], result["extra_data"]["student_output"], config)
        except AssertionError as failure:
            failed[name] = str(failure).splitlines()[0][:300]
    return failed


def traces_left(targets: dict, before: dict, listeners) -> set[str]:
    time.sleep(targets["delay"] + 1.5)  # the survivor's delay
    left = set()
    deadline = time.monotonic() + 10
    while sandbox_processes(targets["marker"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if sandbox_processes(targets["marker"]):
        left.add("survivors")
    if listeners.connections():
        left.add("connections")
    if shared_memory_of(uids=range(62000, 62064)) or shared_memory_of(uids=(65534,)):
        left.add("shared memory")
    if host_snapshot(targets) != before:
        left.add("host files")
    return left


def clean_up(targets: dict) -> None:
    """What a gap left: marked files in the shared folders, System V segments, survivors."""
    for place in ("/tmp", "/var/tmp", "/dev/shm"):
        for path in Path(place).glob(f"*{targets['marker']}*"):
            path.unlink(missing_ok=True)
    for segment in shared_memory_of(uids=(*range(62000, 62064), 65534)):
        subprocess.run(["ipcrm", "-m", segment.split()[1]], check=False)


@ROOT_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("mode", list(ISOLATION))
def test_every_attack_in_one_batch(mode, nobody_arena, arena, honest_reports, listeners, request):
    if mode == "user-namespaces" and not nobody_has_user_namespaces():
        pytest.skip("this kernel refuses user namespaces to uid 65534")
    if mode == "docker-like":
        pytest.importorskip("pyseccomp")
    bwrap = request.getfixturevalue("setuid_bwrap") if mode == "bubblewrap" else None
    targets = nobody_arena[2]
    canary = Path(targets["canary_file"]).read_text()
    before = host_snapshot(targets)
    try:
        out, done, _ = run_batch(mode, nobody_arena, bwrap)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        results = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
        attacks = mode_attacks(mode)
        assert set(results) == {"aaa_alice", "zzz_zoe", *(f"mmm_{name}" for name in attacks)}, sorted(results)
        for student in ("aaa_alice", "zzz_zoe"):
            assert results[student]["score"] == results[student]["max_score"] > 0, student
        assert {result["extra_data"]["isolation"] for result in results.values()} == {ISOLATION[mode]}
        assert {result["extra_data"]["bounds"]["sockets"] for result in results.values()} == {
            results["aaa_alice"]["extra_data"]["bounds"]["sockets"]} and "AF_UNIX only" in \
            results["aaa_alice"]["extra_data"]["bounds"]["sockets"]
        failed = uncontained(results, attacks, honest_reports, arena.config)
        left = {trace for trace in traces_left(targets, before, listeners) if not TRACES[trace] & GAPS[mode]}
        assert (set(failed), left) == (GAPS[mode] & set(attacks), set()), failed
    finally:
        clean_up(targets)
        Path(targets["canary_file"]).write_text(canary)


@ROOT_ONLY
@pytest.mark.slow
def test_bubblewrap_a_child_hiding_its_disk_use_is_killed(nobody_arena, arena, setuid_bwrap):
    """In a folder of mode 0300 (which its owner cannot list) and in deleted files held open, a
    child holds what no walk of its folder finds; its slot's tmpfs shows it all (statfs), and the
    template kills it past its share. The next child is graded as usual."""
    hider, honest = grade_in_one_bubblewrap_grader(nobody_arena, setuid_bwrap, [
        hostile("hidden_disk_use", "reference", nobody_arena[2]), HONEST["reference"]])
    held = [int(mb) for mb in re.findall(r"^holding (\d+) MB", hider["output"], re.MULTILINE)]
    assert max(held, default=0) <= 4 * arena.config.limits.tmpfs_mb and "no limit" not in hider["output"], hider["output"]
    assert hider["score"] == 0  # killed while its cells ran
    assert honest["score"] == honest["max"] > 0
