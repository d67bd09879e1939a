"""What to look at when a failed output has no diagnosed cause: the formula it should follow.

diagnosis.py names the mistake when one from its part's catalogue explains the outputs; when none
does, the student still gets the rule the output must follow, in the notebook's notation, as the
part's checks module states it (FORMULAS, NOT_FINITE). A reminder never claims a cause, so it cannot
be wrong about one.
"""
from __future__ import annotations

from .compare import Mismatch
from .diagnosis import NOTHING_KNOWN, Knowledge

NOT_FINITE = "look for log(0), a division by zero or exp of a large number"


def reminder(mismatch: Mismatch, knowledge: Knowledge = NOTHING_KNOWN) -> str:
    """The rule a wrong output must follow ('' when there is nothing useful to add); `knowledge`:
    the failed check's part's (its SuiteEntry's)."""
    if mismatch.kind == "nonfinite":
        return knowledge.not_finite or NOT_FINITE
    return knowledge.formulas.get(mismatch.output, "")
