"""The walls a child is given through plain system calls: namespaces, mounts, rlimits, privilege drop.

As root (Gradescope, CI, a grading server) a child gets: new PID, network, mount and IPC
namespaces; every host file system read-only; the kit, the submissions, the output folder and
/run hidden under empty tmpfs mounts; a private size-limited /tmp as its working directory; a fresh
/proc; an unprivileged uid of its own; and rlimits. An ordinary user whose kernel allows user
namespaces gets the same, except the uid: the template enters a user namespace of its own (where
it may make the others) and each child gives up every capability before student code runs.
Where user namespaces are refused but bwrap works, the template runs in a bubblewrap sandbox
(bubblewrap.py). Elsewhere the rlimits, a new session, a private work folder and (as root) a uid
of its own apply here. The system-call filter (seccomp.py) and, where the kernel allows them,
Landlock (landlock.py) and the cgroups (cgroups.py) hold in every mode. Which mode a machine gives
is modes.py's choice (see docs/threat-model.md).
"""
from __future__ import annotations

import ctypes
import errno
import functools
import os
import resource
import signal
import socket
import sys
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
# kept when made read-only (in a user namespace the kernel refuses to change them: they are locked)
MOUNT_OPTIONS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 0x400,
                 "nodiratime": 0x800, "relatime": 1 << 21}
# Hidden like the kit: the host's sockets (D-Bus, journal) live there, and Unix sockets can be
# connected to on a read-only mount and from another network namespace.
COVERED = ("/run",)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 36, 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class ChildLimits:
    """Per-child limits, as plain values so they travel in a request."""

    cpu_seconds: int
    memory_mb: int
    processes: int
    file_size_mb: int
    tmpfs_mb: int
    tmpfs_inodes: int  # files in each private tmpfs: empty files cost kernel memory, not size
    open_files: int
    uid: int  # used only as root
    hide: tuple[str, ...]  # folders to hide (root only)


_own_pid_namespace: int | None = None  # an open /proc/self/ns/pid of the template


def pid_namespace_for_next_child() -> None:
    """The template's next child becomes PID 1 of a new PID namespace (the template stays where
    it is): when that child dies, every process it left behind dies with it."""
    global _own_pid_namespace
    if _own_pid_namespace is None:
        _own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")


def own_pid_namespace_for_next_child() -> None:
    """Undo pid_namespace_for_next_child once the child exists, so another can be made."""
    _check(_libc.setns(_own_pid_namespace, CLONE_NEWPID), "setns(CLONE_NEWPID)")


def new_namespaces(network: int | None = None) -> None:
    """Called in the child (already PID 1 of its own PID namespace, see zygote.py): no network, a
    private mount table and private System V IPC (shared memory segments and message queues
    outlive their process, but not their namespace). network: an fd of an empty network
    namespace to enter (empty_network_namespace), else a new one is made."""
    entered = network is not None and _libc.setns(network, CLONE_NEWNET) == 0
    _check(_libc.unshare((0 if entered else CLONE_NEWNET) | CLONE_NEWNS | CLONE_NEWIPC), "unshare")


def empty_network_namespace() -> int:
    """An fd holding a new network namespace that no process is in: the template hands one to each
    child, and the next child reuses it once that child is reaped (making and tearing down one per
    child cost several ms of kernel work; the PID namespace guarantees no process of the previous
    child is left in it, and nothing else outlives them there: its loopback stays down and the
    children have no capability over it)."""
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # a fork of the template: touches nothing, only makes the namespace and sends it
        try:
            parent.close()
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            socket.send_fds(child, [b"n"], [os.open("/proc/self/ns/net", os.O_RDONLY)])
        finally:
            os._exit(0)
    child.close()
    try:
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    finally:
        parent.close()
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # reaped by a SIGCHLD handler already
            pass
    if not fds:
        raise OSError(errno.EPERM, "no network namespace could be made")
    return fds[0]


def namespaces_available() -> bool:
    """Can this process make the child's namespaces? Root in a container without CAP_SYS_ADMIN
    (Docker's default) cannot; the sandbox then falls back to the uid mode (modes.py)."""
    return namespaces_refused() == ""


def namespaces_refused() -> str:
    """"" if this process may make the child's namespaces, else the call that failed and why."""
    return _refused_in_a_fork(lambda: _check(_libc.unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC),
                                             "unshare(CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWIPC)"))


def user_namespaces_refused(uid: int | None = None) -> str:
    """"" if this process (or, as root, `uid`) may make a user namespace and the child's other
    namespaces inside it, as the template and its children do; else the call that failed and why."""
    def attempt():
        if uid is not None:
            drop_privileges(uid)
            _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl(DUMPABLE)")  # /proc/self is ours again
        own_user_namespace()
        _check(_libc.unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWIPC),
               "unshare(CLONE_NEWPID|CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWIPC) in the user namespace")
    return _refused_in_a_fork(attempt)


def _refused_in_a_fork(attempt) -> str:
    """Run `attempt` in a forked process; "" if it returned, else its error message."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            attempt()
            os._exit(0)
        except BaseException as failure:
            reason = failure.strerror if isinstance(failure, OSError) and failure.strerror else str(failure)
            os.write(write, reason.encode()[:500] or b"failed")
            os._exit(1)
    os.close(write)
    with os.fdopen(read, "rb") as reason:
        message = reason.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return "" if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else message or "failed"


def own_user_namespace() -> None:
    """Enter a new user namespace in which this process keeps its uid and gid and holds every
    capability (over the namespaces it makes from now on, not over anything of the host)."""
    uid, gid = os.getuid(), os.getgid()
    _check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    for name, line in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as mapping:
            mapping.write(line)


def template_in_user_namespace() -> None:
    """For the template of an ordinary user: its own user namespace, and PID 1 of a PID namespace
    owned by it, so that it may make each child's PID namespace and return to its own after the
    fork (setns needs the capability over the namespace it returns to). Forks once: the caller
    returns as that PID 1; this process stays behind, waits for it and exits as it did."""
    own_user_namespace()
    _check(_libc.unshare(CLONE_NEWPID), "unshare(CLONE_NEWPID)")
    pid = os.fork()
    if pid != 0:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grader's to handle
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the control socket must close when the template dies
        _, status = os.waitpid(pid, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def drop_capabilities() -> None:
    """In a child of a user-namespace template: give up every capability for good (bounding set
    first, then the effective, permitted and inheritable sets), so student code cannot undo the
    mounts; the uid stays the grader's."""
    _empty_bounding_set()
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: two 32-bit words each, empty
    _check(_libc.capset(header, data), "capset")


UID_LOCKS = "/run/lock/autograder-uids" if os.path.isdir("/run/lock") else "/tmp/autograder-uids"


def claim_uids(first: int, count: int) -> tuple[list[int], list[int]]:
    """Reserve `count` sandbox uids from `first` upward for this grader process: several graders
    on one machine (two batch runs, a test suite) must never share a uid, since a uid's processes
    are killed wholesale after each child. Returns the uids and the lock descriptors to keep open."""
    import fcntl

    os.makedirs(UID_LOCKS, mode=0o755, exist_ok=True)
    uids, locks, uid = [], [], first
    while len(uids) < count:
        fd = os.open(f"{UID_LOCKS}/{uid}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
        else:
            uids.append(uid)
            locks.append(fd)
        uid += 1
    return uids, locks


def processes() -> list[int]:
    """The pids in /proc now (each may end while the caller looks at it)."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def stat_fields(pid: int | str = "self") -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name, which a process sets itself (any
    bytes, ")" and spaces included): [0] its state, [1] its parent, [2] its process group."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()


def kill_processes_of(uid: int) -> None:
    """SIGKILL every process running as `uid` (a sandbox uid is used by one child at a time), so
    a double-forked setsid survivor dies even where there is no PID namespace to take it along."""
    for pid in processes():
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                os.kill(pid, signal.SIGKILL)
        except OSError:  # gone meanwhile
            continue


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode() if fstype else None,
            ctypes.c_ulong(flags), data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, flags to keep) of every mount in this namespace, from /proc/self/mountinfo."""
    points = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            path = fields[4]
            for escaped, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
                path = path.replace(escaped, char)  # how mountinfo writes these characters
            flags = sum(MOUNT_OPTIONS.get(option, 0) for option in fields[5].split(","))
            points.append((path, flags))
    return points


def _read_only_host() -> None:
    """Every mount read-only in this namespace: uid-based protection alone leaves any world-writable
    file or folder of the host (such as /run/lock, or a course folder with loose permissions)
    writable by the sandbox uid, and lets it fill the disk there."""
    for path, flags in _mount_points():
        try:
            _mount("none", path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None)
        except OSError as failure:
            if failure.errno not in (errno.ENOENT, errno.ENOTDIR):  # gone or over-mounted: unreachable
                raise


def private_filesystem(limits: ChildLimits, as_root: bool) -> str:
    """In the child's own mount namespace: a read-only host, hidden folders, fresh /proc and /tmp,
    and the Python environment bound back read-only wherever a hidden or fresh folder covers it, or
    (as root, whose child runs as a sandbox uid) a folder that uid may not enter holds it (root's
    0700 home holding a pyenv, a clone in a 0700 folder): student code imports what the student's
    kernel imports. Returns the workdir."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    _read_only_host()
    fresh = [tmp for tmp in ("/tmp", "/dev/shm", "/var/tmp") if os.path.isdir(tmp)]
    # (what lies in a fresh folder is gone with it)
    hidden = [path for path in (*limits.hide, *COVERED) if not any(inside(path, tmp) for tmp in fresh)]
    closed = ([path for path in closed_ancestors() if not any(inside(path, c) for c in hidden + fresh)]
              if as_root else [])
    # the outermost only (a folder inside a covered one is gone with it; the kit may be named twice)
    covered = [path for path in outermost(closed + hidden) if os.path.isdir(path)]
    # opened before anything covers them: bound back from these descriptors below
    environment = [(path, os.open(path, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)) for path in python_environment()
                   if any(inside(path, cover) for cover in covered + fresh)]
    for path in covered:  # writable until the environment's mount points are made in them
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
               f"size=4k,mode={'0755' if path in closed else '0555'}")
    if os.getpid() == 1:  # a fresh /proc shows only this PID namespace
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    for tmp in fresh:
        _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={limits.tmpfs_mb}m,nr_inodes={limits.tmpfs_inodes},mode=1777")
    workdir = "/tmp/work"
    os.mkdir(workdir, 0o700)
    os.chown(workdir, limits.uid, limits.uid)
    for path, fd in environment:  # read-only as the host is: a bind keeps its source's flags
        os.makedirs(path, 0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)
    for path in covered:
        _mount("none", path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    return workdir


O_PATH = getattr(os, "O_PATH", 0o10000000)


def inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies in it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def outermost(paths) -> list[str]:
    """`paths` less repeats and those inside another of them, in their order."""
    paths = list(paths)
    kept: list[str] = []
    for path in paths:
        if path not in kept and not any(inside(path, other) and other != path for other in paths):
            kept.append(path)
    return kept


@functools.cache
def python_environment() -> tuple[str, ...]:
    """The folders the interpreter imports from, as real paths, none inside another: its prefixes
    and the folders of sys.path inside them or named by `site` (standard library, site-packages).
    Not the grader's working directory, the kit's checkout or other folders on sys.path: what the
    student's kernel imports with the kit's environment, nothing of the grader's. (Cached: the
    template works it out before forking.)"""
    import site
    import sysconfig

    prefixes = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    named = {*prefixes, *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")),
             *site.getsitepackages()}
    if site.ENABLE_USER_SITE:
        named.add(site.getusersitepackages())
    found = {os.path.realpath(path) for path in named if path and os.path.isdir(path)}
    found |= {os.path.realpath(path) for path in sys.path if path and os.path.isdir(path)
              and any(inside(os.path.realpath(path), f) for f in found)}
    return tuple(outermost(sorted(found)))


def importable(path: str) -> bool:
    """Whether a sys.path entry belongs to the Python environment (see python_environment)."""
    real = os.path.realpath(path) if path else ""
    return bool(real) and any(inside(real, folder) for folder in python_environment())


@functools.cache
def closed_ancestors() -> tuple[str, ...]:
    """For each folder of the Python environment, the outermost folder above it that a sandbox uid
    may not enter (no search bit for others): covered in the child by a tmpfs holding only that
    folder of the environment (what lies there was out of the child's reach anyway)."""
    closed = set()
    for path in python_environment():
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            top = "/" + "/".join(parts[:depth])
            try:
                if not os.stat(top).st_mode & 0o001:
                    closed.add(top)
                    break
            except OSError:
                break
    return tuple(sorted(closed))


def _address_space_now() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def apply_rlimits(limits: ChildLimits, tasks_are_its_own: bool, tasks_counted: int | None = None) -> None:
    """tasks_are_its_own: no other process shares the child's uid (as root, its sandbox uid) or its
    user namespace (which RLIMIT_NPROC counts in), so the process limit is exact. tasks_counted:
    the uid's tasks as the grader counted them, where this child's /proc shows only its sandbox."""
    mib = 1 << 20
    memory = _address_space_now() + limits.memory_mb * mib
    for name, value in (
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * mib),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, limits.open_files),  # every pipe and socket holds kernel buffers
    ):
        resource.setrlimit(name, (value, value))
    # RLIMIT_NPROC counts every task of the real uid: as root the sandbox uid is ours alone; as an
    # ordinary user it also counts the user's own processes, so the child gets that many more.
    elsewhere = tasks_counted if tasks_counted is not None else tasks_of(os.getuid())
    processes = limits.processes + (0 if tasks_are_its_own else elsewhere)
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def tasks_of(uid: int) -> int:
    """Threads now running under `uid` (what RLIMIT_NPROC counts)."""
    count = 0
    for pid in processes():
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if line.startswith(("Uid:", "Threads:")))
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):  # gone meanwhile
            continue
    return count


# Environment variables a child keeps; everything else (CI tokens, cloud credentials, the grader's
# own settings) is removed before student code runs.
KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")


def clean_environment(home: str) -> None:
    """Remove the inherited environment and command line from where student code could read them:
    os.environ (whose data is posix.environ) with libc's environ, sys.argv, and the original blocks
    the kernel shows in /proc/self/environ and /proc/self/cmdline (a template forked from
    `autograder batch SUBMISSIONS --out DIR` carries the batch's folders there). Freed copies
    elsewhere in memory are not hunted down: run the grader without secrets in its environment
    (docs/threat-model.md)."""
    kept = {name: os.environ[name] for name in KEPT_ENVIRONMENT if name in os.environ}
    os.environ.clear()  # unsetenv() each: libc's environ no longer points into the original block
    os.environ.update(kept, HOME=home, TMPDIR=home)
    sys.argv[:], sys.orig_argv[:] = [""], []
    # arg_start, arg_end, env_start, env_end: fields 48 to 51, after the ")" of comm
    fields = stat_fields()
    for start, end in ((int(fields[45]), int(fields[46])), (int(fields[47]), int(fields[48]))):
        if 0 < start < end:
            ctypes.memset(start, 0, end - start)


def _empty_bounding_set() -> None:
    """No capability can come back, not even through a set-uid or file-capability program."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1


def drop_privileges(uid: int) -> None:
    _empty_bounding_set()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def die_with_parent() -> None:
    """After any credential change (which clears it): SIGKILL when the intermediate dies, and no
    way back to privileges through set-uid binaries."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def die_with_parent_signal() -> None:
    """For the template: exit when the grader dies, whoever it is running as."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0), "prctl(PDEATHSIG)")


def adopt_orphans() -> None:
    """In the template: a subreaper, so whatever a child leaves running (a double-forked setsid
    daemon) becomes the template's when the child ends, to be killed (kill_adopted). Where a child
    is PID 1 of its own namespace, its orphans die with it and none comes here."""
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def kill_adopted(own_children) -> None:
    """SIGKILL every process whose parent is the template but that the template did not fork:
    left behind by a child (their parent died), they would otherwise outlive it."""
    me = os.getpid()
    for pid in processes():
        if pid in own_children:
            continue
        try:
            if int(stat_fields(pid)[1]) == me:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
