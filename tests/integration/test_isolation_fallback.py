"""Root without CAP_SYS_ADMIN (Docker's default, maybe Gradescope's): no namespaces can be made.

The sandbox must notice and fall back to a private uid, rlimits and process clean-up, still
grading correctly and still killing whatever a submission left running.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import REFERENCE_LAYERS

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root and setpriv to drop CAP_SYS_ADMIN")

WITHOUT_SYS_ADMIN = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]

SURVIVOR = '''
import random
_os = random._os  # the import hook is kindness, not security: attacks reach os anyway
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        import time
        time.sleep(2)
        open({target!r}, "w").write("I survived")
    _os._exit(0)
'''


def grade_without_sys_admin(path) -> dict:
    done = subprocess.run([*WITHOUT_SYS_ADMIN, sys.executable, "-m", "autograder", "grade", str(path), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_namespaces_are_reported_unavailable():
    done = subprocess.run([*WITHOUT_SYS_ADMIN, sys.executable, "-c",
                           "from autograder.sandbox import isolation; print(isolation.namespaces_available())"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


@pytest.mark.slow  # `autograder grade` without CAP_SYS_ADMIN, a subprocess
def test_reference_still_gets_full_marks(tmp_path):
    results = grade_without_sys_admin(REFERENCE_LAYERS)
    assert results["score"] == results["max_score"] > 0
    assert results["extra_data"]["isolation"] == "uid"


@pytest.mark.slow  # waits out a survivor
def test_a_setsid_survivor_is_killed_with_its_uid(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)  # writable by the sandbox uid: only the kill can stop the write
    target = drop / "survivor.txt"
    submission = tmp_path / "mallory.py"
    submission.write_text(REFERENCE_LAYERS.read_text() + SURVIVOR.format(target=str(target)))
    results = grade_without_sys_admin(submission)
    assert results["score"] == results["max_score"]  # the attack costs nothing, earns nothing
    time.sleep(3)
    assert not target.exists()


@pytest.mark.slow  # `autograder grade` without CAP_SYS_ADMIN, a subprocess
def test_the_system_call_filter_and_cgroups_hold_without_namespaces_too(tmp_path):
    """The sandbox uid's keyrings outlive its children and a user namespace would give it root
    over new mounts: both are refused by the filter, which needs no namespace."""
    from redteam.harness import attack

    submission = tmp_path / "mallory.py"
    submission.write_text(f"{REFERENCE_LAYERS.read_text()}\n\nREDTEAM = {{'marker': 'rt-fallback'}}\n\n"
                          f"{attack('keyring_handoff')}\n{attack('userns_mount')}")
    results = grade_without_sys_admin(submission)
    assert results["score"] == results["max_score"]
    output = results["extra_data"]["student_output"]
    assert "add_key -> Operation not permitted" in output
    assert "unshare(CLONE_NEWUSER|CLONE_NEWNS) -> Operation not permitted" in output
    assert results["extra_data"]["bounds"]["seccomp"] == "system-call filter"
