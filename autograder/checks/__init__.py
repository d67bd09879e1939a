"""The hidden checks, one module per part, and the suite that pairs each with the oracle's outputs.

Imported by the parent only, after the sandbox template has been started (the template must never
hold expected values).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..records import GraderError
from ..sandbox.probe import run_probe
from . import linear, nll, relu, reference, softmax, train
from .base import Check, Inputs

LAYER_PARTS = {"linear": linear, "relu": relu, "softmax": softmax, "nll": nll}


@dataclass(frozen=True)
class SuiteEntry:
    check: Check
    expected: dict  # the oracle's outputs for the check's probe (empty for judged checks)
    points: float


def build_suite(config, seed: int) -> list[SuiteEntry]:
    """Every check named in grading.toml, with its expected outputs, in grading.toml order.
    seed: of every hidden input, from the course secret (secret.course_inputs)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = Inputs(config.inputs.n, config.inputs.d_in, config.inputs.d_out, config.inputs.classes,
                    config.limits.wall_seconds, generator)
    available: dict[str, Check] = {}
    for module in LAYER_PARTS.values():
        available.update((check.name, check) for check in module.checks(inputs))
    if any(name.startswith("train.") for name in config.points):
        available.update((check.name, check) for check in train.checks(config.train, generator))
    unknown = [name for name in config.points if name not in available]
    if unknown:
        raise GraderError(f"grading.toml names checks that do not exist: {', '.join(unknown)}")
    suite = []
    for name, points in config.points.items():
        check = available[name]
        expected = {} if check.judge else run_probe(reference.CLASSES, list(check.probe.steps),
                                                    [t.clone() for t in check.probe.tensors])
        suite.append(SuiteEntry(check, expected, points))
    return suite
