"""Attack: list the machine's processes (/proc), to find the grader, the other students' children
and whatever else runs there, with their command lines.

Expected: the child sees no process but its own (a PID namespace of its own; elsewhere /proc's
other entries are out of its reach).
"""
_os = __import__("random")._os
_session, _others = _os.getsid(0), []
try:
    _pids = [name for name in _os.listdir("/proc") if name.isdigit()]
except OSError as _error:
    print("listing /proc ->", _error.strerror)
    _pids = []
for _pid in _pids:
    try:
        with open(f"/proc/{_pid}/stat") as _stat:
            _name, _fields = _stat.read().rsplit(")", 1)
    except OSError:
        continue
    if int(_fields.split()[3]) != _session:  # field 6: the session; a child's own processes share it
        _others.append(f"{_pid} {_name.split('(', 1)[1]}")
for _other in _others[:10]:
    print("OTHER", _other)
print(f"{len(_others)} other process(es) seen")
