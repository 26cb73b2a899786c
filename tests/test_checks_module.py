"""The visible checks print one line per property, and name the likely bug on failure."""

from __future__ import annotations

import importlib.util

import pytest

from cnngrader import paths, submissions
from cnngrader.reference import load_reference


@pytest.fixture(scope="module")
def checks():
    path = paths.source_notebook().parent / "cnn_checks.py"
    spec = importlib.util.spec_from_file_location("cnn_checks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mutant(name: str) -> dict:
    ns = dict(load_reference())
    ns["np"] = __import__("numpy")
    exec((submissions.MUTANTS_DIR / f"{name}.py").read_text(), ns)
    return ns


@pytest.mark.parametrize("fn", paths.FUNCTIONS)
def test_reference_passes_every_visible_check(checks, capsys, fn):
    ref = load_reference()
    call = {"conv_backward": ("conv_forward", "conv_backward"), "pool_backward": ("pool_forward", "pool_backward")}
    getattr(checks, f"check_{fn}")(*(ref[n] for n in call.get(fn, (fn,))))
    out = capsys.readouterr().out
    assert "[FAIL]" not in out and f"All visible checks passed for {fn}." in out and "[pass]" in out


@pytest.mark.parametrize("mutant, fn, hint", [
    ("conv_forward__stride_forgotten", "conv_forward", "multiply h and w by the stride"),
    ("conv_single_step__returns_array", "conv_single_step", "b.item()"),
    ("conv_forward__caches_padded_input", "conv_forward", "not the padded copy"),
    ("distribute_value__precedence", "distribute_value", "dz / (n_H * n_W)"),
    ("create_mask_from_window__mask_of_min", "create_mask_from_window", "not np.min"),
    ("pool_backward__max_assign_not_add", "pool_backward", "windows overlap here"),
    ("conv_backward__db_last_example", "conv_backward", "over every example"),
])
def test_failures_show_expected_actual_and_hint(checks, capsys, mutant, fn, hint):
    ns = _mutant(mutant)
    call = {"conv_backward": ("conv_forward", "conv_backward"), "pool_backward": ("pool_forward", "pool_backward")}
    getattr(checks, f"check_{fn}")(*(ns[n] for n in call.get(fn, (fn,))))
    out = capsys.readouterr().out
    assert "[FAIL]" in out and "expected" in out and "got" in out
    assert hint in out, out


def test_blank_function_says_not_implemented(checks, capsys):
    def zero_pad(X, pad):
        raise NotImplementedError()

    checks.check_zero_pad(zero_pad)
    assert "is not implemented yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.require_implemented(zero_pad)
