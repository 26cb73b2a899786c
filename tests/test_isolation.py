"""One student cannot hurt another: a CPU-hungry victim graded next to an attacker scores what it scores alone.

The victim is a correct submission whose conv_forward burns CPU before
answering (``VICTIM_CPU`` seconds, a slow but honest solution). The attacker
is a blank submission whose first cell starts twenty spinning processes that
leave their session, in the kernel and in every function's sandbox. Time
limits are CPU time per function, counted by the cgroup, and each
submission's cgroup gets an equal CPU share, so the attacker only burns its
own budget.

``make isolation`` runs the full-size version (the issue's numbers: a 3 s
victim, default limits, a 30,000-file submission).
"""

from __future__ import annotations

import os
import time

import pytest
from conftest import BATCH_OK, TEST_CONFIG, build_attack
from hostile_cases import ATTACKS

from cnngrader.sandbox import cgroups
from cnngrader.tools import submissions
from cnngrader.tools.workspace import make_course

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not cgroups.backend().enabled, reason=f"cgroups off: {cgroups.backend().reason}")]

FULL = os.environ.get("CNN_FULL_SIZE") == "1"
VICTIM_CPU = 3.0 if FULL else 2.0
LIMITS = {} if FULL else {"cpu_seconds": 5, "wall_seconds": 20.0, "kernel_cpu_seconds": 30,
                          "kernel_wall_seconds": 60.0}

VICTIM_FORWARD = f"""
import time as _time
_burned = [False]


def conv_forward(A_prev, W, b, hparameters):
    if not _burned[0]:
        start = _time.process_time()
        while _time.process_time() - start < {VICTIM_CPU}:
            pass
        _burned[0] = True
    return _reference_conv_forward(A_prev, W, b, hparameters)
"""


def _victim():
    cells = submissions.reference_cells()
    reference = cells["conv_forward"].replace("def conv_forward(", "def _reference_conv_forward(")
    cells["conv_forward"] = reference + "\n" + VICTIM_FORWARD
    return submissions.build(cells)


def test_victim_scores_the_same_next_to_an_attacker(tmp_path):
    course = make_course(tmp_path / "course", limits=LIMITS, extra_config=TEST_CONFIG)
    submissions.write(_victim(), course.submitted, "victim")
    started = time.monotonic()
    alone = course.grade(jobs=2, extra_args=("--students", "victim"))
    assert alone.returncode in BATCH_OK, alone.stderr[-3000:]
    alone_seconds = time.monotonic() - started
    score_alone = course.scores()["victim"]
    assert sum(score_alone.values()) == 100

    hog = next(a for a in ATTACKS if a.name == "cpu_hog")
    build_attack(hog, course.submitted)
    started = time.monotonic()
    together = course.grade(jobs=2, extra_args=("--students", "victim,h_cpu_hog"))
    together_seconds = time.monotonic() - started
    assert together.returncode in BATCH_OK, together.stderr[-3000:]
    scores = course.scores()
    print(f"\nvictim alone: {sum(score_alone.values()):g} in {alone_seconds:.1f} s; next to the attacker: "
          f"{sum(scores['victim'].values()):g} (attacker {sum(scores['h_cpu_hog'].values()):g}) "
          f"in {together_seconds:.1f} s")
    assert scores["victim"] == score_alone
    assert sum(scores["h_cpu_hog"].values()) == 0
    record = course.records()["victim"]
    assert record.function_cpu_seconds["conv_forward"] >= VICTIM_CPU
    assert not record.wall_timeouts and not record.retried_alone


@pytest.mark.skipif(not FULL, reason="make isolation only; the hostile catalogue covers 12,000 files in CI")
def test_thirty_thousand_files_are_set_aside_quickly(tmp_path):
    """The issue's 30,000 one-byte files next to a correct notebook: graded 100 within a minute, with a reason."""
    course = make_course(tmp_path / "course", limits=LIMITS, extra_config=TEST_CONFIG)
    notebook = submissions.write(submissions.solved(), course.submitted, "many")
    junk = notebook.parent / "junk"
    junk.mkdir()
    for k in range(30_000):
        (junk / f"f{k}.txt").write_bytes(b"x")
    started = time.monotonic()
    result = course.grade(jobs=2, extra_args=("--students", "many"))
    seconds = time.monotonic() - started
    assert result.returncode in BATCH_OK, result.stderr[-3000:]
    total = sum(course.scores()["many"].values())
    notes = " ".join(course.records()["many"].attention)
    print(f"\n30,000 files: {total:g}/100 in {seconds:.1f} s; recorded: {notes[:200]}")
    assert total == 100 and seconds < 60
    assert "more than" in notes
