"""The student release: generated fresh, free of solutions and hidden tests, and validated by nbgrader."""

from __future__ import annotations

import filecmp
import re

import nbformat
import pytest

from cnngrader.core import i18n, paths, reference
from cnngrader.tools.workspace import nbgrader

#: Every assignment in every edition: the Chinese ones are released and checked the same way.
ASSIGNMENTS = i18n.all_editions()


def _normalise(nb):
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        cell.get("metadata", {}).get("nbgrader", {}).pop("checksum", None)
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_fresh(fresh_course, repo_root, assignment):
    """Regenerating release/ from source/ reproduces the committed release exactly."""
    committed = repo_root / "release" / assignment
    if assignment != paths.default_assignment():
        nbgrader(fresh_course.root, "generate_assignment", assignment, "--force")
    regenerated = fresh_course.root / "release" / assignment
    cmp = filecmp.dircmp(committed, regenerated)
    assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
    for name in cmp.common_files:
        if name.endswith(".ipynb"):
            a = nbformat.read(str(committed / name), as_version=4)
            b = nbformat.read(str(regenerated / name), as_version=4)
            assert a == b, f"{name} differs from a fresh `nbgrader generate_assignment`: run `make release`"
        else:
            assert filecmp.cmp(committed / name, regenerated / name, shallow=False), name
    for sub in cmp.common_dirs:
        inner = filecmp.dircmp(committed / sub, regenerated / sub)
        assert not inner.diff_files and not inner.left_only and not inner.right_only, sub


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(assignment):
    release = paths.release_notebook(assignment)
    text = release.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "run_check", "cnngrader"):
        assert marker not in text, marker
    # Markdown deliberately teaches one-line code forms; only code cells must not hold solution code.
    # A test cell's docstring states its property, which may be the formula the exercise gives.
    release_src = "\n".join(c.source.split("\n", 1)[-1] if reference.is_test_cell(c) else c.source
                            for c in nbformat.read(str(release), as_version=4).cells if c.cell_type == "code")
    for grade_id, src in reference.solution_cells(paths.source_notebook(assignment)).items():
        body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S).group(1)
        for line in body.splitlines():
            line = line.strip()
            if len(line) > 12 and not line.startswith("#"):
                assert line not in release_src, f"{grade_id}: solution line leaked: {line}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_conventions(assignment):
    nb = nbformat.read(str(paths.source_notebook(assignment)), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)) and all(not i.startswith("cell-") for i in ids)
    points = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta and meta.get("grade") and not meta.get("solution"):
            points += meta["points"]
            first = cell.source.splitlines()[0]
            assert first.startswith('"""') and first.endswith('"""'), cell.id
            assert meta["grade_id"].startswith("test_")
    assert points == 100


@pytest.mark.slow
def test_nbgrader_validate_source_passes(repo_root):
    proc = nbgrader(repo_root, "validate", str(paths.source_notebook()))
    assert "Success! Your notebook passes all the tests." in proc.stdout, proc.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nbgrader_validate_invert_release_nothing_passes(repo_root, assignment):
    proc = nbgrader(repo_root, "validate", "--invert", str(paths.release_notebook(assignment)), check=False)
    out = proc.stdout
    assert "Success! The notebook does not pass any tests." in out, out[-2000:]
