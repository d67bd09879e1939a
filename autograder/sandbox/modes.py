"""Which of the five isolation modes this machine gives a child, and what each leaves open.

The parent's choice (the CLI's notice line, `autograder doctor`, the sandbox's session), kept apart
from the doing: isolation.py, bubblewrap.py and landlock.py make the walls; this module only tries
them (in forks) and names the strongest that holds. docs/threat-model.md describes each mode.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from . import bubblewrap, isolation, landlock, seccomp


@dataclass(frozen=True)
class Mode:
    """How children are isolated here (docs/threat-model.md describes each)."""

    # "namespaces" (root), "user-namespaces" (an ordinary user), "bubblewrap" (an ordinary user whose
    # user namespaces are refused but bwrap works), "uid" (root without namespaces), "user"
    name: str
    why: str = ""  # why nothing stronger: the call that failed

    @property
    def weak(self) -> bool:
        return self.name in ("uid", "user")

    def warning(self) -> str:
        """One line for stderr where student code is not fully isolated, else "": what holds, and
        what that leaves open (Landlock, where the kernel has it, closes most of it)."""
        confined = (f"confined by Landlock ({landlock.describe()}: it reads only the Python environment "
                    "and writes only its work folder)") if landlock.available() else ""
        # the system-call filter refuses every socket but AF_UNIX, connect and System V IPC (seccomp.py)
        seccomp.prepare()  # once per process: the sandbox uses the same
        network = "" if seccomp.available() else "UDP, named Unix sockets its uid may reach, System V IPC"
        # (what a child leaves running is killed: as root with its uid, else adopted by the template)
        still = "; ".join(filter(None, [landlock.left_open(), network]))
        still = f"; still open: {still}" if landlock.available() and still else ""
        missing = "" if landlock.available() else f" and Landlock is missing ({landlock.why_unavailable()})"
        if self.name == "user":
            if confined:
                return (f"autograder: notice: user namespaces refused here ({self.why}): student code runs under "
                        f"your uid, {confined}{still}; run `autograder doctor`")
            return ("autograder: warning: student code is NOT isolated here (user namespaces refused: "
                    f"{self.why}{missing}): a submission can read the solution, change your files and "
                    "reach the network; run `autograder doctor`")
        if self.name == "bubblewrap":
            return (f"autograder: notice: user namespaces are refused here ({self.why}); student code runs in "
                    "bubblewrap instead: cut off from the grader, the network, the kit and your files, but "
                    "submissions graded together share one process namespace, /tmp and your uid"
                    f"{'' if confined else missing}; run `autograder doctor`")
        if self.name == "uid":
            closed = isolation.closed_ancestors()
            if closed:  # no mount namespace here to bind the environment back in (see isolation.private_filesystem)
                still += (f"; the sandbox uids cannot enter {', '.join(closed)}, so student code imports only what "
                          "the grader loaded first (chmod o+x those folders, or install the environment elsewhere)")
            if confined:
                return (f"autograder: notice: root without namespaces here ({self.why}): submissions run under "
                        f"their own uid, {confined}{still}; run `autograder doctor`")
            return ("autograder: warning: root without namespaces here "
                    f"({self.why}{missing}): submissions run under their own uid, but see the network and every "
                    "world-readable file; run `autograder doctor`")
        return ""


@functools.cache
def mode() -> Mode:
    """The strongest isolation this process can give its children (checked once, in forks)."""
    if isolation.is_root():
        refused = isolation.namespaces_refused()
        return Mode("uid", refused) if refused else Mode("namespaces")
    return ordinary_user_mode()


def ordinary_user_mode(uid: int | None = None) -> Mode:
    """What an ordinary user gets: this process's user, or, from root, `uid`'s (`autograder doctor`)."""
    refused = isolation.user_namespaces_refused(uid)
    if not refused:
        return Mode("user-namespaces")
    without = bubblewrap.refused(uid)
    return Mode("user", f"{refused}; bubblewrap: {without}") if without else Mode("bubblewrap", refused)
