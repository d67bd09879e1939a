"""Linear, in one place: h = x W + b, and dx = dh Wᵀ, dW = xᵀ dh, db = Σ_rows dh.

Its hidden checks (checks), its oracle (Linear), its catalogue of known mistakes (VARIANTS) and the
formulas feedback reminds students of (FORMULAS).
"""
from __future__ import annotations

import torch

from ..scoring.diagnosis import changes_input, variant, wrong_forward
from .base import F32, F64, Inputs, LayerProbe
from .reference import AutogradLayer


class Linear(AutogradLayer):
    """The oracle."""

    params = ("W", "b")

    def __init__(self, in_features, out_features, generator=None):  # the student contract's signature
        self.W = torch.zeros(in_features, out_features)  # every probe sets W and b itself
        self.b = torch.zeros(out_features)
        self.dW = self.db = None

    def math(self, x, W, b):
        return x @ W + b


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


FORMULAS = {
    "h": "h = x W + b, with x of shape (N, D_in) and W of shape (D_in, D_out)",
    "dx": "dx = dh Wᵀ, shape (N, D_in)",
    "dW": "dW = xᵀ dh, shape (D_in, D_out)",
    "db": "db = dh summed over the rows, shape (D_out,)",
}


# --- the catalogue ----------------------------------------------------------------------------

def _keeping_x(build):
    """Every variant remembers the caller's x as `x_seen` (some mistakes use it)."""

    def built(base):
        cls = build(base)

        def forward(self, x):
            self.x_seen = x
            return cls.forward(self, x)

        return type(cls.__name__, (cls,), {"forward": forward})

    return built


def _grads(edit):
    """Linear whose backward edits (dx, dW, db) computed correctly: edit(layer, dh, dx, dW, db)."""

    def build(base):
        def backward(self, dh):
            dx = base.backward(self, dh)
            dx, self.dW, self.db = edit(self, dh, dx, self.dW, self.db)
            return dx

        return type(base.__name__, (base,), {"backward": backward})

    return build


def _accumulating(which):
    def build(base):
        def backward(self, dh):
            before = {name: getattr(self, name) for name in which}
            dx = base.backward(self, dh)
            for name, old in before.items():
                if old is not None:
                    setattr(self, name, getattr(self, name) + old)
            return dx

        return type(base.__name__, (base,), {"backward": backward})

    return build


def _v(method, key, text, hint, build, min_explained: int = 1):
    return variant(f"Linear.{method}", key, text, hint, _keeping_x(build), min_explained)


VARIANTS = [
    _v("forward", "bias_subtracted", "Linear.forward subtracts the bias b instead of adding it.",
       "h = x W + b", wrong_forward(lambda x, W, b: x @ W - b)),
    _v("forward", "bias_missing", "Linear.forward leaves out the bias b.",
       "h = x W + b", wrong_forward(lambda x, W, b: x @ W)),
    _v("backward", "dx_ignores_W", "Linear.backward returns the upstream gradient dh as dx, without multiplying by Wᵀ.",
       "dx = dh Wᵀ", _grads(lambda s, dh, dx, dW, db: (dh.to(dx.dtype), dW, db))),
    _v("backward", "dW_over_N",
       "Linear.backward divides dW by N (the batch size): the 1/N is already in the loss's gradient.",
       "dW = xᵀ dh, with no 1/N", _grads(lambda s, dh, dx, dW, db: (dx, dW / dh.shape[0], db))),
    _v("backward", "db_mean", "Linear.backward averages dh over the rows for db; db is the sum over the rows.",
       "db = dh.sum(dim=0)", _grads(lambda s, dh, dx, dW, db: (dx, dW, db / dh.shape[0]))),
    _v("backward", "db_wrong_axis",
       "Linear.backward sums dh over the wrong axis for db: sum over the rows (dim=0), one entry per output feature.",
       "db = dh.sum(dim=0)", _grads(lambda s, dh, dx, dW, db: (dx, dW, dh.sum(dim=1)))),
    _v("backward", "dW_is_dh", "Linear.backward sets dW to dh itself, without the product with x.",
       "dW = xᵀ dh", _grads(lambda s, dh, dx, dW, db: (dx, dh, db))),
    _v("backward", "dW_is_x", "Linear.backward sets dW from x alone, without the product with dh.",
       "dW = xᵀ dh", _grads(lambda s, dh, dx, dW, db: (dx, s.x_seen.T, db))),
    _v("backward", "accumulates_dW",
       "Linear.backward adds to dW on every call instead of overwriting it, so a second call doubles it.",
       "assign self.dW = ..., don't add to it", _accumulating(("dW",))),
    _v("backward", "accumulates_db",
       "Linear.backward adds to db on every call instead of overwriting it, so a second call doubles it.",
       "assign self.db = ..., don't add to it", _accumulating(("db",))),
    _v("backward", "accumulates", "Linear.backward adds to dW and db on every call instead of overwriting them.",
       "assign self.dW = ... and self.db = ...", _accumulating(("dW", "db"))),
    _v("backward", "x_transposed_in_place",
       "Linear.backward transposes the stored x in place (t_()), which changes the caller's x.",
       "use x.T, which makes no change to x", changes_input("backward", lambda s, dh: s.x_seen.t_())),
    _v("backward", "dx_is_W", "Linear.backward returns Wᵀ alone as dx, without the product with dh.",
       "dx = dh Wᵀ", _grads(lambda s, dh, dx, dW, db: (s.W.T, dW, db))),
]
