"""Benchmark: stock nbgrader against hardened grading, local and through Dask (``make bench``).

Builds N submissions (a third each correct, buggy and blank), then grades
them in three copies of the course, in the same run:

* **stock**: ``nbgrader autograde`` in one process with nbgrader's plain
  preprocessors (``CNN_STOCK_NBGRADER=1``): hidden tests run in the student's
  kernel, no sandbox;
* **local**: ``cnn grade --jobs JOBS``, every protection on;
* **dask**: ``cnn grade --engine dask --jobs JOBS``: the same grading on a
  ``distributed.LocalCluster`` of JOBS one-thread workers (bundle, client-side
  gradebook writes and cluster start-up included).

Each mode runs ``--repeat`` times (every submission graded afresh each time);
the report gives medians of the wall time, per submission and as a ratio to
stock, the median grading time of one submission from the records, the peak
memory of a grading worker, and the projected time for 1,000 submissions. It
also checks that all modes give every student the same points, since the
hardening must not change honest grades.
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

from cnngrader.core import paths
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


#: Target of the local engine, as a fraction of stock serial nbgrader's wall time.
TARGET = 0.25
MODES = ("stock", "local", "dask")
LABELS = {"stock": "stock nbgrader, serial", "local": "hardened, local workers",
          "dask": "hardened, Dask LocalCluster"}


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds of one grading command, and the peak RSS (KiB) of its largest process."""
    started = time.monotonic()
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=null, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        if proc.returncode not in (0, 3):
            err.seek(0)
            raise RuntimeError(f"{cmd[2:5]} failed ({proc.returncode}):\n{err.read()[-4000:].decode(errors='replace')}")
    return wall, usage.ru_maxrss


def _record_stats(course: Course) -> tuple[float | None, int | None]:
    """Median grading seconds of one submission, and the largest grading worker's peak RSS (KiB)."""
    records = course.records().values()
    seconds = [r.grading_seconds for r in records if r.grading_seconds is not None]
    rss = [r.grader_maxrss_kib for r in records if r.grader_maxrss_kib is not None]
    return (statistics.median(seconds) if seconds else None), (max(rss) if rss else None)


def run(n: int, jobs: int, repeat: int, workdir: Path, modes: tuple[str, ...] = MODES) -> dict:
    courses = {mode: make_course(workdir / mode) for mode in modes}
    students = []
    for course in courses.values():
        students = write_population(course, n)
    grade = [sys.executable, "-m", "cnngrader.tools.batch", "--jobs", str(jobs), "--no-progress", "--no-summary",
             "--no-export"]
    commands = {"stock": [str(Path(sys.executable).parent / "nbgrader"), "autograde", paths.default_assignment(),
                          "--force"],
                "local": grade,
                "dask": [*grade, "--engine", "dask", "--force"]}
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    peak: dict[str, int] = dict.fromkeys(modes, 0)
    per_sub: dict[str, float | None] = {}
    for _ in range(repeat):
        for mode in modes:
            course = courses[mode]
            env = tool_env(course.root, **({"CNN_STOCK_NBGRADER": "1"} if mode == "stock" else {}))
            wall, rss = timed(commands[mode], course.root, env)
            results[mode].append(wall)
            peak[mode] = max(peak[mode], rss)
    for mode in modes:
        if mode != "stock":
            per_sub[mode], worker_rss = _record_stats(courses[mode])
            peak[mode] = worker_rss or peak[mode]
    scores = {mode: courses[mode].scores() for mode in modes}
    first = scores[modes[0]]
    disagree = sorted({s for mode in modes for s in students if scores[mode][s] != first[s]})
    return {"results": results, "disagree": disagree, "n": n, "jobs": jobs, "peak_kib": peak, "per_sub": per_sub}


def back_of_envelope(med: dict[str, float], n: int, cores: int, goal: int = 10_000) -> list[str]:
    """Submissions per hour per core, and the cores needed for ``goal`` submissions in an hour."""
    import math

    lines = [f"back of envelope ({cores} cores here): submissions per hour per core, and cores for "
             f"{goal:,} submissions in an hour"]
    for k in ("stock", "local", "dask"):
        if k in med:
            per_core = 3600 * n / med[k] / (1 if k == "stock" else cores)
            lines.append(f"  {LABELS[k]:<30}{per_core:>8.0f} /h/core{math.ceil(goal / per_core):>8d} cores")
    return lines


def report(data: dict) -> str:
    n, jobs = data["n"], data["jobs"]
    modes = [m for m in MODES if m in data["results"]]
    med = {k: statistics.median(v) for k, v in data["results"].items()}
    runs = len(next(iter(data["results"].values())))
    lines = [f"{n} submissions on {os.cpu_count()} cores, hardened modes with {jobs} workers, "
             f"{runs} run(s) of each mode, interleaved (medians)",
             f"{'mode':<30}{'wall s':>8}{'s/sub':>8}{'x stock':>9}{'median 1 sub':>14}{'peak RSS/worker':>17}"
             f"{'1,000 subs':>12}"]
    for k in modes:
        one = data["per_sub"].get(k)
        lines.append(f"{LABELS[k]:<30}{med[k]:>8.1f}{med[k] / n:>8.2f}{med[k] / med['stock']:>9.2f}"
                     f"{(f'{one:.2f} s' if one is not None else '-'):>14}"
                     f"{data['peak_kib'][k] / 1024:>13.0f} MiB{med[k] / n * 1000 / 60:>8.0f} min")
    if "local" in med:
        ratio = med["local"] / med["stock"]
        verdict = "met" if ratio <= TARGET else "NOT met"
        lines.append(f"local hardened / stock serial: {ratio:.2f} (target <= {TARGET:.2f}: {verdict})")
    lines.append("(stock's peak RSS is its one nbgrader process with its kernels; the others' is the largest "
                 "grading worker, from the records)")
    lines += back_of_envelope(med, n, data.get("cores") or os.cpu_count() or 1)
    lines.append("scores agree between every mode for every student" if not data["disagree"]
                 else f"SCORES DISAGREE for {', '.join(data['disagree'])}")
    return "\n".join(lines)


def notebook_runtime(repeats: int = 5) -> list[float]:
    """Seconds for a student's Run All on the solved notebook (kernel start included)."""
    import shutil

    from nbclient import NotebookClient

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
    parser.add_argument("--repeat", type=int, default=0,
                        help="runs of each mode (default: 3 up to 40 submissions, else 1)")
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {', '.join(MODES)}")
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m in MODES)
    args.repeat = args.repeat or (3 if args.n <= 40 else 1)
    if "stock" not in modes:
        parser.error("the stock mode is the yardstick and must run")
    runs = notebook_runtime()
    print(f"solved notebook, Run All with a fresh kernel: median {statistics.median(runs):.2f} s over "
          f"{len(runs)} runs (max {max(runs):.2f} s; target <= 10 s)")
    if args.notebook_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="cnn-bench-") as tmp:
        data = run(args.n, args.jobs, args.repeat, args.keep or Path(tmp), modes)
    print(report(data))
    return 0 if not data["disagree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

