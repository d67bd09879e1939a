"""Pure scoring: the sandbox's outcomes + the oracle's outputs -> CheckResults, each with its cause.

A check is all or nothing: it earns its points from grading.toml when every compared output
matches, the student's code raised nothing, and the method it checks used no forbidden API. A
forbidden call costs every check of the method it ran in (and of the class's constructor): a
backward check also calls forward, but a hand-written backward is graded on its own merit. A
gradient computed by a forbidden API (autograd, a torch backward operation) costs the backward
checks wherever it ran, since that gradient is what backward returns. A check of no single method
(train) runs them all and answers for all. A failed check carries the cause of its failure
(diagnosis.py): the same cause for every check one mistake fails, so reports can group them.
"""
from __future__ import annotations

from .compare import compare
from ..course.config import Tolerance
from .diagnosis import Catalogue, Cause, cause_of_error, explain
from .hints import reminder
from ..records import CheckResult
from ..sandbox.guard import computes_gradient

EXACT = Tolerance(rtol=0.0, atol=0.0)


def _answers_for(check, method: str, call: str) -> bool:
    """Whether a forbidden `call` seen in `method` ("Class.method") costs this check."""
    checked = check.name.split(".")[1]
    if not any(m.split(".")[-1] == checked for m in check.methods):  # train: every method it runs
        return True
    name = method.split(".")[-1]
    return name in (checked, "__init__") or (checked == "backward" and computes_gradient(call))


def _forbidden_calls(check, outcome, static_forbidden: dict) -> list[tuple[str, str]]:
    calls = []
    for method in check.methods:
        for call in list(outcome.forbidden.get(method, [])) + list(static_forbidden.get(method, [])):
            if (method, call) not in calls and _answers_for(check, method, call):
                calls.append((method, call))
    return calls


def _score(entry, outcome, static_forbidden: dict, tolerance: dict):
    """(CheckResult, the first mismatch or None)."""
    check = entry.check

    def result(passed: bool, message: str, cause: Cause | None = None) -> CheckResult:
        prefix = "" if check.judge else f"Given: {check.given}.\n"
        return CheckResult(check.name, entry.points if passed else 0.0, entry.points, passed, prefix + message,
                           cause.as_dict() if cause else None)

    if outcome is None:
        return result(False, "not run"), None
    if outcome.failure:
        text = outcome.failure[0].upper() + outcome.failure[1:] + "."
        return result(False, text, Cause(f"{check.part}:failure:{outcome.failure}", "", text)), None
    calls = _forbidden_calls(check, outcome, static_forbidden)
    if calls:
        used = "; ".join(f"{method} uses {call}" for method, call in calls)
        method, call = calls[0]
        cause = Cause(f"{method}:forbidden:{call}", method, f"{used}, which the assignment forbids.",
                      "implement it with basic tensor operations")
        return result(False, f"Forbidden API: {used}. Implement it with basic tensor operations.", cause), None
    if outcome.error:
        cause = cause_of_error(outcome.error)
        return result(False, cause.text, cause), None
    try:
        passed, message, mismatch = _verdict(entry, outcome.outputs, tolerance)
    except Exception as unusable:  # the outputs are the student's: an odd one costs this check, never the grader
        passed, message, mismatch = False, (f"your outputs could not be checked ({type(unusable).__name__}: "
                                            f"{str(unusable)[:200]})"), None
    return result(passed, message), mismatch


def _verdict(entry, outputs: dict, tolerance: dict):
    """(passed, message, the first mismatch or None)."""
    check = entry.check
    if check.judge:
        return (*check.judge(outputs), None)
    for output in check.produced:
        expected = entry.expected[output]
        got = outputs.get(output, "missing")
        mismatch = compare(output, got, expected, EXACT, shape_only=True)
        if mismatch is None and got.dtype != expected.dtype:
            mismatch = compare(output, got, expected, EXACT)
        if mismatch:
            method = check.name.split(".")[1]
            return False, (f"This check counts only when {method} returns a tensor of the right shape "
                           f"and dtype: {mismatch.problem}."), mismatch
    for output in check.compare:
        expected = entry.expected[output]
        # an input must come back bit for bit; outputs within the dtype's tolerance
        tol = EXACT if output.endswith("_after") else tolerance[str(expected.dtype).replace("torch.", "")]
        mismatch = compare(output, outputs.get(output, "missing"), expected, tol, check.shape_only)
        if mismatch:
            return False, mismatch.problem, mismatch
    return True, "passed", None


def score_check(entry, outcome, static_forbidden: dict, tolerance: dict) -> CheckResult:
    """entry: checks.SuiteEntry; outcome: sandbox ProbeOutcome or None (not run);
    static_forbidden: "Class.method" -> forbidden names found by the AST scan."""
    return _score(entry, outcome, static_forbidden, tolerance)[0]


def score_all(entries, outcomes, static_forbidden: dict, tolerance: dict, catalogue: Catalogue) -> list[CheckResult]:
    """Every check scored, then the failed ones explained together (one cause may fail many)."""
    scored = [_score(e, o, static_forbidden, tolerance) for e, o in zip(entries, outcomes)]
    results = [result for result, _ in scored]
    if all(mismatch is None for _, mismatch in scored):  # nothing for a cause to explain
        return results
    try:
        causes = explain(entries, outcomes, results, tolerance, catalogue)
    except Exception:  # odd outputs no variant can be compared with: the checks keep their symptoms
        causes = {}
    for index, (result, mismatch) in enumerate(scored):
        if mismatch is None:
            continue
        cause = causes.get(index)
        if cause:
            result.cause = cause.as_dict()
            result.message += f"\nCause: {cause.text}" + (f"\nHint: {cause.hint}" if cause.hint else "")
        else:
            hint = reminder(mismatch, entries[index].knowledge)
            result.message += f"\nHint: {hint}" if hint else ""
    return results
