"""Attack: fill every writable place with 1 MB files named after REDTEAM["marker"]: the working
folder, /tmp, /var/tmp, /dev/shm, /run/lock, the home folder, a world-writable folder of the
host, another student's results folder and the kit itself.

Expected: only the child's private, size-limited tmpfs folders take any of it; after grading no
file with the marker exists anywhere on the host; the honest score is kept.
"""
_os = __import__("random")._os
_block = b"0" * (1 << 20)
_places = [".", "/tmp", "/var/tmp", "/dev/shm", "/run/lock", _os.path.expanduser("~"),
           REDTEAM["canary_dir"], REDTEAM["results_dir"], REDTEAM["kit_root"]]
for _place in _places:
    _written = 0
    try:
        for _i in range(200):
            with open(_os.path.join(_place, f"{REDTEAM['marker']}-{_i}"), "wb") as _file:
                _file.write(_block)
            _written += 1
    except OSError as _error:
        print(f"{_place}: {_written} MB, then {_error.strerror}")
