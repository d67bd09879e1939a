"""`autograder check`: every disagreement between the source notebook, grading.toml and the checks.

grading.toml is the authority on numbers; the notebook is the instructor's document. They must
agree on:

- grade_ids: every nbgrader cell has one, valid and unique (nbgrader refuses the notebook
  otherwise, or the grader runs the wrong cell);
- answer cells: one code cell with `solution: true` per part that has an answer (`grade_id` = the
  part's name), and no answer cell for a part grading.toml does not know;
- test cells: one per part, calling `grade_part("<part>")` once in its hidden region, worth the
  part's points in grading.toml;
- checks: every check grading.toml gives points is one the part's checks module defines;
- the jupytext twin (`<notebook>.md` beside it, the file reviewers diff) holds the same cells;
- stated values: a number or list the notebook states to students is marked in its markdown with
  the grading.toml key it comes from, `<data value="limits.wall_seconds">10</data>`, and must equal
  that key's value (`parts` is the total of all points, `parts.<part>` a part's points); the limits,
  tolerances and forbidden lists must be stated somewhere (a hidden test never checks a rule the
  student was not told).

Points and stated values that differ are what `autograder release` fixes itself: it stamps them
from grading.toml (`stamp`). Every other disagreement needs the instructor and refuses a release.

Each disagreement names its place: the notebook's cell (1-based, as Jupyter counts, with its
grade_id) and line, or the grading.toml section.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path

from .course.config import Config
from .records import GraderError

GRADE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")  # nbgrader's rule (schema 3)
GRADE_PART_CALL = re.compile(r"""grade_part\(\s*["']([^"']*)["']""")
STATED = re.compile(r"""<data\s+value\s*=\s*["']([^"']*)["']\s*>(.*?)</data>""", re.S)
CODE_SPAN = re.compile(r"`([^`]+)`")
NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?%?$")

# grading.toml keys the notebook must state: the rules the hidden tests enforce (the student contract).
MUST_BE_STATED = (
    "limits.wall_seconds", "limits.submission_seconds",
    "tolerance.float64.rtol", "tolerance.float64.atol", "tolerance.float32.rtol", "tolerance.float32.atol",
    "forbidden.modules", "forbidden.functions", "forbidden.attributes",
)
MUST_BE_STATED_WITH_TRAIN = ("train.trajectory_tolerance", "train.accuracy_tolerance")


@dataclass(frozen=True)
class Disagreement:
    place: str  # "cell 10 (test_nll)", "cell 2 (grading), line 8", "grading.toml [parts.nll.checks]";
    #             "" for the notebook as a whole
    message: str
    stampable: bool = False  # `autograder release` fixes it (test cells' points, values the text states)

    def __str__(self) -> str:
        return self.describe("notebook")

    def describe(self, notebook: str) -> str:
        """One line: where (in `notebook`, or in grading.toml), what, and whether release fixes it."""
        where = self.place if self.place.startswith("grading.toml") else \
            f"{notebook}, {self.place}" if self.place else notebook
        fix = " (autograder release stamps it)" if self.stampable else ""
        return f"{where}: {self.message}{fix}"


def check_assignment(notebook_path: Path, config: Config) -> list[Disagreement]:
    """
    Inputs:
    - notebook_path: the instructor's source notebook (nbgrader source format)
    - config: grading.toml, loaded

    Returns:
    - every disagreement found, in notebook order, then grading.toml's; empty when consistent

    Raises GraderError when the notebook cannot be read at all.
    """
    cells = read_cells(notebook_path)
    return [*grade_id_disagreements(cells), *answer_cell_disagreements(cells, config),
            *test_cell_disagreements(cells, config), *stated_value_disagreements(cells, config),
            *twin_disagreements(Path(notebook_path)), *check_name_disagreements(config)]


def read_cells(path: Path) -> list[dict]:
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise GraderError(f"{path}: no such notebook")
    try:
        return nbformat.read(path, as_version=4).cells
    except Exception as error:  # NotJSONError, ValidationError, UnicodeDecodeError, ...
        raise GraderError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") from None


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def place(number: int, cell, line: int | None = None) -> str:
    grade_id = nbgrader_meta(cell).get("grade_id")
    where = f"cell {number}" + (f" ({grade_id})" if grade_id else "")
    return where + (f", line {line}" if line else "")


def numbered(cells):
    return enumerate(cells, start=1)


def grade_part_calls(source: str) -> list[str]:
    """The parts a test cell scores: the names in its grade_part("<part>") calls."""
    return GRADE_PART_CALL.findall(source)


def test_cell_parts(cells) -> dict[int, list[str]]:
    """Cell number -> the parts its grade_part calls name, for every graded (test) cell."""
    return {n: grade_part_calls(c.source) for n, c in numbered(cells) if nbgrader_meta(c).get("grade")}


# --------------------------------------------------------------------------- grade_ids


def grade_id_disagreements(cells) -> list[Disagreement]:
    found, first_place = [], {}
    for number, cell in numbered(cells):
        meta = nbgrader_meta(cell)
        if not any(meta.get(role) for role in ("grade", "solution", "locked", "task")):
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            found.append(Disagreement(place(number, cell), "an nbgrader cell without a grade_id"))
        elif not GRADE_ID.match(str(grade_id)):
            found.append(Disagreement(place(number, cell),
                                      f"grade_id {grade_id!r} has characters nbgrader refuses "
                                      f"(letters, digits, _ and - only)"))
        elif grade_id in first_place:
            found.append(Disagreement(place(number, cell),
                                      f"duplicate grade_id {grade_id!r} (also {first_place[grade_id]})"))
        else:
            first_place[grade_id] = place(number, cell)
    return found


# --------------------------------------------------------------------------- answer cells


def answer_cell_disagreements(cells, config: Config) -> list[Disagreement]:
    # the registry's parts with points whose code the student writes in an answer cell (train has none)
    answer_ids = {part.grade_id: part.name for part in config.parts.values() if part.grade_id and part.points}
    found, answers = [], {}
    for number, cell in numbered(cells):
        meta = nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        grade_id = meta.get("grade_id")
        answers.setdefault(grade_id, []).append(number)
        if grade_id not in answer_ids:
            found.append(Disagreement(place(number, cell),
                                      f"answer cell {grade_id!r} is no part of grading.toml with an answer "
                                      f"(answer cells: {', '.join(answer_ids)}); "
                                      f"the grader runs it, but no check scores it"))
        if cell.cell_type != "code":
            found.append(Disagreement(place(number, cell), f"answer cell {grade_id!r} is a {cell.cell_type} "
                                                           f"cell; the grader runs only code cells"))
        begins, ends = cell.source.count("### BEGIN SOLUTION"), cell.source.count("### END SOLUTION")
        if begins != ends:
            found.append(Disagreement(place(number, cell), f"{begins} '### BEGIN SOLUTION' but {ends} "
                                                           f"'### END SOLUTION' lines"))
    for grade_id, part in answer_ids.items():
        if grade_id not in answers:
            found.append(Disagreement("", f"part {part!r} of grading.toml has no answer cell "
                                                  f"(a code cell with nbgrader solution: true and grade_id "
                                                  f"{grade_id!r})"))
    return found


def configured_parts(config: Config) -> list[str]:
    """The parts grading.toml gives points, in its order."""
    return [part.name for part in config.parts.values() if part.points]


# --------------------------------------------------------------------------- test cells


def test_cell_disagreements(cells, config: Config) -> list[Disagreement]:
    parts = configured_parts(config)
    found, tested = [], {}
    for number, calls in test_cell_parts(cells).items():
        cell = cells[number - 1]
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code":
            found.append(Disagreement(place(number, cell), "a graded markdown cell: the kit scores only test "
                                                           "(code) cells that call grade_part"))
            continue
        named = list(dict.fromkeys(calls))
        if len(named) != 1:
            found.append(Disagreement(place(number, cell),
                                      "calls no grade_part(\"<part>\"): no part of grading.toml scores it"
                                      if not named else
                                      f"calls grade_part for {len(named)} parts ({', '.join(named)}); "
                                      f"a test cell scores one part"))
            continue
        part = named[0]
        if part not in parts:
            found.append(Disagreement(place(number, cell), f"grade_part({part!r}) names no part of grading.toml "
                                                           f"(parts: {', '.join(parts)})"))
            continue
        if part in tested:
            found.append(Disagreement(place(number, cell), f"a second test cell for part {part!r} "
                                                           f"(the first is {tested[part]})"))
            continue
        tested[part] = place(number, cell)
        expected = config.part_points(part)
        points = meta.get("points")
        if not isinstance(points, (int, float)) or isinstance(points, bool) or not math.isclose(points, expected):
            found.append(Disagreement(place(number, cell),
                                      f"worth {points!r} points here, {expected:g} in grading.toml "
                                      f"[parts.{part}.checks]", stampable=True))
    for part in parts:
        if part not in tested:
            found.append(Disagreement(f"grading.toml [parts.{part}.checks]",
                                      f"part {part!r} ({config.part_points(part):g} points) has no test cell "
                                      f"calling grade_part({part!r}) in the notebook: its points never "
                                      f"reach the nbgrader gradebook"))
    return found


# --------------------------------------------------------------------------- values stated in markdown


def stated_value_disagreements(cells, config: Config) -> list[Disagreement]:
    found, stated = [], set()
    for number, cell in numbered(cells):
        if cell.cell_type != "markdown":
            continue
        for match in STATED.finditer(cell.source):
            key, text = match.group(1).strip(), match.group(2)
            where = place(number, cell, cell.source.count("\n", 0, match.start()) + 1)
            stated.add(key)
            try:
                expected = grading_value(config, key)
            except KeyError:
                found.append(Disagreement(where, f"states {key!r}, which is no key of grading.toml"))
                continue
            problem = compare_stated(text, expected)
            if problem:
                found.append(Disagreement(where, f"states {key} as {' '.join(text.split())!r}; {problem}",
                                          stampable=True))
    required = MUST_BE_STATED + (MUST_BE_STATED_WITH_TRAIN if "train" in configured_parts(config) else ())
    for key in required:
        if key not in stated:
            found.append(Disagreement("", f"never states grading.toml's {key} (a rule the hidden tests "
                                                  f"enforce); write it in the markdown as "
                                                  f"<data value=\"{key}\">…</data>"))
    return found


def grading_value(config: Config, key: str):
    """The value of a dotted grading.toml key, as loaded (course file over the kit's):
    `limits.wall_seconds`, `tolerance.float64.rtol`, `forbidden.functions` (a list); `parts` and
    `parts.<part>` are point totals. KeyError if grading.toml has no such key."""
    if key == "parts":
        return sum(config.points.values())
    if key.startswith("parts.") and key.count(".") == 1:
        if key[len("parts."):] not in configured_parts(config):
            raise KeyError(key)
        return config.part_points(key[len("parts."):])
    value = config
    for name in key.split("."):
        if isinstance(value, dict) and name in value:
            value = value[name]
        elif dataclasses.is_dataclass(value) and name in {f.name for f in dataclasses.fields(value)}:
            value = getattr(value, name)
        else:
            raise KeyError(key)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (dict, Path)) or dataclasses.is_dataclass(value):
        raise KeyError(key)  # a section, not a value
    return value


def compare_stated(text: str, expected) -> str | None:
    """None when `text` (markdown) states `expected`; else what differs, in one sentence."""
    if isinstance(expected, list):
        shown = CODE_SPAN.findall(text)
        missing = [name for name in expected if name not in shown]
        extra = [name for name in shown if name not in expected]
        if not missing and not extra:
            return None
        parts = [f"missing {', '.join(missing)}" if missing else "", f"not in grading.toml: {', '.join(extra)}"
                 if extra else ""]
        return "grading.toml lists " + ", ".join(expected) + " (" + "; ".join(p for p in parts if p) + ")"
    plain = re.sub(r"[`*_\s]", "", text)
    if isinstance(expected, bool) or not isinstance(expected, (int, float)):
        return None if plain == str(expected) else f"grading.toml has {expected!r}"
    if not NUMBER.match(plain):
        return f"not a number; grading.toml has {expected:g}"
    value = float(plain.rstrip("%")) / (100 if plain.endswith("%") else 1)
    if math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
        return None
    return f"grading.toml has {format_stated(expected, like=plain)}"


# --------------------------------------------------------------------------- the jupytext twin


def twin_disagreements(notebook_path: Path) -> list[Disagreement]:
    """The Markdown twin must hold the notebook's cells, as jupytext compares them (metadata Jupyter
    keeps for itself, such as `scrolled`, is not paired)."""
    twin = notebook_path.with_suffix(".md")
    if not twin.is_file():
        return []
    try:
        import jupytext
        import nbformat
        from jupytext.compare import NotebookDifference, compare_notebooks
    except ImportError:
        return [Disagreement("", f"cannot compare it with its twin {twin.name}: jupytext is not installed "
                                 f"(pip install jupytext)")]
    try:
        compare_notebooks(jupytext.read(twin), nbformat.read(notebook_path, as_version=4), fmt="md")
    except NotebookDifference as difference:
        first = str(difference).strip().splitlines()[0].rstrip(": ")
        # the .ipynb is the source: release rewrites the twin from it (stampable)
        return [Disagreement("", f"differs from its twin {twin.name} ({first}); after editing the notebook "
                                 f"autograder release rewrites the twin, after editing the twin run: "
                                 f"jupytext --sync {notebook_path.name}", stampable=True)]
    return []


# --------------------------------------------------------------------------- grading.toml vs the checks


def check_name_disagreements(config: Config) -> list[Disagreement]:
    """Checks grading.toml gives points but no checks module defines (building the suite names them)."""
    from .checks import build_suite

    try:
        build_suite(config, seed=0)
    except GraderError as error:
        return [Disagreement(f"grading.toml {config.path}", str(error).removeprefix("grading.toml "))]
    return []


# --------------------------------------------------------------------------- stamping points


def stamp(cells, config: Config) -> list[str]:
    """
    Make the notebook say what grading.toml says, in place: each kit test cell's nbgrader points,
    and each value marked <data value="key">…</data> in markdown.

    Inputs:
    - cells: the notebook's cells (nbformat nodes)
    - config: grading.toml, loaded

    Returns:
    - one line per change, "cell 11 (test_nll): points 12 -> 13"
    """
    parts, changed = configured_parts(config), []
    for number, cell in numbered(cells):
        if cell.cell_type == "markdown":
            where = place(number, cell)
            cell.source = STATED.sub(lambda match, where=where: _stamped(match, config, where, changed), cell.source)
    for number, calls in test_cell_parts(cells).items():
        named = set(calls)
        if len(named) != 1 or not named <= set(parts):
            continue  # not the kit's to stamp: `check` reports it
        meta = nbgrader_meta(cells[number - 1])
        points, old = config.part_points(calls[0]), meta.get("points")
        if not (isinstance(old, (int, float)) and not isinstance(old, bool) and math.isclose(old, points)):
            meta["points"] = int(points) if float(points).is_integer() else points
            changed.append(f"{place(number, cells[number - 1])}: points {old!r} -> {meta['points']}")
    return changed


def _stamped(match: re.Match, config: Config, where: str, changed: list) -> str:
    key, text = match.group(1).strip(), match.group(2)
    try:
        expected = grading_value(config, key)
    except KeyError:
        return match.group(0)  # `check` reports the unknown key
    if compare_stated(text, expected) is None:
        return match.group(0)
    new = format_stated(expected, like=text)
    changed.append(f"{where}: {key} {' '.join(text.split())} -> {new}")
    start, end = match.start(2) - match.start(0), match.end(2) - match.start(0)
    return match.group(0)[:start] + new + match.group(0)[end:]


def format_stated(value, like: str) -> str:
    """`value` written in the style of the text it replaces: `code` lists, 85%, 1e-6, 10."""
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if like.strip().endswith("%"):
        return f"{value * 100:g}%"
    if "e" in like.lower():
        mantissa, exponent = f"{value:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:g}"
