"""The base of every oracle: a layer computed by torch autograd in float64, in the student contract's shape.

An oracle runs its forward in float64 with autograd recording, and its backward is the
vector-Jacobian product torch computes. Outputs come back in the input's dtype, which is therefore
the dtype a student's output must have. Runs only in the trusted parent. Each part's oracle lives
with the rest of its part (checks/linear.py holds `Linear`, ...) and grading.toml's [parts] names it;
a new layer's oracle subclasses `AutogradLayer` (define `math`, and `params` for weights).
"""
from __future__ import annotations

import torch


class AutogradLayer:
    params: tuple[str, ...] = ()

    def math(self, *inputs):
        raise NotImplementedError

    def forward(self, *inputs):
        self._dtype = inputs[0].dtype
        self._inputs = [t.detach().double().requires_grad_(t.is_floating_point()) for t in inputs]
        self._params = [getattr(self, name).detach().double().requires_grad_() for name in self.params]
        with torch.enable_grad():
            self._out = self.math(*self._inputs, *self._params)
        return self._out.detach().to(self._dtype)

    def _vjp(self, upstream):
        wrt = [t for t in self._inputs if t.requires_grad] + self._params
        # grad of <out, upstream> is the vector-Jacobian product; a scalar output also keeps autograd
        # from importing torch.fx (0.6 s) to check the shape of a given upstream gradient
        with torch.enable_grad():
            inner = (self._out * upstream).sum()
        grads = torch.autograd.grad(inner, wrt, allow_unused=True, retain_graph=True)
        grads = [torch.zeros_like(t) if g is None else g for t, g in zip(wrt, grads)]
        for name, grad in zip(self.params, grads[len(grads) - len(self.params):]):
            setattr(self, "d" + name, grad.to(self._dtype))
        return grads[0].to(self._dtype)

    def backward(self, upstream):
        return self._vjp(upstream.double())


# where the kit's oracles lived before each moved in with its part: a course file written then
# (oracle = "autograder.checks.reference:Linear") still finds them
_MOVED = {"Linear": "linear", "ReLU": "relu", "Softmax": "softmax", "NLLLoss": "nll"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
