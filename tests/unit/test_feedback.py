"""One item per mistake: failed checks with no known cause are grouped by method and symptom."""
from autograder.feedback.causes import items
from autograder.records import CheckResult


def failed(name: str, message: str, cause: dict | None = None) -> CheckResult:
    return CheckResult(name, 0.0, 2.0, False, message, cause)


def test_an_unexplained_bug_is_one_item_per_method_and_symptom_not_one_per_check():
    checks = [failed("linear.backward.grad_W", "dW has wrong values (off by up to 0.31)"),
              failed("linear.backward.float32", "dW has wrong values (off by up to 0.29)"),
              failed("linear.backward.repeat", "dW has wrong values (off by up to 1.2e-01)"),
              failed("linear.backward.shape", "dx has shape (4, 5), expected (5, 4)"),
              failed("linear.forward.value", "h has wrong values (off by up to 0.31)")]
    found = items(checks)
    assert [len(item.checks) for item in found] == [3, 1, 1]
    assert found[0].text == "dW has wrong values (off by up to 0.31)" and found[0].lost == 6


def test_a_known_cause_still_groups_across_methods():
    cause = {"key": "softmax.no_shift", "text": "Softmax is not stable", "hint": ""}
    found = items([failed("softmax.forward.value", "x", cause), failed("train.fit.accuracy", "y", cause)])
    assert len(found) == 1 and found[0].names == ["softmax.forward.value", "train.fit.accuracy"]
