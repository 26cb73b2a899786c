"""End-to-end grading of the demo students through the real nbgrader workflow."""

from __future__ import annotations

import csv
import sqlite3

import pytest
from conftest import BATCH_OK

from cnngrader.core import spec

pytestmark = pytest.mark.slow

CAROL = {"zero_pad": 6, "conv_single_step": 6, "conv_forward": 17, "pool_forward": 16, "conv_backward": 22,
         "create_mask_from_window": 5, "distribute_value": 2, "pool_backward": 14}


def test_reference_scores_100(graded):
    assert graded.before["alice"] == spec.load().function_points()
    assert sum(graded.before["alice"].values()) == 100


def test_blank_release_scores_0(graded):
    assert sum(graded.before["bob"].values()) == 0


def test_buggy_submission_scores_exactly(graded):
    """Stride forgotten in conv_forward, = for += in pool_backward, dz/n_H*n_W in distribute_value."""
    assert graded.before["carol"] == CAROL
    messages = graded.course.records()["carol"].messages()
    assert any("conv_forward - stride > 1" in m for m in messages)
    assert any("pool_backward - overlapping windows (stride < f)" in m for m in messages)
    assert any("distribute_value - each cell gets dz / (n_H * n_W)" in m for m in messages)


@pytest.mark.parametrize("student, reason", [("dave", "malformed notebook"),
                                             ("erin", "missing notebook conv_step_by_step.ipynb")])
def test_bad_notebooks_score_0_with_reason(graded, student, reason):
    assert sum(graded.before[student].values()) == 0
    record = graded.course.records()[student]
    assert any(reason in note for note in record.attention), record.attention
    assert reason in graded.stdout  # the summary table shows the reason to the instructor


def test_bad_notebooks_do_not_touch_others(graded):
    assert graded.before["alice"] == spec.load().function_points() and graded.before["carol"] == CAROL


def test_submission_recorded_for_every_student(graded):
    con = sqlite3.connect(graded.course.root / "gradebook.db")
    students = {r[0] for r in con.execute("select student_id from submitted_assignment")}
    assert {"alice", "bob", "carol", "dave", "erin"} <= students


def test_feedback_for_every_graded_student(graded):
    feedback = graded.course.root / "feedback"
    for student in ("alice", "bob", "carol", "dave", "erin"):
        html = feedback / student / "conv_step_by_step" / "conv_step_by_step.html"
        assert html.exists(), student
        text = html.read_text()
        assert "run_check" not in text and "BEGIN HIDDEN TESTS" not in text


def test_feedback_shows_actionable_messages(graded):
    html = (graded.course.root / "feedback" / "carol" / "conv_step_by_step" / "conv_step_by_step.html").read_text()
    assert "HiddenTestFailure" in html and "stride &gt; 1" in html


def test_grades_csv_exported(graded):
    rows = {r["student_id"]: r for r in csv.DictReader(open(graded.course.root / "grades.csv"))}
    assert float(rows["alice"]["score"]) == 100 and float(rows["bob"]["score"]) == 0
    by_fn = {r["student_id"]: r for r in csv.DictReader(open(graded.course.root / "grades_by_function.csv"))}
    assert float(by_fn["carol"]["total"]) == 88


def test_regrading_is_idempotent(graded):
    again = graded.course.grade(jobs=2, extra_args=("--students", "alice,carol,dave"))
    assert again.returncode in BATCH_OK
    after = graded.course.scores()
    for student in ("alice", "carol", "dave"):
        assert after[student] == graded.before[student]


def test_test_cells_are_not_run_in_the_students_kernel(graded):
    """The kernel runs the student's cells for feedback; graded test cells get only the trusted verdict."""
    import nbformat

    from cnngrader.core import paths
    from cnngrader.core.reference import is_test_cell

    path = graded.course.root / "autograded" / "alice" / paths.default_assignment() / f"{paths.default_assignment()}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tests = [c for c in code if is_test_cell(c)]
    assert tests and all(c.get("execution_count") is None for c in tests)
    assert all(any("Hidden tests passed" in o.get("text", "") for o in c.outputs) for c in tests)
    # Cells tagged with the spec's skip_tags (the gradient checks) are the student's own experiments.
    skipped = [c for c in code if set(c.metadata.get("tags", [])) & {"gradient-check"}]
    assert skipped and all("not run while grading" in c.outputs[0].get("text", "") for c in skipped)
    assert all(c.get("execution_count") for c in code if not is_test_cell(c) and c not in skipped)
