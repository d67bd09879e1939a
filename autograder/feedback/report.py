"""Render one GradeReport: a terminal report (rich) and Gradescope's results.json object.

No grading logic here: reporters only read the result model.
"""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..course.config import Config
from . import causes
from .terminal import printable


def summary_text(report) -> str:
    lines = [f"Score: {report.score:g} / {report.max_score:g}"]
    if report.error:
        lines.append(f"Not graded: {report.error}")
    for name, part in report.parts.items():
        lines.append(f"  {name:<8} {part.score:g} / {part.max_score:g}")
    lines.extend(f"Note: {notice}" for notice in report.notices)
    if not report.error and any(not c.passed for c in report.checks):
        lines += ["", "What went wrong (one line per mistake, with the checks it cost):",
                  causes.as_text(report.checks, indent="  ")]
    return "\n".join(lines)


def results_json(report, config: Config) -> dict:
    """Gradescope's results.json: https://gradescope-autograders.readthedocs.io (spec fields only,
    plus max_score; the student's prints go to extra_data, never to the output)."""
    gradescope = config.gradescope
    return {
        "score": round(report.score, 6),
        "max_score": report.max_score,
        "execution_time": round(report.execution_time, 3),
        "output": summary_text(report),
        "output_format": "text",
        "visibility": gradescope.visibility,
        "stdout_visibility": gradescope.stdout_visibility,
        "tests": [
            {
                "name": check.name,
                "score": check.score,
                "max_score": check.max_score,
                "status": "passed" if check.passed else "failed",
                "output": check.message,
                "output_format": "text",
                "tags": [check.part],
                "visibility": gradescope.hidden_check_visibility,
                **({"extra_data": {"cause": check.cause}} if check.cause else {}),
            }
            for check in report.checks
        ],
        "extra_data": {
            "student": report.student,
            "error": report.error,  # non-empty when the submission could not be graded at all
            "isolation": report.isolation,
            "course_secret_id": report.course_secret_id,
            "bounds": report.bounds,
            "submission": report.submission,
            "notices": list(report.notices),
            "instructor_notices": list(report.instructor_notices),  # never in `output`: students see that
            "student_output": report.student_output,
        },
    }


def print_report(report, console: Console | None = None) -> None:
    console = console or Console()
    title = Text(printable(report.student), style="bold")
    console.rule(title.append(f" — {report.score:g} / {report.max_score:g} points", style="none"))
    if report.error:
        console.print(Text("Not graded: ", style="red").append(printable(report.error), style="none"))
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("part", "score", "failed checks", "mistakes"):
        table.add_column(column)
    for name, part in report.parts.items():
        failed = [c for c in part.checks if not c.passed]
        colour = "green" if not failed else ("yellow" if part.score else "red")
        table.add_row(name, f"[{colour}]{part.score:g} / {part.max_score:g}[/]", str(len(failed)) if failed else "—",
                      str(len(causes.items(failed))) if failed else "—")
    console.print(table)
    for notice in report.notices:
        console.print(Text("Note: " + printable(notice), style="yellow"))
    for notice in report.instructor_notices:  # this terminal is the instructor's
        console.print(Text("For the instructor: " + printable(notice), style="magenta"))
    for item in causes.items(report.checks):
        console.print(Text(f"✗ {printable(item.text)}", style="bold red"),
                      Text(f"({causes.checks_phrase(item)})", style="dim"))
        if item.hint:
            console.print(Text(f"  Hint: {printable(item.hint)}"))
        if not item.key.endswith(":not_written"):  # what went in and came back, for the first check
            console.print(Text("  " + printable(item.example).replace("\n", "\n  "), style="dim"))
    if report.student_output.strip():
        console.print(Text("Your code printed (first lines):", style="dim"))
        console.print(Text(printable("\n".join(report.student_output.splitlines()[:10])), style="dim"))
