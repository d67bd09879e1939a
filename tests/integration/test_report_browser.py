"""report.html and the per-student pages in a real headless browser (Debian's Chromium, driven by
Playwright; no browser is downloaded). The page must render without a console error, lead with the
mistakes, and show the numbers grades.csv holds.

.ci/run installs Chromium when it is missing, so in CI this test runs rather than skips.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest

from autograder.batch import grade_batch
from autograder.batch.progress import QuietProgress
from autograder.batch.runner import LocalRunner

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).exists():
        reason = "needs Chromium (apt-get install chromium) and playwright (the dev extra)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": .ci/run installs them, so CI must not skip this test")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, reference_source, config):
    """Five students: correct, two with the same db mistake, a loss that sums, and an unwritten one."""
    from autograder.pipeline import Grader

    keepdim = reference_source.replace("self.db = dh.sum(dim=0)", "self.db = dh.sum(dim=0, keepdim=True)")
    sums = reference_source.replace("return -self.p.log().mean()", "return -self.p.log().sum()")
    unwritten = re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "raise NotImplementedError()", reference_source,
                       flags=re.S)
    root = tmp_path_factory.mktemp("browser")
    course = root / "class"
    course.mkdir()
    for name, source in {"alice": reference_source, "bob": keepdim, "dave": keepdim, "carol": sums,
                         "<erin>": unwritten}.items():
        (course / f"{name}.py").write_text(source)
    with Grader(config, hide=(tmp_path_factory.getbasetemp(),)) as grader:
        grade_batch(course, root / "out", config, runner=LocalRunner(config, workers=1, grader=grader),
                    progress=QuietProgress())
    with open(root / "out" / "grades.csv", newline="") as stream:
        rows = {row["student"]: row for row in csv.DictReader(stream)}
    return root / "out", rows


@pytest.mark.slow
def test_report_renders_in_chromium_and_matches_the_csv(graded_class, tmp_path):
    sync_playwright = _browser_or_skip()
    out, rows = graded_class
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto((out / "report.html").as_uri())
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

        headings = page.locator("h2").all_inner_texts()
        assert headings[0] == "Mistakes most students make"
        assert page.locator("table").first.get_attribute("id") == "mistakes"
        images = page.locator("img")
        assert images.count() == 3
        assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(3))

        # the mistakes: bob and dave keep db's dimension (2 of 5 students, 40%), each losing what
        # grades.csv says they lost in linear
        mistakes = {row.locator("td").first.inner_text().split("\n")[0]: row.locator("td").all_inner_texts()
                    for row in page.locator("#mistakes tr").all()[1:]}
        keepdim = next(cells for text, cells in mistakes.items() if "db with an extra leading dimension" in text)
        lost = sum(float(rows[s]["max_score"]) - float(rows[s]["score"]) for s in ("bob", "dave"))
        assert keepdim[1:4] == ["2", "40%", f"{lost:g}"] and "bob" in keepdim[4] and "dave" in keepdim[4]

        # the students table says what grades.csv says
        shown = {}
        for row in page.locator("#students tr").all()[1:]:
            cells = row.locator("td").all_inner_texts()
            shown[cells[0]] = cells[1]
        assert shown == {s: f"{row['score']} / {row['max_score']}" for s, row in rows.items()}

        # a student's page, reached by the link: the same score, one item for one mistake
        page.locator("#students a", has_text="bob").first.click()
        page.wait_for_load_state()
        assert page.url.endswith("/results/bob.html")
        assert f"{rows['bob']['score']} / {rows['bob']['max_score']}" in page.locator("h1").inner_text()
        assert page.locator("#items > li").count() == 1
        part_rows = {r.locator("td").first.inner_text(): r.locator("td").nth(1).inner_text()
                     for r in page.locator("#parts tr").all()[1:]}
        assert part_rows["linear"].split(" / ")[0] == rows["bob"]["linear subtotal"]

        # the unwritten notebook: one line per method, not one per check
        page.goto((out / "results" / "_erin_.html").as_uri())
        unwritten = page.locator("#items > li").all_inner_texts()
        assert 4 <= len(unwritten) <= 8 and all("not written yet" in text for text in unwritten)
        browser.close()
    assert problems == []
