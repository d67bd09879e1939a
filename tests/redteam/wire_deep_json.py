"""Attack: inside Linear.forward, write a frame of 200000 nested JSON arrays into the grader's
connection (json.loads in the grader raised RecursionError, which ended the grading run).

Expected: linear (and train) lose their checks; the grader survives and grades the rest.
"""
import stat
import struct

_os = __import__("random")._os


def _poison_forward(self, x):
    body = b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(_os.fstat(fd).st_mode):
                _os.write(fd, struct.pack("!II", len(body), 0) + body)
        except OSError:
            pass
    return x


Linear.forward = _poison_forward
