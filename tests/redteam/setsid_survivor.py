"""Attack: a double-forked daemon in its own session (setsid) that outlives grading and, after a
delay, writes a file into a world-writable folder of the host and appends to a canary file.

Expected: the honest score; the daemon dies with the child's PID namespace (as root), so after
the delay there is no process with its name and no file.
"""
import ctypes
import time

_os = __import__("random")._os
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        ctypes.CDLL(None).prctl(15, REDTEAM["marker"].encode()[:15], 0, 0, 0)
        time.sleep(REDTEAM["delay"])
        for _path in (_os.path.join(REDTEAM["canary_dir"], REDTEAM["marker"] + "-survivor"), REDTEAM["canary_file"]):
            try:
                with open(_path, "a") as _file:
                    _file.write("the survivor was here\n")
            except OSError:
                pass
    _os._exit(0)
_os.wait()
