"""Computes internally in float64 and casts back to the input's dtype: dtype preserved by design.

Demonstrates: .double() inside, .to(x.dtype) on the way out (values agree with float32 math within
float32 tolerance), torch.as_tensor(N, dtype=...) for the 1/N, torch.full_like for gradient buffers,
and Tensor.new_tensor for constants in the input's dtype.
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
        h = x.double() @ self.W.double() + self.b.double()
        return h.to(x.dtype)

    def backward(self, dh):
        dtype = dh.dtype
        x64, dh64 = self.x.double(), dh.double()
        self.dW = (x64.T @ dh64).to(dtype)
        self.db = dh64.sum(dim=0).to(dtype)
        return (dh64 @ self.W.double().T).to(dtype)


class Softmax:
    def forward(self, r):
        r64 = r.double()
        e = (r64 - r64.max(dim=1, keepdim=True).values).exp()
        self.S = (e / e.sum(dim=1, keepdim=True)).to(r.dtype)
        return self.S

    def backward(self, dS):
        S = self.S.double()
        dS64 = dS.double()
        return (S * (dS64 - (dS64 * S).sum(dim=1, keepdim=True))).to(dS.dtype)


class NLLLoss:
    def forward(self, S, y):
        self.S, self.y = S, y
        N = torch.as_tensor(S.shape[0], dtype=S.dtype)
        true = (S * y).sum(dim=1)  # y is one-hot: the true-class probability, no log of zeros
        return -(torch.log(true).sum() / N)

    def backward(self):
        S, y = self.S, self.y
        true = (S * y).sum(dim=1, keepdim=True)
        dS = torch.full_like(S, 0.0)
        return torch.where(y > 0, -y / (S.new_tensor(S.shape[0]) * true), dS)
