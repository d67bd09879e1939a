"""Known mistakes, recognised from a mismatch: each detector returns a hint or None.

Detectors see the student's tensor and the oracle's, never show the latter, and are tried in order;
the first that fires is the hint. Adding a known mistake is adding one function to DETECTORS.
"""
from __future__ import annotations

import torch

from .compare import Mismatch


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-7)


def in_place(m: Mismatch, check) -> str | None:
    if m.output.endswith("_after"):
        name = m.output[: -len("_after")]
        return (f"your code modified its input `{name}` in place; build new tensors instead "
                f"(e.g. `h.clamp(min=0)` not `h.clamp_(min=0)`, `x = x - m` not `x -= m`)")
    return None


def keepdim(m: Mismatch, check) -> str | None:
    if m.kind == "shape" and m.got is not None and tuple(m.got.shape) == (1, *m.expected.shape):
        return f"{m.output} should have shape {tuple(m.expected.shape)}: sum over rows without keepdim=True"
    return None


def scalar_loss(m: Mismatch, check) -> str | None:
    if m.kind == "shape" and m.output == "L":
        return "L must be a 0-dim tensor: the mean over the batch of the per-example losses (e.g. `.mean()`)"
    return None


def transposed(m: Mismatch, check) -> str | None:
    if m.kind == "shape" and m.got is not None and m.got.dim() == 2 and tuple(m.got.shape) == tuple(m.expected.shape)[::-1]:
        return f"{m.output} looks transposed: rows are examples (x is N×D_in, W is D_in×D_out)"
    return None


def dtype_changed(m: Mismatch, check) -> str | None:
    if m.kind == "dtype":
        return ("keep the input's dtype: create new tensors with `dtype=x.dtype` (or `zeros_like`), "
                "and don't call `.double()`/`.float()`")
    return None


def not_finite(m: Mismatch, check) -> str | None:
    if m.kind != "nonfinite":
        return None
    if "large_logits" in check.name:
        return "exp overflowed: subtract each row's maximum from r before exp (softmax is unchanged by it)"
    if check.part == "nll":
        return ("NaN/inf from log(0) or 0·log 0: take the log only of the true-class probabilities "
                "(e.g. with gather or a mask), and divide only where y is 1")
    return "NaN or inf: look for log(0), division by zero or exp of a large number"


def returned_nothing(m: Mismatch, check) -> str | None:
    if m.kind == "type" and "None" in m.problem:
        if m.output in ("dW", "db"):
            return f"backward must set self.{m.output}"
        return "did you forget a `return`?"
    if m.kind == "type" and "never set" in m.problem:
        return f"backward must set self.{m.output}"
    return None


def factor_n(m: Mismatch, check) -> str | None:
    if m.kind == "value" and check.part == "nll":
        n = m.expected.shape[0] if m.expected.dim() else None
        for factor in {n, 5} - {None}:
            if _close(m.got, m.expected * factor) or _close(m.got, m.expected / factor):
                return "off by a factor N (the batch size): L is the mean over the batch, so dL/dS carries 1/N"
    return None


def accumulated(m: Mismatch, check) -> str | None:
    if m.kind == "value" and check.name.endswith(".repeat") and _close(m.got, 2 * m.expected):
        return f"{m.output} doubled on the second backward call: assign it (`self.{m.output} = ...`), don't add to it"
    return None


def sign_flipped(m: Mismatch, check) -> str | None:
    if m.kind == "value" and _close(m.got, -m.expected):
        return f"{m.output} has the wrong sign"
    return None


def softmax_axis(m: Mismatch, check) -> str | None:
    if m.kind == "value" and m.output == "S" and m.got.dim() == 2:
        rows = m.got.double().sum(dim=1)
        columns = m.got.double().sum(dim=0)
        if torch.allclose(columns, torch.ones_like(columns)) and not torch.allclose(rows, torch.ones_like(rows)):
            return "the columns of S sum to 1: normalise along dim=1 (each row is one example)"
    return None


def relu_kink(m: Mismatch, check) -> str | None:
    if m.kind == "value" and check.name == "relu.backward.zero_input":
        return "the gradient at h == 0 must be 0: use (h > 0), not (h >= 0)"
    return None


def softmax_diagonal(m: Mismatch, check) -> str | None:
    if m.kind == "value" and m.output == "dr":
        return "dr = S ⊙ (dS − rowsum(dS ⊙ S)): every output of a row depends on every input of that row"
    return None


DETECTORS = (in_place, keepdim, scalar_loss, transposed, dtype_changed, not_finite, returned_nothing,
             factor_n, accumulated, sign_flipped, softmax_axis, relu_kink, softmax_diagonal)


def hint_for(mismatch: Mismatch, check) -> str | None:
    for detector in DETECTORS:
        try:
            hint = detector(mismatch, check)
        except (RuntimeError, TypeError, ValueError):  # odd shapes from odd code: no hint, no crash
            hint = None
        if hint:
            return hint
    return None
