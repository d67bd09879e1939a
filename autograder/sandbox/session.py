"""The parent side of the sandbox: run one submission's probes in isolated children.

`Sandbox.run` sends the student's cells to a child forked from the warm template (which holds every
probe, handed to it once per batch), then reads one result per probe. A probe that times out or
kills its child costs only itself: the parent kills the child's whole process tree and forks a new
child that resumes after it. A time-out also skips the rest of that probe's group (the same method
would hang again).
"""
from __future__ import annotations

import errno
import fcntl
import os
import queue
import signal
import socket
import tempfile
import threading
import time
from dataclasses import asdict

from ..records import Probe, ProbeOutcome, RunOutcome
from . import bubblewrap, cgroups, disk, isolation, landlock, modes, seccomp, trees, wire
from .zygote import Zygote

MAX_RESTARTS = 12  # children per submission; a run of crashes past this stops the submission
# Children started in one group (part): a method that kills its child in every check (os._exit, a
# segfault) costs its own part, not the restarts the other parts need.
MAX_RESTARTS_PER_GROUP = 3
# A child's frame (one check's outputs) may be at most this big. The checks' outputs are small (the
# largest, the train check's test outputs, is ~20 KB); a bigger frame is refused unread, so a child
# cannot fill the parent's memory with, say, a 256 MB tensor from every check.
CHILD_FRAME_BYTES = 4 << 20
MAX_CELL_ERRORS = 50  # cells' exceptions a child reports; more are only counted
# After a child died, how long to look for the template's death too (which closes its control
# socket at the same moment; a child's own crash leaves it open).
TEMPLATE_DEATH_PATIENCE = 0.2
REGRADED = ("graded a second time: the grader's sandbox stopped while this submission ran, through "
            "no fault of its own, and this is the grade of the run that followed")
REGRADED_TWICE = ("the grader's sandbox stopped twice while this submission ran; "
                  "checks that did not run count zero here: grade it again")  # for the instructor


class _Dead(Exception):
    """The child cannot go on; the message says why, for a student."""


class Sandbox:
    """Owns the warm template. Thread-safe: batch workers share one."""

    def __init__(self, limits, forbidden, hide=(), mode: str = "auto", slots: int = 8):
        self.limits = limits
        self.forbidden = {"modules": list(forbidden.modules), "functions": list(forbidden.functions),
                          "attributes": list(forbidden.attributes)}
        self.hide = tuple(str(p) for p in hide)
        self.as_root = isolation.is_root()
        # as root without namespaces (a container without CAP_SYS_ADMIN): uid + rlimits only; as
        # an ordinary user, namespaces where the kernel allows user namespaces
        self.isolation_mode = modes.mode()
        self.namespaces = self.isolation_mode.name in ("namespaces", "user-namespaces")
        # bubblewrap: the template and its children in one sandbox, whose hidden folders are fixed
        # when it starts; so one per set of folders to hide, the others on first use (bubblewrap.py)
        self.bubblewrap = self.isolation_mode.name == "bubblewrap"
        self._slots, self._templates, self._templates_lock = slots, {}, threading.Lock()
        self._uids: queue.Queue = queue.Queue()
        uids, self._uid_locks = (isolation.claim_uids(limits.sandbox_uid, slots) if self.as_root
                                 else (list(range(slots)), []))
        for uid in uids:
            self._uids.put(uid)
        seccomp.prepare()  # before the template forks from here: it inherits the compiled filter
        if self.bubblewrap:
            self.cgroups = cgroups.SlotCgroups(why="not in the bubblewrap mode: its /sys is read-only")
        else:
            self.cgroups = cgroups.SlotCgroups.create(uids, *cgroups.per_child(limits),
                                                      name=f"autograder-{os.getpid()}-{id(self):x}")
        self._zygote = None if self.bubblewrap else Zygote.start(
            mode, user_namespace=self.isolation_mode.name == "user-namespaces")
        self._probe_cache: dict = {}  # see _suite
        self._suite_messages: dict = {}  # suite -> what register_suite got, for templates started later
        if self.bubblewrap:
            self._template(())  # starts now (its interpreter loads torch while the grader builds its suite)

    @property
    def bounds(self) -> dict:
        """Which bounds hold for every child beyond the rlimits (docs/threat-model.md: how to tell)."""
        return {
            "seccomp": seccomp.describe(),
            "sockets": seccomp.describe_sockets(),
            "landlock": landlock.describe(),
            "cgroup": self.cgroups.describe(),
            "tmpfs_inodes": self.limits.tmpfs_inodes if self.namespaces else None,
            "open_files": self.limits.open_files,
        }

    @property
    def isolation(self) -> str:
        """The strongest isolation this machine allowed: see docs/threat-model.md."""
        return self.isolation_mode.name

    def _template(self, extra_hide: tuple) -> Zygote:
        if not self.bubblewrap:
            return self._zygote
        unhidden = tuple(sorted(_not_inside(extra_hide, self.hide)))  # () for every student of a batch
        with self._templates_lock:
            if unhidden not in self._templates:
                wrapper = bubblewrap.command(self.hide + unhidden, self._slots, self.limits.tmpfs_mb)
                fresh = Zygote.start(wrapper=wrapper)
                for suite, (message, encoded) in self._suite_messages.items():
                    fresh.register_suite(suite, message, encoded)
                self._templates[unhidden] = fresh
            return self._templates[unhidden]

    def _register_suite(self, suite: str, message: dict, encoded: tuple) -> None:
        """Every template gets every suite, also one started later (bubblewrap)."""
        with self._templates_lock:
            self._suite_messages[suite] = (message, encoded)
            for zygote in [self._zygote, *self._templates.values()]:
                if zygote is not None:
                    zygote.register_suite(suite, message, encoded)

    def close(self) -> None:
        for zygote in [self._zygote, *self._templates.values()]:
            if zygote is not None:
                zygote.close()
        self.cgroups.close()
        for lock in self._uid_locks:
            os.close(lock)
        self._uid_locks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, cells: list[dict], probes: list[Probe], extra_hide=()) -> RunOutcome:
        """The submission's run. A template that dies meanwhile (whoever's doing: another
        submission, the OOM killer) takes this submission's children with it, so the submission
        is graded again, once, from the start, and its notices say so: a dead template never
        costs a student points silently."""
        extra_hide = tuple(str(p) for p in extra_hide)
        for attempt in (1, 2):
            template = self._template(extra_hide)
            incarnation = template.running()
            result = self._run_in_a_slot(cells, probes, extra_hide)
            # only a child that died can have died with it (as root, children outlive their template)
            troubled = result.load_failure or any(o is not None and o.failure for o in result.outcomes)
            if not (troubled and template.ended_since(incarnation, patience=TEMPLATE_DEATH_PATIENCE)):
                if attempt == 2:
                    result.notices.append(REGRADED)
                return result
        result.instructor_notices.append(REGRADED_TWICE)
        return result

    def _run_in_a_slot(self, cells: list[dict], probes: list[Probe], extra_hide: tuple) -> RunOutcome:
        uid = self._uids.get()
        output = tempfile.TemporaryFile()
        fcntl.fcntl(output, fcntl.F_SETFL, fcntl.fcntl(output, fcntl.F_GETFL) | os.O_APPEND)
        try:
            return self._run(cells, probes, uid, output.fileno(), extra_hide)
        finally:
            self._uids.put(uid)
            output.close()

    def _request(self, uid: int, extra_hide: tuple, workdir: str | None) -> dict:
        limits = self.limits
        return {
            "as_root": self.as_root,
            "namespaces": self.namespaces,
            "isolation": self.isolation_mode.name,
            "uid_tasks": bubblewrap.tasks_of_this_user() if self.bubblewrap else None,
            "workdir": workdir,
            "seccomp": seccomp.available(),
            "landlock": landlock.available(),
            "cgroups": self.cgroups.procs_files(uid),
            "limits": asdict(isolation.ChildLimits(
                cpu_seconds=limits.cpu_seconds, memory_mb=limits.memory_mb,
                processes=limits.processes, file_size_mb=limits.file_size_mb,
                tmpfs_mb=limits.tmpfs_mb, tmpfs_inodes=limits.tmpfs_inodes, open_files=limits.open_files,
                uid=uid if self.as_root else os.getuid(), hide=self.hide + _not_inside(extra_hide, self.hide),
            )),
        }

    def _suite(self, probes: list[Probe]) -> str:
        """The template's name for this list of probes: every probe's steps with where its tensors
        start, the forbidden lists and all the tensors, the same for every submission of a batch, so
        handed to the template once (children find them in its memory). (The cache keeps the probes
        alive, so no other probe can take their ids.)"""
        key = tuple(map(id, probes))
        cached = self._probe_cache.get(key)
        if cached is None:
            tensors, index = [], []
            for probe in probes:
                index.append({"steps": list(probe.steps), "first": len(tensors), "count": len(probe.tensors)})
                tensors.extend(probe.tensors)
            suite = str(len(self._suite_messages))
            self._register_suite(suite, {"checks": index, "forbidden": self.forbidden}, wire.encode_tensors(tensors))
            # kept, as the templates keep the suite (a few lists in practice: the suite, --parts subsets)
            cached = self._probe_cache[key] = (tuple(probes), suite)
        return cached[1]

    def _run(self, cells, probes, uid, output_fd, extra_hide) -> RunOutcome:
        result = RunOutcome(outcomes=[None] * len(probes))
        suite = self._suite(probes)
        start, restarts, in_group = 0, 0, {}
        # one budget for the whole submission: code that sleeps just under every check's limit
        # must not hold a batch worker for checks × wall_seconds
        deadline = time.monotonic() + self.limits.submission_seconds
        while start < len(probes):
            if time.monotonic() >= deadline:
                _skip(result, range(start, len(probes)),
                      f"the submission used up its total time limit ({self.limits.submission_seconds:g} s)")
                break
            if restarts == MAX_RESTARTS:
                _skip(result, range(start, len(probes)), "the code crashed the grader too many times")
                break
            group = probes[start].group
            if in_group.get(group, 0) == MAX_RESTARTS_PER_GROUP:  # this part keeps crashing: skip its rest
                end = _group_end(probes, start)
                _skip(result, range(start, end), "earlier checks of this part crashed the grader too many times")
                start = end
                continue
            restarts += 1
            in_group[group] = in_group.get(group, 0) + 1
            job = {"cells": cells, "start": start, "max_cell_errors": MAX_CELL_ERRORS}
            start = self._one_child(job, suite, probes, uid, output_fd, extra_hide, result, deadline)
        result.output = _read_capped(output_fd, self.limits.output_kb * 1024)
        return result

    def _one_child(self, job, suite, probes, uid, output_fd, extra_hide, result, deadline: float) -> int:
        """Run probes from job["start"] in one child; returns where the next child must start."""
        workdir = None if self.namespaces or self.bubblewrap else tempfile.mkdtemp(prefix="autograder-child-")
        if workdir and self.as_root:
            os.chown(workdir, uid, uid)
        parent_end, child_end = socket.socketpair()
        try:
            pgid = self._template(extra_hide).spawn({**self._request(uid, extra_hide, workdir), "suite": suite},
                                                    child_end.fileno(), output_fd)
        finally:
            child_end.close()
        start = job["start"]
        try:
            wire.send(parent_end, job)
            first_timeout = max(p.wall_seconds for p in probes)
            try:
                ready = _expect(parent_end, "ready", min(time.monotonic() + first_timeout, deadline))
            except _Dead as dead:
                if start == 0:
                    result.load_failure = f"while running your cells: {dead}"
                    _skip(result, range(len(probes)), str(dead))
                    return len(probes)
                raise
            _note_audit(result, ready)
            if start == 0:
                errors, more = ready.get("errors"), ready.get("more_errors")
                if isinstance(errors, list):
                    result.cell_errors = [_error(e) for e in errors[:MAX_CELL_ERRORS] if isinstance(e, dict)]
                result.more_cell_errors = more if type(more) is int and 0 < more < 1 << 31 else 0
            for i in range(start, len(probes)):
                began = time.monotonic()
                try:
                    message, outs = _expect(parent_end, "result", min(began + probes[i].wall_seconds, deadline),
                                            index=i)
                except _Dead as dead:
                    result.outcomes[i] = ProbeOutcome(failure=str(dead), seconds=time.monotonic() - began)
                    # after a time-out the same method would hang again: skip the rest of its group
                    following = _group_end(probes, i) if "time limit" in str(dead) else i + 1
                    _skip(result, range(i + 1, following), "an earlier check of this part hit the time limit")
                    return following
                result.outcomes[i] = _outcome(message, outs)
                _note_audit(result, message)
            return len(probes)
        except wire.FrameTooLarge as job_size:  # the job itself (send refuses what a child would): say why, once
            result.load_failure = (f"your code is too large to send to the sandbox ({job_size} as the grader "
                                   f"sends it; the limit is {wire.MAX_JSON_BYTES >> 20} MB)")
            _skip(result, range(start, len(probes)), "your code is too large to run")
            return len(probes)
        except (_Dead, wire.WireError, OSError) as dead:
            result.outcomes[start] = ProbeOutcome(failure=str(dead))
            return start + 1
        finally:
            for kill in (os.killpg, os.kill):  # the group, and the leader in case setsid hadn't run yet
                try:
                    kill(pgid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if self.as_root:
                isolation.kill_processes_of(uid)
            parent_end.close()
            if workdir:
                trees.remove(workdir)  # what the child left: any depth, links, modes


def _not_inside(folders: tuple, hidden: tuple) -> tuple:
    """`folders` but those inside a hidden one (hidden with it). A batch's submissions all lie in
    its hidden input: naming each one's folder (submitted/alice/ps1) in the request would leave
    every student's id in the template's memory, for the children forked after."""
    def inside(folder: str, other: str) -> bool:
        folder, other = os.path.abspath(folder), os.path.abspath(other)
        return os.path.commonpath((folder, other)) == other

    return tuple(f for f in folders if not any(inside(f, h) for h in hidden))


def _skip(result: RunOutcome, indices, reason: str) -> None:
    for i in indices:
        result.outcomes[i] = ProbeOutcome(failure=f"not run: {reason}")


def _group_end(probes: list, start: int) -> int:
    """Index just past the run of probes sharing probes[start]'s group (a part)."""
    end = start
    while end < len(probes) and probes[end].group == probes[start].group:
        end += 1
    return end


def _expect(sock, kind: str, deadline: float, index: int | None = None):
    """Next frame of `kind`; _Dead with a student-readable reason if the child hung or died."""
    if deadline - time.monotonic() <= 0:
        raise _Dead("time limit exceeded")
    try:
        message, tensors = wire.receive(sock, deadline, CHILD_FRAME_BYTES)
    except socket.timeout:
        raise _Dead("time limit exceeded (the code did not finish in time)") from None
    except wire.FrameTooLarge:
        raise _Dead(f"your code returned outputs over {CHILD_FRAME_BYTES >> 20} MB "
                    f"(far larger than the tensors it was given)") from None
    except (wire.WireError, OSError, ValueError) as broken:
        raise _Dead(f"the process running your code stopped unexpectedly ({broken})") from None
    if message.get("type") == "exit":
        raise _Dead(_explain_exit(_text(message.get("status", ""), 40)))
    if message.get("type") != kind or (index is not None and message.get("index") != index):
        raise _Dead("your code wrote to the grader's connection; results could not be trusted")
    if kind == "ready":
        return message
    return message, tensors


def _explain_exit(status: str) -> str:
    reasons = {
        "SIGKILL": "it was killed (memory limit or too many processes?)",
        disk.STATUS: "it was stopped for using too much disk (the files it wrote, however hidden, went "
                     "past grading.toml's [limits] tmpfs_mb or tmpfs_inodes)",
        "SIGXCPU": "it used more CPU time than allowed",
        "SIGSEGV": "it crashed (segmentation fault, often a recursion that is too deep)",
        "SIGXFSZ": "it wrote a file larger than allowed",
        "SIGABRT": "it aborted (often out of memory)",
    }
    if status.startswith("exit code"):
        return f"your code ended the grader's process ({status}: sys.exit/os._exit or a crash)"
    return f"the process running your code ended with {status}: {reasons.get(status, 'a signal')}"


# Everything below reads a frame written by the child, that is by student code if it wants to: any
# field may have any JSON type (ints of 4000 digits, lists nested 900 deep, lone surrogates), and
# every string ends up in the report, so each is checked and cut. tests/integration/test_wire_fuzz.py fuzzes it.

def _text(value, limit: int = 500) -> str:
    """A string field as text of at most `limit` characters that any UTF-8 writer accepts (a lone
    surrogate, sent as "\\ud800", becomes '?'); another JSON value is named by its type."""
    if not isinstance(value, str):
        value = f"<{type(value).__name__}>" if isinstance(value, (list, dict)) else str(value)[:limit]
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _seconds(value) -> float:
    """A duration the child reports, or 0.0 when it is not a plain finite number (10**400, NaN)."""
    if type(value) not in (int, float):
        return 0.0
    try:
        seconds = float(value)
    except OverflowError:
        return 0.0
    return seconds if 0.0 <= seconds < float("inf") else 0.0


def _error(error) -> dict | None:
    """The child's description of a student exception: where, type, message, line (strings)."""
    if not isinstance(error, dict):
        return None
    return {key: _text(error.get(key, ""), 500 if key == "message" else 100)
            for key in ("where", "type", "message", "line")}


def _forbidden(forbidden) -> dict:
    """"Class.method" -> forbidden calls seen."""
    if not isinstance(forbidden, dict):
        return {}
    return {_text(method, 100): [_text(call, 100) for call in calls[:20]]
            for method, calls in list(forbidden.items())[:20] if isinstance(calls, list)}


def _note_audit(result: RunOutcome, message) -> None:
    """Add the run-time events the child reports (names of at most 80 characters, 20 in all)."""
    names = message.get("audit") if isinstance(message, dict) else None
    for name in names[:20] if isinstance(names, list) else ():
        name = _text(name, 80)
        if name not in result.audit and len(result.audit) < 20:
            result.audit.append(name)


def _outcome(message: dict, tensors: list) -> ProbeOutcome:
    outputs = {}
    described_outputs = message.get("outputs")
    for name, described in (described_outputs.items() if isinstance(described_outputs, dict) else ()):
        kind = described.get("kind") if isinstance(described, dict) else None
        if kind == "tensor":
            position = described.get("index")
            tensor = tensors[position] if isinstance(position, int) and 0 <= position < len(tensors) else None
            outputs[name] = tensor if tensor is not None else "dtype:unsupported"
        elif kind in ("none", "missing"):
            outputs[name] = kind
        else:
            outputs[name] = f"other:{_text(described.get('type', '?'), 40) if isinstance(described, dict) else '?'}"
    return ProbeOutcome(
        outputs=outputs,
        error=_error(message.get("error")),
        forbidden=_forbidden(message.get("forbidden")),
        seconds=_seconds(message.get("seconds")),
    )


def _read_capped(fd: int, cap: int) -> str:
    try:
        data = os.pread(fd, cap + 1, 0)
    except OSError as failure:
        if failure.errno != errno.EBADF:
            raise
        return ""
    text = data[:cap].decode("utf-8", errors="replace")
    return text + ("\n[... output truncated]" if len(data) > cap else "")
