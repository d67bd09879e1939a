"""The hidden checks, one module per part (named in grading.toml's [parts]), and the suite that
pairs each check with the oracle's outputs and with what its part's module knows of its mistakes.

Imported by the parent only, after the sandbox template has been started (the template must never
hold expected values).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..scoring.diagnosis import NOTHING_KNOWN, Knowledge
from ..records import GraderError
from ..sandbox.probe import run_probe
from .base import Check, Inputs


@dataclass(frozen=True)
class SuiteEntry:
    check: Check
    expected: dict  # the oracle's outputs for the check's probe (empty for judged checks)
    points: float
    knowledge: Knowledge = NOTHING_KNOWN  # what its part's module says about its mistakes (diagnosis)


def _part_checks(part, module, inputs: Inputs) -> dict[str, Check]:
    if not callable(getattr(module, "checks", None)):
        raise GraderError(f"grading.toml [parts.{part.name}] checks_module {part.checks_module!r} "
                          f"defines no checks(inputs) function")
    made = {check.name: check for check in module.checks(inputs)}
    strays = [name for name in made if not name.startswith(part.name + ".")]
    if strays:
        raise GraderError(f"{part.checks_module}: checks of part {part.name!r} must be named "
                          f"'{part.name}.<method>.<check>', not {', '.join(strays)}")
    return made


def oracle_classes(config) -> dict:
    """Student class name -> the trusted class its outputs are compared with, from the registry."""
    return {part.cls: part.oracle_class() for part in config.layers}


def build_suite(config, seed: int) -> list[SuiteEntry]:
    """Every check named in grading.toml, with its expected outputs, in grading.toml order.
    seed: of every hidden input, from the course secret (secret.course_inputs)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = Inputs(config.inputs.n, config.inputs.d_in, config.inputs.d_out, config.inputs.classes,
                    config.limits.wall_seconds, generator, config)
    oracles = oracle_classes(config)
    suite = []
    for part in config.parts.values():
        if not part.points:
            continue
        module = part.checks()
        available = _part_checks(part, module, inputs)
        knowledge = (Knowledge.of(module, part.cls, f"[parts.{part.name}] checks_module {part.checks_module!r}")
                     if part.is_layer else NOTHING_KNOWN)
        unknown = [f"{part.name}.{check}" for check in part.points if f"{part.name}.{check}" not in available]
        if unknown:
            raise GraderError(f"grading.toml names checks that do not exist: {', '.join(unknown)}; "
                              f"{part.name} has: {', '.join(name.split('.', 1)[1] for name in available)}")
        for name, points in part.points.items():
            check = available[f"{part.name}.{name}"]
            expected = {} if check.judge else run_probe(oracles, list(check.probe.steps),
                                                        [t.clone() for t in check.probe.tensors])
            suite.append(SuiteEntry(check, expected, points, knowledge))
    return suite
