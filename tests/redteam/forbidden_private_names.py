"""Attack (#22 item 1): softmax, relu and nll_loss and their gradients under torch's private names,
which the old name guard did not know: torch._softmax with torch._softmax_backward_data,
torch.ops.aten.relu with aten.threshold_backward, aten.nll_loss_forward with nll_loss_backward.
Before: 58/58 and no notice.

Expected: the guard judges the operations that run (whatever their name), so ReLU, Softmax and
NLLLoss lose every check of the methods that ran them (and train); the syntax scan names the
private names for the instructor.
"""
import torch

aten = torch.ops.aten


def _softmax_forward(self, r):
    self.S = torch._softmax(r, 1, False)
    return self.S


def _softmax_backward(self, dS):
    return torch._softmax_backward_data(dS, self.S, 1, self.S.dtype)


def _relu_forward(self, h):
    self.h = h
    return aten.relu(h)


def _relu_backward(self, dr):
    return aten.threshold_backward(dr, self.h, 0)


def _nll_forward(self, S, y):
    self.S, self.labels = S, y.argmax(dim=1)
    loss, self.total = aten.nll_loss_forward(S.log(), self.labels, None, 1, -100)
    return loss


def _nll_backward(self):
    one = torch.ones((), dtype=self.S.dtype)
    d_log = aten.nll_loss_backward(one, self.S.log(), self.labels, None, 1, -100, self.total)
    return torch.where(d_log != 0, d_log / self.S, torch.zeros_like(d_log))


Softmax.forward, Softmax.backward = _softmax_forward, _softmax_backward
ReLU.forward, ReLU.backward = _relu_forward, _relu_backward
NLLLoss.forward, NLLLoss.backward = _nll_forward, _nll_backward
