"""The plain data passed between the grading stages, and the one error family.

Data flows one way: submission -> student code (+ probes) -> run outcome -> check results -> report.
Nothing here computes a grade; it only carries one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class GraderError(Exception):
    """Unusable input or configuration. The CLI prints it as one line and exits 2."""


@dataclass(frozen=True)
class CodeCell:
    """One block of student-run code, with where it came from (for messages)."""

    label: str  # e.g. "cell 7 (linear)" or "submission.py"
    source: str


@dataclass(frozen=True)
class StudentCode:
    """What the sandbox executes, in order, plus notices from extraction."""

    cells: tuple[CodeCell, ...]
    origin: str  # "notebook" or "python"
    notices: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return "\n\n".join(cell.source for cell in self.cells)


@dataclass(frozen=True)
class Probe:
    """One check's steps (the language of sandbox/probe.py) and input tensors; `group` is the part
    a time-out skips."""

    steps: tuple
    tensors: tuple
    group: str
    wall_seconds: float


@dataclass
class ProbeOutcome:
    """What the sandbox saw of one probe: the child's outputs (checked data, never trusted), or why not."""

    # name -> Tensor, or a str: "none", "missing", "other:<type>", "dtype:<dtype>"
    outputs: dict = field(default_factory=dict)
    error: dict | None = None  # the student's exception: where, type, message, line
    forbidden: dict = field(default_factory=dict)  # "Class.method" -> [forbidden calls seen]
    failure: str = ""  # the child died, hung or broke the protocol while running this probe
    seconds: float = 0.0


@dataclass
class RunOutcome:
    """One submission's run in the sandbox."""

    outcomes: list  # ProbeOutcome per probe, in order
    cell_errors: list = field(default_factory=list)  # exceptions raised while running the cells
    more_cell_errors: int = 0  # cells that raised past MAX_CELL_ERRORS
    load_failure: str = ""  # the cells themselves hung or killed the child
    output: str = ""  # the student's prints, capped
    audit: list = field(default_factory=list)  # what student code did that no layer needs (sandbox/audit.py)
    notices: list = field(default_factory=list)  # about the run itself (e.g. graded again), for the report
    instructor_notices: list = field(default_factory=list)  # about the run, for the instructor only


@dataclass
class CheckResult:
    """One hidden check, scored. `name` is <part>.<method>.<check>."""

    name: str
    score: float
    max_score: float
    passed: bool
    message: str = ""
    cause: dict | None = None  # diagnosis.Cause.as_dict() of a failed check: key, method, text, hint

    @property
    def part(self) -> str:
        return self.name.split(".", 1)[0]


class _Scored:
    """Points of a group of checks: a part, or a whole submission."""

    checks: list

    @property
    def score(self) -> float:
        return sum(check.score for check in self.checks)

    @property
    def max_score(self) -> float:
        return sum(check.max_score for check in self.checks)


@dataclass
class PartResult(_Scored):
    name: str
    checks: list[CheckResult] = field(default_factory=list)


@dataclass
class GradeReport(_Scored):
    """Everything known about one graded submission; reporters render it."""

    student: str
    submission: str
    checks: list[CheckResult] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # whole-submission messages, for the student
    # what the instructor should review (code that reaches into the interpreter, the OS or torch's
    # internals; a forbidden-API guard undone): never shown to the student
    instructor_notices: list[str] = field(default_factory=list)
    student_output: str = ""  # captured prints, capped
    execution_time: float = 0.0
    error: str = ""  # set when the submission could not be graded at all
    # how the sandbox ran (sandbox/modes.py): "namespaces", "user-namespaces", "bubblewrap", "uid" or "user"
    isolation: str = ""
    course_secret_id: str = ""  # fingerprint of the secret the hidden inputs came from (course/secret.py)
    bounds: dict = field(default_factory=dict)  # beyond the rlimits: seccomp, cgroup, ... (docs/threat-model.md)

    @property
    def parts(self) -> dict[str, PartResult]:
        parts: dict[str, PartResult] = {}
        for check in self.checks:
            parts.setdefault(check.part, PartResult(check.part)).checks.append(check)
        return parts


def student_id_from_path(path: Path) -> str:
    return path.stem if path.is_file() else path.name
