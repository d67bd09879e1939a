"""Hidden checks for NLLLoss: L = −(1/N) Σ_i log S_i,true (0-dim), dS = −y / (N S) at the true class."""
from __future__ import annotations

from .base import F32, F64, Inputs, LayerProbe


def checks(inp: Inputs):
    def probe(n=inp.n, dtype=F64, backward=False, zeros=False, times=1):
        p = LayerProbe("NLLLoss")
        y = inp.labels(n)
        S = inp.randn(n, inp.classes).exp()
        if zeros:  # exact zeros everywhere but the true class: 0·log 0 must not appear
            S = S * y + S * (1 - y) * (inp.randn(n, inp.classes) > 0)
            p.note("S holds exact zeros off the true class")
        S = p.input("S", (S / S.sum(1, keepdim=True)).to(dtype))
        y = p.input("y", y.to(dtype))
        p.call("forward", S, y, out="L")
        for _ in range(times if backward else 0):
            p.call("backward", out="dS")
        if times > 1:
            p.note(f"backward called {times} times on the same object")
        return p

    wall = inp.wall_seconds
    # zeros in S: an in-place clamp_/add_ "to avoid log(0)" changes exactly those entries
    after_forward, after_backward = probe(zeros=True), probe(backward=True, zeros=True)
    return [
        probe().check("nll.forward.value", "L", wall_seconds=wall),
        probe(zeros=True).check("nll.forward.zeros_off_true", "L", wall_seconds=wall),
        probe(dtype=F32).check("nll.forward.float32", "L", wall_seconds=wall),
        probe(n=1).check("nll.forward.single_example", "L", wall_seconds=wall),
        after_forward.check("nll.forward.inputs_unchanged", *after_forward.keep_inputs(), wall_seconds=wall),
        probe(backward=True).check("nll.backward.grad", "dS", wall_seconds=wall),
        probe(backward=True, zeros=True).check("nll.backward.zeros_off_true", "dS", wall_seconds=wall),
        probe(dtype=F32, backward=True).check("nll.backward.float32", "dS", wall_seconds=wall),
        after_backward.check("nll.backward.inputs_unchanged", *after_backward.keep_inputs(), wall_seconds=wall),
        probe(backward=True, times=2).check("nll.backward.repeat", "dS", wall_seconds=wall),
    ]
