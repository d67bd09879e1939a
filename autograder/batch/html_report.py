"""report.html: one self-contained page for the instructor (plots embedded as PNG data URIs).

Score histogram, a pass-rate bar per check (coloured by part), the checks most students fail, and
every student with a link to their results/<student>.json. Every piece of text that came from a
submission or a file name is HTML-escaped.
"""
from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from .outputs import RESULTS, format_number, write_atomic
from .summary import check_rates, hardest_first, not_graded_reason, score_stats

PART_COLOURS = {"linear": "#4C72B0", "relu": "#55A868", "softmax": "#C44E52", "nll": "#8172B2", "train": "#CCB974"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00; } .figures img { max-width: 100%; }
"""


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def histogram_png(scores: list[float], max_score: float) -> str:
    from matplotlib.figure import Figure  # not pyplot: no global state, safe beside other threads

    figure = Figure(figsize=(7, 3.2))
    axes = figure.add_subplot()
    bins = max(1, min(30, int(max_score) or 1))
    axes.hist(scores, bins=bins, range=(0, max_score or 1), color="#4C72B0", edgecolor="white")
    axes.set_xlabel(f"score (out of {max_score:g})")
    axes.set_ylabel("students")
    axes.set_title(f"Scores of {len(scores)} student(s)")
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def pass_rate_png(rates) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 0.5 + 0.21 * len(rates)))
    axes = figure.add_subplot()
    positions = range(len(rates))
    colours = [PART_COLOURS.get(r.name.split(".")[0], "#888888") for r in rates]
    axes.barh(list(positions), [100 * r.rate for r in rates], color=colours)
    axes.set_yticks(list(positions), [r.name for r in rates], fontsize=7)
    axes.invert_yaxis()  # grading.toml order, top to bottom
    axes.set_xlim(0, 100)
    axes.set_xlabel("students passing (%)")
    axes.set_title("Pass rate per check")
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def _rows(cells_per_row) -> str:
    return "\n".join("<tr>" + "".join(cells) + "</tr>" for cells in cells_per_row)


def _td(text, number: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("num" if number else "", css) if c)
    return f'<td class="{classes}">{escape(str(text))}</td>' if classes else f"<td>{escape(str(text))}</td>"


def render(outcome, config) -> str:
    results = outcome.results
    check_names = list(config.points)
    rates = check_rates(results, check_names)
    stats = score_stats(results)
    max_score = stats.get("max_score", sum(config.points.values()))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Batch grading report</title>"
             f"<style>{STYLE}</style></head><body><h1>Batch grading report</h1>"]
    summary = (f"{outcome.submissions} submission(s) found ({escape(outcome.layout)} layout); "
               f"{stats['count']} student result(s).")
    if stats["count"]:
        summary += (f" Mean {stats['mean']:.1f}, median {stats['median']:g}, "
                    f"range {stats['min']:g}–{stats['max']:g} of {max_score:g}.")
    if outcome.interrupted:
        summary += " <b>Interrupted: some submissions are not graded yet.</b>"
    parts.append(f"<p>{summary}</p>")
    if stats["count"]:
        scores = [float(r.get("score", 0)) for r in results.values()]
        parts.append(f'<div class="figures"><img alt="score histogram" src="{histogram_png(scores, max_score)}">'
                     f'<img alt="pass rate per check" src="{pass_rate_png(rates)}"></div>')
    hardest = hardest_first(rates)
    parts.append("<h2>Checks most students fail</h2>")
    if hardest:
        parts.append("<table><tr><th>check</th><th class='num'>passed</th><th class='num'>rate</th></tr>"
                     + _rows([_td(r.name), _td(f"{r.passed}/{r.total}", True), _td(f"{r.rate:.0%}", True)]
                             for r in hardest) + "</table>")
    else:
        parts.append("<p>Every graded student passed every check.</p>")
    parts.append("<h2>Students</h2><table><tr><th>student</th><th class='num'>score</th>"
                 "<th class='num'>failed checks</th><th>note</th></tr>")
    student_rows = []
    for student in sorted(results):
        result = results[student]
        failed = sum(t.get("status") != "passed" for t in result.get("tests", []))
        reason = not_graded_reason(result)
        link = f'<td><a href="{RESULTS}/{escape(student)}.json">{escape(student)}</a></td>'
        student_rows.append([link, _td(f"{format_number(result.get('score'))} / "
                                       f"{format_number(result.get('max_score'))}", True),
                             _td(failed, True), _td("not graded: " + reason if reason else "", css="bad")])
    parts.append(_rows(student_rows) + "</table>")
    if outcome.failures:
        parts.append("<h2>Grader failures (not graded; a re-run retries them)</h2><ul>"
                     + "".join(f"<li>{escape(label)}: {escape(reason)}</li>" for label, reason in outcome.failures)
                     + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(out: Path, outcome, config) -> Path:
    path = out / "report.html"
    write_atomic(path, render(outcome, config))
    return path
