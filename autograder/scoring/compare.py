"""Pure comparison of one student output with the oracle's, assert_close style.

Shape and dtype are compared exactly (plain allclose would broadcast (1, D) against (D,)), then
values within the dtype's tolerance. The result says what differs without revealing the expected
values themselves: shapes, dtypes and which entries are wrong, never a size of the error (for an
output of zeros, "off by up to X" is the largest expected value).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

AFTER = "_after"  # probe outputs named <input>_after are inputs as they were after the calls
NAMES = {"none": "None", "missing": "nothing (the attribute was never set)"}


@dataclass(frozen=True)
class Mismatch:
    output: str  # e.g. "dW" or "x_after"
    kind: str  # "type" | "shape" | "dtype" | "nonfinite" | "value"
    problem: str  # one sentence, safe to show to a student
    got: object = None  # the student's tensor, when there was one
    expected: torch.Tensor | None = None


def compare(output: str, got, expected: torch.Tensor, tolerance, shape_only: bool = False) -> Mismatch | None:
    mismatch = _compare(output, got, expected, tolerance, shape_only)
    if mismatch and output.endswith(AFTER):  # a snapshot of an input: say so in the notebook's words
        name = output[: -len(AFTER)]
        return Mismatch(output, mismatch.kind, f"{name} was changed by your code: an argument must be left "
                        f"as it was passed in", mismatch.got, mismatch.expected)
    return mismatch


def _compare(output: str, got, expected: torch.Tensor, tolerance, shape_only: bool) -> Mismatch | None:
    if not isinstance(got, torch.Tensor):
        kind = got.split(":", 1) if isinstance(got, str) else ["other", type(got).__name__]
        what = NAMES.get(kind[0]) or ("a tensor of unsupported dtype" if kind[0] == "dtype" else f"a {kind[-1]}")
        return Mismatch(output, "type", f"{output} was {what}, expected a tensor")
    if got.shape != expected.shape:
        return Mismatch(output, "shape", f"{output} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}",
                        got, expected)
    if shape_only:
        return None
    if got.dtype != expected.dtype:
        return Mismatch(output, "dtype", f"{output} has dtype {str(got.dtype)[6:]}, expected {str(expected.dtype)[6:]} "
                        f"(the dtype of the inputs)", got, expected)
    if torch.equal(got, expected):  # the common case, in one call: equal values are within any tolerance
        return None
    got64, expected64 = got.double(), expected.double()
    bad_finite = ~torch.isfinite(got64) & torch.isfinite(expected64)
    if bad_finite.any():
        value = got64.reshape(-1)[bad_finite.reshape(-1).nonzero()[0, 0]].item()
        return Mismatch(output, "nonfinite", f"{output} contains {value} where a finite number belongs", got, expected)
    error = (got64 - expected64).abs()
    allowed = tolerance.atol + tolerance.rtol * expected64.abs()
    wrong = error > allowed
    if got.numel() and wrong.any():
        return Mismatch(output, "value", f"{output} has wrong values ({_which(wrong)})", got, expected)
    return None


def _which(wrong: torch.Tensor) -> str:
    """Which entries are wrong, by count and place: never by how much."""
    if wrong.dim() == 0:
        return "its one entry"
    count, total = int(wrong.sum()), wrong.numel()
    if count == total:
        return f"all {total} entries"
    if wrong.dim() == 2:
        rows = wrong.any(dim=1).nonzero().flatten().tolist()
        listed = ", ".join(map(str, rows[:6])) + (", ..." if len(rows) > 6 else "")
        where = f"row {rows[0]}" if len(rows) == 1 else f"rows {listed}"
        return f"{count} of {total} entries, in {where}"
    return f"{count} of {total} entries"
