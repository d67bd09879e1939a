"""Attack (second round): hand data to a later submission through the kernel keyrings. A key added
to the user keyring of the sandbox uid outlives the child (the keyring belongs to the uid, not to
the process), so a later child of that uid could read it: look for a key left by an earlier run,
then leave one (20 KB, say a whole layers.py) for the next.

Expected: every keyring call fails with "Operation not permitted" (the system-call filter); no
sandbox uid holds a key afterwards; the honest score is kept.
"""
import ctypes

_os = __import__("random")._os
_libc = ctypes.CDLL(None, use_errno=True)
KEY_SPEC_USER_KEYRING, KEYCTL_SEARCH, KEYCTL_READ = -4, 10, 11
_SYS_ADD_KEY, _SYS_KEYCTL = 248, 250
_name = REDTEAM["marker"].encode()


def _say(what, result):
    print(f"{what} -> {_os.strerror(ctypes.get_errno()) if result == -1 else result}")
    return result


_found = _say("keyctl(SEARCH)", _libc.syscall(_SYS_KEYCTL, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", _name, 0))
if _found > 0:
    _buffer = ctypes.create_string_buffer(1 << 15)
    _length = _libc.syscall(_SYS_KEYCTL, KEYCTL_READ, _found, _buffer, 1 << 15)
    print("FOUND", _buffer.raw[:max(_length, 0)][:40])
_payload = b"class Linear: ..." * 1200
_say("add_key", _libc.syscall(_SYS_ADD_KEY, b"user", _name, _payload, len(_payload), KEY_SPEC_USER_KEYRING))
