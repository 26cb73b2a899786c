"""Grading into a real PostgreSQL gradebook.

A throw-away PostgreSQL server is started for this module (see
``tests/pg_server.py``; it needs root and Debian's ``postgresql`` package) and
a copy of the course is pointed at it through ``CNN_DB_URL``. The demo students
plus a few extra correct submissions are graded by ``python -m cnngrader.tools.batch``
with two workers writing to the gradebook at the same time, then graded again
to check that regrading is idempotent.

nbgrader and cnngrader get the plain ``postgresql://`` URL an instructor would
write: ``cnngrader.core.paths.normalise_db_url`` (used by nbgrader_config.py, the
batch grader and the report) routes it to psycopg2, the pinned driver.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pg_server
import psycopg2
import pytest
from conftest import BATCH_OK, TEST_LIMITS

from cnngrader.core import paths
from cnngrader.tools import submissions
from cnngrader.tools.batch import function_scores
from cnngrader.tools.workspace import Course, make_course, nbgrader, tool_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

A = paths.default_assignment()
EXTRAS = tuple(f"extra{i}" for i in range(6))
FULL = {"zero_pad": 6, "conv_single_step": 6, "conv_forward": 22, "pool_forward": 16, "conv_backward": 22,
        "create_mask_from_window": 5, "distribute_value": 5, "pool_backward": 18}
ZERO = dict.fromkeys(FULL, 0)
EXPECTED: dict[str, dict[str, float]] = {
    "alice": FULL,
    "bob": ZERO,
    "carol": {"zero_pad": 6, "conv_single_step": 6, "conv_forward": 17, "pool_forward": 16, "conv_backward": 22,
              "create_mask_from_window": 5, "distribute_value": 2, "pool_backward": 14},
    "dave": ZERO,
    "erin": ZERO,
    **{name: FULL for name in EXTRAS},
}
STUDENTS = sorted(EXPECTED)


@dataclass
class Urls:
    db: str  # for SQLAlchemy (nbgrader, cnngrader)
    libpq: str  # for psycopg2.connect


@pytest.fixture(scope="module")
def pg() -> Iterator[Urls]:
    reason = pg_server.unavailable_reason()
    if reason:
        pytest.skip(reason)
    started = time.monotonic()
    with pg_server.running("gradebook") as server:
        print(f"\n[PostgreSQL up on port {server.port} in {time.monotonic() - started:.1f} s]")
        yield Urls(server.url("gradebook"), server.url("gradebook"))


@dataclass
class Graded:
    course: Course
    urls: Urls
    scores: dict[str, dict[str, float]]
    counts: dict[str, int]


def _grade(course: Course, url: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--jobs", "2", "--no-progress",
                           "--db-url", url], cwd=course.root,
                          env=tool_env(course.root, CNN_DB_URL=url),
                          capture_output=True, text=True)
    seconds = time.monotonic() - started
    print(proc.stdout)
    print(f"[batch took {seconds:.1f} s, exit code {proc.returncode}]")
    assert proc.returncode in BATCH_OK, f"batch failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc, seconds


def _counts(url: str) -> dict[str, int]:
    """Row counts of the nbgrader tables, read with psycopg2 straight from PostgreSQL."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        tables = {row[0] for row in cur.fetchall()}
        missing = {"assignment", "student", "submitted_assignment", "submitted_notebook", "grade"} - tables
        assert not missing, f"nbgrader tables missing from PostgreSQL: {missing} (found {sorted(tables)})"
        out = {}
        for table in ("student", "submitted_assignment", "submitted_notebook", "grade"):
            cur.execute(f"SELECT count(*) FROM {table}")
            out[table] = cur.fetchone()[0]
        cur.execute("SELECT s.student_id, sum(g.auto_score) FROM grade g "
                    "JOIN submitted_notebook n ON g.notebook_id = n.id "
                    "JOIN submitted_assignment s ON n.assignment_id = s.id GROUP BY s.student_id")
        out.update({f"total:{student}": float(total or 0) for student, total in cur.fetchall()})
    conn.close()
    return out


@pytest.fixture(scope="module")
def graded(pg, tmp_path_factory) -> Graded:
    course = make_course(tmp_path_factory.mktemp("pg") / "course", generate=False, limits=TEST_LIMITS)
    env = tool_env(course.root, CNN_DB_URL=pg.db)
    gen = nbgrader(course.root, "generate_assignment", A, "--force", env=env, check=False)
    assert gen.returncode == 0, gen.stderr[-3000:]
    submissions.write_demo(course.submitted)
    for name in EXTRAS:
        submissions.write(submissions.solved(), course.submitted, name)
    _grade(course, pg.db)
    return Graded(course, pg, function_scores(pg.db, A, STUDENTS), _counts(pg.libpq))


def test_scores_in_postgres(graded):
    scores = graded.scores
    assert sorted(scores) == STUDENTS
    for student in STUDENTS:
        assert scores[student] == pytest.approx(EXPECTED[student]), student
    assert sum(scores["carol"].values()) == pytest.approx(88)
    for name in ("alice", *EXTRAS):
        assert sum(scores[name].values()) == pytest.approx(100), name
    # A zero must come from grading, not from a worker that failed to write to PostgreSQL.
    records = graded.course.records()
    assert sorted(records) == STUDENTS
    failed = {s: r.attention for s, r in records.items()
              if any(a.startswith("autograde failed") for a in r.attention)}
    assert not failed, f"autograde failed against PostgreSQL: {failed}"
    assert any("malformed notebook" in a for a in records["dave"].attention)
    assert any("missing notebook" in a for a in records["erin"].attention)


def test_data_is_in_postgres_not_sqlite(graded):
    course, scores, counts = graded.course, graded.scores, graded.counts
    assert not (course.root / "gradebook.db").exists(), "a SQLite gradebook was written"
    assert counts["student"] == len(STUDENTS)
    assert counts["submitted_assignment"] == len(STUDENTS), "expected exactly one submission per student"
    assert counts["submitted_notebook"] == len(STUDENTS)
    assert counts["grade"] > 0 and counts["grade"] % len(STUDENTS) == 0
    # The raw auto scores in PostgreSQL add up to the totals read through nbgrader.
    for student in STUDENTS:
        assert counts[f"total:{student}"] == pytest.approx(sum(scores[student].values())), student


def test_regrade_is_idempotent(graded):
    course, urls = graded.course, graded.urls
    _grade(course, urls.db)
    assert function_scores(urls.db, A, STUDENTS) == graded.scores
    assert _counts(urls.libpq) == graded.counts
    assert not (course.root / "gradebook.db").exists()
