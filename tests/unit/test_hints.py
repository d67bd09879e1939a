"""reminder(): when no cause is diagnosed, a failed output gets the rule it must follow, in the
notebook's notation, for the student's class; never an expected value."""
import torch

from autograder.compare import Mismatch
from autograder.hints import FORMULAS, reminder

E = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], dtype=torch.float64)


def test_each_output_of_each_layer_has_its_formula():
    assert reminder(Mismatch("db", "value", "", E, E), "Linear") == "db = dh summed over the rows, shape (D_out,)"
    assert "exactly 0" in reminder(Mismatch("dh", "value", "", E, E), "ReLU")
    assert {cls for cls, _ in FORMULAS} == {"Linear", "ReLU", "Softmax", "NLLLoss"}


def test_non_finite_outputs_get_the_stability_rule_of_their_layer():
    assert "subtract each row's maximum" in reminder(Mismatch("S", "nonfinite", "", E, E), "Softmax")
    assert "log(0)" in reminder(Mismatch("L", "nonfinite", "", E, E), "NLLLoss")
    assert "log(0)" in reminder(Mismatch("a", "nonfinite", "", E, E), "Tanh")  # a course's own layer


def test_an_output_without_a_rule_gets_nothing_rather_than_a_guess():
    assert reminder(Mismatch("a", "value", "", E, E), "Tanh") == ""
    assert reminder(Mismatch("h", "value", "", E, E), "ReLU") == ""


def test_a_reminder_never_shows_an_expected_value():
    for (cls, output) in FORMULAS:
        text = reminder(Mismatch(output, "value", "", E * 7.25, E * 7.25), cls)
        assert not any(f"{v:g}" in text for v in (E * 7.25).flatten().tolist())
