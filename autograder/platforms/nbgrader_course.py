"""A course's nbgrader config: does nbgrader's own Autograde grade through the kit, and make it so.

`setup(course_dir)` (`autograder nbgrader setup`) writes, at the end of the course's
nbgrader_config.py, a block naming the kit's preprocessor lists (KIT_SANITIZE, KIT_AUTOGRADE: the
classes of nbgrader_autograde.py, by the paths courses' configs already name); rerun, it replaces
its own block; `autograder nbgrader autograde` writes it too where it is missing.
`status(course_dir)` (`autograder doctor` in a course folder) reads the config as nbgrader reads it
(Jupyter's config folders, then the course's file) and says whether any preprocessor would run a
notebook in a kernel.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..records import GraderError

# Named, not imported: writing or checking a course's config needs no nbgrader in this process.
HERE = "autograder.platforms.nbgrader_autograde"
KIT_SANITIZE = [
    "nbgrader.preprocessors.ClearOutput", f"{HERE}.KitCellMetadata", "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec", f"{HERE}.OverwriteCellsQuietly",
    "nbgrader.preprocessors.CheckCellMetadata"]
KIT_AUTOGRADE = [
    f"{HERE}.KitGrade", "nbgrader.preprocessors.IgnorePattern", "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput", "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties", "nbgrader.preprocessors.CheckCellMetadata"]
KIT_EXPORTER = f"{HERE}.KitNotebookExporter"

CONFIG_FILE = "nbgrader_config.py"
BEGIN = "# >>> autograder: nbgrader's Autograde grades kit assignments in the kit's sandbox >>>"
END = "# <<< autograder <<<"
SETUP_COMMAND = "autograder nbgrader setup"


@dataclass(frozen=True)
class Status:
    course: Path
    through_kit: bool
    why: str

    def line(self) -> str:
        if self.through_kit:
            return f"nbgrader course {self.course}: `nbgrader autograde` and formgrader grade through the kit's sandbox"
        return (f"nbgrader course {self.course}: NOT through the kit — {self.why}; `nbgrader autograde` and "
                f"formgrader's Autograde button run student notebooks in a Jupyter kernel as you: run "
                f"`{SETUP_COMMAND}` here")


def block(grading_toml: str | None = None) -> str:
    lines = [BEGIN, f"# Written by `{SETUP_COMMAND}` (rerun it to update); `autograder doctor` checks it. KitGrade",
             "# takes the place of nbgrader's Execute: no student code runs in a kernel or in nbgrader.",
             "c.Autograde.sanitize_preprocessors = ["]
    lines += [f"    {name!r}," for name in KIT_SANITIZE]
    lines += ["]", "c.Autograde.autograde_preprocessors = ["]
    lines += [f"    {name!r}," for name in KIT_AUTOGRADE]
    lines.append("]")
    lines.append(f"c.Autograde.exporter_class = {KIT_EXPORTER!r}  # an unreadable notebook: 0 with the reason")
    if grading_toml:
        lines.append(f"c.KitGrade.grading_toml = {str(grading_toml)!r}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def setup(course_dir: Path, grading_toml: str | None = None) -> Path:
    """Write the kit's block into `course_dir/nbgrader_config.py` (created if missing)."""
    course_dir = Path(course_dir)
    if not course_dir.is_dir():
        raise GraderError(f"no such course directory: {course_dir}")
    path = course_dir / CONFIG_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else "c = get_config()\n"
    if BEGIN in text:
        before, _, rest = text.partition(BEGIN)
        _, found, after = rest.partition(END)
        if not found:
            raise GraderError(f"{path}: the kit's block has no end line ({END!r}); remove the block and rerun")
        text = before + block(grading_toml) + after.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block(grading_toml)
    path.write_text(text, encoding="utf-8")
    return path


def make_it_grade_through_the_kit(course_dir: Path, grading_toml: str | None = None) -> str | None:
    """After `autograder nbgrader autograde`: a course whose own `nbgrader autograde` would still run
    kernels gets the kit's block (the bridge grades it through the kit, so should nbgrader's own
    entry points). The one line to print, or None when the course already grades through the kit."""
    if status(course_dir).through_kit:
        return None
    try:
        written = setup(course_dir, grading_toml)
    except (OSError, GraderError) as unwritable:
        return f"note: {status(course_dir).line()} (could not write {CONFIG_FILE}: {unwritable})"
    after = status(course_dir)
    if not after.through_kit:
        return f"note: {after.line()}"
    return (f"wrote the kit's preprocessors into {written}: `nbgrader autograde` and formgrader's Autograde "
            f"button now grade through the kit's sandbox too (`autograder doctor` checks it)")


def is_course(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (CONFIG_FILE, "gradebook.db"))


def status(course_dir: Path) -> Status:
    """Whether nbgrader's own Autograde, run in `course_dir`, grades through the kit."""
    from traitlets.config import Config as TraitletsConfig
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    course_dir = Path(course_dir).resolve()
    try:
        from jupyter_core.paths import jupyter_config_path
        from nbconvert.preprocessors import ExecutePreprocessor
        from nbgrader.converters import Autograde
        from traitlets.utils.importstring import import_item
    except ImportError as missing:
        return Status(course_dir, False, f"nbgrader is not installed here ({missing})")
    config = TraitletsConfig()
    # nbgrader's order: Jupyter's config folders, the course folder (the current directory) last
    for folder in [*reversed(jupyter_config_path()), str(course_dir)]:
        try:
            config.merge(PyFileConfigLoader(CONFIG_FILE, path=folder).load_config())
        except ConfigFileNotFound:
            continue
        except Exception as broken:  # the course's own Python file
            return Status(course_dir, False, f"{Path(folder) / CONFIG_FILE} fails: {type(broken).__name__}: {broken}")
    lists = Autograde(config=config)
    kit_grade = import_item(KIT_AUTOGRADE[0])
    chain = []
    for step in [*lists.sanitize_preprocessors, *lists.autograde_preprocessors]:
        try:
            chain.append(import_item(step) if isinstance(step, str) else step if isinstance(step, type) else type(step))
        except Exception as missing:
            return Status(course_dir, False, f"preprocessor {step!r} cannot be imported ({missing})")
    kernels = [cls.__name__ for cls in chain if issubclass(cls, ExecutePreprocessor)]
    if kernels:
        return Status(course_dir, False, f"Autograde runs {', '.join(kernels)}")
    if not any(issubclass(cls, kit_grade) for cls in chain):
        return Status(course_dir, False, "Autograde.autograde_preprocessors has no KitGrade")
    return Status(course_dir, True, "")


def doctor_line(folder: Path | None = None) -> str | None:
    """The line `autograder doctor` adds when run in an nbgrader course folder (None elsewhere)."""
    folder = Path(folder or os.getcwd())
    if not is_course(folder):
        return None
    try:
        return status(folder).line()
    except Exception as failure:  # doctor reports; it never fails on a course's config
        return f"nbgrader course {folder}: its config could not be checked ({type(failure).__name__}: {failure})"
