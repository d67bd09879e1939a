"""Pure comparison of one student output with the oracle's, assert_close style.

Shape and dtype are compared exactly (plain allclose would broadcast (1, D) against (D,)), then
values within the dtype's tolerance. The result says what differs without revealing the expected
values themselves.
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
        what = NAMES.get(kind[0]) or (f"a tensor of unsupported dtype" if kind[0] == "dtype" else f"a {kind[-1]}")
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
    if got.numel() and (error > allowed).any():
        return Mismatch(output, "value", f"{output} has wrong values (off by up to {error.max().item():.3g})",
                        got, expected)
    return None
