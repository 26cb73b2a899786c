"""The visible checks tell the truth: they catch every catalogued bug, blame only its function, and hint right.

Every mutant in ``grading/mutants.toml`` (the reference with one function replaced
by a single-bug version) and every correct variant in ``grading/variants`` is
run through the released ``cnn_checks`` module in-process, the way the
notebook calls it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from cnngrader.core import codec, paths, spec
from cnngrader.core.hidden_data import HiddenData
from cnngrader.tools import mutants, submissions

checks_data = spec.load().module("checks_data")

MUTANTS = mutants.files()
VARIANTS = sorted(submissions.variants_dir().glob("*.py"))

#: Hints a crash may show instead of its family's (they read the exception, and say nothing wrong).
CRASH_HINTS = {"broadcast": "two arrays of different shapes", "integer": "integer division",
               "loops": "check the loop ranges"}
CRASH_ALLOWED = {"unpadded_slice": ("broadcast",), "unpad_forgotten": ("broadcast",),
                 "window_end": ("broadcast", "loops"), "size": ("integer", "broadcast", "loops"),
                 "average_spread": ("broadcast",), "loop_range": ("loops", "broadcast"),
                 "mask_times_slice": ("broadcast",)}


@pytest.fixture(scope="module")
def checks():
    return checks_data.load_checks()


def _namespace(*files: Path) -> dict:
    ns: dict = {"np": np, "__name__": "__main__"}
    for name in spec.load().function_names:
        exec(submissions.reference_cells()[name], ns)  # noqa: S102 - the course's own reference
    for path in files:
        exec(path.read_text(), ns)  # noqa: S102 - the course's own fixtures
    return ns


def _results(checks, ns: dict) -> dict:
    return {fn: checks.evaluate(fn, ns[fn]) for fn in spec.load().function_names}


_MUTANT_RESULTS: dict[str, dict] = {}


def _mutant_results(checks, mutant: Path) -> dict:
    """Every function's check results with one mutant swapped in, computed once per mutant."""
    if mutant.stem not in _MUTANT_RESULTS:
        _MUTANT_RESULTS[mutant.stem] = _results(checks, _namespace(mutant))
    return _MUTANT_RESULTS[mutant.stem]


def test_reference_passes_every_visible_check(checks, capsys):
    for fn, result in _results(checks, _namespace()).items():
        assert result.status == checks.PASS, (fn, result.failures)
    checks.check_conv_forward(_namespace()["conv_forward"])
    out = capsys.readouterr().out
    assert "[FAIL]" not in out and "All visible checks passed for conv_forward." in out
    assert "published example" in out and "0.0489952035289" in out


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: p.stem)
def test_correct_variants_pass(checks, variant):
    for fn, result in _results(checks, _namespace(variant)).items():
        assert result.status == checks.PASS, (fn, result.failures)
        assert not any("hint:" in line for line in result.lines)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda p: p.stem)
def test_every_mutant_fails_its_own_check_only(checks, mutant):
    own = mutant.stem.split("__")[0]
    results = _mutant_results(checks, mutant)
    assert results[own].status == checks.FAIL, results[own].lines
    for fn, result in results.items():
        if fn != own:
            # Another function either passes, or waits for the broken one it calls.
            assert result.status == checks.PASS or (result.status == checks.BLOCKED and own in result.blocked_by), \
                (fn, result.status, result.failures)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda p: p.stem)
def test_hints_name_the_bug_and_only_the_bug(checks, mutant):
    own = mutant.stem.split("__")[0]
    family = checks_data.family_of(mutant.stem)
    lines = _mutant_results(checks, mutant)[own].lines
    hints = [line for line in lines if "hint:" in line]
    allowed = [checks.HINTS[family], *(CRASH_HINTS[c] for c in CRASH_ALLOWED.get(family, ()))]
    assert hints, f"no hint for {mutant.stem}"
    assert all(any(text in hint for text in allowed) for hint in hints), hints
    if family not in CRASH_ALLOWED:
        assert any(checks.HINTS[family] in hint for hint in hints)


def test_hints_do_not_give_code_away(checks):
    from cnngrader.core import reference

    solution_lines = {line.strip() for src in reference.solution_cells().values() for line in src.splitlines()
                      if len(line.strip()) > 12 and not line.strip().startswith(("#", '"""', "def "))}
    hints = " ".join(checks.HINTS.values())
    assert "np." not in hints and "+=" not in hints
    assert not [line for line in solution_lines if line in hints]


def test_no_visible_input_is_a_hidden_one(checks):
    """The hidden tests keep their meaning: no array a student sees in a visible check is graded."""
    def digests(value, out):
        if isinstance(value, np.ndarray) and value.size > 1:
            out.add(hashlib.sha1(np.ascontiguousarray(value, dtype=float).tobytes()).hexdigest())
        elif isinstance(value, tuple | list):
            for v in value:
                digests(v, out)
        elif isinstance(value, dict):
            for v in value.values():
                digests(v, out)
        return out

    visible: set[str] = set()
    for fn in spec.load().function_names:
        for case in checks.CASES[fn]():
            digests(case.build(), visible)
    hidden: set[str] = set()
    data = HiddenData()
    for check in (*spec.load().checks, *spec.load().probes().values()):
        for _, args, _ in data.cases(check.grade_id):
            digests(codec.to_args(args), hidden)
    assert visible and hidden and not visible & hidden


def test_checks_leave_the_students_random_state_alone(checks):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    _results(checks, _namespace())
    assert np.array_equal(np.random.get_state()[1], before)


def test_data_file_is_fresh(tmp_path):
    folder = paths.source_notebook().parent
    committed = json.loads((folder / "cnn_checks_data.json").read_text())
    assert checks_data.build(folder) == committed, "run `make checks-data` (or `make release`)"


def test_require_checks_raises_naming_function_and_property(checks):
    ns = _namespace(submissions.mutant("conv_forward__stride_forgotten"))
    with pytest.raises(AssertionError, match=r"conv_forward: visible check failed: .*stride 2"):
        checks.require_checks(ns["conv_forward"])
    checks.require_checks(_namespace()["conv_forward"])  # passes quietly apart from its summary

    def zero_pad(X, pad):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.require_checks(zero_pad)


def test_gradient_helpers(checks):
    x = np.array([1.0, -2.0, 3.0])
    grad = checks.numerical_gradient(lambda: float(np.sum(x ** 3)), x)
    assert checks.relative_error(grad, 3 * x ** 2) < 1e-8
    assert np.array_equal(x, [1.0, -2.0, 3.0])  # restored after every nudge
    assert checks.relative_error(np.zeros(3), np.zeros(3)) == 0.0


def test_source_test_cells_charge_one_property_under_plain_nbgrader(checks):
    """Run as plain nbgrader would, a forgotten stride fails the stride cell only, not every conv_forward cell."""
    import nbformat

    from cnngrader import incell
    from cnngrader.core.reference import grade_id, is_test_cell

    assert incell.HIDDEN_TESTS_JUDGED == checks.HIDDEN_TESTS_JUDGED
    nb = nbformat.read(str(paths.source_notebook()), as_version=4)
    cells = {grade_id(c): c.source for c in nb.cells if is_test_cell(c) and "conv_forward" in (grade_id(c) or "")}
    failed = []
    for gid, source in cells.items():
        ns = _namespace(submissions.mutant("conv_forward__stride_forgotten"))
        ns["require_checks"] = checks.require_checks
        try:
            exec(source, ns)  # noqa: S102 - the course's own test cells
        except AssertionError:
            failed.append(gid)
    assert failed == ["test_conv_forward_stride"]


def test_a_non_number_result_fails_the_value_check_without_crashing(checks):
    """conv_single_step returning a string is a wrong value, not a crash of the check itself."""
    result = checks.evaluate("conv_single_step", lambda a_slice_prev, W, b: "not a number")
    assert result.status == checks.FAIL and any("value" in line for line in result.failures)
