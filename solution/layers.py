"""Reference layers for the nn-from-scratch assignment: Linear, ReLU, Softmax, NLLLoss.

Rows are examples. Dimension symbols used throughout:
    N      number of examples (any N >= 1)
    D_in   input features of a Linear layer
    D_out  output features of a Linear layer
    C      number of classes

Each layer keeps what its backward pass needs from the last forward call and returns the
gradient of the loss with respect to its input. Only basic tensor ops are used (no torch.nn,
no autograd, no torch.softmax / torch.relu). Every method returns tensors in the dtype of its
inputs and never modifies its arguments in place.

This module imports only torch and math, so its source text also works as a submission.
"""
import math

import torch


class Linear:
    """Affine layer h = x W + b."""

    def __init__(self, in_features, out_features, generator=None):
        """
        Initialise W and b from U(-1/sqrt(D_in), 1/sqrt(D_in)) in torch's default dtype.

        Inputs:
        - in_features: D_in
        - out_features: D_out
        - generator: optional torch.Generator, for a reproducible init
        """
        k = 1.0 / math.sqrt(in_features)
        self.W = (2 * torch.rand(in_features, out_features, generator=generator) - 1) * k
        self.b = (2 * torch.rand(out_features, generator=generator) - 1) * k
        self.dW = None
        self.db = None

    def forward(self, x):
        """
        Inputs:
        - x: (N, D_in)

        Returns:
        - h: (N, D_out), h = x W + b
        """
        self.x = x
        return x @ self.W + self.b

    def backward(self, dh):
        """
        Inputs:
        - dh: (N, D_out), upstream gradient dL/dh

        Returns:
        - dx: (N, D_in), dL/dx = dh W^T
        Sets self.dW and self.db, as param_backward does.
        """
        self.param_backward(dh)
        return dh @ self.W.T

    def param_backward(self, dh):
        """
        The parameter half of backward, alone: for a first layer, whose input (the data) needs no
        gradient. Sets self.dW (D_in, D_out) = x^T dh and self.db (D_out,) = sum of dh over rows.

        Inputs:
        - dh: (N, D_out), upstream gradient dL/dh
        """
        self.dW = (dh.T @ self.x).T  # = x^T dh; in this order BLAS is up to 4x faster for small D_out
        self.db = dh.sum(dim=0)


class ReLU:
    """Elementwise r = max(0, h); the gradient at exactly h = 0 is taken as 0."""

    def forward(self, h):
        """
        Inputs:
        - h: any shape

        Returns:
        - r: same shape as h, max(0, h)
        """
        self.h = h
        return h.clamp(min=0)

    def backward(self, dr):
        """
        Inputs:
        - dr: same shape as h, upstream gradient dL/dr

        Returns:
        - dh: same shape, dr where h > 0 and 0 elsewhere
        """
        # sign(h) clamped at 0 is ReLU's derivative: 1 where h > 0, else 0 (also at h = 0). Same
        # values as dr * (h > 0), in float-only ops: several times faster on CPU than a bool mask.
        return dr * self.h.sign().clamp(min=0)


class Softmax:
    """Row-wise softmax S_ic = exp(r_ic) / sum_k exp(r_ik), stable for large |r|."""

    def forward(self, r):
        """
        Inputs:
        - r: (N, C) logits

        Returns:
        - S: (N, C), each row is a probability vector
        """
        z = r - r.max(dim=1, keepdim=True).values
        e = z.exp()
        self.S = e / e.sum(dim=1, keepdim=True)
        return self.S

    def backward(self, dS):
        """
        Vector-Jacobian product of the softmax, O(N C): no (N, C, C) Jacobian is built.

        Inputs:
        - dS: (N, C), upstream gradient dL/dS

        Returns:
        - dr: (N, C), dr_i = S_i * (dS_i - <dS_i, S_i>)
        """
        S = self.S
        return S * (dS - (dS * S).sum(dim=1, keepdim=True))


class NLLLoss:
    """Mean negative log-likelihood L = -(1/N) sum_i log S[i, true class of row i]."""

    def forward(self, S, y):
        """
        Only the true-class probabilities are logged, so exact zeros elsewhere in S are fine.

        Inputs:
        - S: (N, C) probabilities
        - y: (N, C) one-hot targets

        Returns:
        - L: 0-dim tensor, dtype of S
        """
        self.rows = torch.arange(S.shape[0])
        self.labels = y.argmax(dim=1)
        self.S = S
        self.p = S[self.rows, self.labels]
        return -self.p.log().mean()

    def backward(self):
        """
        Returns:
        - dS: (N, C), dL/dS = -y / (N S) at the true class and exactly 0 elsewhere
        """
        N = self.S.shape[0]
        dS = torch.zeros_like(self.S)
        dS[self.rows, self.labels] = -1 / (N * self.p)
        return dS
