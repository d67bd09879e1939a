"""reminder(): when no cause is diagnosed, a failed output gets the rule it must follow, in the
notebook's notation, as its part's checks module states it; never an expected value."""
import torch

from autograder.checks import linear, nll, relu, softmax
from autograder.scoring.compare import Mismatch
from autograder.scoring.diagnosis import Knowledge
from autograder.scoring.hints import reminder

E = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], dtype=torch.float64)
KNOWN = {module.__name__: Knowledge.of(module) for module in (linear, relu, softmax, nll)}


def test_each_output_of_each_layer_has_its_formula():
    assert (reminder(Mismatch("db", "value", "", E, E), KNOWN[linear.__name__])
            == "db = dh summed over the rows, shape (D_out,)")
    assert "exactly 0" in reminder(Mismatch("dh", "value", "", E, E), KNOWN[relu.__name__])
    assert all(known.formulas for known in KNOWN.values())


def test_non_finite_outputs_get_the_stability_rule_of_their_layer():
    assert "subtract each row's maximum" in reminder(Mismatch("S", "nonfinite", "", E, E), KNOWN[softmax.__name__])
    assert "log(0)" in reminder(Mismatch("L", "nonfinite", "", E, E), KNOWN[nll.__name__])
    assert "log(0)" in reminder(Mismatch("a", "nonfinite", "", E, E))  # a part that says nothing of it


def test_an_output_without_a_rule_gets_nothing_rather_than_a_guess():
    assert reminder(Mismatch("a", "value", "", E, E)) == ""
    assert reminder(Mismatch("h", "value", "", E, E), KNOWN[relu.__name__]) == ""


def test_a_reminder_never_shows_an_expected_value():
    for known in KNOWN.values():
        for output in known.formulas:
            text = reminder(Mismatch(output, "value", "", E * 7.25, E * 7.25), known)
            assert not any(f"{v:g}" in text for v in (E * 7.25).flatten().tolist())
