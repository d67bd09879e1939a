"""Bubblewrap, for an ordinary user whose kernel refuses the kit's user namespaces (a sysctl, Ubuntu
24.04's AppArmor restriction, a container's seccomp profile) while `bwrap` may still make
namespaces (Ubuntu's AppArmor profile for it, or a set-uid bwrap).

The warm template runs inside one bwrap sandbox, started once per grader (never per submission):
new PID, network, IPC and UTS namespaces, every host file system read-only, the kit, the
submissions, the outputs and /run under empty read-only tmpfs mounts (only what the template must
import is bound back: the kit's sandbox package and its Python environment), a fresh /tmp, /proc
and /dev, no capabilities. Its children are forks of it, inside that sandbox: they cannot see,
signal or trace the grader, reach the network or the hidden folders, or change a host file.

What they share, unlike the other modes' children: one PID namespace (the template's), one /tmp
and the grader's uid. So here the template is PID 1 of the sandbox (a child cannot signal it) and
not dumpable (no child can read or write its memory, or another child's, through /proc), adopts
every process a child leaves behind and kills it, gives each child a working folder of its own, with a
random name, in a tmpfs of its own (one per child slot, made with the sandbox) that children can
neither write nor list, kills a child holding more than its share there, and wipes the folder when
the child ends; and each child installs a second system-call filter
(seccomp.install_shared_sandbox_rules) that lets it signal, renice or re-limit only itself and
refuses chmod (docs/threat-model.md). The main filter leaves children no channel between them
but files: no socket with an address, no System V IPC or message queue.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time

from . import disk, isolation, trees

ENVIRONMENT = "AUTOGRADER_BWRAP"  # a bwrap to use instead of the one on PATH; "none" (or empty): none
FRESH = ("/tmp", "/var/tmp", "/run")  # empty tmpfs mounts in the sandbox (what lies under them is gone)
# One tmpfs per child slot, twice as many as children at once (a killed child may still be dying
# when the next one starts): what a child holds is its mount's statfs, which no folder mode and no
# deleted-but-open file can hide from the template, as walking the folder could be hidden.
SLOTS_PER_CHILD = 2
PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None, use_errno=True)


def executable() -> str | None:
    chosen = os.environ.get(ENVIRONMENT)
    if chosen is not None:
        return None if chosen in ("", "none") else chosen
    return shutil.which("bwrap")


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath((path, folder)) == folder


def _needed_by_the_template() -> list[str]:
    """What the template imports from disk: the kit's sandbox package (and the package's
    __init__.py) and the Python environment holding torch. Nothing of the solution or the checks."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return [os.path.join(package, "__init__.py"), os.path.join(package, "sandbox"),
            *{os.path.realpath(prefix)
              for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}]


def set_uid(path: str) -> bool:
    """A set-uid bwrap (older distributions) refuses --size: its /tmp cannot be bounded."""
    try:
        return bool(os.stat(path).st_mode & 0o4000)
    except OSError:
        return False


def slot_mounts(children: int, root: str = "/tmp") -> list[str]:
    """Where the tmpfs of each child slot is mounted (the names are no secret: the folder each child
    works in, inside one, is)."""
    return [os.path.join(root, f"slot-{number}") for number in range(children * SLOTS_PER_CHILD)]


def arguments(hide=(), needed=(), tmpfs_bytes: int = 0, children: int = 0) -> list[str]:
    """bwrap's options (without the command) for a sandbox hiding `hide`, with `needed` bound back
    read-only where a hidden or fresh folder covers it, and the tmpfs of `children` children's slots
    in /tmp, each holding at most `tmpfs_bytes` (0: no bound, or a set-uid bwrap)."""
    hidden = sorted({os.path.realpath(h) for h in hide if os.path.isdir(h)})
    covered = [f for f in FRESH if os.path.isdir(f)]
    # a folder inside a fresh one or inside another hidden one is gone already
    hidden = [h for h in hidden if not any(_inside(h, other) for other in covered + [o for o in hidden if o != h])]
    # --as-pid-1: the template is PID 1 of the sandbox (no bwrap process there whose environment a
    # child could read): children cannot signal it at all, and orphans come to it by themselves
    args = ["--unshare-pid", "--as-pid-1", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in covered + hidden:
        args += ["--tmpfs", folder]
    for path in sorted(set(needed)):
        if os.path.exists(path) and any(_inside(path, folder) for folder in covered + hidden):
            args += ["--ro-bind", path, path]
    sized = ["--size", str(tmpfs_bytes)] if tmpfs_bytes and not set_uid(executable() or "") else []
    for slot in slot_mounts(children):
        args += [*sized, "--tmpfs", slot]
    for folder in [f for f in covered if f != "/tmp"] + hidden + ["/dev"]:
        args += ["--remount-ro", folder]  # empty and read-only (/dev: no files in /dev/shm either)
    # The grader ending closes the template's control socket: the template exits, then bwrap and
    # everything in its PID namespace. (--die-with-parent would tie it to the thread that started it.)
    return args + ["--cap-drop", "ALL", "--chdir", "/"]


def refused(uid: int | None = None) -> str:
    """"" if bwrap can make the template's sandbox here (as `uid`, when given, from root), else why not."""
    path = executable()
    if not path:
        return "bwrap is not installed" if ENVIRONMENT not in os.environ else f"{ENVIRONMENT} turns it off"
    true = shutil.which("true") or "/bin/true"
    drop = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
    try:
        done = subprocess.run([path, *arguments(tmpfs_bytes=1 << 20, children=1), "--", true], stdin=subprocess.DEVNULL,
                              capture_output=True,
                              timeout=30, **drop)
    except (OSError, subprocess.SubprocessError) as failure:
        return f"{path}: {failure}"
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return f"{path}: {said[-1] if said else f'exit code {done.returncode}'}"
    return ""


def command(hide, slots: int, tmpfs_mb: int) -> list[str]:
    """The template's command line: bwrap, then `python -m autograder.sandbox.zygote {fd} ...` (the
    caller puts in the descriptor and passes it: bwrap keeps inherited descriptors open). Each
    child's working folder lies in a tmpfs of its own holding `tmpfs_mb`."""
    return [executable() or "bwrap", *arguments(hide, _needed_by_the_template(), tmpfs_mb << 20, slots), "--",
            sys.executable, "-m", "autograder.sandbox.zygote", "{fd}", "bubblewrap", str(slots)]


_tasks_counted = (0.0, 0)  # (when, how many)
_tasks_lock = threading.Lock()


def tasks_of_this_user() -> int:
    """Threads running under this uid on the whole machine (what RLIMIT_NPROC counts, and what the
    sandbox's own /proc cannot show), counted by the grader at most once a second."""
    global _tasks_counted
    with _tasks_lock:
        when, count = _tasks_counted
        if time.monotonic() - when > 1.0:
            _tasks_counted = (time.monotonic(), isolation.tasks_of(os.getuid()))
        return _tasks_counted[1]


# --- in the template, inside the sandbox ---------------------------------------------------------

class Workdirs(disk.DiskPolice):
    """A working folder per child, with a random name, in the tmpfs of a slot of its own (see
    slot_mounts): made before any child exists, wiped when the child ends, then given to the next.
    While children run, each one's tmpfs is watched (disk.watch): a child holding more than its
    share of [limits] tmpfs_mb or tmpfs_inodes there is killed (a set-uid bwrap cannot bound a
    tmpfs's size, and no bwrap its inodes)."""

    def __init__(self, count: int, root: str = "/tmp"):
        super().__init__()
        self.root, self._used = root, {}
        for parent, folders, _ in os.walk(root):  # bwrap's way to what is bound back in (a kit in /tmp)
            folders[:] = [name for name in folders if not os.path.ismount(os.path.join(parent, name))]
            for name in folders:
                os.chmod(os.path.join(parent, name), 0o555)
        self._free = [self._make(slot) for slot in slot_mounts(count, root)]
        # Only the template writes here, and no child can list /tmp or a slot (children cannot
        # chmod: the filter): a child knows its own folder's random name, never another's, so it
        # can neither read another child's files nor fill another's folder to get it killed (police)
        os.chmod(root, 0o111)
        self._share = (0, 0)  # bytes, files: each child's, from its request's limits

    @staticmethod
    def _make(slot: str) -> str:
        path = os.path.join(slot, f"child-{secrets.token_hex(8)}")
        os.mkdir(path, 0o700)
        os.chmod(slot, 0o111)
        return path

    def take(self, reap) -> str:
        """A free folder; if every slot is taken, the children killed last are still dying: `reap`
        them (the template's SIGCHLD handler, called while SIGCHLD is blocked) until one is free."""
        deadline = time.monotonic() + 30
        while not self._free and time.monotonic() < deadline:
            reap()
            time.sleep(0.002)
        if not self._free:
            raise OSError("every child slot's folder is taken")
        return self._free.pop()

    def assign(self, pid: int, path: str, limits: dict, as_root: bool = False) -> None:
        self._used[pid] = path
        self._share = (limits["tmpfs_mb"] << 20, limits["tmpfs_inodes"])

    def look(self) -> None:
        share_bytes, share_files = self._share
        for pid, path in list(self._used.items()):
            usage = os.statvfs(os.path.dirname(path))  # the slot's tmpfs: all the child holds, however hidden
            # its own folder and the slot's root are two of the files
            if pid not in self.killed and ((usage.f_blocks - usage.f_bfree) * usage.f_frsize > share_bytes
                                           or usage.f_files - usage.f_ffree > share_files + 2):
                self.kill(pid)

    def release(self, pid: int) -> None:
        path = self._used.pop(pid, None)
        if path is not None:
            _wipe(path)
            self._free.append(path)
        super().release(pid)


def _wipe(folder: str) -> None:
    """Remove everything in `folder`, whatever the child made of it (any depth, links, modes):
    trees.empty never recurses, follows a link or raises for what it finds."""
    trees.empty(folder)


def enter_template() -> None:
    """Not dumpable: a child (same uid, same PID namespace) can then neither read nor write the
    template's memory, nor take its descriptors; its children inherit that. (A subreaper, as every
    template: isolation.adopt_orphans.)"""
    if _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_DUMPABLE): {os.strerror(code)}")


