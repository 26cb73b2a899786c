"""Shared fixtures: graded copies of the course, built once per test session.

Grading goes through the same path an instructor uses (``python -m
cnngrader.tools.batch`` on a copy of the course made by :mod:`cnngrader.tools.workspace`).
The per-function CPU limit is lowered to 5 s (and the wall-clock backstop
to 10 s) in the copy's ``nbgrader_config.py``, so the hang attacks finish
quickly; the naive reference needs under 0.05 s per function.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from hostile_cases import ATTACKS, SOLVED, Attack

from cnngrader.core import paths
from cnngrader.core.reference import grade_id, is_test_cell
from cnngrader.tools import submissions
from cnngrader.tools.workspace import Course, make_course, nbgrader

#: Limits written into the test course's nbgrader_config.py.
TEST_LIMITS = {"cpu_seconds": 5, "wall_seconds": 10.0, "kernel_cpu_seconds": 30, "kernel_wall_seconds": 60.0}
#: Exit codes of a batch that graded everyone (3: some need attention).
BATCH_OK = (0, 3)
#: Other settings of the test course: a shorter per-cell timeout for the notebook kernel.
TEST_CONFIG = ("c.Execute.timeout = 5",)
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
    if attack.markdown is not None:
        cell = nbformat.v4.new_markdown_cell(attack.markdown)
        cell.id = "student-markdown"
        setup = next(k for k, c in enumerate(nb.cells) if grade_id(c) == "setup")
        nb.cells.insert(setup + 1, cell)
    path = submissions.write(nb, submitted, f"h_{attack.name}")
    if attack.rename:
        path.rename(path.parent / attack.rename)
    for name, spec in attack.files.items():
        target = path.parent / name
        if target.exists():
            target.unlink()
        kind, _, value = spec.partition(":")
        if kind == "symlink":
            os.symlink(value, target)
        elif kind == "size":
            target.write_bytes(b"\0" * int(value))
        elif kind == "fifo":
            os.mkfifo(target)
        elif kind == "deep":
            # Built relative to each level, so no path ever gets longer than the OS allows.
            fd = os.open(path.parent, os.O_RDONLY)
            for _ in range(int(value)):
                os.mkdir(name, dir_fd=fd)
                new = os.open(name, os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = new
            os.close(fd)
        elif kind == "many":
            target.mkdir()
            for k in range(int(value)):
                (target / f"f{k}.txt").write_bytes(b"x")
        else:
            target.write_text(value)


def remove_deep(folder: Path) -> None:
    """Remove a folder nested too deep for shutil.rmtree's recursion (and for any single path)."""
    flags = os.O_RDONLY | os.O_DIRECTORY

    def subdir(fd: int) -> str | None:
        for name in os.listdir(fd):
            if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                return name
        return None

    while os.path.lexists(folder):
        fds, names = [os.open(folder, flags)], []
        while (name := subdir(fds[-1])) is not None:
            names.append(name)
            fds.append(os.open(name, flags, dir_fd=fds[-1]))
        for name in os.listdir(fds[-1]):
            os.unlink(name, dir_fd=fds[-1])
        # Remove empty folders upward; stop where a folder still holds something else.
        while names:
            os.close(fds.pop())
            os.rmdir(names.pop(), dir_fd=fds[-1])
            if os.listdir(fds[-1]):
                break
        for fd in fds:
            os.close(fd)
        if not names and not os.listdir(folder):
            os.rmdir(folder)


@dataclass
class Graded:
    course: Course
    before: dict[str, dict[str, float]]
    seconds: float
    stdout: str
    stderr: str
    disk_growth: int
    exit_code: int


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The demo students, graded; then the hostile catalogue, graded in a second batch."""
    course = make_course(tmp_path_factory.mktemp("graded") / "course", limits=TEST_LIMITS,
                         extra_config=TEST_CONFIG)
    submissions.write_demo(course.submitted)
    first = course.grade(jobs=2)
    assert first.returncode in BATCH_OK, first.stderr[-3000:]
    before = course.scores()
    for attack in ATTACKS:
        build_attack(attack, course.submitted)
    started = time.monotonic()
    names = ",".join(f"h_{a.name}" for a in ATTACKS)
    disk_before = shutil.disk_usage(course.root).used + shutil.disk_usage("/tmp").used
    second = course.grade(jobs=2, extra_args=("--students", names))
    seconds = time.monotonic() - started
    disk_growth = shutil.disk_usage(course.root).used + shutil.disk_usage("/tmp").used - disk_before
    assert second.returncode in BATCH_OK, second.stderr[-3000:]
    fb = nbgrader(course.root, "generate_feedback", course.assignment, "--force", check=False)
    assert fb.returncode == 0, fb.stderr[-3000:]
    yield Graded(course, before, seconds, first.stdout + second.stdout, second.stderr, disk_growth,
                 second.returncode)
    for folder in course.submitted.glob("*/*/deep"):
        remove_deep(folder)


@pytest.fixture(scope="session")
def acc_course(tmp_path_factory):
    """The accuracy catalogue (every mutant, variant and credit-isolation case), graded once per session."""
    from cnngrader.tools import accuracy

    course = make_course(tmp_path_factory.mktemp("accuracy") / "course", limits=TEST_LIMITS)
    accuracy.write_submissions(course)
    proc = course.grade(jobs=2, extra_args=("--no-summary", "--no-export"))
    assert proc.returncode in BATCH_OK, proc.stderr[-3000:]
    return course


@pytest.fixture()
def fresh_course(tmp_path) -> Course:
    return make_course(tmp_path / "course", limits=TEST_LIMITS, extra_config=TEST_CONFIG)


def release_dir(root: Path) -> Path:
    return root / "release" / paths.default_assignment()


__all__ = ["build_attack", "Graded", "DEMO", "TEST_LIMITS", "TEST_CONFIG", "BATCH_OK", "remove_deep"]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module, for the browser tests."""
    import browser_helpers
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(browser_helpers.CHROMIUM), headless=True, args=browser_helpers.CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
