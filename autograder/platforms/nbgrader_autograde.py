"""nbgrader's own Autograde, grading kit assignments in the kit's sandbox instead of a Jupyter kernel.

A course's nbgrader_config.py (written by `autograder nbgrader setup`, checked by `autograder
doctor`: nbgrader_course.py) names the kit's preprocessors in nbgrader's configurable lists,
so every way nbgrader autogrades — `nbgrader autograde`, formgrader's Autograde button,
`nbgrader.apps.NbGraderAPI.autograde` — grades each submitted notebook with the very call
`autograder grade` makes, and no student code ever runs in nbgrader's process or in a kernel:

    sanitize:  ClearOutput, KitCellMetadata, DeduplicateIds, OverwriteKernelspec,
               OverwriteCellsQuietly, CheckCellMetadata
    autograde: KitGrade (in place of Execute), IgnorePattern, ClearMetadataPreprocessor,
               LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata

- KitCellMetadata: each cell's nbgrader metadata becomes the gradebook's (grade, solution, locked,
  points, checksum) or none, so nothing a student writes there decides anything (a test cell
  unflagged, an answer cell made a grade cell, a schema version that stops nbgrader for the class).
- KitGrade: the kit's report of the submitted file (`submitted/<student>/<assignment>/<nb>.ipynb`)
  fills each test cell with what the hidden `grade_part("<part>")` call would have printed and
  returned, and the hidden tests are removed; nbgrader's SaveAutoGrades then records the part's
  points by its usual rule (a test cell the student deleted is scored in the gradebook directly).
  On its first notebook KitGrade starts one warm Grader and hands it every submission nbgrader is
  about to autograde (`workers` at a time), so grading overlaps nbgrader's own per-notebook work.
  A notebook with no kit test cell (another assignment of the course) is left to nbgrader's Execute.
- OverwriteCellsQuietly: nbgrader's OverwriteCells without its false alarm for hidden tests.
- KitNotebookExporter (Autograde.exporter_class): a kit notebook that is not a readable notebook
  stands in as one saying so, and scores 0 (nbgrader alone would fail that student).

`autograder nbgrader autograde` (the bridge) runs nbgrader's Autograde with these lists whatever the
course's config says, always regrades, and scores an unreadable notebook 0 with a note.
Test cells are mapped to parts by the `grade_part("<part>")` call in their gradebook source.

Importing this module needs nbgrader: nbgrader imports it by the class paths above, and the bridge
does; nbgrader_course.py only names them, so `setup` and `doctor` work without nbgrader loaded.
"""
from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
import warnings
import weakref
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from ..records import GraderError

try:
    import nbgrader  # noqa: F401
except ImportError as missing:  # `autograder nbgrader autograde` without the kit's `notebook` extra
    raise GraderError(f"this needs nbgrader ({missing}); install it with: "
                      f"pip install 'nn-grading-kit[notebook]'") from None

import jsonschema
import nbformat
from nbconvert.exporters import NotebookExporter
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader import api, utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.converters.base import NbGraderException
from nbgrader.coursedir import CourseDirectory
from nbgrader.nbgraderformat import common
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor, OverwriteCells
from sqlalchemy.exc import SAWarning
from traitlets import Integer, Unicode
from traitlets.config import Config as TraitletsConfig
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

from ..course.config import Config, load_config
from ..feedback.terminal import printable
from .kernel_hook import part_feedback
from .nbgrader_course import KIT_AUTOGRADE, KIT_SANITIZE

GRADE_PART_CALL = re.compile(r"""grade_part\(\s*["']([A-Za-z_]\w*)["']""")


@dataclass(frozen=True)
class StudentScore:
    student: str
    score: float
    max_score: float
    notes: tuple[str, ...] = ()


@dataclass
class AutogradeResult:
    assignment: str
    course_dir: Path
    students: list[StudentScore] = field(default_factory=list)
    seconds: float = 0.0


def course_directory(course_dir: Path, assignment: str, student: str | None):
    """nbgrader's CourseDirectory for `course_dir`, with its nbgrader_config.py applied, and the
    traitlets config it came from."""
    if not course_dir.is_dir():
        raise GraderError(f"no such course directory: {course_dir}")
    config = TraitletsConfig()
    try:
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config())
    except ConfigFileNotFound:
        pass
    except Exception as broken:  # the course's own Python file
        raise GraderError(f"{course_dir / 'nbgrader_config.py'}: {type(broken).__name__}: {broken}") from None
    config.CourseDirectory.root = str(course_dir.resolve())
    config.CourseDirectory.assignment_id = assignment
    if student:
        config.CourseDirectory.student_id = student
    return CourseDirectory(config=config), config


def test_cell_parts(db_url: str, course_id: str, assignment: str, config: Config) -> dict[str, dict[str, str | None]]:
    """notebook name -> {test cell grade_id -> its part, or None for a test cell that is not the
    kit's}, read from the gradebook (the cells `nbgrader generate_assignment` recorded).
    GraderError for a kit test cell the kit cannot score as it stands."""
    mapping: dict[str, dict[str, str | None]] = {}
    with Gradebook(db_url, course_id) as gradebook:
        try:
            recorded = gradebook.find_assignment(assignment)
        except MissingEntry:
            raise GraderError(f"assignment '{assignment}' is not in the gradebook; "
                              f"run `nbgrader generate_assignment {assignment}` first") from None
        for notebook in recorded.notebooks:
            sources = {cell.name: cell.source for cell in notebook.source_cells}
            solution_ids = {cell.name for cell in notebook.solution_cells}
            parts = mapping.setdefault(notebook.name, {})
            for cell in notebook.grade_cells:
                if cell.cell_type != "code" or cell.name in solution_ids:
                    continue  # a manually graded answer: nbgrader leaves it to a person, and so do we
                calls = GRADE_PART_CALL.findall(sources.get(cell.name, ""))
                where = f"test cell '{cell.name}' of {notebook.name}.ipynb"
                if len(calls) > 1:
                    raise GraderError(f"{where} has {len(calls)} grade_part(\"<part>\") calls; the kit scores "
                                      f"only cells with exactly one")
                part = calls[0] if calls else None
                if part is not None and part not in {name.split(".")[0] for name in config.points}:
                    raise GraderError(f"{where} grades part '{part}', which grading.toml does not define")
                if part is not None and abs(config.part_points(part) - cell.max_score) > 1e-9:
                    raise GraderError(
                        f"{where} is worth {cell.max_score:g} points but part '{part}' is worth "
                        f"{config.part_points(part):g} in grading.toml; rebuild the notebook and run "
                        f"`nbgrader generate_assignment {assignment}` again")
                parts[cell.name] = part
    return mapping


def parts_of_test_cells(coursedir, assignment: str, config: Config) -> dict[str, dict[str, str]]:
    """notebook name -> {test cell grade_id -> part}; GraderError for any test cell the kit cannot score."""
    if coursedir.db_url.startswith("sqlite:///") and not Path(coursedir.db_url[len("sqlite:///"):]).exists():
        raise GraderError(f"no gradebook in {coursedir.root}; run `nbgrader generate_assignment {assignment}` first")
    mapping = test_cell_parts(coursedir.db_url, coursedir.course_id, assignment, config)
    for notebook, cells in mapping.items():
        for grade_id, part in cells.items():
            if part is None:
                raise GraderError(f"test cell '{grade_id}' of {notebook}.ipynb has no grade_part(\"<part>\") call; "
                                  f"the kit scores only cells with exactly one (use plain `nbgrader autograde`)")
    return mapping


def _quiet_nbgrader_sawarnings() -> None:
    """nbgrader 0.9 creates each new submission's rows through relationships that SQLAlchemy 2 warns
    about ("Object of type <SubmittedAssignment> not in session, add operation along
    'Assignment.submissions' will not proceed"): three long warnings on a class's first autograde,
    about rows nbgrader then adds itself. Only those are silenced."""
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session", category=SAWarning)


_quiet_nbgrader_sawarnings()  # from the moment nbgrader resolves the kit's classes (the exporter, first)


class OverwriteCellsQuietly(OverwriteCells):
    """nbgrader's OverwriteCells without its false alarm for hidden tests (jupyter/nbgrader#1961):
    generate_assignment records a test cell's checksum before it clears the hidden tests, so
    every untouched test cell "has changed!" at autograde. A cell whose source is the recorded
    source with its hidden tests cleared is untouched: it is restored as always, silently.
    Every other change (a student's edit of a locked cell) is still reported, and restored.
    The recorded cells are read once a run, not queried cell by cell."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id, self.db_url = info["notebook"], info["assignment"], info["db_url"]
        self.gradebook = _session_of(self).recorded_notebook(self.assignment_id, self.notebook_id)
        if self.gradebook is None:
            return super().preprocess(nb, resources)  # nbgrader's own way, and its own error
        nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
        if self.add_missing_cells:
            nb, resources = self.add_missing_grade_cells(nb, resources)
            nb, resources = self.add_missing_task_cells(nb, resources)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        self._submitted_source = cell.source
        return super().preprocess_cell(cell, resources, index)

    def report_change(self, name, attr, old, new):
        if attr == "checksum" and self._is_the_release(name):
            self.log.debug("Hidden tests of cell %s restored", name)
            return
        super().report_change(name, attr, old, new)

    def _is_the_release(self, grade_id: str) -> bool:
        recorded = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
        released = new_code_cell(source=recorded.source)
        if not ClearHiddenTests(parent=self)._remove_hidden_test_region(released):
            return False  # no hidden tests: the checksum differs because the cell was edited
        return released.source == self._submitted_source


class KitCellMetadata(NbGraderPreprocessor):
    """Every cell's nbgrader metadata from the gradebook: a cell named by a recorded grade_id
    (the last one, as nbgrader's DeduplicateIds keeps) gets the recorded flags, points and
    checksum; any other cell loses its nbgrader metadata and is an ordinary student cell."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        recorded = _session_of(self).recorded_cells(info["assignment"], info["notebook"])
        claims = [self._grade_id(cell) for cell in nb.cells]
        last = {grade_id: index for index, grade_id in enumerate(claims) if grade_id in recorded}
        for index, (cell, grade_id) in enumerate(zip(nb.cells, claims)):
            if last.get(grade_id) == index:
                cell.metadata["nbgrader"] = NotebookNode(dict(recorded[grade_id]))
            elif "nbgrader" in cell.metadata:
                if grade_id is not None:
                    self.log.warning("Cell %s of %s (grade_id %r) is not the gradebook's: graded as a student "
                                     "cell", index, info["notebook"], printable(str(grade_id))[:80])
                del cell.metadata["nbgrader"]
        return nb, resources

    @staticmethod
    def _grade_id(cell):
        meta = cell.get("metadata", {}).get("nbgrader")
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        return grade_id if isinstance(grade_id, str) else None


class KitGrade(NbGraderPreprocessor):
    """In place of nbgrader's Execute: each kit test cell gets the outputs grade_part would have
    made (the part's feedback on stdout, its points as the cell's value), from the kit's report
    of the submitted notebook; nothing is executed here or in a kernel."""

    grading_toml = Unicode(
        "", help="grading.toml to grade with (default: AUTOGRADER_CONFIG, else the kit's)").tag(config=True)
    workers = Integer(0, help="notebooks graded at once (0: one per core)").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        session = _session_of(self)
        parts = session.kit_parts(info["assignment"], info["notebook"], self)
        if not parts:
            self.log.warning("%s/%s has no kit test cell: nbgrader's Execute runs it in a kernel",
                             info["assignment"], info["notebook"])
            return Execute(parent=self.parent).preprocess(nb, resources)
        report = session.report(info["student"], info["assignment"], info["notebook"], self)
        for notice in report.instructor_notices:  # nbgrader's log is the instructor's; feedback never shows these
            self.log.warning("Please review %s/%s of %s: %s", info["assignment"], info["notebook"],
                             printable(info["student"]), printable(notice))
        present = set()
        clear_hidden = ClearHiddenTests(parent=self)
        for index, cell in enumerate(nb.cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id not in parts or not utils.is_grade(cell) or cell.cell_type != "code":
                continue
            result = report.parts.get(parts[grade_id])
            score = float(result.score) if result else 0.0
            cell.outputs = [
                new_output("stream", name="stdout", text=part_feedback(report, parts[grade_id]) + "\n"),
                new_output("execute_result", data={"text/plain": repr(score)}, execution_count=index + 1),
            ]
            cell.execution_count = index + 1
            clear_hidden._remove_hidden_test_region(cell)  # feedback shows results, never the hidden code
            present.add(grade_id)
        session.score_deleted_test_cells(info, {g: p for g, p in parts.items() if g not in present}, report)
        return nb, resources


class KitNotebookExporter(NotebookExporter):
    """nbgrader's notebook exporter, except that a kit notebook that cannot be read (not JSON,
    not UTF-8, not a notebook) stands in as a notebook saying so: KitGrade then scores it 0 with
    that reason, as `autograder grade` does, instead of nbgrader failing that student."""

    def from_file(self, file_stream, resources=None, **kw):
        try:
            nb = nbformat.read(file_stream, as_version=4)
        except Exception as unreadable:
            nb = self._stand_in(resources, unreadable)
        return self.from_notebook_node(nb, resources=resources, **kw)

    def _stand_in(self, resources, unreadable: Exception):
        info = (resources or {}).get("nbgrader")
        if not info or not isinstance(self.parent, Autograde):
            raise unreadable
        recorded = _session_for(self.parent).recorded_notebook(info["assignment"], info["notebook"])
        if recorded is None or not recorded.has_kit_test_cells():
            raise unreadable  # not the kit's to grade: nbgrader's own error
        self.log.warning("Unreadable notebook, scored 0: %s/%s of %s (%s: %s)", info["assignment"],
                         info["notebook"], info["student"], type(unreadable).__name__, unreadable)
        why = printable(f"{type(unreadable).__name__}: {unreadable}")[:300]
        return new_notebook(cells=[new_markdown_cell(
            f"**Not graded: the file handed in is not a readable notebook** ({why}). Every part scores 0.")])


class _Prefetch:
    """Daemon worker threads: a run nbgrader abandons never waits for the notebooks queued behind it."""

    def __init__(self, workers: int, work):
        self.work, self.queue = work, queue.Queue()
        self.threads = [threading.Thread(target=self._loop, daemon=True, name="autograder-kit-grade")
                        for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def submit(self, *args) -> Future:
        future: Future = Future()
        self.queue.put((future, args))
        return future

    def _loop(self) -> None:
        while (item := self.queue.get()) is not None:
            future, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(self.work(*args))
                except BaseException as failure:  # handed to whoever waits for this notebook
                    future.set_exception(failure)

    def stop(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self.threads:
            self.queue.put(None)


class _RecordedNotebook:
    """A read-only snapshot of a notebook's cells in the gradebook, standing in for nbgrader's
    Gradebook where OverwriteCells only looks cells up (the same answers, without a query each)."""

    def __init__(self, source_cells, grade_cells, solution_cells, task_cells):
        self.source_cells, self.grade_cells = source_cells, grade_cells
        self.solution_cells, self.task_cells = solution_cells, task_cells
        self._sources = {cell.name: cell for cell in source_cells}
        self._graded = {cell.name: cell for cell in [*task_cells, *grade_cells]}  # a grade cell wins, as in nbgrader

    @classmethod
    def read(cls, coursedir, assignment: str, notebook: str) -> "_RecordedNotebook | None":
        with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
            try:
                found = gradebook.find_notebook(notebook, assignment)
            except MissingEntry:
                return None

            def snapshot(cells, *fields):
                return [SimpleNamespace(**{name: getattr(cell, name) for name in ("name", *fields)}) for cell in cells]

            return cls(snapshot(found.source_cells, "cell_type", "locked", "source", "checksum"),
                       snapshot(found.grade_cells, "max_score", "cell_type"), snapshot(found.solution_cells),
                       snapshot(found.task_cells, "max_score", "cell_type"))

    def find_source_cell(self, name, notebook=None, assignment=None):
        if name not in self._sources:
            raise MissingEntry(f"No such source cell: {assignment}/{notebook}/{name}")
        return self._sources[name]

    def find_graded_cell(self, name, notebook=None, assignment=None):
        if name not in self._graded:
            raise MissingEntry(f"No such grade cell: {assignment}/{notebook}/{name}")
        return self._graded[name]

    def find_notebook(self, notebook=None, assignment=None):
        return self

    def has_kit_test_cells(self) -> bool:
        graded = {cell.name for cell in self.grade_cells}
        return any(GRADE_PART_CALL.search(cell.source or "") for cell in self.source_cells if cell.name in graded)


class _Session:
    """What one run of nbgrader's Autograde shares between its notebooks: the gradebook's cells,
    and, from the first notebook graded until the last, one warm Grader and its workers."""

    def __init__(self, coursedir):
        self.coursedir = coursedir
        self.lock = threading.Lock()
        self._recorded: dict[tuple[str, str], dict] = {}
        self._parts: dict[str, dict] = {}
        self.config: Config | None = None
        self.grader = None
        self.prefetch: _Prefetch | None = None
        self.pending: dict[tuple[str, str, str], Future] = {}
        self.reports: dict[tuple[str, str, str], object] = {}

    def recorded_notebook(self, assignment: str, notebook: str) -> "_RecordedNotebook | None":
        """What generate_assignment recorded of this notebook, read once a run (None: not recorded)."""
        if (assignment, notebook) not in self._recorded:
            self._recorded[(assignment, notebook)] = _RecordedNotebook.read(self.coursedir, assignment, notebook)
        return self._recorded[(assignment, notebook)]

    def recorded_cells(self, assignment: str, notebook: str) -> dict[str, dict]:
        """grade_id -> the nbgrader metadata generate_assignment recorded for that cell."""
        recorded = self.recorded_notebook(assignment, notebook)
        if recorded is None:
            return {}  # nbgrader skips notebooks it does not know
        graded = {cell.name: cell.max_score for cell in recorded.grade_cells}
        tasks = {cell.name: cell.max_score for cell in recorded.task_cells}
        solutions = {cell.name for cell in recorded.solution_cells}
        cells = {}
        for source in recorded.source_cells:
            meta = {"grade": source.name in graded, "solution": source.name in solutions, "locked": source.locked,
                    "grade_id": source.name, "schema_version": 3, "cell_type": source.cell_type,
                    "checksum": source.checksum}
            if source.name in graded or source.name in tasks:
                meta["points"] = float(graded.get(source.name, tasks.get(source.name)))
            if source.name in tasks:
                meta["task"] = True
            cells[source.name] = meta
        return cells

    def kit_parts(self, assignment: str, notebook: str, kit) -> dict[str, str]:
        """The notebook's kit test cells: {grade_id: part}; empty when it has none. A notebook
        mixing kit test cells with others is refused: those would run next to the kit's in a kernel."""
        if self.config is None:
            self.config = load_config(kit.grading_toml or os.environ.get("AUTOGRADER_CONFIG") or None)
        if assignment not in self._parts:
            self._parts[assignment] = test_cell_parts(self.coursedir.db_url, self.coursedir.course_id, assignment,
                                                      self.config)
        cells = self._parts[assignment].get(notebook, {})
        if any(part is not None for part in cells.values()) and None in cells.values():
            others = sorted(grade_id for grade_id, part in cells.items() if part is None)
            raise GraderError(f"{assignment}/{notebook}.ipynb mixes kit test cells with others ({', '.join(others)}): "
                              f"the kit grades only notebooks whose test cells all call grade_part")
        return {grade_id: part for grade_id, part in cells.items() if part is not None}

    def report(self, student: str, assignment: str, notebook: str, kit):
        """The kit's report of this submitted notebook (prefetched, or graded now)."""
        key = (student, assignment, notebook)
        with self.lock:
            if self.grader is None:
                self._start(kit)
            future = self.pending.pop(key, None) or self.prefetch.submit(key)
        try:
            report = future.result()
        except Exception as failure:  # the kit's own fault, never the student's: nbgrader reports it
            raise RuntimeError(f"the kit's grader failed on {student}'s {notebook}.ipynb: "
                               f"{type(failure).__name__}: {failure}") from None
        finally:
            with self.lock:
                if not self.pending:
                    self.close()
        self.reports[key] = report
        return report

    def _start(self, kit) -> None:
        from ..pipeline import Grader  # torch and the sandbox: only once a kit notebook is graded

        converter = kit.parent.parent
        workers = max(1, kit.workers or os.cpu_count() or 1)
        # A fresh interpreter for the sandbox's template (spawn), holding nothing of this process:
        # neither the gradebook's rows nor, in formgrader's long-lived server, a previous run's
        # secret. It never sees the course folder (other students' work, the source's answers).
        self.grader = Grader(self.config, hide=(Path(self.coursedir.root).resolve(),), mode="spawn", workers=workers)
        self.prefetch = _Prefetch(workers, self._grade)
        _speedups(+1)
        self._finalizer = weakref.finalize(converter, self.close)  # a run nbgrader abandons (and exit)
        for student, assignment, notebook in _to_be_autograded(converter):
            if self._parts.get(assignment) is None:
                try:
                    self.kit_parts(assignment, notebook, kit)
                except GraderError:
                    continue  # nbgrader's own pass reports it on that notebook
            if any(part is not None for part in self._parts[assignment].get(notebook, {}).values()):
                key = (student, assignment, notebook)
                self.pending[key] = self.prefetch.submit(key)

    def _grade(self, key: tuple[str, str, str]):
        student, assignment, notebook = key
        folder = self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment)
        parts = sorted({part for part in self._parts[assignment][notebook].values() if part})
        return self.grader.grade(Path(folder) / f"{notebook}.ipynb", parts=parts, student=student)

    def score_deleted_test_cells(self, info: dict, deleted: dict[str, str], report) -> None:
        """A kit test cell missing from the notebook still gets its part's points, as on every route."""
        if not deleted:
            return
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            for grade_id, part in deleted.items():
                grade = gradebook.find_grade(grade_id, info["notebook"], info["assignment"], info["student"])
                result = report.parts.get(part)
                grade.auto_score = float(result.score) if result else 0.0
                grade.needs_manual_grade = grade.manual_score is not None
            gradebook.db.commit()

    def close(self) -> None:
        """Idempotent; a later notebook nbgrader had not announced starts a new grader."""
        if self.grader is None:
            return
        self.prefetch.stop()
        for future in self.pending.values():
            future.cancel()
        self.pending.clear()
        grader, self.grader = self.grader, None
        grader.close()
        _speedups(-1)
        self._finalizer.detach()


_sessions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # nbgrader's converter -> _Session
_sessions_lock = threading.Lock()


def _session_of(preprocessor) -> _Session:
    """The session of the Autograde run this preprocessor works for (its exporter's parent)."""
    converter = getattr(preprocessor.parent, "parent", None)
    if not isinstance(converter, Autograde):
        raise GraderError(f"{type(preprocessor).__name__} belongs in Autograde's preprocessor lists only")
    return _session_for(converter)


def _session_for(converter) -> _Session:
    with _sessions_lock:
        if converter not in _sessions:
            _sessions[converter] = _Session(converter.coursedir)
        return _sessions[converter]


def _to_be_autograded(converter):
    """(student, assignment, notebook) of each notebook this run will autograde, in nbgrader's order:
    BaseConverter.init_destination's decision, without its side effects (a guess: a notebook
    missed here is graded when nbgrader reaches it)."""
    coursedir = converter.coursedir
    excluded = set(filter(None, (coursedir.student_id_exclude or "").split(",")))
    submitted = re.compile(coursedir.format_path(coursedir.submitted_directory, "(?P<student>.*)",
                                                 "(?P<assignment>.*)", escape=True) + "$")
    for folder in sorted(converter.assignments):
        notebooks = sorted(converter.assignments[folder])
        found = submitted.match(folder)
        if not notebooks or found is None:
            continue
        student, assignment = found["student"], found["assignment"]
        if student in excluded:
            continue
        dest = Path(converter._format_dest(assignment, student))
        outputs = [dest / Path(notebook).name for notebook in notebooks]
        if not converter.force and all(output.exists() for output in outputs):
            new = coursedir.get_existing_timestamp(converter._format_source(assignment, student))
            old = coursedir.get_existing_timestamp(str(dest))
            if new is None or old is None or new <= old:
                continue
        for notebook in notebooks:
            yield student, assignment, Path(notebook).stem


_speedup_lock = threading.Lock()
_speedup_users = [0, None]  # sessions running, and the exit of the patches they share


def _speedups(change: int) -> None:
    """_nbgrader_sped_up while any session runs (sessions may overlap in formgrader's server)."""
    with _speedup_lock:
        if change > 0 and _speedup_users[0] == 0:
            patches = _nbgrader_sped_up()
            patches.__enter__()
            _speedup_users[1] = patches
        _speedup_users[0] += change
        if change < 0 and _speedup_users[0] == 0:
            patches, _speedup_users[1] = _speedup_users[1], None
            patches.__exit__(None, None, None)


@contextmanager
def _nbgrader_sped_up():
    """Costs of nbgrader's machinery that change nothing it writes, cut while the kit grades
    (measured with cProfile: together most of nbgrader's own time per notebook):
      - CheckCellMetadata validates every cell with `jsonschema.validate`, which first checks the
        schema itself, every call: the schema is checked once, then each cell as before (the
        same validator, the same best-match error);
      - every `Gradebook(...)` (about ten per notebook) creates a new SQLAlchemy engine, asks the
        database for its tables, creates the missing ones (about twenty queries) and checks the
        course row; and `close()` disposes of the engine: one engine per database URL is reused,
        and once a gradebook's tables and course were made, later Gradebooks of the same URL and
        course only open their own session (closing it closes the session, as before).
    A patch of nbgrader's module attributes, not a configurable trait, because no trait reaches
    either cost: CheckCellMetadata's validator calls the `jsonschema` module that nbgrader's
    nbgraderformat.common imported, and the Gradebooks are made inside nbgrader's own converter and
    preprocessors (SaveAutoGrades, OverwriteKernelspec, AssignLatePenalties, ...), whichever lists a
    course's config names. It holds only while a kit session grades (_speedups) and is undone after."""
    validators: dict[int, tuple] = {}

    def validate(instance, schema, *args, **kwargs):
        if args or kwargs:
            return jsonschema.validate(instance, schema, *args, **kwargs)
        if id(schema) not in validators:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validators[id(schema)] = (schema, cls(schema))  # the schema is kept, so its id stays its own
        error = jsonschema.exceptions.best_match(validators[id(schema)][1].iter_errors(instance))
        if error is not None:
            raise error

    engines: dict[str, object] = {}
    real_create_engine, real_init, real_close = api.create_engine, api.Gradebook.__init__, api.Gradebook.close
    made: set[tuple[str, str]] = set()  # (database URL, course id) whose tables and course row exist

    def create_engine(url, *args, **kwargs):
        key = repr((str(url), args, sorted(kwargs.items())))
        if key not in engines:
            engines[key] = real_create_engine(url, *args, **kwargs)
        return engines[key]

    def init(self, db_url, course_id="default_course", authenticator=None):
        if (str(db_url), course_id) not in made:
            real_init(self, db_url, course_id, authenticator)
            made.add((str(db_url), course_id))
            return
        self.engine = create_engine(db_url, echo=False, future=True)
        self.db = api.scoped_session(api.sessionmaker(autoflush=True, bind=self.engine, future=True))
        self.course_id, self.authenticator = course_id, authenticator

    def close(self):
        self.db.remove()

    class JsonSchema:  # nbgrader's `jsonschema` name, with `validate` as above
        def __getattr__(self, name):
            return validate if name == "validate" else getattr(jsonschema, name)

    common.jsonschema, api.create_engine = JsonSchema(), create_engine
    api.Gradebook.__init__, api.Gradebook.close = init, close
    try:
        yield
    finally:
        common.jsonschema, api.create_engine = jsonschema, real_create_engine
        api.Gradebook.__init__, api.Gradebook.close = real_init, real_close
        for engine in engines.values():
            engine.dispose()


class _PrintableFormatter(logging.Formatter):
    """nbgrader's log lines name student folders and quote notebook errors: no escapes reach the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _logger() -> logging.Logger:
    log = logging.getLogger("autograder.nbgrader")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(_PrintableFormatter("[nbgrader | %(levelname)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False
    return log




class BridgeAutograde(Autograde):
    """nbgrader's Autograde as configured by the kit, noting whom it graded; a notebook nbgrader
    cannot read is scored 0 with a note (as a missing one), instead of failing the student."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.graded: dict[str, list[str]] = {}  # student -> notes

    def convert_single_notebook(self, notebook_filename: str) -> None:
        info = self.init_single_notebook_resources(notebook_filename)["nbgrader"]
        notes = self.graded.setdefault(info["student"], [])
        try:
            nbformat.read(notebook_filename, as_version=4)
        except Exception as unreadable:  # not JSON, not a notebook, not UTF-8...
            notes.append(f"{info['notebook']}: not a readable notebook, scored 0")
            self.log.warning("Unreadable notebook, scored 0: %s (%s: %s)", notebook_filename,
                             type(unreadable).__name__, unreadable)
            with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
                notebook = gradebook.find_submission_notebook(info["notebook"], info["assignment"],
                                                              info["student"])
                for grade in notebook.grades:
                    grade.auto_score, grade.needs_manual_grade = 0, False
                gradebook.db.commit()
            return
        super().convert_single_notebook(notebook_filename)
        session = _sessions.get(self)
        report = session.reports.get((info["student"], info["assignment"], info["notebook"])) if session else None
        if report is not None and report.error:
            notes.append(report.error)


def autograde(assignment: str, course_dir: str | Path, student: str | None = None,
              workers: int | None = None, config_path: str | Path | None = None) -> AutogradeResult:
    """Grade `course_dir/submitted/*/<assignment>/` with the kit and record the scores in the
    course's gradebook through nbgrader. Always regrades (like `nbgrader autograde --force`)."""
    started = time.perf_counter()
    _quiet_nbgrader_sawarnings()
    course_dir = Path(course_dir)
    config = load_config(config_path)
    coursedir, nb_config = course_directory(course_dir, assignment, student)
    parts_of_test_cells(coursedir, assignment, config)  # a course the kit cannot grade: one line, before nbgrader
    nb_config.Autograde.sanitize_preprocessors = KIT_SANITIZE
    nb_config.Autograde.autograde_preprocessors = KIT_AUTOGRADE
    nb_config.KitGrade.grading_toml = str(config.path)
    nb_config.KitGrade.workers = max(1, workers or os.cpu_count() or 1)
    converter = BridgeAutograde(coursedir=coursedir, config=nb_config, log=_logger())
    converter.force = True
    try:
        converter.start()
    except NbGraderException as failed:
        raise GraderError(f"nbgrader could not finish: {failed}") from None
    finally:
        session = _sessions.get(converter)
        if session is not None:
            session.close()
    result = AutogradeResult(assignment, course_dir)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
        for name, notes in sorted(converter.graded.items()):
            submission = gradebook.find_submission(assignment, name)
            result.students.append(StudentScore(name, submission.score, submission.max_score, tuple(notes)))
    result.seconds = time.perf_counter() - started
    return result
