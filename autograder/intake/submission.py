"""Find and read one submission: a notebook, a .py module, or a zip holding one of those.

Never extracts anything to disk and never trusts sizes or names from a zip. Unusable input raises
SubmissionError with one sentence for the student (and for the CLI's one-line error).
"""
from __future__ import annotations

import codecs
import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .safezip import MAX_SUBMISSION_MEMBERS, is_junk, open_zip
from ..records import GraderError
from ..sandbox.trees import Entry, TreeTooLarge, open_file, printable_name, walk

PREFERRED_NOTEBOOK = "nn_from_scratch.ipynb"


class SubmissionError(GraderError):
    """This submission cannot be graded; the message says why in one sentence."""


@dataclass(frozen=True)
class Submission:
    name: str  # file name as submitted (inside the zip for zips)
    kind: str  # "notebook" | "python"
    text: str
    cells: tuple = ()  # notebooks: ({"cell_type", "source": str, "metadata"}, ...)


# Text with a byte order mark is decoded as the mark says: Windows PowerShell 5 writes UTF-16 LE
# with one (`>`, Out-File), Notepad UTF-8 with one. UTF-32 LE's mark starts with UTF-16 LE's: first.
BYTE_ORDER_MARKS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
                    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
                    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"))


def _decode(data: bytes, name: str) -> str:
    codec, label = next(((codec, label) for mark, codec, label in BYTE_ORDER_MARKS if data.startswith(mark)),
                        ("utf-8", "UTF-8"))
    if codec == "utf-8" and b"\x00" in data[:8192]:
        raise SubmissionError(f"{name} is a binary file, not text")
    try:
        return data.decode(codec)
    except UnicodeDecodeError as bad:
        raise SubmissionError(f"{name} is not {label} text (bad byte at position {bad.start})") from None


def parse(name: str, data: bytes, max_bytes: int) -> Submission:
    if len(data) > max_bytes:  # only max_bytes + 1 were read: the real size is unknown here
        advice = " (clear the notebook's outputs: Kernel > Restart & Clear Output)" if name.endswith(".ipynb") else ""
        raise SubmissionError(f"{name} is larger than the limit of {max_bytes // 1024} KB{advice}")
    if not data.strip():
        raise SubmissionError(f"{name} is empty")
    text = _decode(data, name)
    suffix = Path(name).suffix.lower()
    if suffix == ".py":
        return Submission(name, "python", text)
    if suffix != ".ipynb":
        raise SubmissionError(f"{name}: unsupported file type; submit the .ipynb notebook or a .py file")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as bad:
        raise SubmissionError(f"{name} is not a notebook: invalid JSON at line {bad.lineno}") from None
    except RecursionError:  # "[[[[...]]]]" nested deeper than the parser's stack
        raise SubmissionError(f"{name} is not a notebook: its JSON is nested too deeply") from None
    return Submission(name, "notebook", text, _cells(raw, name))


def _text(source) -> str:
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if isinstance(source, str):
        return source
    raise TypeError


def _cells(raw, name: str) -> tuple:
    """Normalised cells of an nbformat 4 notebook, or of a version 3 one (worksheets, `input`).
    Read with json, not nbformat: it is strict where students are not, and slow to import."""
    if not isinstance(raw, dict):
        raise SubmissionError(f"{name} is JSON but not a Jupyter notebook")
    if isinstance(raw.get("cells"), list):
        cells, key = raw["cells"], "source"
    elif isinstance(raw.get("worksheets"), list) and raw["worksheets"] and isinstance(raw["worksheets"][0], dict):
        cells, key = raw["worksheets"][0].get("cells"), "input"
    else:
        raise SubmissionError(f"{name} is JSON but not a Jupyter notebook (no cells)")
    normalised = []
    try:
        for cell in cells:
            kind = cell.get("cell_type")
            metadata = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
            nbgrader = metadata.get("nbgrader") if isinstance(metadata.get("nbgrader"), dict) else {}
            source = _text(cell.get(key if kind == "code" else "source", cell.get("source", "")))
            normalised.append({"cell_type": kind, "source": source, "metadata": {"nbgrader": nbgrader}})
    except (AttributeError, TypeError):
        raise SubmissionError(f"{name} is not a readable notebook (malformed cell)") from None
    return tuple(normalised)


def _pick_member(infos: list[zipfile.ZipInfo], archive: str) -> zipfile.ZipInfo:
    usable = [  # the batch's zip policy for junk (nothing is extracted here, so `..` names do no harm)
        info for info in infos
        if not info.is_dir() and not is_junk(PurePosixPath(info.filename.replace("\\", "/")).parts)
        and not stat.S_ISLNK(info.external_attr >> 16)
        and Path(info.filename).suffix.lower() in (".ipynb", ".py")
    ]
    notebooks = [i for i in usable if i.filename.lower().endswith(".ipynb")]
    for candidates in (
        [i for i in notebooks if Path(i.filename).name == PREFERRED_NOTEBOOK], notebooks,
        [i for i in usable if i.filename.lower().endswith(".py")],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = ", ".join(sorted(i.filename for i in candidates)[:4])
            raise SubmissionError(f"{archive} holds several candidate files ({names}); submit exactly one")
    raise SubmissionError(f"{archive} holds no .ipynb or .py file")


def read_zip(path: Path, max_bytes: int, stream=None) -> Submission:
    """The submission in the zip at `path` (read from `stream`, an open binary file, when given)."""
    name = printable_name(path.name)
    try:
        with open_zip(stream or path, name, MAX_SUBMISSION_MEMBERS) as archive:
            member = _pick_member(archive.infolist(), name)
            if member.file_size > max_bytes:
                raise SubmissionError(f"{member.filename} in {name} is too large "
                                      f"({member.file_size // 1024} KB; the limit is {max_bytes // 1024} KB)")
            with archive.open(member) as opened:  # read at most the limit: sizes in a zip can lie
                data = opened.read(max_bytes + 1)
    except SubmissionError:
        raise
    except GraderError as over_the_caps:
        raise SubmissionError(str(over_the_caps)) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError, RuntimeError,
            ValueError) as bad:  # ValueError: a member name that is not the UTF-8 its flag claims
        raise SubmissionError(f"{name} is not a readable zip file ({bad})") from None
    return parse(Path(member.filename).name, data, max_bytes)


def _refuse_links(path: Path, folder: Path) -> None:
    """The grader reads a submission with its own rights (root on Gradescope): a symbolic link could
    hand it the solution or another student's file, and a FIFO would block it."""
    if path.is_symlink() or not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(folder)):
        raise SubmissionError(f"{printable_name(path.name)} is a symbolic link; submit the file itself")
    if path.exists() and not path.is_file():
        raise SubmissionError(f"{printable_name(path.name)} is not a regular file")


def _choose_in_folder(folder: Path) -> Entry:
    """The one notebook (or .py, or .zip) in a submitted folder, found without following a link
    and within trees' caps (a folder nested 1,000 deep or holding a million files is refused)."""
    try:
        entries = walk(folder, skip=lambda name: is_junk((name,)))
    except TreeTooLarge as too_large:
        raise SubmissionError(f"folder {printable_name(folder.name)} {too_large}; submit your notebook alone") from None
    except OSError as bad:
        raise SubmissionError(f"cannot read folder {printable_name(folder.name)}: {bad.strerror}") from None
    files = [e for e in entries if e.kind != "folder" and Path(e.name).suffix.lower() in (".ipynb", ".py", ".zip")]
    preferred = [e for e in files if e.name == PREFERRED_NOTEBOOK]
    choice = preferred or [e for e in files if e.name.endswith(".ipynb")] or files
    if len(choice) != 1:
        what = "no .ipynb, .py or .zip file" if not choice else f"{len(choice)} candidate files"
        raise SubmissionError(f"folder {printable_name(folder.name)} holds {what}; submit exactly one notebook")
    chosen = choice[0]
    if chosen.kind == "link":
        raise SubmissionError(f"{chosen.relative} is a symbolic link; submit the file itself")
    if chosen.kind != "file":
        raise SubmissionError(f"{chosen.relative} is not a regular file")
    return chosen


def load_submission(path: str | Path, max_bytes: int) -> Submission:
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        chosen = _choose_in_folder(path)
        name = printable_name(chosen.name)
        try:
            with open_file(path, chosen.parts) as stream:  # no link followed on the way, however deep
                if name.lower().endswith(".zip"):
                    return read_zip(Path(name), max_bytes, stream)
                data = stream.read(max_bytes + 1)
        except OSError as bad:
            raise SubmissionError(f"cannot read {chosen.relative}: {bad.strerror}") from None
        return parse(name, data, max_bytes)
    _refuse_links(path, path.parent)
    if not path.exists():
        raise SubmissionError(f"file not found: {printable_name(str(path))}")
    if path.suffix.lower() == ".zip":
        return read_zip(path, max_bytes)
    try:
        with open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as bad:
        raise SubmissionError(f"cannot read {printable_name(path.name)}: {bad.strerror}") from None
    return parse(printable_name(path.name), data, max_bytes)
