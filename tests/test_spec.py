"""Assignments are data: the spec loader, and a third assignment graded by the unchanged core.

``tests/fixtures/tiny_course`` is a whole course of one tiny assignment
("vector_ops": square, sum_of_squares, square_backward), defined only by
files: a notebook, a grading spec, its input makers and a visible helper. The
fast tests build its hidden data and judge solutions in process; the slow one
releases it with nbgrader and grades three submissions with ``cnn grade``,
sandbox and all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnngrader.core import hidden_data, paths, record, reference, spec
from cnngrader.core.hidden_data import HiddenData
from cnngrader.sandbox.verdicts import run_in_process

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "tiny_course"
TINY = "vector_ops"

#: What must never name a course's content: the core, the sandbox, the nbgrader glue, and the
#: tools an instructor runs on any assignment (the catalogue tools serve the first one).
CORE = sorted([*(REPO / "cnngrader").glob("core/*.py"), *(REPO / "cnngrader").glob("sandbox/*.py"),
               *(REPO / "cnngrader").glob("glue/*.py"), REPO / "cnngrader" / "incell.py",
               *(REPO / "cnngrader" / "tools" / f"{m}.py" for m in ("batch", "report", "hooks", "cli"))])


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture course, with the repository's nbgrader configuration, as the course root."""
    root = tmp_path / "tiny"
    shutil.copytree(FIXTURE, root)
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    monkeypatch.setenv("CNN_COURSE_ROOT", str(root))
    monkeypatch.delenv("CNN_ASSIGNMENT", raising=False)
    monkeypatch.delenv("CNN_HIDDEN_DATA", raising=False)
    monkeypatch.delenv("CNN_DB_URL", raising=False)
    return root


def _spec_file(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "source" / "a" / "grading"
    folder.mkdir(parents=True)
    (folder / "cases.py").write_text(
        "from cnngrader.core.spec import Case\n\ndef make_x(n):\n    return Case((n,), f'n={n}')\n")
    path = folder / "spec.toml"
    path.write_text('[assignment]\nid = "a"\n\n[[functions]]\nname = "f"\n\n' + body)
    return path


GOOD_CHECK = '[[checks]]\ngrade_id = "test_f"\nfunction = "f"\npoints = 2\nproperty = "p"\ncompare = "array"\n' \
             'cases = [{make = "x", n = 3}]\n'


def test_a_minimal_spec_loads(tmp_path: Path):
    """One function, one check: points, cases from the maker, defaults for everything else."""
    a = spec.load_file(_spec_file(tmp_path, GOOD_CHECK))
    (check,) = a.checks
    assert a.function_points() == {"f": 2} and a.notebook_name == "a"
    assert check.cases[0].args == (3,) and check.expect == "reference" and check.output is None


@pytest.mark.parametrize("edit, message", [
    (("compare = \"array\"", "compare = \"close_enough\""), "compare must be one of"),
    (("function = \"f\"", "function = \"g\""), "not in \\[\\[functions\\]\\]"),
    (("make = \"x\"", "make = \"y\""), "has no make_y"),
    (("points = 2", "points = -1"), "non-negative"),
    (("grade_id = \"test_f\"", "grade_id = \"test f\""), "identifier"),
    (("compare = \"array\"", "compare = \"gradient\""), "needs 'returns'"),
    (("property = \"p\"", "property = \"p\"\ntolerance = 3"), "unknown keys"),
])
def test_a_malformed_spec_names_the_problem(tmp_path: Path, edit, message):
    """Every mistake in a spec is refused at load time with words that say which entry is wrong."""
    with pytest.raises(spec.SpecError, match=message):
        spec.load_file(_spec_file(tmp_path, GOOD_CHECK.replace(*edit)))


def test_duplicate_grade_ids_are_refused(tmp_path: Path):
    with pytest.raises(spec.SpecError, match="duplicate"):
        spec.load_file(_spec_file(tmp_path, GOOD_CHECK + "\n" + GOOD_CHECK))


def test_an_unknown_assignment_is_a_lookup_error(tiny: Path):
    """A mistyped assignment id fails as 'no assignment', which the tools report without a traceback."""
    with pytest.raises(LookupError, match="no assignment 'vector_opps'"):
        spec.load("vector_opps")


def test_the_course_file_lists_the_assignments(tiny: Path):
    assert paths.assignments() == [TINY] and paths.course_id() == "tiny_course"
    assert spec.load().name == TINY and spec.load().limits == {"wall_seconds": 30.0}


def test_the_core_names_no_course_content():
    """No module of the grading core names a graded function of any assignment, or a case maker."""
    names = set(spec.load().function_names)
    names |= set(spec.load_file(FIXTURE / "source" / TINY / "grading" / "spec.toml").function_names)
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")
    offenders = {}
    for path in CORE:
        hits = sorted(set(pattern.findall(_code_only(path.read_text()))))
        if hits:
            offenders[path.name] = hits
    assert len(CORE) > 20 and not offenders


def _code_only(text: str) -> str:
    """The module without docstrings and comments (they may use the first course as an example)."""
    import ast
    import io
    import tokenize

    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    doc_lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            doc_lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    kept = "".join(line for k, line in enumerate(lines, 1) if k not in doc_lines)
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(kept).readline):
        if tok.type != tokenize.COMMENT:
            out.append(tok.string)
    return " ".join(out)


def _build_hidden(root: Path) -> HiddenData:
    a = spec.load(TINY, root)
    return HiddenData(hidden_data.build(paths.hidden_data_file(TINY, root), assignment=a))


def _namespace(**overrides: str) -> dict:
    cells = reference.solution_cells(FIXTURE / "source" / TINY / f"{TINY}.ipynb")
    cells.update(overrides)
    return reference.exec_cells(list(cells.values()))


def test_fixture_hidden_data_is_built_from_the_spec(tiny: Path):
    """Expected outputs come from the reference; the backward expectation from central differences."""
    data = _build_hidden(tiny)
    assert data.assignment == TINY and set(data.helpers) == {"square"}
    (_, args, expected), = data.cases("test_square_backward")
    dout, x = (np.asarray(a.array) for a in args)
    assert np.allclose(np.asarray(expected["dx"].array), 2 * x * dout, atol=1e-6)


def test_fixture_reference_passes_and_a_bug_costs_its_own_cells(tiny: Path):
    """The unchanged core judges the fixture: the reference passes everything; a bug in square
    costs square's cells only, because sum_of_squares is graded with the reference square."""
    data = _build_hidden(tiny)
    ids = [c.grade_id for c in spec.load(TINY).checks]
    right = _namespace()
    assert all(run_in_process(right, gid, data).passed for gid in ids)
    wrong = _namespace(square="def square(x):\n    return 2 * x\n")
    outcome = {gid: run_in_process(wrong, gid, data).passed for gid in ids}
    assert outcome == {**dict.fromkeys(ids, True), "test_square_values": False}
    strict = _namespace(sum_of_squares="def sum_of_squares(x):\n    return np.sum(square(x), keepdims=True)\n")
    verdict = run_in_process(strict, "test_sum_of_squares_value", data)
    assert not verdict.passed and verdict.failures[0].code == "not_a_scalar"


SLOW_PAIR_SUM = ("def pair_sum(x):\n    s = 0.0\n    for a in x:\n        for b in x:\n"
                 "            s += a * b\n    return float(s)\n")


#: Attacks on the speed check from a red-team pass, written against pair_sum: each must earn
#: nothing for speed. The student process walks the runner's stack frames to reach its code.
_FIND = """
import sys, os
def _find(name):
    f = sys._getframe()
    while f is not None and f.f_code.co_name != name:
        f = f.f_back
    return f
def _slow(x):
    s = 0.0
    for a in x:
        for b in x:
            s += a * b
    return float(s)
"""
SPEED_ATTACKS = {
    # Rebuild the timed inputs from the seed, if any copy of it is in this process, and precompute.
    "seedthief": _FIND + """
_MEMO = []
rf, sf = _find("_run_function"), _find("_student")
def _seeds(value):
    timed = value.get("timed") if isinstance(value, dict) else None
    return [t["seed"] for t in timed.values() if isinstance(t, dict) and "seed" in t] if isinstance(timed, dict) else []
if rf is not None and sf is not None:
    for value in (*rf.f_locals.values(), *sf.f_locals.values(), *sf.f_locals.get("job", {}).values()):
        if _seeds(value):
            raise SystemExit("found the seeds")
def pair_sum(x):
    return _slow(x)
""",
    # Ask for the next input before answering, answer the first call at once, batch the rest.
    "pipeliner": _FIND + """
def pair_sum(x):
    sf = _find("_student")
    if sf is not None and sf.f_locals.get("timed_fd") is not None and sf.f_locals.get("grade_id") in sf.f_locals.get("timed", {}):
        emit, tfd, g = sf.f_locals["emit"], sf.f_locals["timed_fd"], sf.f_globals
        first = _slow(x)
        emit(b"W", b"")
        g["_read_frame_fd"](tfd, g["MAX_JOB"])
        emit(b"K", g["encode_results"]([{"status": "ok", "value": first}]))
        rest = []
        for _ in range(int(sf.f_locals["timed"][sf.f_locals["grade_id"]]) - 1):
            emit(b"W", b"")
            _, payload = g["_read_frame_fd"](tfd, g["MAX_JOB"])
            args = g["codec"].to_args(g["codec"].loads(payload, max_bytes=g["MAX_JOB"]))
            rest.append({"status": "ok", "value": _slow(*args)})
        emit(b"K", g["encode_results"](rest))
        emit(b"R", g["encode_results"]([]))
        os._exit(0)
    return _slow(x)
""",
    # Ask for an input and never read it: the runner must not block writing it.
    "staller": _FIND + """
def pair_sum(x):
    sf = _find("_student")
    if sf is not None and sf.f_locals.get("grade_id") in sf.f_locals.get("timed", {}):
        sf.f_locals["emit"](b"W", b"")
        while True:
            pass
    return _slow(x)
""",
}


def test_a_speed_check_times_fresh_inputs_against_the_course_baseline(tiny: Path):
    """A double loop is right but not 5 times faster than the course's double loop: too_slow, and only there."""
    data = _build_hidden(tiny)
    verdict = run_in_process(_namespace(), "test_pair_sum_speed", data)
    assert verdict.passed, verdict.message
    slow = _namespace(pair_sum=SLOW_PAIR_SUM)
    assert run_in_process(slow, "test_pair_sum_value", data).passed
    verdict = run_in_process(slow, "test_pair_sum_speed", data)
    assert [f.code for f in verdict.failures] == ["too_slow"]
    cheat = _namespace(pair_sum="def pair_sum(x):\n    return 0.0\n")
    assert run_in_process(cheat, "test_pair_sum_speed", data).failures[0].code == "wrong_values"


def test_fresh_inputs_keep_the_shapes_and_change_the_values():
    """Timed inputs: same shapes and hyperparameters as the hidden case, values from the grading-time seed."""
    from cnngrader.sandbox import runner

    template = [(np.zeros((2, 3)), {"stride": 2}, 5)]
    a, b = runner.timed_inputs(template, 1), runner.timed_inputs(template, 2)
    assert a[0][0].shape == (2, 3) and a[0][1:] == ({"stride": 2}, 5)
    assert not np.allclose(a[0][0], b[0][0]) and np.array_equal(a[0][0], runner.timed_inputs(template, 1)[0][0])


def test_a_score_check_gives_partial_credit_on_its_scale(tiny: Path):
    """The scorer runs on the trusted side: 100% of the points above 0.9, half above 0.75, none below."""
    data = _build_hidden(tiny)
    gid = "test_fit_threshold_accuracy"
    good = run_in_process(_namespace(), gid, data)
    assert good.passed and good.fraction == 1.0
    skewed = run_in_process(_namespace(fit_threshold="def fit_threshold(x, y):\n    return 0.6\n"), gid, data)
    assert not skewed.passed and skewed.fraction == 0.5 and skewed.failures[0].code == "partial_score"
    bad = run_in_process(_namespace(fit_threshold="def fit_threshold(x, y):\n    return 5.0\n"), gid, data)
    assert bad.fraction == 0.0 and bad.failures[0].code == "below_threshold"
    odd = run_in_process(_namespace(fit_threshold="def fit_threshold(x, y):\n    return x\n"), gid, data)
    assert odd.fraction == 0.0 and odd.failures[0].code == "not_a_scalar"


def _submission(root: Path, student: str, **overrides: str) -> None:
    from cnngrader.tools.submissions import submit_release

    submit_release(root, student, TINY, overrides)


@pytest.mark.slow
def test_the_fixture_course_is_released_and_graded_by_cnn_grade(tiny: Path):
    """nbgrader releases the fixture; `cnn grade` grades it sandboxed, per its own spec and limits."""
    from cnngrader.tools.batch import function_scores
    from cnngrader.tools.workspace import nbgrader, tool_env

    subprocess.run([sys.executable, "-m", "cnngrader.tools.cli", "hidden-data"], cwd=tiny, env=tool_env(tiny), check=True,
                   capture_output=True)
    nbgrader(tiny, "generate_assignment", TINY, "--force")
    released = (tiny / "release" / TINY / f"{TINY}.ipynb").read_text()
    assert "return x * x" not in released and not (tiny / "release" / TINY / "grading").exists()
    _submission(tiny, "right")
    _submission(tiny, "wrong", square="def square(x):\n    return 2 * x\n", pair_sum=SLOW_PAIR_SUM,
                fit_threshold="def fit_threshold(x, y):\n    return 0.6\n")
    _submission(tiny, "blank", **{fn: f"def {fn}(*args):\n    raise NotImplementedError()\n"
                                  for fn in ("square", "sum_of_squares", "square_backward", "pair_sum", "fit_threshold")})
    for name, source in SPEED_ATTACKS.items():
        _submission(tiny, name, pair_sum=source)
    run = subprocess.run([sys.executable, "-m", "cnngrader.tools.cli", "grade", "--assignment", TINY, "--jobs", "2",
                          "--no-progress"], cwd=tiny, env=tool_env(tiny), capture_output=True, text=True)
    assert run.returncode in (0, 3), run.stderr[-2000:]
    assert "sq/4" in run.stdout and "total/18" in run.stdout
    scores = function_scores(paths.default_db_url(tiny), TINY, ["right", "wrong", "blank"])
    assert scores["right"] == {"square": 4, "sum_of_squares": 3, "square_backward": 3, "pair_sum": 4,
                               "fit_threshold": 4}
    # The speed check costs the loop-based pair_sum its 2 points; the skewed threshold gets half of 4.
    assert scores["wrong"] == {"square": 1, "sum_of_squares": 3, "square_backward": 3, "pair_sum": 2,
                               "fit_threshold": 2}
    assert scores["blank"] == dict.fromkeys(scores["right"], 0)
    rec = record.load(TINY, "wrong", tiny)
    assert rec.cells["test_pair_sum_speed"].codes == ["too_slow"]
    assert rec.cells["test_fit_threshold_accuracy"].fraction == 0.5
    # No attack on the speed check earns its points, and none costs anything elsewhere.
    attacks = function_scores(paths.default_db_url(tiny), TINY, list(SPEED_ATTACKS))
    for name in SPEED_ATTACKS:
        assert attacks[name] == {**scores["right"], "pair_sum": attacks[name]["pair_sum"]}, name
        assert attacks[name]["pair_sum"] <= 2, (name, record.load(TINY, name, tiny).cells["test_pair_sum_speed"])
    # The seed thief found no seed (its values are right) and is simply too slow; the
    # pipeliner is stopped when it asks for a second input before answering the first.
    assert record.load(TINY, "seedthief", tiny).cells["test_pair_sum_speed"].codes == ["too_slow"]
    assert set(record.load(TINY, "pipeliner", tiny).cells["test_pair_sum_speed"].codes) == {"timing_protocol"}
    graded = tiny / "autograded" / "right" / TINY
    assert not (graded / "grading").exists()
