"""What the red-team and malformed-input tests share: hostile submissions built from an honest part
and an attack, the targets they aim at, a grading.toml with short limits, and the checks that
nothing outside the sandbox changed and no process of a submission is left.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import solution.layers
from autograder.course.config import KIT_ROOT

ATTACKS = Path(__file__).parent
REFERENCE = solution.layers.source()  # the source notebook's answer cells, as one module
# The released template's answer cells: every method raises, so the honest score is zero.
STUBS = '''
import torch


class Linear:
    def __init__(self, in_features, out_features, generator=None):
        self.W = torch.randn(in_features, out_features, generator=generator)
        self.b = torch.zeros(out_features)
        self.dW = None
        self.db = None

    def forward(self, x):
        raise NotImplementedError()

    def backward(self, dh):
        raise NotImplementedError()


class ReLU:
    def forward(self, h):
        raise NotImplementedError()

    def backward(self, dr):
        raise NotImplementedError()


class Softmax:
    def forward(self, r):
        raise NotImplementedError()

    def backward(self, dS):
        raise NotImplementedError()


class NLLLoss:
    def forward(self, S, y):
        raise NotImplementedError()

    def backward(self):
        raise NotImplementedError()
'''
# The reference with one bug a student could make: Linear.forward forgets the bias.
BUGGY = REFERENCE + '''

_forward_with_bias = Linear.forward


def _forgot_the_bias(self, x):
    return _forward_with_bias(self, x) - self.b


Linear.forward = _forgot_the_bias
'''
HONEST = {"reference": REFERENCE, "stubs": STUBS, "buggy": BUGGY}

# Sandbox uids of the tests' grading.toml: a range no other grader on the machine uses, so a
# process of that uid found after grading can only be a survivor of these tests.
SANDBOX_UID = 62000
TEST_LIMITS = {
    ("limits", "wall_seconds"): 2, ("limits", "cpu_seconds"): 10, ("limits", "memory_mb"): 512,
    ("limits", "processes"): 16, ("limits", "file_size_mb"): 4, ("limits", "output_kb"): 16,
    ("limits", "tmpfs_mb"): 16, ("limits", "sandbox_uid"): SANDBOX_UID, ("train", "wall_seconds"): 4,
}
SECRET_NAME = "AUTOGRADER_REDTEAM_SECRET"


def write_config(path: Path, overrides: dict = TEST_LIMITS) -> Path:
    """A copy of the kit's grading.toml with some `key = value` lines of some sections replaced."""
    section, lines = "", []
    for line in (KIT_ROOT / "grading.toml").read_text().splitlines():
        header = re.match(r"\[([^\]]+)\]", line)
        if header:
            section = header.group(1)
        key = line.split("=", 1)[0].strip() if "=" in line and not header else None
        lines.append(f"{key} = {overrides[section, key]}" if (section, key) in overrides else line)
    path.write_text("\n".join(lines) + "\n")
    return path


def attack(name: str) -> str:
    return (ATTACKS / f"{name}.py").read_text()


def hostile(name: str, honest: str, targets: dict) -> str:
    """The submission: an honest part, this run's targets as REDTEAM = {...}, then the attack."""
    return f"{HONEST[honest]}\n\nREDTEAM = {targets!r}\n\n{attack(name)}"


# What a child (as root with namespaces) gets fresh or empty instead of the host's folder.
PRIVATE_IN_THE_CHILD = ("/tmp", "/var/tmp", "/dev/shm", "/run")


def in_private_folder(path: Path) -> bool:
    """Whether `path` lies where a child (as root with namespaces) gets a fresh or empty folder."""
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(private) for private in PRIVATE_IN_THE_CHILD)


def host_folder(fallback: Path) -> Path:
    """A writable folder that a child sees as the host's own (read-only, as root with namespaces)
    and that any uid can enter: next to the kit, unless the kit lies where a child gets a fresh
    folder instead (a clone in /tmp); else a system folder; else `fallback`."""
    def usable(folder: Path) -> bool:
        resolved = folder.resolve()
        return (os.access(resolved, os.W_OK) and not in_private_folder(resolved)
                and all(ancestor.stat().st_mode & 0o001 for ancestor in (resolved, *resolved.parents)))

    for candidate in (KIT_ROOT.parent, Path("/var/lib"), Path("/srv"), Path("/opt"), Path("/mnt")):
        if candidate.is_dir() and usable(candidate):
            return candidate
    return fallback


def make_targets(root: Path, canary_parent: Path | None = None) -> dict:
    """What the attacks aim at, created under `root` (which the test hides from the children):
    another student's results; and a world-writable folder with a world-writable canary file
    outside every folder the sandbox hides or replaces, so only the read-only mounts and the uid
    protect it (see host_folder)."""
    marker = "rt" + secrets.token_hex(5)  # also a process name: at most 15 characters
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "alice.json").write_text('{"score": 58.0, "tests": []}\n')
    parent = canary_parent or host_folder(root)
    canary_dir = Path(tempfile.mkdtemp(prefix="autograder-redteam-canary-", dir=parent))
    canary_dir.chmod(0o1777)
    canary_file = canary_dir / "canary.txt"
    canary_file.write_text("the canary is alive\n")
    canary_file.chmod(0o666)
    return {
        "marker": marker, "kit_root": str(KIT_ROOT), "results_dir": str(results),
        "canary_dir": str(canary_dir), "canary_file": str(canary_file), "delay": 1.5,
        "port": 0, "abstract": f"autograder-{marker}", "unix_path": str(root / "listener.sock"),
    }


def solution_copies() -> list[Path]:
    """Other checkouts of this kit (a CI clone, a backup) in the folders read_solution searches.
    The sandbox hides only the kit it runs from; like an instructor, a test must hide the others
    (README: keep no readable copy of solution/ on a grading machine)."""
    roots = {KIT_ROOT.parent, *map(Path, ("/work", "/autograder", "/home", "/srv", "/opt"))}
    found = {layers.parent.parent for root in roots if root.is_dir()
             for pattern in ("*/solution/layers.py", "*/*/solution/layers.py") for layers in root.glob(pattern)}
    return sorted(copy for copy in found if copy.resolve() != KIT_ROOT)


def stray_solution_files() -> list[Path]:
    """Loose .py files holding finished layers in the folders read_solution searches, outside every
    kit checkout (which the tests hide): a machine-specific gap the README documents ("keep no
    readable copy of the solution"), not something the sandbox can hide without hiding the canary."""
    roots = {KIT_ROOT.parent, *map(Path, ("/work", "/autograder", "/home", "/srv", "/opt"))}
    kits = {str(kit) for kit in (KIT_ROOT, *solution_copies())}
    stray, deadline = [], time.monotonic() + 5
    for root in sorted(str(r) for r in roots if r.is_dir()):
        for folder, folders, files in os.walk(root):  # as the attack walks: no dot folders
            folders[:] = [] if time.monotonic() > deadline else [
                f for f in folders if not f.startswith(".") and os.path.join(folder, f) not in kits]
            for name in (n for n in files if n.endswith(".py")):
                if not os.path.isfile(os.path.join(folder, name)):  # a FIFO (test_malformed leaves one) blocks open()
                    continue
                if not _readable_by_others(Path(folder, name)):  # a sandbox uid cannot read it either
                    continue
                try:
                    text = Path(folder, name).read_text(errors="replace")[:200_000]
                except OSError:
                    continue
                if "class Softmax" in text and "NotImplementedError" not in text:
                    stray.append(Path(folder, name))
    return sorted(set(stray))


def _readable_by_others(path: Path) -> bool:
    """Whether a uid that owns nothing here may read `path`: the file readable by others, every
    folder above it searchable by others (a private 0700 temporary folder, like conftest's copy of
    the reference layers or pytest's own, hides what it holds from the sandbox's uids)."""
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        return all(os.stat(folder).st_mode & stat.S_IXOTH for folder in path.parents)
    except OSError:
        return False


def remove_targets(targets: dict) -> None:
    shutil.rmtree(targets["canary_dir"], ignore_errors=True)


# --- what must not change ----------------------------------------------------------------------

KIT_FILES = ("grading.toml", "solution/layers.py", "autograder/scoring/score.py")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): _digest(p) if p.is_file() else "dir"
            for p in sorted(folder.rglob("*")) if not p.is_symlink()}


def host_snapshot(targets: dict, extra_folders=()) -> dict:
    """Everything an attack aims at outside the sandbox, and every file on the host carrying its
    marker (disk filling, survivors, fake results write files with the marker in their name)."""
    places = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/autograder/results", os.getcwd(), os.path.expanduser("~"),
              targets["kit_root"], targets["canary_dir"], targets["results_dir"], *map(str, extra_folders)]
    return {
        "kit": {name: _digest(KIT_ROOT / name) for name in KIT_FILES},
        "canary": _tree(Path(targets["canary_dir"])),
        "results": _tree(Path(targets["results_dir"])),
        "extra": {str(folder): _tree(Path(folder)) for folder in extra_folders},
        "marked": sorted(str(p) for place in places if os.path.isdir(place)
                         for p in Path(place).glob(f"*{targets['marker']}*")),
    }


def sandbox_processes(marker: str | None = None, uids=range(SANDBOX_UID, SANDBOX_UID + 64)) -> list[str]:
    """Live (not zombie) processes running as a test sandbox uid, or named `marker`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        uid = int(fields.get("Uid", "-1").split()[0])
        name = fields.get("Name", "")
        if fields.get("State", "").startswith("Z"):
            continue
        if uid in uids or (marker and name == marker[:15]):
            found.append(f"{pid} {name} uid={uid}")
    return found


def wait_for_no_sandbox_processes(marker: str | None = None, uids=range(SANDBOX_UID, SANDBOX_UID + 64),
                                  patience: float = 10.0) -> list[str]:
    """Survivors still running after `patience` seconds (killing is asynchronous: give it time)."""
    deadline = time.monotonic() + patience
    while True:
        left = sandbox_processes(marker, uids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def keys_of_sandbox_uids(uids=range(SANDBOX_UID, SANDBOX_UID + 64)) -> dict:
    """uid -> its line of /proc/key-users (keys held, bytes used) for the sandbox uids."""
    lines = Path("/proc/key-users").read_text().splitlines()
    return {int(line.split(":")[0]): line.split(":", 1)[1].split()[1:] for line in lines
            if int(line.split(":")[0]) in uids}


def shared_memory_of(uids=range(SANDBOX_UID, SANDBOX_UID + 64)) -> list[str]:
    """System V shared memory segments owned by a sandbox uid (from /proc/sysvipc/shm)."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return [line for line in lines if int(line.split()[7]) in uids]


# --- running as an ordinary user -----------------------------------------------------------------

NOBODY = 65534


def _locked_ancestor(path: Path) -> tuple[Path, Path] | None:
    """(first ancestor others cannot enter, its child on the way to `path`), e.g. /root, /root/.pyenv."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            return parent, parent / path.relative_to(parent).parts[0]
    return None


def can_run_as_nobody() -> bool:
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in ("unshare", "setpriv", "mount"))


def run_as_nobody(argv: list[str], cwd: Path, timeout: float = 300, env: dict | None = None,
                  as_root_first=()) -> subprocess.CompletedProcess:
    """Run `argv` as uid/gid 65534 (nobody). If this Python lives under a folder nobody cannot
    enter (here /root/.pyenv, /root being 0700), the command gets a private mount namespace in
    which that folder is an empty tmpfs holding only a bind mount of the interpreter's tree.
    as_root_first: a command prefix that runs as root before the drop (and execs the rest)."""
    prefix = Path(sys.base_prefix).resolve()
    steps = []
    locked = _locked_ancestor(prefix)
    if locked:
        folder, inner = locked
        stash = tempfile.mkdtemp(prefix="autograder-nobody-")
        steps = [f"mount --bind {inner} {stash}", f"mount -t tmpfs -o mode=0755,size=1m tmpfs {folder}",
                 f"mkdir -p {inner}", f"mount --bind {stash} {inner}"]
    command = " ".join(subprocess.list2cmdline([a]) for a in
                       ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
                        "env", "-i", "PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
                        *[f"{k}={v}" for k, v in (env or {}).items()], *argv])
    script = " && ".join(steps + [f"cd {cwd}", "exec " + command])
    try:
        return subprocess.run([*as_root_first, "unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        if locked:
            os.rmdir(stash)
