"""Throw-away copies of the course, for tests, ``make accuracy`` and ``make bench``.

A copy holds ``source/``, ``release/``, ``nbgrader_config.py`` and the hidden
data, gets its own gradebook from ``nbgrader generate_assignment``, and is
graded by the same commands an instructor runs, in subprocesses with
``CNN_COURSE_ROOT`` pointing at the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cnngrader.core import paths
from cnngrader.core.hidden_data import ensure_current
from cnngrader.core.record import Record, load_all


def tool_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for nbgrader subprocesses working on the course at ``root``."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["CNN_COURSE_ROOT"] = str(root)
    env.pop("CNN_DB_URL", None)
    env.update(extra)
    return env


def nbgrader(root: Path, *args: str, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "nbgrader"), *args], cwd=root,
                          env=env or tool_env(root), capture_output=True, text=True, check=check)


@dataclass
class Course:
    root: Path
    assignment: str = field(default_factory=paths.default_assignment)

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}?timeout=60"

    @property
    def submitted(self) -> Path:
        return self.root / "submitted"

    def records(self) -> dict[str, Record]:
        """Every readable grading record, by student (an unreadable one is an error here: tests want to know)."""
        records, broken = load_all(self.assignment, self.root)
        if broken:
            raise ValueError(f"unreadable grading records: {broken}")
        return records

    def scores(self) -> dict[str, dict[str, float]]:
        """Per student, the score of every graded function (from the gradebook)."""
        from cnngrader.tools.batch import function_scores

        students = sorted(p.name for p in self.submitted.iterdir() if p.is_dir())
        return function_scores(self.db_url, self.assignment, students)

    def grade(self, jobs: int = 2, extra_args: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--jobs", str(jobs), "--no-progress",
                               *extra_args], cwd=self.root, env=tool_env(self.root, **env),
                              capture_output=True, text=True)


def make_course(dest: Path, source_root: Path | None = None, generate: bool = True,
                limits: dict[str, object] | None = None, extra_config: tuple[str, ...] = (),
                assignment: str | None = None) -> Course:
    """Copy the course into ``dest`` (which must not exist) and create its gradebook.

    ``limits`` are written into the copy's ``nbgrader_config.py`` as
    ``c.CnnLimits.<name> = <value>``, the way an instructor would set them.
    """
    src = source_root or paths.course_root()
    ensure_current()
    dest.mkdir(parents=True)
    for name in ("source", "release", "grader_data", "locale"):
        if (src / name).is_dir():
            shutil.copytree(src / name, dest / name)
    shutil.copy(src / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copy(src / "course.toml", dest / "course.toml")
    if limits:
        with open(dest / "nbgrader_config.py", "a") as fh:
            fh.write("\n# Limits for this copy of the course\n")
            for name, value in limits.items():
                fh.write(f"c.CnnLimits.{name} = {value!r}\n")
    if extra_config:
        with open(dest / "nbgrader_config.py", "a") as fh:
            fh.write("\n".join(("", "# Settings for this copy of the course", *extra_config, "")))
    (dest / "submitted").mkdir()
    course = Course(dest, assignment or paths.default_assignment())
    if generate:
        # generate_assignment registers the assignment and its cells in this copy's gradebook.
        nbgrader(dest, "generate_assignment", course.assignment, "--force")
    return course

