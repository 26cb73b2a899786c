"""The stock ``nbgrader autograde`` (what formgrader runs) is the hardened pipeline, configured from one file."""

from __future__ import annotations

import json
import textwrap

import nbformat
import pytest
from conftest import TEST_CONFIG

from cnngrader.core import paths
from cnngrader.core.record import load as load_record
from cnngrader.tools import submissions
from cnngrader.tools.workspace import make_course, nbgrader, tool_env

pytestmark = pytest.mark.slow

#: Unusual values, so a match cannot be a coincidence of defaults.
SMALL = {"memory_bytes": 805306368, "kernel_cpu_seconds": 123, "tmp_bytes": 9 << 20, "home_bytes": 11 << 20,
         "cpu_seconds": 5, "wall_seconds": 10.0}

PROBE_CELL = textwrap.dedent("""
    import os, resource
    print("RLIMIT_AS", resource.getrlimit(resource.RLIMIT_AS)[0])
    print("RLIMIT_CPU", resource.getrlimit(resource.RLIMIT_CPU)[0])
    for path in ("/tmp", os.getcwd()):
        st = os.statvfs(path)
        print("SIZE", path, st.f_blocks * st.f_frsize)
""")


def _outputs(course, student: str) -> str:
    path = course.root / "autograded" / student / paths.default_assignment() / f"{paths.default_assignment()}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "stream")


def _scores(course, student: str) -> float:
    return sum(course.scores()[student].values())


def test_limits_from_the_config_reach_the_kernel(tmp_path):
    course = make_course(tmp_path / "course", limits=SMALL, extra_config=TEST_CONFIG)
    submissions.write(submissions.solved(extra=[PROBE_CELL]), course.submitted, "probe")
    proc = nbgrader(course.root, "autograde", course.assignment, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = _outputs(course, "probe")
    assert f"RLIMIT_AS {SMALL['memory_bytes']}" in text, text[:2000]
    assert f"RLIMIT_CPU {SMALL['kernel_cpu_seconds']}" in text
    assert f"SIZE /tmp {SMALL['tmp_bytes']}" in text
    assert f"SIZE /home/student {SMALL['home_bytes']}" in text
    assert _scores(course, "probe") == 100


def test_stock_autograde_records_every_submission_with_a_reason(tmp_path):
    course = make_course(tmp_path / "course", limits=SMALL, extra_config=TEST_CONFIG)
    submissions.write_demo(course.submitted)
    (course.submitted / "frank" / course.assignment).mkdir(parents=True)  # a submission with nothing in it
    # eve changed one locked test cell: that, and only that, is reported and undone.
    submissions.write(submissions.solved(edit={"test_zero_pad_shape": "pass"}), course.submitted, "eve")
    proc = nbgrader(course.root, "autograde", course.assignment, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    alarms = [line for line in proc.stderr.splitlines() if "Attribute 'checksum'" in line]
    assert len(alarms) == 1 and "test_zero_pad_shape" in alarms[0], alarms
    scores = course.scores()
    assert sum(scores["alice"].values()) == 100 and sum(scores["eve"].values()) == 100
    for student, reason in (("dave", "malformed notebook"), ("erin", "missing notebook"),
                            ("frank", "missing notebook")):
        assert sum(scores[student].values()) == 0
        record = load_record(course.assignment, student, course.root)
        assert any(reason in note for note in record.attention), record
    feedback = nbgrader(course.root, "generate_feedback", course.assignment, "--force", check=False)
    assert feedback.returncode == 0, feedback.stderr[-2000:]


def test_failed_regrade_never_leaves_a_stale_score(tmp_path):
    course = make_course(tmp_path / "course", limits=SMALL, extra_config=TEST_CONFIG)
    submissions.write(submissions.solved(), course.submitted, "alice")
    assert nbgrader(course.root, "autograde", course.assignment, check=False).returncode == 0
    assert _scores(course, "alice") == 100
    # The next autograde breaks (as a broken kernel spec or a full disk would).
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write(textwrap.dedent("""
            from nbgrader.preprocessors import NbGraderPreprocessor

            class Broken(NbGraderPreprocessor):
                def preprocess(self, nb, resources):
                    raise RuntimeError("the grading machine broke")

            c.Autograde.autograde_preprocessors = [Broken] + list(c.Autograde.autograde_preprocessors)
        """))
    proc = nbgrader(course.root, "autograde", course.assignment, "--force", check=False)
    assert proc.returncode != 0
    assert _scores(course, "alice") == 0
    record = load_record(course.assignment, "alice", course.root)
    assert record.status == "failed" and "RuntimeError" in record.failure
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        grades = gb.find_submission_notebook(course.assignment, course.assignment, "alice").grades
        assert grades and all(g.needs_manual_grade for g in grades)


def test_hardened_converter_is_what_nbgrader_runs(tmp_path):
    course = make_course(tmp_path / "course", extra_config=TEST_CONFIG)
    code = ("from traitlets.config.loader import PyFileConfigLoader\n"
            "PyFileConfigLoader('nbgrader_config.py', path='.').load_config()\n"
            "import nbgrader.apps.api as api, nbgrader.apps.autogradeapp as app\n"
            "print(api.Autograde.__name__, app.Autograde.__name__)")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], cwd=course.root, env=tool_env(course.root),
                         capture_output=True, text=True)
    assert out.stdout.split() == ["HardenedAutograde", "HardenedAutograde"], out.stderr
    assert json.loads((course.root / "release" / course.assignment / f"{course.assignment}.ipynb").read_text())
