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
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.course.config import KIT_ROOT
from autograder.sandbox import seccomp
from redteam.harness import (HONEST, NOBODY, SANDBOX_UID, SECRET_NAME, can_run_as_nobody, host_snapshot, hostile,
                             sandbox_processes)
from test_redteam import (BATCH_ATTACKS, BY_NAME, Case, WITHOUT_SYS_ADMIN, arena, as_nobody, assert_contained,  # noqa: F401
                          honest_reports, listeners, nobody_arena, nobody_has_user_namespaces, refusing_user_namespaces,
                          write_batch)
from test_without_user_namespaces import grade_in_one_bubblewrap_grader, setuid_bwrap  # noqa: F401

DOCKER_LIKE = Path(__file__).parent.parent / "docker_like" / "dockerlike.py"
ROOT_ONLY = pytest.mark.skipif(not can_run_as_nobody(), reason="needs root, unshare and setpriv")
SURVIVOR_SECONDS = 600.0  # longer than any batch here
SANDBOX_UIDS = (*range(SANDBOX_UID, SANDBOX_UID + 64), NOBODY)  # a child's uid, as root and as uid 65534

# Mode -> the isolation the kit must pick there (README's column).
ISOLATION = {"docker-like": "uid", "uid": "uid", "user-namespaces": "user-namespaces", "user": "user",
             "bubblewrap": "bubblewrap"}
# Modes that say, in one line opening the grader's stderr, how student code runs there.
SAYS_HOW = {"docker-like", "uid", "user", "bubblewrap"}
# Left out of a mode's batch: recursion_bomb's C stack overflow can outlast the tests' 2 s limit on
# a loaded machine (test_redteam.py grades it as root); where the grader shares the child's uid with
# no wall on signals, kill_grader ends the whole batch (test_redteam.py's
# test_without_user_namespaces_a_submission_can_kill_the_grader).
LEFT_OUT = {"docker-like": {"recursion_bomb"}, "uid": {"recursion_bomb"}, "user-namespaces": {"recursion_bomb"},
            "user": {"recursion_bomb", "kill_grader"}, "bubblewrap": {"recursion_bomb"}}
# Where a mode contains an attack in its own way. Without a tmpfs of its own (bubblewrap's slots,
# and a folder of the host's /tmp in uid, docker-like and user) a child's disk use is counted by the
# template, which kills it past its share: disk_fill may be killed before it says anything, or
# finish its 200 MB in the moment between two looks (its folder is removed after grading).
# Bubblewrap: /tmp is the template's (children cannot write there, each works in a folder of its own).
_COUNTED_DISK = {
    "disk_fill": Case("disk_fill", affected=("",), says=r"too much disk|\.: \d+ MB, then|/tmp: 0 MB",
                      absent=r"^(?!\.:)\S+: [1-9]"),
    # (on a loaded machine the tests' 2 s limit may come first; test_disk_police.py counts files)
    "inode_flood": Case("inode_flood", affected=("",), says=r"too much disk|time limit exceeded"),
    "hidden_disk_use": Case("hidden_disk_use", affected=("",), says=r"too much disk",
                            absent=r"^(holding \d{3,} MB|held \d+ MB: no limit)"),
}
CASES = {mode: _COUNTED_DISK for mode in ("bubblewrap", "uid", "docker-like", "user")}
# What each mode does not contain yet: README's threat model says so, row by row.
GAPS = {
    "docker-like": set(),
    "uid": set(),
    "user-namespaces": set(),
    # capabilities: an unprivileged process cannot empty its bounding set (harmless under
    # no_new_privs, which every child sets)
    "user": {"capabilities"},
    "bubblewrap": set(),
}


def mode_attacks(mode: str) -> list[str]:
    return [name for name in BATCH_ATTACKS if name not in LEFT_OUT[mode]]


def run_batch(mode: str, nobody_arena, root_config: Path, bwrap=None) -> tuple[Path, subprocess.CompletedProcess, dict]:
    """`autograder batch` over every attack of `mode`, run as that mode runs it."""
    root, config_path, targets = nobody_arena
    out = root / f"every-{mode}-out"
    # the survivor sleeps past the batch's end: alive then, it outlived grading
    targets = {**targets, "results_dir": str(out / "results"), "delay": SURVIVOR_SECONDS}
    folder = write_batch(root / f"every-{mode}-in", mode_attacks(mode), targets)
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    args = ["batch", str(folder), "--out", str(out), "--workers", "2"]
    if mode in ("user-namespaces", "user", "bubblewrap"):
        done = as_nobody(nobody_arena, args, targets, refuse_user_namespaces=mode == "user", bubblewrap=bwrap)
        return out, done, targets
    # root's own copy of grading.toml: the course secret root's grader makes beside it is root's alone
    prefix = [sys.executable, str(DOCKER_LIKE), "--"] if mode == "docker-like" else WITHOUT_SYS_ADMIN
    done = subprocess.run([*prefix, sys.executable, "-m", "autograder", "--config", str(root_config), *args],
                          capture_output=True, text=True, timeout=900, cwd=KIT_ROOT,
                          env={**os.environ, SECRET_NAME: targets["marker"] + "-secret"})
    return out, done, targets


def uncontained(mode: str, results: dict, attacks, honest_reports, config) -> dict[str, str]:
    """attack -> why it is not contained (the first assertion that failed)."""
    failed = {}
    for name in attacks:
        case, result = CASES.get(mode, {}).get(name, BY_NAME[name]), results[f"mmm_{name}"]
        try:
            assert_contained(case, result, honest_reports[case.honest], result["extra_data"]["student_output"], config)
        except AssertionError as failure:
            failed[name] = str(failure).splitlines()[0][:300]
    return failed


def escaped(targets: dict, before: dict, listeners) -> set[str]:
    """The attacks that left something on the host, from what they left (named after the run's marker
    where they could choose the name)."""
    found = set()
    deadline = time.monotonic() + 5  # killing is asynchronous
    while sandbox_processes(targets["marker"], uids=()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for survivor in sandbox_processes(targets["marker"], uids=()):
        found.add("setsid_survivor")
        try:
            os.kill(int(survivor.split()[0]), signal.SIGKILL)
        except OSError:
            pass
    if listeners.connections():
        found.add("loopback_connect")
    after = host_snapshot(targets)
    if after["kit"] != before["kit"] or after["results"] != before["results"]:
        found.add("tamper_kit")
    left = {Path(path).name for path in after["marked"] if path not in before["marked"]}
    left |= {name for name, digest in after["canary"].items() if before["canary"].get(name) != digest}
    canary = Path(targets["canary_file"]).read_text()
    for name in left:
        if name == "canary.txt":
            found |= {"tamper_kit"} if "# tampered" in canary else set()
            found |= {"setsid_survivor"} if "survivor" in canary else set()
        else:
            found.add("results_outside_workdir" if name.endswith("-results.json") else "fake_results"
                      if name == "results.json" else "setsid_survivor" if name.endswith("-survivor") else "disk_fill")
    return found


def clean_up(started: float) -> None:
    """What a gap left in the shared folders: files of a sandbox uid made since `started`. (System V
    segments are refused by the filter in every mode: sysv_ipc's output says so.)"""
    for place in ("/tmp", "/var/tmp", "/dev/shm"):
        for entry in os.scandir(place):
            try:
                made = entry.stat(follow_symlinks=False)
                if made.st_uid in SANDBOX_UIDS and made.st_mtime >= started and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            except OSError:
                continue


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
    canary, started = Path(targets["canary_file"]).read_text(), time.time() - 1
    before = host_snapshot(targets)
    try:
        out, done, _ = run_batch(mode, nobody_arena, arena.config_path, bwrap)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "Traceback" not in done.stderr
        said = done.stderr.splitlines()[0] if mode in SAYS_HOW else ""
        assert said.startswith("autograder: ") == (mode in SAYS_HOW) and done.stderr.count("autograder: ") == bool(said)
        # (as an ordinary user without namespaces, tamper_kit appends to and renames the others' results
        # and fake_results writes a results.json beside them: gaps)
        results = {p.name.split(".")[0]: json.JSONDecoder().raw_decode(p.read_text())[0]
                   for p in (out / "results").glob("*.json*") if not p.name.startswith("results.")}
        attacks = mode_attacks(mode)
        assert set(results) == {"aaa_alice", "zzz_zoe", *(f"mmm_{name}" for name in attacks)}, sorted(results)
        for student in ("aaa_alice", "zzz_zoe"):
            assert results[student]["score"] == results[student]["max_score"] > 0, student
        assert {result["extra_data"]["isolation"] for result in results.values()} == {ISOLATION[mode]}
        assert {result["extra_data"]["bounds"]["sockets"] for result in results.values()} == {seccomp.SOCKETS}
        if mode == "bubblewrap":  # the template is PID 1 of the sandbox: no ancestor to see, let alone kill
            assert "0 ancestor(s) seen" in results["mmm_kill_grader"]["extra_data"]["student_output"]
        failed = uncontained(mode, results, attacks, honest_reports, arena.config)
        left = escaped(targets, before, listeners)
        assert set(failed) | left == GAPS[mode] & set(attacks), (sorted(failed), sorted(left), failed)
    finally:
        clean_up(started)
        for name in os.listdir(targets["canary_dir"]):
            if name != "canary.txt":
                os.unlink(os.path.join(targets["canary_dir"], name))
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
    assert max(held, default=0) <= 4 * arena.config.limits.tmpfs_mb, hider["output"]
    assert "no limit" not in hider["output"], hider["output"]
    assert hider["score"] == 0  # killed while its cells ran
    assert honest["score"] == honest["max"] > 0
