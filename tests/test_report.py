"""Tests for the instructor grading report in ``cnngrader.tools.report``.

Each test builds a small course in a temporary directory: a SQLite gradebook
made through the nbgrader API (the 26 graded test cells of the course) and
fake grading records, so the expected numbers can be worked out by hand.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from cnngrader.core import paths, record, spec
from cnngrader.core.record import CellResult, Failure, Record
from cnngrader.tools import report

# nbgrader's own add_submission triggers these SQLAlchemy autoflush warnings; they are not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Object of type .* not in session:sqlalchemy.exc.SAWarning")

A = paths.default_assignment()
REPO = paths.course_root()
EVIL = "<script>alert(1)</script>"
POINTS = {c.grade_id: c.points for c in spec.load().checks}
ALL_OK = dict.fromkeys(spec.load().function_names, "ok")

STRIDE_CASE = "A_prev (2, 7, 6, 3), W (3, 3, 3, 2), stride=2, pad=0"
STRIDE_CASE_2 = "A_prev (1, 9, 8, 2), W (2, 2, 2, 3), stride=3, pad=1"


def _wrong(diff_a: str, diff_b: str) -> list[Failure]:
    # Two cases of the stride check failing with different words: they must count as one reason.
    return [
        Failure("wrong_values", f"the output has wrong values ({diff_a})", STRIDE_CASE),
        Failure("wrong_values", f"the output has wrong values ({diff_b})", STRIDE_CASE_2),
    ]


def _not_implemented(check: spec.Check) -> list[Failure]:
    return [Failure("not_implemented", "is not implemented yet (raised NotImplementedError)", case.describe)
            for case in check.cases]


#: Failed grade ids and their failures, per student with a record.
FAILED: dict[str, dict[str, list[Failure]]] = {
    "alice": {},
    "bob": {c.grade_id: _not_implemented(c) for c in spec.load().checks},
    "carol": {
        "test_conv_forward_stride": _wrong("20 of 24 entries differ, largest difference 17",
                                           "33 of 36 entries differ, largest difference 7.4"),
        "test_conv_forward_cache": [Failure(
            "wrong_cache", "cache must hold the unpadded input A_prev (cache A_prev has the wrong shape: "
            "got (2, 9, 8, 2))", "A_prev (2, 5, 4, 2), W (3, 3, 2, 2), stride=1, pad=2")],
    },
    "dave": {
        "test_conv_forward_stride": _wrong("4 of 24 entries differ, largest difference 1.2e+02",
                                           "36 of 36 entries differ, largest difference 0.5"),
        **{c.grade_id: [Failure("wall_timeout", "timed out after 20 s", c.cases[0].describe)]
           for c in spec.load().checks_for("pool_backward")},
    },
}


def _record(student: str, failed: dict[str, list[Failure]], **extra: object) -> Record:
    cells = {c.grade_id: CellResult(c.grade_id not in failed, failed.get(c.grade_id, [])) for c in spec.load().checks}
    fields: dict = {"sandboxed": True, "cgroups": True, "kernel": "ok", "functions": dict(ALL_OK),
                    "cells": cells, "verdict_wait_seconds": 0.5, **extra}
    return Record(student=student, assignment=A, **fields)


def _write_record(root: Path, rec: Record) -> None:
    record.save(rec, root)


def _make_gradebook(db_url: str, scores: dict[str, dict[str, float | None]], roster_only: list[str]) -> None:
    """Assignment, notebook, the 26 grade cells, students and their auto scores."""
    with Gradebook(db_url, course_id=paths.course_id()) as gb:
        gb.update_or_create_assignment(A)
        gb.add_notebook(A, A)
        for check in spec.load().checks:
            gb.add_grade_cell(check.grade_id, A, A, max_score=check.points, cell_type="code")
        for fn in spec.load().function_names:
            gb.add_solution_cell(f"{fn}_solution", A, A)
        for student in roster_only:
            gb.add_student(student)
        for student, per_cell in scores.items():
            gb.add_student(student)
            gb.add_submission(A, student)
            for grade in gb.find_submission_notebook(A, A, student).grades:
                grade.auto_score = per_cell.get(grade.name)
                grade.needs_manual_grade = False
        gb.db.commit()


def _path_with_venv() -> str:
    # Creating a gradebook makes nbgrader run `alembic` in a subprocess; it lives next to this Python.
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _scores_from(failed: dict[str, list[str]]) -> dict[str, float | None]:
    return {gid: 0.0 if gid in failed else float(pts) for gid, pts in POINTS.items()}


@pytest.fixture(scope="module")
def gradebook_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course gradebook, built once per module (nbgrader's alembic step takes seconds).

    Scores: alice 100, bob 0, carol 91 (-5 stride, -4 cache), dave 77 (-5 stride,
    -18 pool_backward timed out), erin 0 (malformed notebook), EVIL 12 (zero_pad and
    conv_single_step only, no record). frank is on the roster and submitted nothing.
    """
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    scores = {student: _scores_from(failed) for student, failed in FAILED.items()}
    scores["erin"] = {}  # autograde created the submission, nothing was scored
    scores[EVIL] = {c.grade_id: float(c.points) if c.function in ("zero_pad", "conv_single_step") else None
                    for c in spec.load().checks}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", _path_with_venv())
        _make_gradebook(f"sqlite:///{path}", scores, roster_only=["frank"])
    return path


def _copy_specs(dest: Path) -> None:
    """The report reads the course's assignments and their grading specs."""
    shutil.copyfile(REPO / "course.toml", dest / "course.toml")
    shutil.copytree(REPO / "source" / A / "grading", dest / "source" / A / "grading")


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gradebook_file: Path) -> Path:
    """A course root (a fresh copy per test) with the gradebook above and records for five students."""
    monkeypatch.setenv("CNN_COURSE_ROOT", str(tmp_path))
    monkeypatch.delenv("CNN_DB_URL", raising=False)
    shutil.copyfile(gradebook_file, tmp_path / "gradebook.db")
    _copy_specs(tmp_path)

    for student, failed in FAILED.items():
        extra: dict[str, object] = {}
        if student == "dave":
            extra["functions"] = {**ALL_OK, "pool_backward": "wall_timeout"}
            extra["function_notes"] = {"pool_backward": "timed out after 20 s"}
            extra["limits_hit"] = {"pool_backward": "wall_timeout"}
        _write_record(tmp_path, _record(student, failed, **extra))
    _write_record(tmp_path, Record(
        student="erin", assignment=A, sandboxed=True, cgroups=True, kernel="not run",
        attention=["malformed notebook: invalid JSON (Expecting value: line 1 column 1)"]))
    return tmp_path


def test_failures_group_by_code_never_by_words(course: Path) -> None:
    """Two failures with one code count as one reason, whatever their messages say (a translation, say)."""
    translated = _record("grace", {"test_conv_forward_stride": [
        Failure("wrong_values", "输出的数值不对", STRIDE_CASE), Failure("wrong_values", "ganz anders", STRIDE_CASE_2)]})
    _write_record(course, translated)
    rows = report.collect()["failures"]["conv_forward"]
    top = next(r for r in rows if r["code"] == "wrong_values")
    assert (top["count"], top["students"], top["reason"]) == (6, 3, "wrong values")
    assert all("输出" not in r["reason"] for r in rows)


def test_collect_headline(course: Path) -> None:
    data = report.collect()
    h = data["headline"]
    assert h["submissions"] == 6  # frank is on the roster only
    assert h["graded"] == 6
    assert sorted(data["scores"]) == [0.0, 0.0, 12.0, 77.0, 91.0, 100.0]
    assert h["mean"] == pytest.approx(280 / 6)
    assert h["median"] == pytest.approx((12 + 77) / 2)
    assert h["full_marks"] == 1
    assert h["zero"] == 2
    assert h["attention"] == 4


def test_collect_function_means(course: Path) -> None:
    means = report.collect()["function_means"]
    assert list(means) == list(spec.load().function_names)
    # Six graded students; alice, carol, dave and EVIL have full zero_pad, bob and erin none.
    assert means["zero_pad"] == pytest.approx(100 * 4 / 6)
    # conv_forward (22): alice 22, carol 13, dave 17, the rest 0.
    assert means["conv_forward"] == pytest.approx(100 * (22 + 13 + 17) / (6 * 22))
    # pool_backward (18): only alice and carol.
    assert means["pool_backward"] == pytest.approx(100 * 2 / 6)
    rows = {r["student"]: r for r in report.collect()["students"]}
    assert rows["carol"]["functions"]["conv_forward"] == 13
    assert rows["frank"]["functions"] is None and rows["frank"]["score"] is None


def test_collect_failure_reasons(course: Path) -> None:
    failures = report.collect()["failures"]
    top = failures["conv_forward"]
    assert len(top) == 3
    # Two students (carol, dave) with 4 failed cases beat one student (bob) with 10.
    assert (top[0]["code"], top[0]["reason"]) == ("wrong_values", "wrong values")
    assert (top[0]["count"], top[0]["students"]) == (4, 2)
    assert top[0]["checks"] == ["stride > 1"]
    assert (top[1]["code"], top[1]["count"], top[1]["students"]) == ("not_implemented", 10, 1)
    assert (top[2]["code"], top[2]["reason"]) == ("wrong_cache", "wrong cache")
    # Equal student counts: more failed cases first (bob's 8 blank cases, then dave's 4 time-outs).
    assert [(r["code"], r["count"], r["students"]) for r in failures["pool_backward"]] == [
        ("not_implemented", 8, 1), ("wall_timeout", 4, 1)]
    # A function nobody got wrong except the blank notebook has that one reason only.
    assert [r["students"] for r in failures["zero_pad"]] == [1]


def test_collect_attention(course: Path) -> None:
    attention = {row["student"]: row for row in report.collect()["attention"]}
    assert set(attention) == {"dave", "erin", EVIL, "frank"}
    assert attention["dave"]["reasons"] == ["pool_backward: timed out after 20 s"]
    assert attention["dave"]["score"] == 77
    assert "malformed notebook: invalid JSON (Expecting value: line 1 column 1)" in attention["erin"]["reasons"]
    assert "notebook kernel: not run" in attention["erin"]["reasons"]
    assert attention[EVIL]["reasons"] == ["no grading record: grading failed or did not finish"]
    assert attention["frank"]["reasons"] == ["no submission and no grading record"]


def test_unreadable_record_needs_attention(course: Path) -> None:
    (course / ".grading" / "results" / A / "alice.json").write_text("{not json")
    attention = {row["student"]: row["reasons"] for row in report.collect()["attention"]}
    assert attention["alice"] == ["grading record unreadable (JSONDecodeError)"]


def test_build_report_html(course: Path) -> None:
    out = report.build_report()
    assert out == course / "feedback" / "report.html"
    html = out.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2
    for image in images:
        assert base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n")
    for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
        assert f">{name}<" in html
    # The student id is shown, escaped, and never becomes markup.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html
    assert "wrong values <code>wrong_values</code>" in html
    assert "pool_backward: timed out after 20 s" in html
    assert not list(out.parent.glob(".*.tmp"))


def test_main_writes_to_out_and_reports_missing_gradebook(course: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere" / "r.html"
    assert report.main(["--db-url", f"sqlite:///{course / 'gradebook.db'}", "--out", str(out)]) == 0
    assert out.is_file() and "conv_step_by_step" in out.read_text()
    missing = course / "nope.db"
    assert report.main(["--db-url", f"sqlite:///{missing}", "--out", str(tmp_path / "x.html")]) == 1
    assert "no gradebook" in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "x.html").exists()
    assert report.main(["--assignment", "conv_step_by_stepp", "--out", str(tmp_path / "y.html")]) == 1
    assert "no assignment 'conv_step_by_stepp'" in capsys.readouterr().err
    assert not (tmp_path / "y.html").exists()


def test_empty_gradebook_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNN_COURSE_ROOT", str(tmp_path))
    monkeypatch.delenv("CNN_DB_URL", raising=False)
    monkeypatch.setenv("PATH", _path_with_venv())
    _copy_specs(tmp_path)
    _make_gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", {}, roster_only=[])
    data = report.collect()
    assert data["headline"]["submissions"] == 0 and data["headline"]["mean"] is None
    html = report.build_report().read_text()
    assert "Nothing needs attention" in html
