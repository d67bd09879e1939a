"""`autograder doctor`: which isolation this machine gives student code, why, and how to do better.

Every answer comes from trying the real thing in a forked process (the calls the sandbox makes),
not from reading version numbers; the sysctls are read only to explain a refusal.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from . import bubblewrap, cgroups, isolation, landlock, modes, seccomp

NOBODY = 65534
SYSCTLS = {  # file under /proc/sys -> (value that refuses user namespaces, the command that allows them)
    "user/max_user_namespaces": ("0", "sudo sysctl -w user.max_user_namespaces=15000"),
    "kernel/unprivileged_userns_clone": ("0", "sudo sysctl -w kernel.unprivileged_userns_clone=1"),
    "kernel/apparmor_restrict_unprivileged_userns": (
        "1", "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0   # or grade as root"),
}
CONTAINER_COMMAND = ("run the grader as root in a container allowed to make namespaces: docker run "
                     "--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined ...")
MEANING = {
    "namespaces": "full isolation (own PID, network, mount and IPC namespaces, own uid, read-only host, "
                  "kit and submissions hidden)",
    "user-namespaces": "full isolation except a uid of its own (user namespace: own PID, network, mount "
                       "and IPC namespaces, read-only host, kit and submissions hidden)",
    "bubblewrap": "user namespaces refused, so the template runs in one bubblewrap sandbox (own PID, network "
                  "and IPC namespaces, read-only host, kit and submissions hidden, the grader out of reach); "
                  "children graded together share its PID namespace, /tmp and the uid",
    "uid": "own uid and rlimits, no namespaces: the host's /tmp (the work folder) and process list are shared; "
           "the filter and Landlock below are the rest of the walls",
    "user": "same uid as the grader, no namespaces: rlimits; the filter and Landlock below are the rest of the walls",
}


def _sysctl_refusing() -> tuple[str, str] | None:
    """(sysctl = value, command) of the first sysctl set to refuse unprivileged user namespaces."""
    for name, (refusing, command) in SYSCTLS.items():
        try:
            value = Path("/proc/sys", name).read_text().strip()
        except OSError:
            continue
        if value == refusing:
            return f"{name.replace('/', '.')} = {value}", command
    return None


def _ordinary_user_mode() -> modes.Mode:
    return modes.ordinary_user_mode(uid=NOBODY) if isolation.is_root() else modes.mode()  # as nobody, in forks


def _explain(mode: modes.Mode) -> str:
    line = f"{mode.name} — {MEANING[mode.name]}"
    if mode.weak and landlock.available():
        line += f"; but Landlock ({landlock.describe()}) keeps each child to the Python environment and its own folder"
    if mode.why:
        line += f"\n    because: {mode.why}"
        sysctl = _sysctl_refusing() if mode.name in ("user", "bubblewrap") else None
        if sysctl:
            line += f" ({sysctl[0]})"
    if mode.name == "bubblewrap":
        line += f"\n    bwrap: {bubblewrap.executable()}"
    return line


def _improvement(root: modes.Mode, user: modes.Mode, bounds: cgroups.SlotCgroups) -> str:
    """The one command that would improve isolation most from here."""
    if user.name in ("user", "bubblewrap"):
        sysctl = _sysctl_refusing()
        if sysctl:
            return sysctl[1]
        if user.name == "user" and not bubblewrap.executable():
            return ("sudo apt-get install bubblewrap   "
                    "# or dnf install bubblewrap: where it may make namespaces, the kit uses it")
        if root.name == "namespaces":
            return f"grade as root: sudo {_autograder()} batch SUBMISSIONS --out DIR"
        return CONTAINER_COMMAND
    if root.name == "uid":
        return CONTAINER_COMMAND
    if not landlock.available() or landlock.left_open():
        return ("a kernel with Landlock ABI 6 (Linux 6.12 or newer; ABI 4, TCP: 6.7) and, in a container, "
                "Docker 20.10.18 / 23.0 or newer (whose default profile allows Landlock)")
    if not seccomp.available():
        return "pip install pyseccomp   # and the system's libseccomp2 (apt-get install libseccomp2)"
    if not bounds.version:
        if isolation.is_root():
            return "mount the cgroup memory and pids controllers (v2, or v1 memory and pids hierarchies)"
        if Path("/run/systemd/system").is_dir():  # systemd is the init here (sd_booted's test)
            return (f"systemd-run --user --scope -p Delegate=yes {_autograder()} batch SUBMISSIONS --out DIR   "
                    "# a delegated cgroup bounds each child's memory; or grade as root")
        return "bound the grader's memory from outside (the container's memory limit), or grade as root"
    return "nothing: this is the strongest isolation the kit has"


def _landlock_line() -> str:
    if not landlock.available():
        return f"no — {landlock.why_unavailable()}; that leaves open: {landlock.left_open()}"
    still = landlock.left_open()
    return f"yes, {landlock.describe()}{'; ' + still if still else ''}"


def _environment_line(current: modes.Mode) -> str:
    """Where student code imports from, and whether a sandbox uid (as root) may read it: without a
    mount namespace to bind it back, a folder it cannot enter leaves it only what the template loaded."""
    folders = ", ".join(isolation.python_environment())
    closed = isolation.closed_ancestors() if isolation.is_root() else ()
    if closed and current.name == "uid":
        return (f"{folders} (read-only); NOT readable by the sandbox uids ({', '.join(closed)} is closed to "
                "other users): modules not loaded before grading fail to import; chmod o+x those folders "
                "or install the environment elsewhere (setup.sh: chmod -R a+rX on the venv)")
    return f"{folders} (read-only)"


def _autograder() -> str:
    """This kit's command as a path (sudo and systemd-run do not search the venv's PATH)."""
    beside = Path(sys.executable).parent / "autograder"
    return str(beside) if beside.is_file() else "autograder"


def diagnose(limits) -> str:
    """The text `autograder doctor` prints; `limits`: [limits] of the configuration in use."""
    current = modes.mode()
    if isolation.is_root():
        root, user = current, _ordinary_user_mode()
        root_line = _explain(root)
    else:
        root, user = modes.Mode("namespaces"), current
        root_line = (f"not checked (run `sudo {_autograder()} doctor`); usually namespaces, or uid in a "
                     "container without CAP_SYS_ADMIN")
    seccomp.prepare()
    # the bounds a child would get, from the same [limits] (what results' extra_data.bounds say)
    bounds = cgroups.SlotCgroups.create([0], *cgroups.per_child(limits), name=f"autograder-{os.getpid()}-doctor")
    bounds.close()
    lines = [
        f"this process: uid {os.getuid()}; isolation: {current.name}",
        f"as root:            {root_line}",
        f"as an ordinary user: {_explain(user)}",
        f"system-call filter: {'yes' if seccomp.available() else 'no — ' + seccomp.why_unavailable()}",
        f"socket filter: {seccomp.describe_sockets()}",
        f"Landlock (files, and by ABI the network and signals, in every mode): {_landlock_line()}",
        f"Python environment for student code: {_environment_line(current)}",
        f"memory and task bounds per child (cgroup): {bounds.describe()}",
        f"to improve: {_improvement(root, user, bounds)}",
    ]
    return "\n".join(lines)
