"""The grader's test corpus: single-bug mutations of the reference layers and valid alternatives.

- `MUTATIONS` (mutations.py): each must lose points in its own part and only there.
- `VALID` (valid/*.py): correct implementations in other styles; each must get full marks.
"""
from pathlib import Path

from .mutations import MUTATIONS, Mutation

REFERENCE_LAYERS = Path(__file__).resolve().parents[2] / "solution" / "layers.py"
VALID_DIR = Path(__file__).resolve().parent / "valid"
VALID = sorted(VALID_DIR.glob("*.py"))

__all__ = ["MUTATIONS", "Mutation", "VALID", "reference_source", "mutated_source", "assembled_valid_source"]


def reference_source() -> str:
    """solution/layers.py as text: it imports only torch and math, so it runs as a submission."""
    return REFERENCE_LAYERS.read_text()


def mutated_source(mutation: Mutation) -> str:
    """The reference source with mutation.old replaced by mutation.new (old must occur exactly once)."""
    source = reference_source()
    count = source.count(mutation.old)
    assert count == 1, f"{mutation.name}: snippet occurs {count} times in solution/layers.py: {mutation.old!r}"
    return source.replace(mutation.old, mutation.new)


def assembled_valid_source(path) -> str:
    """A full submission: the reference layers, then the file's classes, which override them."""
    return reference_source() + "\n\n# ---- " + Path(path).name + " ----\n" + Path(path).read_text()
