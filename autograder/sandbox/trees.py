"""The one way the trusted side walks or removes a tree a student controls.

A student decides what lies in an upload (a submission folder, a zip's members) and in the working
folder a child leaves behind: folders nested thousands deep, links to / or to themselves, names of
any bytes (newlines, invalid UTF-8, 255 bytes), folders made unreadable (0000, 0300), a million
files. `shutil.rmtree`, `os.walk` and `Path.rglob` recurse (RecursionError past ~1000 levels), may
follow links, and walk without bound; here nothing recurses, every step is taken relative to an
open folder descriptor with O_NOFOLLOW (a link is an entry, never a way in, and a folder renamed
under the walk cannot redirect it), and listings stop at caps the caller names.

It lives in the sandbox package, which is all a bubblewrap template can import, as the template
wipes each child's working folder with it.
"""
from __future__ import annotations

import errno
import itertools
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# A real project (a notebook, a package, data) is far shallower and smaller; an upload past
# these is not a submission, and walking it would only cost the grader time and memory.
MAX_DEPTH = 32
MAX_ENTRIES = 10_000
# Folder descriptors a removal holds at once: a folder deeper than this is moved up to the top
# (a rename within one file system) and removed from there, so any depth costs bounded descriptors.
MAX_OPEN_FOLDERS = 32

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_ONLY = getattr(os, "O_PATH", 0) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeTooLarge(Exception):
    """A tree past the caps of a walk; the message completes a sentence naming the tree
    ("<folder> holds more than 10,000 files and folders")."""


@dataclass(frozen=True)
class Entry:
    """One entry below the top of a walk; `parts` is its path relative to the top (str names, any
    bytes kept as surrogate escapes, as os.fsdecode gives them)."""

    parts: tuple[str, ...]
    kind: str  # "folder" | "file" | "link" | "other" (a FIFO, a socket, a device)
    size: int

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def relative(self) -> str:
        """The relative path, printable: bytes that are not UTF-8 shown as U+FFFD."""
        return printable_name("/".join(self.parts))


def printable_name(name: str) -> str:
    """A file name as one line of text any stream or file can take: invalid UTF-8 bytes (kept by
    Python as lone surrogates, which make a UTF-8 writer raise) and control characters (a newline,
    a terminal escape) shown as U+FFFD."""
    text = os.fsencode(name).decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() or c == " " else "\ufffd" for c in text)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    return "link" if stat.S_ISLNK(mode) else "other"


def _names(folder: int, budget: int) -> tuple[list[str], bool]:
    """The names in an open folder, sorted, at most `budget` of them; and whether there were more."""
    names = []
    with os.scandir(folder) as listing:
        for entry in listing:
            if len(names) == budget:
                return sorted(names), True
            names.append(entry.name)
    return sorted(names), False


def walk(top: str | Path, max_entries: int = MAX_ENTRIES, max_depth: int = MAX_DEPTH, skip=None,
         complete: bool = True) -> list[Entry]:
    """Every entry below the folder `top` (each folder before what it holds, names sorted), never
    entering a link. Past `max_entries` entries, or in folders nested deeper than `max_depth`:
    TreeTooLarge, or (complete=False) the entries within the caps. skip(name) -> True leaves an
    entry out, and what it holds (junk such as __MACOSX). A folder that cannot be read (mode 0000)
    is listed, but not what it holds."""
    found: list[Entry] = []

    def over(what: str) -> bool:
        if complete:
            raise TreeTooLarge(what)
        return True

    too_many = f"holds more than {max_entries:,} files and folders"
    top_fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [(top_fd, iter(()), ())]
    try:
        listing, more = _names(top_fd, max_entries)
        stack[0] = (top_fd, iter(listing), ())
        if more:
            over(too_many)
        while stack:
            folder, names, prefix = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            if skip is not None and skip(name):
                continue
            try:
                status = os.stat(name, dir_fd=folder, follow_symlinks=False)
            except OSError:  # gone meanwhile
                continue
            if len(found) == max_entries and over(too_many):
                break
            entry = Entry(prefix + (name,), _kind(status.st_mode), status.st_size)
            found.append(entry)
            if entry.kind != "folder":
                continue
            if len(entry.parts) >= max_depth and over(f"holds folders nested more than {max_depth} deep"):
                continue
            try:
                inner = os.open(name, _FOLDER, dir_fd=folder)
            except OSError:  # unreadable, or replaced by a link meanwhile: not entered
                continue
            try:
                listing, more = _names(inner, max_entries - len(found))
            except BaseException:
                os.close(inner)
                raise
            stack.append((inner, iter(listing), entry.parts))
            if more:
                over(too_many)
    finally:
        for folder, _, _ in stack:
            os.close(folder)
    return found


def holds_more(folder: str | Path, most_bytes: int, most_files: int, unreadable_is_more: bool = False) -> bool:
    """Whether `folder` holds more than `most_bytes` (blocks in use) or `most_files` entries,
    counted until it does (disk.py's count of a child's folder, while the child still runs);
    unreadable_is_more: a folder inside that may not be read counts as more (it hides what it holds).
    One descriptor at a time, whatever the depth: the walk goes back up through "..", so a child
    renaming folders meanwhile can only make it count elsewhere, never recurse or follow a link."""
    size = files = 0
    try:
        current = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except PermissionError:
        return unreadable_is_more
    except OSError:
        return False
    try:
        names, more = _names(current, most_files + 1)
        pending = [iter(names)]  # the names still to count, one list per level
        while pending and not more:
            name = next(pending[-1], None)
            if name is None:
                pending.pop()
                if pending:
                    parent = os.open("..", _FOLDER, dir_fd=current)
                    os.close(current)
                    current = parent
                continue
            files += 1
            try:
                status = os.stat(name, dir_fd=current, follow_symlinks=False)
            except OSError:  # gone meanwhile
                continue
            size += status.st_blocks * 512
            if size > most_bytes or files > most_files:
                return True
            if not stat.S_ISDIR(status.st_mode):
                continue
            try:
                inner = os.open(name, _FOLDER, dir_fd=current)
            except PermissionError:
                if unreadable_is_more:
                    return True
                continue
            except OSError:  # replaced meanwhile
                continue
            os.close(current)
            current = inner
            names, more = _names(current, most_files - files + 1)
            pending.append(iter(names))
        return more
    except OSError:  # the folder was pulled from under the count
        return False
    finally:
        os.close(current)


def open_file(top: str | Path, parts: tuple[str, ...]):
    """The regular file `top`/parts, opened for reading in binary without following a link at any
    step (a path of any length: each folder is opened from the last). OSError when a step is a link
    (ELOOP) or not a folder, or when the file is not a regular file."""
    folder = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts[:-1]:
            inner = os.open(name, _FOLDER, dir_fd=folder)
            os.close(folder)
            folder = inner
        # O_NONBLOCK: a FIFO must not block the grader before it is seen not to be a file
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


# --- removal -----------------------------------------------------------------------------------

def _chmod_folder(name: str, parent: int) -> bool:
    """Give the owner back read, write and search on the folder `name` (a child may have taken them
    away: 0000, 0300), never on what a link points to: O_PATH opens the folder itself whatever its
    mode, and /proc/self/fd names that very folder."""
    try:
        handle = os.open(name, _PATH_ONLY, dir_fd=parent)
    except OSError:
        return False
    try:
        if not stat.S_ISDIR(os.fstat(handle).st_mode):
            return False
        os.chmod(f"/proc/self/fd/{handle}", 0o700)
        return True
    except OSError:
        return False
    finally:
        os.close(handle)


def _open_folder(name: str, parent: int) -> int | None:
    """A descriptor of the folder `name` in `parent`, which its owner may then empty; None when it
    is not a folder (a link to one included) or cannot be opened."""
    try:
        folder = os.open(name, _FOLDER, dir_fd=parent)
    except PermissionError:
        if not _chmod_folder(name, parent):
            return None
        try:
            folder = os.open(name, _FOLDER, dir_fd=parent)
        except OSError:
            return None
    except OSError:
        return None
    try:
        if os.fstat(folder).st_mode & 0o700 != 0o700:  # 0500: readable, but its entries cannot be unlinked
            os.fchmod(folder, 0o700)
    except OSError:
        pass
    return folder


def _remove_entry(name: str, parent: int) -> bool:
    """Unlink a non-folder entry; False when it is a folder (or stays)."""
    try:
        os.unlink(name, dir_fd=parent)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _empty(top: int) -> int:
    """Remove what the open folder `top` holds; returns how many entries remain. Depth-first with at
    most MAX_OPEN_FOLDERS descriptors: a folder found deeper is moved up into `top` (one rename)
    and emptied in a later round. Rounds end when one removes nothing (what a file system refuses,
    e.g. a mount point, stays)."""
    hoisted = itertools.count()
    while True:
        progress = False
        stack = [(top, iter(os.listdir(top)), None)]
        try:
            while stack:
                folder, names, own_name = stack[-1]
                name = next(names, None)
                if name is None:
                    stack.pop()
                    if own_name is not None:
                        os.close(folder)
                        try:
                            os.rmdir(own_name, dir_fd=stack[-1][0])
                            progress = True
                        except OSError:
                            pass
                    continue
                if _remove_entry(name, folder):
                    progress = True
                    continue
                inner = _open_folder(name, folder)
                if inner is None:
                    continue
                if len(stack) < MAX_OPEN_FOLDERS:
                    try:
                        names_inside = iter(os.listdir(inner))
                    except OSError:
                        os.close(inner)
                        continue
                    stack.append((inner, names_inside, name))
                    continue
                os.close(inner)
                try:  # too deep to hold one more descriptor: up into the top, for the next round
                    os.rename(name, f".removing-{next(hoisted)}-{os.urandom(4).hex()}", src_dir_fd=folder,
                              dst_dir_fd=top)
                    progress = True
                except OSError:
                    pass
        finally:
            for folder, _, own_name in stack:
                if own_name is not None:
                    os.close(folder)
        if not progress:
            return len(os.listdir(top))


def empty(folder: str | Path) -> bool:
    """Remove everything in `folder` (the folder stays), whatever a child made of it; True when it
    is empty then. Never raises for what lies inside."""
    try:
        top = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return _empty(top) == 0
    except OSError:
        return False
    finally:
        os.close(top)


def remove(path: str | Path) -> bool:
    """Remove `path` (a file, a link, or a folder with everything in it) as `shutil.rmtree(path,
    ignore_errors=True)` would, without its recursion or its trust; True when it is gone."""
    path = Path(path)
    try:
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return not os.path.lexists(path)
    try:
        if _remove_entry(path.name, parent):
            return True
        folder = _open_folder(path.name, parent)
        if folder is None:
            return False
        try:
            _empty(folder)
        except OSError:
            pass
        finally:
            os.close(folder)
        try:
            os.rmdir(path.name, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    finally:
        os.close(parent)
