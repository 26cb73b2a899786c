"""The Dask engine under faults, on a LocalCluster of two worker processes and a live PostgreSQL gradebook.

* a worker killed mid-batch: every submission ends in the gradebook exactly
  once, and the summary names the ones that needed another worker;
* a submission whose grading kills every worker that takes it: recorded as
  failed with the reason, and the batch finishes;
* the client killed mid-batch and started again: the second run grades only
  what the first did not finish;
* the whole accuracy catalogue graded by Dask gets the same points per
  function as the local engine;
* workers never open the gradebook (the class's address is poisoned in their
  environment), and a tampered bundle is refused.

The PostgreSQL server is a real one (``tests/pg_server.py``: root and Debian's
``postgresql`` package, which ``make test`` installs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg_server
import psycopg2
import pytest
from conftest import BATCH_OK, TEST_LIMITS
from distributed.diagnostics.plugin import WorkerPlugin

from cnngrader.core import paths, record, spec
from cnngrader.sandbox.limits import for_assignment, from_course
from cnngrader.tools import bundle, dask_engine, submissions
from cnngrader.tools.batch import function_scores
from cnngrader.tools.workspace import Course, make_course, nbgrader, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

A = "conv_step_by_step"
FULL = {"zero_pad": 6, "conv_single_step": 6, "conv_forward": 22, "pool_forward": 16, "conv_backward": 22,
        "create_mask_from_window": 5, "distribute_value": 5, "pool_backward": 18}
ZERO = dict.fromkeys(FULL, 0)
CAROL = {"zero_pad": 6, "conv_single_step": 6, "conv_forward": 17, "pool_forward": 16, "conv_backward": 22,
         "create_mask_from_window": 5, "distribute_value": 2, "pool_backward": 14}
EXPECTED = {"alice": FULL, "bob": ZERO, "carol": CAROL, "dave": ZERO, "erin": ZERO,
            **{f"solved{i}": FULL for i in range(4)}}
#: The student whose grading ends its worker, every time (see KillOnStudent).
CRASHER = "crasher"
#: Where the class's gradebook must never be reached from: every worker's environment points here.
POISON = "postgresql://nobody@127.0.0.1:9/not_the_gradebook"


class KillOnStudent(WorkerPlugin):
    """Fault injection for the tests: a worker that starts grading ``student`` dies on the spot."""

    def __init__(self, student: str):
        self.student = student

    def transition(self, key, start, finish, **kwargs):  # noqa: ANN001 - Dask's signature
        if finish == "executing" and dask_engine.student_of(key) == self.student:
            os._exit(70)


@pytest.fixture(scope="module")
def pg() -> Iterator[pg_server.PgServer]:
    reason = pg_server.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with pg_server.running("faults", "restart", "accuracy") as server:
        yield server


def pg_course(dest: Path, url: str) -> Course:
    """A copy of the course whose gradebook is the PostgreSQL database at ``url``."""
    course = make_course(dest, generate=False, limits={**TEST_LIMITS, "student_timeout_seconds": 120.0})
    gen = nbgrader(course.root, "generate_assignment", A, "--force", env=tool_env(course.root, CNN_DB_URL=url),
                   check=False)
    assert gen.returncode == 0, gen.stderr[-3000:]
    return course


def ledger_counts(course: Course) -> Counter:
    path = dask_engine.ledger_path(course.root, A)
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(json.loads(line)["student"] for line in lines if line.strip())


def submission_rows(url: str) -> Counter:
    """Submissions per student, and grade rows per submitted notebook, read straight from PostgreSQL."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT student_id FROM submitted_assignment")
        rows = Counter(r[0] for r in cur.fetchall())
        cur.execute("SELECT n.id, count(g.id) FROM submitted_notebook n JOIN grade g ON g.notebook_id = n.id "
                    "GROUP BY n.id")
        rows["grade rows per notebook"] = len({c for _, c in cur.fetchall()})
    conn.close()
    return rows


@dataclass
class FaultRun:
    course: Course
    url: str
    report: dask_engine.DaskReport
    lost: set[str]


@pytest.fixture(scope="module")
def faults(pg, tmp_path_factory) -> FaultRun:
    url = pg.url("faults")
    course = pg_course(tmp_path_factory.mktemp("dask") / "course", url)
    submissions.write_demo(course.submitted)
    for i in range(4):
        submissions.write(submissions.solved(), course.submitted, f"solved{i}")
    submissions.write(submissions.solved(), course.submitted, CRASHER)
    students = sorted([*EXPECTED, CRASHER])
    lost: set[str] = set()

    def start(client) -> None:  # noqa: ANN001
        client.register_plugin(KillOnStudent(CRASHER), name="kill-on-student")

    def after(client, student: str) -> None:  # noqa: ANN001
        # After the second result, kill a worker that is grading someone else.
        if lost or len(ledger_counts(course)) < 2:
            return
        for address, keys in client.processing().items():
            names = {dask_engine.student_of(k) for k in keys}
            if names and CRASHER not in names:
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                lost.update(names)
                return

    limits = for_assignment(from_course(course.root), spec_of(course))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_COURSE_ROOT", str(course.root))
        mp.setenv("CNN_DB_URL", POISON)  # inherited by the workers, which must never use it
        report = dask_engine.grade(course.root, A, students, db_url=url, limits=limits, jobs=2, progress=False,
                                   on_start=start, on_result=after)
    return FaultRun(course, url, report, lost)


def spec_of(course: Course) -> spec.Assignment:
    return spec.load(A, course.root)


def test_a_worker_was_killed_mid_batch(faults):
    """The fixture really lost a worker while it was grading someone."""
    assert faults.lost, "no worker was killed: the test did not exercise the fault"


def test_every_submission_is_in_the_gradebook_exactly_once(faults):
    """One submission row per student (the crasher included, flagged), each notebook with all its grades."""
    rows = submission_rows(faults.url)
    assert {s: rows[s] for s in [*EXPECTED, CRASHER]} == dict.fromkeys([*EXPECTED, CRASHER], 1)
    assert rows["grade rows per notebook"] == 1  # every notebook has the same number of grade rows
    # The client wrote each graded result once, and never the crasher's.
    counts = ledger_counts(faults.course)
    assert counts == Counter(dict.fromkeys(EXPECTED, 1))


def test_scores_survive_the_lost_worker(faults):
    """Every student, retried or not, has exactly the points of their submission."""
    assert function_scores(faults.url, A, sorted(EXPECTED)) == EXPECTED


def test_summary_names_the_retried(faults):
    """Students whose worker was killed are reported as retried, with how many workers they needed."""
    retried = faults.report.retried
    assert faults.lost - {CRASHER} <= set(retried), (faults.lost, retried)
    lines = "\n".join(dask_engine.summary_lines(faults.report))
    for student in faults.lost - {CRASHER}:
        assert f"retried: {student} needed" in lines
        assert record.load(A, student, faults.course.root).attempts >= 2


def test_worker_killer_is_recorded_and_the_batch_finishes(faults):
    """The submission that killed three workers is failed with the reason; everyone else is graded."""
    report = faults.report
    assert CRASHER in report.failed and "ended 3 workers" in report.failed[CRASHER]
    rec = record.load(A, CRASHER, faults.course.root)
    assert rec is not None and rec.status == "failed" and "ended 3 workers" in (rec.failure or "")
    assert sorted(report.graded) == sorted(EXPECTED)
    assert not report.refused


def test_records_say_dask_and_the_bundle(faults):
    """Each record names the engine, the worker and the bundle it was graded with."""
    rec = record.load(A, "alice", faults.course.root)
    assert rec.engine == "dask" and rec.bundle == faults.report.bundle and rec.worker.startswith("tcp://")
    assert rec.sandboxed is True


def test_autograded_notebooks_written_by_the_client(faults):
    """The client wrote each student's autograded notebook, ready for generate_feedback."""
    for student in EXPECTED:
        assert (faults.course.root / "autograded" / student / A / f"{A}.ipynb").is_file()


def test_client_stopped_and_restarted_finishes_only_the_rest(pg, tmp_path_factory):
    """Kill the client (and its cluster) mid-batch; the rerun grades only what is missing, each once."""
    url = pg.url("restart")
    course = pg_course(tmp_path_factory.mktemp("dask-restart") / "course", url)
    names = [f"s{i}" for i in range(8)]
    for name in names:
        submissions.write(submissions.solved(), course.submitted, name)
    cmd = [sys.executable, "-m", "cnngrader.tools.batch", "--engine", "dask", "--jobs", "2", "--no-progress",
           "--no-export", "--db-url", url]
    env = tool_env(course.root, CNN_DB_URL=url)
    first = subprocess.Popen(cmd, cwd=course.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 600
    while sum(ledger_counts(course).values()) < 3 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.poll() is None, "the first client finished before it could be stopped"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(30)
    done_first = set(ledger_counts(course))
    assert 3 <= len(done_first) < len(names)
    second = subprocess.run(cmd, cwd=course.root, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode in BATCH_OK, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"graded {len(names) - len(done_first)}, already graded and skipped {len(done_first)}" in second.stdout
    assert ledger_counts(course) == Counter(dict.fromkeys(names, 1))
    assert function_scores(url, A, names) == dict.fromkeys(names, FULL)
    assert submission_rows(url)["s0"] == 1


def test_dask_grades_equal_local_grades_for_the_accuracy_catalogue(pg, acc_course, tmp_path_factory):
    """Every mutant, variant and isolation case earns the same points per function under Dask as locally."""
    import shutil

    url = pg.url("accuracy")
    course = pg_course(tmp_path_factory.mktemp("dask-accuracy") / "course", url)
    # The fresh copy's submitted/ is empty: the catalogue is copied in beside nothing.
    shutil.copytree(acc_course.submitted, course.submitted, symlinks=True, dirs_exist_ok=True)
    students = sorted(p.name for p in course.submitted.iterdir() if p.is_dir())
    limits = for_assignment(from_course(course.root), spec_of(course))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_COURSE_ROOT", str(course.root))
        report = dask_engine.grade(course.root, A, students, db_url=url, limits=limits, jobs=2, progress=False)
    assert not report.failed and not report.refused
    local = acc_course.scores()
    remote = function_scores(url, A, students)
    differ = {s: (local[s], remote[s]) for s in students if local[s] != remote[s]}
    assert not differ, f"{len(differ)} of {len(students)} submissions differ: {dict(list(differ.items())[:3])}"
    assert len(students) > 80


def test_tampered_bundle_is_refused(faults):
    """A worker refuses a bundle whose bytes do not hash to the announced sha256."""
    made = bundle.build(faults.course.root, A, faults.url)
    bad = bytearray(made.data)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(bundle.BundleError, match="refused"):
        bundle.verify(bytes(bad), made.sha256)
    assert bundle.verify(made.data, made.sha256)["assignment"] == A


def test_bundle_is_stable_and_holds_no_student(faults):
    """The same inputs give the same bundle, and its gradebook template has no student in it."""
    import io
    import sqlite3
    import tarfile
    import tempfile

    one = bundle.build(faults.course.root, A, faults.url)
    two = bundle.build(faults.course.root, A, faults.url)
    assert one.sha256 == two.sha256
    with tarfile.open(fileobj=io.BytesIO(one.data)) as tar:
        names = tar.getnames()
        db = tar.extractfile("gradebook.db").read()
    assert not any(n.startswith(("submitted/", "autograded/", "feedback/", ".grading/")) for n in names)
    with tempfile.NamedTemporaryFile(suffix=".db") as fh:
        fh.write(db)
        fh.flush()
        con = sqlite3.connect(fh.name)
        assert con.execute("SELECT count(*) FROM student").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM grade_cells").fetchone()[0] > 0
        # The worker's OverwriteKernelspec needs the source's kernelspec, as the local engine has it.
        (kernelspec,) = con.execute("SELECT kernelspec FROM notebook").fetchone()
        assert json.loads(kernelspec)["name"] == "python3"
        con.close()
    assert paths.course_id(faults.course.root) == one.manifest["course"]
