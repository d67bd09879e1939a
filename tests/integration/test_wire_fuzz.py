"""Nothing a child sends may raise in the parent: property-based fuzzing (hypothesis) of every frame,
field and tensor the parent reads from a child, through everything the parent then does with it.

A child is student code as soon as the cells run, so every byte it writes on its socket and its
output pipe is hostile input. Here a fake child (a thread speaking the wire protocol, no process)
answers the real parent: the real Sandbox (restarts, per-part limits, time budget), the real
Grader pipeline with the real hidden suite, the score, and every writer of the result (results.json,
a notebook's UTF-8 JSON, grades.csv, the terminal report). A frame may be garbage, cut short,
well-formed with fields of any JSON type (ints of 400 digits, NaN, lone surrogates, escape
sequences), or carry tensors of any allowed dtype in the shapes the checks expect (a bool train
output). Every check must end as a score with a sentence, and no writer may raise.
"""
from __future__ import annotations

import io
import json
import math
import os
import socket
import struct
import subprocess
import threading

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from autograder.batch.outputs import csv_text
from autograder.course.config import load_config
from autograder.feedback.report import print_report, results_json, summary_text
from autograder.sandbox import wire

# --- what a hostile child can write --------------------------------------------------------------

TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["\x1b]52;c;cHduZWQ=\x07", "\ud800", "\x1b[2J", "x" * 3000, "", "Linear.forward"])
NUMBERS = (st.integers() | st.sampled_from([10**400, -(10**400), 2**63, 2**31 - 1, -1, 0])
           | st.floats(allow_nan=True, allow_infinity=True))
JSON = st.recursive(st.none() | st.booleans() | NUMBERS | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)
DEEP_JSON = st.integers(1, 900).map(lambda depth: json.loads("[" * depth + "]" * depth))


def _maybe(strategy):
    """Mostly the well-formed value, sometimes any JSON value at all."""
    return st.one_of(strategy, strategy, strategy, JSON)


@st.composite
def tensor_frames(draw, names: list[str], shapes: list[tuple]) -> tuple[dict, list]:
    """(outputs description, [(spec, payload)]): tensors of allowed dtypes in plausible shapes."""
    outputs, tensors = {}, []
    for name in draw(st.lists(st.sampled_from(names) | TEXT, max_size=4, unique=True)):
        kind = draw(st.sampled_from(["tensor", "tensor", "none", "missing", "other", "?"]))
        if kind == "tensor":
            dtype = draw(st.sampled_from(sorted(wire.DTYPES)))
            shape = list(draw(st.sampled_from(shapes) | st.lists(st.integers(0, 6), max_size=3)))
            size = math.prod(shape) * wire.DTYPES[dtype].itemsize
            payload = draw(st.binary(min_size=size, max_size=size) if size <= 1 << 12
                           else st.sampled_from([bytes(size), b"\xff" * size, b"\x7f\xf0" * (size // 2)]))
            spec = draw(_maybe(st.fixed_dictionaries({"dtype": _maybe(st.just(dtype)),
                                                      "shape": _maybe(st.just(shape))})))
            honest = isinstance(spec, dict) and spec.get("shape") == shape and spec.get("dtype") == dtype
            tensors.append((spec, payload if honest else draw(st.binary(max_size=16))))
            outputs[name] = draw(_maybe(st.just({"kind": "tensor", "index": len(tensors) - 1})))
        else:
            outputs[name] = draw(_maybe(st.fixed_dictionaries({"kind": st.just(kind), "type": TEXT})))
    return draw(_maybe(st.just(outputs))), tensors


def error_records():
    return _maybe(st.fixed_dictionaries({key: _maybe(TEXT) for key in ("where", "type", "message", "line")}))


@st.composite
def result_frames(draw, names: list[str], shapes: list[tuple]) -> dict:
    """A result frame: {"index": None} means the index the parent expects at that point."""
    outputs, tensors = draw(tensor_frames(names, shapes))
    return {
        "type": draw(_maybe(st.sampled_from(["result", "result", "exit", "ready", "done"]))),
        "index": draw(st.none() | JSON),
        "outputs": outputs,
        "error": draw(st.none() | error_records()),
        "forbidden": draw(_maybe(st.dictionaries(TEXT, st.lists(TEXT, max_size=3), max_size=3))),
        "seconds": draw(_maybe(NUMBERS)),
        "status": draw(_maybe(st.sampled_from(["SIGKILL", "exit code 1", "SIGXCPU"]))),
        "tensors": tensors,
        "extra": draw(st.none() | DEEP_JSON | JSON),
    }


@st.composite
def child_scripts(draw, probes: int, names: list[str], shapes: list[tuple]) -> dict:
    """What every fake child does: its "ready" frame, frames for some probe indices (the others get
    a plain well-formed result), raw bytes in place of a frame, and what it prints."""
    return {
        "ready": draw(st.fixed_dictionaries({
            "type": _maybe(st.just("ready")),
            "errors": _maybe(st.lists(error_records(), max_size=60)),
        })),
        "results": draw(st.dictionaries(st.integers(0, probes - 1), result_frames(names, shapes), max_size=5)),
        "raw": draw(st.none() | st.tuples(st.integers(0, probes - 1), st.binary(max_size=64))),
        "output": draw(st.binary(max_size=600)),
    }


def _frame(message: dict, tensors: list) -> bytes:
    body = json.dumps({**message, "tensors": [spec for spec, _ in tensors]}, allow_nan=True).encode(
        "utf-8", "surrogatepass")  # a child writes any bytes it likes, invalid UTF-8 included
    payload = b"".join(data for _, data in tensors)
    return struct.pack("!II", len(body), len(payload)) + body + payload


def _render(script: dict, index: int, expected_index: int) -> bytes:
    if script["raw"] and script["raw"][0] == index:
        return script["raw"][1]
    frame = script["results"].get(index)
    if frame is None:
        return _frame({"type": "result", "index": expected_index, "outputs": {}, "error": None,
                       "forbidden": {}, "seconds": 0.01}, [])
    message = {key: value for key, value in frame.items() if key not in ("tensors", "extra")}
    message["index"] = expected_index if frame["index"] is None else frame["index"]
    if frame["extra"] is not None:
        message["extra"] = frame["extra"]
    return _frame(message, frame["tensors"])


class FakeTemplate:
    """Stands in for the zygote: each spawn starts a thread that reads the job like a child and
    answers with the script. The process group the parent kills afterwards is a `sleep` of ours,
    left unreaped until the example ends so its pid cannot be reused."""

    def __init__(self, script: dict, probes: int):
        self.script, self.probes = script, probes
        self.dummy = subprocess.Popen(["sleep", "600"], start_new_session=True)
        self.threads: list[threading.Thread] = []

    def register_suite(self, suite: str, message: dict, encoded: tuple) -> None:
        pass  # the script answers every check itself

    def running(self) -> int:
        return 0  # one incarnation: this template never dies

    def ended_since(self, incarnation: int, patience: float = 0.0) -> bool:
        return False

    def spawn(self, request: dict, sock_fd: int, out_fd: int) -> int:
        sock, out = socket.socket(fileno=os.dup(sock_fd)), os.dup(out_fd)
        thread = threading.Thread(target=self._child, args=(sock, out), daemon=True)
        thread.start()
        self.threads.append(thread)
        return self.dummy.pid

    def _child(self, sock: socket.socket, out: int) -> None:
        try:
            job, _ = wire.receive(sock)
            os.write(out, self.script["output"])
            ready = self.script["ready"]
            sock.sendall(_frame(ready, []) + b"".join(
                _render(self.script, i, i) for i in range(job["start"], self.probes)))
        except OSError:  # the parent stopped reading (it gave up on this child): as a child would die
            pass
        finally:
            sock.close()
            os.close(out)

    def close(self) -> None:
        for thread in self.threads:
            thread.join(timeout=30)
        self.dummy.kill()
        self.dummy.wait()


# --- the parent, for real -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_grader(tmp_path_factory):
    """A real Grader (real suite, real Sandbox) whose template is swapped for FakeTemplate per example."""
    from autograder.pipeline import Grader

    config = load_config()
    with Grader(config, mode="spawn") as grader:
        real = grader.sandbox._zygote
        submission = tmp_path_factory.mktemp("fuzz") / "fuzzed.py"
        submission.write_text("x = 1\n")
        yield grader, submission
        grader.sandbox._zygote = real


def _plausible_shapes(suite) -> list[tuple]:
    """Shapes the checks expect and inputs have, and (rows of an input, columns of another): a
    fuzzed tensor often gets as far as the comparison (the train check's (test digits, 10))."""
    shapes = {tuple(t.shape) for entry in suite for t in (*entry.check.probe.tensors, *entry.expected.values())}
    rows = {s[0] for s in shapes if s}
    columns = {s[-1] for s in shapes if s}
    return sorted(shapes | {(r, c) for r in rows for c in columns}, key=lambda s: (len(s), s))


def _output_names(suite) -> list[str]:
    names = {name for entry in suite for name in entry.check.compare}
    names |= {step["out"] for entry in suite for step in entry.check.probe.steps if "out" in step}
    return sorted(names)


def _grade_with(fuzz_grader, script: dict):
    grader, submission = fuzz_grader
    fake = FakeTemplate(script, len(grader.suite))
    grader.sandbox._zygote = fake
    try:
        return grader.grade(submission, student="fuzzed \x1b[2J")
    finally:
        fake.close()


def _write_everything(report, config) -> None:
    """What the platforms do with a report: none of it may raise."""
    results = results_json(report, config)
    json.dumps(results)  # batch results/<id>.json, Gradescope results.json
    json.dumps(results, ensure_ascii=False).encode("utf-8")  # nbformat writes notebooks so
    csv_text({report.student: results}, list(config.points)).encode("utf-8")
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    print_report(report, console)
    summary_text(report).encode("utf-8")


def _bool_outputs(entry) -> tuple[dict, list]:
    """Every output a check compares, as a bool tensor of the shape of the probe input it is named
    after (the train check's parameters W1, W1_epoch1, ...) or of the oracle's output."""
    inputs = next((step["tensors"] for step in entry.check.probe.steps if isinstance(step.get("tensors"), dict)), {})
    outputs, tensors = {}, []
    for name in entry.check.compare:
        source = entry.expected.get(name)
        if source is None and name.split("_")[0] in inputs:
            source = entry.check.probe.tensors[inputs[name.split("_")[0]]]
        if source is not None:
            tensors.append(({"dtype": "bool", "shape": list(source.shape)}, bytes(source.numel())))
            outputs[name] = {"kind": "tensor", "index": len(tensors) - 1}
    return outputs, tensors


@pytest.mark.slow  # ~0.3 s an example: a whole grading with up to 12 fake children
def test_nothing_a_child_sends_raises_in_the_parent(fuzz_grader):
    grader, _ = fuzz_grader
    suite, config = grader.suite, grader.config
    names, shapes = _output_names(suite), _plausible_shapes(suite)
    # pinned: "seconds": 10**400 (OverflowError) and bool outputs (argmax of a bool train output
    # raised) once crashed the grader; here every check's outputs are bool tensors of their shapes
    plain = {"type": "result", "index": None, "error": None, "forbidden": {}, "seconds": 10**400,
             "status": "", "extra": None}
    pinned = {"ready": {"type": "ready", "errors": []}, "raw": None, "output": b"",
              "results": {i: {**plain, **dict(zip(("outputs", "tensors"), _bool_outputs(entry)))}
                          for i, entry in enumerate(suite)}}

    @settings(max_examples=int(os.environ.get("AUTOGRADER_FUZZ_EXAMPLES", 150)), deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(script=child_scripts(len(suite), names, shapes))
    @example(script=pinned)
    def every_child(script):
        report = _grade_with(fuzz_grader, script)
        assert not report.error, report.error
        assert len(report.checks) == len(suite)
        for check in report.checks:
            assert check.message, check.name
            assert 0 <= check.score <= check.max_score
            # the safety net in score.py stays a net: the checks themselves handle every output
            assert "could not be checked" not in check.message, (check.name, check.message)
        _write_everything(report, config)

    every_child()


def _raw(body: bytes, payload: bytes = b"") -> bytes:
    return struct.pack("!II", len(body), len(payload)) + body + payload


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=256) | st.builds(
    lambda message, spec, blob: _frame(message, [(spec, blob)]),
    st.dictionaries(TEXT, JSON, max_size=4),
    st.fixed_dictionaries({"dtype": _maybe(st.sampled_from(sorted(wire.DTYPES))),
                           "shape": _maybe(st.lists(st.integers(-2, 4), max_size=3))}),
    st.binary(max_size=64)))
@example(data=_raw(b'{"tensors": [], "seconds": ' + b"1" * 5000 + b"}"))  # past Python's int digit limit
@example(data=_raw(b'{"tensors": [{"dtype": ["float64"], "shape": [1]}]}', bytes(8)))  # an unhashable dtype
@example(data=_raw(b'{"tensors": [{"dtype": {}, "shape": [1]}]}', bytes(8)))
def test_wire_receive_raises_only_wire_errors(data):
    """Any bytes on the socket: a frame (a dict and tensors) or WireError, nothing else."""
    left, right = socket.socketpair()
    try:
        right.sendall(data)
        right.shutdown(socket.SHUT_WR)
        try:
            message, tensors = wire.receive(left, max_bytes=1 << 20)
        except wire.WireError:
            return
        assert isinstance(message, dict)
        assert all(tensor is None or isinstance(tensor, torch.Tensor) for tensor in tensors)
    finally:
        left.close()
        right.close()
