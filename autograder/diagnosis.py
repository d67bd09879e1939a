"""Name the mistake behind failed checks: a catalogue of known wrong variants, tested on the outputs.

Pure and parent-side, like score.py. When checks fail, every wrong variant in the catalogue predicts
what a student who made that one mistake would have returned on the same hidden inputs: a *variant*
is an oracle layer with one mistake built in (reference.py's autograd classes, subclassed), run
through the check's own probe; a *transform* is a mistake that any output can have (wrong sign, a
factor N, transposed, an extra dimension, ...) applied to the oracle's output. A variant is accepted
only when it explains at least one failed output and contradicts none: wherever it predicts a wrong
value, the student's value is that wrong value; where it predicts the right value, it says nothing
(another mistake may be at work there). Causes are then chosen greedily, the one that explains most
failed checks first, so one bug that fails seven checks is one cause, and a check that passed rules
out every variant that would have failed it.

Causes that need no prediction come from the kind of failure: a method that is not written yet, an
exception (class, method, line), a forbidden call, a None, the wrong dtype, an input changed in place.

Adding a known mistake is adding one entry to VARIANTS (or TRANSFORMS), with its sentence.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

from .checks import reference as R
from .compare import compare
from .sandbox.probe import ProbeError, run_probe

# What a method's positional arguments are called in the notebook, for sentences.
ARGUMENTS = {
    "Linear.forward": ("x",), "Linear.backward": ("dh",), "ReLU.forward": ("h",), "ReLU.backward": ("dr",),
    "Softmax.forward": ("r",), "Softmax.backward": ("dS",), "NLLLoss.forward": ("S", "y"), "NLLLoss.backward": (),
}


@dataclass(frozen=True)
class Cause:
    """One named mistake. `key` is stable across students (analytics group by it)."""

    key: str
    method: str  # "Linear.backward", or "" for the whole submission
    text: str  # one sentence a student understands
    hint: str = ""  # what to do about it

    def as_dict(self) -> dict:
        return {"key": self.key, "method": self.method, "text": self.text, "hint": self.hint}


# --- the catalogue: layers with one mistake built in ------------------------------------------

def _forward(base, math):
    """The oracle returning another forward formula. What backward uses is what a student stores:
    the inputs (so backward stays correct), except for Softmax, whose backward uses the S it returned."""

    def forward(self, *inputs):
        base.forward(self, *inputs)
        params = [getattr(self, name).detach().double() for name in base.params]
        self._wrong = math(*[t.detach().double() for t in inputs], *params).detach()
        return self._wrong.to(self._dtype)

    attributes = {"forward": forward}
    if base is R.Softmax:
        attributes["backward"] = lambda self, dS: _softmax_vjp(self._wrong, dS.double()).to(self._dtype)
    return type(base.__name__, (base,), attributes)


def _softmax_vjp(S, dS):
    return S * (dS - (dS * S).sum(dim=1, keepdim=True))


def _backward(base, grad):
    """The oracle with another backward: grad(layer, upstream float64) -> the returned gradient."""

    def backward(self, *upstream):
        up = upstream[0].double() if upstream else torch.ones((), dtype=torch.float64)
        R.AutogradLayer._vjp(self, up)  # sets the parameter gradients, as the correct one does
        return grad(self, up).to(self._dtype)

    return type(base.__name__, (base,), {"backward": backward})


def _changes_input(base, method: str, change):
    """The oracle's results, plus change(layer, *args) applied to the caller's tensors afterwards."""

    def call(self, *args):
        result = getattr(base, method)(self, *[a.clone() for a in args])
        change(self, *args)
        return result

    return type(base.__name__, (base,), {method: call})


def _linear_grads(edit):
    """Linear whose backward edits (dx, dW, db) computed correctly: edit(layer, dh, dx, dW, db)."""

    class Variant(R.Linear):
        def backward(self, dh):
            dx = R.Linear.backward(self, dh)
            dx, self.dW, self.db = edit(self, dh, dx, self.dW, self.db)
            return dx

    Variant.__name__ = "Linear"
    return Variant


def _accumulating_linear(which):
    class Variant(R.Linear):
        def backward(self, dh):
            before = {name: getattr(self, name) for name in which}
            dx = R.Linear.backward(self, dh)
            for name, old in before.items():
                if old is not None:
                    setattr(self, name, getattr(self, name) + old)
            return dx

    Variant.__name__ = "Linear"
    return Variant


class _AccumulatingNLL(R.NLLLoss):
    def backward(self):
        dS = R.NLLLoss.backward(self)
        self._total = dS if getattr(self, "_total", None) is None else self._total + dS
        return self._total


def _x(layer):
    return layer._inputs[0].detach()


def _S(layer):
    return layer._out.detach()


def _true(layer):
    """NLL: the one-hot y as float64."""
    return layer._inputs[1].detach()


def _nll(loss_of_rows):
    """NLL with another forward: loss_of_rows(S, y) -> the loss."""
    return _forward(R.NLLLoss, loss_of_rows)


def _at_true(S, y):
    return (S * y).sum(dim=1)


def _nll_grad(true_entry, off_entry=0.0):
    """NLL backward: true_entry(p, N) at the true class, off_entry elsewhere."""

    def grad(layer, up):
        S, y = layer._inputs[0].detach(), _true(layer)
        p, n = _at_true(S, y), S.shape[0]
        return torch.where(y > 0, true_entry(p, n)[:, None].expand_as(S), torch.full_like(S, off_entry))

    return _backward(R.NLLLoss, grad)


def _rowsum(t):
    return t.sum(dim=1, keepdim=True)


def _stable_exp(r):
    return (r - r.max(dim=1, keepdim=True).values).exp()


@dataclass(frozen=True)
class Variant:
    cause: Cause
    cls: str
    build: Callable[[], type]
    # failed checks it must explain to be named: a variant that picks one class out of C matches
    # any other code picking that class by chance (one check in ten, say), so one is no evidence
    min_explained: int = 1


def _v(method, key, text, hint, build, min_explained: int = 1) -> Variant:
    return Variant(Cause(f"{method}:{key}", method, text, hint), method.split(".")[0], build, min_explained)


VARIANTS = [
    # Linear ------------------------------------------------------------------------------------
    _v("Linear.forward", "bias_subtracted", "Linear.forward subtracts the bias b instead of adding it.",
       "h = x W + b", lambda: _forward(R.Linear, lambda x, W, b: x @ W - b)),
    _v("Linear.forward", "bias_missing", "Linear.forward leaves out the bias b.",
       "h = x W + b", lambda: _forward(R.Linear, lambda x, W, b: x @ W)),
    _v("Linear.backward", "dx_ignores_W", "Linear.backward returns the upstream gradient dh as dx, without multiplying by Wᵀ.",
       "dx = dh Wᵀ", lambda: _linear_grads(lambda s, dh, dx, dW, db: (dh.to(dx.dtype), dW, db))),
    _v("Linear.backward", "dW_over_N", "Linear.backward divides dW by N (the batch size): the 1/N is already in the loss's gradient.",
       "dW = xᵀ dh, with no 1/N", lambda: _linear_grads(lambda s, dh, dx, dW, db: (dx, dW / dh.shape[0], db))),
    _v("Linear.backward", "db_mean", "Linear.backward averages dh over the rows for db; db is the sum over the rows.",
       "db = dh.sum(dim=0)", lambda: _linear_grads(lambda s, dh, dx, dW, db: (dx, dW, db / dh.shape[0]))),
    _v("Linear.backward", "db_wrong_axis", "Linear.backward sums dh over the wrong axis for db: sum over the rows (dim=0), one entry per output feature.",
       "db = dh.sum(dim=0)", lambda: _linear_grads(lambda s, dh, dx, dW, db: (dx, dW, dh.sum(dim=1)))),
    _v("Linear.backward", "dW_is_dh", "Linear.backward sets dW to dh itself, without the product with x.",
       "dW = xᵀ dh", lambda: _linear_grads(lambda s, dh, dx, dW, db: (dx, dh, db))),
    _v("Linear.backward", "dW_is_x", "Linear.backward sets dW from x alone, without the product with dh.",
       "dW = xᵀ dh", lambda: _linear_grads(lambda s, dh, dx, dW, db: (dx, s.x_seen.T, db))),
    _v("Linear.backward", "accumulates_dW", "Linear.backward adds to dW on every call instead of overwriting it, so a second call doubles it.",
       "assign self.dW = ..., don't add to it", lambda: _accumulating_linear(("dW",))),
    _v("Linear.backward", "accumulates_db", "Linear.backward adds to db on every call instead of overwriting it, so a second call doubles it.",
       "assign self.db = ..., don't add to it", lambda: _accumulating_linear(("db",))),
    _v("Linear.backward", "accumulates", "Linear.backward adds to dW and db on every call instead of overwriting them.",
       "assign self.dW = ... and self.db = ...", lambda: _accumulating_linear(("dW", "db"))),
    _v("Linear.backward", "x_transposed_in_place", "Linear.backward transposes the stored x in place (t_()), which changes the caller's x.",
       "use x.T, which makes no change to x", lambda: _changes_input(R.Linear, "backward", lambda s, dh: s.x_seen.t_())),
    # ReLU --------------------------------------------------------------------------------------
    _v("ReLU.forward", "clamps_input", "ReLU.forward clamps its input h in place, so the caller's h changes.",
       "h.clamp(min=0) returns a new tensor; h.clamp_(min=0) and h[h < 0] = 0 overwrite h",
       lambda: _changes_input(R.ReLU, "forward", lambda s, h: h.clamp_(min=0))),
    _v("ReLU.forward", "clamps_at_one", "ReLU.forward clamps at 1 instead of 0.",
       "r = max(0, h)", lambda: _forward(R.ReLU, lambda h: h.clamp(min=1))),
    _v("Linear.backward", "dx_is_W", "Linear.backward returns Wᵀ alone as dx, without the product with dh.",
       "dx = dh Wᵀ", lambda: _linear_grads(lambda s, dh, dx, dW, db: (s.W.T, dW, db))),
    _v("ReLU.backward", "divides_by_mask", "ReLU.backward divides dr by the mask where it must multiply, so dh is infinite where h ≤ 0.",
       "dh = dr ⊙ (h > 0)", lambda: _backward(R.ReLU, lambda s, dr: dr / (_x(s) > 0).double())),
    _v("ReLU.backward", "gradient_one_at_zero", "ReLU.backward lets the gradient through where h is exactly 0; there it must be 0.",
       "mask with (h > 0), not (h >= 0)", lambda: _backward(R.ReLU, lambda s, dr: dr * (_x(s) >= 0))),
    _v("ReLU.backward", "ignores_upstream", "ReLU.backward returns the mask (h > 0) alone, without multiplying by the upstream gradient dr.",
       "dh = dr ⊙ (h > 0)", lambda: _backward(R.ReLU, lambda s, dr: (_x(s) > 0).double())),
    _v("ReLU.backward", "returns_upstream", "ReLU.backward returns the upstream gradient dr unchanged: the gradient must be 0 where h ≤ 0.",
       "dh = dr ⊙ (h > 0)", lambda: _backward(R.ReLU, lambda s, dr: dr)),
    _v("ReLU.backward", "masks_upstream_in_place", "ReLU.backward zeroes entries of the upstream gradient dr in place, so the caller's dr changes.",
       "multiply into a new tensor: dr * (h > 0)",
       lambda: _changes_input(R.ReLU, "backward", lambda s, dr: dr.mul_((_x(s) > 0).to(dr.dtype)))),
    # Softmax -----------------------------------------------------------------------------------
    _v("Softmax.forward", "no_max_shift", "Softmax.forward is not stable for large logits: exp overflows (or every entry underflows to 0/0).",
       "subtract each row's own maximum from r before exp (softmax does not change)",
       lambda: _forward(R.Softmax, lambda r: r.exp() / _rowsum(r.exp()))),
    _v("Softmax.forward", "global_max", "Softmax.forward subtracts the maximum of the whole batch; rows far below it underflow to 0/0.",
       "subtract each row's own maximum: r.max(dim=1, keepdim=True)",
       lambda: _forward(R.Softmax, lambda r: (r - r.max()).exp() / _rowsum((r - r.max()).exp()))),
    _v("Softmax.forward", "column_max", "Softmax.forward subtracts each column's maximum instead of each row's.",
       "r.max(dim=1, keepdim=True): one maximum per row (per example)",
       lambda: _forward(R.Softmax, lambda r: (r - r.max(dim=0).values).exp() / _rowsum((r - r.max(dim=0).values).exp()))),
    _v("Softmax.forward", "normalises_columns", "Softmax.forward normalises the columns (dim=0) instead of the rows: each row is one example and must sum to 1.",
       "divide by the sum over dim=1 (keepdim=True)",
       lambda: _forward(R.Softmax, lambda r: _stable_exp(r) / _stable_exp(r).sum(dim=0, keepdim=True))),
    _v("Softmax.forward", "not_normalised", "Softmax.forward returns exp(r − max) without dividing by the row's sum.",
       "S = e / e.sum(dim=1, keepdim=True)", lambda: _forward(R.Softmax, _stable_exp)),
    _v("Softmax.forward", "mean_normaliser", "Softmax.forward divides by the row's mean instead of its sum.",
       "S = e / e.sum(dim=1, keepdim=True)",
       lambda: _forward(R.Softmax, lambda r: _stable_exp(r) / _stable_exp(r).mean(dim=1, keepdim=True))),
    _v("Softmax.forward", "multiplies_by_sum", "Softmax.forward multiplies by the row's sum where it must divide by it.",
       "S = e / e.sum(dim=1, keepdim=True)",
       lambda: _forward(R.Softmax, lambda r: _stable_exp(r) * _rowsum(_stable_exp(r)))),
    _v("Softmax.forward", "expm1", "Softmax.forward uses expm1 (exp − 1) where exp belongs.",
       "e = z.exp()", lambda: _forward(R.Softmax, lambda r: (r - r.max(dim=1, keepdim=True).values).expm1()
                                       / _rowsum((r - r.max(dim=1, keepdim=True).values).expm1()))),
    _v("Softmax.forward", "shifts_input", "Softmax.forward subtracts the row maximum from r in place, so the caller's r changes.",
       "z = r - r.max(...) makes a new tensor; r -= ... overwrites r",
       lambda: _changes_input(R.Softmax, "forward", lambda s, r: r.sub_(r.max(dim=1, keepdim=True).values))),
    _v("Softmax.backward", "diagonal_only", "Softmax.backward uses only the diagonal S(1 − S) of the Jacobian and drops the −S_i S_j terms.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (1 - _S(s)) * dS)),
    _v("Softmax.backward", "ignores_upstream", "Softmax.backward ignores the upstream gradient dS.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (1 - _S(s)))),
    _v("Softmax.backward", "sums_over_batch", "Softmax.backward sums dS ⊙ S over the batch (dim=0) instead of over each row's classes.",
       "rowsum = (dS * S).sum(dim=1, keepdim=True)",
       lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (dS - (dS * _S(s)).sum(dim=0, keepdim=True)))),
    _v("Softmax.backward", "mean_not_sum", "Softmax.backward averages dS ⊙ S over the row where it must sum it.",
       "rowsum = (dS * S).sum(dim=1, keepdim=True)",
       lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (dS - (dS * _S(s)).mean(dim=1, keepdim=True)))),
    _v("Softmax.backward", "missing_row_term", "Softmax.backward returns S ⊙ dS and leaves out the − rowsum(dS ⊙ S) term.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * dS)),
    _v("Softmax.backward", "missing_outer_S", "Softmax.backward leaves out the outer factor S: dr = S ⊙ (dS − rowsum(dS ⊙ S)).",
       "multiply the bracket by S", lambda: _backward(R.Softmax, lambda s, dS: dS - _rowsum(dS * _S(s)))),
    _v("Softmax.backward", "missing_inner_S", "Softmax.backward sums dS over the row without weighting it by S.",
       "rowsum(dS ⊙ S), not rowsum(dS)", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (dS - _rowsum(dS)))),
    _v("Softmax.backward", "row_term_added", "Softmax.backward adds rowsum(dS ⊙ S) where it must subtract it.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (dS + _rowsum(dS * _S(s))))),
    _v("Softmax.backward", "row_term_only", "Softmax.backward keeps only the S ⊙ rowsum(dS ⊙ S) term and drops S ⊙ dS.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * _rowsum(dS * _S(s)))),
    _v("Softmax.backward", "returns_S", "Softmax.backward returns S itself and ignores the upstream gradient dS.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s))),
    _v("Softmax.backward", "row_term_without_dS", "Softmax.backward sums S over the row where it must sum dS ⊙ S.",
       "rowsum(dS ⊙ S)", lambda: _backward(R.Softmax, lambda s, dS: _S(s) * (dS - _rowsum(_S(s))))),
    _v("Softmax.backward", "divides_by_S", "Softmax.backward divides by S where it must multiply by it.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", lambda: _backward(R.Softmax, lambda s, dS: _S(s) / (dS - _rowsum(dS * _S(s))))),
    _v("Softmax.backward", "updates_upstream", "Softmax.backward subtracts from the upstream gradient dS in place, so the caller's dS changes.",
       "compute dS - ... into a new tensor; dS -= ... overwrites it",
       lambda: _changes_input(R.Softmax, "backward", lambda s, dS: dS.sub_(_rowsum(dS * _S(s).to(dS.dtype))))),
    # NLLLoss -----------------------------------------------------------------------------------
    _v("NLLLoss.forward", "log1p", "NLLLoss.forward uses log1p (log(1 + S)) where log belongs.",
       "L = −mean(log S at the true class)", lambda: _nll(lambda S, y: -_at_true(S, y).log1p().mean())),
    _v("NLLLoss.forward", "predicted_class", "NLLLoss.forward takes the class from S (the prediction) instead of y (the true class).",
       "the true class of row i is y[i].argmax()", lambda: _nll_at_class(lambda S, y: S.argmax(dim=1)), min_explained=2),
    _v("NLLLoss.forward", "wrong_class", "NLLLoss takes S at a class where y is 0 (argmin instead of argmax?), not at the true class.",
       "the true class of row i is y[i].argmax()", lambda: _nll_at_class(lambda S, y: y.argmin(dim=1)), min_explained=2),
    _v("NLLLoss.forward", "log_of_zeros", "NLLLoss.forward takes the log of every entry of S, so exact zeros off the true class give 0·log 0 = nan.",
       "log only the true-class probabilities (index with the labels, or gather)",
       lambda: _nll(lambda S, y: -(y * S.log()).sum() / S.shape[0])),
    _v("NLLLoss.forward", "clamps_S", "NLLLoss.forward clamps S in place, so the caller's S changes where it held zeros.",
       "S.clamp(min=...) makes a new tensor; S.clamp_(...) overwrites S (and log only the true class: no clamp needed)",
       lambda: _changes_input(R.NLLLoss, "forward", lambda s, S, y: S.clamp_(min=1e-12))),
    _v("NLLLoss.forward", "nudges_S", "NLLLoss.forward adds a small epsilon to S in place, so the caller's S changes.",
       "S + eps makes a new tensor; S += eps overwrites S",
       lambda: _changes_input(R.NLLLoss, "forward", lambda s, S, y: S.add_(1e-12))),
    _v("NLLLoss.backward", "ones_off_true", "NLLLoss.backward starts dS from ones instead of zeros: entries off the true class must be 0.",
       "dS = torch.zeros_like(S), then set the true-class entries", lambda: _nll_grad(lambda p, n: -1 / (n * p), 1.0)),
    _v("NLLLoss.backward", "divides_by_C", "NLLLoss.backward divides by the number of classes C where N (the number of rows) belongs.",
       "N = S.shape[0]", lambda: _nll_by_columns()),
    _v("NLLLoss.backward", "missing_1_over_S", "NLLLoss.backward leaves out the 1/S: the derivative of −log S is −1/S.",
       "dS = −1/(N S) at the true class", lambda: _nll_grad(lambda p, n: -torch.ones_like(p) / n)),
    _v("NLLLoss.backward", "times_S", "NLLLoss.backward multiplies by S where it must divide: the derivative of −log S is −1/S.",
       "dS = −1/(N S) at the true class", lambda: _nll_grad(lambda p, n: -p / n)),
    _v("NLLLoss.backward", "true_entry_not_set", "NLLLoss.backward never writes the true-class entries of dS: it returns all zeros.",
       "dS[rows, labels] = −1/(N S[rows, labels])", lambda: _nll_grad(lambda p, n: torch.zeros_like(p))),
    _v("NLLLoss.backward", "divides_everywhere", "NLLLoss.backward divides by S everywhere, so exact zeros of S give 0/0 = nan off the true class.",
       "compute −1/(N S) only at the true class", lambda: _nll_divides_everywhere()),
    _v("NLLLoss.backward", "accumulates", "NLLLoss.backward adds to a stored gradient on every call instead of returning a fresh one.",
       "build dS anew in every call", lambda: _AccumulatingNLL),
    _v("NLLLoss.backward", "reuses_S", "NLLLoss.backward writes the gradient into S itself (S.zero_() or similar), so the caller's S changes.",
       "dS = torch.zeros_like(S) makes a new tensor", lambda: _nll_reuses_S()),
]


def _nll_at_class(labels):
    """NLL (forward and backward) at other classes than the true one: labels(S, y) -> class per row."""

    class Variant(R.NLLLoss):
        def forward(self, S, y):
            picked = torch.nn.functional.one_hot(labels(S, y), S.shape[1]).to(y.dtype)
            return R.NLLLoss.forward(self, S, picked)

    Variant.__name__ = "NLLLoss"
    return Variant


def _nll_by_columns():
    def grad(layer, up):
        S, y = layer._inputs[0].detach(), _true(layer)
        return torch.where(y > 0, -1 / (S.shape[1] * S), torch.zeros_like(S))

    return _backward(R.NLLLoss, grad)


def _nll_divides_everywhere():
    def grad(layer, up):
        S, y = layer._inputs[0].detach(), _true(layer)
        return -y / (S.shape[0] * S)

    return _backward(R.NLLLoss, grad)


def _nll_reuses_S():
    class Variant(R.NLLLoss):
        def forward(self, S, y):
            self.S_seen = S
            return R.NLLLoss.forward(self, S.clone(), y)

        def backward(self):
            dS = R.NLLLoss.backward(self)
            self.S_seen.copy_(dS.to(self.S_seen.dtype))
            return dS

    Variant.__name__ = "NLLLoss"
    return Variant


def _keep_x(cls):
    """Every Linear variant remembers the caller's x as `x_seen`."""

    def forward(self, x):
        self.x_seen = x
        return cls.forward(self, x)

    return type(cls.__name__, (cls,), {"forward": forward})


# --- transforms: mistakes any output can have -------------------------------------------------

@dataclass(frozen=True)
class Transform:
    key: str
    text: str  # a sentence with {out} (the output), {method}, {arg} (an argument's name)
    hint: str
    apply: Callable  # (expected, context) -> predicted tensor, or None when it does not apply


def _scale(factor: Callable):
    return lambda e, ctx: e * factor(ctx) if e.is_floating_point() else None


TRANSFORMS = [
    Transform("sign", "{method} returns {out} with the wrong sign.", "check the sign of every term",
              _scale(lambda c: -1.0)),
    Transform("times_N", "{method} returns {out} N times too large (N = the number of rows): a 1/N is missing.",
              "the loss is a mean over the N rows, so its gradient carries 1/N", _scale(lambda c: c["N"])),
    Transform("over_N", "{method} divides {out} by N (the number of rows) once too often.",
              "the 1/N comes from the loss's mean, once", _scale(lambda c: 1.0 / c["N"])),
    Transform("times_minus_N", "{method} returns {out} with the wrong sign and N times too large.",
              "check the sign and the 1/N", _scale(lambda c: -c["N"])),
    Transform("over_minus_N", "{method} returns {out} with the wrong sign and divided by N.",
              "check the sign and the 1/N", _scale(lambda c: -1.0 / c["N"])),
    Transform("times_C", "{method} returns {out} multiplied by the number of columns: a mean where a sum belongs.",
              "sum, don't average", _scale(lambda c: c["C"])),
    Transform("over_C", "{method} returns {out} divided by the number of columns: a mean where a sum belongs, or C where N belongs.",
              "sum, don't average; N is the number of rows", _scale(lambda c: 1.0 / c["C"])),
    Transform("twice", "{method} returns {out} twice as large as it should be.", "look for a term counted twice",
              _scale(lambda c: 2.0)),
    Transform("half", "{method} returns {out} half as large as it should be.", "look for a stray factor 1/2",
              _scale(lambda c: 0.5)),
    Transform("zeros", "{method} returns {out} as all zeros: the computed values never reach it.",
              "return (or assign) the tensor you computed", lambda e, ctx: torch.zeros_like(e)),
    Transform("transposed", "{method} returns {out} transposed: rows are examples (x is N×D_in, W is D_in×D_out).",
              "check the order of the matrix product", lambda e, ctx: e.T if e.dim() == 2 else None),
    Transform("keepdim", "{method} returns {out} with an extra leading dimension of size 1.",
              "sum or mean without keepdim=True here", lambda e, ctx: e.unsqueeze(0)),
    Transform("squeezed", "{method} drops the size-1 dimensions of {out} (a single example must still be a row).",
              "don't squeeze: shapes must hold for any N ≥ 1",
              lambda e, ctx: e.squeeze() if 1 in e.shape else None),
    Transform("not_averaged", "{method} returns the per-example losses; L is their mean, a 0-dim tensor.",
              "take .mean() of the per-example losses", lambda e, ctx: None),  # judged by _not_averaged
]


# --- matching ---------------------------------------------------------------------------------

@dataclass
class Observation:
    """One compared output of one check, for a check that ran to the end."""

    index: int  # position of the check in the report
    entry: object  # checks.SuiteEntry
    output: str
    got: object
    expected: torch.Tensor
    tolerance: object
    failed: bool  # this output is wrong
    kind: str = ""  # compare.Mismatch.kind when failed
    shape_only: bool = False  # the check compares shapes only
    cls: str = ""  # the layer class the check builds (_layer_class): read thousands of times per student
    method: str = ""  # the method that produced the output (_method_of)


def _close(a, b, tolerance) -> bool:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        return False
    if not (a.is_floating_point() and b.is_floating_point()):
        return False
    if a.dtype == b.dtype and torch.equal(a, b):  # the common case in one call (NaNs go on below)
        return True
    rtol, atol = 10 * tolerance.rtol, 10 * tolerance.atol  # variants run in float64, students may not
    return bool(torch.isclose(a.double(), b.double(), rtol=rtol, atol=atol, equal_nan=True).all())


def _judge(observation: Observation, predicted) -> str:
    """'explained', 'contradiction' or 'neutral' for one output predicted by one cause."""
    if predicted is None:
        return "neutral"
    if observation.shape_only:
        if not isinstance(predicted, torch.Tensor) or predicted.shape == observation.expected.shape:
            return "neutral"
        got_shape = getattr(observation.got, "shape", None)
        return ("explained" if observation.failed else "neutral") if got_shape == predicted.shape else "contradiction"
    if _close(predicted, observation.expected, observation.tolerance):
        return "neutral"  # the cause predicts the right value here: says nothing
    if observation.kind == "dtype":
        return "neutral"  # a dtype is its own cause; values may still match
    if _close(observation.got, predicted, observation.tolerance):
        return "explained" if observation.failed else "neutral"
    return "contradiction"


def _context(entry) -> dict:
    first = entry.check.probe.tensors[0]
    return {"N": first.shape[0] if first.dim() else 1, "C": first.shape[-1] if first.dim() else 1}


def _named_tensors(entry) -> dict[str, torch.Tensor]:
    """The probe's input tensors by their names in the notebook (x, W, b, dh, h, ...)."""
    named, cls = {}, _layer_class(entry)
    tensors = entry.check.probe.tensors
    for step in entry.check.probe.steps:
        if step["op"] == "set":
            named[step["attr"]] = tensors[step["tensor"]]
        elif step["op"] == "call":
            for name, index in zip(ARGUMENTS.get(f"{cls}.{step['method']}", ()), step["args"]):
                named[name] = tensors[index]
    return named


# (class, output) -> (the region of the output, from the inputs by name; where it is; the rule there)
REGIONS = {
    ("NLLLoss", "dS"): ("true_class", lambda t: t["y"] > 0, "at the true class (the zeros elsewhere are right)",
                        "there dS must be −1/(N·S)"),
    ("ReLU", "dh"): ("not_positive", lambda t: t["h"] <= 0, "where h ≤ 0 (it is right where h > 0)",
                     "there dh must be 0"),
}


def _located(observation: Observation, region) -> str:
    """explained: the output is right outside the region and wrong inside; contradiction: wrong outside."""
    got, expected = observation.got, observation.expected
    if not observation.failed:
        return "neutral"
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape or observation.kind == "dtype":
        return "contradiction"
    try:
        inside = region(_named_tensors(observation.entry)).expand_as(expected)
    except (KeyError, RuntimeError):
        return "neutral"
    if not inside.any() or not _close(got[~inside], expected[~inside], observation.tolerance):
        return "contradiction"
    return "explained"


def _method_of(entry, output: str) -> str:
    """The method that produced an output: the call that named it, or the last call before a read."""
    cls, last = "", ""
    for step in entry.check.probe.steps:
        if step["op"] == "new":
            cls = step["cls"]
        elif step["op"] == "call":
            last = f"{cls}.{step['method']}"
            if step["out"] == output:
                return last
        elif step["op"] == "get" and step["out"] == output:
            return last
    return last


def _layer_class(entry) -> str:
    return next((s["cls"] for s in entry.check.probe.steps if s["op"] == "new"), "")


class Catalogue:
    """Variant outputs per check, computed once (the inputs are fixed) and shared by all students."""

    def __init__(self, oracles: dict):
        """oracles: class name -> the trusted class (the registry's, checks.oracle_classes)."""
        self._oracles = dict(oracles)
        self._cache: dict[tuple[str, str], dict | None] = {}
        self._lock = threading.Lock()

    def predicted(self, variant: Variant, entry) -> dict | None:
        key = (variant.cause.key, entry.check.name)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        classes = dict(self._oracles)
        built = variant.build()
        classes[variant.cls] = _keep_x(built) if variant.cls == "Linear" else built
        try:
            with torch.no_grad():
                outputs = run_probe(classes, list(entry.check.probe.steps),
                                    [t.clone() for t in entry.check.probe.tensors])
        except (ProbeError, RuntimeError, IndexError, ValueError, TypeError):
            outputs = None  # a variant that cannot run on this probe predicts nothing here
        with self._lock:
            self._cache[key] = outputs
        return outputs


@dataclass
class _Candidate:
    cause: Cause
    priority: int
    order: int
    explained: set = field(default_factory=set)  # check indices
    contradicted: bool = False
    min_explained: int = 1  # Variant.min_explained


def _structural(observation: Observation) -> Cause | None:
    """Causes read off the kind of mismatch alone: no prediction needed."""
    method = observation.method
    out = observation.output
    if out.endswith("_after"):
        name = out[: -len("_after")]
        cls = observation.cls
        methods = list(dict.fromkeys(s["method"] for s in observation.entry.check.probe.steps if s["op"] == "call"))
        where = f"{cls}.{' or '.join(methods)}"
        return Cause(f"{cls}:in_place:{name}", f"{cls}.{methods[-1]}",
                     f"{where} changes its input {name} in place: afterwards the caller's {name} was different.",
                     "build new tensors (h.clamp(min=0), x = x - m) instead of writing into an argument "
                     "(h.clamp_(min=0), h[h < 0] = 0, x -= m)")
    if observation.kind == "type":
        got = observation.got
        if out in ("dW", "db"):
            return Cause(f"{method}:{out}_not_set", method, f"{method} does not set self.{out}.",
                         f"assign self.{out} = ... in backward")
        if got == "none":
            return Cause(f"{method}:returns_none", method, f"{method} returns None: a return statement is missing.",
                         "end the method with return ...")
        return Cause(f"{method}:{out}_not_tensor", method, f"{method} returns {out} as something other than a tensor.",
                     "return a torch tensor")
    if observation.kind == "dtype":
        got = str(observation.got.dtype).replace("torch.", "")
        wanted = str(observation.expected.dtype).replace("torch.", "")
        # one cause per class: a forward that changes the dtype also changes what backward returns
        return Cause(f"{method.split('.')[0]}:dtype", method,
                     f"{method} returns {out} as {got} when its inputs are {wanted}: it must keep the input's dtype.",
                     "create tensors with dtype=x.dtype (or zeros_like) and don't call .double()/.float()")
    return None


def _observations(entries, outcomes, results, tolerance) -> list[Observation]:
    observations = []
    for index, (entry, outcome, result) in enumerate(zip(entries, outcomes, results)):
        check = entry.check
        if (check.judge or outcome is None or outcome.failure or outcome.error
                or result.cause is not None):
            continue
        for output in dict.fromkeys((*check.compare, *check.produced)):
            expected = entry.expected[output]
            # inputs must come back bit for bit, as score.py demands
            tol = _EXACT if output.endswith("_after") else tolerance[str(expected.dtype).replace("torch.", "")]
            got = outcome.outputs.get(output, "missing")
            shape_only = check.shape_only or output not in check.compare  # produced: shape (and dtype) only
            mismatch = compare(output, got, expected, tol, shape_only)
            if mismatch is None and shape_only and output not in check.compare:  # produced: dtype counts too
                if isinstance(got, torch.Tensor) and got.dtype != expected.dtype:
                    mismatch = compare(output, got, expected, tol)
            observations.append(Observation(index, entry, output, got, expected, tol, mismatch is not None,
                                            mismatch.kind if mismatch else "", shape_only,
                                            cls=_layer_class(entry), method=_method_of(entry, output)))
    return observations


@dataclass(frozen=True)
class _Exact:
    rtol: float = 0.0
    atol: float = 0.0


_EXACT = _Exact()


def _tally(found: _Candidate, observations, verdict_of) -> None:
    """Adds what one cause explains; the first contradiction rules it out."""
    for observation in observations:
        verdict = verdict_of(observation)
        if verdict == "contradiction":
            found.contradicted = True
            return
        if verdict == "explained":
            found.explained.add(observation.index)


def _transform_verdict(observation: Observation, transform: Transform) -> str:
    if transform.key == "not_averaged":
        return "explained" if observation.failed and _not_averaged(observation) else "neutral"
    try:
        predicted = transform.apply(observation.expected.double(), _context(observation.entry))
    except (RuntimeError, IndexError):
        predicted = None
    return _judge(observation, predicted)


def _named_input(entry, name: str, transposed: bool):
    tensor = _named_tensors(entry).get(name)
    if tensor is not None and transposed:
        return tensor.T if tensor.dim() == 2 else None
    return tensor


def _formula(method: str, output: str) -> str:
    from .hints import FORMULAS

    return FORMULAS.get((method.split(".")[0], output), "")


def _not_averaged(observation: Observation) -> bool:
    got, expected = observation.got, observation.expected
    return (isinstance(got, torch.Tensor) and expected.dim() == 0 and got.dim() == 1 and got.is_floating_point()
            and _close(got.double().mean(), expected, observation.tolerance))


def explain(entries, outcomes, results, tolerance, catalogue: Catalogue) -> dict[int, Cause]:
    """Check index -> the cause of its failure, for the failed checks a cause explains."""
    causes: dict[int, Cause] = {}
    observations = _observations(entries, outcomes, results, tolerance)
    failed = [o for o in observations if o.failed]
    if not failed:
        return causes
    candidates: dict[str, _Candidate] = {}

    def candidate(cause: Cause, priority: int, min_explained: int = 1) -> _Candidate:
        return candidates.setdefault(cause.key, _Candidate(cause, priority, len(candidates), min_explained=min_explained))

    # 1. variants of the classes that failed, judged on every observation of their class
    failing_classes = {o.cls for o in failed}
    for variant in VARIANTS:
        if variant.cls not in failing_classes:
            continue
        found = candidate(variant.cause, 0, variant.min_explained)
        for observation in observations:
            if observation.cls != variant.cls or found.contradicted:
                continue
            predicted = catalogue.predicted(variant, observation.entry)
            verdict = _judge(observation, None if predicted is None else predicted.get(observation.output))
            own = (observation.output.endswith("_after")
                   or observation.method == variant.cause.method)
            if verdict == "contradiction" and own:
                found.contradicted = True
            elif verdict == "explained":
                found.explained.add(observation.index)
    # 2. transforms of each failed output, judged on every observation of that output
    for output_method in sorted({(o.output, o.method) for o in failed
                                 if not o.output.endswith("_after")}):
        output, method = output_method
        same = [o for o in observations if (o.output, o.method) == output_method]
        for transform in TRANSFORMS:
            cause = Cause(f"{method}:{output}:{transform.key}", method,
                          transform.text.format(method=method, out=output), transform.hint)
            _tally(candidate(cause, 1), same, lambda o, t=transform: _transform_verdict(o, t))
    # 3. an input handed back (maybe transposed) as the output
    for output, method in sorted({(o.output, o.method) for o in failed
                                  if not o.output.endswith("_after")}):
        same = [o for o in observations if o.output == output and o.method == method]
        for name in sorted({n for o in same for n in _named_tensors(o.entry)}):
            for transposed in (False, True):
                shown = f"{name}ᵀ" if transposed else name
                cause = Cause(f"{method}:{output}:is_{name}{'_T' if transposed else ''}", method,
                              f"{method} returns {shown} as {output}, not the value computed from it.",
                              _formula(method, output))
                _tally(candidate(cause, 1), same,
                       lambda o, n=name, t=transposed: _judge(o, _named_input(o.entry, n, t)))
    # 4. right in one region of the output, wrong in the rest
    for (cls, output), (key, region, where, rule) in REGIONS.items():
        same = [o for o in observations if o.output == output and o.cls == cls]
        if not any(o.failed for o in same):
            continue
        method = same[0].method
        cause = Cause(f"{method}:{output}:wrong_{key}", method, f"{method} gets {output} wrong {where}.", rule)
        _tally(candidate(cause, 3), same, lambda o, r=region: _located(o, r))
    # 5. kinds that are causes by themselves
    for observation in failed:
        cause = _structural(observation)
        if cause:
            candidate(cause, 2 if observation.output.endswith("_after") else -1).explained.add(observation.index)
    # greedy: the cause explaining most of the still unexplained failed checks first
    live = [c for c in candidates.values() if len(c.explained) >= c.min_explained and not c.contradicted]
    remaining = {o.index for o in failed}
    while remaining and live:
        best = max(live, key=lambda c: (len(c.explained & remaining), -c.priority, -c.order))
        gained = best.explained & remaining
        if not gained:
            break
        for index in gained:
            causes[index] = best.cause
        remaining -= gained
        live.remove(best)
    return causes


# --- causes that are not about values ---------------------------------------------------------

def cause_of_error(error: dict) -> Cause:
    """The student's exception: not written yet, or class, method, line and message as today."""
    where = str(error.get("where", "?"))
    kind = str(error.get("type", "an error"))
    if kind == "NotImplementedError":
        return Cause(f"{where}:not_written", where, f"{where} raised NotImplementedError: it is not written yet.",
                     "replace `raise NotImplementedError()` with your code")
    line = f" ({error['line']})" if error.get("line") else ""
    message = str(error.get("message", ""))
    return Cause(f"{where}:raised:{kind}:{error.get('line', '')}", where,
                 f"{where} raised {kind}: {message}{line}".rstrip(), "")
