"""Debugging as students do in their notebook: printing whole tensors, their repr and f-strings of
them, a warning, a log line, and numpy (its random, linalg and fft submodules) beside torch.

Demonstrates: whatever the student's kernel can import with the kit's environment imports in the
sandbox too (printing a tensor lazily imports parts of torch; numpy's submodules load on first
use), read-only, and costs nothing.
"""
import logging
import math
import warnings

import numpy as np
import numpy.linalg
import torch

log = logging.getLogger("my-layers")


class Linear:
    def __init__(self, in_features, out_features, generator=None):  # as given in the notebook
        k = 1.0 / math.sqrt(in_features)
        self.W = (2 * torch.rand(in_features, out_features, generator=generator) - 1) * k
        self.b = (2 * torch.rand(out_features, generator=generator) - 1) * k
        self.dW = None
        self.db = None

    def forward(self, x):
        print("x =", x)
        print(repr(self.W))
        self.x = x
        h = x @ self.W + self.b
        print(f"h = {h}, its norm {h.norm():.3f}")
        log.warning("Linear.forward: %s", h.shape)
        return h

    def backward(self, dh):
        print(f"{dh!r}")
        self.dW = self.x.T @ dh
        self.db = dh.sum(0)
        noise = np.random.default_rng(0).normal(size=3)  # numpy.random, loaded on first use
        print("dW norm (numpy):", numpy.linalg.norm(self.dW.numpy()), np.fft.rfft(noise).shape)
        return dh @ self.W.T


class ReLU:
    def forward(self, h):
        self.h = h
        if not torch.isfinite(h).all():
            warnings.warn(f"non-finite input {h}")
        print(h)
        return h.clamp(min=0)

    def backward(self, dr):
        print(str(dr), np.asarray(dr).std())
        return dr * (self.h > 0)
