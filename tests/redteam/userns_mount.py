"""Attack (second round): make a user namespace from inside the child, become uid 0 there and mount
a tmpfs with no size limit: unshare(CLONE_NEWUSER | CLONE_NEWNS), PR_SET_DUMPABLE, write its own
uid_map, mount, then fill 64 MB. Also the raw clone() with the same flags, and unshare -r as a
program.

Expected: every step that needs a new namespace fails with "Operation not permitted" (the
system-call filter); the honest score is kept.
"""
import ctypes

_os = __import__("random")._os
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x20000


def _step(what, result):
    error = ctypes.get_errno() if result == -1 else 0
    print(f"{what} -> {_os.strerror(error) if error else 'ok'}")
    return result != -1


if _step("unshare(CLONE_NEWUSER|CLONE_NEWNS)", _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)):
    _libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: the uid_map file becomes writable
    for _name, _line in (("setgroups", "deny"), ("uid_map", f"0 {_os.getuid()} 1"),
                         ("gid_map", f"0 {_os.getgid()} 1")):
        try:
            with open(f"/proc/self/{_name}", "w") as _map:
                _map.write(_line)
        except OSError as _error:
            print(f"{_name}: {_error.strerror}")
    _target = _os.path.abspath("unlimited")
    _os.makedirs(_target, exist_ok=True)
    if _step("mount tmpfs", _libc.mount(b"none", _target.encode(), b"tmpfs", 0, b"size=100%")):
        with open(_os.path.join(_target, "fill"), "wb") as _fill:
            for _ in range(64):
                _fill.write(b"0" * (1 << 20))
        print("filled 64 MB outside every limit")
_child = _libc.syscall(56, CLONE_NEWUSER | 17, 0, 0, 0, 0)  # clone(flags | SIGCHLD): a raw fork
if _child == 0:
    _os._exit(0)
_step("clone(CLONE_NEWUSER)", _child)
if _child > 0:
    _os.waitpid(_child, 0)
_step("setns", _libc.setns(_os.open("/proc/self/ns/user", _os.O_RDONLY), 0))
