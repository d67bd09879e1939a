"""Attack: hold far more than the working folder's share of disk (tmpfs_mb) where a walk of the
folder cannot see it: in a sub-folder of mode 0300 (nobody may list it, its owner included) and in
files deleted while held open; slowly (1 MB every 10 ms), so a watcher has time to look.

Expected: where the child has a tmpfs of its own (as root with namespaces, as an ordinary user
with user namespaces, in bubblewrap) the kernel refuses past tmpfs_mb, or the template reads the
tmpfs's usage (statfs: nothing hides from it) and kills the child; never more than a few times the
share is held.
"""
import time

_os = __import__("random")._os
_held, _open = 0, []
try:
    _os.mkdir("hidden", 0o300)
    for _number in range(960):
        if _number % 2:
            with open(f"hidden/{_number}", "wb") as _file:
                _file.write(bytes(1 << 20))
        else:
            _fd = _os.open(f"deleted-{_number}", _os.O_CREAT | _os.O_WRONLY, 0o600)
            _os.write(_fd, bytes(1 << 20))
            _os.unlink(f"deleted-{_number}")
            _open.append(_fd)
            if len(_open) > 32:  # under the open-file limit: the oldest is let go (and freed)
                _os.close(_open.pop(0))
        _held += 1
        if _held % 16 == 0:
            print(f"holding {_held} MB", flush=True)
        time.sleep(0.01)
    print(f"held {_held} MB: no limit")
except OSError as _error:
    print(f"held {_held} MB, then {_error.strerror}")
