"""NLLLoss, in one place: L = −(1/N) Σ_i log S_i,true (0-dim), dS = −y / (N S) at the true class.

Its hidden checks (checks), its oracle (NLLLoss), its catalogue of known mistakes (VARIANTS), where a
gradient can be right in part (REGIONS) and its formulas (FORMULAS, NOT_FINITE).
"""
from __future__ import annotations

import torch

from ..scoring.diagnosis import Region, changes_input, inputs_of, variant, wrong_backward, wrong_forward
from .base import F32, F64, Inputs, LayerProbe
from .reference import AutogradLayer


class NLLLoss(AutogradLayer):
    """The oracle."""

    def math(self, S, y):
        # log of the true-class entries only: finite when S has exact zeros elsewhere
        return -torch.log(S.gather(1, y.argmax(dim=1, keepdim=True))).mean()

    def backward(self):
        return self._vjp(torch.ones((), dtype=torch.float64))


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


FORMULAS = {
    "L": "L = −(1/N) Σ_i log S[i, true class of row i], a 0-dim tensor",
    "dS": "dS = −1/(N S) at the true class and exactly 0 elsewhere",
}

NOT_FINITE = "log(0) or 0·log 0: take the log only of the true-class probabilities, divide only where y is 1"

REGIONS = {
    "dS": Region("true_class", lambda t: t["y"] > 0, "at the true class (the zeros elsewhere are right)",
                 "there dS must be −1/(N·S)"),
}


# --- the catalogue ----------------------------------------------------------------------------

def _S_and_y(layer):
    """What forward was given: S and the one-hot y, in float64."""
    return inputs_of(layer)[:2]


def _at_true(S, y):
    return (S * y).sum(dim=1)


def _nll(loss_of_rows):
    """Another forward: loss_of_rows(S, y) -> the loss."""
    return wrong_forward(loss_of_rows)


def _nll_grad(true_entry, off_entry=0.0):
    """Another backward: true_entry(p, N) at the true class, off_entry elsewhere."""

    def grad(layer, up):
        S, y = _S_and_y(layer)
        p, n = _at_true(S, y), S.shape[0]
        return torch.where(y > 0, true_entry(p, n)[:, None].expand_as(S), torch.full_like(S, off_entry))

    return wrong_backward(grad)


def _at_class(labels):
    """Forward (and backward) at other classes than the true one: labels(S, y) -> class per row."""

    def build(base):
        def forward(self, S, y):
            picked = torch.nn.functional.one_hot(labels(S, y), S.shape[1]).to(y.dtype)
            return base.forward(self, S, picked)

        return type(base.__name__, (base,), {"forward": forward})

    return build


def _by_columns_grad(layer, up):
    S, y = _S_and_y(layer)
    return torch.where(y > 0, -1 / (S.shape[1] * S), torch.zeros_like(S))


def _divides_everywhere_grad(layer, up):
    S, y = _S_and_y(layer)
    return -y / (S.shape[0] * S)


def _masks_by_S_grad(layer, up):
    S, y = _S_and_y(layer)
    return torch.where(S > 0, -1 / (S.shape[0] * S), torch.zeros_like(S))


_by_columns = wrong_backward(_by_columns_grad)
_divides_everywhere = wrong_backward(_divides_everywhere_grad)


def _accumulating(base):
    def backward(self):
        dS = base.backward(self)
        self._total = dS if getattr(self, "_total", None) is None else self._total + dS
        return self._total

    return type(base.__name__, (base,), {"backward": backward})


def _reuses_S(base):
    def forward(self, S, y):
        self.S_seen = S
        return base.forward(self, S.clone(), y)

    def backward(self):
        dS = base.backward(self)
        self.S_seen.copy_(dS.to(self.S_seen.dtype))
        return dS

    return type(base.__name__, (base,), {"forward": forward, "backward": backward})


def _v(method, key, text, hint, build, min_explained: int = 1):
    return variant(f"NLLLoss.{method}", key, text, hint, build, min_explained)


VARIANTS = [
    _v("forward", "log1p", "NLLLoss.forward uses log1p (log(1 + S)) where log belongs.",
       "L = −mean(log S at the true class)", _nll(lambda S, y: -_at_true(S, y).log1p().mean())),
    _v("forward", "predicted_class",
       "NLLLoss.forward takes the class from S (the prediction) instead of y (the true class).",
       "the true class of row i is y[i].argmax()", _at_class(lambda S, y: S.argmax(dim=1)), min_explained=2),
    _v("forward", "wrong_class",
       "NLLLoss takes S at a class where y is 0 (argmin instead of argmax?), not at the true class.",
       "the true class of row i is y[i].argmax()", _at_class(lambda S, y: y.argmin(dim=1)), min_explained=2),
    _v("forward", "log_of_zeros",
       "NLLLoss.forward takes the log of every entry of S, so exact zeros off the true class give 0·log 0 = nan.",
       "log only the true-class probabilities (index with the labels, or gather)",
       _nll(lambda S, y: -(y * S.log()).sum() / S.shape[0])),
    _v("forward", "clamps_S", "NLLLoss.forward clamps S in place, so the caller's S changes where it held zeros.",
       "S.clamp(min=...) makes a new tensor; S.clamp_(...) overwrites S (and log only the true class: no clamp needed)",
       changes_input("forward", lambda s, S, y: S.clamp_(min=1e-12))),
    _v("forward", "nudges_S", "NLLLoss.forward adds a small epsilon to S in place, so the caller's S changes.",
       "S + eps makes a new tensor; S += eps overwrites S",
       changes_input("forward", lambda s, S, y: S.add_(1e-12))),
    _v("backward", "ones_off_true",
       "NLLLoss.backward starts dS from ones instead of zeros: entries off the true class must be 0.",
       "dS = torch.zeros_like(S), then set the true-class entries", _nll_grad(lambda p, n: -1 / (n * p), 1.0)),
    _v("backward", "divides_by_C",
       "NLLLoss.backward divides by the number of classes C where N (the number of rows) belongs.",
       "N = S.shape[0]", _by_columns),
    _v("backward", "missing_1_over_S", "NLLLoss.backward leaves out the 1/S: the derivative of −log S is −1/S.",
       "dS = −1/(N S) at the true class", _nll_grad(lambda p, n: -torch.ones_like(p) / n)),
    _v("backward", "times_S",
       "NLLLoss.backward multiplies by S where it must divide: the derivative of −log S is −1/S.",
       "dS = −1/(N S) at the true class", _nll_grad(lambda p, n: -p / n)),
    _v("backward", "true_entry_not_set",
       "NLLLoss.backward never writes the true-class entries of dS: it returns all zeros.",
       "dS[rows, labels] = −1/(N S[rows, labels])", _nll_grad(lambda p, n: torch.zeros_like(p))),
    _v("backward", "divides_everywhere",
       "NLLLoss.backward divides by S everywhere, so exact zeros of S give 0/0 = nan off the true class.",
       "compute −1/(N S) only at the true class", _divides_everywhere),
    _v("backward", "accumulates",
       "NLLLoss.backward adds to a stored gradient on every call instead of returning a fresh one.",
       "build dS anew in every call", _accumulating),
    _v("backward", "reuses_S",
       "NLLLoss.backward writes the gradient into S itself (S.zero_() or similar), so the caller's S changes.",
       "dS = torch.zeros_like(S) makes a new tensor", _reuses_S),
    # the gradient with respect to the logits, of softmax and NLL together, returned in the wrong layer
    _v("backward", "logits_gradient_mean",
       "NLLLoss.backward returns (S − y)/N, the gradient of softmax and NLL together "
       "with respect to the logits r; NLLLoss.backward's dS is the gradient with respect to S alone.",
       "dS = −1/(N S) at the true class and 0 elsewhere (Softmax.backward then turns it into (S − y)/N)",
       wrong_backward(lambda layer, up: (_S_and_y(layer)[0] - _S_and_y(layer)[1]) / _S_and_y(layer)[0].shape[0])),
    _v("backward", "logits_gradient", "NLLLoss.backward returns S − y, the gradient of softmax and a summed NLL with "
       "respect to the logits r; NLLLoss.backward's dS is the gradient of the mean loss with respect to S alone.",
       "dS = −1/(N S) at the true class and 0 elsewhere (Softmax.backward then turns it into (S − y)/N)",
       wrong_backward(lambda layer, up: _S_and_y(layer)[0] - _S_and_y(layer)[1])),
    _v("backward", "no_mask", "NLLLoss.backward computes −1/(N S) at every entry: off the true class dS must be 0 "
       "(and exact zeros of S give −inf there).",
       "dS = torch.zeros_like(S), then −1/(N S) at the true class only",
       wrong_backward(lambda layer, up: -1 / (_S_and_y(layer)[0].shape[0] * _S_and_y(layer)[0]))),
    _v("backward", "masks_by_S", "NLLLoss.backward sets dS to 0 where S is 0 rather than where y is 0: off the true "
       "class dS must be 0 whatever S is.",
       "dS = torch.zeros_like(S), then −1/(N S) at the true class only (where y is 1)",
       wrong_backward(_masks_by_S_grad)),
    _v("forward", "log_of_mean", "NLLLoss.forward takes the log of the mean probability; L is the mean of the logs.",
       "L = −mean(log S at the true class)", _nll(lambda S, y: -_at_true(S, y).mean().log())),
    _v("forward", "log10", "NLLLoss.forward uses log10 where the natural log belongs.",
       "L = −mean(log S at the true class), with torch.log", _nll(lambda S, y: -_at_true(S, y).log10().mean())),
]
