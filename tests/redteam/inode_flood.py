"""Attack (second round): a million empty files in the work folder (on the private /tmp). Its size
limit counts data, not inodes: 1.2 M empty files took 1.2 GB of kernel memory.

Expected: the tmpfs's inode limit stops it after a few thousand files ("No space left on
device"); the honest score is kept.
"""
_os = __import__("random")._os
_made = 0
try:
    for _made in range(1_200_000):
        _os.close(_os.open(f"e{_made}", _os.O_CREAT | _os.O_WRONLY, 0o600))
except OSError as _error:
    print(f"empty files: {_made}, then {_error.strerror}")
else:
    print(f"empty files: {_made + 1}, no limit")
