"""The train check: the student's four classes train a fixed small MLP on digits in the sandbox.

The child gets starting weights and a batch order drawn from the course secret, and the training
digits with one-hot targets; it returns the parameters its training produced (after the first
epoch and at the end). The test digits never leave the parent, which checks two things:
- the parameters after the first epoch are those the reference layers reach from the same start
  (to float rounding): the points depend on the student's layers doing the training, not on
  weights trained elsewhere and carried in the source (the start is secret, so they cannot match);
- the final parameters, run through the reference forward pass here, classify the held-out test
  digits at least as well as the threshold.
"""
from __future__ import annotations

import math

import torch

from solution import layers as reference_layers
from solution.digits import load_digits_split, one_hot

from ..records import GraderError, Probe
from ..sandbox.probe import run_probe
from ..sandbox.trainer import MLP_CLASSES
from .base import Check, Inputs

PARAMETERS = ("W1", "b1", "W2", "b2")
FIRST_EPOCH = tuple(f"{name}_epoch1" for name in PARAMETERS)
REFERENCE = {name: getattr(reference_layers, name) for name in MLP_CLASSES}
# Starting points whose reference run misses the threshold by less than this are skipped, so every
# course's start can be trained past the threshold by correct layers with room for rounding.
MARGIN = 0.02
ATTEMPTS = 20


def _accuracy(parameters: dict, X: torch.Tensor, labels: torch.Tensor) -> float:
    """The reference forward pass (softmax keeps the argmax) in float64."""
    W1, b1, W2, b2 = (parameters[name].double() for name in PARAMETERS)
    hidden = (X.double() @ W1 + b1).clamp(min=0)
    return ((hidden @ W2 + b2).argmax(dim=1) == labels).double().mean().item()


def _flat(parameters: dict, names) -> torch.Tensor:
    return torch.cat([parameters[name].double().reshape(-1) for name in names])


def _as_parameters(outputs: dict, names, shapes) -> dict | str:
    """The student's returned parameters as plain tensors of the start's shapes (a bias kept as
    (1, H) is accepted as (H,)), or what is wrong with them."""
    found = {}
    for name, shape in zip(names, shapes):
        value = outputs.get(name)
        if not isinstance(value, torch.Tensor) or value.numel() != math.prod(shape):
            return f"{name.split('_')[0]} was not a tensor of shape {tuple(shape)} after training"
        if not value.is_floating_point() or not torch.isfinite(value).all():
            return f"{name.split('_')[0]} holds values that are not finite numbers after training"
        found[name] = value.reshape(shape)
    return found


def checks(inputs: Inputs):
    train, generator = inputs.config.train, inputs.generator
    X, labels, X_test, test_labels = load_digits_split()
    X, labels = X[: train.train_samples], labels[: train.train_samples]
    Y, d, c = one_hot(labels, 10), X.shape[1], 10
    shapes = ((d, train.hidden), (train.hidden,), (train.hidden, c), (c,))

    def uniform(*shape, fan_in):
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(*shape, generator=generator) * 2 - 1) * bound

    step = {
        "op": "train",
        "classes": list(MLP_CLASSES),
        "tensors": {name: i for i, name in enumerate(("X", "Y", *PARAMETERS))},
        "params": {"epochs": train.epochs, "batch_size": train.batch_size, "lr": train.lr,
                   "guarded_epochs": train.guarded_epochs},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ~50x faster than two threads on a busy 2-core machine
    try:
        for _ in range(ATTEMPTS):
            start = (uniform(d, train.hidden, fan_in=d), uniform(train.hidden, fan_in=d),
                     uniform(train.hidden, c, fan_in=train.hidden), uniform(c, fan_in=train.hidden))
            order_seed = int(torch.randint(2 ** 62, (1,), generator=generator))
            step = {**step, "params": {**step["params"], "seed": order_seed}}
            expected = run_probe(REFERENCE, [step], [X, Y, *start])
            reference_accuracy = _accuracy(expected, X_test, test_labels)
            if reference_accuracy >= train.accuracy_threshold + MARGIN:
                break
        else:
            raise GraderError(f"grading.toml: [train] the reference layers reach {reference_accuracy:.1%} test "
                              f"accuracy, below accuracy_threshold {train.accuracy_threshold:.0%} + {MARGIN:.0%}")
    finally:
        torch.set_num_threads(threads)
    start_point = _flat(dict(zip(PARAMETERS, start)), PARAMETERS)
    reference_first = _flat(expected, FIRST_EPOCH)

    def judge(outputs: dict) -> tuple[bool, str]:
        first = _as_parameters(outputs, FIRST_EPOCH, shapes)
        final = _as_parameters(outputs, PARAMETERS, shapes)
        for problem in (first, final):
            if isinstance(problem, str):
                return False, problem
        moved = (_flat(first, FIRST_EPOCH) - reference_first).norm() / (reference_first - start_point).norm()
        if not moved <= train.first_epoch_tolerance:
            return False, (f"after the first epoch from the grader's starting weights, the parameters differ by "
                           f"{moved.item():.2g} (relative) from those correct layers reach (tolerance "
                           f"{train.first_epoch_tolerance:g}): a gradient or a forward pass is not right yet")
        accuracy = _accuracy(final, X_test, test_labels)
        verdict = "reached" if accuracy >= train.accuracy_threshold else "is below"
        return accuracy >= train.accuracy_threshold, (
            f"test accuracy {accuracy:.1%} {verdict} the threshold {train.accuracy_threshold:.0%}")

    given = (f"an MLP {d} -> {train.hidden} -> {c} built from your classes, {len(X)} training digits, "
             f"{train.epochs} epochs of SGD (batch {train.batch_size}, lr {train.lr}) from the grader's "
             f"secret starting weights; the trained network is tested on digits it never saw")
    probe = Probe((step,), (X, Y, *start), "train", train.wall_seconds)
    methods = tuple(f"{cls}.{m}" for cls in MLP_CLASSES for m in ("forward", "backward"))
    # compare: the outputs the judge reads (it compares them with the reference run itself)
    return [Check("train.fit.accuracy", given, probe, compare=PARAMETERS + FIRST_EPOCH, methods=methods, judge=judge)]
