"""The hostile catalogue: no attack earns a point, leaks a secret, damages the gradebook or hangs grading."""

from __future__ import annotations

import json
import re
import sqlite3

import nbformat
import pytest
from conftest import DEMO
from hostile_cases import ATTACKS, BLANK

from cnngrader import paths, reference
from cnngrader.workspace import function_points

pytestmark = pytest.mark.slow

BOUND_SECONDS = 90


def _solution_lines() -> set[str]:
    """Solution lines that appear nowhere in the release (the prose teaches some one-liners on purpose)."""
    public = paths.release_notebook().read_text()
    lines = set()
    for src in reference.solution_cells().values():
        body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S).group(1)
        lines |= {line.strip() for line in body.splitlines() if len(line.strip()) > 24}
    return {line for line in lines if json.dumps(line)[1:-1] not in public}


HIDDEN_MARKERS = ("run_check(", "from cnngrader.incell import", "BEGIN HIDDEN TESTS")


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack(graded, attack):
    student = f"h_{attack.name}"
    course = graded.course
    scores = course.scores()[student]
    record = course.records()[student]
    points = function_points()

    # 1. The attack earns nothing: blank attacks score 0, crash attacks lose exactly their function.
    assert sum(scores.values()) == attack.total, (scores, record.get("verdicts"))
    if attack.broken:
        assert scores[attack.broken] == 0
        assert all(scores[f] == points[f] for f in points if f != attack.broken)
        messages = " ".join(m for v in record["verdicts"].values() for m in v["messages"])
        assert attack.reason in messages, messages[:2000]

    # 2. Nothing hidden or secret in what the student sees.
    nb = nbformat.read(str(course.root / "autograded" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"),
                       as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    feedback = (course.root / "feedback" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").read_text()
    for marker in HIDDEN_MARKERS:
        assert marker not in outputs and marker not in feedback, marker
    if attack.base == BLANK:
        for line in _solution_lines():
            assert line not in outputs and line not in feedback, line
    assert "test_fake_bonus" not in json.dumps(scores)

    # 3. The gradebook is intact and the other students' scores did not move.
    con = sqlite3.connect(course.root / "gradebook.db")
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    now = course.scores()
    for other in DEMO:
        assert now[other] == graded.before[other], other

    # 4. Grading finished within a bound.
    assert record["grading_seconds"] < BOUND_SECONDS


def test_catalogue_is_large_enough():
    assert len(ATTACKS) >= 20


def test_sandbox_was_on(graded):
    assert all(r.get("sandboxed") for r in graded.course.records().values() if "sandboxed" in r)


def test_course_files_untouched(graded):
    root = graded.course.root
    assert not list(root.rglob("pwned.txt"))
    assert (root / "source" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb").stat().st_size > 10000
    for student in DEMO[:3]:
        nb = root / "autograded" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
        assert nbformat.read(str(nb), as_version=4).cells


def test_attack_batch_time(graded):
    # Three attacks hang a function for the 5 s limit; everything else is quick.
    assert graded.seconds < 600
