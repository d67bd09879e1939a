"""What one sandboxed child does, start to finish. Runs only inside a forked child.

enter the sandbox -> receive the job -> run the student's cells -> for each probe from `start`:
run it with the forbidden-API guard on, send the outputs -> exit. Every failure of student code is
reported as data; the parent decides what it costs.
"""
from __future__ import annotations

import builtins
import io
import os
import signal
import socket
import sys
import time
import traceback
import types

import torch

from . import audit, cgroups, isolation, landlock, seccomp, wire
from .guard import ForbiddenGuard
from .probe import MISSING, ProbeError, checked_method, class_names, run_probe

# Loaded by the template before the fork, so that importing them costs a child nothing. Student
# code may import anything else of the Python environment too (read-only, see isolation.py), as in
# the student's kernel; only the kit's own packages are refused.
PRELOADED = (
    "torch", "math", "numpy", "random", "itertools", "functools", "collections", "typing",
    "dataclasses", "operator", "statistics", "time", "copy", "abc", "string", "warnings", "enum",
)
KIT_PACKAGES = ("solution", "autograder")


def preload() -> None:
    """In the template: load what most submissions import, confine the import system to the Python
    environment and work out the child's Landlock rules (both once, not per child)."""
    for name in PRELOADED:
        __import__(name)
    _confine_imports()
    landlock.prepare(isolation.python_environment(), unreadable=_kit_folders())


def _kit_folders() -> list[str]:
    """The kit's checkout and its packages' folders (in site-packages too, for a kit installed there)."""
    import importlib.util

    # not autograder.files: a bubblewrap template can import only the sandbox package
    kit_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    # a checkout or an unzipped kit; installed in site-packages, that folder is the environment's
    folders = [kit_root] if os.path.isfile(os.path.join(kit_root, "grading.toml")) else []
    for name in KIT_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        folders += list(spec.submodule_search_locations or []) if spec else []
    return folders


def _confine_imports() -> None:
    """sys.path keeps only the Python environment's folders (not the grader's working directory, a
    kit checkout or PYTHONPATH's other folders: a submission found `solution` there once), and the
    import hooks that find the kit's packages (an editable install's) are dropped."""
    import importlib.machinery

    sys.path[:] = [path for path in sys.path if isolation.importable(path)]
    for key in [key for key in sys.path_importer_cache if not isolation.importable(key)]:
        del sys.path_importer_cache[key]

    def finds_the_kit(finder) -> bool:
        try:
            return any(finder.find_spec(name, None) is not None for name in KIT_PACKAGES)
        except Exception:
            return False

    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if finder is importlib.machinery.PathFinder or not finds_the_kit(finder)]


def _friendly_import(name, globals=None, locals=None, fromlist=(), level=0):
    """Everything imports as usual but the kit's own packages (for kindness, not security: their
    files are out of reach anyway, see isolation.py and landlock.py)."""
    if level == 0 and name.split(".")[0] in KIT_PACKAGES:
        raise ImportError(f"module '{name}' is not available inside the grader: it is the grader's own")
    return builtins.__import__(name, globals, locals, fromlist, level)


def _student_namespace() -> dict:
    safe_builtins = dict(vars(builtins))
    safe_builtins["__import__"] = _friendly_import
    module = types.ModuleType("submission")
    module.__dict__["__builtins__"] = safe_builtins
    sys.modules["submission"] = module
    return module.__dict__


def _error_record(where: str, error: BaseException) -> dict:
    """Type, message and the last line of the student's own code that was running."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<")]
    line = f"{frames[-1].filename[1:-1]}, line {frames[-1].lineno}" if frames else ""
    try:
        message = str(error)[:500]
    except Exception:  # the student's exception class can break str() too
        message = "(the error message could not be shown)"
    return {"where": where[:100], "type": type(error).__name__[:100], "message": message, "line": line[:100]}


_kit_modules: tuple[str, ...] = ()  # the kit's modules in sys.modules, listed by the template


def remember_kit_modules() -> None:
    """In the template, once everything is imported: which modules _forget_kit_modules drops. A
    child walking sys.modules itself writes the reference count of every name (~1,100), each a
    copy-on-write page fault: 2.5-7 ms a child, against 0.15 ms for the list."""
    global _kit_modules
    _kit_modules = tuple(name for name in sys.modules if name.split(".")[0] in KIT_PACKAGES)


def _forget_kit_modules() -> None:
    """Drop the kit's modules from sys.modules (this code keeps its own references), so student
    code cannot simply look up and patch the guard. Not a wall (frames and gc still reach them),
    but it turns a one-liner into deliberate tampering."""
    for name in _kit_modules or [n for n in sys.modules if n.split(".")[0] in KIT_PACKAGES]:
        sys.modules.pop(name, None)


def _compile(cell: dict):
    try:
        return compile(cell["source"], f"<{cell['label']}>", "exec")
    except (MemoryError, RecursionError):  # the parser's own stack, not the student's memory
        raise SyntaxError("the code is nested too deeply for Python to read it") from None


# Records what student code does at run time that no layer needs; installed by main().
AUDIT = audit.Audit()


def load_cells(cells: list[dict], max_errors: int) -> tuple[dict, list[dict], int]:
    """Run the cells; returns the namespace, the first `max_errors` cells' errors, and how many
    more cells raised (40 000 raising cells must not make the "ready" frame too large to send)."""
    namespace, errors, more = _student_namespace(), [], 0
    for cell in cells:
        try:
            with AUDIT.watching():  # off before the handler below reads the traceback
                exec(_compile(cell), namespace)
        except BaseException as error:  # SystemExit and KeyboardInterrupt too: a cell just stops
            if len(errors) < max_errors:
                errors.append(_error_record(cell["label"], error))
            else:
                more += 1
    return namespace, errors, more


def _describe_outputs(outputs: dict) -> tuple[dict, tuple[list[dict], bytes]]:
    """The outputs' descriptions, and their tensors encoded for the wire."""
    described, specs, blobs = {}, [], []
    for name, value in outputs.items():
        if issubclass(type(value), torch.Tensor):  # type(), not isinstance(): __class__ can be faked
            try:
                spec, blob = wire.encode_tensor(value)  # here, so a hostile subclass fails here
            except Exception:
                described[name] = {"kind": "other", "type": type(value).__name__}
            else:
                specs.append(spec)
                blobs.append(blob)
                described[name] = {"kind": "tensor", "index": len(specs) - 1}
        elif value is MISSING:
            described[name] = {"kind": "missing"}
        elif value is None:
            described[name] = {"kind": "none"}
        else:
            described[name] = {"kind": "other", "type": type(value).__name__}
    return described, (specs, b"".join(blobs))


def run_checks(sock, namespace: dict, job: dict, tensors: list) -> None:
    wanted = class_names(step for check in job["checks"] for step in check["steps"])
    classes = {name: namespace[name] for name in wanted if isinstance(namespace.get(name), type)}
    forbidden = job["forbidden"]
    # entered around each student call (the trainer stops asking after its first epochs); what it
    # saw is filed under the check and the method that was running
    guard = ForbiddenGuard(forbidden["modules"], forbidden["functions"], forbidden["attributes"])
    # tensors the cells made at module level are the student's own, made before any guard
    guard.hold({name: value for name, value in namespace.items() if not name.startswith("__")}, depth=3)
    for index in range(job["start"], len(job["checks"])):
        check = job["checks"][index]
        local = [t.clone() for t in tensors[check["first"]:check["first"] + check["count"]]]
        guard.hold(local)
        guard.new_probe(checked_method(check["steps"]))
        hits: dict[str, list[str]] = {}

        def guarded_call(where, fn, args, hits=hits):  # this check's hits, bound now
            try:
                return guard.call(where, fn, args)
            finally:
                found = guard.take()
                if found:
                    seen = hits.setdefault(where, [])
                    seen.extend(h for h in found if h not in seen)
                for note in guard.unseen:  # the guard undone: for the instructor, with the audit
                    AUDIT.record(note)
                guard.unseen.clear()

        started = time.perf_counter()
        error = None
        outputs: dict = {}
        try:
            with AUDIT.watching():
                outputs = run_probe(classes, check["steps"], local, guarded_call)
        except ProbeError as failure:
            error = _error_record(failure.where, failure.error)
        except BaseException as failure:  # SystemExit etc. raised by student code
            error = _error_record("student code", failure)
        sys.stdout.flush()
        sys.stderr.flush()
        described, encoded = _describe_outputs(outputs)
        wire.send(sock, {
            "type": "result", "index": index, "outputs": described, "error": error,
            "forbidden": hits, "seconds": time.perf_counter() - started, "audit": AUDIT.seen,
        }, encoded=encoded)


def _redirect_output(output_fd: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the file-size limit a print fails, not the child
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True, errors="replace")
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True, errors="replace")


def enter_sandbox(request: dict, keep_fds: list[int]) -> None:
    limits = isolation.ChildLimits(**request["limits"])
    as_root = request["as_root"]
    cgroups.enter(request["cgroups"])  # first: while the cgroup file system is writable, as root
    workdir = isolation.private_filesystem(limits, as_root) if request["namespaces"] else request["workdir"]
    isolation.clean_environment(workdir)
    # Close every inherited descriptor but ours, however high (an open file of the grader's would
    # bypass the uid drop): the gaps below, between and above the kept ones. Before the rlimits,
    # which lower the open-file limit that SC_OPEN_MAX reports.
    previous = 2
    for fd in sorted(keep_fds) + [max(os.sysconf("SC_OPEN_MAX"), max(keep_fds) + 1)]:
        os.closerange(previous + 1, fd)
        previous = fd
    # an ordinary user's child, in its template's user namespace: one more of its own, in which
    # RLIMIT_NPROC counts only this child's tasks (as the sandbox uid does as root)
    user_namespace = request["namespaces"] and not as_root
    if user_namespace:
        isolation.own_user_namespace()
    isolation.apply_rlimits(limits, tasks_are_its_own=as_root or user_namespace, tasks_counted=request.get("uid_tasks"))
    if as_root:
        isolation.drop_privileges(limits.uid)
    elif user_namespace:
        isolation.drop_capabilities()
    isolation.die_with_parent()
    os.chdir(workdir)
    if request.get("landlock"):  # after every mount (a Landlock domain cannot mount), before the filter
        landlock.restrict(workdir)
    if request["seccomp"] and not seccomp.install():  # last: the set-up above needs mount, unshare
        raise RuntimeError(f"the system-call filter is missing in the template ({seccomp.why_unavailable()})")
    if request["seccomp"] and request.get("isolation") == "bubblewrap":  # one PID namespace for all children
        seccomp.install_shared_sandbox_rules()


def main(request: dict, sock_fd: int, output_fd: int, suite: tuple[dict, list]) -> None:
    """Never returns. suite: the checks and their tensors, from the template's memory."""
    try:
        _redirect_output(output_fd)
        enter_sandbox(request, [sock_fd, output_fd])
        sock = socket.socket(fileno=sock_fd)
        job, _ = wire.receive(sock)
        job.update(suite[0])
        tensors = suite[1]
        _forget_kit_modules()
        audit.install(AUDIT)
        namespace, errors, more = load_cells(job["cells"], job["max_cell_errors"])
        sys.stdout.flush()
        wire.send(sock, {"type": "ready", "errors": errors, "more_errors": more, "audit": AUDIT.seen})
        run_checks(sock, namespace, job, tensors)
        wire.send(sock, {"type": "done"})
    except BaseException as failure:  # a broken sandbox set-up: say so on stderr, which the parent keeps
        try:
            os.write(2, f"sandbox: {type(failure).__name__}: {failure}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(0)
