"""Softmax, in one place: S = exp(r) / rowsum(exp(r)), dr = S ⊙ (dS − rowsum(dS ⊙ S)).

Its hidden checks (checks), its oracle (Softmax), its catalogue of known mistakes (VARIANTS) and its
formulas (FORMULAS, NOT_FINITE).
"""
from __future__ import annotations

import torch

from ..scoring.diagnosis import changes_input, output_of, variant, wrong_backward, wrong_forward
from .base import F32, F64, Inputs, LayerProbe
from .reference import AutogradLayer


class Softmax(AutogradLayer):
    """The oracle."""

    def math(self, r):
        return torch.softmax(r, dim=1)


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


FORMULAS = {
    "S": "S = exp(r − rowmax) / rowsum(exp(r − rowmax)); every row sums to 1",
    "dr": "dr = S ⊙ (dS − rowsum(dS ⊙ S)): every output of a row depends on every input of that row",
}

NOT_FINITE = "exp overflowed: subtract each row's maximum from r before exp (softmax is unchanged by it)"


# --- the catalogue ----------------------------------------------------------------------------

def _rowsum(t):
    return t.sum(dim=1, keepdim=True)


def _stable_exp(r):
    return (r - r.max(dim=1, keepdim=True).values).exp()


def _vjp(S, dS):
    """The correct backward of whatever S forward returned: what a student's backward computes."""
    return S * (dS - (dS * S).sum(dim=1, keepdim=True))


def _forward(math):
    """Another forward formula; backward then uses the S it returned, as a student's does."""
    return wrong_forward(math, backward=_vjp)


_S = output_of


def _v(method, key, text, hint, build, min_explained: int = 1):
    return variant(f"Softmax.{method}", key, text, hint, build, min_explained)


VARIANTS = [
    _v("forward", "no_max_shift",
       "Softmax.forward is not stable for large logits: exp overflows (or every entry underflows to 0/0).",
       "subtract each row's own maximum from r before exp (softmax does not change)",
       _forward(lambda r: r.exp() / _rowsum(r.exp()))),
    _v("forward", "global_max",
       "Softmax.forward subtracts the maximum of the whole batch; rows far below it underflow to 0/0.",
       "subtract each row's own maximum: r.max(dim=1, keepdim=True)",
       _forward(lambda r: (r - r.max()).exp() / _rowsum((r - r.max()).exp()))),
    _v("forward", "column_max", "Softmax.forward subtracts each column's maximum instead of each row's.",
       "r.max(dim=1, keepdim=True): one maximum per row (per example)",
       _forward(lambda r: (r - r.max(dim=0).values).exp() / _rowsum((r - r.max(dim=0).values).exp()))),
    _v("forward", "normalises_columns",
       "Softmax.forward normalises the columns (dim=0) instead of the rows: each row is one example and must sum to 1.",
       "divide by the sum over dim=1 (keepdim=True)",
       _forward(lambda r: _stable_exp(r) / _stable_exp(r).sum(dim=0, keepdim=True))),
    _v("forward", "not_normalised", "Softmax.forward returns exp(r − max) without dividing by the row's sum.",
       "S = e / e.sum(dim=1, keepdim=True)", _forward(_stable_exp)),
    _v("forward", "mean_normaliser", "Softmax.forward divides by the row's mean instead of its sum.",
       "S = e / e.sum(dim=1, keepdim=True)",
       _forward(lambda r: _stable_exp(r) / _stable_exp(r).mean(dim=1, keepdim=True))),
    _v("forward", "multiplies_by_sum", "Softmax.forward multiplies by the row's sum where it must divide by it.",
       "S = e / e.sum(dim=1, keepdim=True)",
       _forward(lambda r: _stable_exp(r) * _rowsum(_stable_exp(r)))),
    _v("forward", "expm1", "Softmax.forward uses expm1 (exp − 1) where exp belongs.",
       "e = z.exp()", _forward(lambda r: (r - r.max(dim=1, keepdim=True).values).expm1()
                                       / _rowsum((r - r.max(dim=1, keepdim=True).values).expm1()))),
    _v("forward", "shifts_input",
       "Softmax.forward subtracts the row maximum from r in place, so the caller's r changes.",
       "z = r - r.max(...) makes a new tensor; r -= ... overwrites r",
       changes_input("forward", lambda s, r: r.sub_(r.max(dim=1, keepdim=True).values))),
    _v("backward", "diagonal_only",
       "Softmax.backward uses only the diagonal S(1 − S) of the Jacobian and drops the −S_i S_j terms.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) * (1 - _S(s)) * dS)),
    _v("backward", "ignores_upstream", "Softmax.backward ignores the upstream gradient dS.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) * (1 - _S(s)))),
    _v("backward", "sums_over_batch",
       "Softmax.backward sums dS ⊙ S over the batch (dim=0) instead of over each row's classes.",
       "rowsum = (dS * S).sum(dim=1, keepdim=True)",
       wrong_backward(lambda s, dS: _S(s) * (dS - (dS * _S(s)).sum(dim=0, keepdim=True)))),
    _v("backward", "mean_not_sum", "Softmax.backward averages dS ⊙ S over the row where it must sum it.",
       "rowsum = (dS * S).sum(dim=1, keepdim=True)",
       wrong_backward(lambda s, dS: _S(s) * (dS - (dS * _S(s)).mean(dim=1, keepdim=True)))),
    _v("backward", "missing_row_term", "Softmax.backward returns S ⊙ dS and leaves out the − rowsum(dS ⊙ S) term.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) * dS)),
    _v("backward", "missing_outer_S", "Softmax.backward leaves out the outer factor S: dr = S ⊙ (dS − rowsum(dS ⊙ S)).",
       "multiply the bracket by S", wrong_backward(lambda s, dS: dS - _rowsum(dS * _S(s)))),
    _v("backward", "missing_inner_S", "Softmax.backward sums dS over the row without weighting it by S.",
       "rowsum(dS ⊙ S), not rowsum(dS)", wrong_backward(lambda s, dS: _S(s) * (dS - _rowsum(dS)))),
    _v("backward", "row_term_added", "Softmax.backward adds rowsum(dS ⊙ S) where it must subtract it.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) * (dS + _rowsum(dS * _S(s))))),
    _v("backward", "row_term_only", "Softmax.backward keeps only the S ⊙ rowsum(dS ⊙ S) term and drops S ⊙ dS.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) * _rowsum(dS * _S(s)))),
    _v("backward", "returns_S", "Softmax.backward returns S itself and ignores the upstream gradient dS.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s))),
    _v("backward", "row_term_without_dS", "Softmax.backward sums S over the row where it must sum dS ⊙ S.",
       "rowsum(dS ⊙ S)", wrong_backward(lambda s, dS: _S(s) * (dS - _rowsum(_S(s))))),
    _v("backward", "divides_by_S", "Softmax.backward divides by S where it must multiply by it.",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) / (dS - _rowsum(dS * _S(s))))),
    _v("backward", "updates_upstream",
       "Softmax.backward subtracts from the upstream gradient dS in place, so the caller's dS changes.",
       "compute dS - ... into a new tensor; dS -= ... overwrites it",
       changes_input("backward", lambda s, dS: dS.sub_(_rowsum(dS * _S(s).to(dS.dtype))))),
    _v("backward", "divides_inner_by_S", "Softmax.backward divides dS by S inside the row sum where it must multiply: "
       "rowsum(dS ⊙ S), not rowsum(dS / S).",
       "dr = S ⊙ (dS − rowsum(dS ⊙ S))", wrong_backward(lambda s, dS: _S(s) * (dS - _rowsum(dS / _S(s))))),
    _v("forward", "normalises_batch", "Softmax.forward normalises over the whole batch (one sum for every entry): each "
       "row is one example and must sum to 1 on its own.",
       "divide by each row's sum: e.sum(dim=1, keepdim=True)",
       _forward(lambda r: (r - r.max()).exp() / (r - r.max()).exp().sum())),
    _v("forward", "normalises_batch_row_max", "Softmax.forward divides by the sum over the whole batch instead of each "
       "row's sum: each row is one example and must sum to 1 on its own.",
       "divide by each row's sum: e.sum(dim=1, keepdim=True)",
       _forward(lambda r: _stable_exp(r) / _stable_exp(r).sum())),
    _v("forward", "column_softmax", "Softmax.forward computes the softmax of each column (dim=0) instead of each row: "
       "each row is one example and must sum to 1.",
       "subtract each row's maximum and divide by each row's sum (dim=1, keepdim=True)",
       _forward(lambda r: torch.softmax(r, dim=0))),
    _v("forward", "column_softmax_unshifted",
       "Softmax.forward normalises the columns (dim=0) instead of the rows, with "
       "no maximum subtracted: each row must sum to 1, and exp overflows for large logits.",
       "subtract each row's maximum and divide by each row's sum (dim=1, keepdim=True)",
       _forward(lambda r: r.exp() / r.exp().sum(dim=0, keepdim=True))),
    _v("forward", "normalises_batch_unshifted",
       "Softmax.forward divides exp(r) by its sum over the whole batch, with no "
       "maximum subtracted: each row must sum to 1 on its own, and exp overflows for large logits.",
       "subtract each row's maximum, divide by each row's sum: e.sum(dim=1, keepdim=True)",
       _forward(lambda r: r.exp() / r.exp().sum())),
    _v("backward", "sums_over_everything",
       "Softmax.backward sums dS ⊙ S over the whole batch instead of over each row.",
       "rowsum = (dS * S).sum(dim=1, keepdim=True)",
       wrong_backward(lambda s, dS: _S(s) * (dS - (dS * _S(s)).sum()))),
]
