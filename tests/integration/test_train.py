"""The train check: the four classes compose into the reference's training loop (the trajectory after
the first step and each of the first two epochs, then the trained network's accuracy against the
reference run's), and a broken chain is blamed on the method whose output broke it (#23 item 2, #24)."""
from __future__ import annotations

import pytest

from autograder.course.config import load_config
from autograder.pipeline import Grader


def graded(grader, tmp_path, source: str, name: str = "submission"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    report = grader.grade(path)
    assert not report.error, report.error
    return report


def train_message(report) -> str:
    (train,) = [check for check in report.checks if check.part == "train"]
    assert train.score == 0, train.message
    return train.message


def test_correct_layers_pass_with_the_reference_accuracy(grader, tmp_path, reference_source):
    report = graded(grader, tmp_path, reference_source)
    (train,) = [check for check in report.checks if check.part == "train"]
    assert train.passed, train.message
    assert "correct layers reach" in train.message and "after 2 epochs" in train.message


@pytest.mark.parametrize("broken, blamed, says", [
    # the loss's float64 dS used to surface as "Linear.backward raised RuntimeError ... double != float"
    ("class NLLLoss(NLLLoss):\n    def backward(self):\n        return super().backward().double()\n",
     "NLLLoss.backward", "returned dS as float64 (150, 10) where training needs float32 (150, 10)"),
    ("class Softmax(Softmax):\n    def backward(self, dS):\n        super().backward(dS)\n",
     "Softmax.backward", "returned None where training needs float32 (150, 10)"),
    ("class ReLU(ReLU):\n    def forward(self, h):\n        return super().forward(h).double()\n",
     "ReLU.forward", "returned float64 (150, 32) where training needs float32 (150, 32)"),
    ("class Linear(Linear):\n    def backward(self, dh):\n        dx = super().backward(dh)\n"
     "        self.dW = self.dW.T\n        return dx\n",
     "Linear.backward", "set dW to float32 (10, 32) where training needs float32 (32, 10)"),
])
def test_a_broken_chain_is_blamed_on_the_method_that_broke_it(grader, tmp_path, reference_source, broken, blamed, says):
    report = graded(grader, tmp_path, reference_source + "\n\n" + broken)
    message = train_message(report)
    assert message.startswith(f"In training, {blamed} {says}"), message
    assert "raised" not in message
    if not blamed.startswith("Linear"):  # the layer the error surfaced in is not blamed
        linear = report.parts["linear"]
        assert linear.score == linear.max_score


@pytest.mark.parametrize("change, at, matched", [
    # a layer written for one batch size: right on full batches, wrong on the short last one
    (("N = self.S.shape[0]\n", "N = 150\n"), "after epoch 1 (7 steps an epoch, the last a short batch of 100)",
     "they matched after the first step"),
    # state carried from one call into the next: right on the first step only
    (("N = self.S.shape[0]\n", "N = self.S.shape[0]\n        self.calls = getattr(self, 'calls', 0) + 1\n"
      "        N = N + (self.calls > 1)\n"), "after epoch 1", "they matched after the first step"),
    # a wrong gradient: wrong from the first step
    (("N = self.S.shape[0]\n", "N = 2 * self.S.shape[0]\n"), "after the first step", None),
])
def test_the_trajectory_is_compared_where_it_is_sampled(grader, tmp_path, reference_source, change, at, matched):
    old, new = change
    assert reference_source.count(old) == 1
    message = train_message(graded(grader, tmp_path, reference_source.replace(old, new)))
    assert message.startswith(at) and "from those correct layers reach" in message, message
    assert (matched in message) if matched else "matched" not in message


@pytest.mark.slow  # trains for 6 epochs, a grader of its own
def test_a_long_run_is_a_course_setting_and_compares_accuracy_with_the_reference(tmp_path, reference_source):
    """A course training for 6 epochs: the trajectory is still compared over the first two (rounding
    grows past any useful tolerance later), the accuracy at the end against the reference's."""
    course = tmp_path / "course.toml"
    course.write_text("[train]\nepochs = 6\n")
    config = load_config(course)
    # parameters kept from the end of epoch 2: the sampled trajectory is right, the end is not
    stalled = reference_source + (
        "\n\nclass Linear(Linear):\n    steps = {}\n\n    def backward(self, dh):\n        dx = super().backward(dh)\n"
        "        Linear.steps[id(self)] = Linear.steps.get(id(self), 0) + 1\n"
        "        if Linear.steps[id(self)] > 14:\n"
        "            self.dW, self.db = self.dW * 0, self.db * 0\n        return dx\n")
    with Grader(config, hide=(tmp_path,)) as grader:
        passed = graded(grader, tmp_path, reference_source, "reference")
        failed = graded(grader, tmp_path, stalled, "stalled")
    (train,) = [check for check in passed.checks if check.part == "train"]
    assert train.passed and "after 6 epochs" in train.message, train.message
    message = train_message(failed)
    assert message.startswith("test accuracy") and "correct layers reach" in message, message
