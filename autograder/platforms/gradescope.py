"""Gradescope, inside its container: grade one submission, write results.json.

    run(root)   -> what run_autograder does: grade <root>/submission in the sandbox, then write
                   <root>/results/results.json atomically, last, from this trusted process
    selfcheck() -> what setup.sh ends with: the reference solution must get full marks here

Layout inside the container (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
<root>/source (the unzipped kit), <root>/submission (the student's files),
<root>/submission_metadata.json, <root>/results/results.json. <root> is /autograder unless the
environment variable AUTOGRADER_ROOT says otherwise. The zip itself is built by gradescope_build.py.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..course.config import Config, load_config
from ..files import KIT_ROOT, write_atomic
from ..course.parts import reference_source
from ..records import GraderError
from ..sandbox.trees import walk

DEFAULT_ROOT = "/autograder"
COURSE_FILE = "course.toml"  # in the zip, beside the kit's grading.toml, when built with --config
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
# From most to least shown. Gradescope has no "after the due date AND once published"; publishing is
# an explicit act that normally follows the due date, so after_published counts as the stricter.
_OPENNESS = {"visible": 0, "after_due_date": 1, "after_published": 2, "hidden": 3}


def check_visibility(config: Config) -> None:
    """Gradescope rejects unknown visibility values; say so before the zip is uploaded."""
    for key, value in vars(config.gradescope).items():
        if value not in VISIBILITIES:
            raise GraderError(f"grading.toml: [gradescope] {key} = {value!r}; "
                              f"use one of {', '.join(VISIBILITIES)}")


def course_config() -> Path | None:
    """The course file `gradescope build --config` put into the zip (laid over the kit's grading.toml)."""
    path = KIT_ROOT / COURSE_FILE
    return path if path.is_file() else None


def container_root() -> Path:
    return Path(os.environ.get("AUTOGRADER_ROOT") or DEFAULT_ROOT)


def submitter_names(metadata_path: Path) -> str | None:
    """'Ada Lovelace, Alan Turing' from submission_metadata.json; None when absent or unreadable."""
    try:
        users = json.loads(metadata_path.read_text(encoding="utf-8")).get("users") or []
        names = [str(user["name"]) for user in users if isinstance(user, dict) and user.get("name")]
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return ", ".join(names) or None


def _received(submission: Path) -> str:
    if not submission.is_dir():
        return "no files"
    try:  # what the student uploaded, however deep or odd: never through a link, within trees' caps
        names = [entry.relative for entry in walk(submission, complete=False) if entry.kind == "file"]
    except OSError:
        return "files that cannot be read"
    if not names:
        return "no files"
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return shown


def explain_unusable(report, submission: Path) -> str:
    """The first lines a student sees when nothing could be graded: what went wrong, what we got,
    what to upload instead."""
    from ..intake.submission import PREFERRED_NOTEBOOK

    return (f"Your submission could not be graded: {report.error}.\n"
            f"We received: {_received(submission)}.\n"
            f"Upload your completed notebook {PREFERRED_NOTEBOOK} (or one .py file defining "
            f"Linear, ReLU, Softmax and NLLLoss), then submit again.\n\n")


def stricter(*visibilities: str) -> str:
    """The visibility that shows least of those given."""
    return max(visibilities, key=_OPENNESS.__getitem__)


def gradescope_results(report, config: Config, submission: Path) -> dict:
    """results.json with Gradescope's visibility rules applied (a test's own `visibility` overrides
    the top level; the top-level `output` and `score` follow the top level):
      - each check is shown no earlier than `visibility` (the whole result) allows, nor earlier than
        `hidden_check_visibility` does;
      - the total score and the per-part breakdown would give the hidden checks away, so while
        they are hidden the top level (output and score) is hidden as long.
    A submission that could not be graded at all keeps its explanation visible as `visibility`
    says: it reveals no check, and the student must learn what to upload instead."""
    from ..feedback.report import results_json

    visibility = config.gradescope.visibility
    checks = stricter(visibility, config.gradescope.hidden_check_visibility)
    results = results_json(report, config)
    results.pop("max_score", None)  # not a results.json field; Gradescope takes it from the tests
    for test in results["tests"]:
        test["visibility"] = checks
    if report.error:
        results["output"] = explain_unusable(report, submission) + results["output"]
    else:  # the score and the output's per-part breakdown would give the checks away
        results["visibility"] = checks
    return results


def write_results(results_dir: Path, results: dict) -> Path:
    """Atomically replace results.json, so a file planted there earlier (or a half-written one)
    never survives."""
    results_dir.mkdir(parents=True, exist_ok=True)
    target = results_dir / "results.json"
    write_atomic(target, json.dumps(results, indent=2), fsync=True)
    return target


def run(root: str | Path | None = None, config_path: str | Path | None = None):
    """Grade <root>/submission and write <root>/results/results.json. Returns (report, path).
    A bad submission is a zero with a message. When the grader itself fails (a broken kit or
    configuration, a sandbox the container refuses), results.json still says so (see
    failure_results) and GraderError is raised, so run_autograder exits non-zero."""
    root = Path(root) if root else container_root()
    try:
        return _grade_into_results(root, config_path)
    except Exception as failure:  # whatever went wrong, Gradescope gets a results.json that says so
        reason = str(failure) if isinstance(failure, GraderError) else f"{type(failure).__name__}: {failure}"
        reason = " ".join(reason.split())
        try:
            write_results(root / "results", failure_results(reason))
        except OSError:
            pass  # run_autograder writes its own minimal results.json when none is there
        if isinstance(failure, GraderError):
            raise
        raise GraderError(f"the grader failed: {reason}") from failure


def failure_results(reason: str) -> dict:
    """results.json for a run the grader could not finish: score 0, a sentence for the student and
    one for the instructor, the error in extra_data. Visible, since it reveals no check."""
    return {
        "score": 0,
        "execution_time": 0,
        "output": ("The autograder failed while grading your submission; this is not a problem with your "
                   "work. Your instructors can see what happened: please tell them, and submit again "
                   "once they have fixed it.\n"),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
        "extra_data": {
            "error": reason,
            "for_instructor": ("The grader itself failed (not the student's code), so this score of 0 "
                               "is not a grade: fix the cause named in 'error' (the autograder's "
                               "stdout has the details) and rerun the submission."),
        },
    }


def _grade_into_results(root: Path, config_path):
    source, submission, results_dir = root / "source", root / "submission", root / "results"
    config = load_config(config_path or course_config())
    check_visibility(config)
    student = submitter_names(root / "submission_metadata.json")
    if os.geteuid() == 0:  # belt and braces beside the sandbox's hiding: no other uid may enter them
        for private in (source, submission, results_dir):
            if private.is_dir():
                os.chmod(private, 0o700)
    from ..pipeline import Grader

    # The grader hides the kit and the submission's parent folder (<root>) from the children; the
    # source and results folders are named too, so they stay hidden wherever the submission is.
    with Grader(config, hide=(source, results_dir)) as grader:
        report = grader.grade(submission, student=student)
    return report, write_results(results_dir, gradescope_results(report, config, submission))


def selfcheck(config_path: str | Path | None = None):
    """Grade the reference solution of every part here; GraderError unless it gets full marks (a
    sandbox the container does not allow, or a missing dependency, shows up now rather than as zeros)."""
    config = load_config(config_path or course_config())
    check_visibility(config)
    from ..pipeline import Grader

    with tempfile.TemporaryDirectory(prefix="autograder-selfcheck-") as folder, Grader(config) as grader:
        reference = Path(folder) / "reference.py"
        reference.write_text(reference_source(config.parts.values()), encoding="utf-8")
        report = grader.grade(reference, student="reference solution")
    if report.score < report.max_score or report.error:
        failed = [c for c in report.checks if not c.passed]
        reason = report.error or (f"{failed[0].name}: {failed[0].message}" if failed else "")
        reason = " ".join(reason.split())  # one line
        notices = "; ".join(report.notices)
        diagnosis = _namespace_diagnosis()
        raise GraderError(f"self-check failed: the reference solution scored {report.score:g} / "
                          f"{report.max_score:g} in this environment ({reason})"
                          f"{'; ' + notices if notices else ''}{'; ' + diagnosis if diagnosis else ''}")
    return report


def _namespace_diagnosis() -> str:
    """Say which isolation this container allows (the sandbox falls back when it refuses namespaces)."""
    from ..sandbox import isolation

    if not isolation.is_root() or isolation.namespaces_available():
        return ""
    return ("this container refuses new namespaces to root (CAP_SYS_ADMIN missing, or a seccomp "
            "profile): children run under a uid of their own with rlimits but share the host's process "
            "list and /tmp; `autograder doctor` there says which other walls hold")
