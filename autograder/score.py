"""Pure scoring: one check's outcome from the sandbox + the oracle's outputs -> a CheckResult.

A check is all or nothing: it earns its points from grading.toml when every compared output
matches, the student's code raised nothing, and no method it calls used a forbidden API.
"""
from __future__ import annotations

from .compare import compare
from .hints import hint_for
from .config import Tolerance
from .records import CheckResult

EXACT = Tolerance(rtol=0.0, atol=0.0)


def _error_text(error: dict) -> str:
    where = f" ({error['line']})" if error.get("line") else ""
    return f"{error.get('where', '?')} raised {error.get('type', 'an error')}: {error.get('message', '')}{where}"


def score_check(entry, outcome, static_forbidden: dict, tolerance: dict) -> CheckResult:
    """entry: checks.SuiteEntry; outcome: sandbox ProbeOutcome or None (not run);
    static_forbidden: "Class.method" -> forbidden names found by the AST scan."""
    check = entry.check

    def result(passed: bool, message: str) -> CheckResult:
        prefix = "" if check.judge else f"Given: {check.given}.\n"
        return CheckResult(check.name, entry.points if passed else 0.0, entry.points, passed, prefix + message)

    if outcome is None:
        return result(False, "not run")
    if outcome.failure:
        return result(False, outcome.failure[0].upper() + outcome.failure[1:] + ".")
    calls = []
    for method in check.methods:
        for call in list(outcome.forbidden.get(method, [])) + list(static_forbidden.get(method, [])):
            if (method, call) not in calls:
                calls.append((method, call))
    if calls:
        used = "; ".join(f"{method} uses {call}" for method, call in calls)
        return result(False, f"Forbidden API: {used}. Implement it with basic tensor operations.")
    if outcome.error:
        return result(False, _error_text(outcome.error))
    try:
        passed, message = _verdict(entry, outcome.outputs, tolerance)
    except Exception as unusable:  # the outputs are the student's: an odd one costs this check, never the grader
        passed, message = False, (f"your outputs could not be checked ({type(unusable).__name__}: "
                                  f"{str(unusable)[:200]})")
    return result(passed, message)


def _verdict(entry, outputs: dict, tolerance: dict) -> tuple[bool, str]:
    check = entry.check
    if check.judge:
        return check.judge(outputs)
    for output in check.produced:
        expected = entry.expected[output]
        got = outputs.get(output, "missing")
        mismatch = compare(output, got, expected, EXACT, shape_only=True)
        if mismatch is None and got.dtype != expected.dtype:
            mismatch = f"{output} has dtype {str(got.dtype)[6:]}, expected {str(expected.dtype)[6:]}"
        if mismatch:
            problem = mismatch if isinstance(mismatch, str) else mismatch.problem
            method = check.name.split(".")[1]
            return False, (f"This check counts only when {method} returns a tensor of the right shape "
                           f"and dtype: {problem}.")
    for output in check.compare:
        expected = entry.expected[output]
        # an input must come back bit for bit; outputs within the dtype's tolerance
        tol = EXACT if output.endswith("_after") else tolerance[str(expected.dtype).replace("torch.", "")]
        mismatch = compare(output, outputs.get(output, "missing"), expected, tol, check.shape_only)
        if mismatch:
            hint = hint_for(mismatch, check)
            return False, mismatch.problem + (f"\nHint: {hint}" if hint else "")
    return True, "passed"
