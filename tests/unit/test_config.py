"""load_config(): the kit's grading.toml with a course file laid over it; every mistake in either is
a GraderError (exit 2) that names the valid choices. The part registry is read from [parts]."""
from pathlib import Path

import pytest

from autograder.course.config import DEFAULT_CONFIG, load_config
from autograder.course.parts import load, reference_source
from autograder.records import GraderError

KIT = load_config()


def course(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "course.toml"
    path.write_text(text)
    return path


def error(tmp_path, text: str) -> str:
    with pytest.raises(GraderError) as raised:
        load_config(course(tmp_path, text))
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_the_kit_declares_its_parts_in_order():
    assert list(KIT.parts) == ["linear", "relu", "softmax", "nll", "train"]
    assert [(p.name, p.cls, p.grade_id) for p in KIT.layers] == [
        ("linear", "Linear", "linear"), ("relu", "ReLU", "relu"), ("softmax", "Softmax", "softmax"),
        ("nll", "NLLLoss", "nll")]
    assert KIT.parts["train"].cls == "" and not KIT.parts["train"].is_layer
    assert KIT.part_points("linear") == KIT.parts["linear"].max_score == 17
    assert list(KIT.points)[0] == "linear.forward.shape" and sum(KIT.points.values()) == 58


def test_a_course_file_names_only_what_it_changes(tmp_path):
    config = load_config(course(tmp_path, '[gradescope]\nvisibility = "hidden"\n'))
    assert config.gradescope.visibility == "hidden"
    assert config.gradescope.stdout_visibility == KIT.gradescope.stdout_visibility
    assert config.limits == KIT.limits and config.points == KIT.points and config.path.name == "course.toml"


def test_a_course_file_that_lists_a_parts_checks_grades_exactly_those(tmp_path):
    config = load_config(course(tmp_path, '[parts.linear.checks]\n"forward.value" = 5\n"backward.grad_x" = 1\n'))
    assert [name for name in config.points if name.startswith("linear.")] == ["linear.forward.value",
                                                                               "linear.backward.grad_x"]
    assert config.part_points("linear") == 6 and config.parts["linear"].cls == "Linear"
    assert config.part_points("relu") == KIT.part_points("relu")  # the parts it does not name stay


def test_the_digest_follows_every_file_read(tmp_path):
    first = load_config(course(tmp_path, "[limits]\ncpu_seconds = 20\n"))
    again = load_config(course(tmp_path, "[limits]\ncpu_seconds = 20\n# a comment\n"))
    assert len({KIT.digest, first.digest, again.digest}) == 3
    assert load_config(DEFAULT_CONFIG).digest == KIT.digest


@pytest.mark.parametrize("text, says", [
    ("[tolerance]\nfloat64 = { rtol = 1e-6, atl = 1e-8 }\n",
     "[tolerance]: [float64] has unknown key(s) atl; valid keys: rtol, atol"),
    ("[tolerance]\nfloat16 = { rtol = 1e-3, atol = 1e-3 }\n", "unknown dtype(s) float16; valid: float64, float32"),
    ("[limits]\nwall_second = 3\n", "[limits] has unknown key(s) wall_second; valid keys: wall_seconds,"),
    ("[limits]\nwall_seconds = \"3\"\n", "[limits] wall_seconds = '3' must be a number"),
    ("[limits]\nprocesses = 2.5\n", "[limits] processes = 2.5 must be an integer"),
    ("[limit]\nwall_seconds = 3\n", "unknown section(s) limit; valid: inputs, tolerance, limits"),
    ("[parts.linear]\nklass = \"Linear\"\n", "[parts.linear] has unknown key(s) klass; valid keys: class, grade_id"),
    ("[parts.linear.checks]\n\"forward.value\" = \"two\"\n", "[parts.linear.checks] must map check names to points"),
    ("[parts.tanh]\nclass = \"Tanh\"\noracle = \"x:Tanh\"\n", "[parts.tanh] needs checks_module"),
    ("[parts.tanh]\nclass = \"Tanh\"\nchecks_module = \"x.py\"\n", "[parts.tanh] names class 'Tanh' but no oracle"),
    ("[parts.tanh]\nclass = \"ReLU\"\nchecks_module = \"x.py\"\noracle = \"x.py:R\"\n",
     "[parts.relu] and [parts.tanh] have the same class 'ReLU'"),
    ("[limits\n", "not valid TOML"),
    # a course file from before the train check compared with the reference run (#24)
    ("[train]\naccuracy_threshold = 0.9\n", "[train] accuracy_threshold is no longer a setting: the train check "
                                            "now compares the accuracy with the reference run's"),
    ("[train]\nepochs = 0\n", "[train] epochs = 0 must be at least 1"),
    ("[train]\nfirst_epoch_tolerance = 1e-3\n", "[train] first_epoch_tolerance is no longer a setting: renamed "
                                                "trajectory_tolerance"),
])
def test_mistakes_are_one_line_naming_the_valid_choices(tmp_path, text, says):
    assert says in error(tmp_path, text)


def test_a_missing_file_or_folder_is_an_error(tmp_path):
    with pytest.raises(GraderError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(GraderError, match="is a folder"):
        load_config(tmp_path)


def test_unknown_parts_are_refused_naming_the_valid_ones():
    assert KIT.select_parts(["linear", " relu"]) == ["linear", "relu"]
    with pytest.raises(GraderError, match=r"unknown part\(s\) nlll; valid parts: linear, relu, softmax, nll, train"):
        KIT.select_parts(["nlll"])
    with pytest.raises(GraderError, match="none given"):
        KIT.select_parts([""])


def test_a_course_part_finds_its_files_beside_the_course_file(tmp_path):
    (tmp_path / "tanh_checks.py").write_text("def checks(inputs):\n    return []\n")
    config = load_config(course(tmp_path, '[parts.tanh]\nclass = "Tanh"\nchecks_module = "tanh_checks.py"\n'
                                          'oracle = "autograder.checks.reference:AutogradLayer"\n'
                                          '[parts.tanh.checks]\n"forward.value" = 2\n'))
    tanh = config.parts["tanh"]
    assert list(config.parts)[-1] == "tanh" and tanh.base == tmp_path.resolve()
    assert tanh.checks().checks(None) == [] and tanh.oracle_class().__name__ == "AutogradLayer"
    assert tanh.files() == [tmp_path.resolve() / "tanh_checks.py"]
    assert config.points["tanh.forward.value"] == 2 and tanh.colour  # a palette colour when none is named


def test_a_module_that_cannot_be_loaded_is_a_one_line_error(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module\n")
    with pytest.raises(GraderError, match=r"\[parts.x\] checks_module = 'broken.py': ModuleNotFoundError"):
        load("broken.py", tmp_path, "[parts.x] checks_module")
    with pytest.raises(GraderError, match="AttributeError"):
        load("autograder.checks.reference:Nope", tmp_path, "[parts.x] oracle")
    with pytest.raises(GraderError, match="no such file"):
        load("missing.py", tmp_path, "[parts.x] checks_module")


def test_the_reference_solution_joins_every_parts_solution_once(tmp_path):
    (tmp_path / "tanh_layer.py").write_text("class Tanh:\n    pass\n")
    config = load_config(course(tmp_path, '[parts.tanh]\nclass = "Tanh"\nchecks_module = "t.py"\n'
                                          'oracle = "t.py:T"\nsolution = "tanh_layer.py"\n'))
    source = reference_source(config.parts.values())
    assert source.count("class Linear") == 1 and source.endswith("class Tanh:\n    pass\n")


def test_the_environment_names_the_course_file_when_no_path_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_CONFIG", str(course(tmp_path, '[gradescope]\nvisibility = "hidden"\n')))
    assert load_config().gradescope.visibility == "hidden"
    assert load_config(DEFAULT_CONFIG).gradescope.visibility == KIT.gradescope.visibility
