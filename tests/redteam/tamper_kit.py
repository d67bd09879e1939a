"""Attack: edit or delete the kit (grading.toml, the solution, the scorer), another student's
results and a world-writable canary file of the host.

Expected: every attempt fails; the files are byte for byte unchanged; the honest score is kept.
"""
_os = __import__("random")._os
_targets = [_os.path.join(REDTEAM["kit_root"], p) for p in ("grading.toml", "solution/layers.py", "autograder/scoring/score.py")]
try:
    _targets += [_os.path.join(REDTEAM["results_dir"], n) for n in _os.listdir(REDTEAM["results_dir"])]
except OSError as _error:
    print("list", REDTEAM["results_dir"], "->", _error.strerror)
_targets += [REDTEAM["canary_file"]]
for _path in _targets:
    for _what, _do in (("append", lambda p: open(p, "a").write("\n# tampered\n")),
                       ("chmod", lambda p: _os.chmod(p, 0o777)),
                       ("rename", lambda p: _os.rename(p, p + ".moved")),
                       ("delete", _os.unlink)):
        try:
            _do(_path)
            print("TAMPERED", _what, _path)
        except OSError as _error:
            print(_what, _path, "->", _error.strerror)
