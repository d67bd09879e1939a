"""What student code did at run time that no layer needs: reported to the instructor, not scored.

The syntax scan (intake/forbidden.py) misses code that builds its names at run time; this sees the act.
Inside the child, a `sys.addaudithook` hook (it cannot be removed) records the interpreter's audit
events that reach into the interpreter or the OS — walking the object graph (how a submission
finds the hidden inputs while its cells load), reading frames and code objects, ctypes, loading
new modules, processes, sockets — and torch's switches that take the forbidden-API guard off
(`torch._C.DisableTorchFunction`, `torch.overrides._pop_mode_temporarily`, ...) are wrapped so
that a student's use of them is recorded too. Only while student code runs (`active`): the kit's
own code in between is not the student's. The child sends the names with each message and the
parent turns them into a notice for the instructor. Like the guard, it lives in a process the
student controls: a determined submission can erase its record (the syntax scan is the parent's
line), but no honest one triggers it (tests/integration/test_corpus.py).
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


# torch's switches that take the forbidden-API guard (sandbox/guard.py) off the stack or out of
# the way: (module, name). A student's call of one is recorded; torch's own calls (printing a tensor
# steps out of every mode) are not, nor the guard's, which holds the originals.
GUARD_SWITCHES = (
    ("torch._C", "_pop_torch_function_stack"), ("torch._C", "_pop_torch_dispatch_stack"),
    ("torch._C", "_unset_dispatch_mode"), ("torch._C", "_set_dispatch_mode"),
    ("torch._C", "_get_function_stack_at"), ("torch._C", "_get_dispatch_stack_at"),
    ("torch.overrides", "_pop_mode"), ("torch.overrides", "_pop_mode_temporarily"),
    ("torch.utils._python_dispatch", "_pop_mode"), ("torch.utils._python_dispatch", "_pop_mode_temporarily"),
    ("torch.utils._python_dispatch", "_disable_current_modes"),
    ("torch._C", "DisableTorchFunction"), ("torch._C", "DisableTorchFunctionSubclass"),
    ("torch._C", "_DisableTorchDispatch"), ("torch._C", "_ExcludeDispatchKeyGuard"),
)


def _called_by_student_code(audit: Audit) -> bool:
    audit._inside = True  # reading a frame's code is an audit event itself
    try:
        return sys._getframe(2).f_code.co_filename.startswith("<")  # 0: here, 1: the wrapper
    except ValueError:
        return True
    finally:
        audit._inside = False


def _noticed(audit: Audit, label: str, original):
    """original, recorded when student code calls it (or enters it, for a context manager type;
    the C types cannot be subclassed, so they are wrapped)."""
    if isinstance(original, type):
        class Noticed:
            def __init__(self, *args, **kwargs):
                if _called_by_student_code(audit):
                    audit.record(label)
                self._inner = original(*args, **kwargs)

            def __enter__(self):
                return self._inner.__enter__()

            def __exit__(self, *exc):
                return self._inner.__exit__(*exc)

        Noticed.__name__ = Noticed.__qualname__ = original.__name__
        return Noticed

    def noticed(*args, **kwargs):
        if _called_by_student_code(audit):
            audit.record(label)
        return original(*args, **kwargs)

    noticed.__name__ = noticed.__qualname__ = getattr(original, "__name__", label)
    return noticed


def install(audit: Audit) -> None:
    """Start recording for this process (the child, before any student code)."""
    import importlib

    sys.addaudithook(audit.hook)
    for module_name, name in GUARD_SWITCHES:
        module = importlib.import_module(module_name)
        original = getattr(module, name, None)
        if original is not None:
            setattr(module, name, _noticed(audit, f"{module_name}.{name}", original))
