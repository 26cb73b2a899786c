"""Benchmark: stock nbgrader against hardened parallel grading (``make bench``).

Builds N submissions (a third each correct, buggy and blank), then grades
them in two copies of the course, in the same run:

* **stock**: ``nbgrader autograde`` in one process with nbgrader's plain
  preprocessors (``CNN_STOCK_NBGRADER=1``): hidden tests run in the student's
  kernel, no sandbox;
* **hardened**: ``python -m cnngrader.tools.batch --jobs JOBS``, every protection on.

Each mode runs ``--repeat`` times (fresh autograde each time, ``--force``);
the report gives medians, their ratio, CPU utilisation, and the projected
time for 1,000 submissions. It also checks that both modes give every
student the same total, since the hardening must not change honest grades.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnngrader.tools import submissions
from cnngrader.tools.workspace import Course, make_course, tool_env


def write_population(course: Course, n: int) -> list[str]:
    solved = submissions.solved()
    blank = submissions.read_release()
    buggy = submissions.buggy()
    students = []
    for i in range(n):
        nb = (solved, buggy, blank)[i % 3]
        student = f"s{i:04d}"
        submissions.write(nb, course.submitted, student)
        students.append(student)
    return students


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one grading command."""
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def run(n: int, jobs: int, repeat: int, workdir: Path) -> dict:
    stock = make_course(workdir / "stock")
    hard = make_course(workdir / "hardened")
    students = write_population(stock, n)
    write_population(hard, n)
    nb_exe = str(Path(sys.executable).parent / "nbgrader")
    stock_env = tool_env(stock.root, CNN_STOCK_NBGRADER="1")
    hard_env = tool_env(hard.root)
    results: dict[str, list[float]] = {"stock": [], "hardened": []}
    for _ in range(repeat):
        results["stock"].append(timed([nb_exe, "autograde", stock.assignment, "--force"], stock.root, stock_env))
        results["hardened"].append(timed([sys.executable, "-m", "cnngrader.tools.batch", "--jobs", str(jobs),
                                          "--no-progress", "--no-summary", "--no-export"], hard.root, hard_env))
    s_scores, h_scores = stock.scores(), hard.scores()
    disagree = [s for s in students if abs(sum(s_scores[s].values()) - sum(h_scores[s].values())) > 1e-9]
    return {"results": results, "disagree": disagree, "n": n, "jobs": jobs}


def report(data: dict) -> str:
    n, jobs = data["n"], data["jobs"]
    med = {k: statistics.median(v) for k, v in data["results"].items()}
    ratio = med["hardened"] / med["stock"]
    lines = [f"{n} submissions, hardened with {jobs} jobs on {os.cpu_count()} cores, "
             f"{len(data['results']['stock'])} run(s) each (medians)",
             f"{'mode':<10}{'wall s':>10}{'s/sub':>10}"]
    for k in ("stock", "hardened"):
        lines.append(f"{k:<10}{med[k]:>10.1f}{med[k] / n:>10.2f}")
    lines.append(f"ratio hardened/stock wall time: {ratio:.2f} (target <= 0.50)")
    lines.append(f"projected for 1,000 submissions: stock {med['stock'] / n * 1000 / 60:.0f} min, "
                 f"hardened {med['hardened'] / n * 1000 / 60:.0f} min")
    lines.append("scores agree between stock and hardened for every student" if not data["disagree"]
                 else f"SCORES DISAGREE for {', '.join(data['disagree'])}")
    return "\n".join(lines)


def notebook_runtime(repeats: int = 5) -> list[float]:
    """Seconds for a student's Run All on the solved notebook (kernel start included)."""
    import shutil

    from nbclient import NotebookClient

    from cnngrader.core import paths

    times = []
    with tempfile.TemporaryDirectory(prefix="cnn-nbrun-") as tmp:
        folder = Path(tmp) / paths.default_assignment()
        shutil.copytree(paths.release_notebook().parent, folder)
        for _ in range(repeats):
            nb = submissions.solved()
            started = time.monotonic()
            NotebookClient(nb, timeout=60, kernel_name="python3",
                           resources={"metadata": {"path": str(folder)}}).execute()
            times.append(time.monotonic() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook-only", action="store_true",
                        help="only time Run All on the solved notebook (target <= 10 s)")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = notebook_runtime()
    print(f"solved notebook, Run All with a fresh kernel: median {statistics.median(runs):.2f} s over "
          f"{len(runs)} runs (max {max(runs):.2f} s; target <= 10 s)")
    if args.notebook_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="cnn-bench-") as tmp:
        data = run(args.n, args.jobs, args.repeat, args.keep or Path(tmp))
    print(report(data))
    return 0 if not data["disagree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

