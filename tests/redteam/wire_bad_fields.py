"""Attack: inside Linear.forward, write a well-formed frame whose fields have the wrong types and
sizes ("seconds": "soon", "outputs" a list, a 100 KB error message, a forbidden-call list of 1000
long strings) for the check being run, then a "ready" frame with "errors": 5. (Such frames ended
the grading run with ValueError/TypeError, or flooded the report.)

Expected: linear (and train) lose their checks with messages of normal length; the grader
survives and grades the rest.
"""
import json
import stat
import struct

_os = __import__("random")._os


def _frame(message):
    body = json.dumps({**message, "tensors": []}).encode()
    return struct.pack("!II", len(body), 0) + body


def _forging_forward(self, x):
    for fd in range(3, 64):
        try:
            if not stat.S_ISSOCK(_os.fstat(fd).st_mode):
                continue
        except OSError:
            continue
        for index in range(60):
            _os.write(fd, _frame({"type": "result", "index": index, "outputs": ["h"], "seconds": "soon",
                                  "error": {"where": "w" * 100_000, "type": ["?"], "message": "m" * 100_000},
                                  "forbidden": {"Linear.forward": ["f" * 1000] * 1000}}))
        _os.write(fd, _frame({"type": "ready", "errors": 5}))
    return x


Linear.forward = _forging_forward
