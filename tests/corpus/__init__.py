"""The grader's test corpus: single-bug mutations of the reference layers and valid alternatives.

- `MUTATIONS` (mutations.py): each must lose points in its own part and only there.
- `VALID` (valid/*.py): correct implementations in other styles; each must get full marks.
"""
from pathlib import Path

import solution.layers

from .mutations import MUTATIONS, Mutation

VALID_DIR = Path(__file__).resolve().parent / "valid"
VALID = sorted(VALID_DIR.glob("*.py"))

__all__ = ["MUTATIONS", "Mutation", "VALID", "reference_source", "mutated_source", "assembled_valid_source"]


def reference_source() -> str:
    """The reference layers (the source notebook's set-up and answer cells) as one module's text:
    it imports only torch and math, so it runs as a submission."""
    return solution.layers.source()


def mutated_source(mutation: Mutation) -> str:
    """The reference source with mutation.old replaced by mutation.new (old must occur exactly once)."""
    source = reference_source()
    count = source.count(mutation.old)
    assert count == 1, f"{mutation.name}: snippet occurs {count} times in the reference: {mutation.old!r}"
    return source.replace(mutation.old, mutation.new)


def assembled_valid_source(path) -> str:
    """A full submission: the reference layers, then the file's classes, which override them."""
    return reference_source() + "\n\n# ---- " + Path(path).name + " ----\n" + Path(path).read_text()
