"""The mutant catalogue is edits against the reference, and every edit still means a bug."""

from __future__ import annotations

import ast
import tomllib

import numpy as np
import pytest

from cnngrader.core import reference, spec
from cnngrader.tools import mutants
from cnngrader.tools.mutants import EditError, apply_edits

LINES = ["def f(x):", "    y = x + 1", "    for i in range(3):", "        y += i", "    return y"]


def test_replace_keeps_the_indentation():
    """A replaced line keeps the old line's indentation, also for each line of a multi-line new."""
    out = apply_edits(LINES, [{"old": "y += i", "new": "y -= i\n    y *= 2"}])
    assert out[3:5] == ["        y -= i", "            y *= 2"]


def test_delete_and_insert():
    """delete removes the line; after/before insert at the anchor's indentation."""
    out = apply_edits(LINES, [{"old": "y += i", "delete": True},
                              {"after": "for i in range(3):", "new": "pass"},
                              {"before": "return y", "new": "y = 0"}])
    assert out == ["def f(x):", "    y = x + 1", "    for i in range(3):", "    pass", "    y = 0", "    return y"]


@pytest.mark.parametrize("edit, message", [
    ({"old": "z = 1", "new": "z = 2"}, "is not in"),
    ({"old": "y", "new": "z"}, "is not in"),
    ({"old": "y += i", "spread": "z"}, "an edit needs"),
])
def test_an_edit_that_no_longer_applies_fails_loudly(edit, message):
    """A missing anchor or an unknown edit kind is an error, never a silently correct mutant."""
    with pytest.raises(EditError, match=message):
        apply_edits(LINES, [edit])


def test_a_repeated_anchor_is_refused():
    """An anchor must name one line; two matches are ambiguous."""
    with pytest.raises(EditError, match="occurs 2 times"):
        apply_edits(LINES + ["    y += i"], [{"old": "y += i", "new": "y"}])


def test_the_catalogue_is_the_74_mutants_and_nothing_else():
    """Every entry of mutants.toml is a mutant of a graded function, with a one-line bug."""
    with open(mutants.catalogue_file(), "rb") as fh:
        table = tomllib.load(fh)
    found = mutants.catalogue()
    assert [m.name for m in found] == sorted(table) and len(found) == 74
    for m in found:
        assert m.function in spec.load().function_names and "\n" not in m.bug and m.bug
        assert set(table[m.name]) == {"bug", "edits"} and table[m.name]["edits"]


def test_only_edits_are_stored():
    """No full copy of a reference function is stored: the catalogue is edits, the variants are rewrites."""
    folder = mutants.catalogue_file().parent
    assert not list(folder.glob("*__*.py")), "mutants are generated from mutants.toml, never stored"
    assert not (folder.parents[2] / "tests" / "mutants").exists()


def _inputs(function: str, ref: dict) -> list[tuple]:
    """Small varied inputs per function: several strides and pads, both pooling modes."""
    out = []
    for seed, (f, stride, pad) in enumerate([(2, 1, 0), (3, 2, 1), (2, 2, 2), (1, 3, 0)]):
        r = np.random.default_rng(seed)
        A = r.standard_normal((2, 5 + seed, 4 + seed % 2, 3))
        W, b = r.standard_normal((f, f, 3, 2)), r.standard_normal((1, 1, 1, 2))
        conv_hp, pool_hp = {"stride": stride, "pad": pad}, {"f": f, "stride": stride}
        if function == "zero_pad":
            out.append((A, pad))
        elif function == "conv_single_step":
            out.append((r.standard_normal((f, f, 3)), r.standard_normal((f, f, 3)), r.standard_normal((1, 1, 1))))
        elif function == "conv_forward":
            out.append((A, W, b, conv_hp))
        elif function == "conv_backward":
            Z, cache = ref["conv_forward"](A, W, b, conv_hp)
            out.append((r.standard_normal(Z.shape), cache))
        elif function == "create_mask_from_window":
            out.append((r.standard_normal((f + 1, f + 2)),))
        elif function == "distribute_value":
            out.append((float(r.standard_normal()), (f, f + 1)))
        else:
            for mode in ("max", "average"):
                P, cache = ref["pool_forward"](A, pool_hp, mode)
                out.append((A, pool_hp, mode) if function == "pool_forward" else (r.standard_normal(P.shape), cache, mode))
    return out


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, dict):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype.kind == b.dtype.kind and np.allclose(a, b)


@pytest.mark.parametrize("mutant", mutants.catalogue(), ids=lambda m: m.name)
def test_every_mutant_is_a_real_bug(mutant):
    """The generated function compiles, defines only its function, and differs from the reference somewhere."""
    tree = ast.parse(mutant.source)
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == [mutant.function]
    ref = reference.load_reference()
    ns = dict(ref)
    exec(mutant.source, ns)  # noqa: S102 - the course's own fixtures
    differs = False
    with np.errstate(all="ignore"):
        for args in _inputs(mutant.function, ref):
            try:
                got = ns[mutant.function](*args)
            except Exception:  # noqa: BLE001 - a crash is a difference too
                differs = True
                break
            if not _same(got, ref[mutant.function](*args)):
                differs = True
                break
    assert differs


def test_generated_files_hold_the_generated_sources():
    """files() and path() give code that wants paths the same text catalogue() holds."""
    files = mutants.files()
    assert len(files) == 74
    first = mutants.catalogue()[0]
    assert mutants.path(first.name).read_text() == first.source == files[0].read_text()
    with pytest.raises(KeyError):
        mutants.path("no_such__mutant")
