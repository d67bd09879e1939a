"""Index notation with torch.einsum for every product and reduction.

Demonstrates: Linear forward and all three gradients as einsum strings (db as 'no->o'), and the
softmax backward's row-wise inner product as 'nc,nc->n'; NLL picks the true class by an einsum
with y (exact zeros elsewhere in S never reach a log).
"""
import math

import torch


class Linear:
    def __init__(self, in_features, out_features, generator=None):  # as given in the notebook
        k = 1.0 / math.sqrt(in_features)
        self.W = (2 * torch.rand(in_features, out_features, generator=generator) - 1) * k
        self.b = (2 * torch.rand(out_features, generator=generator) - 1) * k
        self.dW = None
        self.db = None

    def forward(self, x):
        self.x = x
        return torch.einsum("ni,io->no", x, self.W) + self.b

    def backward(self, dh):
        self.dW = torch.einsum("ni,no->io", self.x, dh)
        self.db = torch.einsum("no->o", dh)
        return torch.einsum("no,io->ni", dh, self.W)


class Softmax:
    def forward(self, r):
        e = torch.exp(r - r.amax(dim=1, keepdim=True))
        self.S = e / torch.einsum("nc->n", e)[:, None]
        return self.S

    def backward(self, dS):
        inner = torch.einsum("nc,nc->n", dS, self.S)
        return self.S * (dS - inner[:, None])


class NLLLoss:
    def forward(self, S, y):
        self.S, self.y = S, y
        self.p = torch.einsum("nc,nc->n", S, y)  # the true-class probability of each row
        return -torch.log(self.p).sum() / S.shape[0]

    def backward(self):
        return -self.y / (self.S.shape[0] * self.p[:, None])  # y is 0 off the true class: exact 0
