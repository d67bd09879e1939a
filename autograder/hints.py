"""What to look at when a failed output has no diagnosed cause: the formula it should follow.

diagnosis.py names the mistake when one from its catalogue explains the outputs; when none does,
the student still gets the rule the output must follow, in the notebook's notation. A reminder never
claims a cause, so it cannot be wrong about one.
"""
from __future__ import annotations

from .compare import Mismatch

# (class, output) -> the formula, as the notebook states it
FORMULAS = {
    ("Linear", "h"): "h = x W + b, with x of shape (N, D_in) and W of shape (D_in, D_out)",
    ("Linear", "dx"): "dx = dh Wᵀ, shape (N, D_in)",
    ("Linear", "dW"): "dW = xᵀ dh, shape (D_in, D_out)",
    ("Linear", "db"): "db = dh summed over the rows, shape (D_out,)",
    ("ReLU", "r"): "r = max(0, h), elementwise",
    ("ReLU", "dh"): "dh = dr where h > 0 and 0 elsewhere (also where h is exactly 0)",
    ("Softmax", "S"): "S = exp(r − rowmax) / rowsum(exp(r − rowmax)); every row sums to 1",
    ("Softmax", "dr"): "dr = S ⊙ (dS − rowsum(dS ⊙ S)): every output of a row depends on every input of that row",
    ("NLLLoss", "L"): "L = −(1/N) Σ_i log S[i, true class of row i], a 0-dim tensor",
    ("NLLLoss", "dS"): "dS = −1/(N S) at the true class and exactly 0 elsewhere",
}

NOT_FINITE = {
    "Softmax": "exp overflowed: subtract each row's maximum from r before exp (softmax is unchanged by it)",
    "NLLLoss": "log(0) or 0·log 0: take the log only of the true-class probabilities, divide only where y is 1",
}


def reminder(mismatch: Mismatch, cls: str) -> str:
    """The rule a wrong output must follow ('' when there is nothing useful to add)."""
    if mismatch.kind == "nonfinite":
        return NOT_FINITE.get(cls, "look for log(0), a division by zero or exp of a large number")
    return FORMULAS.get((cls, mismatch.output), "")
