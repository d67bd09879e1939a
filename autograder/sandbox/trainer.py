"""The train check's loop, run inside the sandbox with the student's four classes.

The parent sends the initial weights, the training inputs with one-hot targets and the test inputs
(never the test labels); this returns the softmax outputs on the test inputs, and the parent computes
the accuracy.
"""
from __future__ import annotations

import torch


def train_mlp(classes: dict, tensors: dict, params: dict, call) -> torch.Tensor:
    """Linear -> ReLU -> Linear -> Softmax with NLL loss, minibatch SGD, fixed order from `seed`.

    tensors: X (N, D), Y one-hot (N, C), X_test (M, D), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
    Returns: S_test (M, C)
    """
    guarded = call

    def step(where, fn, *args):
        return call(where, fn, list(args))

    layers = [classes["Linear"], classes["ReLU"], classes["Linear"], classes["Softmax"]]
    hidden, classes_out = tensors["W1"].shape[1], tensors["W2"].shape[1]
    first = step("Linear.__init__", layers[0], tensors["W1"].shape[0], hidden)
    second = step("Linear.__init__", layers[2], hidden, classes_out)
    first.W, first.b, second.W, second.b = tensors["W1"], tensors["b1"], tensors["W2"], tensors["b2"]
    model = [first, step("ReLU.__init__", layers[1]), second, step("Softmax.__init__", layers[3])]
    loss = step("NLLLoss.__init__", classes["NLLLoss"])

    def forward(x):
        for layer in model:
            x = step(f"{type(layer).__name__}.forward", layer.forward, x)
        return x

    X, Y = tensors["X"], tensors["Y"]
    order = torch.Generator().manual_seed(params["seed"])
    for epoch in range(params["epochs"]):
        if epoch == params["guarded_epochs"]:  # the same code runs every step: the guard has seen it
            call = _unguarded
        for batch in torch.randperm(len(X), generator=order).split(params["batch_size"]):
            step("NLLLoss.forward", loss.forward, forward(X[batch]), Y[batch])
            grad = step("NLLLoss.backward", loss.backward)
            for layer in reversed(model):
                grad = step(f"{type(layer).__name__}.backward", layer.backward, grad)
            for linear in (first, second):
                linear.W = linear.W - params["lr"] * linear.dW
                linear.b = linear.b - params["lr"] * linear.db
    call = guarded
    return forward(tensors["X_test"])


def _unguarded(where, fn, args):
    return fn(*args)
