"""score_check(): all or nothing, in the order a student needs to hear it (crash, forbidden API,
exception, comparison). No sandbox: outcomes are built by hand."""
import torch

from autograder.checks import SuiteEntry
from autograder.checks.base import Check
from autograder.course.config import Tolerance
from autograder.records import Probe, ProbeOutcome
from autograder.scoring.score import score_check

TOLERANCE = {"float64": Tolerance(1e-6, 1e-8), "float32": Tolerance(1e-4, 1e-5)}
DB = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
CHECK = Check("linear.backward.grad_b", "x float64 (5, 4)", Probe((), (), "linear", 1.0), compare=("db",),
              methods=("Linear.backward",))
ENTRY = SuiteEntry(CHECK, {"db": DB}, 2.0)


def score(outcome, static=None):
    return score_check(ENTRY, outcome, static or {}, TOLERANCE)


def test_matching_outputs_earn_the_points():
    result = score(ProbeOutcome(outputs={"db": DB.clone()}))
    assert (result.passed, result.score, result.max_score) == (True, 2.0, 2.0)


def test_a_wrong_output_earns_nothing_and_says_what_went_in():
    result = score(ProbeOutcome(outputs={"db": DB + 1}))
    assert (result.passed, result.score, result.max_score) == (False, 0.0, 2.0)
    assert result.message == "Given: x float64 (5, 4).\ndb has wrong values (all 3 entries)"


def test_a_wrong_shape_is_named():
    result = score(ProbeOutcome(outputs={"db": DB.reshape(1, 3)}))
    assert not result.passed and result.message.endswith("db has shape (1, 3), expected (3,)")


def test_outputs_that_cannot_be_compared_cost_the_check_not_the_grader():
    result = score(ProbeOutcome(outputs={"db": "other:list"}))
    assert not result.passed and result.message.endswith("db was a list, expected a tensor")


def test_not_run_and_crashes_score_zero_with_the_reason():
    assert score(None).message.endswith("not run")
    assert score(ProbeOutcome(failure="the check hit its time limit (1 s)")).message.endswith(
        "The check hit its time limit (1 s).")


def test_a_forbidden_call_in_a_method_the_check_calls_zeroes_it_even_when_right():
    seen_at_run_time = score(ProbeOutcome(outputs={"db": DB.clone()}, forbidden={"Linear.backward": ["backward"]}))
    assert not seen_at_run_time.passed and "Forbidden API: Linear.backward uses backward" in seen_at_run_time.message
    seen_statically = score(ProbeOutcome(outputs={"db": DB.clone()}),
                            static={"Linear.backward": ["torch.nn.functional.relu"]})
    assert not seen_statically.passed and "torch.nn.functional.relu" in seen_statically.message


def test_a_forbidden_call_in_another_method_costs_this_check_nothing():
    result = score(ProbeOutcome(outputs={"db": DB.clone()}, forbidden={"Softmax.forward": ["softmax"]}))
    assert result.passed


def test_the_students_exception_is_named_with_its_line():
    error = {"where": "Linear.backward", "type": "RuntimeError", "message": "shape mismatch", "line": "cell 7, line 3"}
    result = score(ProbeOutcome(error=error))
    assert not result.passed
    assert result.message.endswith("Linear.backward raised RuntimeError: shape mismatch (cell 7, line 3)")


def test_an_unchanged_input_counts_only_with_a_result_of_the_right_shape():
    x = torch.ones(2, 3, dtype=torch.float64)
    check = Check("relu.forward.inputs_unchanged", "h", Probe((), (), "relu", 1.0), compare=("h_after",),
                  produced=("r",))
    entry = SuiteEntry(check, {"h_after": x, "r": x}, 1.0)
    honest = score_check(entry, ProbeOutcome(outputs={"h_after": x.clone(), "r": x.clone()}), {}, TOLERANCE)
    lazy = score_check(entry, ProbeOutcome(outputs={"h_after": x.clone(), "r": "none"}), {}, TOLERANCE)
    assert honest.passed and not lazy.passed
    assert "counts only when forward returns a tensor" in lazy.message


def test_inputs_must_come_back_bit_for_bit():
    x = torch.ones(2, 3, dtype=torch.float64)
    check = Check("relu.forward.inputs_unchanged", "h", Probe((), (), "relu", 1.0), compare=("h_after",))
    entry = SuiteEntry(check, {"h_after": x}, 1.0)
    result = score_check(entry, ProbeOutcome(outputs={"h_after": x + 1e-12}), {}, TOLERANCE)
    assert not result.passed and "h was changed by your code" in result.message


def test_a_judged_check_takes_the_judges_verdict():
    check = Check("train.fit.accuracy", "an MLP", Probe((), (), "train", 1.0),
                  judge=lambda outputs: (outputs["S_test"] > 0.5, "test accuracy 90%"))
    entry = SuiteEntry(check, {}, 5.0)
    assert score_check(entry, ProbeOutcome(outputs={"S_test": 0.9}), {}, TOLERANCE).score == 5.0
    failed = score_check(entry, ProbeOutcome(outputs={"S_test": 0.1}), {}, TOLERANCE)
    assert failed.score == 0.0 and failed.message == "test accuracy 90%"


def test_a_forbidden_forward_does_not_cost_a_hand_written_backward():
    """#23 item 3: the rule says a forbidden function costs every check of *that method*; a
    backward check calls forward too, but a hand-written backward keeps its points."""
    check = Check("softmax.backward.grad", "", Probe((), (), "softmax", 1.0), compare=("db",),
                  methods=("Softmax.__init__", "Softmax.forward", "Softmax.backward"))
    entry = SuiteEntry(check, {"db": DB}, 3.0)

    def result(forbidden):
        return score_check(entry, ProbeOutcome(outputs={"db": DB.clone()}, forbidden=forbidden), {}, TOLERANCE)

    assert result({"Softmax.forward": ["torch.softmax"]}).passed
    assert not result({"Softmax.backward": ["torch.softmax"]}).passed
    assert not result({"Softmax.__init__": ["torch.nn.Linear"]}).passed
    # a gradient autograd computed in forward is what backward hands back: it costs backward
    assert not result({"Softmax.forward": ["torch.autograd.grad"]}).passed
    assert not result({"Softmax.forward": ["aten._softmax_backward_data (what softmax runs)"]}).passed


def test_a_check_of_every_method_answers_for_all_of_them():
    check = Check("train.fit.accuracy", "", Probe((), (), "train", 1.0), compare=("db",),
                  methods=("Softmax.forward", "Softmax.backward"))
    outcome = ProbeOutcome(outputs={"db": DB.clone()}, forbidden={"Softmax.forward": ["torch.softmax"]})
    assert not score_check(SuiteEntry(check, {"db": DB}, 5.0), outcome, {}, TOLERANCE).passed
