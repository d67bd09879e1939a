"""Build the sample submissions `make demo` grades, from the released template and the source.

    .venv/bin/python assignment/build_samples.py OUT_DIR   # writes the five samples into OUT_DIR

Each sample is what a student would hand in: the student template with answer cells filled in
(from the source notebook's solution regions), optionally with realistic mistakes. They are built
when needed (the demo builds them from its fresh release), never committed: the reference answers
stay in one place, the source notebook.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import zipfile
from pathlib import Path

from autograder.course.config import load_config

ANSWER_IDS = [part.grade_id for part in load_config().layers]  # the registry's answer cells

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "nn_from_scratch.ipynb"
TEMPLATE = HERE.parent / "student_template" / "nn_from_scratch.ipynb"
REGION = re.compile(r"( *)### BEGIN SOLUTION\n(.*?)\n *### END SOLUTION", re.S)
STUB = re.compile(r"( *)# YOUR CODE HERE\n *raise NotImplementedError\(\)")

# name -> (answer cells left unfinished, (old, new) mistakes applied to the filled answers)
SAMPLE_SPECS = {
    "alice_correct": ((), ()),
    "bob_buggy": ((), (("self.db = dh.sum(dim=0)", "self.db = dh.sum(dim=0, keepdim=True)"),
                        ("return dr * self.h.sign().clamp(min=0)", "return dr * (self.h >= 0)"))),
    "carol_unfinished": (("softmax", "nll"), ()),
}


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _regions(source_nb: dict) -> dict[str, list[str]]:
    answers = {}
    for cell in source_nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            answers[grade_id] = [m.group(2) for m in REGION.finditer(_source(cell))]
    return answers


def filled(template: dict, answers: dict, unfinished=(), mistakes=()) -> dict:
    """The template with the answers in place of its stubs (but for the `unfinished` answer cells),
    each (old, new) mistake applied; ValueError if a mistake's `old` is in no answer."""
    notebook = json.loads(json.dumps(template))
    applied = set()
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id not in answers or grade_id in unfinished:
            continue
        regions = iter(answers[grade_id])
        text = STUB.sub(lambda m, regions=regions: next(regions), _source(cell))
        for old, new in mistakes:
            if old in text:
                text = text.replace(old, new)
                applied.add(old)
        cell["source"] = text
    missing = [old for old, _ in mistakes if old not in applied]
    if missing:
        raise ValueError(f"no answer of the source notebook contains {missing[0]!r}: update the sample's mistakes")
    return notebook


def reference_notebook(template_path: Path = TEMPLATE) -> dict:
    """The student notebook at `template_path` with every answer cell filled from the source
    notebook's solution regions: what a student who gets everything right hands in."""
    return filled(json.loads(Path(template_path).read_text()), _regions(json.loads(SOURCE.read_text())))


def build(template_path: Path = TEMPLATE) -> dict[str, bytes]:
    """File name -> bytes of every sample, filled into the student notebook at `template_path`."""
    template = json.loads(Path(template_path).read_text())
    answers = _regions(json.loads(SOURCE.read_text()))
    files = {}
    for name, (unfinished, mistakes) in SAMPLE_SPECS.items():
        notebook = filled(template, answers, unfinished, mistakes)
        files[f"{name}.ipynb"] = (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    # a .py submission (the four classes at module level) with a softmax that overflows at ±1000
    setup = next(_source(c) for c in template["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade_id") == "setup_imports")
    module = "\n\n\n".join([setup] + [_class_text(template, answers, grade_id)
                                       for grade_id in ANSWER_IDS]) + "\n"
    overflowing = module.replace("r - r.max(dim=1, keepdim=True).values", "r")
    if overflowing == module:
        raise ValueError("the softmax answer no longer subtracts the row maximum as dave_module expects")
    files["dave_module.py"] = overflowing.encode()
    # a zip holding a notebook that uses a forbidden API
    forbidden = filled(template, answers, mistakes=(
        ("return h.clamp(min=0)", "return torch.relu(h)"),))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        info = zipfile.ZipInfo("erin/nn_from_scratch.ipynb", date_time=(2026, 1, 1, 0, 0, 0))
        z.writestr(info, json.dumps(forbidden, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    files["erin_forbidden.zip"] = archive.getvalue()
    return files


def _class_text(template: dict, answers: dict, grade_id: str) -> str:
    notebook = filled(template, answers)
    cell = next(c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    return _source(cell)


def write(folder: Path, template_path: Path = TEMPLATE) -> Path:
    """Write every sample into `folder` (created if missing); return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in build(template_path).items():
        (folder / name).write_bytes(data)
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the samples into")
    folder = write(parser.parse_args(argv).out)
    print(f"wrote {len(list(folder.iterdir()))} samples into {folder}")


if __name__ == "__main__":
    main()
