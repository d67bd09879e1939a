"""Attack (second round): hold memory that no process owns. memfd files of 1 MB each (under the
file-size limit, and not mapped, so not in the address space) up to 2 GB; then the same through
System V shared memory segments (32 MB each, up to 1 GB), each attached, filled and detached.

Expected: memfd_create and shmget are refused ("Operation not permitted", the system-call filter,
in every mode); nothing is held, the honest score is kept.
"""
import ctypes

_os = __import__("random")._os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
_held, _files = 0, []
try:
    for _ in range(2048):
        _fd = _os.memfd_create("hoard") if hasattr(_os, "memfd_create") else -1
        _os.write(_fd, b"1" * (1 << 20))
        _files.append(_fd)
        _held += 1
except OSError as _error:
    print(f"memfd: {_held} MB, then {_error.strerror}")
_held = 0
for _ in range(32):
    _id = _libc.shmget(0, 32 << 20, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
    _address = _libc.shmat(_id, None, 0)
    if _id < 0 or _address in (None, ctypes.c_void_p(-1).value):
        print(f"shm: {_held} MB, then {_os.strerror(ctypes.get_errno())}")
        break
    ctypes.memset(_address, 1, 32 << 20)
    _libc.shmdt(ctypes.c_void_p(_address))
    _held += 32
    print(f"shm: holding {_held} MB", flush=True)
