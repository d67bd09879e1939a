"""What a hidden check is: a probe (steps + inputs), the outputs compared with the oracle, and
the methods whose forbidden API use zeroes it. Part modules only describe inputs; the engine
(probe interpreter, oracle, comparison, scoring) is shared.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..records import Probe

F64, F32 = torch.float64, torch.float32


@dataclass(frozen=True)
class Check:
    """One hidden check.

    name:     <part>.<method>.<check>, also the grading.toml key (without the part)
    given:    what went in, for feedback ("x float64 (5, 4), W float64 (4, 3), ...")
    probe:    what the sandbox runs on the student's classes (and the parent on the oracle)
    compare:  outputs compared with the oracle's (shape, dtype, values)
    shape_only: compare shapes only
    methods:  "Class.method"s whose forbidden calls zero this check
    judge:    custom verdict instead of comparing (train): outputs -> (passed, message)
    produced: outputs that must come back as tensors of the oracle's shape and dtype (values are
              not compared) for the check to count: an inputs-unchanged check is no achievement
              for a method that computes nothing
    names:    each probe tensor's name in the notebook (x, W, dh, ...), for diagnosis's sentences
    """

    name: str
    given: str
    probe: Probe
    compare: tuple[str, ...] = ()
    shape_only: bool = False
    methods: tuple[str, ...] = ()
    judge: Callable | None = field(default=None, compare=False)
    produced: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def part(self) -> str:
        return self.name.split(".")[0]


def _describe(tensor: torch.Tensor) -> str:
    return f"{str(tensor.dtype).replace('torch.', '')} {tuple(tensor.shape)}"


class LayerProbe:
    """Builds the probe of one layer object: `new`, then assignments, calls and reads."""

    def __init__(self, cls: str, *args: int):
        self.cls = cls
        self.steps: list[dict] = [{"op": "new", "obj": "layer", "cls": cls, "args": list(args)}]
        self.tensors: list[torch.Tensor] = []
        self.labels: list[str] = []
        self.notes: list[str] = []
        self.methods: list[str] = [f"{cls}.__init__"]
        self.kept_inputs = False

    def _add(self, label: str, tensor: torch.Tensor) -> int:
        self.tensors.append(tensor)
        self.labels.append(label)
        return len(self.tensors) - 1

    def input(self, label: str, tensor: torch.Tensor) -> int:
        return self._add(label, tensor)

    def assign(self, attr: str, tensor: torch.Tensor) -> int:
        index = self._add(attr, tensor)
        self.steps.append({"op": "set", "obj": "layer", "attr": attr, "tensor": index})
        return index

    def call(self, method: str, *inputs: int, out: str) -> "LayerProbe":
        self.steps.append({"op": "call", "obj": "layer", "method": method, "args": list(inputs), "out": out})
        if f"{self.cls}.{method}" not in self.methods:
            self.methods.append(f"{self.cls}.{method}")
        return self

    def read(self, *attrs: str) -> "LayerProbe":
        for attr in attrs:
            self.steps.append({"op": "get", "obj": "layer", "attr": attr, "out": attr})
        return self

    def keep_inputs(self) -> tuple[str, ...]:
        """Snapshot every input after the calls; returns the snapshot names (`<label>_after`)."""
        names = []
        self.kept_inputs = True
        for index, label in enumerate(self.labels):
            names.append(f"{label.split()[-1]}_after")
            self.steps.append({"op": "keep", "tensor": index, "out": names[-1]})
        return tuple(names)

    def note(self, text: str) -> "LayerProbe":
        self.notes.append(text)
        return self

    def given(self) -> str:
        inputs = ", ".join(f"{label} {_describe(t)}" for label, t in zip(self.labels, self.tensors))
        return "; ".join([inputs] + self.notes)

    def check(self, name: str, *compare: str, wall_seconds: float, shape_only: bool = False) -> Check:
        probe = Probe(tuple(self.steps), tuple(self.tensors), name.split(".")[0], wall_seconds)
        # an inputs-unchanged check counts only when the method under test (the last call) returned
        # a result: else `pass` everywhere would earn every one of them
        calls = [step["out"] for step in self.steps if step["op"] == "call"]
        produced = (calls[-1],) if self.kept_inputs and calls else ()
        names = tuple(label.split()[-1] for label in self.labels)  # "upstream dh" -> dh
        return Check(name, self.given(), probe, compare, shape_only, tuple(self.methods), produced=produced,
                     names=names)


@dataclass
class Inputs:
    """Seeded random inputs, handed to every part module's checks(inputs)."""

    n: int
    d_in: int
    d_out: int
    classes: int
    wall_seconds: float
    generator: torch.Generator
    config: object = None  # the whole Config, for a part with settings of its own ([train])

    def randn(self, *shape: int, dtype=F64) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator, dtype=F64).to(dtype)

    def labels(self, n: int) -> torch.Tensor:
        """One-hot rows (n, C) with every class index drawn at random."""
        index = torch.randint(self.classes, (n,), generator=self.generator)
        return torch.nn.functional.one_hot(index, self.classes).to(F64)
