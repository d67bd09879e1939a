"""Hidden checks for Linear: h = x W + b, and dx = dh Wᵀ, dW = xᵀ dh, db = Σ_rows dh."""
from __future__ import annotations

from .base import F32, F64, Inputs, LayerProbe


def checks(inp: Inputs):
    def probe(n=inp.n, dtype=F64, backward=False, times=1):
        p = LayerProbe("Linear", inp.d_in, inp.d_out)
        x = p.input("x", inp.randn(n, inp.d_in, dtype=dtype))
        p.assign("W", inp.randn(inp.d_in, inp.d_out, dtype=dtype))
        p.assign("b", inp.randn(inp.d_out, dtype=dtype))
        p.call("forward", x, out="h")
        if backward:
            dh = p.input("upstream dh", inp.randn(n, inp.d_out, dtype=dtype))
            for _ in range(times):
                p.call("backward", dh, out="dx")
            p.read("dW", "db")
        if times > 1:
            p.note(f"backward called {times} times on the same object")
        return p

    wall = inp.wall_seconds
    grads = ("dx", "dW", "db")
    after_forward, after_backward = probe(), probe(backward=True)
    return [
        probe().check("linear.forward.shape", "h", wall_seconds=wall, shape_only=True),
        probe().check("linear.forward.value", "h", wall_seconds=wall),
        probe(dtype=F32).check("linear.forward.float32", "h", wall_seconds=wall),
        probe(n=1).check("linear.forward.single_example", "h", wall_seconds=wall),
        after_forward.check("linear.forward.inputs_unchanged", *after_forward.keep_inputs(), wall_seconds=wall),
        probe(backward=True).check("linear.backward.shape", *grads, wall_seconds=wall, shape_only=True),
        probe(backward=True).check("linear.backward.grad_x", "dx", wall_seconds=wall),
        probe(backward=True).check("linear.backward.grad_W", "dW", wall_seconds=wall),
        probe(backward=True).check("linear.backward.grad_b", "db", wall_seconds=wall),
        probe(dtype=F32, backward=True).check("linear.backward.float32", *grads, wall_seconds=wall),
        probe(n=1, backward=True).check("linear.backward.single_example", *grads, wall_seconds=wall),
        after_backward.check("linear.backward.inputs_unchanged", *after_backward.keep_inputs(), wall_seconds=wall),
        probe(backward=True, times=2).check("linear.backward.repeat", *grads, wall_seconds=wall),
    ]
