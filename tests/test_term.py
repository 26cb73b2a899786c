"""A real term, end to end, through nbgrader's own exchange.

Four students, each in a workspace of their own with the student's
``nbgrader_config.py`` from ``student/``, driven by nbgrader's ``--student``
flag: release, fetch, work, submit (ben submits twice; the latest counts;
cat submits after the due date; dan submits his notebook under another
name), collect, ``make grade``, feedback, ``release_feedback`` for the whole
class, ``fetch_feedback``. Then the roster's names in the exports, and
``make demo`` run twice beside the real class without touching it.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from conftest import BATCH_OK, TEST_CONFIG, TEST_LIMITS

from cnngrader.core import paths
from cnngrader.tools import submissions
from cnngrader.tools.workspace import Course, make_course, tool_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
A = paths.default_assignment()
ROSTER = [("ann", "Ann", "Lee", "ann@example.edu"), ("ben", "Ben", "Okafor", "ben@example.edu"),
          ("cat", "Cat", "Nguyen", "cat@example.edu"), ("dan", "Dan", "Smith, Jr.", "dan@example.edu")]


class Term:
    def __init__(self, root: Path):
        self.root = root
        self.exchange = root / "exchange"
        self.exchange.mkdir(mode=0o1777)
        self.course: Course = make_course(root / "course", limits=TEST_LIMITS, extra_config=TEST_CONFIG)
        self.env = tool_env(self.course.root, CNN_EXCHANGE=str(self.exchange),
                            JUPYTER_DATA_DIR=str(root / "instructor-data"))
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()

    def run(self, *args: str, cwd: Path | None = None, step: str = "") -> subprocess.CompletedProcess:
        started = time.monotonic()
        env = dict(self.env)
        if cwd is not None:
            # Each student has a home of their own, so their own exchange cache.
            env["JUPYTER_DATA_DIR"] = str(cwd / ".jupyter-data")
        proc = subprocess.run(args, cwd=cwd or self.course.root, env=env, capture_output=True, text=True)
        if step:
            with self._lock:
                self.timings[step] = self.timings.get(step, 0.0) + time.monotonic() - started
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        return proc

    def nbgrader(self, *args: str, cwd: Path | None = None, step: str = "") -> subprocess.CompletedProcess:
        return self.run(str(Path(sys.executable).parent / "nbgrader"), *args, cwd=cwd, step=step)

    def workspace(self, student: str) -> Path:
        ws = self.root / "students" / student
        if not ws.exists():
            ws.mkdir(parents=True)
            shutil.copy(REPO / "student" / "nbgrader_config.py", ws / "nbgrader_config.py")
        return ws

    def fetch_and_submit(self, student: str, nb: nbformat.NotebookNode, name: str = f"{A}.ipynb") -> None:
        ws = self.workspace(student)
        if not (ws / A).exists():
            self.nbgrader("fetch_assignment", A, f"--student={student}", cwd=ws, step="fetch")
        for old in (ws / A).glob("*.ipynb"):
            old.unlink()
        nbformat.write(nb, str(ws / A / name))
        self.nbgrader("submit", A, f"--student={student}", cwd=ws, step="submit")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def term(tmp_path_factory) -> Term:
    t = Term(tmp_path_factory.mktemp("term"))
    roster = t.root / "roster.csv"
    with open(roster, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "first_name", "last_name", "email"])
        writer.writerows(ROSTER)
    t.nbgrader("db", "student", "import", str(roster), step="roster")
    t.nbgrader("release_assignment", A, step="release")

    def ben() -> None:
        t.fetch_and_submit("ben", submissions.read_release())
        time.sleep(1.1)  # submissions are told apart by their timestamp
        t.fetch_and_submit("ben", submissions.buggy())

    # Students work at the same time, each in a workspace of their own.
    def ann() -> None:
        t.fetch_and_submit("ann", submissions.solved())

    def dan() -> None:
        t.fetch_and_submit("dan", submissions.solved(), name="my_copy.ipynb")

    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(f) for f in (ann, ben, dan)]:
            future.result()
    # The due date passes now (to the second, so a full second after the last submission);
    # with no grace period, cat's submission is a few seconds late.
    time.sleep(1.1)
    due = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(t.course.root / "nbgrader_config.py", "a") as fh:
        fh.write(f'\nc.CnnTerm.due_dates = {{"{A}": "{due}"}}\nc.CnnTerm.late_grace_minutes = 0\n')
    time.sleep(1.1)
    t.fetch_and_submit("cat", submissions.solved())

    t.nbgrader("collect", A, step="collect")
    started = time.monotonic()
    grade = subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--jobs", "2", "--no-progress"],
                           cwd=t.course.root, env=t.env, capture_output=True, text=True)
    t.timings["grade"] = time.monotonic() - started
    assert grade.returncode in BATCH_OK, grade.stderr[-3000:]
    t.grade_stdout = grade.stdout
    t.nbgrader("generate_feedback", A, step="feedback")
    t.nbgrader("release_feedback", A, step="release_feedback")  # the whole class, no --student
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda s: t.nbgrader("fetch_feedback", A, f"--student={s}", cwd=t.workspace(s),
                                           step="fetch_feedback"), [s for s, *_ in ROSTER]))
    print("\nround-trip timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.timings.items()))
    return t


def _fetched(term: Term, student: str) -> list[Path]:
    return sorted((term.workspace(student) / A / "feedback").glob("*/*.html"))


def test_every_student_is_graded_from_their_latest_submission(term):
    totals = {s: sum(v.values()) for s, v in term.course.scores().items()}
    assert totals == {"ann": 100, "ben": 88, "cat": 100, "dan": 0}


def test_late_policy_takes_ten_percent_per_started_day(term):
    from nbgrader.api import Gradebook

    with Gradebook(term.course.db_url) as gb:
        penalties = {s: gb.find_submission(A, s).late_submission_penalty or 0.0 for s, *_ in ROSTER}
    assert penalties == {"ann": 0.0, "ben": 0.0, "cat": 10.0, "dan": 0.0}


def test_feedback_reaches_every_student(term):
    for student, *_ in ROSTER:
        assert _fetched(term, student), student
    # dan submitted his work as my_copy.ipynb: his page, under that name, says why it was graded as blank.
    (dan,) = _fetched(term, "dan")
    assert dan.name == "my_copy.html" and "missing notebook" in dan.read_text()
    for student, *_ in ROSTER:
        assert len(_fetched(term, student)) == 1, student  # ben's first submission was not graded


@pytest.mark.parametrize("student", [s for s, *_ in ROSTER])
def test_fetched_feedback_is_self_contained(term, student):
    html = _fetched(term, student)[0].read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I), "a resource loads from the network"
    assert not re.search(r"@import|<script[^>]+src=", html, re.I)
    assert "<math" in html and "$$" not in html  # math is rendered, not left for MathJax
    images = re.findall(r"""<img[^>]+src=["']([^"']+)""", html)
    assert images and all(src.startswith("data:image/") for src in images)
    assert "Test cell" not in html
    assert "white-space: pre-wrap" in html


def test_feedback_summarises_each_function(term):
    html = _fetched(term, "ben")[0].read_text()
    text = re.sub(r"<[^>]+>", " ", html)
    text = re.sub(r"\s+", " ", text)
    assert "conv_forward 17.0/22 stride &gt; 1 failed" in text or "conv_forward 17.0/22 stride > 1 failed" in text
    assert "zero_pad 6.0/6 all hidden tests passed" in text
    assert "Late submission" in _fetched(term, "cat")[0].read_text()


def test_exports_carry_the_roster(term):
    root = term.course.root
    term.nbgrader("export", step="export")
    term.nbgrader("export", "--exporter=cnngrader.glue.exports.CanvasExportPlugin", "--to=canvas.csv", step="export")
    grades = {r["student_id"]: r for r in csv.DictReader(open(root / "grades.csv", newline=""))}
    assert grades["dan"]["last_name"] == "Smith, Jr." and grades["ann"]["first_name"] == "Ann"
    assert float(grades["cat"]["score"]) == 90.0 and float(grades["cat"]["late_submission_penalty"]) == 10.0
    rows = list(csv.reader(open(root / "canvas.csv", newline="")))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and rows[0][5] == A
    assert rows[1][0] == "Points Possible" and float(rows[1][5]) == 100
    canvas = {r[2]: r for r in rows[2:]}
    assert canvas["ben"][0] == "Okafor, Ben" and float(canvas["ben"][5]) == 88
    assert float(canvas["cat"][5]) == 90
    term.run(sys.executable, "-m", "cnngrader.tools.report", "--assignment", A, step="report")
    report = (root / "feedback" / "report.html").read_text()
    assert "Okafor, Ben" in report and "Smith, Jr., Dan" in report


def test_make_demo_never_touches_the_class(term):
    root = term.course.root
    before = (_digest(root / "submitted"), term.course.scores(), (root / "gradebook.db").stat().st_size)
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "cnngrader.tools.demo"], cwd=root, env=term.env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (_digest(root / "submitted"), term.course.scores()) == before[:2]
    assert (root / "submitted" / "ann" / A / "timestamp.txt").exists()
    demo = root / "demo"
    assert (demo / "gradebook.db").exists() and (demo / ".cnn-demo").exists()
    assert sorted(p.name for p in (demo / "submitted").iterdir()) == ["alice", "bob", "carol", "dave", "erin",
                                                                      "fang", "gao"]
    assert sorted(p.name for p in (demo / "submitted" / "gao").iterdir()) == [f"{A}_zh"]
    assert not any(s in term.course.scores() for s in ("alice", "bob", "carol", "fang", "gao"))
    assert "carol" in proc.stdout and "88" in proc.stdout
    # The Chinese edition's demo: gao has carol's bugs, loses the same points, and reads Chinese feedback.
    assert f"== {A}_zh: fang, gao" in proc.stdout
    page = (demo / "feedback" / "gao" / f"{A}_zh" / f"{A}_zh.html").read_text(encoding="utf-8")
    assert "未通过" in page


def test_demo_refuses_a_folder_it_did_not_make(term, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "work.ipynb").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "cnngrader.tools.demo", "--dest", str(precious)],
                          cwd=term.course.root, env=term.env, capture_output=True, text=True)
    assert proc.returncode != 0 and (precious / "work.ipynb").exists()


def test_student_config_names_the_course():
    text = (REPO / "student" / "nbgrader_config.py").read_text()
    assert f'course_id = "{paths.course_id()}"' in text
    assert "course_id = course_id(HERE)" in (REPO / "nbgrader_config.py").read_text()
