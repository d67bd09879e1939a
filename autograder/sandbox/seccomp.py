"""The system-call filter every child installs after its own set-up, just before student code.

A child needs files, memory, threads, pipes and the Unix socket it was handed; it never needs to
make namespaces, mount, join another namespace, use the kernel keyrings, trace, load BPF or kernel
modules, or change how the kernel lays out its memory. Those calls are the usual
privilege-escalation surface (a user namespace gives its creator root inside it: mounts without
limits, netfilter), and a key added to a uid's keyring outlives the child and is readable by the
next child of that uid. They fail with EPERM; clone3 fails with ENOSYS because its flags live in
memory a filter cannot read, and glibc then falls back to clone, whose flags the filter checks.

In every mode, also where a child has no network namespace of its own (root without
CAP_SYS_ADMIN, as in Docker; an ordinary user without user namespaces; bubblewrap's children,
which share one): no socket but AF_UNIX (no TCP, UDP, raw or netlink socket: torch needs none),
and a Unix socket only as socketpair() makes it or as the child inherited it (its connection to
the grader): no bind, listen or connect, no sendto an address, no sendmsg. So a child reaches no
service of the machine (loopback, an abstract or a path socket) and offers none to another child.
And no System V IPC or POSIX message queue: they outlive their process (three 512 MB
shared-memory segments left behind are 1.5 GB past memory_mb) and are shared by every process of
the IPC namespace.

The filter is written with libseccomp (through `pyseccomp`) once in the warm template and kept as
compiled BPF; a child installs those bytes with one prctl (tens of microseconds). Where
libseccomp or its binding is missing the child runs without a filter and the result says so
(`extra_data.bounds`).
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

CLONE_NEWTIME, CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x80, 0x20000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x10000000, 0x20000000, 0x40000000
NAMESPACE_FLAGS = (CLONE_NEWTIME, CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                   CLONE_NEWPID, CLONE_NEWNET)
# personality() bits that weaken the address-space layout (no ASLR, executable data, page zero)
WEAKENING_PERSONALITY = (0x0040000, 0x0400000, 0x0200000, 0x0100000)

REFUSED = (
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # kernel keyrings (outlive the process, shared by every process of a uid)
    "add_key", "request_key", "keyctl",
    # other processes' memory, and the kernel's
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "bpf", "perf_event_open",
    "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "syslog", "acct", "swapon", "swapoff", "reboot", "quotactl", "lookup_dcookie",
    "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm",
    # io_uring runs operations the filter never sees; memfd files hold memory no process owns
    "io_uring_setup", "io_uring_enter", "io_uring_register", "memfd_create", "memfd_secret",
    # System V IPC and POSIX message queues: outlive the child, shared by its whole IPC namespace
    "shmget", "shmat", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
    "semctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    # sockets with an address: a service to reach, or one to offer another child (sendmsg's address
    # lives in memory a filter cannot read; the child's own connection needs only send and recv)
    "bind", "listen", "connect", "sendmsg", "sendmmsg",
)
AF_UNIX = 1
SOCKETS = ("AF_UNIX only, unnamed (no TCP, UDP, raw or netlink socket; no bind, listen or connect); "
           "no System V IPC or POSIX message queue")

# Where children share one PID namespace, /tmp and the uid (bubblewrap.py), a second filter: each
# child may signal, re-limit and reschedule only itself (not the template, not another child), and
# chmod (which would reopen the read-only /tmp) and pidfds of other processes are refused.
SHARED_REFUSED = ("chmod", "fchmod", "fchmodat", "fchmodat2", "pidfd_open", "pidfd_send_signal", "pidfd_getfd")
OWN_PROCESS_ONLY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "prlimit64",
                    "sched_setaffinity", "sched_setparam", "sched_setscheduler", "sched_setattr")
# (which, who) calls: only "this process" (which) with who 0 (itself)
OWN_PROCESS_WHICH = {"setpriority": 0, "ioprio_set": 1}

_libc = ctypes.CDLL(None, use_errno=True)
_program: bytes | None = None  # compiled in the template by prepare()
_why_missing = "not prepared"
_shared: tuple | None = None  # (audit arch, {name: number}) for the shared-sandbox filter


def _compile() -> bytes:
    import pyseccomp as seccomp

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    try:  # a binary search over the syscall numbers: every call of the child runs the filter
        rules.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    except (OSError, ValueError, AttributeError):  # libseccomp before 2.5: the linear list
        pass
    refuse = seccomp.ERRNO(errno.EPERM)
    for name in REFUSED:
        try:
            rules.add_rule(refuse, name)
        except (OSError, ValueError):  # unknown to this libseccomp or architecture: nothing to refuse
            continue
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    for bit in WEAKENING_PERSONALITY:
        rules.add_rule(refuse, "personality", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.NE, AF_UNIX))
    rules.add_rule(refuse, "sendto", seccomp.Arg(4, seccomp.NE, 0))  # send() passes no address
    read_end, write_end = os.pipe()
    try:
        with open(write_end, "wb", closefd=True) as sink:
            rules.export_bpf(sink)
        with open(read_end, "rb", closefd=False) as source:
            return source.read()
    finally:
        os.close(read_end)


def prepare() -> None:
    """In the grader or the template: compile the filter once (a child cannot load libseccomp)."""
    global _program, _why_missing, _shared
    if _program is not None:
        return
    try:
        _program = _compile()
        _shared = _syscall_numbers()
    except (ImportError, RuntimeError, OSError) as failure:  # no pyseccomp, or no libseccomp.so
        _program, _why_missing = None, f"{type(failure).__name__}: {failure}"


def _syscall_numbers() -> tuple:
    import pyseccomp as seccomp

    arch = seccomp.system_arch()
    names = (*SHARED_REFUSED, *OWN_PROCESS_ONLY, *OWN_PROCESS_WHICH)
    numbers = {name: seccomp.resolve_syscall(arch, name) for name in names}
    return arch, {name: number for name, number in numbers.items() if number >= 0}


def available() -> bool:
    return _program is not None


def why_unavailable() -> str:
    return "" if _program is not None else _why_missing


def describe() -> str:
    """For `extra_data.bounds` and `autograder doctor`: the filter, or why there is none."""
    return "system-call filter" if _program is not None else f"none ({_why_missing})"


def describe_sockets() -> str:
    """What a child may do with sockets and IPC: the socket filter, or what is open without it."""
    return SOCKETS if _program is not None else "any socket, System V IPC (no system-call filter)"


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


def install() -> bool:
    """In the child, after PR_SET_NO_NEW_PRIVS: the filter holds for it and everything it starts,
    and cannot be removed. False where there is no filter to install."""
    if _program is None:
        return False
    _load(_program)
    return True


def _load(bpf: bytes) -> None:
    buffer = ctypes.create_string_buffer(bpf, len(bpf))
    program = _SockFprog(len(bpf) // 8, ctypes.addressof(buffer))
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_SECCOMP): {os.strerror(code)}")


def _assemble(program: list) -> bytes:
    """Classic BPF from (code, jump if true, jump if false, k) tuples and label strings; a jump
    may name a label further on (BPF jumps only forward)."""
    positions, index = {}, 0
    for item in program:
        if isinstance(item, str):
            positions[item] = index
        else:
            index += 1
    out, index = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        code, true, false, k = item
        offsets = [positions[t] - index - 1 if isinstance(t, str) else t for t in (true, false)]
        out.append(struct.pack("=HBBI", code, *offsets, k & 0xFFFFFFFF))
        index += 1
    return b"".join(out)


def _shared_sandbox_program(pid: int) -> bytes:
    arch, numbers = _shared
    load, equal, at_least, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JMP|JGE|K, RET|K
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO
    low = 0 if sys.byteorder == "little" else 4  # an int argument is the low half of its 64-bit slot

    def argument(i: int) -> int:
        return 16 + 8 * i + low  # offsetof(struct seccomp_data, args[i])

    program = [(load, 0, 0, 4), (equal, 0, "allow", arch), (load, 0, 0, 0),
               (at_least, "deny", 0, 0x40000000)]  # x32 numbers: the main filter's business, refused here
    program += [(equal, "deny", 0, numbers[name]) for name in SHARED_REFUSED if name in numbers]
    program += [(equal, "own", 0, numbers[name]) for name in OWN_PROCESS_ONLY if name in numbers]
    program += [(equal, f"which-{name}", 0, numbers[name]) for name in OWN_PROCESS_WHICH if name in numbers]
    program += [(ret, 0, 0, allow),
                "own", (load, 0, 0, argument(0)),  # 0 (itself or its group), its pid, its group's -pid
                (equal, "allow", 0, 0), (equal, "allow", 0, pid), (equal, "allow", "deny", -pid)]
    for name, which in OWN_PROCESS_WHICH.items():
        program += [f"which-{name}", (load, 0, 0, argument(1)), (equal, 0, "deny", 0),
                    (load, 0, 0, argument(0)), (equal, "allow", "deny", which)]
    return _assemble(program + ["allow", (ret, 0, 0, allow), "deny", (ret, 0, 0, deny)])


def install_shared_sandbox_rules() -> bool:
    """In a child that shares its PID namespace with the template and other children, after
    install(): the second filter above, for this process and everything it starts."""
    if _shared is None:
        return False
    _load(_shared_sandbox_program(os.getpid()))
    return True
