"""A term in the browser: a student fetches, validates and submits by clicking; the instructor sees it.

The student's JupyterLab is set up as ``make lab`` sets it up (``student/``:
its ``nbgrader_config.py`` and its ``.jupyter`` with the instructor's
extensions switched off), and runs as student ``zoe`` (the id set as ``--student`` would set it). She opens the
Assignments panel, clicks Fetch, works on the notebook, clicks Validate and
then Submit. The instructor collects and grades with the course's own
commands, and formgrader (``make formgrader``) lists the submission under the
name imported from the roster.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from browser_helpers import CHROMIUM, LabServer, log, open_notebook, screenshot
from conftest import BATCH_OK, TEST_CONFIG, TEST_LIMITS

from cnngrader.core import paths
from cnngrader.tools import submissions
from cnngrader.tools.workspace import make_course, tool_env

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (install Debian's chromium package)"),
]

REPO = Path(__file__).resolve().parents[1]
A = paths.default_assignment()
STUDENT = "zoe"


def _nbgrader(root: Path, env: dict, *args: str) -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), *args], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"nbgrader {args}: {proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-term")
    exchange = tmp / "exchange"
    exchange.mkdir(mode=0o1777)
    course = make_course(tmp / "course", limits=TEST_LIMITS, extra_config=TEST_CONFIG)
    env = tool_env(course.root, CNN_EXCHANGE=str(exchange), JUPYTER_DATA_DIR=str(tmp / "instructor-data"))
    roster = tmp / "roster.csv"
    with open(roster, "w", newline="") as fh:
        csv.writer(fh).writerows([["id", "first_name", "last_name", "email"],
                                  [STUDENT, "Zoe", "Ziegler", "zoe@example.edu"]])
    _nbgrader(course.root, env, "db", "student", "import", str(roster))
    _nbgrader(course.root, env, "release_assignment", A)
    workspace = tmp / "student"
    workspace.mkdir()
    shutil.copy(REPO / "student" / "nbgrader_config.py", workspace / "nbgrader_config.py")
    # Every test process runs as one OS user; the student id nbgrader would take from the
    # login is set the way the --student flag sets it.
    with open(workspace / "nbgrader_config.py", "a") as fh:
        fh.write(f'\nc.CourseDirectory.student_id = "{STUDENT}"\n')
    return {"tmp": tmp, "course": course, "env": env, "exchange": exchange, "workspace": workspace}


def _item(page, list_id: str, text: str):
    return page.locator(f"#{list_id} .list_item:not(.nested_list_item)", has_text=text)


@pytest.mark.timeout(420, method="signal")
def test_student_fetches_validates_and_submits_by_clicking(term, browser):
    from playwright.sync_api import expect

    t0 = time.monotonic()
    server = LabServer(root=term["workspace"], state=term["tmp"] / "student-jupyter",
                       extra_env={"CNN_EXCHANGE": str(term["exchange"])},
                       config_seed=REPO / "student" / ".jupyter")
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        server.start(timeout=90)
        log(f"student lab up on port {server.port}", t0)
        page.goto(server.url("lab", reset=""), wait_until="domcontentloaded")
        page.wait_for_function("() => Boolean(window.jupyterapp && window.jupyterapp.commands"
                               " && window.jupyterapp.commands.hasCommand('nbgrader:open-assignment-list'))",
                               timeout=60_000)
        # The student's view: no instructor tools.
        commands = page.evaluate("() => ['nbgrader:open-formgrader', 'nbgrader:open-course-list',"
                                 " 'nbgrader:open-create-assignment'].filter(c => window.jupyterapp.commands"
                                 ".hasCommand(c))")
        assert commands == [], commands

        page.evaluate("() => window.jupyterapp.commands.execute('nbgrader:open-assignment-list')")
        released = _item(page, "released_assignments_list", A)
        expect(released).to_be_visible(timeout=60_000)
        released.get_by_role("button", name="Fetch").click()
        fetched = _item(page, "fetched_assignments_list", A)
        expect(fetched).to_be_visible(timeout=60_000)
        screenshot(page, "student_fetched.png")
        log("fetched by clicking", t0)

        # The student does the work (here: the reference solutions, as if typed in).
        notebook = term["workspace"] / A / f"{A}.ipynb"
        assert notebook.exists()
        nbformat.write(submissions.solved(), str(notebook))
        panel = open_notebook(page, server, f"{A}/{A}.ipynb")
        button = page.locator(f"{panel} .jp-NotebookPanel-toolbar jp-button.validate-button")
        button.click()
        dialog = page.locator(".jp-Dialog", has_text="Validation Results")
        expect(dialog).to_be_visible(timeout=90_000)
        expect(dialog.locator(".jp-Dialog-body")).to_contain_text("Success! Your notebook passes all the tests.")
        dialog.get_by_role("button", name="Ok").click()
        log("validated by clicking", t0)

        page.evaluate("() => window.jupyterapp.commands.execute('nbgrader:open-assignment-list')")
        fetched = _item(page, "fetched_assignments_list", A)
        expect(fetched).to_be_visible(timeout=60_000)
        fetched.get_by_role("button", name="Submit").click()
        expect(_item(page, "submitted_assignments_list", A)).to_be_visible(timeout=60_000)
        screenshot(page, "student_submitted.png")
        log("submitted by clicking", t0)
    finally:
        context.close()
        server.stop()
    inbound = list((term["exchange"] / paths.course_id() / "inbound").glob(f"{STUDENT}+{A}+*"))
    assert len(inbound) == 1, inbound


@pytest.mark.timeout(420, method="signal")
def test_formgrader_lists_the_submission_under_the_students_name(term, browser):
    from playwright.sync_api import expect

    course, env = term["course"], term["env"]
    _nbgrader(course.root, env, "collect", A)
    grade = subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--jobs", "1", "--no-progress"],
                           cwd=course.root, env=env, capture_output=True, text=True)
    assert grade.returncode in BATCH_OK, grade.stderr[-3000:]
    assert sum(course.scores()[STUDENT].values()) == 100
    server = LabServer(root=course.root, state=term["tmp"] / "instructor-jupyter",
                       extra_env={"CNN_EXCHANGE": str(term["exchange"]), "CNN_COURSE_ROOT": str(course.root)})
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    try:
        server.start(timeout=90)
        # Log in once (the token sets the session cookie the formgrader's API calls need).
        page.goto(server.url("tree"), wait_until="load")
        page.goto(f"{server.base}/formgrader/manage_submissions/{A}", wait_until="load")
        row = page.locator("tr", has_text="Ziegler")
        expect(row).to_be_visible(timeout=60_000)
        expect(row).to_contain_text("Zoe")
        expect(row).to_contain_text("100")
        screenshot(page, "formgrader_submissions.png")
    finally:
        context.close()
        server.stop()
