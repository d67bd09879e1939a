"""Pure comparison of one student output with the oracle's, assert_close style.

Shape and dtype are compared exactly (plain allclose would broadcast (1, D) against (D,)), then
values within the dtype's tolerance. The result says what differs without revealing the expected
values themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

NAMES = {"none": "None", "missing": "nothing (the attribute was never set)"}


@dataclass(frozen=True)
class Mismatch:
    output: str  # e.g. "dW" or "x_after"
    kind: str  # "type" | "shape" | "dtype" | "nonfinite" | "value"
    problem: str  # one sentence, safe to show to a student
    got: object = None  # the student's tensor, when there was one
    expected: torch.Tensor | None = None


def _where(index: torch.Tensor, shape) -> str:
    position = torch.unravel_index(index, shape) if len(shape) else ()
    return "[" + ", ".join(str(int(i)) for i in position) + "]"


def compare(output: str, got, expected: torch.Tensor, tolerance, shape_only: bool = False) -> Mismatch | None:
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
    got64, expected64 = got.double(), expected.double()
    bad_finite = ~torch.isfinite(got64) & torch.isfinite(expected64)
    if bad_finite.any():
        first = bad_finite.reshape(-1).nonzero()[0, 0]
        value = got64.reshape(-1)[first].item()
        return Mismatch(output, "nonfinite", f"{output} contains {value} at {_where(first, got.shape)}", got, expected)
    error = (got64 - expected64).abs()
    allowed = tolerance.atol + tolerance.rtol * expected64.abs()
    if got.numel() and (error > allowed).any():
        worst = (error - allowed).reshape(-1).argmax()
        return Mismatch(
            output, "value",
            f"{output} differs from the correct values: max abs error {error.max().item():.3g} "
            f"(at {_where(worst, got.shape)}; tolerance {tolerance.atol:g} + {tolerance.rtol:g}·|expected|)",
            got, expected,
        )
    return None
