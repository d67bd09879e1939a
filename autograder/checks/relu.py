"""ReLU, in one place: r = max(0, h), dh = dr ⊙ [h > 0] (gradient 0 at exactly h = 0).

Its hidden checks (checks), its oracle (ReLU), its catalogue of known mistakes (VARIANTS), where a
gradient can be right in part (REGIONS) and its formulas (FORMULAS).
"""
from __future__ import annotations

import torch

from ..scoring.diagnosis import Region, changes_input, inputs_of, variant, wrong_backward, wrong_forward
from .base import F32, F64, Inputs, LayerProbe
from .reference import AutogradLayer


class ReLU(AutogradLayer):
    """The oracle."""

    def math(self, h):
        return torch.relu(h)  # autograd's gradient at exactly 0 is 0, as the notebook demands


def checks(inp: Inputs):
    def probe(dtype=F64, backward=False, zeros=False):
        p = LayerProbe("ReLU")
        values = inp.randn(inp.n, inp.d_out, dtype=dtype)
        if zeros:
            values[::2, :] = 0  # exact zeros: the kink
            p.note("h holds exact zeros")
        h = p.input("h", values)
        p.call("forward", h, out="r")
        if backward:
            p.call("backward", p.input("upstream dr", inp.randn(inp.n, inp.d_out, dtype=dtype)), out="dh")
        return p

    wall = inp.wall_seconds
    after_forward, after_backward = probe(zeros=True), probe(backward=True)
    return [
        probe(zeros=True).check("relu.forward.value", "r", wall_seconds=wall),
        probe(dtype=F32).check("relu.forward.float32", "r", wall_seconds=wall),
        after_forward.check("relu.forward.inputs_unchanged", *after_forward.keep_inputs(), wall_seconds=wall),
        probe(backward=True).check("relu.backward.grad", "dh", wall_seconds=wall),
        probe(backward=True, zeros=True).check("relu.backward.zero_input", "dh", wall_seconds=wall),
        probe(dtype=F32, backward=True).check("relu.backward.float32", "dh", wall_seconds=wall),
        after_backward.check("relu.backward.inputs_unchanged", *after_backward.keep_inputs(), wall_seconds=wall),
    ]


FORMULAS = {
    "r": "r = max(0, h), elementwise",
    "dh": "dh = dr where h > 0 and 0 elsewhere (also where h is exactly 0)",
}

REGIONS = {
    "dh": Region("not_positive", lambda t: t["h"] <= 0, "where h ≤ 0 (it is right where h > 0)", "there dh must be 0"),
}


# --- the catalogue ----------------------------------------------------------------------------

def _h(layer):
    return inputs_of(layer)[0]


def _v(method, key, text, hint, build, min_explained: int = 1):
    return variant(f"ReLU.{method}", key, text, hint, build, min_explained)


VARIANTS = [
    _v("forward", "clamps_input", "ReLU.forward clamps its input h in place, so the caller's h changes.",
       "h.clamp(min=0) returns a new tensor; h.clamp_(min=0) and h[h < 0] = 0 overwrite h",
       changes_input("forward", lambda s, h: h.clamp_(min=0))),
    _v("forward", "clamps_at_one", "ReLU.forward clamps at 1 instead of 0.",
       "r = max(0, h)", wrong_forward(lambda h: h.clamp(min=1))),
    _v("backward", "divides_by_mask",
       "ReLU.backward divides dr by the mask where it must multiply, so dh is infinite where h ≤ 0.",
       "dh = dr ⊙ (h > 0)", wrong_backward(lambda s, dr: dr / (_h(s) > 0).double())),
    _v("backward", "gradient_one_at_zero",
       "ReLU.backward lets the gradient through where h is exactly 0; there it must be 0.",
       "mask with (h > 0), not (h >= 0)", wrong_backward(lambda s, dr: dr * (_h(s) >= 0))),
    _v("backward", "ignores_upstream",
       "ReLU.backward returns the mask (h > 0) alone, without multiplying by the upstream gradient dr.",
       "dh = dr ⊙ (h > 0)", wrong_backward(lambda s, dr: (_h(s) > 0).double())),
    _v("backward", "returns_upstream",
       "ReLU.backward returns the upstream gradient dr unchanged: the gradient must be 0 where h ≤ 0.",
       "dh = dr ⊙ (h > 0)", wrong_backward(lambda s, dr: dr)),
    _v("backward", "masks_upstream_in_place",
       "ReLU.backward zeroes entries of the upstream gradient dr in place, so the caller's dr changes.",
       "multiply into a new tensor: dr * (h > 0)",
       changes_input("backward", lambda s, dr: dr.mul_((_h(s) > 0).to(dr.dtype)))),
]
