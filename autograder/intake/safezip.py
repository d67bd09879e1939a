"""The one zip policy: extract an uploaded zip without trusting it (no `..`, no absolute paths, no
links, bounded sizes); a zipped single submission (submission.py) is read under the same rules.

Only files a grader can use are written (submissions, and the metadata files the layouts read);
everything else in the archive is skipped unread, so a zip of a whole course with data sets costs
nothing and a zip bomb is cut off at the caps.
"""
from __future__ import annotations

import contextlib
import errno
import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..records import GraderError
from ..sandbox.trees import MAX_DEPTH, open_file, walk

JUNK_PARTS = ("__MACOSX", ".DS_Store", ".ipynb_checkpoints")
KEPT_SUFFIXES = (".ipynb", ".py", ".zip", ".yml", ".yaml", ".txt")
MAX_MEMBERS = 200_000  # a whole class's export
MAX_SUBMISSION_MEMBERS = 10_000  # one student's zip: a project folder, not a data set
MAX_TOTAL_BYTES = 4 << 30
# zipfile reads the whole central directory into one ZipInfo (~0.5 KB) per entry before anything
# else: a student zip of a million empty files took the grader from 300 to 859 MB just to open.
# open_zip counts the entries first, in a directory of at most this many bytes a member.
CENTRAL_DIRECTORY_BYTES_PER_MEMBER = 512
# What a member's name alone can cause when it is written: it is skipped, the others extracted.
UNWRITABLE_NAMES = (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.EINVAL, errno.EILSEQ)
_CENTRAL_ENTRY = b"PK\x01\x02"  # every central directory entry starts with it
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_BYTES = 56 + 20  # the zip64 end record and its locator, just before the end record


def is_junk(parts) -> bool:
    return any(part in JUNK_PARTS or part.startswith("._") for part in parts)


def safe_member_path(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it points outside the folder or is junk."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or not path.parts or ".." in path.parts or ":" in path.parts[0]:
        return None
    if len(path.parts) > MAX_DEPTH:  # nested past any project (1,000 folders deep): nothing to grade
        return None
    if is_junk(path.parts):
        return None
    return path


def open_zip(source, name: str, max_members: int) -> zipfile.ZipFile:
    """`source` (a path or a binary file) as a ZipFile, once its central directory is known to list
    at most `max_members` entries: its size from the end record (zipfile's own reader), then its
    entries counted by their signature (an upper bound of what zipfile would parse; the count in
    the end record can lie). GraderError past the cap; zipfile's own errors otherwise."""
    with (open(source, "rb") if isinstance(source, (str, Path)) else contextlib.nullcontext(source)) as stream:
        end = zipfile._EndRecData(stream)
        if end is not None:
            claimed, size, end_at = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE], end[zipfile._ECD_LOCATION]
            if claimed > max_members:
                raise GraderError(f"{name} holds {claimed:,} files; the limit is {max_members:,}")
            if size > max_members * CENTRAL_DIRECTORY_BYTES_PER_MEMBER:
                raise GraderError(f"{name} lists its files in {size / 2**20:.1f} MB, more than {max_members:,} "
                                  f"files need; the limit is {max_members:,} files")
            stream.seek(max(0, end_at - 20))
            if stream.read(4) == _ZIP64_LOCATOR:
                end_at -= _ZIP64_END_BYTES
            stream.seek(max(0, end_at - size))
            listed = stream.read(min(size, end_at)).count(_CENTRAL_ENTRY)
            if listed > max_members:
                raise GraderError(f"{name} holds {listed:,} files; the limit is {max_members:,}")
        stream.seek(0)
    return zipfile.ZipFile(source)


def extract(archive: Path | bytes, into: Path, member_cap: int) -> list[Path]:
    """Extract the usable files of `archive` (a path or the zip's bytes) below `into`.

    member_cap: bytes kept per file; a larger file is cut there (the grader then reports it as too
    large, which is what it is). Raises GraderError when the archive is unreadable or over the caps.
    """
    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    name = "the zip" if isinstance(archive, bytes) else archive.name
    written: list[Path] = []
    total = 0
    try:
        with open_zip(source, name, MAX_MEMBERS) as zipped:
            for info in zipped.infolist():
                relative = safe_member_path(info.filename)
                if (relative is None or info.is_dir() or stat.S_ISLNK(info.external_attr >> 16)
                        or relative.suffix.lower() not in KEPT_SUFFIXES):
                    continue
                target = into.joinpath(*relative.parts)
                with zipped.open(info) as stream:  # read at most the cap: sizes in a zip can lie
                    data = stream.read(member_cap)
                total += len(data)
                if total > MAX_TOTAL_BYTES:
                    raise GraderError(f"{name} unpacks to more than {MAX_TOTAL_BYTES >> 30} GiB of submissions")
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                except OSError as unwritable:
                    if unwritable.errno not in UNWRITABLE_NAMES:
                        raise
                    continue  # one member's name (a file and a folder alike, 300 bytes): not the class's
                written.append(target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as bad:
        raise GraderError(f"{name} is not a readable zip file ({bad})") from None
    except OSError as bad:
        raise GraderError(f"cannot extract {name}: {bad}") from None
    return written


def pack_folder(folder: Path, member_cap: int) -> bytes:
    """A folder's usable files as zip bytes (for sending one submission folder to a remote worker):
    those within trees' caps, never through a link."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zipped:
        for entry in walk(folder, skip=lambda name: is_junk((name,)), complete=False):
            if entry.kind != "file" or PurePosixPath(entry.name).suffix.lower() not in KEPT_SUFFIXES:
                continue
            try:
                with open_file(folder, entry.parts) as stream:
                    data = stream.read(member_cap)
            except OSError:  # replaced meanwhile
                continue
            zipped.writestr(entry.relative, data)
    return buffer.getvalue()
