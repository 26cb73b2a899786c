"""Where things live in the course repository.

Every location can be overridden with an environment variable so that tests
can grade inside a temporary copy of the course.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path


def course_root() -> Path:
    """The course directory (the one holding ``nbgrader_config.py``)."""
    env = os.environ.get("CNN_COURSE_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


@cache
def _course_file(path: Path) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh).get("course", {})


def course_info(root: Path | None = None) -> dict:
    """The ``[course]`` table of ``course.toml``: its nbgrader id and its assignments."""
    return _course_file((root or course_root()) / "course.toml")


def course_id(root: Path | None = None) -> str:
    """The nbgrader course id (students' nbgrader_config.py in student/ repeats it; a test checks)."""
    return str(course_info(root)["id"])


def assignments(root: Path | None = None) -> list[str]:
    """The course's assignments, in teaching order."""
    return [str(a) for a in course_info(root).get("assignments", [])]


def default_assignment(root: Path | None = None) -> str:
    """``CNN_ASSIGNMENT`` if set, else the course's first assignment."""
    return os.environ.get("CNN_ASSIGNMENT") or assignments(root)[0]


def source_dir(assignment: str | None = None, root: Path | None = None) -> Path:
    root = root or course_root()
    return root / "source" / (assignment or default_assignment(root))


def source_notebook(assignment: str | None = None, root: Path | None = None) -> Path:
    assignment = assignment or default_assignment(root)
    return source_dir(assignment, root) / f"{assignment}.ipynb"


def release_notebook(assignment: str | None = None, root: Path | None = None) -> Path:
    root = root or course_root()
    assignment = assignment or default_assignment(root)
    return root / "release" / assignment / f"{assignment}.ipynb"


def grader_data_dir(root: Path | None = None) -> Path:
    """Instructor-only data (hidden inputs, test splits): never under ``source/``, never released."""
    return (root or course_root()) / "grader_data"


def hidden_data_file(assignment: str | None = None, root: Path | None = None) -> Path:
    """HDF5 file with hidden inputs and expected outputs.

    It lives in ``grader_data/``, outside ``source/<assignment>/``, so nbgrader
    never copies it into a release or an autograded folder.
    """
    env = os.environ.get("CNN_HIDDEN_DATA")
    if env:
        return Path(env)
    return grader_data_dir(root) / f"{assignment or default_assignment(root)}_hidden.h5"


#: Per-submission grading records, instructor-side, relative to the course root.
RECORDS_DIR = ".grading/results"


def records_dir(assignment: str | None = None, root: Path | None = None) -> Path:
    """Folder of the per-student JSON records written while grading."""
    return (root or course_root()) / RECORDS_DIR / (assignment or default_assignment(root))


def default_db_url(root: Path | None = None) -> str:
    """The gradebook: ``CNN_DB_URL`` if set, else the course's SQLite file.

    The SQLite timeout lets parallel graders wait for each other's short write
    transactions instead of failing. ``nbgrader_config.py`` uses this too.
    """
    root = root or course_root()
    return normalise_db_url(os.environ.get("CNN_DB_URL") or f"sqlite:///{root / 'gradebook.db'}?timeout=60")


def normalise_db_url(url: str) -> str:
    """Route plain ``postgresql://`` URLs to psycopg2, the driver the course pins.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which is not
    installed; spelling the driver out keeps instructors' usual URLs working.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url
