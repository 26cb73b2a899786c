"""The solved notebook runs top to bottom in a real kernel."""

from __future__ import annotations

import time

import pytest
from nbclient import NotebookClient

from cnngrader.core import paths
from cnngrader.tools import submissions

LIMIT_SECONDS = 120  # generous: it takes about 2 s here


@pytest.mark.slow
def test_solved_notebook_executes(tmp_path):
    folder = tmp_path / paths.default_assignment()
    import shutil

    shutil.copytree(paths.release_notebook().parent, folder)
    nb = submissions.solved()
    started = time.monotonic()
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    elapsed = time.monotonic() - started
    print(f"solved notebook executed in {elapsed:.2f} s")
    assert elapsed < LIMIT_SECONDS
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "[FAIL]" not in text
    assert text.count("All visible checks passed for") == 8
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
