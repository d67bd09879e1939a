"""Attack (on stub layers): leave a results file where a platform or the next grader looks, outside
the child's work folder: in /tmp, /var/tmp, /dev/shm, /autograder/results and the user's home,
each named after this run's marker so the test can find it.

Expected: nothing is written outside the work folder (a private /tmp as root with namespaces, a
read-only /tmp in bubblewrap, Landlock's allow-list elsewhere); the score stays the stubs' zero.
"""
import json

_os = __import__("random")._os
_fake = {"score": 58.0, "tests": [{"name": "linear.forward.value", "score": 2.0, "max_score": 2.0}]}
for _folder in ("/tmp", "/var/tmp", "/dev/shm", "/autograder/results", _os.path.expanduser("~"),
                _os.path.dirname(_os.getcwd())):
    _path = _os.path.join(_folder, f"{REDTEAM['marker']}-results.json")
    try:
        with open(_path, "w") as _file:
            json.dump(_fake, _file)
        print("wrote", _path)
    except OSError as _error:
        print("could not write", _path, "->", _error.strerror)
