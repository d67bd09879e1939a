"""Hidden checks for Softmax: S = exp(r) / rowsum(exp(r)), dr = S ⊙ (dS − rowsum(dS ⊙ S))."""
from __future__ import annotations

import torch

from .base import F32, F64, Inputs, LayerProbe


def checks(inp: Inputs):
    def probe(n=inp.n, dtype=F64, backward=False, large=False):
        p = LayerProbe("Softmax")
        logits = inp.randn(n, inp.classes, dtype=dtype)
        if large:  # rows offset by +1000 / -1000: exp overflows unless the row max is subtracted
            offsets = torch.tensor([1000.0, -1000.0] * n, dtype=dtype)[:n, None]
            logits = logits + offsets
            p.note("rows offset by ±1000")
        r = p.input("r", logits)
        p.call("forward", r, out="S")
        if backward:
            p.call("backward", p.input("upstream dS", inp.randn(n, inp.classes, dtype=dtype)), out="dr")
        return p

    wall = inp.wall_seconds
    after_forward, after_backward = probe(), probe(backward=True)
    return [
        probe().check("softmax.forward.shape", "S", wall_seconds=wall, shape_only=True),
        probe().check("softmax.forward.value", "S", wall_seconds=wall),
        probe(large=True).check("softmax.forward.large_logits", "S", wall_seconds=wall),
        probe(dtype=F32).check("softmax.forward.float32", "S", wall_seconds=wall),
        probe(n=1).check("softmax.forward.single_example", "S", wall_seconds=wall),
        after_forward.check("softmax.forward.inputs_unchanged", *after_forward.keep_inputs(), wall_seconds=wall),
        probe(backward=True).check("softmax.backward.grad", "dr", wall_seconds=wall),
        probe(backward=True, large=True).check("softmax.backward.large_logits", "dr", wall_seconds=wall),
        probe(dtype=F32, backward=True).check("softmax.backward.float32", "dr", wall_seconds=wall),
        probe(n=1, backward=True).check("softmax.backward.single_example", "dr", wall_seconds=wall),
        after_backward.check("softmax.backward.inputs_unchanged", *after_backward.keep_inputs(), wall_seconds=wall),
    ]
