"""nbgrader's Validate tells the truth: it fails exactly when a visible check fails, naming the function.

Over the whole catalogue (the blank release, the reference, 74 mutants, 17
correct variants) every notebook is run the way Validate runs it, every cell
with errors allowed, and the graded test cells that fail are collected. That
runs in-process, so the catalogue takes seconds rather than a kernel each; the
real ``nbgrader validate`` command, from a copy of the release folder with no
course configuration, confirms the same verdicts on a sample.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnngrader.core import paths, spec
from cnngrader.tools import mutants, student_loop, submissions

# The catalogue run takes about 20 s: part of the full suite, not of make test-fast.
pytestmark = pytest.mark.slow

MUTANTS = mutants.files()
VARIANTS = sorted(submissions.variants_dir().glob("*.py"))


@pytest.fixture(scope="module")
def loop() -> student_loop.Summary:
    """The whole catalogue run like Run All and Validate, once (from a copy of the release folder)."""
    return student_loop.measure()


def test_blank_release_fails_for_every_function(loop):
    failed = loop.blank.validate_failed
    assert sorted(failed) == sorted(spec.load().function_names)
    assert all("not implemented yet" in why for why in failed.values())
    assert loop.blank.check_failed == set(spec.load().function_names)


def test_reference_validates(loop):
    assert loop.reference.validate_failed == {}
    assert loop.reference.check_failed == set()
    assert all(f"All visible checks passed for {fn}." in loop.reference.check_output[fn] for fn in spec.load().function_names)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: p.stem)
def test_correct_variants_validate(loop, variant):
    result = loop.variants[variant.stem]
    assert result.validate_failed == {} and result.check_failed == set(), result.validate_failed


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda p: p.stem)
def test_every_mutant_fails_validate_naming_its_function(loop, mutant):
    own = student_loop.own(mutant.stem)
    result = loop.mutants[mutant.stem]
    assert list(result.validate_failed) == [own], result.validate_failed
    assert result.validate_failed[own].startswith(f"AssertionError: {own}: visible check failed")
    # Run All shows the failure in the function's own check cell, and in no other.
    assert result.check_failed == {own}, {fn: result.check_output[fn] for fn in result.check_failed}


def test_report_counts(loop):
    text = student_loop.report(loop, paths.release_notebook().parent)
    n = len(MUTANTS)
    assert f"mutants caught by their own function's visible check: {n}/{n}" in text
    assert f"(isolation leaks): 0/{n}" in text
    assert f"variants passing every visible check and Validate: {len(VARIANTS)}/{len(VARIANTS)}" in text


# ---------------------------------------------------------------------------
# The real command, on a sample
# ---------------------------------------------------------------------------

def _validate(folder: Path, nb: nbformat.NotebookNode) -> subprocess.CompletedProcess:
    path = folder / f"{paths.default_assignment()}.ipynb"
    nbformat.write(nb, str(path))
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("CNN_COURSE_ROOT", None)
    return subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "validate", path.name], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blank", "reference", "conv_backward__unpad_negative_index",
                                  "pool_forward__stride_forgotten", "distribute_value__sum_not_product"])
def test_nbgrader_validate_agrees(tmp_path, name):
    folder = tmp_path / paths.default_assignment()
    shutil.copytree(paths.release_notebook().parent, folder)
    nb = {"blank": submissions.read_release, "reference": submissions.solved}.get(name, lambda: None)() \
        or submissions.with_files(submissions.mutant(name))
    out = _validate(folder, nb)
    text = out.stdout + out.stderr
    if name == "reference":
        assert "Success! Your notebook passes all the tests." in text, text[-3000:]
    elif name == "blank":
        assert "not implemented yet" in text and "Success" not in text, text[-3000:]
    else:
        own = name.split("__")[0]
        assert f"{own}: visible check failed" in text and "Success" not in text, text[-3000:]
        others = [fn for fn in spec.load().function_names if fn != own and f"{fn}: visible check failed" in text]
        assert not others, others
