"""The hostile catalogue: no attack earns a point, leaks a secret, damages anything or hangs grading."""

from __future__ import annotations

import csv
import json
import re
import sqlite3

import nbformat
import numpy as np
import pytest
from conftest import DEMO
from hostile_cases import ATTACKS, BLANK

from cnngrader.core import codec, paths, reference, spec
from cnngrader.core.hidden_data import HiddenData

pytestmark = pytest.mark.slow

BOUND_SECONDS = 90
#: Largest autograded notebook and feedback page any attack may produce.
MAX_NOTEBOOK_BYTES = 3_000_000
MAX_FEEDBACK_BYTES = 5_000_000
#: The trusted grading process's peak resident memory, whatever a submission sends back.
MAX_GRADER_RSS_KIB = 1_500_000
#: Host disk growth allowed for the whole hostile batch (staged copies and outputs; nothing a sandbox writes).
MAX_DISK_GROWTH = 400 << 20


def _solution_lines() -> set[str]:
    """Solution lines that appear nowhere in the release (the prose teaches some one-liners on purpose)."""
    public = paths.release_notebook().read_text()
    lines = set()
    for src in reference.solution_cells().values():
        body = re.search(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", src, re.S).group(1)
        lines |= {line.strip() for line in body.splitlines() if len(line.strip()) > 24}
    return {line for line in lines if json.dumps(line)[1:-1] not in public}


def _hidden_values() -> set[str]:
    """How hidden input values would look if printed (NumPy's 8 decimals and Python's repr)."""
    data = HiddenData()
    tokens: set[str] = set()

    def add(value):
        if isinstance(value, np.ndarray):
            for v in value.ravel()[:40]:
                if abs(v) > 0.01:
                    tokens.add(f"{abs(v):.8f}")
                    tokens.add(repr(abs(float(v)))[:12])
        elif isinstance(value, tuple | list):
            for v in value:
                add(v)


    for check in spec.load().checks:
        for _, args, _ in data.cases(check.grade_id):
            add(codec.to_args(args))
    return tokens


HIDDEN_MARKERS = ("run_check(", "from cnngrader.incell import", "BEGIN HIDDEN TESTS")


@pytest.fixture(scope="module")
def secrets() -> tuple[set[str], set[str]]:
    return _solution_lines(), _hidden_values()


def _files(graded, student):
    course = graded.course
    graded_dir = course.root / "autograded" / student / paths.default_assignment()
    nb_path = graded_dir / f"{paths.default_assignment()}.ipynb"
    fb_path = course.root / "feedback" / student / paths.default_assignment() / f"{paths.default_assignment()}.html"
    return nb_path, fb_path


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_attack(graded, attack, secrets):
    student = f"h_{attack.name}"
    course = graded.course
    scores = course.scores()[student]
    record = course.records()[student]
    points = spec.load().function_points()
    messages = " ".join(record.messages())

    # 1. The attack earns nothing: blank attacks score 0, crash attacks lose exactly their function.
    assert sum(scores.values()) == attack.total, (scores, record.cells)
    if attack.broken:
        assert scores[attack.broken] == 0
        assert all(scores[f] == points[f] for f in points if f != attack.broken)
        assert attack.reason in messages, messages[:2000]
    for phrase in attack.says:
        assert phrase in messages, (phrase, messages[:2000])

    # 2. Nothing hidden or secret in what the student sees, and no page or notebook blown up.
    nb_path, fb_path = _files(graded, student)
    nb = nbformat.read(str(nb_path), as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    feedback = fb_path.read_text()
    solution_lines, hidden_values = secrets
    for marker in HIDDEN_MARKERS:
        assert marker not in outputs and marker not in feedback, marker
    if attack.base == BLANK:
        for line in solution_lines:
            assert line not in outputs and line not in feedback, line
    leaked = [v for v in hidden_values if v in outputs or v in feedback]
    assert not leaked, leaked[:5]
    assert "test_fake_bonus" not in json.dumps(scores)
    assert nb_path.stat().st_size < MAX_NOTEBOOK_BYTES
    assert fb_path.stat().st_size < MAX_FEEDBACK_BYTES

    # 3. The gradebook is intact and the other students' scores did not move.
    con = sqlite3.connect(course.root / "gradebook.db")
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    now = course.scores()
    for other in DEMO:
        assert now[other] == graded.before[other], other

    # 4. Grading finished within a bound, and the trusted process stayed small.
    assert record.grading_seconds < BOUND_SECONDS
    assert record.grader_maxrss_kib < MAX_GRADER_RSS_KIB


def test_catalogue_is_large_enough():
    assert len(ATTACKS) >= 40


def test_sandbox_and_cgroups_were_on(graded):
    records = [r for r in graded.course.records().values() if r.sandboxed is not None]
    assert records and all(r.sandboxed for r in records)
    from cnngrader.sandbox import cgroups

    if cgroups.backend().enabled:
        assert all(r.cgroups for r in records)


def test_course_files_untouched(graded):
    root = graded.course.root
    # (submitted/ is left out: it holds a folder nested deeper than any path may be long.)
    for folder in ("autograded", "feedback", "source", "release", ".grading/results"):
        assert not list((root / folder).rglob("pwned.txt")), folder
    assert not list(root.glob("pwned.txt"))
    assert not list((root / "autograded").rglob("fill*.bin"))
    assert (root / "source" / paths.default_assignment() / f"{paths.default_assignment()}.ipynb").stat().st_size > 10000
    for student in DEMO[:3]:
        nb = root / "autograded" / student / paths.default_assignment() / f"{paths.default_assignment()}.ipynb"
        assert nbformat.read(str(nb), as_version=4).cells


def test_attack_batch_time(graded):
    # A few attacks hang a function until its limit; everything else is quick.
    assert graded.seconds < 900


def test_host_disk_stays_bounded(graded):
    """Everything a sandbox writes lands on a size-capped tmpfs, never on the host's disk."""
    assert graded.disk_growth < MAX_DISK_GROWTH, graded.disk_growth


def test_memory_is_capped_per_submission(graded):
    record = graded.course.records()["h_disk_and_memory_fill"]
    limits = 3 << 30
    assert 0 < (record.submission_memory_peak or 1) <= limits


def test_console_and_csv_are_safe(graded):
    """Escape sequences and bytes that are not UTF-8 never reach the terminal or a spreadsheet raw."""
    assert "\x1b" not in graded.stdout and "\x1b" not in graded.stderr
    with open(graded.course.root / "grades_by_function.csv", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    text = json.dumps(rows)
    assert "\\u001b" not in text and "\\udc" not in text
    for row in rows[1:]:
        for cell in row:
            assert not (cell and cell[0] in "=+-@") or re.fullmatch(r"-?[\d.]+", cell), cell
    row = next(r for r in graded.stdout.splitlines() if r.startswith("h_escape_sequence_notebook"))
    assert "\\x1b" in row and row.split()[9] == "0"  # escaped, and the total is still 0


def test_file_name_problems_are_recorded(graded):
    record = graded.course.records()["h_hostile_file_names"]
    notes = " ".join(record.attention)
    assert "not clean UTF-8" in notes
    assert "FIFO" in notes
    assert "nested deeper" in notes
    assert "more than" in notes


def test_wall_clock_timeouts_with_work_done_are_retried_alone(graded):
    """A function stopped by the wall clock while it was working is graded again, alone."""
    record = graded.course.records()["h_busy_then_wall_clock"]
    assert record.retried_alone is True
    assert record.wall_timeouts == ["distribute_value"]
    sleeper = graded.course.records()["h_sleep_forever"]
    assert not sleeper.retried_alone  # it slept: the machine's load was not the reason
