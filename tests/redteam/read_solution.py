"""Attack (on stub layers): get the reference layers by importing the solution package, reading
the kit's files, searching the disk for them, or finding them in memory; then run them.

Expected: nothing is found (the kit is hidden, the template never imported the solution); the
score stays at the stubs' zero.
"""
import gc
import sys
import time

_os = __import__("random")._os
_found = []
for _name in ("solution.layers", "solution", "autograder.checks.reference", "autograder.checks.softmax"):
    try:
        _found.append(("import " + _name, __import__("importlib").import_module(_name)))
    except Exception as _error:
        print("import", _name, "->", type(_error).__name__)
for _path in (_os.path.join(REDTEAM["kit_root"], "solution", "layers.py"),
              _os.path.join(REDTEAM["kit_root"], "autograder", "checks", "reference.py"),
              _os.path.join(REDTEAM["kit_root"], "autograder", "checks", "softmax.py"),  # the oracle's home
              _os.path.join(REDTEAM["kit_root"], "assignment", "nn_from_scratch.ipynb")):
    try:
        with open(_path) as _file:
            _found.append((_path, _file.read()))
    except OSError as _error:
        print("open", _path, "->", _error.strerror)
_deadline = time.monotonic() + 3
for _root in ("/work", "/autograder", "/home", "/srv", "/opt", "/tmp", "/var/tmp", _os.path.dirname(REDTEAM["kit_root"])):
    for _dir, _dirs, _files in _os.walk(_root):
        _dirs[:] = [d for d in _dirs if not d.startswith(".")] if time.monotonic() < _deadline else []
        for _name in _files:
            if _name.endswith(".py") and time.monotonic() < _deadline and _os.path.isfile(_os.path.join(_dir, _name)):
                try:
                    with open(_os.path.join(_dir, _name)) as _file:
                        _text = _file.read(200_000)
                except (OSError, UnicodeDecodeError):
                    continue
                if "class Softmax" in _text and "NotImplementedError" not in _text:
                    _found.append((_os.path.join(_dir, _name), _text))
for _obj in gc.get_objects():
    if isinstance(_obj, type) and _obj.__name__ == "Softmax" and _obj.__module__.startswith(("solution", "autograder")):
        _found.append(("memory", sys.modules.get(_obj.__module__)))
for _where, _what in _found:  # the first that defines the four classes wins
    print("FOUND", _where)
    try:
        if isinstance(_what, str):
            exec(_what)
        elif hasattr(_what, "Softmax"):
            globals().update({k: getattr(_what, k) for k in ("Linear", "ReLU", "Softmax", "NLLLoss")})
        else:
            continue
        break
    except Exception:
        continue
