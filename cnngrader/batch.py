"""Grade every submission in parallel: ``make grade`` (``python -m cnngrader.batch``).

Each worker process runs nbgrader's own autograde (through ``NbGraderAPI``)
for one student at a time, with the hardened preprocessors from
``nbgrader_config.py``. Workers stay alive between students, so nbgrader,
NumPy and the hidden data load once per worker instead of once per student.

Before grading, every submission is staged into ``.grading/staged/``:

* a missing, renamed or malformed notebook is replaced by the blank release,
  so the student gets a recorded submission that scores 0, and the reason is
  kept for the instructor;
* symlinks and oversized files are left out, and so is anything that is not
  a regular file;
* ``submitted/`` itself is never modified.

After grading, a per-student, per-function table is printed and
``grades.csv`` (nbgrader's own CSV export) and ``grades_by_function.csv`` are
written. Regrading is idempotent: the same submissions give the same rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import cases, paths

STAGED = ".grading/staged"
MAX_FILE = 16 * 1024 * 1024


@dataclass
class Staged:
    student: str
    attention: list[str] = field(default_factory=list)


def _valid_id(name: str) -> bool:
    return bool(name) and not name.startswith(".") and all(ch.isalnum() or ch in "-_@." for ch in name)


def stage(root: Path, submitted: Path, assignment: str, students: list[str] | None = None) -> list[Staged]:
    """Copy submissions into the staging area, repairing what would stop nbgrader."""
    staged_root = root / STAGED
    if staged_root.exists():
        shutil.rmtree(staged_root)
    release = paths.release_notebook(assignment, root)
    out: list[Staged] = []
    names = students or sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.is_symlink())
    for student in names:
        item = Staged(student)
        if not _valid_id(student):
            print(f"skipping {student!r}: not a valid student id", file=sys.stderr)
            continue
        src = submitted / student / assignment
        dest = staged_root / student / assignment
        dest.mkdir(parents=True)
        if src.is_dir() and not src.is_symlink():
            for path in sorted(src.rglob("*")):
                rel = path.relative_to(src)
                if path.is_symlink():
                    item.attention.append(f"ignored symlink {rel}")
                elif path.is_file():
                    if path.stat().st_size > MAX_FILE:
                        item.attention.append(f"ignored oversized file {rel}")
                        continue
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
        notebook = dest / f"{assignment}.ipynb"
        if not notebook.exists():
            others = sorted(p.name for p in dest.glob("*.ipynb"))
            found = f" (found: {', '.join(others)})" if others else ""
            item.attention.append(f"missing notebook {assignment}.ipynb{found}: graded as blank")
            shutil.copyfile(release, notebook)
        else:
            try:
                nb = nbformat.read(str(notebook), as_version=4)
                nbformat.validate(nb)
            except Exception as exc:  # noqa: BLE001 - any unreadable notebook is handled the same way
                reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                item.attention.append(f"malformed notebook ({type(exc).__name__}: {reason}): graded as blank")
                shutil.copyfile(release, notebook)
        out.append(item)
    return out


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------

_API = None


def _init_worker(root: str, db_url: str | None) -> None:
    global _API
    import warnings

    # nbgrader's gradebook code triggers harmless SQLAlchemy autoflush warnings on every submission.
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session")
    os.chdir(root)
    os.environ["CNN_COURSE_ROOT"] = root
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    config.CourseDirectory.root = root
    config.CourseDirectory.submitted_directory = STAGED
    if db_url:
        config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    _API = NbGraderAPI(coursedir=coursedir, config=config)
    # Warm the per-process caches once, before the first student.
    from .preprocessors import hidden_data

    hidden_data()


def _grade_one(assignment: str, student: str) -> tuple[str, bool, str, float]:
    started = time.monotonic()
    assert _API is not None
    try:
        result = _API.autograde(assignment, student, force=True, create=True)
        ok = bool(result.get("success"))
        error = "" if ok else (result.get("error") or result.get("log") or "")[-2000:]
    except Exception as exc:  # noqa: BLE001 - one student's failure must not stop the batch
        ok, error = False, f"{type(exc).__name__}: {exc}"
    return student, ok, error, time.monotonic() - started


def grade_all(root: Path, assignment: str, staged: list[Staged], jobs: int, db_url: str | None,
              progress: bool = True) -> dict[str, tuple[bool, str, float]]:
    from tqdm import tqdm

    results: dict[str, tuple[bool, str, float]] = {}
    bar = tqdm(total=len(staged), unit="sub", desc=f"grading ({jobs} jobs)", disable=not progress,
               file=sys.stderr)
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(str(root), db_url)) as pool:
        futures = [pool.submit(_grade_one, assignment, s.student) for s in staged]
        for fut in as_completed(futures):
            student, ok, error, seconds = fut.result()
            results[student] = (ok, error, seconds)
            bar.update(1)
            bar.set_postfix_str(student[:20])
    bar.close()
    return results


# ---------------------------------------------------------------------------
# Records, summary and export
# ---------------------------------------------------------------------------

def annotate(root: Path, assignment: str, staged: list[Staged],
             results: dict[str, tuple[bool, str, float]]) -> None:
    """Add staging problems and grading failures to each student's record."""
    folder = paths.records_dir(assignment, root)
    folder.mkdir(parents=True, exist_ok=True)
    for item in staged:
        path = folder / f"{item.student}.json"
        ok, error, seconds = results.get(item.student, (False, "not graded", 0.0))
        record = {}
        if path.exists():
            try:
                record = json.loads(path.read_text())
            except ValueError:
                record = {}
        attention = list(item.attention)
        if not ok:
            attention.append(f"autograde failed: {error.strip().splitlines()[-1] if error.strip() else 'unknown'}")
        record.update({"student": item.student, "assignment": assignment, "attention": attention,
                       "grading_seconds": round(seconds, 2)})
        path.write_text(json.dumps(record, indent=1))


def function_scores(db_url: str, assignment: str, students: list[str]) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    fn_of = {c.grade_id: c.function for c in cases.checks()}
    table: dict[str, dict[str, float]] = {}
    with Gradebook(paths.normalise_db_url(db_url)) as gb:
        for student in students:
            row = {fn: 0.0 for fn in paths.FUNCTIONS}
            try:
                nb = gb.find_submission_notebook(assignment, assignment, student)
            except MissingEntry:
                table[student] = row
                continue
            for grade in nb.grades:
                fn = fn_of.get(grade.name)
                if fn:
                    row[fn] += float(grade.score or 0)
            table[student] = row
    return table


def summary_table(scores: dict[str, dict[str, float]], reasons: dict[str, str]) -> str:
    points = cases.function_points()
    short = {"zero_pad": "pad", "conv_single_step": "step", "conv_forward": "conv_fwd",
             "pool_forward": "pool_fwd", "conv_backward": "conv_bwd", "create_mask_from_window": "mask",
             "distribute_value": "distrib", "pool_backward": "pool_bwd"}
    heads = ["student"] + [f"{short[fn]}/{points[fn]}" for fn in paths.FUNCTIONS] + ["total/100", "notes"]
    rows = []
    for student in sorted(scores):
        row = scores[student]
        total = sum(row.values())
        rows.append([student] + [f"{row[fn]:g}" for fn in paths.FUNCTIONS] + [f"{total:g}", reasons.get(student, "")])
    widths = [max(len(str(r[i])) for r in [heads] + rows) for i in range(len(heads) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=False)) + "  " + heads[-1]]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(lines)


def export(root: Path, db_url: str, scores: dict[str, dict[str, float]], reasons: dict[str, str]) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    plugin = CsvExportPlugin(to=str(root / "grades.csv"))
    with Gradebook(db_url) as gb:
        plugin.export(gb)
    with open(root / "grades_by_function.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", *paths.FUNCTIONS, "total", "notes"])
        for student in sorted(scores):
            row = scores[student]
            writer.writerow([student, *(f"{row[fn]:g}" for fn in paths.FUNCTIONS), f"{sum(row.values()):g}",
                             reasons.get(student, "")])


def reasons_for(root: Path, assignment: str, students: list[str]) -> dict[str, str]:
    out = {}
    for student in students:
        path = paths.records_dir(assignment, root) / f"{student}.json"
        if not path.exists():
            out[student] = "not graded"
            continue
        record = json.loads(path.read_text())
        notes = list(record.get("attention", []))
        notes += [f"{fn}: {why}" for fn, why in record.get("functions", {}).items() if why != "ok"]
        if record.get("kernel", "ok") != "ok":
            notes.append(record["kernel"])
        if record.get("sandboxed") is False:
            notes.append("SANDBOX OFF")
        out[student] = "; ".join(notes)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grade all submissions in parallel with hardened nbgrader.")
    parser.add_argument("--assignment", default=paths.ASSIGNMENT)
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    parser.add_argument("--db-url", default=None, help="gradebook URL (default: nbgrader_config.py)")
    parser.add_argument("--submitted", type=Path, default=None)
    parser.add_argument("--students", default="", help="comma-separated subset")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--no-summary", action="store_true", help="do not print the score table")
    parser.add_argument("--summary-only", action="store_true",
                        help="print the table for the graded students without grading")
    args = parser.parse_args(argv)

    root = paths.course_root()
    os.environ["CNN_COURSE_ROOT"] = str(root)
    jobs = args.jobs or os.cpu_count() or 1
    submitted = args.submitted or root / "submitted"
    db_url = paths.normalise_db_url(args.db_url) if args.db_url else paths.default_db_url(root)

    from .hidden_data import ensure_current
    from .sandbox import warn_if_off

    if args.summary_only:
        graded = sorted(p.stem for p in paths.records_dir(args.assignment, root).glob("*.json"))
        print(summary_table(function_scores(db_url, args.assignment, graded),
                            reasons_for(root, args.assignment, graded)))
        return 0
    ensure_current()
    if not warn_if_off():
        print("WARNING: grading WITHOUT the bubblewrap sandbox (see above).", file=sys.stderr)
    started = time.monotonic()
    staged = stage(root, submitted, args.assignment, [s for s in args.students.split(",") if s] or None)
    if not staged:
        print(f"no submissions found in {submitted}", file=sys.stderr)
        return 1
    results = grade_all(root, args.assignment, staged, min(jobs, len(staged)), db_url, not args.no_progress)
    annotate(root, args.assignment, staged, results)
    students = [s.student for s in staged]
    scores = function_scores(db_url, args.assignment, students)
    reasons = reasons_for(root, args.assignment, students)
    if not args.no_summary:
        print(summary_table(scores, reasons))
    if not args.no_export:
        # The CSV covers every graded student, not only this run's.
        everyone = sorted(p.stem for p in paths.records_dir(args.assignment, root).glob("*.json"))
        export(root, db_url, function_scores(db_url, args.assignment, everyone),
               reasons_for(root, args.assignment, everyone))
        print(f"wrote {root / 'grades.csv'} and {root / 'grades_by_function.csv'}")
    elapsed = time.monotonic() - started
    print(f"graded {len(staged)} submissions with {min(jobs, len(staged))} jobs in {elapsed:.1f} s")
    # Missing or malformed notebooks are graded (as blank) and flagged in the table;
    # only a submission that could not be graded at all makes the command fail.
    return 2 if any(not ok for ok, _, _ in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
