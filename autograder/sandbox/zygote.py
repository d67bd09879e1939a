"""The warm template: a process that has imported torch (and nothing of the solution or the checks)
and forks one isolated child per request.

Requests arrive on a SOCK_SEQPACKET control socket as JSON with two file descriptors attached (the
child's end of its result socket and the write end of its output pipe); the reply is the pid of the
child's process group, which the parent kills on a time-out. Once per list of probes, a "suite"
request hands the template the checks and their tensors (one socket attached, the frame read from
it): every child finds them in the template's memory instead of receiving and decoding them. Per
request the zygote forks the child (where namespaces are allowed, as root or in the template's own
user namespace: into a new PID namespace) which starts a new session and makes new network, mount
and IPC namespaces; as PID 1 of its namespace it takes every process it started with it when it
dies. The zygote reaps it and reports how it ended on the child's result socket.

The template is normally a fork of the grader taken before the grader imports `solution` or the
checks (cheap: torch is already loaded); where that is unsafe (either already imported, or threads
running, as in a Jupyter kernel or a Dask worker) it is a fresh interpreter started with
`python -m`, as it always is inside bubblewrap.

The template dies with the *thread* that started it (PR_SET_PDEATHSIG is per thread): create a
Grader in a thread that outlives its use, e.g. the main thread or a dedicated worker thread.
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading

from . import bubblewrap, disk, guard, hugepages, isolation, seccomp, wire

# loaded in the grader, these would be in a forked template's memory: the reference solution, the
# oracles and checks (autograder.checks.*); then the template starts fresh instead
UNSAFE_MODULES = ("solution", "autograder.checks")


def _prepare_template() -> None:
    import torch

    torch.set_num_threads(1)  # before any op: OpenMP pools don't survive fork
    from . import child, trainer  # noqa: F401  (children cannot import new modules)

    child.preload()
    seccomp.prepare()  # a forked template has the grader's compiled filter already
    guard.warm_up()  # the kernels students' code will use, and the forbidden-API guard around them


def fork_into_pid_namespace() -> int:
    """os.fork(), except that the child is PID 1 of a new PID namespace. One fork per child instead
    of fork, unshare, fork (forking the torch-sized template is most of a child's cost); glibc's own
    fork, so the child's libc state is right (a raw clone() left it stale: forks inside the child
    hung when the template had threads)."""
    isolation.pid_namespace_for_next_child()
    pid = os.fork()
    if pid != 0:
        isolation.own_pid_namespace_for_next_child()  # so the next request can make another
    return pid


def _host_pid(pidfd: int) -> int:
    """The pid a pidfd refers to, as this process's PID namespace numbers it (from its fdinfo):
    how the grader learns a child's pid from a template that lives in another PID namespace."""
    with open(f"/proc/self/fdinfo/{pidfd}") as info:
        for line in info:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    raise OSError(f"no Pid in the fdinfo of pidfd {pidfd}")


def _run_child(request: dict, fds: list[int], template: int) -> None:
    """Never returns. In the forked child: session leader, isolated, then the student's run."""
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        # Die with the template (which dies with the grader): a grader killed from outside (a
        # platform time-out, kill -9) must not leave a child behind. In a new PID namespace the
        # parent is outside it (getppid() is 0) and the race is the parent's clean-up to catch.
        isolation.die_with_parent()
        if os.getppid() not in (template, 0):
            return
        os.setsid()
        if request["namespaces"]:
            isolation.new_namespaces(request.get("network"))
        from .child import main

        main(request, fds[0], fds[1], _suites[request["suite"]])
    finally:
        os._exit(0)


# suite id -> (the checks' steps and the forbidden lists, their input tensors): what every child of a
# batch needs, sent to the template once per list of probes rather than to each child. The same for
# every submission, so it says nothing about any student.
_suites: dict[str, tuple[dict, list]] = {}


def _receive_suite(request: dict, fds: list[int]) -> None:
    with socket.socket(fileno=fds.pop(0)) as source:
        _suites[str(request["suite"])] = wire.receive(source)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit code {os.WEXITSTATUS(status)}"


_watching: dict[int, int] = {}  # child pid -> a copy of its result socket, to report how it ended
_workdirs: bubblewrap.Workdirs | None = None  # in a bubblewrap sandbox: the children's working folders
# each child's disk use: its slot's tmpfs in bubblewrap (Workdirs), else its folder where no tmpfs of
# its own bounds it (children with namespaces have one)
_disks: disk.DiskPolice = disk.DiskPolice()
# whether a child without a PID namespace of its own ran: what it leaves running is adopted here
# (isolation.adopt_orphans), and killed when a child ends
_adopting = False
# Network namespaces, each held by an fd: those no child is in, and each running child's (returned
# to the free ones when the child is reaped, its whole PID namespace gone with it).
_free_networks: list[int] = []
_network_of: dict[int, int] = {}


def _take_network() -> int | None:
    """A network namespace for the next child; None: the child makes its own (as it always did)."""
    if _free_networks:
        return _free_networks.pop()
    try:
        return isolation.empty_network_namespace()
    except OSError:
        return None


def _reap(signum=None, frame=None) -> None:
    """SIGCHLD: tell each ended child's parent-side reader how it ended (exit code or signal)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        network = _network_of.pop(pid, None)
        if network is not None:
            _free_networks.append(network)
        over_disk = pid in _disks.killed
        fd = _watching.pop(pid, None)
        if fd is not None:
            report = socket.socket(fileno=fd)
            try:
                report.setblocking(False)  # never let a full or closed socket stall the template
                wire.send(report, {"type": "exit", "status": disk.STATUS if over_disk else _describe_status(status)})
            except OSError:
                pass
            finally:
                report.close()
        if _adopting:  # what the ended process left running is the template's now
            isolation.kill_adopted(_watching)
        _disks.release(pid)  # (in bubblewrap: its folder wiped, for the next child)


def serve(control: socket.socket, in_user_namespace: bool = False, bubblewrap_slots: int = 0) -> None:
    """The template's loop; exits when the parent closes the control socket. In a user namespace
    (see isolation.template_in_user_namespace) or a bubblewrap sandbox its pids mean nothing to the
    grader: each reply carries a pidfd of the child, which the grader turns into its own pid for
    the child. bubblewrap_slots: children at once in a bubblewrap sandbox (see bubblewrap.py)."""
    global _workdirs, _disks, _adopting
    isolation.adopt_orphans()
    if bubblewrap_slots:
        bubblewrap.enter_template()
        _disks = _workdirs = bubblewrap.Workdirs(bubblewrap_slots)
        in_user_namespace = True
    _prepare_template()
    # Every child would otherwise inherit the template's garbage-collector counters: when they
    # stood just below a full collection (which depends on what the grader allocated before the
    # fork, e.g. how many submissions it found), every child's first allocations walked the whole
    # torch-sized heap, writing each object's header and so copying most of the template's pages
    # (2.5x slower children at some class sizes). Frozen objects are never walked again.
    from . import child

    child.remember_kit_modules()
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    template = os.getpid()
    forked, collapsed = 0, False  # children, not requests (a suite is a request too)
    while True:
        disk.watch(control, _disks)  # until the next request comes
        if not collapsed and forked >= hugepages.COLLAPSE_AFTER_CHILDREN - 1:  # a batch: ~10x cheaper forks
            collapsed = True
            hugepages.collapse_anonymous_memory()
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        except (ConnectionError, OSError):
            return
        if not data:
            return
        request = json.loads(data)
        if request.get("type") == "suite":
            try:
                _receive_suite(request, fds)
                control.send(b'{"suite": true}')
            finally:
                for fd in fds:
                    os.close(fd)
            continue
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # register before reaping
        try:
            if _workdirs is not None:
                request["workdir"] = _workdirs.take(_reap)
            network = request["network"] = _take_network() if request["namespaces"] else None
            try:
                pid = fork_into_pid_namespace() if request["namespaces"] else os.fork()
            except OSError:
                if network is not None:
                    _free_networks.append(network)
                raise
            if pid == 0:
                control.close()
                _run_child(request, fds, template)
            forked += 1
            # (a bubblewrap sandbox's children share its one PID namespace: none has its own)
            _adopting = _adopting or not request["namespaces"]
            if network is not None:
                _network_of[pid] = network
            _watching[pid] = os.dup(fds[0])
            if not request["namespaces"]:
                _disks.assign(pid, request["workdir"], request["limits"], request["as_root"])
            if in_user_namespace:  # before the child can be reaped
                fds.append(os.pidfd_open(pid))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        reply = json.dumps({"pid": pid}).encode()
        if in_user_namespace:
            socket.send_fds(control, [reply], fds[2:])
        else:
            control.send(reply)
        for fd in fds:
            os.close(fd)


class Zygote:
    """Parent-side handle. `spawn(request, sock_fd, out_fd)` returns the child's process group id."""

    def __init__(self, control: socket.socket, process, user_namespace: bool = False, wrapper=None):
        self._control = control
        self._process = process  # a pid (fork) or a Popen (spawn)
        self._lock = threading.Lock()
        self._user_namespace = user_namespace
        self._suites: dict[str, tuple[dict, tuple]] = {}  # kept to hand a restarted template
        self._wrapper = wrapper
        self.incarnation = 0  # templates started after this one died (see ended_since)

    @classmethod
    def start(cls, mode: str = "auto", user_namespace: bool = False, wrapper: list[str] | None = None) -> "Zygote":
        """user_namespace: an ordinary user's template, in a user namespace of its own, so that
        its children get the namespaces root's get (isolation.template_in_user_namespace).
        wrapper: the template's whole command line, "{fd}" standing for the control socket's
        descriptor (bubblewrap.command: the template inside a bubblewrap sandbox; always spawned)."""
        if wrapper:
            mode = "spawn"
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
                    if user_namespace:
                        isolation.template_in_user_namespace()
                    serve(template_end, user_namespace)
                finally:
                    os._exit(0)
            template_end.close()
            return cls(parent_end, pid, user_namespace)
        fd = str(template_end.fileno())
        process = subprocess.Popen(
            [fd if word == "{fd}" else word for word in wrapper] if wrapper else
            [sys.executable, "-m", "autograder.sandbox.zygote", fd, *(["user-namespace"] if user_namespace else [])],
            pass_fds=[template_end.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # e.g. a notebook cell's stderr
        )
        template_end.close()
        return cls(parent_end, process, user_namespace, wrapper)

    def register_suite(self, suite: str, message: dict, encoded: tuple) -> None:
        """Give the template what every child of a batch gets (children name it by `suite` in their
        request): the checks in `message`, their tensors already encoded for the wire."""
        with self._lock:
            self._suites[suite] = (message, encoded)
            try:
                self._send_suite(suite)
            except OSError:  # a dead template: the next spawn restarts it, with every suite
                pass

    def _send_suite(self, suite: str) -> None:
        message, encoded = self._suites[suite]
        ours, theirs = socket.socketpair()
        with ours:
            try:
                socket.send_fds(self._control, [json.dumps({"type": "suite", "suite": suite}).encode()],
                                [theirs.fileno()])
            finally:
                theirs.close()
            wire.send(ours, message, encoded=encoded)  # as the template reads it: larger than a socket's buffer
        if not self._control.recv(1 << 12):
            raise ConnectionError("the sandbox template closed its control socket")

    def spawn(self, request: dict, sock_fd: int, out_fd: int) -> int:
        """Fork a child for `request`; returns its process group. A dead template (killed by the
        OOM killer, say) is replaced once by a fresh one."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    socket.send_fds(self._control, [json.dumps(request).encode()], [sock_fd, out_fd])
                    reply, pidfds, _, _ = socket.recv_fds(self._control, 1 << 12, 1)
                except OSError:
                    reply, pidfds = b"", []
                if reply:
                    try:
                        return _host_pid(pidfds[0]) if pidfds else json.loads(reply)["pid"]
                    finally:
                        for fd in pidfds:
                            os.close(fd)
                if attempt == 1:
                    self._restart()
        raise RuntimeError("the sandbox template died and could not be restarted")

    def running(self) -> int:
        """The incarnation of a running template (see ended_since): the one there, or a fresh one
        if it has ended (between submissions: a dead template costs the next one nothing)."""
        with self._lock:
            if self._ended():
                self._restart()
            return self.incarnation

    def ended_since(self, incarnation: int, patience: float = 0.0) -> bool:
        """Whether the template that ran at `incarnation` has ended: replaced since, or its control
        socket closed (waiting up to `patience` seconds for it to close: a dying template closes its
        descriptors, a child's among them, before the children it takes with it die)."""
        if patience:
            try:
                select.select([self._control], [], [], patience)
            except (OSError, ValueError):  # closed meanwhile: a restart
                pass
        with self._lock:
            return incarnation != self.incarnation or self._ended()

    def _ended(self) -> bool:
        """With the lock held, when nothing is due on the control socket: readable means closed."""
        try:
            return self._control.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _restart(self) -> None:
        self.incarnation += 1
        self.close()
        # spawn: the grader has imported the checks, never fork it
        fresh = Zygote.start("spawn", self._user_namespace, self._wrapper)
        self._control, self._process = fresh._control, fresh._process
        for suite in self._suites:
            self._send_suite(suite)

    def close(self) -> None:
        self._control.close()
        try:
            if isinstance(self._process, int):
                os.waitpid(self._process, 0)
            else:
                self._process.wait(timeout=10)
        except (ChildProcessError, subprocess.TimeoutExpired):
            pass


if __name__ == "__main__":  # spawn mode: python -m autograder.sandbox.zygote FD [user-namespace | bubblewrap SLOTS]
    isolation.die_with_parent_signal()
    in_user_namespace = sys.argv[2:] == ["user-namespace"]
    if in_user_namespace:  # first, while this interpreter has a single thread
        isolation.template_in_user_namespace()
    slots = int(sys.argv[3]) if sys.argv[2:3] == ["bubblewrap"] else 0
    serve(socket.socket(fileno=int(sys.argv[1])), in_user_namespace, slots)
