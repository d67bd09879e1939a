"""Release: make the student notebook from the instructor source with nbgrader's own machinery.

`release(source_notebook, out_dir)` copies the source notebook into a throw-away nbgrader course
(`source/<assignment>/<notebook>.ipynb`) and runs nbgrader's `GenerateAssignment` converter on it
through `nbgrader.apps.NbGraderAPI`, with the kit's `StampGradingToml` (nbgrader_stamp.py) first in
its configurable preprocessor list, so every test cell's points and every value the text states come
from grading.toml. nbgrader's own preprocessors then do the rest: each `### BEGIN SOLUTION` ...
`### END SOLUTION` region becomes `# YOUR CODE HERE` + `raise NotImplementedError()`,
`### BEGIN HIDDEN TESTS` regions are removed, outputs are cleared, read-only cells are locked
(`editable: false`, `deletable: false`) and every nbgrader cell gets its checksum and cell type
recorded.

Before that, release checks the source against grading.toml (`autograder check`): a disagreement
other than points or a stated value refuses the release; those two are stamped into the source
notebook itself (and its jupytext twin), so `nbgrader generate_assignment` on the source gives the
same student notebook and gradebook.

No gradebook is written (`SaveCells` off, `no_database`): the student version does not depend on it,
and leaving it out keeps the release free of sqlite/alembic and of anything time-stamped.

Determinism: nbgrader's output depends only on the source notebook (checksums hash cell contents;
cell ids and notebook metadata are copied). The course directory is a temporary path that never
reaches the notebook, and the result is written in nbformat's canonical JSON (sorted keys, one-space
indent, trailing newline), so the same source always gives the same bytes. The committed
`student_template/` is tested to equal a fresh release.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from ..course.config import Config, load_config
from ..consistency import check_assignment, stamp
from ..files import KIT_ROOT
from ..records import GraderError

DEFAULT_SOURCE = KIT_ROOT / "assignment" / "nn_from_scratch.ipynb"
DEFAULT_OUT_DIR = KIT_ROOT / "student_template"

ASSIGNMENT_ID = "assignment"  # the name of the assignment inside the throw-away course


def release(source_notebook: Path, out_dir: Path, config: Config | None = None) -> Path:
    """Generate the student version of `source_notebook` into `out_dir`.

    Inputs:
    - source_notebook: an instructor notebook in nbgrader source format (metadata schema 3)
    - out_dir: folder for the student notebook (created if missing)
    - config: grading.toml, loaded (default: the kit's)

    Returns:
    - the path of the written student notebook, `out_dir / source_notebook.name`

    Raises GraderError (one line) when the source is missing, not a notebook, disagrees with
    grading.toml other than in points, or is rejected by nbgrader.
    """
    source_notebook, out_dir = Path(source_notebook), Path(out_dir)
    config = config or load_config()
    _read_notebook(source_notebook)  # a clear message for unusable input before nbgrader starts
    blocking = [d for d in check_assignment(source_notebook, config) if not d.stampable]
    if blocking:
        raise GraderError(f"{source_notebook} disagrees with {config.path.name} in {len(blocking)} place(s) "
                          f"(autograder check lists them); the first: {blocking[0]}")
    stamp_source(source_notebook, config)
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        course = Path(tmp)
        source_dir = course / "source" / ASSIGNMENT_ID
        source_dir.mkdir(parents=True)
        shutil.copyfile(source_notebook, source_dir / source_notebook.name)
        _generate_assignment(course, config)
        released = _read_notebook(course / "release" / ASSIGNMENT_ID / source_notebook.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / source_notebook.name
    out.write_text(render(released), encoding="utf-8")
    return out


def stamp_source(source_notebook: Path, config: Config) -> list[str]:
    """Stamp grading.toml's points and stated values into the source notebook and its jupytext twin
    (a .md beside it), if any changed. Returns the changes, one line each."""
    from ..consistency import twin_disagreements

    nb = _read_notebook(source_notebook)
    changes = stamp(nb.cells, config)
    if changes:
        source_notebook.write_text(render(nb), encoding="utf-8")
    twin = source_notebook.with_suffix(".md")
    if twin.is_file() and (changes or twin_disagreements(source_notebook)):
        import jupytext

        jupytext.write(nb, twin, fmt="md")
        if not changes:
            changes = [f"rewrote the twin {twin.name} from {source_notebook.name}"]
    return changes


def render(nb) -> str:
    """The canonical text of a notebook: nbformat's JSON plus a final newline."""
    return nbformat.writes(nb) + "\n"


def _read_notebook(path: Path):
    if path.suffix != ".ipynb":
        raise GraderError(f"{path}: not a notebook (expected a .ipynb file)")
    if not path.is_file():
        raise GraderError(f"{path}: no such notebook")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # NotJSONError, ValidationError, UnicodeDecodeError, ...
        raise GraderError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") from None


def _generate_assignment(course: Path, grading: Config) -> None:
    """Run nbgrader's GenerateAssignment on `course/source/<ASSIGNMENT_ID>` (no gradebook), test
    cells' points stamped from `grading`."""
    try:
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config

        from .nbgrader_stamp import stamped_preprocessors
    except ImportError as error:
        raise GraderError(
            f"release needs nbgrader ({error}); install it with: pip install 'nn-grading-kit[notebook]'"
        ) from None

    config = Config()
    config.CourseDirectory.root = str(course)
    config.SaveCells.enabled = False  # no gradebook: the student version does not depend on it
    config.GenerateAssignment.no_database = True
    config.GenerateAssignment.preprocessors = stamped_preprocessors()
    config.StampGradingToml.grading_toml = str(grading.path)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    result = api.generate_assignment(ASSIGNMENT_ID, force=True, create=False)
    if not result["success"]:
        raise GraderError(f"nbgrader generate_assignment rejected the notebook: {_failure(result)}")


def _failure(result: dict) -> str:
    """The most telling line of a failed nbgrader run: the first exception message it logged."""
    text = "\n".join(part for part in (result.get("log"), result.get("error")) if part)
    for match in re.finditer(r"^\s*(?:\w+\.)*(\w*(?:Error|Exception): .+)$", text, re.M):
        message = match.group(1).strip()
        if not message.startswith("NbGraderException"):
            return message
    errors = [line.strip() for line in text.splitlines() if line.startswith("[ERROR]")]
    return errors[0] if errors else "no details logged"
