"""Feedback pages that work offline and say, at the top, what to fix.

``nbgrader_config.py`` makes :class:`OfflineFeedbackExporter` the exporter of
``nbgrader generate_feedback``. Its pages are one self-contained file each,
because ``nbgrader fetch_feedback`` copies only the HTML file:

* figures are embedded as ``data:`` URIs;
* math is rendered to MathML when the page is built (browsers display it
  natively), so no MathJax and no network are needed;
* no script, stylesheet or font is loaded from anywhere;
* long lines in code and outputs wrap.

At the top the page shows the score and one line per graded function, for
example "conv_forward 17/22: stride > 1 failed", plus any note from grading
(a missing or malformed notebook, a late penalty). The table of contents
names each function and property instead of nbgrader's "Test cell".
"""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
from datetime import UTC
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets.config import Config

from cnngrader.core import paths, record, spec
from cnngrader.core.i18n import Msg, render, translator
from cnngrader.core.reference import grade_id, is_test_cell

TEMPLATES = Path(__file__).resolve().parent / "templates" / "nbconvert"
NBGRADER_TEMPLATES = Path(__import__("nbgrader").__file__).resolve().parent / "server_extensions" / "formgrader" \
    / "templates"


def latex_to_mathml(latex: str, display: str) -> str:
    """MathML for a LaTeX formula, or the formula as code when it cannot be converted."""
    from latex2mathml.converter import convert

    try:
        return convert(latex, display=display)
    except Exception:  # noqa: BLE001 - an unsupported macro must not break the page
        return f"<code class=\"cnn-math\">{html.escape(latex)}</code>"


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with math rendered to MathML instead of left for MathJax."""

    def block_math(self, body: str) -> str:
        return latex_to_mathml(body, "block")

    def inline_math(self, body: str) -> str:
        return latex_to_mathml(body, "inline")

    def latex_environment(self, name: str, body: str) -> str:
        return latex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


class FeedbackSummary(NbGraderPreprocessor):
    """Per-function scores and failed properties, and the grading record's notes, for the page's top."""

    def preprocess(self, nb: Any, resources: dict) -> tuple[Any, dict]:
        info = resources.get("nbgrader", {})
        assignment = spec.load(info.get("assignment") or None)
        t = translator(info.get("assignment") or assignment.name)
        registry = assignment.by_grade_id()
        points = assignment.function_points()
        rows: dict[str, dict] = {fn: {"function": fn, "score": 0.0, "points": points[fn], "failed": [],
                                      "anchor": None} for fn in assignment.function_names}
        for cell in nb.cells:
            check = registry.get(grade_id(cell) or "")
            if check is None or not is_test_cell(cell):
                continue
            meta = cell.metadata.get("nbgrader", {})
            row = rows[check.function]
            row["anchor"] = row["anchor"] or check.grade_id
            score = float(meta.get("score") or 0.0)
            row["score"] += score
            prop = str(render(Msg(check.prop, "spec"), t))
            if score < float(meta.get("points") or check.points):
                row["failed"].append(prop)
            meta["cnn_title"] = f"{check.function}: {prop}"
        rec = _record(info.get("assignment"), info.get("student"))
        resources["cnn_feedback"] = {
            "functions": list(rows.values()),
            "notes": [str(n) for n in rec.attention] if rec else [],
            "lang": t.lang,
            "words": {key: str(render(msg, t)) for key, msg in _page_words().items()},
        }
        return nb, resources


def _page_words() -> dict[str, Msg]:
    """The fixed words of the feedback page (the template fills in numbers and names)."""
    return {"feedback": Msg("feedback"), "points": Msg("points"), "late": Msg("Late submission"),
            "points_off": Msg("points off"), "failed": Msg("failed"),
            "all_passed": Msg("all hidden tests passed")}


def _record(assignment: str | None, student: str | None) -> record.Record | None:
    if not assignment or not student:
        return None
    return record.load(assignment, student)


class OfflineFeedbackExporter(HTMLExporter):
    """nbgrader's feedback page, self-contained: embedded images, MathML math, no remote resources."""

    def __init__(self, config: Config | None = None, **kwargs: Any):
        # GenerateFeedback configures HTMLExporter for nbgrader's own template; this class's
        # section is more specific and wins.
        config = copy.deepcopy(config) if config is not None else Config()
        mine = config.OfflineFeedbackExporter
        mine.template_name = "cnn_feedback"
        mine.extra_template_basedirs = [str(NBGRADER_TEMPLATES), str(TEMPLATES)]
        # nbgrader's templates as a search root too, so ours can extend 'feedback/index.html.j2'.
        mine.extra_template_paths = [*config.HTMLExporter.get("extra_template_paths", []), str(NBGRADER_TEMPLATES)]
        mine.embed_images = True
        super().__init__(config=config, **kwargs)

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        cell = context.get("cell", {})
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        renderer = MathMLRenderer(escape=False, attachments=cell.get("attachments", {}), embed_images=True,
                                  path=path, anchor_link_text=self.anchor_link_text,
                                  exclude_anchor_links=self.exclude_anchor_links)
        return MarkdownWithMath(renderer=renderer).render(source)


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")


def complete_feedback_folder(assignment: str, student: str, notebooks: list[str]) -> None:
    """Post-convert hook of generate_feedback: every feedback folder gets what release_feedback reads.

    ``nbgrader release_feedback`` stops for the whole class at the first
    feedback folder without ``timestamp.txt`` or ``submission_secret.txt``
    (a submission copied in by hand rather than through ``nbgrader submit``).
    Such folders get a timestamp (the notebook's time) and a fresh secret:
    the release then goes through, and those students, who have no submission
    in their exchange cache to match, simply find nothing to fetch.

    ``fetch_feedback`` looks for feedback under the names of the notebooks the
    student submitted. A student whose notebook was missing (renamed) would
    find none, so the page is also written under each submitted notebook's
    name: it opens with why the notebook was graded as blank.
    """
    import secrets
    from datetime import datetime

    root = paths.course_root()
    for notebook in notebooks:
        parts = Path(notebook).parts
        if len(parts) < 3:
            continue
        student_id, assignment_id = parts[-3], parts[-2]
        folder = root / "feedback" / student_id / assignment_id
        if not folder.is_dir():
            continue
        stamp = folder / "timestamp.txt"
        if not stamp.exists():
            when = datetime.fromtimestamp(os.stat(notebook).st_mtime, tz=UTC)
            stamp.write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        secret = folder / "submission_secret.txt"
        if not secret.exists():
            secret.write_text(secrets.token_hex(64))
        page = folder / f"{Path(notebook).stem}.html"
        submitted = root / "submitted" / student_id / assignment_id
        if page.exists() and submitted.is_dir() and not (submitted / Path(notebook).name).exists():
            for other in submitted.glob("*.ipynb"):
                if _SAFE_NAME.fullmatch(other.stem) and not (folder / f"{other.stem}.html").exists():
                    shutil.copyfile(page, folder / f"{other.stem}.html")
