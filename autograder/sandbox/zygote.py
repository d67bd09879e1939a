"""The warm template: a process that has imported torch (and nothing of the solution or the checks)
and forks one isolated child per request.

Requests arrive on a SOCK_SEQPACKET control socket as JSON with two file descriptors attached (the
child's end of its result socket and the write end of its output pipe); the reply is the pid of the
child's process group, which the parent kills on a time-out. Per request the zygote forks an
intermediate that starts a new session (and, as root, new PID/network/mount namespaces) and forks the
child proper; when the intermediate is killed the child follows (PDEATHSIG), and as PID 1 of its
namespace it takes every process it started with it.

The template is normally a fork of the grader taken before the grader imports `solution` (cheap:
torch is already loaded); where that is unsafe (solution already imported, or threads running, as
in a Jupyter kernel or a Dask worker) it is a fresh interpreter started with `python -m`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

from . import isolation, wire

UNSAFE_MODULES = ("solution", "autograder.checks", "autograder.reference")


def _prepare_template() -> None:
    import torch

    torch.set_num_threads(1)  # before any op: OpenMP pools don't survive fork
    from . import child, trainer  # noqa: F401  (children cannot import new modules)

    child.preload()
    x = torch.ones(4, 4, dtype=torch.float64)  # warm the kernels students' code will use
    (x @ x).exp().log().sum(1, keepdim=True).max().clamp(min=0).logsumexp(0)
    torch.einsum("ij,jk->ik", x, x).gather(1, torch.zeros(4, 1, dtype=torch.long)).where(x > 0, x)


def _run_intermediate(request: dict, fds: list[int], template: int) -> None:
    """Never returns. Becomes a session leader, isolates, forks the child and waits for it."""
    try:
        # Die with the template (which dies with the grader): a grader killed from outside (a
        # platform time-out, kill -9) must not leave a sleeping child behind; the child dies with us.
        isolation.die_with_parent()
        if os.getppid() != template:
            return
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        if request["namespaces"]:
            isolation.new_namespaces()
        pid = os.fork()
        if pid == 0:
            from .child import main

            main(request, fds[0], fds[1])
        os.close(fds[1])
        _, status = os.waitpid(pid, 0)
        # The child is gone: tell the parent how it ended (exit code or signal) on its socket.
        report = socket.socket(fileno=fds[0])
        report.settimeout(5)
        wire.send(report, {"type": "exit", "status": _describe_status(status)})
    finally:
        os._exit(0)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit code {os.WEXITSTATUS(status)}"


def serve(control: socket.socket) -> None:
    """The template's loop; exits when the parent closes the control socket."""
    _prepare_template()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # intermediates are reaped automatically
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    template = os.getpid()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        except (ConnectionError, OSError):
            return
        if not data:
            return
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            control.close()
            _run_intermediate(request, fds, template)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"pid": pid}).encode())


class Zygote:
    """Parent-side handle. `spawn(request, sock_fd, out_fd)` returns the child's process group id."""

    def __init__(self, control: socket.socket, process):
        self._control = control
        self._process = process  # a pid (fork) or a Popen (spawn)
        self._lock = threading.Lock()

    @classmethod
    def start(cls, mode: str = "auto") -> "Zygote":
        if mode == "auto":
            unsafe = any(name in sys.modules for name in UNSAFE_MODULES)
            mode = "spawn" if unsafe or threading.active_count() > 1 else "fork"
        parent_end, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if mode == "fork":
            import torch  # noqa: F401  (loaded once, shared copy-on-write with every child)

            pid = os.fork()
            if pid == 0:
                parent_end.close()
                try:
                    isolation.die_with_parent_signal()
                    serve(template_end)
                finally:
                    os._exit(0)
            template_end.close()
            return cls(parent_end, pid)
        process = subprocess.Popen(
            [sys.executable, "-m", "autograder.sandbox.zygote", str(template_end.fileno())],
            pass_fds=[template_end.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # e.g. a notebook cell's stderr
        )
        template_end.close()
        return cls(parent_end, process)

    def spawn(self, request: dict, sock_fd: int, out_fd: int) -> int:
        """Fork a child for `request`; returns its process group. A dead template (killed by the
        OOM killer, say) is replaced once by a fresh one."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    socket.send_fds(self._control, [json.dumps(request).encode()], [sock_fd, out_fd])
                    reply = self._control.recv(1 << 12)
                except OSError:
                    reply = b""
                if reply:
                    return json.loads(reply)["pid"]
                if attempt == 1:
                    self._restart()
        raise RuntimeError("the sandbox template died and could not be restarted")

    def _restart(self) -> None:
        self.close()
        fresh = Zygote.start("spawn")  # the grader has imported the checks by now: never fork it
        self._control, self._process = fresh._control, fresh._process

    def close(self) -> None:
        self._control.close()
        try:
            if isinstance(self._process, int):
                os.waitpid(self._process, 0)
            else:
                self._process.wait(timeout=10)
        except (ChildProcessError, subprocess.TimeoutExpired):
            pass


if __name__ == "__main__":  # spawn mode: python -m autograder.sandbox.zygote FD
    isolation.die_with_parent_signal()
    serve(socket.socket(fileno=int(sys.argv[1])))
