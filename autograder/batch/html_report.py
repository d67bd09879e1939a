"""report.html and one feedback page per student: self-contained HTML (plots as PNG data URIs).

report.html leads with the mistakes most students make (diagnosed causes: how many students, their
share, the points they cost, two example students), then the score distributions (overall and per
part, integer axes), a pass-rate bar per check with a legend of the part colours, the checks most
students fail, and every student with a link to their feedback page, results/<student>.html,
written next to results/<student>.json. Every piece of text that came from a submission, a result
file or a file name is HTML-escaped.
"""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
from html import escape
from pathlib import Path

from ..feedback.causes import checks_from_result, items
from ..files import KIT_ROOT, write_atomic
from .outputs import RESULTS, format_number
from .summary import (POINTS_LOST, CheckRate, check_rates, hardest_first, instructor_notices, mistake_rates,
                      not_graded_reason, part_scores, score_stats)

EXAMPLES = 2  # example students named per mistake

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00; } .figures img { max-width: 100%; } .hint { color: #555; }
pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; }
"""


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


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
    _integer_counts(axes)
    return _png(figure)


def _integer_counts(axes) -> None:
    """Students are counted in whole numbers (no 0.2-student ticks on a small class's axis), and
    points are whole numbers in grading.toml as it comes."""
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def part_histograms_png(scores: dict[str, list[float]], maxima: dict[str, float], colours: dict[str, str]) -> str:
    """One small histogram per part, in the part's colour (colours: part -> colour, the registry's)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2.2 * max(1, len(scores)), 2.4))
    for index, (part, values) in enumerate(scores.items()):
        axes = figure.add_subplot(1, len(scores), index + 1)
        top = maxima.get(part) or max(values + [1.0])
        axes.hist(values, bins=max(1, min(20, int(top))), range=(0, top), color=colours.get(part, "#888888"),
                  edgecolor="white")
        axes.set_title(f"{part} (of {top:g})", fontsize=9)
        axes.tick_params(labelsize=7)
        _integer_counts(axes)
        if index == 0:
            axes.set_ylabel("students", fontsize=8)
    figure.tight_layout()
    return _png(figure)


def pass_rate_png(rates, colours: dict[str, str]) -> str:
    """colours: part name -> bar colour (the registry's)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 0.5 + 0.21 * len(rates)))
    axes = figure.add_subplot()
    positions = range(len(rates))
    axes.barh(list(positions), [100 * r.rate for r in rates],
              color=[colours.get(r.name.split(".")[0], "#888888") for r in rates])
    axes.set_yticks(list(positions), [r.name for r in rates], fontsize=7)
    axes.invert_yaxis()  # grading.toml order, top to bottom
    axes.set_xlim(0, 100)
    axes.set_xlabel("students passing (%)")
    axes.set_title("Pass rate per check")
    axes.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    shown = dict.fromkeys(r.name.split(".")[0] for r in rates)
    axes.legend(handles=[Patch(color=colours.get(part, "#888888"), label=part) for part in shown],
                title="part", fontsize=7, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                borderaxespad=0)  # beside the plot: inside it, it covered the bars of the last checks
    return _png(figure)


def figure_inputs(results: dict, config) -> dict:
    """What the three figures show, as plain JSON (they may be drawn by another interpreter)."""
    check_names = list(config.points)
    return {
        "scores": [float(r.get("score") or 0) for r in results.values()],
        "max_score": score_stats(results).get("max_score", sum(config.points.values())),
        "part_scores": part_scores(results),
        "maxima": {part: config.part_points(part) for part in dict.fromkeys(n.split(".")[0] for n in check_names)},
        "colours": {part.name: part.colour for part in config.parts.values()},  # the registry's
        "rates": [[r.name, r.passed, r.total] for r in check_rates(results, check_names)],
    }


def draw_figures(inputs: dict) -> list[str]:
    """The score histogram, the per-part histograms and the pass rates, as PNG data URIs."""
    return [histogram_png(inputs["scores"], inputs["max_score"]),
            part_histograms_png(inputs["part_scores"], inputs["maxima"], inputs["colours"]),
            pass_rate_png([CheckRate(*rate) for rate in inputs["rates"]], inputs["colours"])]


class FiguresElsewhere:
    """A second interpreter that draws the figures: started when a batch starts, it loads matplotlib
    while the batch grades, and draws while this one writes the students' pages (~1.3 s for a class
    of 1000, at the end of a batch, when the other core has nothing left to grade). It reads one
    line of JSON and exits at the end of its input: a batch that stops early leaves nothing behind.
    If anything goes wrong there, the figures are drawn here instead: never a lost report."""

    def __init__(self):
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "autograder.batch.html_report"], cwd=KIT_ROOT,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            self._process = None

    def draw(self, inputs: dict) -> list[str]:
        """draw_figures(inputs), done there."""
        if self._process is not None:
            try:
                drawn, _ = self._process.communicate(json.dumps(inputs).encode() + b"\n", timeout=300)
                figures = json.loads(drawn) if self._process.returncode == 0 else None
                if isinstance(figures, list) and len(figures) == 3 and all(isinstance(f, str) for f in figures):
                    return figures
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.close()
        return draw_figures(inputs)

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _rows(cells_per_row) -> str:
    return "\n".join("<tr>" + "".join(cells) + "</tr>" for cells in cells_per_row)


def _td(text, number: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("num" if number else "", css) if c)
    return f'<td class="{classes}">{escape(str(text))}</td>' if classes else f"<td>{escape(str(text))}</td>"


def _student_link(student: str) -> str:
    return f'<a href="{RESULTS}/{escape(student)}.html">{escape(student)}</a>'


def _mistakes_table(results: dict, graded: int) -> str:
    mistakes = mistake_rates(results)
    if not mistakes:
        return "<p>No diagnosed mistakes: every failed check of a graded student is listed below.</p>"
    rows = []
    for mistake in mistakes:
        examples = ", ".join(_student_link(s) for s in mistake.students[:EXAMPLES])
        hint = f'<div class="hint">Hint: {escape(mistake.hint)}</div>' if mistake.hint else ""
        rows.append([f"<td>{escape(mistake.text)}{hint}</td>", _td(mistake.count, True),
                     _td(f"{mistake.count / graded:.0%}" if graded else "", True),
                     _td(mistake.lost_text, True), f"<td>{examples}</td>"])
    return ("<table id='mistakes'><tr><th>mistake</th><th class='num'>students</th><th class='num'>share</th>"
            f"<th class='num'>{POINTS_LOST}</th><th>for example</th></tr>" + _rows(rows) + "</table>")


def render(outcome, config, figures: list[str] | None = None) -> str:
    """report.html. figures: draw_figures(figure_inputs(...)) when already drawn."""
    results = outcome.results
    check_names = list(config.points)
    rates = check_rates(results, check_names)
    stats = score_stats(results)
    max_score = stats.get("max_score", sum(config.points.values()))
    graded = sum(not not_graded_reason(r) for r in results.values())
    body = ["<h1>Batch grading report</h1>"]
    summary = (f"{outcome.submissions} submission(s) found ({escape(outcome.layout)} layout); "
               f"{stats['count']} student result(s).")
    if stats["count"]:
        summary += (f" Mean {stats['mean']:.1f}, median {stats['median']:g}, "
                    f"range {stats['min']:g}–{stats['max']:g} of {max_score:g}.")
    if outcome.interrupted:
        summary += " <b>Interrupted: some submissions are not graded yet.</b>"
    review = sum(bool(instructor_notices(r)) for r in results.values())
    if review:
        summary += (f" <b>{review} submission(s) to review</b>: see the note column (what the notes say is "
                    f"never shown to students).")
    body.append(f"<p>{summary}</p>")
    body.append("<h2>Mistakes most students make</h2>")
    body.append(_mistakes_table(results, graded))
    if stats["count"]:
        histogram, per_part, pass_rates = figures or draw_figures(figure_inputs(results, config))
        body.append("<h2>Score distributions</h2>")
        body.append(f'<div class="figures"><img alt="score histogram" src="{histogram}">'
                    f'<img alt="score per part" src="{per_part}">'
                    f'<img alt="pass rate per check" src="{pass_rates}"></div>')
    hardest = hardest_first(rates)
    body.append("<h2>Checks most students fail</h2>")
    if hardest:
        body.append("<table id='hardest'><tr><th>check</th><th class='num'>passed</th><th class='num'>rate</th></tr>"
                    + _rows([_td(r.name), _td(f"{r.passed}/{r.total}", True), _td(f"{r.rate:.0%}", True)]
                            for r in hardest) + "</table>")
    elif any(r.passed < r.total for r in rates):
        body.append("<p>No check is failed by most students.</p>")
    else:
        body.append("<p>Every graded student passed every check.</p>")
    body.append("<h2>Students</h2><table id='students'><tr><th>student</th><th class='num'>score</th>"
                "<th class='num'>failed checks</th><th class='num'>mistakes</th><th>result</th><th>note</th></tr>")
    student_rows = []
    for student in sorted(results):
        result = results[student]
        checks = checks_from_result(result)
        failed = [c for c in checks if not c.passed]
        reason = not_graded_reason(result)
        student_rows.append([f"<td>{_student_link(student)}</td>",
                             _td(f"{format_number(result.get('score'))} / "
                                 f"{format_number(result.get('max_score'))}", True),
                             _td(len(failed), True), _td(len(items(failed)) if not reason else "", True),
                             f'<td><a href="{RESULTS}/{escape(student)}.json">json</a></td>',
                             _td("; ".join((["not graded: " + reason] if reason else [])
                                           + ["review: " + n for n in instructor_notices(result)]), css="bad")])
    body.append(_rows(student_rows) + "</table>")
    if outcome.failures:
        body.append("<h2>Grader failures (not graded; a re-run retries them)</h2><ul>"
                    + "".join(f"<li>{escape(label)}: {escape(reason)}</li>" for label, reason in outcome.failures)
                    + "</ul>")
    return _page("Batch grading report", body)


def render_student(student: str, result: dict) -> str:
    """One student's feedback page: the score per part, then one item per mistake."""
    checks = checks_from_result(result)
    body = ["<p><a href='../report.html'>← class report</a></p>",
            f"<h1>{escape(student)}: {escape(format_number(result.get('score')))} / "
            f"{escape(format_number(result.get('max_score')))} points</h1>"]
    reason = not_graded_reason(result)
    if reason:
        body.append(f"<p class='bad'>Not graded: {escape(reason)}</p>")
    parts: dict[str, list] = {}
    for check in checks:
        parts.setdefault(check.part, []).append(check)
    body.append("<table id='parts'><tr><th>part</th><th class='num'>score</th><th class='num'>failed checks</th></tr>"
                + _rows([_td(part), _td(f"{format_number(sum(c.score for c in group))} / "
                                        f"{format_number(sum(c.max_score for c in group))}", True),
                         _td(sum(not c.passed for c in group), True)] for part, group in parts.items())
                + "</table>")
    found = items(checks) if not reason else []
    if found:
        body.append("<h2>What went wrong</h2><ol id='items'>")
        for item in found:
            hint = f"<p class='hint'>Hint: {escape(item.hint)}</p>" if item.hint else ""
            names = ", ".join(escape(name) for name in item.names)
            body.append(f"<li><p><b>{escape(item.text)}</b></p>{hint}"
                        f"<p>Cost {escape(format_number(item.lost))} point(s): {names}</p>"
                        f"<pre>{escape(item.example)}</pre></li>")
        body.append("</ol>")
    elif not reason:
        body.append("<p>Every check passed.</p>")
    extra = result.get("extra_data") if isinstance(result.get("extra_data"), dict) else {}
    notices = [str(n) for n in extra.get("notices") or [] if n]
    if notices:
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notices) + "</ul>")
    return _page(f"Feedback for {student}", body)


def write_report(out: Path, outcome, config, figures: FiguresElsewhere | None = None) -> Path:
    """report.html, and results/<student>.html beside each student's results.json. figures: where
    to draw the figures, if not here."""
    drawn: list = []
    drawing = None
    if figures is not None and score_stats(outcome.results)["count"]:
        inputs = figure_inputs(outcome.results, config)
        drawing = threading.Thread(target=lambda: drawn.append(figures.draw(inputs)), daemon=True)
        drawing.start()  # waits on the other interpreter (holding no GIL) while the pages are written
    for student, result in outcome.results.items():
        write_atomic(out / RESULTS / f"{student}.html", render_student(student, result))
    if drawing is not None:
        drawing.join()
    path = out / "report.html"
    write_atomic(path, render(outcome, config, drawn[0] if drawn else None))
    return path


def _serve_figures() -> None:
    """FiguresElsewhere's other end: matplotlib first, then one line of figure_inputs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    line = sys.stdin.readline()
    if line:
        json.dump(draw_figures(json.loads(line)), sys.stdout)


if __name__ == "__main__":
    _serve_figures()
