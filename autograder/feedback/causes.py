"""One item per cause: the failed checks that one mistake explains, grouped for a reader.

Pure, like the reporters that use it (terminal, results.json's output, the notebook's test cells,
the per-student HTML page). Results keep one test per check; this only decides how they are read:
the cause, what to do about it, and the checks and points it cost. A method that is not written yet
is one item, however many checks call it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")  # symptoms of one mistake differ in their numbers only


@dataclass
class Item:
    key: str
    text: str  # the cause, or the symptom when no cause is known
    hint: str = ""
    checks: list = field(default_factory=list)  # CheckResults

    @property
    def lost(self) -> float:
        return sum(c.max_score - c.score for c in self.checks)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.checks]

    @property
    def example(self) -> str:
        """What the first check fed in and what came back (no cause or hint lines)."""
        lines = self.checks[0].message.splitlines()
        return "\n".join(line for line in lines if not line.startswith(("Cause: ", "Hint: ")))


def _symptom(message: str) -> tuple[str, str]:
    lines = [line for line in message.splitlines() if not line.startswith("Given: ")]
    hint = next((line[len("Hint: "):] for line in lines if line.startswith("Hint: ")), "")
    text = next((line for line in lines if not line.startswith(("Hint: ", "Cause: "))), "failed")
    return text, hint


def items(checks) -> list[Item]:
    """Failed checks grouped by cause, in the order of their first check."""
    grouped: dict[str, Item] = {}
    for check in checks:
        if check.passed:
            continue
        if check.cause:
            key, text, hint = check.cause["key"], check.cause["text"], check.cause.get("hint", "")
        else:  # no known cause: one item per method and kind of symptom, not one per check
            text, hint = _symptom(check.message)
            method = check.name.rsplit(".", 1)[0]
            key = f"{method}:{NUMBER.sub('#', text)}" if text != "not run" else f"{check.part}:not_run"
        grouped.setdefault(key, Item(key, text, hint)).checks.append(check)
    return list(grouped.values())


def checks_phrase(item: Item) -> str:
    """'−3 points: linear.backward.grad_W, linear.backward.float32'."""
    names = ", ".join(item.names)
    return f"−{item.lost:g} point{'s' if item.lost != 1 else ''}: {names}"


def as_text(checks, indent: str = "") -> str:
    """The items as plain text lines, for the terminal, results.json and the notebook."""
    lines = []
    for item in items(checks):
        lines.append(f"{indent}✗ {item.text} ({checks_phrase(item)})")
        if item.hint:
            lines.append(f"{indent}  Hint: {item.hint}")
    return "\n".join(lines)


def checks_from_result(result: dict) -> list:
    """A results.json object's tests as CheckResults (for reports built from result files). Odd
    entries (not a dict, odd types) are read as best they can be, never raised on."""
    from ..records import CheckResult

    checks = []
    for test in result.get("tests") or []:
        if not isinstance(test, dict):
            continue
        extra = test.get("extra_data") if isinstance(test.get("extra_data"), dict) else {}
        cause = extra.get("cause") if isinstance(extra.get("cause"), dict) else None
        if cause is not None:
            cause = {key: str(cause.get(key, "")) for key in ("key", "method", "text", "hint")}
        checks.append(CheckResult(str(test.get("name", "?")), _number(test.get("score")),
                                  _number(test.get("max_score")), test.get("status") == "passed",
                                  str(test.get("output", "")), cause))
    return checks


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number and abs(number) != float("inf") else 0.0
