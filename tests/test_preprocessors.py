"""The hardening preprocessors, one at a time, on notebooks built in memory (nbgrader's own test style)."""

from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell
from traitlets.config import Config

from cnngrader.glue.preprocessors import SandboxedExecute, SanitizeOutputs, cap_outputs, output_size

SMALL = Config({"CnnLimits": {"max_output_bytes": 1000, "max_notebook_output_bytes": 3000}})


def _test_cell(source: str = "pass", outputs=()) -> nbformat.NotebookNode:
    cell = new_code_cell(source, outputs=list(outputs))
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test_x", "points": 1, "solution": False,
                                 "locked": True, "schema_version": 3}
    return cell


def _resources() -> dict:
    return {"nbgrader": {"assignment": "conv_step_by_step", "student": "s"}}


def test_sanitize_keeps_safe_output_and_drops_script():
    bundle = {"text/html": '<b>ok</b><script>alert(1)</script><img src="x" onerror="alert(2)">'
                           '<a href="javascript:alert(3)">x</a>',
              "application/javascript": "alert(4)", "image/svg+xml": "<svg onload='alert(5)'/>",
              "text/markdown": "<script>alert(6)</script>", "text/plain": "plain"}
    cell = new_code_cell("x", outputs=[new_output("display_data", data=bundle)])
    nb = new_notebook(cells=[cell])
    nb, _ = SanitizeOutputs().preprocess(nb, _resources())
    data = nb.cells[0].outputs[0]["data"]
    assert set(data) == {"text/html", "text/plain"}
    assert "<b>ok</b>" in data["text/html"]
    for bad in ("<script", "onerror", "javascript:", "alert("):
        assert bad not in data["text/html"], bad


def test_sanitize_defuses_student_markdown_and_raw_html():
    md = new_markdown_cell('Hi <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror="alert(3)">')
    raw = new_raw_cell("<script>alert(4)</script>", metadata={"format": "text/html", "raw_mimetype": "text/html"})
    nb = new_notebook(cells=[md, raw])
    nb, _ = SanitizeOutputs().preprocess(nb, _resources())
    assert "<script" not in nb.cells[0].source and "onerror" not in nb.cells[0].source
    assert "javascript:" not in nb.cells[0].source.lower() and "Hi" in nb.cells[0].source
    assert "format" not in nb.cells[1].metadata and "raw_mimetype" not in nb.cells[1].metadata


def test_sanitize_leaves_lesson_markdown_alone():
    from cnngrader.core import paths

    lesson = [c.source for c in nbformat.read(str(paths.release_notebook()), as_version=4).cells
              if c.cell_type == "markdown"]
    nb = new_notebook(cells=[new_markdown_cell(src) for src in lesson])
    nb, _ = SanitizeOutputs().preprocess(nb, _resources())
    assert [c.source for c in nb.cells] == lesson


def test_caps_apply_per_cell_and_per_notebook_but_never_to_test_cells():
    verdict = new_output("error", ename="HiddenTestFailure", evalue="x" * 5000, traceback=["x" * 5000])
    cells = [new_code_cell("p", outputs=[new_output("stream", name="stdout", text="a" * 600) for _ in range(3)])
             for _ in range(4)]
    nb = new_notebook(cells=[*cells, _test_cell(outputs=[verdict])])
    cap_outputs(nb, per_cell=1000, total=3000)
    sizes = [sum(output_size(o) for o in c.outputs if "truncated" not in json.dumps(o)) for c in nb.cells[:-1]]
    assert all(s <= 1000 for s in sizes) and sum(sizes) <= 3000
    assert any("truncated" in json.dumps(c.outputs) for c in nb.cells[:-1])
    assert nb.cells[-1].outputs == [verdict]  # a verdict's error must never be dropped (it would score as a pass)


def _msg(msg_type: str, content: dict) -> dict:
    return {"msg_type": msg_type, "header": {"msg_type": msg_type}, "parent_header": {}, "metadata": {},
            "content": content}


def test_every_output_path_counts_against_the_cap():
    ex = SandboxedExecute(config=SMALL)
    ex.reset_execution_trackers()
    ex.clear_before_next_output = False  # set by nbclient when a cell starts
    cell = new_code_cell("flood")
    big = {"data": {"text/plain": "x" * 700}, "metadata": {}, "transient": {"display_id": "d1"}}
    ex.process_message(_msg("display_data", big), cell, 0)
    for kind in ("update_display_data", "display_data", "execute_result", "error", "stream"):
        content = dict(big, execution_count=1) if kind == "execute_result" else big
        if kind == "error":
            content = {"ename": "E", "evalue": "v" * 700, "traceback": []}
        if kind == "stream":
            content = {"name": "stdout", "text": "s" * 700}
        ex.process_message(_msg(kind, content), cell, 0)
    text = json.dumps(cell.outputs)
    assert len(text) < 2500, len(text)
    assert "output truncated" in text
    # A later cell still has room, until the notebook's total is used up.
    other = new_code_cell("more")
    for _ in range(10):
        ex.process_message(_msg("stream", {"name": "stdout", "text": "t" * 900}), other, 1)
    assert sum(len(o.get("text", "")) for o in other.outputs) <= 1000 + 200
