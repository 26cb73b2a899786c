"""Where things live in the course repository.

Every location can be overridden with an environment variable so that tests
can grade inside a temporary copy of the course.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The nbgrader course id (students' nbgrader_config.py in student/ repeats it; a test checks).
COURSE_ID = "cnn_step_by_step"
ASSIGNMENT = "conv_step_by_step"
#: Graded functions, in the order the notebook teaches them.
FUNCTIONS = (
    "zero_pad",
    "conv_single_step",
    "conv_forward",
    "pool_forward",
    "conv_backward",
    "create_mask_from_window",
    "distribute_value",
    "pool_backward",
)


def course_root() -> Path:
    """The course directory (the one holding ``nbgrader_config.py``)."""
    env = os.environ.get("CNN_COURSE_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[1]


def source_notebook(assignment: str = ASSIGNMENT, root: Path | None = None) -> Path:
    root = root or course_root()
    return root / "source" / assignment / f"{assignment}.ipynb"


def release_notebook(assignment: str = ASSIGNMENT, root: Path | None = None) -> Path:
    root = root or course_root()
    return root / "release" / assignment / f"{assignment}.ipynb"


def hidden_data_file(assignment: str = ASSIGNMENT, root: Path | None = None) -> Path:
    """HDF5 file with hidden inputs and expected outputs.

    It lives in ``grader_data/``, outside ``source/<assignment>/``, so nbgrader
    never copies it into a release or an autograded folder.
    """
    env = os.environ.get("CNN_HIDDEN_DATA")
    if env:
        return Path(env)
    root = root or course_root()
    return root / "grader_data" / f"{assignment}_hidden.h5"


#: Per-submission grading records, instructor-side, relative to the course root.
RECORDS_DIR = ".grading/results"


def records_dir(assignment: str = ASSIGNMENT, root: Path | None = None) -> Path:
    """Folder of the per-student JSON records written while grading."""
    return (root or course_root()) / RECORDS_DIR / assignment


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
