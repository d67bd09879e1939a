"""The train check: the student's four classes train a fixed small MLP on digits in the sandbox.

The child gets the initial weights, training inputs with one-hot targets and the test inputs; the
test labels and the accuracy stay here in the parent.
"""
from __future__ import annotations

import math

import torch

from solution.digits import load_digits_split, one_hot

from ..sandbox.session import Probe
from .base import Check


def checks(train, generator: torch.Generator):
    X, labels, X_test, test_labels = load_digits_split()
    X, labels = X[: train.train_samples], labels[: train.train_samples]
    d, c = X.shape[1], 10

    def uniform(*shape, fan_in):
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(*shape, generator=generator) * 2 - 1) * bound

    tensors = (X, one_hot(labels, c), X_test, uniform(d, train.hidden, fan_in=d),
               uniform(train.hidden, fan_in=d), uniform(train.hidden, c, fan_in=train.hidden),
               uniform(c, fan_in=train.hidden))
    step = {
        "op": "train", "out": "S_test",
        "tensors": {name: i for i, name in enumerate(("X", "Y", "X_test", "W1", "b1", "W2", "b2"))},
        "params": {"epochs": train.epochs, "batch_size": train.batch_size, "lr": train.lr, "seed": 0,
                   "guarded_epochs": train.guarded_epochs},
    }

    def judge(outputs: dict) -> tuple[bool, str]:
        S = outputs.get("S_test")
        if not isinstance(S, torch.Tensor) or S.shape != (len(X_test), c):
            return False, f"the trained network's output on the test digits was not a ({len(X_test)}, {c}) tensor"
        accuracy = (S.double().argmax(dim=1) == test_labels).double().mean().item()  # any dtype, bool too
        verdict = "reached" if accuracy >= train.accuracy_threshold else "is below"
        return accuracy >= train.accuracy_threshold, (
            f"test accuracy {accuracy:.1%} {verdict} the threshold {train.accuracy_threshold:.0%}")

    given = (f"an MLP {d} -> {train.hidden} -> {c} built from your classes, {len(X)} training digits, "
             f"{train.epochs} epochs of SGD (batch {train.batch_size}, lr {train.lr})")
    probe = Probe((step,), tensors, "train", train.wall_seconds)
    methods = tuple(f"{cls}.{m}" for cls in ("Linear", "ReLU", "Softmax", "NLLLoss") for m in ("forward", "backward"))
    return [Check("train.fit.accuracy", given, probe, methods=methods, judge=judge)]
