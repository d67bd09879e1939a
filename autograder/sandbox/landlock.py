"""Landlock: the kernel's allow-list for what a child may reach, which any process may put on itself
(no namespace, no privilege), in every mode, as root in a container too.

A child keeps: the Python environment read-only (what the student's kernel imports: the standard
library, site-packages, the system libraries), its own work folder read-write, /dev/null, the
random devices and its own /proc entries; nothing else is readable (the kit, the solution, the
course secret, other submissions, results, homes, the grader's /proc entries). By the kernel's
Landlock ABI: 1 files, 2 renaming across folders, 3 truncation, 4 TCP bind and connect (refused:
a child gets no TCP port), 5 device ioctls, 6 scoped abstract Unix sockets and signals (a child
reaches only its own processes). A kernel without Landlock, or a seccomp profile refusing it
(Docker before 20.10.18), leaves the child with the other walls only, and the grade says so
(`extra_data.bounds`, the notice line, `autograder doctor`).

The template works out the rules' paths once (`prepare`); a child opens each path, adds its rule
and restricts itself: a few tens of microseconds. The calls go through ctypes (the Python bindings
on PyPI are pre-releases or a few months old, and this is four system calls).
"""
from __future__ import annotations

import ctypes
import functools
import os

from .isolation import inside, outermost

# system calls (one number on every architecture: they came after the syscall tables were unified)
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

# file access rights, with the ABI that introduced each
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
ALL_FILE_RIGHTS_FROM_ABI_5 = (1 << 16) - 1
READ = READ_FILE | READ_DIR
# network (ABI 4) and scopes (ABI 6)
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

# Read-only besides the Python environment: what the interpreter and its libraries read from the
# system (shared libraries a lazily imported extension module loads, their cache, time zones,
# the CPU list OpenMP and os.cpu_count read); none of it is the grader's or a student's.
SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/localtime",
                    "/sys/devices/system/cpu", "/dev/urandom", "/dev/random", "/dev/zero")
READ_WRITE_FILES = ("/dev/null",)

O_PATH = getattr(os, "O_PATH", 0o10000000)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _call(number, *args) -> int:
    result = _libc.syscall(number if isinstance(number, ctypes.c_long) else ctypes.c_long(number), *args)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def abi() -> int:
    """The kernel's Landlock ABI version; OSError if Landlock is missing (ENOSYS: too old a kernel,
    EOPNOTSUPP: not enabled at boot, EPERM: refused by a seccomp profile)."""
    return _call(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))


_read_only: tuple[tuple[str, int], ...] = ()  # (path, rights): prepared in the template


@functools.cache
def _probe() -> tuple[int | None, str]:
    try:
        return abi(), ""
    except OSError as missing:
        return None, _explain(missing.errno)


def version() -> int | None:
    """The Landlock ABI a child gets here, None without Landlock (checked once per process)."""
    return _probe()[0]


def available() -> bool:
    return version() is not None


def why_unavailable() -> str:
    return _probe()[1]


def prepare(read_only=(), unreadable=()) -> None:
    """In the template: the folders and files a child may read besides its own: `read_only` (the
    Python environment, see isolation.python_environment) and the system's, less what lies in
    `unreadable` (the kit's own packages, should they be installed there). Landlock only allows, so
    a folder holding an unreadable one is allowed entry by entry."""
    global _read_only, _prepared
    if version() is not None:  # checked here once, not in every child
        _prepared = _Prepared(version())
    unreadable = [os.path.realpath(p) for p in unreadable]
    rules: dict[str, int] = {}
    for path in (*read_only, *SYSTEM_READ_ONLY):
        for allowed in _without(os.path.realpath(path), unreadable):
            rules[allowed] = READ if os.path.isdir(allowed) else READ_FILE
    _read_only = tuple((path, rules[path]) for path in outermost(rules))


def _without(path: str, unreadable: list[str]) -> list[str]:
    """`path` (if it exists) less the folders in `unreadable` that lie inside it: itself, or its
    entries, recursively (a path inside an unreadable folder stays: a venv in the kit's checkout)."""
    if not os.path.exists(path):
        return []
    if not any(inside(hidden, path) for hidden in unreadable):
        return [path]
    if path in unreadable:
        return []
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return []
    return [kept for name in names for kept in _without(os.path.join(path, name), unreadable)]


def _explain(code: int) -> str:
    import errno

    return {errno.ENOSYS: "this kernel has no Landlock (Linux 5.13 or newer has it)",
            errno.EOPNOTSUPP: "Landlock is not enabled in this kernel (boot option lsm=...,landlock)",
            errno.EPERM: "a system-call filter refuses it (Docker before 20.10.18 / 23.0)"}.get(
        code, os.strerror(code))


def in_force() -> list[str]:
    """What a child's Landlock domain bounds here, by ABI (empty without Landlock)."""
    abi_version = version()
    if abi_version is None:
        return []
    walls = ["files"]
    if abi_version >= 4:
        walls.append("TCP bind/connect")
    if abi_version >= 6:
        walls += ["abstract Unix sockets", "signals"]
    return walls


def describe() -> str:
    """For `extra_data.bounds` and `autograder doctor`."""
    if version() is None:
        return f"none ({why_unavailable()})"
    return f"ABI {version()}: {', '.join(in_force())}"


def left_open() -> str:
    """What a child can still do that Landlock would have stopped here ("" when nothing)."""
    abi_version = version()
    if abi_version is None:
        return "no file allow-list: every file its uid may read, and TCP, abstract sockets and signals"
    missing = [wall for abi_needed, wall in ((4, "TCP"), (6, "abstract Unix sockets and signals"))
               if abi_version < abi_needed]
    return f"Landlock ABI {abi_version} leaves {' and '.join(missing)} unbounded" if missing else ""


class _Prepared:
    """What every child's restrict() needs, built in the template: after a fork a child's first
    touch of a ctypes object costs page faults, so each child only fills in descriptors."""

    def __init__(self, abi_version: int):
        self.file_rights = FILE_RIGHTS_BY_ABI.get(abi_version, ALL_FILE_RIGHTS_FROM_ABI_5)
        self.attr = _RulesetAttr(handled_access_fs=self.file_rights,
                                 handled_access_net=NET_BIND_TCP | NET_CONNECT_TCP if abi_version >= 4 else 0,
                                 scoped=SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi_version >= 6 else 0)
        self.attr_size = ctypes.c_size_t(8 if abi_version < 4 else 16 if abi_version < 6 else 24)  # fields it knows
        self.rule = _PathBeneathAttr()
        self.args = (ctypes.c_long(CREATE_RULESET), ctypes.c_long(ADD_RULE), ctypes.c_long(RESTRICT_SELF),
                     ctypes.c_int(RULE_PATH_BENEATH), ctypes.c_uint32(0))


_prepared: _Prepared | None = None


def restrict(workdir: str) -> None:
    """In the child, after its set-up and before student code: from now on this process and its
    descendants reach only the prepared read-only paths, `workdir` (read-write) and its own /proc
    entries. Needs no_new_privs (isolation.die_with_parent). Raises OSError when it fails."""
    abi_version = version()
    if abi_version is None:
        raise OSError(f"Landlock is missing ({why_unavailable()})")
    prepared = _prepared or _Prepared(abi_version)
    create, add, restrict_self, path_beneath, no_flags = prepared.args
    ruleset = _call(create, ctypes.byref(prepared.attr), prepared.attr_size, no_flags)
    try:
        own_proc = f"/proc/{os.getpid()}"  # /proc/self resolves here: the child's own entries only
        rules = [*_read_only, (own_proc, READ), (workdir, prepared.file_rights)]
        rules += [(path, READ_FILE | WRITE_FILE | TRUNCATE) for path in READ_WRITE_FILES]
        rule, pointer = prepared.rule, ctypes.byref(prepared.rule)
        for path, rights in rules:
            try:
                fd = os.open(path, O_PATH | os.O_CLOEXEC)
            except OSError:  # gone, or out of this uid's reach anyway
                continue
            try:
                rule.allowed_access, rule.parent_fd = rights & prepared.file_rights, fd
                _call(add, ruleset, path_beneath, pointer, no_flags)
            finally:
                os.close(fd)
        _call(restrict_self, ruleset, no_flags)
    finally:
        os.close(ruleset)
