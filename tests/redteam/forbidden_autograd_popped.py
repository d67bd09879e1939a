"""Attack (#22 item 2): every backward computed by autograd, with the name guard popped
(torch.overrides._pop_mode_temporarily()), so no forbidden name is seen. Before: 58/58, train 5/5,
no notice.

Expected: the autograd engine's operations are seen running however it was started, so every
backward check (and train) is lost; the forwards, written by hand, keep their points.
"""
import contextlib

import torch

_SWITCHES = [torch.overrides._pop_mode_temporarily]


@contextlib.contextmanager
def _guard_off():
    with contextlib.ExitStack() as switched:
        for switch in _SWITCHES:
            try:
                switched.enter_context(switch())
            except RuntimeError:  # no guard on (the train check's later epochs)
                pass
        yield


def _gradients(outputs, inputs, upstream):
    with _guard_off():
        leaves = [t.detach().requires_grad_() for t in inputs]
        out = outputs(*leaves)
        # the vector-Jacobian product as the gradient of a scalar: no grad_outputs to check
        return torch.autograd.grad(out if upstream is None else (out * upstream).sum(), leaves)


def _linear_backward(self, dh):
    dx, self.dW, self.db = _gradients(lambda x, W, b: x @ W + b, (self.x, self.W, self.b), dh)
    return dx


def _relu_backward(self, dr):
    return _gradients(lambda h: h * (h > 0), (self.h,), dr)[0]


_softmax_forward = Softmax.forward


def _softmax_remembers(self, r):
    self.r = r
    return _softmax_forward(self, r)


def _softmax(r):
    e = (r - r.max(dim=1, keepdim=True).values).exp()
    return e / e.sum(dim=1, keepdim=True)


def _softmax_backward(self, dS):
    return _gradients(_softmax, (self.r,), dS)[0]


def _nll_backward(self):
    rows, labels = self.rows, self.labels
    return _gradients(lambda S: -S[rows, labels].log().mean(), (self.S,), None)[0]


Linear.backward = _linear_backward
ReLU.backward = _relu_backward
Softmax.forward, Softmax.backward = _softmax_remembers, _softmax_backward
NLLLoss.backward = _nll_backward
