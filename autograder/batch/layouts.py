"""Find every submission in a batch input, whatever shape the instructor downloaded it in.

    folder       <dir>/<student>.ipynb|.py|.zip  or  <dir>/<student>/<files>
    zip          a zip of such a folder (or of either tree below)
    nbgrader     <course>/submitted/<student>/<assignment>/<files>
    gradescope   "Export Submissions" zip: assignment_<id>_export/submission_metadata.yml and
                 submission_<id>/<files>; student ids (every member of a group) come from the metadata

Each submission becomes an Item whose `source` is handed to Grader.grade unchanged. Student ids
become file names (results/<id>.json), so they are sanitised and made unique here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..records import GraderError
from ..intake import safezip
from ..sandbox.trees import printable_name

SUBMISSION_SUFFIXES = (".ipynb", ".py", ".zip")
GRADESCOPE_METADATA = "submission_metadata.yml"
LAYOUTS = ("folder", "nbgrader", "gradescope")  # what --layout may name (auto: recognised at the top)
METADATA_CAP = 64 << 20


@dataclass(frozen=True)
class Item:
    """One submission to grade once. A Gradescope group submission has several members, and each
    member gets the same result; members[0] is the key the submission is known by."""

    members: tuple[str, ...]
    source: Path  # a file or a folder
    label: str  # where it came from, relative to the batch input, for messages and results

    @property
    def key(self) -> str:
        return self.members[0]


@dataclass
class Found:
    layout: str  # "folder" | "nbgrader" | "gradescope"
    items: list[Item]
    warnings: list[str] = field(default_factory=list)


def safe_id(raw: str) -> str:
    """A student id usable as a file name: no separators, no leading dot, printable, bounded."""
    text = re.sub(r"[^A-Za-z0-9._@+-]+", "_", str(raw).strip()).lstrip(".")
    return text[:100] or "_"


def check_input(path: Path) -> None:
    """GraderError unless `path` can be a batch input: a folder or a zip."""
    if not path.exists():
        raise GraderError(f"no such file or folder: {path}")
    if path.is_file() and path.suffix.lower() != ".zip":
        raise GraderError(f"{path} is a single file: grade it with `autograder grade`, "
                          f"or give a folder or zip of submissions")


def discover(path: Path, staging: Path, member_cap: int, assignment: str | None = None,
             exclude: tuple[Path, ...] = (), layout: str = "auto") -> Found:
    """Items of the batch at `path` (a folder or a zip); zips are extracted safely below `staging`.
    layout: one of LAYOUTS, or "auto" to recognise it at the top of `path` (never inside a folder
    among others: a student's folder cannot decide how the class is read)."""
    check_input(path)
    if layout != "auto" and layout not in LAYOUTS:
        raise GraderError(f"unknown layout {layout!r}: use auto, {', '.join(LAYOUTS)}")
    if path.is_file():
        root = staging / "input"
        safezip.extract(path, root, member_cap)
        root = _unwrap(root)
    else:
        root = path
    chosen = _recognise(root) if layout == "auto" else layout
    if chosen == "gradescope":
        found = _gradescope(_gradescope_metadata(root, wrapped=layout == "gradescope"))
    elif chosen == "nbgrader":
        found = _nbgrader(_nbgrader_submitted(root), assignment)
    else:
        found = _folder(root, exclude)
    if assignment and found.layout != "nbgrader":
        raise GraderError(f"--assignment applies to nbgrader course trees only; {path} is a {found.layout} layout")
    _make_unique(found)
    return found


def _unwrap(root: Path) -> Path:
    """A zip made from a folder holds that folder alone: look inside it."""
    only = _only_folder(root)
    return only if only is not None else root


def _only_folder(root: Path) -> Path | None:
    """The folder `root` holds alone (junk aside), if it holds nothing else."""
    entries = []
    for entry in root.iterdir():
        if not safezip.is_junk((entry.name,)):
            entries.append(entry)
            if len(entries) > 1:
                return None
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() else None


def _recognise(root: Path) -> str:
    """The layout of the tree at `root`, from its top alone."""
    if (root / GRADESCOPE_METADATA).is_file():
        return "gradescope"
    if _nbgrader_submitted(root, required=False) is not None:
        return "nbgrader"
    only = _only_folder(root)
    if only is not None and ((only / GRADESCOPE_METADATA).is_file() or (only / "submitted").is_dir()):
        # an export in a folder of its own, or one student's folder made to look like one: only
        # the instructor can tell
        raise GraderError(f"{root} holds one folder, {printable_name(only.name)}, laid out as a course or an export: "
                          f"give --layout gradescope or nbgrader to grade it as one, --layout folder to grade "
                          f"it as one student's submission")
    return "folder"


def _gradescope_metadata(root: Path, wrapped: bool) -> Path:
    """submission_metadata.yml at the top of `root`, or (wrapped: the instructor said it is an
    export) at the top of the folder `root` holds alone, two levels at most."""
    for _ in range(3 if wrapped else 1):
        if (root / GRADESCOPE_METADATA).is_file():
            return root / GRADESCOPE_METADATA
        root = _only_folder(root)
        if root is None:
            break
    raise GraderError(f"no {GRADESCOPE_METADATA} at the top of the input: give the export folder or its zip")


def _nbgrader_submitted(root: Path, required: bool = True) -> Path | None:
    if root.name == "submitted" and root.is_dir():
        return root
    if (root / "submitted").is_dir():
        return root / "submitted"
    if required:
        raise GraderError(f"no submitted/ folder at the top of {root}: give the nbgrader course folder")
    return None


def _relative(path: Path, root: Path) -> str:
    return printable_name(path.relative_to(root).as_posix())


# --- a folder of files or folders, one per student ---------------------------------------------

def _folder(root: Path, exclude: tuple[Path, ...]) -> Found:
    excluded = {os.path.realpath(p) for p in exclude}
    found, skipped = Found("folder", []), []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or safezip.is_junk((entry.name,)) or os.path.realpath(entry) in excluded:
            continue
        if entry.is_dir():
            found.items.append(Item((safe_id(entry.name),), entry, _relative(entry, root)))
        elif entry.is_file() and entry.suffix.lower() in SUBMISSION_SUFFIXES:
            found.items.append(Item((safe_id(entry.stem),), entry, _relative(entry, root)))
        else:
            skipped.append(printable_name(entry.name))
    if skipped:
        found.warnings.append(f"skipped {len(skipped)} file(s) that are not submissions (.ipynb, .py, .zip "
                              f"or a folder): {', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}")
    return found


# --- nbgrader: submitted/<student>/<assignment>/ -----------------------------------------------

def _nbgrader(submitted: Path, assignment: str | None) -> Found:
    students = sorted(p for p in submitted.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = sorted({a.name for s in students for a in s.iterdir() if a.is_dir() and not a.name.startswith(".")})
    if assignment is None:
        if len(names) > 1:
            raise GraderError(f"{submitted} holds several assignments ({', '.join(names)}); "
                              f"choose one with --assignment")
        assignment = names[0] if names else ""
    elif assignment not in names:
        raise GraderError(f"no submissions of assignment '{assignment}' in {submitted} "
                          f"(found: {', '.join(names) or 'none'})")
    found = Found("nbgrader", [])
    for student in students:
        folder = student / assignment
        if assignment and folder.is_dir():
            found.items.append(Item((safe_id(student.name),), folder, _relative(folder, submitted.parent)))
    return found


# --- Gradescope "Export Submissions" -----------------------------------------------------------

def _load_yaml(path: Path):
    """Ruby-written YAML: plain data, with any `!ruby/...` tag read as the plain value it wraps."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def plain(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", plain)
    with open(path, "rb") as stream:
        text = stream.read(METADATA_CAP + 1)
    if len(text) > METADATA_CAP:
        raise GraderError(f"{path.name} is larger than {METADATA_CAP >> 20} MiB")
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as bad:
        raise GraderError(f"{path.name} is not readable YAML ({str(bad).splitlines()[0]})") from None


def _field(record, key: str):
    """Keys were Ruby symbols, so they load as ':sid'; accept plain 'sid' too (a re-saved file)."""
    if not isinstance(record, dict):
        return None
    return record.get(":" + key, record.get(key))


def _submitter_id(submitter) -> str:
    for key in ("sid", "email", "name"):
        value = _field(submitter, key)
        if value not in (None, ""):
            return str(value)
    return ""


def _gradescope(metadata_path: Path) -> Found:
    export = metadata_path.parent
    metadata = _load_yaml(metadata_path)
    if not isinstance(metadata, dict):
        raise GraderError(f"{metadata_path.name} does not map submissions to submitters")
    found = Found("gradescope", [])
    unlisted = []
    for folder in sorted(p for p in export.iterdir() if p.is_dir() and not safezip.is_junk((p.name,))):
        record = metadata.get(folder.name)
        submitters = _field(record, "submitters")
        ids = [_submitter_id(s) for s in submitters] if isinstance(submitters, list) else []
        ids = [i for i in ids if i] or [folder.name]
        if record is None:
            unlisted.append(folder.name)
        found.items.append(Item(tuple(safe_id(i) for i in ids), folder, _relative(folder, export)))
    if unlisted:
        found.warnings.append(f"{len(unlisted)} submission folder(s) are not in {GRADESCOPE_METADATA} "
                              f"and are graded under their folder name: {', '.join(unlisted[:3])}")
    return found


# --- ids must be unique file names --------------------------------------------------------------

def _make_unique(found: Found) -> None:
    """Two submissions with one id (alice.py and alice.ipynb, or ids that sanitise alike) would
    overwrite each other's results: later ones (in input order) get -2, -3, ... and a warning.
    Ids that differ only in letter case (Alice, alice) collide too: on a case-insensitive disk
    (macOS, Windows, many shares) results/Alice.json and results/alice.json are one file, and a
    gradebook matching ids may merge them; the warning says so."""
    taken: dict[str, str] = {}  # lower-cased id -> the id that holds it
    renamed = []
    items = []
    for item in found.items:
        members = []
        for member in item.members:
            unique, n = member, 1
            while unique.lower() in taken:
                n += 1
                unique = f"{member}-{n}"
            if unique != member:
                holder = taken[member.lower()]
                case_only = f" (differs from {holder} only in letter case)" if holder != member else ""
                renamed.append(f"{item.label} -> {unique}{case_only}")
            taken[unique.lower()] = unique
            members.append(unique)
        items.append(Item(tuple(members), item.source, item.label))
    found.items = items
    if renamed:
        found.warnings.append(f"{len(renamed)} duplicate student id(s) renamed: {', '.join(renamed[:3])}"
                              f"{' ...' if len(renamed) > 3 else ''}")
