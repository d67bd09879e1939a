"""Attack (on stub layers): import `solution` from where the child's sys.path and working directory
lead. Graded from a checkout (`cd kit && python -m autograder grade ...`), the grader's working
directory is sys.path[0] of every child forked from it, and an editable install puts the checkout
on sys.path too: where those files are readable, `import solution.layers` is the reference.

Expected: no folder of the grader's or of the kit's on sys.path holds the solution a child can read,
nor does its working folder; the import fails and the score stays the stubs' zero.
"""
import sys

_os = __import__("random")._os
_importlib = __import__("importlib")
print("working in", _os.getcwd())
for _entry in [*sys.path, _os.getcwd()]:
    _layers = _os.path.join(_entry or _os.getcwd(), "solution", "layers.py")
    try:
        with open(_layers):
            print("ON THE PATH", _layers)
    except OSError:
        continue
sys.path.insert(0, _os.getcwd())  # as `python -m` would have put it
for _name in [name for name in sys.modules if name.split(".")[0] == "solution"]:
    del sys.modules[_name]
try:
    _importlib.invalidate_caches()
    _solution = _importlib.import_module("solution.layers")
    Linear, ReLU, Softmax, NLLLoss = _solution.Linear, _solution.ReLU, _solution.Softmax, _solution.NLLLoss
    print("FOUND", _solution.__file__)
except Exception as _error:
    print("import solution.layers ->", type(_error).__name__)
