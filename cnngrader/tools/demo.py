"""``make demo``: the whole course on bundled example submissions, in a folder of its own.

The demo is a copy of the course in ``demo/`` (git-ignored) with its own
gradebook, ``submitted/``, ``autograded/`` and ``feedback/``. It never reads,
moves or deletes anything of the real class: not ``submitted/``, not the
gradebook, not the exchange. Running it again rebuilds ``demo/`` only, and
only if that folder carries the demo's marker file.

Students (see :func:`cnngrader.tools.submissions.write_demo`): alice is correct,
bob blank, carol has three realistic bugs, dave's notebook is not valid JSON
and erin's notebook was renamed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from cnngrader.core import paths
from cnngrader.tools import submissions
from cnngrader.tools.workspace import make_course, nbgrader, tool_env

MARKER = ".cnn-demo"


def demo_root(root: Path | None = None) -> Path:
    return (root or paths.course_root()) / "demo"


def build(dest: Path) -> int:
    """Rebuild the demo course in ``dest``, grade it, write feedback and the report; return the batch's code."""
    if dest.exists():
        if not (dest / MARKER).is_file():
            raise SystemExit(f"{dest} exists but is not a demo folder (no {MARKER}); refusing to touch it")
        shutil.rmtree(dest)
    course = make_course(dest)
    (dest / MARKER).write_text("Built by `make demo`; everything in this folder is rebuilt on the next run.\n")
    students = submissions.write_demo(course.submitted)
    print(f"demo course in {dest}: {', '.join(students)}")
    env = tool_env(dest)
    batch = subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--jobs", "2", "--no-summary"],
                           cwd=dest, env=env)
    nbgrader(dest, "generate_feedback", course.assignment, "--force")
    subprocess.run([sys.executable, "-m", "cnngrader.tools.report", "--assignment", course.assignment],
                   cwd=dest, env=env, check=True)
    subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--summary-only"], cwd=dest, env=env, check=True)
    print(f"\nfeedback in {dest / 'feedback'}, report in {dest / 'feedback' / 'report.html'}")
    return batch.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="demo folder (default: <course>/demo)")
    args = parser.parse_args(argv)
    code = build(args.dest or demo_root())
    # 3 means "some submissions need attention": dave and erin are there on purpose.
    return 0 if code in (0, 3) else code


if __name__ == "__main__":
    raise SystemExit(main())
