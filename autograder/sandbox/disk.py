"""Each child's disk use where no tmpfs of its own bounds it: counted by the template, which kills
a child past its share.

As root without namespaces (the `uid` mode, Docker's defaults on Gradescope) or as an ordinary user
without user namespaces, a child's working folder is a folder of the host's /tmp: RLIMIT_FSIZE
bounds each file, nothing bounds them all, and a full disk would cost the results of every
submission graded there. So, four times a second while children run, the template counts each
one's folder (blocks in use and entries, until over its share) and the files its processes hold
open after deleting them, and kills a child over [limits] tmpfs_mb or tmpfs_inodes. A folder the
template may not read (mode 0300, as its owner) counts as over: honest code never hides a folder.
Bounded, not refused: a child writing fast holds at most what it writes between two looks, for
that moment; the parent removes its folder when it ends. Files outside the folder are Landlock's
(writable only there) where the kernel has it.
"""
from __future__ import annotations

import os
import select
import signal
import stat
import time

from . import isolation, trees

LOOKS_PER_SECOND = 4
# how the template reports a child it killed here (session.py explains it to the student)
STATUS = "SIGKILL (disk)"


class DiskPolice:
    """The template's count of each running child's folder; `look` kills those over their share."""

    def __init__(self):
        self._children: dict[int, tuple] = {}  # pid -> (folder, its device, bytes, files, uid or None)
        self.killed: set[int] = set()  # pids killed here, until reaped
        self.next_look = 0.0  # time.monotonic() of the next look (see watch)

    def assign(self, pid: int, folder: str, limits: dict, as_root: bool = False) -> None:
        """A child started working in `folder`: as root, every process of its uid is its own."""
        self._children[pid] = (folder, os.stat(folder).st_dev, limits["tmpfs_mb"] << 20, limits["tmpfs_inodes"],
                               limits["uid"] if as_root else None)

    def release(self, pid: int) -> None:
        """The child was reaped."""
        self._children.pop(pid, None)
        self.killed.discard(pid)

    def look(self) -> None:
        """Count every running child's disk use and kill those over their share. Call with SIGCHLD
        blocked: a pid counted here is not reaped (so not reused) before it is killed."""
        for pid, (folder, device, most_bytes, most_files, uid) in list(self._children.items()):
            if pid in self.killed:
                continue
            held = _deleted_but_open(pid, uid, device)
            if held > most_bytes or trees.holds_more(folder, most_bytes - held, most_files, unreadable_is_more=True):
                self.kill(pid)

    def kill(self, pid: int) -> None:
        self.killed.add(pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:  # ended meanwhile (a zombie until reaped)
            pass


def watch(control, police: DiskPolice) -> None:
    """Return when a request waits on `control`; meanwhile let `police` look, at most
    LOOKS_PER_SECOND times a second (a busy batch's requests are not each delayed by a look), with
    SIGCHLD blocked (see DiskPolice.look)."""
    while True:
        wait = police.next_look - time.monotonic()
        if wait > 0 and select.select([control], [], [], wait)[0]:
            return
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            police.look()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        police.next_look = time.monotonic() + 1 / LOOKS_PER_SECOND


def _deleted_but_open(pid: int, uid: int | None, device: int) -> int:
    """Bytes of the files on `device` that the child's processes (its process group, or as root
    every process of its uid) hold open after unlinking them: no walk of a folder finds those."""
    held, seen = 0, set()
    for process in isolation.processes():
        try:
            if uid is not None:
                ours = os.stat(f"/proc/{process}").st_uid == uid
            else:
                ours = int(isolation.stat_fields(process)[2]) == pid
            if not ours:
                continue
            for fd in os.listdir(f"/proc/{process}/fd"):
                try:
                    target = os.stat(f"/proc/{process}/fd/{fd}")
                except OSError:  # closed meanwhile
                    continue
                if (stat.S_ISREG(target.st_mode) and target.st_nlink == 0 and target.st_dev == device
                        and target.st_ino not in seen):
                    seen.add(target.st_ino)
                    held += target.st_blocks * 512
        except (OSError, ValueError, IndexError):  # ended meanwhile, or not ours to read
            continue
    return held
