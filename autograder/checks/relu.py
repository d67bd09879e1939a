"""Hidden checks for ReLU: r = max(0, h), dh = dr ⊙ [h > 0] (gradient 0 at exactly h = 0)."""
from __future__ import annotations

from .base import F32, F64, Inputs, LayerProbe


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
