"""What student code did at run time that no layer needs: reported to the instructor, not scored.

The syntax scan (forbidden.py) misses code that builds its names at run time; this sees the act.
Inside the child, a `sys.addaudithook` hook (it cannot be removed) records the interpreter's audit
events that reach into the interpreter or the OS — walking the object graph (how a submission
finds the hidden inputs while its cells load), reading frames and code objects, ctypes, loading
new modules, processes, sockets — and `torch._C.DisableTorchFunction` is wrapped so that switching
the forbidden-API guard off is recorded too. Only while student code runs (`active`): the kit's
own code in between is not the student's. The child sends the names with each message and the
parent turns them into a notice for the instructor. Like the guard, it lives in a process the
student controls: a determined submission can erase its record (the syntax scan is the parent's
line), but no honest one triggers it (tests/test_corpus.py).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

# Audit events (https://docs.python.org/3/library/audit_events.html) by name or prefix ("ctypes.").
WATCHED = (
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._getframe", "sys._current_frames",
    "sys._current_exceptions", "sys.settrace", "sys.setprofile", "sys.addaudithook", "object.__getattr__",
    "object.__setattr__", "object.__delattr__", "function.__new__", "code.__new__", "ctypes.", "import",
    "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "socket.connect", "socket.bind",
)
MAX_SEEN = 20


class Audit:
    def __init__(self):
        self.active = False
        self.seen: list[str] = []

    @contextmanager
    def watching(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def record(self, name: str) -> None:
        if self.active and name not in self.seen and len(self.seen) < MAX_SEEN:
            self.seen.append(name)

    def hook(self, event: str, args: tuple) -> None:
        if not self.active or not event.startswith(WATCHED):
            return
        if event == "import":
            event = f"import {args[0] if args and isinstance(args[0], str) else '?'}"
        elif event == "object.__getattr__" and len(args) > 1 and isinstance(args[1], str):
            event = f"reading .{args[1]}"
        elif event in ("object.__setattr__", "object.__delattr__") and len(args) > 1 and isinstance(args[1], str):
            event = f"changing .{args[1]}"
        self.record(event)


def install(audit: Audit) -> None:
    """Start recording for this process (the child, before any student code)."""
    import torch

    sys.addaudithook(audit.hook)
    original = torch._C.DisableTorchFunction

    class DisableTorchFunction:
        """torch._C.DisableTorchFunction, noticed (the C type cannot be subclassed)."""

        def __init__(self):
            self._inner = original()

        def __enter__(self):
            audit.record("torch._C.DisableTorchFunction")
            return self._inner.__enter__()

        def __exit__(self, *exc):
            return self._inner.__exit__(*exc)

    torch._C.DisableTorchFunction = DisableTorchFunction
