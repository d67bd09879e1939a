"""A two-layer MLP built from the reference layers, plus SGD training and accuracy.

    x (N, D) -> Linear -> ReLU -> Linear -> Softmax -> S (N, C);  L = NLLLoss(S, y)
"""
import torch

from .layers import Linear, NLLLoss, ReLU, Softmax


class MLP:
    """Linear -> ReLU -> Linear -> Softmax, trained with the mean NLL loss."""

    def __init__(self, in_features, hidden, classes, generator=None):
        """
        Inputs:
        - in_features: D, hidden: H, classes: C
        - generator: optional torch.Generator for a reproducible init
        """
        self.fc1 = Linear(in_features, hidden, generator)
        self.act = ReLU()
        self.fc2 = Linear(hidden, classes, generator)
        self.softmax = Softmax()
        self.loss_fn = NLLLoss()
        self.layers = [self.fc1, self.act, self.fc2, self.softmax]

    def forward(self, x):
        """
        Inputs:
        - x: (N, D)

        Returns:
        - S: (N, C) class probabilities
        """
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def loss(self, S, y):
        """
        Inputs:
        - S: (N, C) from forward; y: (N, C) one-hot

        Returns:
        - L: 0-dim mean NLL (remembered for backward)
        """
        return self.loss_fn.forward(S, y)

    def backward(self):
        """
        Backpropagate the last loss through every layer; sets dW, db of both Linear layers.
        """
        d = self.loss_fn.backward()
        for layer in reversed(self.layers):
            d = layer.backward(d)

    def parameters(self):
        """
        Returns:
        - list of (parameter, gradient) pairs: (W1, dW1), (b1, db1), (W2, dW2), (b2, db2)
        """
        return [(p, g) for fc in (self.fc1, self.fc2) for p, g in ((fc.W, fc.dW), (fc.b, fc.db))]


def sgd_step(model, lr):
    """One plain SGD update in place: W <- W - lr dW for every parameter of model."""
    for param, grad in model.parameters():
        param.add_(grad, alpha=-lr)  # param -= lr * grad, without a temporary


def train(model, X, Y, epochs, batch_size, lr, generator=None):
    """
    Mini-batch SGD over a fresh shuffle each epoch. The last N mod batch_size examples of a
    shuffle are left out of that epoch (as DataLoader's drop_last): a tiny final batch would take a
    full lr-sized step on a very noisy gradient, which can undo an epoch of progress.

    Inputs:
    - model: MLP
    - X: (N, D) inputs; Y: (N, C) one-hot targets
    - epochs, batch_size, lr: the usual
    - generator: optional torch.Generator for the shuffling

    Returns:
    - losses: list of floats, the mean batch loss of each epoch
    """
    N = X.shape[0]
    losses = []
    for _ in range(epochs):
        order = torch.randperm(N, generator=generator)
        total, batches = 0.0, max(1, N // batch_size)
        for start in range(0, batches * batch_size, batch_size):
            idx = order[start:start + batch_size]
            L = model.loss(model.forward(X[idx]), Y[idx])
            model.backward()
            sgd_step(model, lr)
            total += L.item()
        losses.append(total / batches)
    return losses


def accuracy(model, X, labels):
    """
    Inputs:
    - X: (N, D); labels: (N,) integer classes

    Returns:
    - fraction of rows whose most probable class is the label, a float
    """
    return (model.forward(X).argmax(dim=1) == labels).double().mean().item()
