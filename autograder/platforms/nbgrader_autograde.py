"""`autograder nbgrader autograde`: nbgrader's autograde, with the kit's sandboxed grader in place of
a Jupyter kernel.

nbgrader's own Autograde converter does everything it always does (find `submitted/`, create the
student and submission rows, restore locked cells from the gradebook, copy the source's other
files, zero missing notebooks, late penalties, file permissions) except executing the notebook:
its `Execute` preprocessor is replaced by `KitScores` (in the configurable `autograde_preprocessors`
list, nothing of nbgrader copied), which fills each test cell with what the
hidden-test call `grade_part("<part>")` would have printed and returned, from a report the kit's
grader made beforehand. nbgrader's `SaveAutoGrades` then turns those outputs into gradebook rows by
its usual rule, so `nbgrader export`, formgrader and `nbgrader generate_feedback` work as after a
plain `nbgrader autograde`; the autograded notebooks carry the kit's feedback and no hidden tests.

    KitAutograde.convert_notebooks
      1. every submitted notebook -> nbgrader's sanitize pass (in memory) -> a staging file, handed
         to one warm Grader's pool (`workers` at a time)
      2. meanwhile nbgrader's loop: sanitize -> KitScores (waits for that notebook's report) ->
         ClearHiddenTests -> SaveAutoGrades -> ... -> write

Test cells are mapped to parts by the `grade_part("<part>")` call in their gradebook source.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
import time
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, load_config
from ..records import GraderError
from ..terminal import printable

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


def _nbgrader():
    try:
        import nbgrader  # noqa: F401
    except ImportError as missing:
        raise GraderError(f"this needs nbgrader ({missing}); install it with: "
                          f"pip install 'nn-grading-kit[notebook]'") from None


def course_directory(course_dir: Path, assignment: str, student: str | None):
    """nbgrader's CourseDirectory for `course_dir`, with its nbgrader_config.py applied, and the
    traitlets config it came from."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config as TraitletsConfig
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

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


def parts_of_test_cells(coursedir, assignment: str, config: Config) -> dict[str, dict[str, str]]:
    """notebook name -> {test cell grade_id -> part}, read from the gradebook (the cells
    `nbgrader generate_assignment` recorded). GraderError for any test cell the kit cannot score."""
    from nbgrader.api import Gradebook, MissingEntry

    if coursedir.db_url.startswith("sqlite:///") and not Path(coursedir.db_url[len("sqlite:///"):]).exists():
        raise GraderError(f"no gradebook in {coursedir.root}; run `nbgrader generate_assignment {assignment}` first")
    mapping: dict[str, dict[str, str]] = {}
    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
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
                if len(calls) != 1:
                    raise GraderError(f"{where} has {len(calls)} grade_part(\"<part>\") calls; the kit scores "
                                      f"only cells with exactly one (use plain `nbgrader autograde` otherwise)")
                part = calls[0]
                if part not in {name.split(".")[0] for name in config.points}:
                    raise GraderError(f"{where} grades part '{part}', which grading.toml does not define")
                if abs(config.part_points(part) - cell.max_score) > 1e-9:
                    raise GraderError(
                        f"{where} is worth {cell.max_score:g} points but part '{part}' is worth "
                        f"{config.part_points(part):g} in grading.toml; rebuild the notebook and run "
                        f"`nbgrader generate_assignment {assignment}` again")
                parts[cell.name] = part
    return mapping


def __getattr__(name: str):
    """`autograder.platforms.nbgrader_autograde.OverwriteCellsQuietly`, importable from a course's
    nbgrader_config.py, without importing nbgrader for every other use of this module."""
    if name == "OverwriteCellsQuietly":
        return _overwrite_cells_class()
    raise AttributeError(name)


@functools.lru_cache(maxsize=None)
def _overwrite_cells_class():
    from nbformat.v4 import new_code_cell
    from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells

    class OverwriteCellsQuietly(OverwriteCells):
        """nbgrader's OverwriteCells without its false alarm for hidden tests (jupyter/nbgrader#1961):
        generate_assignment records a test cell's checksum before it clears the hidden tests, so
        every untouched test cell "has changed!" at autograde. A cell whose source is the recorded
        source with its hidden tests cleared is untouched: it is restored as always, silently.
        Every other change (a student's edit of a locked cell) is still reported, and restored."""

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

    return OverwriteCellsQuietly


def _kit_scores_class():
    from nbgrader import utils
    from nbgrader.preprocessors import NbGraderPreprocessor
    from nbformat.v4 import new_output

    from .kernel_hook import part_feedback

    class KitScores(NbGraderPreprocessor):
        """In place of Execute: each kit test cell gets the outputs grade_part would have made
        (the part's feedback on stdout, its points as the cell's value); nothing is executed."""

        def __init__(self, reports: dict, parts: dict, **kwargs):
            super().__init__(**kwargs)
            self.reports, self.parts = reports, parts

        def preprocess(self, nb, resources):
            info = resources["nbgrader"]
            self.report = self.reports[(info["student"], info["notebook"])]
            self.cell_parts = self.parts.get(info["notebook"], {})
            return super().preprocess(nb, resources)

        def preprocess_cell(self, cell, resources, index):
            part = self.cell_parts.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
            if part is not None and utils.is_grade(cell):
                result = self.report.parts.get(part)
                score = float(result.score) if result else 0.0
                cell.outputs = [
                    new_output("stream", name="stdout", text=part_feedback(self.report, part) + "\n"),
                    new_output("execute_result", data={"text/plain": repr(score)}, execution_count=index + 1),
                ]
                cell.execution_count = index + 1
            return cell, resources

    return KitScores


def _converter_class():
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import ClearHiddenTests, Execute, OverwriteCells

    KitScores = _kit_scores_class()
    OverwriteCellsQuietly = _overwrite_cells_class()

    class KitAutograde(Autograde):
        """nbgrader's Autograde with the kit's grader in place of the kernel (see the module doc)."""

        def __init__(self, grader, parts: dict, workers: int, **kwargs):
            super().__init__(**kwargs)
            self.grader, self.parts, self.workers = grader, parts, workers
            self.reports: dict = {}  # (student, notebook) -> GradeReport
            self.unreadable: dict = {}  # (student, notebook) -> why nbgrader could not read it
            self.pending: dict = {}  # (student, notebook) -> Future of its report, until settled
            self.graded: list[str] = []
            # nbgrader's own configurable chains (a course's nbgrader_config.py may set them), with
            # two steps swapped: OverwriteCells without nbgrader#1961's false alarms, and the kernel
            # (Execute) replaced by the kit's scores, then ClearHiddenTests (feedback shows results,
            # never the hidden code)
            self.sanitize_preprocessors = [OverwriteCellsQuietly if step is OverwriteCells else step
                                           for step in self.sanitize_preprocessors]
            self.autograde_preprocessors = [
                swapped for step in self.autograde_preprocessors
                for swapped in ((KitScores(self.reports, self.parts, parent=self), ClearHiddenTests)
                                if step is Execute else (step,))]

        def convert_notebooks(self) -> None:
            """Grading runs in the pool while nbgrader's own loop (this thread) records each
            notebook as soon as its report is in: a class costs about the longer of the two, not
            their sum."""
            with tempfile.TemporaryDirectory(prefix="autograder-nbgrader-") as staging:
                pool = ThreadPoolExecutor(max_workers=self.workers)
                try:
                    self._start_grading(Path(staging), pool)
                    super().convert_notebooks()
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
                for key in list(self.pending):
                    self._settle(key)
            self.graded = sorted({student for student, _ in self.reports} | {s for s, _ in self.unreadable})

        def _submitted_notebooks(self):
            excluded = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
            for filename in sorted(f for found in self.assignments.values() for f in found):
                resources = self.init_single_notebook_resources(filename)
                info = resources["nbgrader"]
                if info["student"] in excluded or info["notebook"] not in self.parts:
                    continue  # nbgrader skips these too
                yield (info["student"], info["notebook"]), filename, resources

        def _start_grading(self, staging: Path, pool: ThreadPoolExecutor) -> None:
            """Stage each notebook exactly as nbgrader's sanitize pass leaves it (the file
            grade_part would grade in a kernel) and hand it to the pool, in nbgrader's order."""
            parts = sorted({p for cells in self.parts.values() for p in cells.values()})
            self._sanitizing = True
            self._init_preprocessors()
            with _quiet(self.log):  # nbgrader's own pass repeats these warnings; say them once
                for number, (key, filename, resources) in enumerate(self._submitted_notebooks()):
                    try:
                        text, _ = self.exporter.from_filename(filename, resources=resources)
                    except Exception as unreadable:  # not JSON, not a notebook, broken metadata...
                        self.unreadable[key] = f"{type(unreadable).__name__}: {unreadable}"
                        continue
                    path = staging / str(number) / f"{key[1]}.ipynb"
                    path.parent.mkdir()
                    path.write_text(text, encoding="utf-8")
                    self.pending[key] = pool.submit(self._grade_one, path, parts, key[0])

        def _settle(self, key) -> None:
            """Wait for this notebook's report (or the grader's failure on it)."""
            future = self.pending.pop(key, None)
            if future is None or future.cancelled():
                return
            report = future.result()
            if isinstance(report, Exception):  # scored 0 like an unreadable notebook, said why
                self.unreadable[key] = f"the grader failed on it ({type(report).__name__}: {report})"
            else:
                self.reports[key] = report

        def _grade_one(self, path: Path, parts: list, student: str):
            """The report, or the exception the grader raised: one notebook never stops the class."""
            try:
                return self.grader.grade(path, parts=parts, student=student)
            except Exception as failure:
                return failure

        def convert_single_notebook(self, notebook_filename: str) -> None:
            resources = self.init_single_notebook_resources(notebook_filename)
            key = (resources["nbgrader"]["student"], resources["nbgrader"]["notebook"])
            self._settle(key)
            if key in self.unreadable:  # as nbgrader does for a missing notebook: zero, and say why
                self.log.warning("Unreadable notebook, scored 0: %s (%s)", notebook_filename, self.unreadable[key])
                with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
                    notebook = gradebook.find_submission_notebook(key[1], resources["nbgrader"]["assignment"], key[0])
                    for grade in notebook.grades:
                        grade.auto_score, grade.needs_manual_grade = 0, False
                    gradebook.db.commit()
                return
            super().convert_single_notebook(notebook_filename)

    return KitAutograde


@contextmanager
def _nbgrader_sped_up():
    """Two costs of nbgrader's machinery that change nothing it writes, cut while the bridge runs
    (measured with cProfile on 100 notebooks: together about half of nbgrader's time):
      - CheckCellMetadata validates every cell with `jsonschema.validate`, which first checks the
        schema itself, every call: the schema is checked once, then each cell as before (the
        same validator, the same best-match error);
      - every `Gradebook(...)` (about ten per notebook) creates a new SQLAlchemy engine: one
        engine per database URL is reused (each Gradebook still has its own session)."""
    import jsonschema
    from nbgrader import api
    from nbgrader.nbgraderformat import common

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
    real_create_engine = api.create_engine

    def create_engine(url, *args, **kwargs):
        key = repr((str(url), args, sorted(kwargs.items())))
        if key not in engines:
            engines[key] = real_create_engine(url, *args, **kwargs)
        return engines[key]

    class JsonSchema:  # nbgrader's `jsonschema` name, with `validate` as above
        def __getattr__(self, name):
            return validate if name == "validate" else getattr(jsonschema, name)

    common.jsonschema, api.create_engine = JsonSchema(), create_engine
    try:
        yield
    finally:
        common.jsonschema, api.create_engine = jsonschema, real_create_engine
        for engine in engines.values():
            engine.dispose()


@contextmanager
def _quiet(log):
    logger = getattr(log, "logger", log)  # a LoggerAdapter wraps the logger
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


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


def autograde(assignment: str, course_dir: str | Path, student: str | None = None,
              workers: int | None = None, config_path: str | Path | None = None) -> AutogradeResult:
    """Grade `course_dir/submitted/*/<assignment>/` with the kit and record the scores in the
    course's gradebook through nbgrader. Always regrades (like `nbgrader autograde --force`)."""
    _nbgrader()
    from nbgrader.api import Gradebook
    from nbgrader.converters.base import NbGraderException

    started = time.perf_counter()
    course_dir = Path(course_dir)
    config = load_config(config_path)
    workers = max(1, workers or os.cpu_count() or 1)
    from ..pipeline import Grader

    # The children must not see the course (other students' work, the source with its answers);
    # the template starts before the gradebook is opened, so it holds nothing about the class.
    with Grader(config, hide=(course_dir.resolve(),), workers=workers) as grader:
        coursedir, nb_config = course_directory(course_dir, assignment, student)
        parts = parts_of_test_cells(coursedir, assignment, config)
        converter = _converter_class()(grader, parts, workers, coursedir=coursedir, config=nb_config,
                                       log=_logger())
        converter.force = True
        try:
            with _nbgrader_sped_up():
                converter.start()
        except NbGraderException as failed:
            raise GraderError(f"nbgrader could not finish: {failed}") from None
    result = AutogradeResult(assignment, course_dir)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gradebook:
        for name in converter.graded:
            submission = gradebook.find_submission(assignment, name)
            notes = [f"{nb}: not a readable notebook, scored 0" for s, nb in converter.unreadable if s == name]
            notes += [report.error for (s, _), report in converter.reports.items() if s == name and report.error]
            result.students.append(StudentScore(name, submission.score, submission.max_score, tuple(notes)))
    result.seconds = time.perf_counter() - started
    return result
