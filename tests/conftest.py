"""Shared fixtures: graded copies of the course, built once per test session.

Grading goes through the same path an instructor uses (``python -m
cnngrader.batch`` on a copy of the course made by :mod:`cnngrader.workspace`).
The per-function time limit is lowered to 5 s so the hang attacks finish
quickly; the naive reference needs under 0.05 s per function.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from hostile_cases import ATTACKS, SOLVED, Attack

from cnngrader import paths, submissions
from cnngrader.reference import grade_id, is_test_cell
from cnngrader.workspace import Course, make_course, nbgrader

WALL = "5"
DEMO = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _test_cell_ids(nb) -> list[str]:
    return [grade_id(c) for c in nb.cells if is_test_cell(c)]


def build_attack(attack: Attack, submitted: Path) -> None:
    base_cells = submissions.reference_cells() if attack.base == SOLVED else {}
    base_cells.update(attack.cells)
    release = submissions.read_release()
    tests = _test_cell_ids(release)
    drop = list(attack.drop)
    if "__tests__" in drop:
        drop = [d for d in drop if d != "__tests__"] + tests
    edit = dict(attack.edit)
    if "__tests__" in edit:
        edit = {t: edit["__tests__"] for t in tests}
    extra = [e for e in attack.extra if e != "__fake_grade_cell__"]
    nb = submissions.build(base_cells, extra=extra, drop=drop, edit=edit)
    if "__fake_grade_cell__" in attack.extra:
        cell = nbformat.v4.new_code_cell("print('all good')")
        cell.id = "fake-grade-cell"
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": "test_fake_bonus", "locked": True,
                                     "points": 100, "schema_version": 3, "solution": False, "task": False}
        nb.cells.append(cell)
    path = submissions.write(nb, submitted, f"h_{attack.name}")
    for name, spec in attack.files.items():
        target = path.parent / name
        if target.exists():
            target.unlink()
        kind, _, value = spec.partition(":")
        if kind == "symlink":
            os.symlink(value, target)
        elif kind == "size":
            target.write_bytes(b"\0" * int(value))
        else:
            target.write_text(value)


@dataclass
class Graded:
    course: Course
    before: dict[str, dict[str, float]]
    seconds: float
    stdout: str


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> Graded:
    """The demo students, graded; then the hostile catalogue, graded in a second batch."""
    course = make_course(tmp_path_factory.mktemp("graded") / "course")
    submissions.write_demo(course.submitted)
    first = course.grade(jobs=2, CNN_WALL_SECONDS=WALL)
    assert first.returncode in (0, 2), first.stderr[-3000:]
    before = course.scores()
    for attack in ATTACKS:
        build_attack(attack, course.submitted)
    started = time.monotonic()
    names = ",".join(f"h_{a.name}" for a in ATTACKS)
    second = course.grade(jobs=2, extra_args=("--students", names), CNN_WALL_SECONDS=WALL)
    seconds = time.monotonic() - started
    assert second.returncode in (0, 2), second.stderr[-3000:]
    fb = nbgrader(course.root, "generate_feedback", course.assignment, "--force", check=False)
    assert fb.returncode == 0, fb.stderr[-3000:]
    return Graded(course, before, seconds, first.stdout + second.stdout)


@pytest.fixture()
def fresh_course(tmp_path) -> Course:
    return make_course(tmp_path / "course")


def release_dir(root: Path) -> Path:
    return root / "release" / paths.ASSIGNMENT


__all__ = ["build_attack", "Graded", "DEMO", "shutil"]
