"""Attack (#14 item 9, what is left once the parent evaluates the returned parameters itself):
carry weights trained elsewhere (REDTEAM["pretrained"]: an MLP of the train check's shape trained
at home on the public digits) and return them whatever the layers do: `W` and `b` are properties
that always read the carried weights and ignore the trainer's updates; every method does nothing.

Expected: 0 for the train check. The start is drawn from the course secret, and the parameters
after the first step must be those correct layers reach from it: carried weights cannot be.
"""
import torch

_WEIGHTS = REDTEAM["pretrained"]


class Linear:
    def __init__(self, in_features, out_features, generator=None):
        self._name = f"{in_features}x{out_features}"

    W = property(lambda self: torch.tensor(_WEIGHTS[self._name]["W"]), lambda self, value: None)
    b = property(lambda self: torch.tensor(_WEIGHTS[self._name]["b"]), lambda self, value: None)

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dh):
        self.dW, self.db = torch.zeros_like(self.W), torch.zeros_like(self.b)
        return dh @ self.W.T


class ReLU:
    def forward(self, h):
        return h

    def backward(self, dr):
        return dr


class Softmax:
    def forward(self, r):
        return r

    def backward(self, dS):
        return dS


class NLLLoss:
    def forward(self, S, y):
        self.S = S
        return torch.tensor(0.0)

    def backward(self):
        return torch.zeros_like(self.S)
