"""compare(): shape and dtype exactly, values within tolerance, and never the expected values in the text."""
import torch

from autograder.scoring.compare import compare
from autograder.course.config import Tolerance

TOL = Tolerance(rtol=1e-6, atol=1e-8)
EXPECTED = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=torch.float64)


def test_equal_tensors_match():
    assert compare("h", EXPECTED.clone(), EXPECTED, TOL) is None


def test_values_within_tolerance_match_and_outside_do_not():
    assert compare("h", EXPECTED + 1e-9, EXPECTED, TOL) is None
    mismatch = compare("h", EXPECTED + torch.tensor([[0, 0, 0], [0, 1e-3, 0]], dtype=torch.float64), EXPECTED, TOL)
    assert mismatch.kind == "value"
    assert mismatch.problem == "h has wrong values (1 of 6 entries, in row 1)"


def test_a_broadcastable_shape_is_still_a_shape_mismatch():
    bias = torch.zeros(3, dtype=torch.float64)
    mismatch = compare("db", bias.reshape(1, 3), bias, TOL)
    assert mismatch.kind == "shape"
    assert mismatch.problem == "db has shape (1, 3), expected (3,)"


def test_dtype_must_be_the_inputs():
    mismatch = compare("h", EXPECTED.float(), EXPECTED, TOL)
    assert mismatch.kind == "dtype" and "float32, expected float64" in mismatch.problem


def test_shape_only_ignores_dtype_and_values():
    assert compare("h", torch.zeros(2, 3, dtype=torch.float32), EXPECTED, TOL, shape_only=True) is None


def test_nan_where_the_oracle_is_finite_names_the_place():
    got = EXPECTED.clone()
    got[0, 2] = float("nan")
    mismatch = compare("S", got, EXPECTED, TOL)
    assert mismatch.kind == "nonfinite" and mismatch.problem == "S contains nan where a finite number belongs"


def test_a_changed_input_is_named_in_the_notebooks_words():
    mismatch = compare("x_after", EXPECTED + 1, EXPECTED, TOL)
    assert mismatch.kind == "value"
    assert mismatch.problem == "x was changed by your code: an argument must be left as it was passed in"


def test_non_tensors_are_described_not_compared():
    assert (compare("dW", "missing", EXPECTED, TOL).problem
            == "dW was nothing (the attribute was never set), expected a tensor")
    assert compare("h", "none", EXPECTED, TOL).problem == "h was None, expected a tensor"
    assert compare("h", "other:list", EXPECTED, TOL).problem == "h was a list, expected a tensor"
    assert compare("h", 3, EXPECTED, TOL).problem == "h was a int, expected a tensor"
