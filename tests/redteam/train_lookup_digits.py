"""Attack (#14 item 9): pass the train check with no working layer by looking the digits up. The
digits data set is public (scikit-learn ships it): the submission carries a copy, pixels -> label
(REDTEAM["digits"], ~230 KB here). The first Linear keeps the raw pixels it is given, every layer
returns a tensor of the shape and dtype the next one expects (the trainer checks them), and Softmax
answers with the looked-up label of each image it recognises. When the child was handed the test
digits to classify, this scored 100% test accuracy.

Expected: 0 for the train check. The child returns the parameters along the run and never sees the
test digits; the parameters (the untouched start) classify nothing and are not where correct
layers get to after the first step.
"""
import torch

_LABELS = REDTEAM["digits"]
_PIXELS = []  # the last batch of images the first Linear saw


def _key(row):
    return " ".join(str(round(value * 16)) for value in row.tolist())


class Linear:
    def __init__(self, in_features, out_features, generator=None):
        self.W = torch.zeros(in_features, out_features)
        self.b = torch.zeros(out_features)

    def forward(self, x):
        self.x = x
        if x.shape[1] == 64:
            _PIXELS[:] = [x]
        return torch.zeros(len(x), self.W.shape[1], dtype=x.dtype)

    def backward(self, dh):
        self.dW, self.db = torch.zeros_like(self.W), torch.zeros_like(self.b)
        return torch.zeros_like(self.x)


class ReLU:
    def forward(self, h):
        self.h = h
        return h

    def backward(self, dr):
        return dr


class Softmax:
    def forward(self, r):
        self.r = r
        S = torch.full(r.shape, 0.1, dtype=r.dtype)
        for i, row in enumerate(_PIXELS[0] if _PIXELS else r):
            if row.numel() == 64 and _key(row) in _LABELS:
                S[i] = 0.0
                S[i, _LABELS[_key(row)]] = 1.0
        return S

    def backward(self, dS):
        return torch.zeros_like(self.r)


class NLLLoss:
    def forward(self, S, y):
        self.S = S
        return torch.tensor(0.0)

    def backward(self):
        return torch.zeros_like(self.S)
