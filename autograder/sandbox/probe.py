"""The small step language every hidden check is written in.

A probe is a list of JSON steps plus the tensors they refer to by index:

    {"op": "new",  "obj": "layer", "cls": "Linear", "args": [4, 3]}
    {"op": "set",  "obj": "layer", "attr": "W", "tensor": 1}
    {"op": "call", "obj": "layer", "method": "forward", "args": [0], "out": "h"}
    {"op": "get",  "obj": "layer", "attr": "dW", "out": "dW"}
    {"op": "keep", "tensor": 0, "out": "x_after"}        # the input as it is now (in-place edits)
    {"op": "train", "classes": [...], "tensors": {...}, "params": {...}}  # W1, b1, W2, b2 along the run

The same interpreter runs the probe on the student's classes (in the sandbox) and on the reference
classes (in the parent), so a check only says what to feed in and which outputs to compare. The
child knows no part or class name: it looks up the classes the steps name (`class_names`).
"""
from __future__ import annotations

from typing import Callable


from .trainer import BrokenChain, train_mlp

MISSING = object()


def class_names(steps) -> set[str]:
    """The student's classes a list of steps uses: built by `new`, or handed to `train`."""
    names: set[str] = set()
    for step in steps:
        if step.get("op") == "new":
            names.add(step["cls"])
        names.update(step.get("classes", ()))
    return names


def checked_method(steps) -> str | None:
    """The method a layer's probe checks: its last call ("backward" after forward); None for a
    probe of no single method (train)."""
    calls = [step["method"] for step in steps if step.get("op") == "call"]
    return calls[-1] if calls else None


class ProbeError(Exception):
    """The student's code raised; `where` names the method (e.g. Linear.backward)."""

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.where = where
        self.error = error


def _plain_call(where: str, fn: Callable, args: list):
    return fn(*args)


def run_probe(classes: dict, steps: list[dict], tensors: list, call=_plain_call) -> dict:
    """Run `steps`; returns {out name: value}. `call(where, fn, args)` wraps every student call."""
    objects: dict[str, object] = {}
    outputs: dict[str, object] = {}
    for step in steps:
        op = step["op"]
        if op == "new":
            cls = classes.get(step["cls"])
            if cls is None:
                raise ProbeError(step["cls"], NameError(f"class {step['cls']} is not defined"))
            objects[step["obj"]] = _guarded(call, f"{step['cls']}.__init__", cls, step["args"])
        elif op == "set":
            setattr(objects[step["obj"]], step["attr"], tensors[step["tensor"]])
        elif op == "call":
            target = objects[step["obj"]]
            where = f"{type(target).__name__}.{step['method']}"
            method = getattr(target, step["method"], None)
            if method is None:
                raise ProbeError(where, AttributeError(f"{where} is not defined"))
            args = [tensors[index] for index in step["args"]]
            outputs[step["out"]] = _guarded(call, where, method, args)
        elif op == "get":
            outputs[step["out"]] = getattr(objects[step["obj"]], step["attr"], MISSING)
        elif op == "keep":
            outputs[step["out"]] = tensors[step["tensor"]].clone()
        elif op == "train":
            named = {key: tensors[index] for key, index in step["tensors"].items()}
            # each student call goes through _guarded, so an error names its method; an output
            # the next step cannot use names the method that returned it
            try:
                outputs.update(train_mlp(classes, named, step["params"],
                                         lambda where, fn, args: _guarded(call, where, fn, args)))
            except BrokenChain as broken:
                raise ProbeError(broken.where, broken) from broken
        else:
            raise ValueError(f"unknown probe op {op!r}")
    return outputs


def _guarded(call, where: str, fn: Callable, args: list):
    try:
        return call(where, fn, args)
    except ProbeError:
        raise
    except Exception as error:  # the student's exception, reported by name
        raise ProbeError(where, error) from error
