"""Softmax through logsumexp, and a backward written from the Jacobian's formula.

Demonstrates: S = exp(r - logsumexp(r)) (stable for logits of magnitude 1000 with no explicit max),
and dr = S * dS - S * (S . dS), the expanded form of the vector-Jacobian product.
"""
import torch


class Softmax:
    def forward(self, r):
        log_S = r - torch.logsumexp(r, dim=1, keepdim=True)
        self.S = torch.exp(log_S)
        return self.S

    def backward(self, dS):
        S = self.S
        return S * dS - S * torch.sum(S * dS, dim=1, keepdim=True)
