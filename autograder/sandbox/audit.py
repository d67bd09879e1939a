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
    "object.__setattr__", "object.__delattr__", "function.__new__", "code.__new__", "ctypes.",
    "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "socket.connect", "socket.bind",
)
MAX_SEEN = 20
# Setting an attribute of a class or function is an audit event; honest notebooks do it all the
# time (`ReLU.backward = ...`, namedtuple's __module__). Only these names mean tampering.
SENSITIVE = frozenset({
    "__code__", "__class__", "__bases__", "__dict__", "__globals__", "__closure__", "__defaults__",
    "__kwdefaults__", "__getattribute__", "__torch_function__", "__builtins__",
})
# sys._getframe is used by the standard library to name what it creates (namedtuple, Enum), and
# libraries read code objects as they load (numpy's dispatch decorators): for these, only student
# code itself, or the modules that hand frames out, count. (Loading a module is no event: student
# code may import whatever its kernel could, see sandbox/child.py.)
FRAME_READERS = ("/inspect.py", "/traceback.py")


class Audit:
    def __init__(self):
        self.active = False
        self.seen: list[str] = []
        self._inside = False  # the hook's own sys._getframe raises an event too

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
        if not self.active or self._inside or not event.startswith(WATCHED):
            return
        name = args[1] if len(args) > 1 and isinstance(args[1], str) else "?"
        if event == "object.__getattr__":
            event = f"reading .{name}"
        elif event in ("object.__setattr__", "object.__delattr__"):
            if name not in SENSITIVE:
                return
            event = f"changing .{name}"
        if event.startswith(("sys._getframe", "reading .", "changing .")) and not self._called_from_student_code():
            return
        self.record(event)

    def _called_from_student_code(self) -> bool:
        self._inside = True
        try:
            caller = sys._getframe(2)  # 0: here, 1: the hook, 2: whoever called sys._getframe
            return caller.f_code.co_filename.startswith("<") or caller.f_code.co_filename.endswith(FRAME_READERS)
        except ValueError:
            return True
        finally:
            self._inside = False


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
