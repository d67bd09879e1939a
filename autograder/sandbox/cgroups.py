"""Memory and process bounds for a child as a whole: one cgroup per sandbox slot, made once.

rlimits bound each process of a child, not what no process owns: files in memfds or a tmpfs, the
inodes of a million empty files, System V segments, a fork bomb's memory (processes × memory_mb).
A memory cgroup charges all of it to the child (its OOM kill stays inside the child), a pids
cgroup bounds its tasks. The Sandbox makes one cgroup per slot (per sandbox uid as root) under the
grader's own cgroup when it starts, sets the limits once and reuses it for every child of that
slot; a child moves itself in (a write of "0" to cgroup.procs, v1: tasks) before it gives up
privileges.

cgroup v2 is used where the grader's cgroup delegates the memory and pids controllers (a systemd
user session, a container with its own cgroup namespace); v1 (memory and pids hierarchies, as on
the kit's own machines) where the grader may create groups in them (root). Elsewhere there is no
bound but the rlimits, and `describe()` says so.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

CGROUP_MOUNTS = "/proc/self/mountinfo"


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths = {}
    with open("/proc/self/cgroup") as groups:
        for line in groups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _mounts() -> dict[str, str]:
    """Controller (or "" for v2) -> where its hierarchy is mounted."""
    mounts = {}
    with open(CGROUP_MOUNTS) as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            fstype, super_options = fields[separator + 1], fields[separator + 3].split(",")
            if fstype == "cgroup2":
                mounts.setdefault("", fields[4])
            elif fstype == "cgroup":
                for controller in ("memory", "pids"):
                    if controller in super_options:
                        mounts.setdefault(controller, fields[4])
    return mounts


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as file:
        return file.read()


def per_child(limits) -> tuple[int, int]:
    """A child's cgroup bounds from [limits]: memory for its processes and for what its private
    tmpfs mounts (/tmp, /var/tmp, /dev/shm) may hold; its tasks and a few of the sandbox's own."""
    return (limits.memory_mb + 3 * limits.tmpfs_mb) << 20, limits.processes + 4


@dataclass
class SlotCgroups:
    """The cgroups of every slot, or none (`version` "" and `why` says what failed)."""

    version: str = ""  # "v1", "v2" or ""
    why: str = ""
    memory_bytes: int = 0
    tasks: int = 0
    _bases: list = field(default_factory=list)  # folders made for this grader, removed at close
    _procs: dict = field(default_factory=dict)  # slot -> cgroup.procs files

    @classmethod
    def create(cls, slots, memory_bytes: int, tasks: int, name: str) -> "SlotCgroups":
        """`name`: this grader's folder under its own cgroup (unique per grader process)."""
        made = cls(memory_bytes=memory_bytes, tasks=tasks)
        try:
            mounts, own = _mounts(), _own_paths()
        except (OSError, ValueError, IndexError) as failure:
            return cls(why=f"cannot read this process's cgroups ({failure})")
        reasons = []
        for version, attempt in (("v2", made._make_v2), ("v1", made._make_v1)):
            try:
                attempt(mounts, own, slots, name)
                made.version = version
                return made
            except OSError as failure:
                reasons.append(f"{version}: {failure.strerror or failure} ({failure.filename or ''})")
                made.close()
        return cls(why="; ".join(reasons))

    def _base(self, hierarchy: str, own: str, name: str) -> str:
        parent = os.path.join(hierarchy, own.lstrip("/"))
        _remove_abandoned(parent)
        base = os.path.join(parent, name)
        os.mkdir(base, 0o755)
        self._bases.append(base)
        return base

    def _make_v2(self, mounts, own, slots, name) -> None:
        if "" not in mounts or "" not in own:
            raise FileNotFoundError(2, "no cgroup2 hierarchy holds this process", mounts.get("", ""))
        base = self._base(mounts[""], own[""], name)
        controllers = _read(os.path.join(base, "cgroup.controllers")).split()
        if not {"memory", "pids"} <= set(controllers):
            raise PermissionError(1, "the memory and pids controllers are not delegated here", base)
        _write(os.path.join(base, "cgroup.subtree_control"), "+memory +pids")
        for slot in slots:
            group = os.path.join(base, f"slot-{slot}")
            os.mkdir(group, 0o755)
            _write(os.path.join(group, "memory.max"), str(self.memory_bytes))
            if os.path.exists(os.path.join(group, "memory.swap.max")):
                _write(os.path.join(group, "memory.swap.max"), "0")
            _write(os.path.join(group, "pids.max"), str(self.tasks))
            self._procs[slot] = [os.path.join(group, "cgroup.procs")]

    def _make_v1(self, mounts, own, slots, name) -> None:
        for controller in ("memory", "pids"):
            if controller not in mounts or controller not in own:
                raise FileNotFoundError(2, f"no cgroup v1 {controller} hierarchy", controller)
        memory = self._base(mounts["memory"], own["memory"], name)
        pids = self._base(mounts["pids"], own["pids"], name)
        for slot in slots:
            groups = [os.path.join(memory, f"slot-{slot}"), os.path.join(pids, f"slot-{slot}")]
            for group in groups:
                os.mkdir(group, 0o755)
            _write(os.path.join(groups[0], "memory.limit_in_bytes"), str(self.memory_bytes))
            if os.path.exists(os.path.join(groups[0], "memory.memsw.limit_in_bytes")):
                _write(os.path.join(groups[0], "memory.memsw.limit_in_bytes"), str(self.memory_bytes))
            _write(os.path.join(groups[1], "pids.max"), str(self.tasks))
            # "tasks", not "cgroup.procs": moving one thread skips the kernel's global threadgroup
            # lock, whose RCU grace period cost each child ~12 ms; the child is one thread then
            self._procs[slot] = [os.path.join(group, "tasks") for group in groups]

    def procs_files(self, slot) -> list[str]:
        """The files a child of `slot` writes "0" to (cgroup.procs, v1: tasks)."""
        return self._procs.get(slot, [])

    def describe(self) -> str:
        if not self.version:
            return f"none ({self.why})"
        return f"cgroup {self.version}: {self.memory_bytes >> 20} MB, {self.tasks} tasks per child"

    def close(self) -> None:
        """Remove the groups once their last children are gone (killing is asynchronous)."""
        deadline = time.monotonic() + 2
        for base in reversed(self._bases):
            while not _remove_group(base) and time.monotonic() < deadline:
                time.sleep(0.02)
        self._bases, self._procs = [], {}


def _remove_group(base: str) -> bool:
    """rmdir a grader's folder and its slot groups; False while a group still holds a process."""
    try:
        for entry in os.listdir(base):
            if entry.startswith("slot-"):
                os.rmdir(os.path.join(base, entry))
        os.rmdir(base)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _remove_abandoned(parent: str) -> None:
    """Groups left by graders that were killed (named autograder-<pid>-...; that pid is gone)."""
    for entry in os.listdir(parent):
        owner = entry.split("-")[1] if entry.startswith("autograder-") else ""
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            _remove_group(os.path.join(parent, entry))


def enter(procs_files: list[str]) -> None:
    """In the child, before namespaces and the privilege drop: move into its slot's groups."""
    for path in procs_files:
        _write(path, "0")
