"""Attack (on the reference): find other students in the memory the child inherited. On a batch
re-run the grader reads the roster and every earlier result (names, scores, printed output)
before it grades the new submissions; a warm template forked after that, or told where each
submission lies, hands all of it to every child. Look with gc.get_objects() and by reading the
process's own memory (/proc/self/mem, made readable with prctl(PR_SET_DUMPABLE, 1)), live objects
and freed leftovers alike, for REDTEAM["needles"]: other students' ids and what they printed.

Each needle travels in two halves and is never built whole here, so only a copy that was already
in memory can match. A control needle (this run's marker) is built whole on purpose: the memory
scan must find it, or it proves nothing.

Expected: "memory scanned ... control found" and no "LEAK" line; the score is the reference's.
"""
import ctypes
import gc

_os = __import__("random")._os
_control = "own-" + REDTEAM["marker"] + "-control"
_halves = [(first.encode(), second.encode()) for first, second in REDTEAM["needles"]]
_halves.append((_control[:6].encode(), _control[6:].encode()))
_seen = set()


def _search(blob, where):
    for number, (first, second) in enumerate(_halves):
        at = blob.find(first)
        while at != -1:
            if blob.startswith(second, at + len(first)):
                _seen.add((number, where))
                break
            at = blob.find(first, at + 1)


for _obj in gc.get_objects():  # live containers of the grader's objects: a roster, result dicts
    if isinstance(_obj, dict):
        _items = [*_obj.keys(), *_obj.values()]
    elif isinstance(_obj, (list, tuple)):
        _items = _obj
    else:
        continue
    for _item in _items:
        if type(_item) is str and len(_item) >= 6:
            _search(_item.encode("utf-8", "replace"), "gc")

_scanned = 0
try:
    ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: the uid change made /proc/self root's
    with open("/proc/self/maps") as _maps, open("/proc/self/mem", "rb", buffering=0) as _mem:
        for _line in _maps.read().splitlines():
            _fields = _line.split()
            _path = _fields[5] if len(_fields) > 5 else ""
            if not _fields[1].startswith("rw") or _path not in ("", "[heap]", "[stack]"):
                continue  # anonymous writable memory: where the interpreter keeps objects
            _start, _end = (int(_part, 16) for _part in _fields[0].split("-"))
            for _at in range(_start, _end, 1 << 20):
                try:
                    _mem.seek(_at)
                    _chunk = _mem.read(min((1 << 20) + 64, _end - _at))  # overlap: a needle across chunks
                except OSError:
                    break
                _scanned += len(_chunk)
                _search(_chunk, "memory")
except OSError as _error:
    print("memory unreadable:", _error)

print(f"memory scanned: {_scanned >> 20} MB; control found: {(len(_halves) - 1, 'memory') in _seen}")
for _number, _where in sorted(_seen):
    if _number < len(_halves) - 1:
        print(f"LEAK needle {_number} in {_where}")
