"""Attack (second round): hold kernel memory through file descriptors: pipes (each can buffer
64 KB), as many as the process may open.

Expected: the open-file limit ([limits] open_files) stops it after a few dozen ("Too many open
files"); the honest score is kept.
"""
_os = __import__("random")._os
_pipes = []
try:
    while len(_pipes) < 100_000:
        _pipes.append(_os.pipe())
except OSError as _error:
    print(f"pipes: {len(_pipes)}, then {_error.strerror}")
else:
    print(f"pipes: {len(_pipes)}, no limit")
for _read, _write in _pipes:
    _os.close(_read)
    _os.close(_write)
