"""The template's count of a child's disk use where no tmpfs of its own bounds it (sandbox/disk.py):
what a folder holds, however hidden, and the files its processes hold open after deleting them.
A `sleep` in a process group of its own stands in for the child; the template's loop is disk.watch.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder.sandbox import disk

MB = 1 << 20
LIMITS = {"tmpfs_mb": 4, "tmpfs_inodes": 50, "uid": 65534}
ROOT = os.geteuid() == 0
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # the kit's may lie in root's home


@pytest.fixture
def child(tmp_path):
    """A stand-in child working in tmp_path/work (its own process group), and the police."""
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    police = disk.DiskPolice()
    police.assign(process.pid, str(work), LIMITS)
    yield process, work, police
    process.kill()
    process.wait()


def killed(process) -> bool:
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return process.returncode == -signal.SIGKILL


def test_a_child_within_its_share_is_left_alone(child):
    process, work, police = child
    (work / "notes").mkdir()
    (work / "notes" / "loss.txt").write_bytes(b"0" * MB)
    police.look()
    assert process.poll() is None and process.pid not in police.killed


def test_too_many_bytes_across_files_and_folders_kill_the_child(child):
    process, work, police = child
    for index in range(5):  # each file within the per-file limit, together over the share
        folder = work / f"level-{index}"
        folder.mkdir()
        (folder / "block").write_bytes(os.urandom(MB))
    police.look()
    assert killed(process) and process.pid in police.killed


def test_too_many_empty_files_kill_the_child(child):
    process, work, police = child
    for index in range(LIMITS["tmpfs_inodes"] + 1):
        (work / f"e{index}").touch()
    police.look()
    assert killed(process)


@pytest.mark.skipif(ROOT, reason="root reads a folder of mode 0300: the hiding place of an ordinary user")
def test_a_folder_its_owner_cannot_list_counts_as_over(child):
    process, work, police = child
    (work / "hidden").mkdir(mode=0o300)
    police.look()
    assert killed(process)


HOLDER = ("import os, time\n"
          "for i in range(6):\n"
          "    fd = os.open(f'held-{i}', os.O_CREAT | os.O_WRONLY, 0o600)\n"
          "    os.write(fd, os.urandom(1 << 20))\n"
          "    os.unlink(f'held-{i}')\n"
          "print('held', flush=True)\n"
          "time.sleep(60)\n")


def holding(command, work, python=sys.executable):
    """A process that holds 6 MB in files of `work` it has deleted, once it says so."""
    process = subprocess.Popen([*command, python, "-c", HOLDER], cwd=work, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    assert process.stdout.readline() == "held\n"
    assert not os.listdir(work)  # nothing a walk of the folder finds
    return process


def test_files_deleted_while_held_open_are_counted(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    process = holding([], work)
    try:
        police = disk.DiskPolice()
        police.assign(process.pid, str(work), LIMITS)
        police.look()
        assert killed(process)
    finally:
        process.kill()
        process.wait()


@pytest.mark.skipif(not ROOT or not SYSTEM_PYTHON, reason="as root, with a Python any uid may run")
def test_as_root_a_process_of_the_childs_uid_outside_its_group_is_counted(child):
    """A process of the child's uid that left its group (setsid) still holds the child's files."""
    process, _, _ = child
    work = tempfile.mkdtemp(prefix="disk-police-")  # a folder the child's uid may enter
    os.chown(work, LIMITS["uid"], LIMITS["uid"])
    uid = str(LIMITS["uid"])
    holder = holding(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"], work, SYSTEM_PYTHON)
    try:
        police = disk.DiskPolice()
        police.assign(process.pid, work, LIMITS, as_root=True)
        police.look()
        assert killed(process)
    finally:
        holder.kill()
        holder.wait()
        os.rmdir(work)


def test_watch_looks_between_requests_and_returns_when_one_comes(child):
    process, work, police = child
    control, parent = socket.socketpair()
    try:
        started = time.monotonic()
        for index in range(LIMITS["tmpfs_inodes"] + 1):
            (work / f"e{index}").touch()
        parent.send(b"request")  # already waiting: served after at most one look
        disk.watch(control, police)
        assert time.monotonic() - started < 1
        assert killed(process)
    finally:
        control.close()
        parent.close()


def test_a_process_that_names_itself_in_bytes_no_codec_reads_is_still_adopted_and_killed():
    """A process sets its own name (prctl PR_SET_NAME: any bytes, ")" included): /proc/<pid>/stat
    read as text once raised for it, and kill_adopted let it live."""
    script = """
import ctypes, os, signal, sys, time
from autograder.sandbox import isolation
pid = os.fork()
if pid == 0:
    ctypes.CDLL(None).prctl(15, b"\\xff) 1 2 3", 0, 0, 0)  # PR_SET_NAME
    time.sleep(60)
    os._exit(0)
time.sleep(0.2)
assert int(isolation.stat_fields(pid)[1]) == os.getpid()
isolation.kill_adopted(())
time.sleep(0.5)
ended, status = os.waitpid(pid, os.WNOHANG)
print("killed" if ended and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL else "alive")
if not ended:
    os.kill(pid, signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "killed", done.stderr
