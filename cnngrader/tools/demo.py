"""``make demo``: the whole course on bundled example submissions, in a folder of its own.

The demo is a copy of the course in ``demo/`` (git-ignored) with its own
gradebook, ``submitted/``, ``autograded/`` and ``feedback/``. It never reads,
moves or deletes anything of the real class: not ``submitted/``, not the
gradebook, not the exchange. Running it again rebuilds ``demo/`` only, and
only if that folder carries the demo's marker file.

First notebook (see :func:`cnngrader.tools.submissions.write_demo`): alice
is correct, bob blank, carol has three realistic bugs, dave's notebook is not
valid JSON and erin's notebook was renamed. Capstone
(:func:`cnngrader.tools.submissions.write_capstone_demo`): alice trains her
own network to full marks, bob is blank, carol has two bugs. Chinese edition of
the first notebook (:func:`cnngrader.tools.submissions.write_edition_demo`):
fang is correct and gao has carol's bugs; their feedback is in Chinese, and
the first notebook's report shows both editions in one table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from cnngrader.core import i18n, paths
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
    env = tool_env(dest)
    worst = 0
    for assignment in paths.assignments(dest):
        if assignment == course.assignment:
            students = submissions.write_demo(course.submitted)
        else:
            nbgrader(dest, "generate_assignment", assignment, "--force")
            students = submissions.write_capstone_demo(dest, assignment)
        graded = [(assignment, students)]
        if assignment == course.assignment:
            # The first notebook's Chinese edition too (the capstone's would add another training run).
            for lang in i18n.languages(dest):
                edition = i18n.edition_id(assignment, lang)
                nbgrader(dest, "generate_assignment", edition, "--force")
                graded.append((edition, submissions.write_edition_demo(dest, edition)))
        for name, who in graded:
            print(f"\n== {name}: {', '.join(who)}")
            batch = subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--assignment", name,
                                    "--jobs", "2", "--no-summary"], cwd=dest, env=env)
            worst = max(worst, batch.returncode)
            nbgrader(dest, "generate_feedback", name, "--force")
        # One report per assignment, every edition in it.
        subprocess.run([sys.executable, "-m", "cnngrader.tools.report", "--assignment", assignment],
                       cwd=dest, env=env, check=True)
        for name, _ in graded:
            subprocess.run([sys.executable, "-m", "cnngrader.tools.batch", "--assignment", name,
                            "--summary-only"], cwd=dest, env=env, check=True)
    print(f"\nfeedback in {dest / 'feedback'}, reports in {dest / 'feedback'} (report*.html)")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="demo folder (default: <course>/demo)")
    args = parser.parse_args(argv)
    code = build(args.dest or demo_root())
    # 3 means "some submissions need attention": dave and erin are there on purpose.
    return 0 if code in (0, 3) else code


if __name__ == "__main__":
    raise SystemExit(main())
