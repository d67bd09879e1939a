"""The train check: the student's four classes compose into the reference's training loop.

The child gets starting weights and a batch order drawn from the course secret, and the training
digits with one-hot targets; it runs minibatch SGD with the student's layers (sandbox/trainer.py)
and returns the parameters after the first step, after each of the first two epochs, and at the
end. The test digits never leave the parent, which checks:
- the trajectory: at each sampled point the parameters are those the reference layers reach from
  the same start (to float rounding). Between them lie state kept across calls, forward and backward
  repeated step after step, and a short last batch in every epoch (1000 samples in batches of 150);
  and the points depend on the student's layers doing the training, not on weights trained elsewhere
  and carried in the source (the start is secret, so they cannot match);
- the final parameters, run through the reference forward pass here, classify the held-out test
  digits about as well as the reference's final parameters do.
What it does not check is that the network converges: the notebook's own training cells show that.
"""
from __future__ import annotations

import math

import torch

from solution import layers as reference_layers
from solution.digits import load_digits_split, one_hot

from ..records import Probe
from ..sandbox.probe import run_probe
from ..sandbox.trainer import MLP_CLASSES, PARAMETERS, SAMPLES
from .base import Check, Inputs

REFERENCE = {name: getattr(reference_layers, name) for name in MLP_CLASSES}


def _accuracy(parameters: dict, X: torch.Tensor, labels: torch.Tensor) -> float:
    """The reference forward pass (softmax keeps the argmax) in float64."""
    W1, b1, W2, b2 = (parameters[name].double() for name in PARAMETERS)
    hidden = (X.double() @ W1 + b1).clamp(min=0)
    return ((hidden @ W2 + b2).argmax(dim=1) == labels).double().mean().item()


def _flat(parameters: dict, suffix: str) -> torch.Tensor:
    return torch.cat([parameters[name + suffix].double().reshape(-1) for name in PARAMETERS])


def _as_parameters(outputs: dict, suffix: str, shapes, point: str) -> dict | str:
    """The student's returned parameters as plain tensors of the start's shapes (a bias kept as
    (1, H) is accepted as (H,)), or what is wrong with them."""
    found = {}
    for name, shape in zip(PARAMETERS, shapes):
        value = outputs.get(name + suffix)
        if not isinstance(value, torch.Tensor) or value.numel() != math.prod(shape):
            return f"{name} was not a tensor of shape {tuple(shape)} {point}"
        if not value.is_floating_point() or not torch.isfinite(value).all():
            return f"{name} holds values that are not finite numbers {point}"
        found[name + suffix] = value.reshape(shape)
    return found


def _point(suffix: str, steps_per_epoch: int, short_batch: int) -> str:
    """Where a sample was taken, for the student."""
    if suffix in ("_step1", ""):
        return "after the first step" if suffix else "at the end of training"
    short = f", the last a short batch of {short_batch}" if short_batch else ""
    return f"after epoch {suffix.removeprefix('_epoch')} ({steps_per_epoch} steps an epoch{short})"


def checks(inputs: Inputs):
    train, generator = inputs.config.train, inputs.generator
    X, labels, X_test, test_labels = load_digits_split()
    X, labels = X[: train.train_samples], labels[: train.train_samples]
    Y, d, c = one_hot(labels, 10), X.shape[1], 10
    shapes = ((d, train.hidden), (train.hidden,), (train.hidden, c), (c,))

    def uniform(*shape, fan_in):
        bound = 1 / math.sqrt(fan_in)
        return (torch.rand(*shape, generator=generator) * 2 - 1) * bound

    start = (uniform(d, train.hidden, fan_in=d), uniform(train.hidden, fan_in=d),
             uniform(train.hidden, c, fan_in=train.hidden), uniform(c, fan_in=train.hidden))
    step = {
        "op": "train",
        "classes": list(MLP_CLASSES),
        "tensors": {name: i for i, name in enumerate(("X", "Y", *PARAMETERS))},
        "params": {"epochs": train.epochs, "batch_size": train.batch_size, "lr": train.lr,
                   "guarded_epochs": train.guarded_epochs,
                   "seed": int(torch.randint(2 ** 62, (1,), generator=generator))},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ~50x faster than two threads on a busy 2-core machine
    try:
        expected = run_probe(REFERENCE, [step], [X, Y, *start])
    finally:
        torch.set_num_threads(threads)
    reference_accuracy = _accuracy(expected, X_test, test_labels)
    start_point = torch.cat([tensor.double().reshape(-1) for tensor in start])
    # the samples the run reaches (a one-epoch run stops before the second)
    samples = [suffix for suffix in SAMPLES if suffix != "_epoch2" or train.epochs >= 2]
    reference = {suffix: _flat(expected, suffix) for suffix in samples}
    steps_per_epoch, short_batch = math.ceil(len(X) / train.batch_size), len(X) % train.batch_size

    def judge(outputs: dict) -> tuple[bool, str]:
        found = {}
        for index, suffix in enumerate((*samples, "")):
            parameters = _as_parameters(outputs, suffix, shapes, _point(suffix, steps_per_epoch, short_batch))
            if isinstance(parameters, str):
                return False, parameters
            found.update(parameters)
            if not suffix:
                break
            moved = (_flat(found, suffix) - reference[suffix]).norm() / (reference[suffix] - start_point).norm()
            if not moved <= train.trajectory_tolerance:
                where = (f"{_point(suffix, steps_per_epoch, short_batch)} from the grader's starting weights, the "
                         f"parameters differ by {moved.item():.2g} (relative) from those correct layers reach "
                         f"(tolerance {train.trajectory_tolerance:g})")
                if index == 0:
                    return False, f"{where}: a gradient or a forward pass is not right yet"
                return False, (f"{where}; they matched {_point(samples[index - 1], steps_per_epoch, short_batch)}: "
                               f"look for something kept from an earlier call, or written for one batch size")
        accuracy = _accuracy(found, X_test, test_labels)
        passed = accuracy >= reference_accuracy - train.accuracy_tolerance
        return passed, (f"test accuracy {accuracy:.1%} after {train.epochs} epochs; correct layers reach "
                        f"{reference_accuracy:.1%} from the same start "
                        f"(tolerance {train.accuracy_tolerance:.0%} below)")

    given = (f"an MLP {d} -> {train.hidden} -> {c} built from your classes, {len(X)} training digits, "
             f"{train.epochs} epochs of SGD (batch {train.batch_size}, lr {train.lr}) from the grader's "
             f"secret starting weights; the trained network is tested on digits it never saw")
    probe = Probe((step,), (X, Y, *start), "train", train.wall_seconds)
    methods = tuple(f"{cls}.{m}" for cls in MLP_CLASSES for m in ("forward", "backward"))
    # compare: the outputs the judge reads (it compares them with the reference run itself)
    compare = tuple(name + suffix for suffix in (*samples, "") for name in PARAMETERS)
    return [Check("train.fit.accuracy", given, probe, compare=compare, methods=methods, judge=judge)]
