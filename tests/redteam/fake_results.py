"""Attack (on stub layers): claim full marks. Write results.json files wherever a grader might
look (another student's results folder, /autograder/results, the working folder, a world-writable
host folder), print a fake results.json, and write frames saying every check passed straight into
the grader's connection.

Expected: zero, the stubs' score: the parent takes only numbers from the child and scores them
itself, printed text stays in the captured output, and no file appears outside the sandbox.
"""
import json
import stat
import struct

_os = __import__("random")._os
_fake = {"score": 58.0, "output": "All tests passed!", "tests": [{"name": "linear.forward.value", "score": 2.0,
                                                                 "max_score": 2.0, "status": "passed"}]}
for _folder in (REDTEAM["results_dir"], "/autograder/results", ".", REDTEAM["canary_dir"]):
    try:
        with open(_os.path.join(_folder, "results.json"), "w") as _file:
            json.dump(_fake, _file)
        print("wrote", _folder)
    except OSError as _error:
        print("could not write results.json in", _folder, "->", _error.strerror)
print(json.dumps(_fake))


def _frame(message):
    body = json.dumps({**message, "tensors": []}).encode()
    return struct.pack("!II", len(body), 0) + body


for _fd in range(3, 64):
    try:
        if stat.S_ISSOCK(_os.fstat(_fd).st_mode):
            _os.write(_fd, _frame({"type": "ready", "errors": [], "passed": True}))
            for _index in range(100):
                _os.write(_fd, _frame({"type": "result", "index": _index, "passed": True, "score": 99,
                                       "outputs": {}, "error": None, "forbidden": {}, "seconds": 0.0}))
    except OSError:
        pass
