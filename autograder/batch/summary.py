"""Class-level figures from the results (shared by the terminal summary and report.html), and the
terminal summary itself: the checks most students fail come first."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..feedback.terminal import printable


@dataclass(frozen=True)
class CheckRate:
    name: str
    passed: int
    total: int

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass
class MistakeRate:
    """One diagnosed cause across the class: who made it and what it cost them."""

    key: str
    text: str
    hint: str
    students: list  # ids, sorted
    points_lost: float  # all its students together, in the part of the method it names
    knock_on: float = 0.0  # all its students together, in other parts (the train check using the layer)

    @property
    def lost_text(self) -> str:
        """"15", or "15 + 5 elsewhere" when the mistake also failed other parts' checks."""
        elsewhere = f" + {format_points(self.knock_on)} elsewhere" if self.knock_on else ""
        return format_points(self.points_lost) + elsewhere

    @property
    def count(self) -> int:
        return len(self.students)


def mistake_rates(results: dict) -> list[MistakeRate]:
    """Causes of failed checks (items of feedback/causes.py) counted once per student, most common first."""
    from ..feedback.causes import checks_from_result, items

    rates: dict[str, MistakeRate] = {}
    for student in sorted(results):
        if not_graded_reason(results[student]):
            continue  # an unusable file is its own line in the students table, not a mistake
        for item in items(checks_from_result(results[student])):
            if not item.checks[0].cause:
                continue
            rate = rates.setdefault(item.key, MistakeRate(item.key, item.text, item.hint, [], 0.0))
            rate.students.append(student)
            own_part = item.checks[0].name.split(".", 1)[0]  # checks come in grading.toml order: the layer's first
            for check in item.checks:
                lost = check.max_score - check.score
                if check.name.split(".", 1)[0] == own_part:
                    rate.points_lost += lost
                else:
                    rate.knock_on += lost
    return sorted(rates.values(), key=lambda r: (-r.count, -r.points_lost - r.knock_on, r.key))


def part_scores(results: dict) -> dict[str, list[float]]:
    """Each part's subtotal per graded student, parts in the order their checks come."""
    from ..feedback.causes import checks_from_result

    scores: dict[str, list[float]] = {}
    for student in sorted(results):
        subtotal: dict[str, float] = {}
        for check in checks_from_result(results[student]):
            subtotal[check.part] = subtotal.get(check.part, 0.0) + check.score
        for part, value in subtotal.items():
            scores.setdefault(part, []).append(value)
    return scores


def not_graded_reason(result: dict) -> str:
    """The reason a submission could not be graded at all ('' when it was graded): the result's
    extra_data.error field (report.results_json)."""
    extra = result.get("extra_data")
    return str(extra.get("error") or "") if isinstance(extra, dict) else ""


def instructor_notices(result: dict) -> list[str]:
    """What the instructor should review in one submission (extra_data.instructor_notices of
    report.results_json); never part of what the student is shown."""
    extra = result.get("extra_data")
    notices = extra.get("instructor_notices") if isinstance(extra, dict) else None
    return [str(n) for n in notices if n] if isinstance(notices, list) else []


def check_rates(results: dict, check_names: list[str]) -> list[CheckRate]:
    """Pass counts per check, in grading.toml order."""
    passed = dict.fromkeys(check_names, 0)
    total = dict.fromkeys(check_names, 0)
    for result in results.values():
        for test in result.get("tests", []):
            name = test.get("name")
            if name in total:
                total[name] += 1
                passed[name] += test.get("status") == "passed"
    return [CheckRate(name, passed[name], total[name]) for name in check_names]


def hardest_first(rates: list[CheckRate], top: int = 10) -> list[CheckRate]:
    """The checks most students fail: failed by at least half of the students (at least 2 of them
    in a class of 3 or more), hardest first, at most `top`."""
    failing = sorted((r for r in rates if r.passed < r.total), key=lambda r: (r.rate, r.name))
    return [r for r in failing if r.total - r.passed >= max(r.total / 2, min(2, r.total))][:top]


def score_stats(results: dict) -> dict:
    scores = [float(r.get("score", 0)) for r in results.values()]
    maxima = {float(r.get("max_score", 0)) for r in results.values()}
    if not scores:
        return {"count": 0}
    return {"count": len(scores), "mean": statistics.fmean(scores), "median": statistics.median(scores),
            "min": min(scores), "max": max(scores), "max_score": max(maxima)}


POINTS_LOST = "points lost, all its students"  # a class total; "elsewhere": other parts (the train check)


def format_points(value: float) -> str:
    return f"{value:g}"


def print_summary(outcome, config, console=None, top: int = 10) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    stats = score_stats(outcome.results)
    line = (f"{outcome.submissions} submission(s) ({outcome.layout} layout): {outcome.graded} graded now, "
            f"{outcome.skipped} already graded, in {outcome.seconds:.1f} s")
    console.print(line)
    if stats["count"]:
        console.print(f"scores of {stats['count']} student(s): mean {stats['mean']:.1f}, median "
                      f"{stats['median']:g}, range {stats['min']:g}-{stats['max']:g} of {stats['max_score']:g}")
    mistakes = mistake_rates(outcome.results)
    if mistakes:
        table = Table(title="mistakes most students make", title_justify="left", show_edge=False, pad_edge=False)
        for column, justify in (("mistake", "left"), ("students", "right"), (POINTS_LOST, "right")):
            table.add_column(column, justify=justify)
        for mistake in mistakes[:top]:
            table.add_row(printable(mistake.text), str(mistake.count), mistake.lost_text)
        console.print(table)
        if len(mistakes) > top:
            console.print(f"... and {len(mistakes) - top} more (see report.html)")
    hardest = hardest_first(check_rates(outcome.results, list(config.points)), top)
    if hardest:
        table = Table(title="checks most students fail", title_justify="left", show_edge=False, pad_edge=False)
        for column, justify in (("check", "left"), ("passed", "right"), ("rate", "right")):
            table.add_column(column, justify=justify)
        for rate in hardest:
            table.add_row(rate.name, f"{rate.passed}/{rate.total}", f"{rate.rate:.0%}")
        console.print(table)
    ungraded = sorted((s, not_graded_reason(r)) for s, r in outcome.results.items() if not_graded_reason(r))
    if ungraded:
        console.print(f"[yellow]{len(ungraded)} submission(s) could not be graded (zero):[/]")
        for student, reason in ungraded[:5]:
            console.print(printable(f"  {student}: {reason}"), markup=False)
    review = sorted((s, instructor_notices(r)) for s, r in outcome.results.items() if instructor_notices(r))
    if review:
        console.print(f"[magenta]{len(review)} submission(s) to review (for the instructor, never shown "
                      f"to students; see report.html):[/]")
        for student, notices in review[:5]:
            console.print(printable(f"  {student}: {'; '.join(notices)}"), markup=False)
    for label, reason in outcome.failures[:5]:
        console.print(printable(f"grader failure on {label}: {reason} (not graded; a re-run retries it)"),
                      markup=False, style="red")
    if outcome.interrupted:
        remaining = outcome.submissions - outcome.graded - outcome.skipped
        console.print(f"[yellow]interrupted:[/] {remaining} submission(s) not graded yet; "
                      f"run the same command again to finish")
    written = [str(p) for p in (outcome.csv_path, outcome.html_path) if p]
    console.print(printable("wrote " + ", ".join(written) + f" and {outcome.csv_path.parent / 'results'}/"),
                  markup=False)
