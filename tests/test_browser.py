"""End to end in a real browser: the student notebook in JupyterLab 4 with nbgrader's lab extension.

A throwaway ``jupyter lab`` (from the project's venv) serves two copies of the
release folder, ``blank/`` (as released) and ``solved/`` (reference solutions
filled in). Headless Debian chromium, driven by Playwright, runs all cells of
each and checks what a student would see:

* blank: every figure loads and the visible check reports the function as not
  implemented yet;
* solved: every visible check passes, and nbgrader's Validate toolbar button
  reports success.

Screenshots go to ``test-artifacts/browser/``. Run with::

    PATH=.venv/bin:$PATH .venv/bin/python -m pytest tests/test_browser.py -s
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import nbformat
import pytest
from browser_helpers import (
    CHROMIUM,
    REPO,
    LabServer,
    log,
    markdown_images,
    open_notebook,
    output_text,
    run_all,
    screenshot,
    scroll_to,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found (install Debian's chromium package)"),
]

RELEASE = REPO / "release" / "conv_step_by_step"
NOTEBOOK = "conv_step_by_step.ipynb"
FUNCTIONS = [
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "pool_forward",
    "conv_backward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
]
FIGURES = ["zero_padding.png", "conv_sliding.gif", "window_corners.png", "pooling.png", "pool_backward.png"]
VIEWPORT = {"width": 1440, "height": 1000}
#: Playwright's default wait for one action or assertion; the long steps pass their own.
STEP_MS = 30_000


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LabServer]:
    """JupyterLab serving ``<tmp>/work`` with ``blank/`` and ``solved/`` copies of the release folder."""
    from cnngrader.tools.submissions import solved

    t0 = time.monotonic()
    tmp = tmp_path_factory.mktemp("browser")
    work = tmp / "work"
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
    for name in ("blank", "solved"):
        shutil.copytree(RELEASE, work / name, ignore=ignore)
    nbformat.write(solved(), str(work / "solved" / NOTEBOOK))

    server = LabServer(root=work, state=tmp / "jupyter")
    try:
        server.start(timeout=60)
        log(f"jupyter lab up on port {server.port}", t0)
        extensions = {ext["name"] for ext in server.page_config().get("federated_extensions", [])}
        assert "@jupyter/nbgrader" in extensions, (
            f"nbgrader's lab extension is not loaded (federated extensions: {sorted(extensions)})")
        yield server
    finally:
        server.stop()
        if request.session.testsfailed:
            print(f"\n--- jupyter lab log (tail) ---\n{server.log_tail()}")
        log("jupyter lab stopped", t0)


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(STEP_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        if errors:
            print("\n".join(["page errors:", *errors]))
        context.close()


def _open_and_run(page, lab: LabServer, path: str) -> tuple[str, int]:
    """Open the notebook, Run All Cells; return its panel selector and how many code cells ran."""
    t0 = time.monotonic()
    panel = open_notebook(page, lab, path)
    log(f"{path}: opened, all cells rendered, kernel idle", t0)
    t1 = time.monotonic()
    ran = run_all(page, path, panel)
    log(f"{path}: Run All Cells finished, {ran} code cells ran", t1)
    return panel, ran


@pytest.mark.timeout(100, method="signal")  # includes starting the server
def test_blank_release_figures_load_and_checks_fail(lab: LabServer, page) -> None:
    t0 = time.monotonic()
    path = f"blank/{NOTEBOOK}"
    panel, ran = _open_and_run(page, lab, path)
    # Failing test cells carry the raises-exception tag, so Run All goes on past them.
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(str(lab.root / path), as_version=4).cells)
    assert ran == code_cells, f"Run All stopped: only {ran} of {code_cells} code cells ran"

    images = markdown_images(page, panel)
    broken = [img for img in images if img["naturalWidth"] <= 0]
    assert not broken, f"figures that did not load: {broken}"
    names = {img["src"].split("images/", 1)[1].split("?", 1)[0] for img in images}
    assert set(FIGURES) <= names, f"missing figures: {sorted(set(FIGURES) - names)} (found {sorted(names)})"
    log(f"{len(images)} figures loaded: {sorted(names)}")

    text = output_text(page, panel)
    missing = [fn for fn in FUNCTIONS if f"[FAIL] {fn} is not implemented yet" not in text]
    assert not missing, f"no visible result for {missing}:\n{text[:4000]}"
    assert f"AssertionError: {FUNCTIONS[-1]} is not implemented yet" in text, text[-2000:]

    # The first visible check's report, and a figure, on screen.
    fail_output = page.locator(".jp-OutputArea-output", has_text="is not implemented yet")
    scroll_to(page.locator(f"{panel} .jp-CodeCell", has=fail_output).first)
    shot = screenshot(page, "blank_run_all.png", full_page=True)
    log(f"screenshot {shot.relative_to(REPO)}")
    figure = page.locator(".jp-RenderedMarkdown img[src*='images/conv_sliding.gif']")
    scroll_to(page.locator(f"{panel} .jp-MarkdownCell", has=figure).first)
    shot = screenshot(page, "blank_figure.png")
    log(f"screenshot {shot.relative_to(REPO)}")
    log("blank notebook", t0)


@pytest.mark.timeout(130, method="signal")
def test_solved_copy_passes_checks_and_validates(lab: LabServer, page) -> None:
    from playwright.sync_api import expect

    t0 = time.monotonic()
    path = f"solved/{NOTEBOOK}"
    panel, ran = _open_and_run(page, lab, path)
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(str(lab.root / path), as_version=4).cells)
    assert ran == code_cells, f"only {ran} of {code_cells} code cells ran (Run All stops at the first error)"

    text = output_text(page, panel)
    missing = [fn for fn in FUNCTIONS if f"All visible checks passed for {fn}." not in text]
    assert not missing, f"visible checks not all passed for {missing}:\n{text[:4000]}"
    assert "[FAIL]" not in text, text[:4000]
    errors = page.locator(f"{panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert "Error" not in " ".join(errors.all_text_contents())

    # nbgrader's Validate button: a toolbar jp-button (web component) with class validate-button.
    t1 = time.monotonic()
    button = page.locator(f"{panel} .jp-NotebookPanel-toolbar jp-button.validate-button")
    expect(button).to_have_text("Validate")
    button.click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=90_000)  # saves, then runs the notebook in a new kernel
    body = dialog.locator(".jp-Dialog-body")
    expect(body).to_contain_text("Success! Your notebook passes all the tests.")
    expect(dialog.locator(".validation-success")).to_have_count(1)
    log("Validate: success dialog", t1)
    shot = screenshot(page, "solved_validate.png")
    log(f"screenshot {shot.relative_to(REPO)}")
    dialog.get_by_role("button", name="Ok").click()
    expect(dialog).to_have_count(0)
    expect(button).to_have_text("Validate")
    log("solved notebook", t0)

