"""Attack: flood the output. At import, write 1 MB blocks to stdout and stderr until the file-size
limit stops them; then every Linear.forward prints another 100 KB.

Expected: the captured output is cut at [limits] output_kb; once the output file is full, the
prints in Linear.forward fail with 'File too large', costing linear (and train); nothing else.
"""
import sys

_os = sys.modules["os"]
_block = b"flood! " * 150_000
for _fd in (1, 2):
    try:
        for _ in range(100):
            _os.write(_fd, _block)
    except OSError:
        pass
_quiet_forward = Linear.forward


def _noisy_forward(self, x):
    print("x" * 100_000)
    return _quiet_forward(self, x)


Linear.forward = _noisy_forward
