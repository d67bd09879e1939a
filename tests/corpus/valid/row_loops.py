"""Explicit Python loops over rows (and a per-row Jacobian), the way a student new to tensors writes it.

Demonstrates: results built row by row into preallocated tensors of the input's dtype; Linear's
dW accumulated as a sum of outer products inside one backward call (still overwritten per call);
the softmax backward forms each row's C x C Jacobian diag(s) - s s^T and multiplies, which is a
correct vector-Jacobian product (the N x C x C tensor is never built at once).
"""
import torch


class Linear:
    def __init__(self, in_features, out_features, generator=None):
        bound = 1 / in_features ** 0.5
        self.W = (torch.rand(in_features, out_features, generator=generator) * 2 - 1) * bound
        self.b = (torch.rand(out_features, generator=generator) * 2 - 1) * bound
        self.dW = None
        self.db = None

    def forward(self, x):
        self.x = x
        h = torch.empty(x.shape[0], self.W.shape[1], dtype=x.dtype)
        for i in range(x.shape[0]):
            h[i] = x[i] @ self.W + self.b
        return h

    def backward(self, dh):
        dW = torch.zeros_like(self.W)
        db = torch.zeros_like(self.b)
        dx = torch.empty_like(self.x)
        for i in range(dh.shape[0]):
            dW = dW + torch.outer(self.x[i], dh[i])
            db = db + dh[i]
            dx[i] = self.W @ dh[i]
        self.dW, self.db = dW, db
        return dx


class Softmax:
    def forward(self, r):
        S = torch.empty_like(r)
        for i in range(r.shape[0]):
            e = torch.exp(r[i] - torch.max(r[i]))
            S[i] = e / torch.sum(e)
        self.S = S
        return S

    def backward(self, dS):
        dr = torch.empty_like(dS)
        for i in range(dS.shape[0]):
            s = self.S[i]
            jacobian = torch.diag(s) - torch.outer(s, s)
            dr[i] = jacobian @ dS[i]
        return dr
