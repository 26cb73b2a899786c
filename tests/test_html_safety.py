"""No student script runs in a student's or an instructor's browser (real Chromium).

A submission tries every common way to get script into a page: ``<script>``
from ``display(HTML(...))``, ``<img onerror>``, ``javascript:`` links, an SVG
with ``onload``, ``display(Javascript(...))``, script in markdown output and
in a markdown cell of its own. It is autograded by the hardened pipeline, then
two pages built from it are opened in headless Chromium:

* the student's feedback page (``nbgrader generate_feedback``), from disk;
* formgrader's submission page, served by a real Jupyter server, as the
  instructor sees it.

Every script the student planted would set ``window.__pwned`` or change the
title. A control page proves the same probe does catch a script that runs.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from browser_helpers import CHROMIUM, LabServer, log, screenshot
from conftest import BATCH_OK, TEST_CONFIG, TEST_LIMITS, build_attack
from hostile_cases import ATTACKS

from cnngrader.core import paths
from cnngrader.tools.workspace import make_course, nbgrader

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (install Debian's chromium package)"),
]

ATTACK = next(a for a in ATTACKS if a.name == "script_injection")
STUDENT = f"h_{ATTACK.name}"
PROBE_JS = "() => ({pwned: window.__pwned === undefined ? null : String(window.__pwned), title: document.title})"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("xss") / "course", limits=TEST_LIMITS, extra_config=TEST_CONFIG)
    build_attack(ATTACK, course.submitted)
    proc = course.grade(jobs=1)
    assert proc.returncode in BATCH_OK, proc.stderr[-3000:]
    fb = nbgrader(course.root, "generate_feedback", course.assignment, "--force", check=False)
    assert fb.returncode == 0, fb.stderr[-3000:]
    return course


def _visit(browser, url: str, name: str) -> dict:
    """Load the page, wait for anything deferred, click every link, and report what scripts did."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        page.wait_for_timeout(1500)
        for link in page.locator("a[href]").all()[:200]:
            href = link.get_attribute("href") or ""
            if href.lower().replace(" ", "").startswith(("javascript:", "blocked:")):
                try:
                    link.click(timeout=2000, no_wait_after=True)
                except Exception:  # noqa: BLE001 - an unclickable link runs nothing either
                    pass
        page.wait_for_timeout(500)
        state = page.evaluate(PROBE_JS)
        html = page.content()
        screenshot(page, name, full_page=False)
    finally:
        context.close()
    return {**state, "dialogs": dialogs, "html": html}


def test_the_probe_catches_a_script_that_runs(browser, tmp_path):
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="x" onerror="window.__pwned = 1"></body></html>')
    state = _visit(browser, control.as_uri(), "control.png")
    assert state["pwned"] == "1"


def test_feedback_page_runs_no_student_script(course, browser):
    page = course.root / "feedback" / STUDENT / paths.default_assignment() / f"{paths.default_assignment()}.html"
    state = _visit(browser, page.as_uri(), "feedback_xss.png")
    assert state["pwned"] is None and state["title"] != "PWNED" and not state["dialogs"], state
    assert "Student notes" in state["html"]  # the student's markdown is shown, only defused


def test_formgrader_page_runs_no_student_script(course, browser, tmp_path):
    con = sqlite3.connect(course.root / "gradebook.db")
    (submission_id,) = con.execute(
        "select sn.id from submitted_notebook sn join submitted_assignment sa on sn.assignment_id = sa.id "
        "where sa.student_id = ?", (STUDENT,)).fetchone()
    server = LabServer(root=course.root, state=tmp_path / "jupyter")
    t0 = time.monotonic()
    try:
        server.start(timeout=90)
        log(f"jupyter server for formgrader up on port {server.port}", t0)
        state = _visit(browser, server.url(f"formgrader/submissions/{submission_id}/"), "formgrader_xss.png")
    finally:
        server.stop()
    assert "Student notes" in state["html"], state["html"][:3000]  # it really is the submission page
    assert state["pwned"] is None and state["title"] != "PWNED" and not state["dialogs"], state
