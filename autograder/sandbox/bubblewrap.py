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
random name, in a /tmp that children can neither write nor list, kills a child holding more than its share of /tmp when it
fills up, and wipes the folder when the child ends; and each child installs a second system-call
filter (seccomp.install_shared_sandbox_rules) that lets it signal, renice or re-limit only itself
and refuses System V IPC and chmod (README, threat model).
"""
from __future__ import annotations

import ctypes
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

from . import trees

ENVIRONMENT = "AUTOGRADER_BWRAP"  # a bwrap to use instead of the one on PATH; "none" (or empty): none
FRESH = ("/tmp", "/var/tmp", "/run")  # empty tmpfs mounts in the sandbox (what lies under them is gone)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
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
            *{os.path.realpath(prefix) for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}]


def set_uid(path: str) -> bool:
    """A set-uid bwrap (older distributions) refuses --size: its /tmp cannot be bounded."""
    try:
        return bool(os.stat(path).st_mode & 0o4000)
    except OSError:
        return False


def arguments(hide=(), needed=(), tmpfs_bytes: int = 0) -> list[str]:
    """bwrap's options (without the command) for a sandbox hiding `hide`, with `needed` bound back
    read-only where a hidden or fresh folder covers it; /tmp holds at most `tmpfs_bytes` (0: no
    bound, or a set-uid bwrap)."""
    hidden = sorted({os.path.realpath(h) for h in hide if os.path.isdir(h)})
    covered = [f for f in FRESH if os.path.isdir(f)]
    # a folder inside a fresh one or inside another hidden one is gone already
    hidden = [h for h in hidden if not any(_inside(h, other) for other in covered + [o for o in hidden if o != h])]
    # --as-pid-1: the template is PID 1 of the sandbox (no bwrap process there whose environment a
    # child could read): children cannot signal it at all, and orphans come to it by themselves
    args = ["--unshare-pid", "--as-pid-1", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in covered + hidden:
        sized = folder == "/tmp" and tmpfs_bytes and not set_uid(executable() or "")
        args += [*(["--size", str(tmpfs_bytes)] if sized else []), "--tmpfs", folder]
    for path in sorted(set(needed)):
        if os.path.exists(path) and any(_inside(path, folder) for folder in covered + hidden):
            args += ["--ro-bind", path, path]
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
        done = subprocess.run([path, *arguments(tmpfs_bytes=1 << 20), "--", true], stdin=subprocess.DEVNULL,
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
    caller puts in the descriptor and passes it: bwrap keeps inherited descriptors open). /tmp,
    where every child has its working folder, holds `tmpfs_mb` per child at once."""
    return [executable() or "bwrap", *arguments(hide, _needed_by_the_template(), slots * tmpfs_mb << 20), "--",
            sys.executable, "-m", "autograder.sandbox.zygote", "{fd}", "bubblewrap", str(slots)]


_tasks_counted = (0.0, 0)  # (when, how many)
_tasks_lock = threading.Lock()


def tasks_of_this_user() -> int:
    """Threads running under this uid on the whole machine (what RLIMIT_NPROC counts, and what the
    sandbox's own /proc cannot show), counted by the grader at most once a second."""
    global _tasks_counted
    from .isolation import _tasks_of

    with _tasks_lock:
        when, count = _tasks_counted
        if time.monotonic() - when > 1.0:
            _tasks_counted = (time.monotonic(), _tasks_of(os.getuid()))
        return _tasks_counted[1]


# --- in the template, inside the sandbox ---------------------------------------------------------

class Workdirs:
    """A working folder per child, in the sandbox's /tmp, which children cannot write to: made
    before any child exists (more only if a batch has more children at once), wiped when the
    child ends, then given to the next. While children run, /tmp is watched: past every slot's
    share of [limits] tmpfs_mb and tmpfs_inodes, whichever child holds more than its own share is
    killed (a set-uid bwrap cannot bound /tmp's size, and no bwrap bounds its inodes)."""

    def __init__(self, count: int, root: str = "/tmp"):
        self.root, self._used = root, {}
        for parent, folders, _ in os.walk(root):  # bwrap's way to what is bound back in (a kit in /tmp)
            folders[:] = [name for name in folders if not os.path.ismount(os.path.join(parent, name))]
            for name in folders:
                os.chmod(os.path.join(parent, name), 0o555)
        self._free = [self._make() for _ in range(count)]
        # Only the template writes here, and no child can list it (children cannot chmod: the
        # filter): a child knows its own folder's random name, never another's, so it can neither
        # read another child's files nor fill another's folder to get it killed (police)
        os.chmod(root, 0o111)
        self._share = (0, 0)  # bytes, files: each child's, from its request's limits

    def _make(self) -> str:
        path = os.path.join(self.root, f"child-{secrets.token_hex(8)}")
        mode = os.stat(self.root).st_mode & 0o7777
        os.chmod(self.root, 0o755)
        try:
            os.mkdir(path, 0o700)
        finally:
            os.chmod(self.root, mode)
        return path

    def take(self) -> str:
        return self._free.pop() if self._free else self._make()

    def assign(self, pid: int, path: str, limits: dict) -> None:
        self._used[pid] = path
        self._share = (limits["tmpfs_mb"] << 20, limits["tmpfs_inodes"])

    def watch(self, control) -> None:
        """Return when a request waits on `control`; meanwhile, police /tmp four times a second."""
        self.police()
        while not select.select([control], [], [], 0.25)[0]:
            self.police()

    def police(self) -> None:
        if not self._used:
            return
        share_bytes, share_files = self._share
        usage = os.statvfs(self.root)  # one call: the whole tmpfs
        slots = len(self._used) + len(self._free)
        if ((usage.f_blocks - usage.f_bfree) * usage.f_frsize <= slots * share_bytes
                and usage.f_files - usage.f_ffree <= slots * share_files):
            return
        for pid, path in list(self._used.items()):
            if _holds_more(path, share_bytes, share_files):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:  # ended meanwhile
                    pass

    def release(self, pid: int) -> None:
        path = self._used.pop(pid, None)
        if path is not None:
            _wipe(path)
            self._free.append(path)


def _holds_more(folder: str, most_bytes: int, most_files: int) -> bool:
    """Whether `folder` holds more than `most_bytes` or `most_files` (stops counting once it does)."""
    size = files = 0
    for parent, folders, names in os.walk(folder):
        for name in folders + names:
            files += 1
            try:
                size += os.lstat(os.path.join(parent, name)).st_blocks * 512
            except OSError:
                continue
            if size > most_bytes or files > most_files:
                return True
    return False


def _wipe(folder: str) -> None:
    """Remove everything in `folder`, whatever the child made of it (any depth, links, modes):
    trees.empty never recurses, follows a link or raises for what it finds."""
    trees.empty(folder)


def enter_template() -> None:
    """Not dumpable: a child (same uid, same PID namespace) can then neither read nor write the
    template's memory, nor take its descriptors; its children inherit that. A subreaper: whatever
    a child leaves running (a double-forked setsid daemon) becomes the template's, to be killed."""
    for option, value in ((PR_SET_DUMPABLE, 0), (PR_SET_CHILD_SUBREAPER, 1)):
        if _libc.prctl(option, value, 0, 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"prctl({option}): {os.strerror(code)}")


def kill_adopted(own_children) -> None:
    """SIGKILL every process whose parent is the template but that the template did not fork:
    left behind by a child (their parent died), they would otherwise outlive it."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in own_children:
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            if parent == me:
                os.kill(int(name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
