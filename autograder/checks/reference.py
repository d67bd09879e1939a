"""The oracle: the four layers computed by torch autograd in float64, in the student contract's shape.

Each class runs its forward in float64 with autograd recording, and its backward is the
vector-Jacobian product torch computes. Outputs come back in the input's dtype, which is therefore
the dtype a student's output must have. Runs only in the trusted parent. grading.toml's [parts]
name these classes as the parts' oracles; `AutogradLayer` is the base a new layer's oracle can use
(define `math`, and `params` for weights).
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


class Linear(AutogradLayer):
    params = ("W", "b")

    def __init__(self, in_features, out_features, generator=None):
        self.W = torch.zeros(in_features, out_features)
        self.b = torch.zeros(out_features)
        self.dW = self.db = None

    def math(self, x, W, b):
        return x @ W + b


class ReLU(AutogradLayer):
    def math(self, h):
        return torch.relu(h)  # autograd's gradient at exactly 0 is 0, as the notebook demands


class Softmax(AutogradLayer):
    def math(self, r):
        return torch.softmax(r, dim=1)


class NLLLoss(AutogradLayer):
    def math(self, S, y):
        # log of the true-class entries only: finite when S has exact zeros elsewhere
        return -torch.log(S.gather(1, y.argmax(dim=1, keepdim=True))).mean()

    def backward(self):
        return self._vjp(torch.ones((), dtype=torch.float64))

