"""Feedback never reveals a hidden expected value (issue 22, item 5).

A submission whose every method returns zeros of the right shape and dtype makes any "how far off"
figure equal to the expected value itself. Feedback may state shapes, dtypes and which entries are
wrong, never a number from which an expected value follows: none of the expected values (to 3 or 4
significant digits) may appear in what a student reads, on any route.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from autograder.checks import build_suite
from autograder.course.secret import course_inputs
from conftest import LAYER_PARTS
from test_gradescope import built_zip, container, run_autograder  # noqa: F401 (fixtures)

ZEROS = '''

class Linear(Linear):
    def forward(self, x):
        super().forward(x)
        return torch.zeros(x.shape[0], self.W.shape[1], dtype=x.dtype)

    def backward(self, dh):
        super().backward(dh)
        self.dW, self.db = torch.zeros_like(self.W), torch.zeros_like(self.b)
        return torch.zeros(dh.shape[0], self.W.shape[0], dtype=dh.dtype)


class ReLU(ReLU):
    def forward(self, h):
        return torch.zeros_like(h)

    def backward(self, dr):
        return torch.zeros_like(dr)


class Softmax(Softmax):
    def forward(self, r):
        return torch.zeros_like(r)

    def backward(self, dS):
        return torch.zeros_like(dS)


class NLLLoss(NLLLoss):
    def forward(self, S, y):
        self.zeros = torch.zeros_like(S)
        return torch.zeros((), dtype=S.dtype)

    def backward(self):
        return self.zeros
'''


def expected_numbers(config) -> set[str]:
    """Every hidden expected value as feedback would print it (3 or 4 significant digits), leaving
    out short figures (0, 1, 5: shapes and counts are allowed to appear)."""
    shown = set()
    for entry in build_suite(config, course_inputs(config)[0]):
        if entry.check.part not in LAYER_PARTS:
            continue
        for tensor in entry.expected.values():
            for value in tensor.double().flatten().tolist():
                for digits in (3, 4):
                    text = f"{abs(value):.{digits}g}"
                    if "." in text and len(text) >= 4 and "e" not in text:
                        shown.add(text)
    return shown


def feedback(results: dict) -> str:
    """What a results.json shows, without the grader's own timing (execution_time is rounded to
    3 decimals and may equal a hidden value by chance)."""
    return json.dumps({key: value for key, value in results.items() if key != "execution_time"}, ensure_ascii=False)


def leaks(text: str, numbers: set[str]) -> list[str]:
    """Each expected value found in the text, with what surrounds it (a figure must stand alone:
    0.256 inside 10.2563 is another number)."""
    found = []
    for number in sorted(numbers):
        for match in re.finditer(r"(?<![\d.])" + re.escape(number) + r"(?!\d)", text):
            found.append(text[max(0, match.start() - 60):match.end() + 20])
    return found


@pytest.fixture(scope="module")
def zeros_submission(reference_source, tmp_path_factory):
    path = tmp_path_factory.mktemp("zeros") / "submission.py"
    path.write_text(reference_source + ZEROS)
    return path


def autograder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # run_autograder in a fresh interpreter
def test_the_zeros_submission_fails_on_values(config, zeros_submission):
    numbers = expected_numbers(config)
    assert len(numbers) > 100  # the test has something to find
    done = autograder("grade", str(zeros_submission), "--parts", ",".join(LAYER_PARTS))
    assert done.returncode == 0, done.stderr
    assert "has wrong values" in done.stdout
    assert leaks(done.stdout, numbers) == []


@pytest.mark.slow
def test_no_expected_value_in_the_json_feedback(config, zeros_submission):
    done = autograder("grade", str(zeros_submission), "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["score"] < results["max_score"]
    assert leaks(feedback(results), expected_numbers(config)) == []


@pytest.mark.slow
def test_no_expected_value_in_what_gradescope_shows(config, zeros_submission, container):  # noqa: F811
    (container / "submission" / "nn_from_scratch.py").write_text(zeros_submission.read_text())
    done, results = run_autograder(container)
    assert done.returncode == 0, done.stderr
    shown = feedback(results)
    assert "has wrong values" in shown
    assert leaks(shown, expected_numbers(config)) == []
