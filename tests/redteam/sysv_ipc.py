"""Attack: leave System V shared memory behind: three 16 MB segments, filled and detached but never
removed (they outlive their process, holding host memory).

Expected, in every mode (also without an IPC namespace of the child's own): the system-call filter
refuses shmget, so no segment is made; none owned by a sandbox uid remains.
"""
import ctypes

_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
for _ in range(3):
    _id = _libc.shmget(0, 16 << 20, 0o1000 | 0o666)  # IPC_PRIVATE, IPC_CREAT
    _address = _libc.shmat(_id, None, 0)
    if _id >= 0 and _address not in (None, ctypes.c_void_p(-1).value):
        ctypes.memset(_address, 1, 16 << 20)
        _libc.shmdt(ctypes.c_void_p(_address))
    print("segment", _id)
