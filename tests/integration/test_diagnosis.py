"""Diagnosis: failed checks get a named cause, measured on generated mutants of the reference.

- the catalogue is alive: every wrong variant runs on its class's probes and differs from the oracle;
- coverage: the AST mutants of solution/layers.py (tests/corpus/mutants.py) are graded by one warm
  Grader; of those that lose value-level points (a wrong value, shape, dtype, None, an input changed:
  not an exception, which is reported by class, method and line), at least 90% get a named cause on
  every such failed check;
- no wrong diagnosis: each diagnosed mutant is run again, in this process, on fresh hidden inputs
  (another seed) and must get the same cause for the same checks: a cause whose variant matched by
  coincidence does not survive new inputs;
- the valid alternatives (tests/corpus/valid) get no cause at all.
"""
from __future__ import annotations

import re

import pytest
import torch

from autograder.scoring import diagnosis
from autograder.checks import build_suite, oracle_classes
from autograder.records import ProbeOutcome
from autograder.sandbox.probe import MISSING, ProbeError, run_probe
from autograder.scoring.score import score_all
from autograder.course.secret import course_inputs
from conftest import LAYER_PARTS
from corpus import VALID, assembled_valid_source
from corpus.mutants import generate

NOT_VALUE_LEVEL = (":raised:", ":not_written", ":forbidden:", ":failure:")


def _layer_suite(config, fresh: bool = False):
    """The layer checks on the course's hidden inputs, or on fresh ones (another seed)."""
    seed = course_inputs(config)[0] + (1 if fresh else 0)
    return [e for e in build_suite(config, seed) if e.check.part in LAYER_PARTS]


def _plain(value):
    """What the sandbox's wire makes of an output that is not a tensor."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if value is None:
        return "none"
    return "missing" if value is MISSING else f"other:{type(value).__name__}"


def grade_in_process(source: str, suite, tolerance, catalogue):
    """Our own trusted mutant, run here without a sandbox: the results, each with its cause."""
    namespace: dict = {}
    exec(compile(source, "mutant.py", "exec"), namespace)
    outcomes = []
    for entry in suite:
        try:
            outputs = run_probe(namespace, list(entry.check.probe.steps),
                                [t.clone() for t in entry.check.probe.tensors])
            outcomes.append(ProbeOutcome(outputs={k: _plain(v) for k, v in outputs.items()}))
        except ProbeError as error:
            outcomes.append(ProbeOutcome(error={"where": error.where, "type": type(error.error).__name__,
                                                "message": str(error.error)}))
    return score_all(suite, outcomes, {}, tolerance, catalogue)


def value_level(check) -> bool:
    return not check.passed and not (check.cause and any(k in check.cause["key"] for k in NOT_VALUE_LEVEL))


def catalogue_of(suite) -> list:
    """Every part's variants, once each (each part's checks module holds its own)."""
    return list(dict.fromkeys(v for entry in suite for v in entry.knowledge.variants))


def test_every_part_has_its_catalogue_and_no_variant_is_dead(config):
    suite = _layer_suite(config)
    catalogue = diagnosis.Catalogue(oracle_classes(config))
    variants = catalogue_of(suite)
    assert {v.cls for v in variants} == {part.cls for part in config.layers}
    for variant in variants:
        differs = False
        for entry in suite:
            if diagnosis._layer_class(entry) != variant.cls:
                continue
            predicted = catalogue.predicted(variant, entry)
            for output in entry.check.compare if predicted else ():
                got, expected = predicted.get(output), entry.expected[output]
                differs |= not (isinstance(got, torch.Tensor) and got.shape == expected.shape
                                and torch.equal(got.double().nan_to_num(), expected.double().nan_to_num()))
        assert differs, f"{variant.cause.key} never differs from the oracle: a dead catalogue entry"


def test_the_reference_gets_no_cause(config, reference_source):
    suite = _layer_suite(config)
    results = grade_in_process(reference_source, suite, config.tolerance, diagnosis.Catalogue(oracle_classes(config)))
    assert all(r.passed and r.cause is None for r in results)


@pytest.mark.slow
def test_mutants_get_a_named_cause_that_holds_on_fresh_inputs(grader, config, tmp_path, capsys):
    mutants = generate()
    assert len(mutants) >= 60
    fresh_suite = _layer_suite(config, fresh=True)
    fresh_catalogue = diagnosis.Catalogue(oracle_classes(config))
    value_mutants, covered, wrong = [], [], []
    for mutant in mutants:
        path = tmp_path / "mutant.py"
        path.write_text(mutant.source)
        report = grader.grade(path, parts=LAYER_PARTS)
        failed = [c for c in report.checks if value_level(c)]
        if not failed:
            continue  # equivalent, or only exceptions (reported by class, method and line)
        value_mutants.append(mutant.name)
        if all(c.cause for c in failed):
            covered.append(mutant.name)
        # the same causes on fresh inputs, for the checks that fail there too
        fresh = {c.name: c for c in grade_in_process(mutant.source, fresh_suite, config.tolerance, fresh_catalogue)}
        for check in failed:
            again = fresh[check.name]
            if check.cause and not again.passed and (again.cause or {}).get("key") != check.cause["key"]:
                wrong.append(f"{mutant.name} {check.name}: {check.cause['key']} here, "
                             f"{(again.cause or {}).get('key')} on fresh inputs")
    coverage = len(covered) / len(value_mutants)
    with capsys.disabled():
        print(f"\ndiagnosis coverage: {len(covered)}/{len(value_mutants)} = {coverage:.0%} of the mutants that lose "
              f"value-level points ({len(mutants)} generated); not covered: "
              + ", ".join(sorted(set(value_mutants) - set(covered))))
    assert not wrong, "causes that do not hold on fresh inputs:\n" + "\n".join(wrong)
    assert coverage >= 0.9


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_alternatives_get_no_cause(config, path):
    suite = _layer_suite(config)
    results = grade_in_process(assembled_valid_source(path), suite, config.tolerance,
                               diagnosis.Catalogue(oracle_classes(config)))
    assert [(r.name, r.cause) for r in results if r.cause or not r.passed] == []


# --- real mistakes (issue 23): pairs, the wrong layer's gradient, other softmaxes, a dtype hiding one

REAL_MISTAKES = {  # mutation -> the causes its failed checks get, on the course's inputs and on fresh ones
    "nll_backward_minus_y_over_S": {"NLLLoss.backward:divides_everywhere+dS:times_N"},
    "nll_summed_naive_log": {"NLLLoss.forward:log_of_zeros+L:times_N"},
    "nll_backward_logits_gradient_mean": {"NLLLoss.backward:logits_gradient_mean"},
    "nll_backward_logits_gradient": {"NLLLoss.backward:logits_gradient"},
    "nll_log_eps_from_numpy": {"NLLLoss:dtype"},
    "softmax_normalises_batch": {"Softmax.forward:normalises_batch"},
    "softmax_normalises_batch_row_max": {"Softmax.forward:normalises_batch_row_max"},
    "softmax_column_softmax": {"Softmax.forward:column_softmax"},
    "softmax_column_softmax_unshifted": {"Softmax.forward:column_softmax_unshifted"},
    # the float32 buffer costs the float64 checks their dtype; the repeat check shows the accumulation too
    "linear_dW_accumulates_in_float32_buffer": {"Linear:dtype", "Linear.backward:accumulates_dW+Linear:dtype"},
    "nll_backward_accumulates_in_float32_buffer": {"NLLLoss:dtype", "NLLLoss.backward:accumulates+NLLLoss:dtype"},
    "nll_mean_over_classes": {"NLLLoss.forward:L:C_for_N"},
    "nll_backward_no_mask": {"NLLLoss.backward:no_mask"},
    "nll_backward_masks_by_S": {"NLLLoss.backward:masks_by_S"},
    "nll_log_of_mean": {"NLLLoss.forward:log_of_mean"},
    "nll_log10": {"NLLLoss.forward:log10"},
    "softmax_normalises_batch_unshifted": {"Softmax.forward:normalises_batch_unshifted"},
    "softmax_backward_sums_everything": {"Softmax.backward:sums_over_everything"},
    # three mistakes: the pair (accumulates, no 1/N) explains the float32 check, and with the dtype the rest
    "nll_backward_sums_into_float32_buffer": {"NLLLoss:dtype", "NLLLoss.backward:accumulates+dS:times_N",
                                              "NLLLoss.backward:accumulates+dS:times_N+NLLLoss:dtype"},
}


@pytest.mark.parametrize("name", REAL_MISTAKES)
def test_real_mistakes_get_their_cause_on_any_inputs(config, name):
    from corpus import MUTATIONS, mutated_source

    mutation = next(m for m in MUTATIONS if m.name == name)
    for fresh in (False, True):
        catalogue = diagnosis.Catalogue(oracle_classes(config))  # its predictions hold for one suite's inputs
        results = grade_in_process(mutated_source(mutation), _layer_suite(config, fresh), config.tolerance, catalogue)
        failed = [r for r in results if not r.passed]
        assert failed and {r.name.split(".")[0] for r in failed} == {mutation.part}
        assert {(r.cause or {}).get("key") for r in failed} == REAL_MISTAKES[name], (fresh, name)


def test_a_dtype_hint_names_how_the_dtype_went_astray(config):
    """float32 in, float64 out: what promotes (NumPy, a float64 tensor), not only .double()."""
    from corpus import MUTATIONS, mutated_source

    catalogue = diagnosis.Catalogue(oracle_classes(config))
    hints = {}
    for name in ("nll_log_eps_from_numpy", "nll_python_float"):  # float64 out of float32; float32 out of float64
        mutation = next(m for m in MUTATIONS if m.name == name)
        results = grade_in_process(mutated_source(mutation), _layer_suite(config), config.tolerance, catalogue)
        hints[name] = {r.cause["hint"] for r in results if r.cause}
    assert len(hints["nll_log_eps_from_numpy"]) == 1 and "NumPy" in hints["nll_log_eps_from_numpy"].pop()
    assert len(hints["nll_python_float"]) == 1 and ".item()" in hints["nll_python_float"].pop()


# --- one item per cause ----------------------------------------------------------------------

# a second backward after t_() raises: a second, honest item (an exception, by class, method, line);
# a float32 buffer added to: its dtype fails most checks, the accumulation the repeat check as well
TWO_ITEMS = {"linear_transposes_x_in_place", "linear_dW_accumulates_in_float32_buffer",
             "nll_backward_accumulates_in_float32_buffer", "nll_backward_sums_into_float32_buffer"}


@pytest.mark.slow
def test_one_bug_is_one_item_naming_it(grader, tmp_path):
    from autograder.feedback.causes import items
    from corpus import MUTATIONS, mutated_source

    several = {}
    for mutation in MUTATIONS:
        path = tmp_path / "one_bug.py"
        path.write_text(mutated_source(mutation))
        report = grader.grade(path, parts=LAYER_PARTS)
        found = items(report.checks)
        assert {c.part for item in found for c in item.checks} == {mutation.part}, mutation.name
        assert all(item.checks[0].cause for item in found), f"{mutation.name}: an item without a cause"
        if len(found) != 1 and mutation.name not in TWO_ITEMS:
            several[mutation.name] = [item.text for item in found]
    assert several == {}


def test_an_unwritten_notebook_is_one_line_per_method(grader, tmp_path, reference_source):
    from autograder.feedback.causes import as_text, items

    # what a student receives: every solution region replaced by the stub (as `autograder release` does)
    stubbed, count = re.subn(r"### BEGIN SOLUTION.*?### END SOLUTION", "raise NotImplementedError()",
                             reference_source, flags=re.S)
    assert count == 8
    path = tmp_path / "unwritten.py"
    path.write_text(stubbed)
    report = grader.grade(path, parts=LAYER_PARTS)
    assert report.score == 0
    found = items(report.checks)
    assert 4 <= len(found) <= 8 and all(item.key.endswith(":not_written") for item in found)
    assert len({item.checks[0].cause["method"] for item in found}) == len(found)
    text = as_text(report.checks)
    assert text.count("✗") == len(found) and "NotImplementedError" in text


def test_a_class_picked_by_chance_in_one_check_is_not_named(config):
    """NLLLoss.forward with y.argmax(dim=0) runs only on the one-example check, where it takes
    S[0, 0]: the class-picking variants (argmin of y, argmax of S) match it by chance on most
    inputs. One check picking one class out of ten is no evidence: no cause, whatever the seed."""
    mutant = next(m for m in generate() if m.name.startswith("NLLLoss.forward") and "dim=1->0" in m.name)
    catalogue = diagnosis.Catalogue(oracle_classes(config))
    named = set()
    for seed in range(12):
        suite = [e for e in build_suite(config, 1000 + seed) if e.check.part in LAYER_PARTS]
        results = grade_in_process(mutant.source, suite, config.tolerance, catalogue)
        single = next(r for r in results if r.name == "nll.forward.single_example")
        if single.cause:
            named.add(single.cause["key"])
    assert not named & {"NLLLoss.forward:predicted_class", "NLLLoss.forward:wrong_class"}, named
