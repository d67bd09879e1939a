"""The train check's loop, run inside the sandbox with the student's four classes.

The parent sends the initial weights (drawn from the course secret), the training inputs with
one-hot targets and the seed of the batch order; this returns the trained parameters. The parent
evaluates them on test digits the child never sees, and compares them with the same training run
by the reference layers from the same start (checks/train.py).
"""
from __future__ import annotations

import torch

MLP_CLASSES = ("Linear", "ReLU", "Softmax", "NLLLoss")  # the student's classes the MLP is built from


def train_mlp(classes: dict, tensors: dict, params: dict, call) -> dict:
    """Linear -> ReLU -> Linear -> Softmax with NLL loss, minibatch SGD, fixed order from `seed`.

    tensors: X (N, D), Y one-hot (N, C), W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
    Returns: the trained {"W1", "b1", "W2", "b2"}, and the same after the first epoch
    ({"W1_epoch1", ...}: early enough that correct layers agree with the reference to float
    rounding, whereas a full run at this learning rate amplifies rounding differences)
    """

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

    def parameters(suffix=""):
        return {f"{name}{suffix}": value for name, value in
                (("W1", first.W), ("b1", first.b), ("W2", second.W), ("b2", second.b))}

    X, Y = tensors["X"], tensors["Y"]
    order = torch.Generator().manual_seed(params["seed"])
    after_first: dict = {}
    for epoch in range(params["epochs"]):
        if epoch == 1:  # clones: a layer may still change its tensors in place later
            after_first = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in parameters("_epoch1").items()}
        if epoch == params["guarded_epochs"]:  # the same code runs every step: the guard has seen it
            call = _unguarded
        for batch in torch.randperm(len(X), generator=order).split(params["batch_size"]):
            # index_select: the same rows as X[batch], copied twice as fast (advanced indexing
            # goes through the general element-wise index kernel)
            step("NLLLoss.forward", loss.forward, forward(X.index_select(0, batch)), Y.index_select(0, batch))
            grad = step("NLLLoss.backward", loss.backward)
            for layer in reversed(model):
                grad = step(f"{type(layer).__name__}.backward", layer.backward, grad)
            for linear in (first, second):
                linear.W = linear.W - params["lr"] * linear.dW
                linear.b = linear.b - params["lr"] * linear.db
    return {**parameters(), **(after_first or parameters("_epoch1"))}


def _unguarded(where, fn, args):
    return fn(*args)
