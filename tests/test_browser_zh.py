"""The Chinese edition in a real browser: JupyterLab (menus in Chinese, as ``make lab LANG=zh`` sets it)
serving ``release/conv_step_by_step_zh``, driven by Playwright in headless Debian chromium.

* blank: the lesson text is Chinese, every figure (drawn in Chinese) loads, and every
  visible check says, in Chinese, that its function is not implemented yet;
* solved: every visible check passes in Chinese, and nbgrader's Validate succeeds.

Screenshots go to ``test-artifacts/browser/zh_*.png``.
"""

from __future__ import annotations

import json
import re
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

EDITION = "conv_step_by_step_zh"
RELEASE = REPO / "release" / EDITION
NOTEBOOK = f"{EDITION}.ipynb"
FUNCTIONS = ["zero_pad", "conv_single_step", "conv_forward", "pool_forward", "conv_backward",
             "create_mask_from_window", "distribute_value", "pool_backward"]
FIGURES = ["zero_padding.png", "conv_sliding.gif", "window_corners.png", "pooling.png", "pool_backward.png"]
CJK = re.compile(r"[\u4e00-\u9fff]")
#: JupyterLab's own menus in Chinese (the pinned language pack), as scripts/lab.sh sets it for LANG=zh.
LOCALE = {"@jupyterlab/translation-extension/plugin.jupyterlab-settings": {"locale": "zh_CN"}}


def _zh(english: str, **params: str) -> str:
    """The released module's Chinese for ``english`` (from its messages.json), formatted."""
    messages = json.loads((RELEASE / "messages.json").read_text(encoding="utf-8"))["messages"]
    assert english in messages, english
    return messages[english].format(**params)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LabServer]:
    from cnngrader.tools.submissions import solved

    t0 = time.monotonic()
    tmp = tmp_path_factory.mktemp("browser_zh")
    work = tmp / "work"
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")
    for name in ("blank", "solved"):
        shutil.copytree(RELEASE, work / name, ignore=ignore)
    nbformat.write(solved(release=RELEASE / NOTEBOOK), str(work / "solved" / NOTEBOOK))
    server = LabServer(root=work, state=tmp / "jupyter")
    for rel, value in LOCALE.items():
        path = server.state / "lab-settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    try:
        server.start(timeout=60)
        log(f"jupyter lab (zh) up on port {server.port}", t0)
        yield server
    finally:
        server.stop()
        if request.session.testsfailed:
            print(f"\n--- jupyter lab log (tail) ---\n{server.log_tail()}")


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def _open_and_run_all(page, lab: LabServer, path: str) -> str:
    """Open the notebook and Run All Cells; every code cell must have run. Returns the panel selector."""
    panel = open_notebook(page, lab, path)
    ran = run_all(page, path, panel)
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(str(lab.root / path), as_version=4).cells)
    assert ran == code_cells, f"Run All stopped: only {ran} of {code_cells} code cells ran"
    return panel


@pytest.mark.timeout(120, method="signal")
def test_chinese_blank_release_shows_chinese_lesson_figures_and_checks(lab: LabServer, page) -> None:
    panel = _open_and_run_all(page, lab, f"blank/{NOTEBOOK}")

    lesson = " ".join(page.locator(f"{panel} .jp-RenderedMarkdown").all_text_contents())
    assert "卷积" in lesson and "池化" in lesson and "零填充" in lesson
    menus = " ".join(page.locator("#jp-menu-panel .lm-MenuBar-itemLabel").all_text_contents())
    assert "文件" in menus, f"JupyterLab's menus are not in Chinese: {menus}"

    images = markdown_images(page, panel)
    assert not [img for img in images if img["naturalWidth"] <= 0], images
    names = {img["src"].split("images/", 1)[1].split("?", 1)[0] for img in images}
    assert set(FIGURES) <= names, names

    text = output_text(page, panel)
    template = "{function} is not implemented yet (it raises NotImplementedError)"
    missing = [fn for fn in FUNCTIONS if _zh(template, function=fn) not in text]
    assert not missing, f"no Chinese 'not implemented' line for {missing}:\n{text[:3000]}"
    figure = page.locator(".jp-RenderedMarkdown img[src*='images/pool_backward.png']")
    scroll_to(page.locator(f"{panel} .jp-MarkdownCell", has=figure).first)
    screenshot(page, "zh_blank_figure.png")
    failing = page.locator(".jp-OutputArea-output", has_text=_zh(template, function="zero_pad"))
    scroll_to(failing.first)
    screenshot(page, "zh_blank_checks.png")


@pytest.mark.timeout(150, method="signal")
def test_chinese_solved_copy_passes_checks_in_chinese_and_validates(lab: LabServer, page) -> None:
    from playwright.sync_api import expect

    panel = _open_and_run_all(page, lab, f"solved/{NOTEBOOK}")
    text = output_text(page, panel)
    missing = [fn for fn in FUNCTIONS if _zh("All visible checks passed for {function}.", function=fn) not in text]
    assert not missing, f"Chinese pass lines missing for {missing}:\n{text[:3000]}"
    assert "[FAIL]" not in text and CJK.search(text)

    button = page.locator(f"{panel} .jp-NotebookPanel-toolbar jp-button.validate-button")
    button.click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=90_000)
    expect(dialog.locator(".jp-Dialog-body")).to_contain_text("Success! Your notebook passes all the tests.")
    screenshot(page, "zh_solved_validate.png")
