"""Grade every submission in parallel: ``make grade`` (``python -m cnngrader.tools.batch``).

The grading itself is nbgrader's own autograde with the hardened pipeline
from ``nbgrader_config.py`` (staging, sandboxes, trusted verdicts, recorded
failures): the same path ``nbgrader autograde`` and formgrader take. This
module adds what a whole class needs:

* worker processes that keep nbgrader, NumPy and the hidden data loaded
  between students, each under a memory cap;
* a per-student deadline (``c.CnnLimits.student_timeout_seconds``): a
  student whose grading hangs is stopped, recorded as failed with the reason,
  and the worker replaced, so the batch always finishes;
* a retry, alone, for any student whose function hit the wall-clock backstop
  while other students were being graded, so load never costs points;
* the per-student, per-function table, ``grades.csv`` (nbgrader's export)
  and ``grades_by_function.csv``, with every student-controlled string made
  safe for a terminal and a spreadsheet.

Exit codes: 0 when every submission was graded and none needs attention, 3
when some need attention (set aside, graded as blank, failed, retried), 1
when the batch itself could not run.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

from cnngrader.core import i18n, paths, record, spec
from cnngrader.core.spec import Assignment
from cnngrader.core.textsafe import clean, csv_cell
from cnngrader.sandbox.limits import Limits, for_assignment, from_course
from cnngrader.sandbox.staging import valid_student_id

NEEDS_ATTENTION = 3


@dataclass
class Outcome:
    student: str
    ok: bool
    error: str = ""
    seconds: float = 0.0


@dataclass
class Listing:
    students: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)


def list_submissions(submitted: Path, assignment: str, only: list[str] | None = None) -> Listing:
    """Student folders to grade, and (escaped) names set aside because they are not valid ids."""
    listing = Listing()
    if not submitted.is_dir():
        return listing
    with os.scandir(submitted) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            name = entry.name
            if not valid_student_id(name):
                listing.set_aside.append(f"{clean(name, 60)}: not a valid student id (set aside, not graded)")
                continue
            if only and name not in only:
                continue
            if not os.path.isdir(os.path.join(entry.path, assignment)):
                continue
            listing.students.append(name)
    listing.students.sort()
    return listing


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------

def _worker(conn: Connection, root: str, db_url: str | None) -> None:
    """A grading worker: set up nbgrader once, then grade the students it is sent."""
    import warnings

    # nbgrader's gradebook code triggers harmless SQLAlchemy autoflush warnings on every submission.
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(root)
    os.environ["CNN_COURSE_ROOT"] = root
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from cnngrader.glue.pipeline import cap_own_memory
    from cnngrader.glue.preprocessors import hidden_data
    from cnngrader.sandbox.limits import from_config

    config = PyFileConfigLoader("nbgrader_config.py", path=root).load_config()
    config.CourseDirectory.root = root
    if db_url:
        config.CourseDirectory.db_url = db_url
    cap_own_memory(from_config(config).grader_memory_bytes)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    hidden_data(paths.default_assignment())  # warm the per-process caches once, before the first student
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        assignment, student = job
        started = time.monotonic()
        try:
            result = api.autograde(assignment, student, force=True, create=True)
            ok = bool(result.get("success"))
            error = "" if ok else (result.get("error") or result.get("log") or "")[-2000:]
        except Exception as exc:  # noqa: BLE001 - one student's failure must not stop the batch
            ok, error = False, f"{type(exc).__name__}: {exc}"
        conn.send(("done", Outcome(student, ok, error, time.monotonic() - started)))


class _Slot:
    def __init__(self, ctx: mp.context.BaseContext, root: Path, db_url: str | None):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, str(root), db_url), daemon=True)
        self.proc.start()
        child.close()
        self.student: str | None = None
        self.started = 0.0
        self.ready = False

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def grade_all(root: Path, assignment: str, students: list[str], jobs: int, db_url: str | None,
              limits: Limits, progress: bool = True) -> dict[str, Outcome]:
    """Grade ``students`` with ``jobs`` workers; every student ends with an outcome, whatever happens."""
    from tqdm import tqdm

    from cnngrader.sandbox import cgroups

    ctx = mp.get_context("fork")
    queue = list(reversed(students))
    outcomes: dict[str, Outcome] = {}
    slots = [_Slot(ctx, root, db_url) for _ in range(max(1, min(jobs, len(students))))]
    startup_failures = [0]
    bar = tqdm(total=len(students), unit="sub", desc=f"grading ({len(slots)} jobs)", disable=not progress,
               file=sys.stderr)

    def finish(outcome: Outcome) -> None:
        outcomes[outcome.student] = outcome
        bar.update(1)
        bar.set_postfix_str(clean(outcome.student, 20))

    def replace(slot: _Slot, reason: str) -> None:
        """Stop a worker (and everything its sandboxes started), record its student, start a new one."""
        from cnngrader.glue.pipeline import mark_failed

        student = slot.student
        if not slot.ready:
            startup_failures[0] += 1
            if startup_failures[0] > 3:
                raise RuntimeError("grading workers keep dying before they are ready: check nbgrader_config.py")
        slot.stop()
        cgroups.backend().sweep()
        if student:
            mark_failed(db_url or paths.default_db_url(root), _course_id(root), assignment, student, reason)
            finish(Outcome(student, False, reason, time.monotonic() - slot.started))
        slots[slots.index(slot)] = _Slot(ctx, root, db_url)

    try:
        while len(outcomes) < len(students):
            for slot in slots:
                if slot.ready and slot.student is None and queue:
                    slot.student = queue.pop()
                    slot.started = time.monotonic()
                    slot.conn.send((assignment, slot.student))
            ready = wait([s.conn for s in slots], timeout=0.5)
            for slot in list(slots):
                if slot.conn in ready:
                    try:
                        kind, value = slot.conn.recv()
                    except (EOFError, OSError):
                        kind, value = "died", None
                    if kind == "ready":
                        slot.ready = True
                    elif kind == "done":
                        slot.student = None
                        finish(value)
                    else:
                        replace(slot, "the grading worker died")
                elif slot.student and time.monotonic() - slot.started > limits.student_timeout_seconds:
                    replace(slot, f"grading took longer than {limits.student_timeout_seconds:g} s and was stopped")
                elif not slot.proc.is_alive():
                    replace(slot, "the grading worker died")
        for slot in slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass
    finally:
        for slot in slots:
            slot.proc.join(10)
            slot.stop()
        bar.close()
        cgroups.backend().sweep()
    return outcomes


def _course_id(root: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return str(config.CourseDirectory.get("course_id", "default_course"))


# ---------------------------------------------------------------------------
# Records, summary and export
# ---------------------------------------------------------------------------

def annotate(assignment: str, outcomes: dict[str, Outcome]) -> None:
    """Add autograde failures and timing to each student's record."""
    for student, outcome in outcomes.items():
        rec = record.load(assignment, student)
        if rec is None:
            # Autograde never wrote one: whatever happened, this submission was not graded.
            rec = record.Record(student=student, assignment=assignment, status="graded" if outcome.ok else "failed")
        if not outcome.ok:
            last = outcome.error.strip().splitlines()[-1] if outcome.error.strip() else "unknown"
            note = f"autograde failed: {clean(last, 300)}"
            if note not in rec.attention:
                rec.attention.append(note)
        rec.grading_seconds = round(outcome.seconds, 2)
        record.save(rec)


def function_scores(db_url: str, assignment: str, students: list[str]) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    a = spec.load(assignment)
    # A translated edition's notebook carries its own id (conv_step_by_step_zh.ipynb).
    notebook = i18n.edition_id(a.notebook_name, i18n.edition_of(assignment)[1])
    fn_of = {c.grade_id: c.function for c in a.checks}
    table: dict[str, dict[str, float]] = {}
    with Gradebook(paths.normalise_db_url(db_url)) as gb:
        for student in students:
            row = dict.fromkeys(a.function_names, 0.0)
            try:
                nb = gb.find_submission_notebook(notebook, assignment, student)
            except MissingEntry:
                table[student] = row
                continue
            for grade in nb.grades:
                fn = fn_of.get(grade.name)
                if fn:
                    row[fn] += float(grade.score or 0)
            table[student] = row
    return table


def summary_table(scores: dict[str, dict[str, float]], reasons: dict[str, str], assignment: Assignment) -> str:
    """The per-student table, with every student-controlled string escaped for a terminal."""
    points = assignment.function_points()
    names = assignment.function_names
    heads = (["student"] + [f"{assignment.short_names[fn]}/{points[fn]}" for fn in names]
             + [f"total/{assignment.total_points()}", "notes"])
    rows = []
    for student in sorted(scores):
        row = scores[student]
        total = sum(row.values())
        rows.append([clean(student, 40)] + [f"{row[fn]:g}" for fn in names]
                    + [f"{total:g}", clean(reasons.get(student, ""), 400)])
    widths = [max(len(str(r[i])) for r in [heads] + rows) for i in range(len(heads) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=False)) + "  " + heads[-1]]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return "\n".join(lines)


def export(root: Path, db_url: str, scores: dict[str, dict[str, float]], reasons: dict[str, str],
           assignment: Assignment) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    plugin = CsvExportPlugin(to=str(root / "grades.csv"))
    with Gradebook(db_url) as gb:
        plugin.export(gb)
    with open(root / "grades_by_function.csv", "w", newline="", encoding="utf-8", errors="replace") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", *assignment.function_names, "total", "notes"])
        for student in sorted(scores):
            row = scores[student]
            writer.writerow([csv_cell(student), *(f"{row[fn]:g}" for fn in assignment.function_names),
                             f"{sum(row.values()):g}", csv_cell(reasons.get(student, ""))])


def reasons_for(assignment: str, students: list[str]) -> dict[str, str]:
    """Why each student needs attention (empty when nothing does), from the grading records."""
    out = {}
    for student in students:
        rec = record.load(assignment, student)
        if rec is None:
            out[student] = "not graded"
            continue
        notes = [str(n) for n in rec.attention]
        if rec.status == "failed" and rec.failure:
            notes.append(rec.failure)
        notes += [f"{fn}: {rec.function_notes.get(fn, code)}" for fn, code in rec.functions.items() if code != "ok"]
        if rec.kernel not in ("ok", "not run"):
            notes.append(rec.kernel)
        if rec.retried_alone:
            notes.append("retried alone after a wall-clock timeout under load")
        if rec.sandboxed is False:
            notes.append("SANDBOX OFF")
        if rec.cgroups is False:
            notes.append("CGROUPS OFF")
        out[student] = "; ".join(dict.fromkeys(notes))
    return out


def _needs_retry(assignment: str, student: str) -> bool:
    rec = record.load(assignment, student)
    return bool(rec and rec.wall_timeouts)


def _grade_with_dask(root: Path, args: argparse.Namespace, students: list[str], jobs: int, db_url: str,
                     limits: Limits) -> bool:
    """Grade through Dask and say what happened; False when the workers refused the batch."""
    from cnngrader.tools import dask_engine

    try:
        rep = dask_engine.grade(root, args.assignment, students, db_url=db_url, limits=limits,
                                scheduler=args.scheduler, jobs=jobs, force=args.force,
                                allow_no_sandbox=args.allow_no_sandbox, progress=not args.no_progress)
    except dask_engine.WorkerSetupError as exc:
        print("ERROR: " + "\n".join(clean(line, 600) for line in str(exc).splitlines()), file=sys.stderr)
        return False
    lines = dask_engine.summary_lines(rep)
    print("\n".join(lines[:1] + [line for line in lines[1:] if line.startswith("retried")]))
    for line in lines[1:]:
        if not line.startswith("retried"):
            print(line, file=sys.stderr)
    if rep.refused:
        missing = [s for s in students if s not in rep.graded and s not in rep.skipped and s not in rep.failed]
        print(f"ERROR: the batch stopped: {clean(rep.refused, 600)}\n{len(missing)} submission(s) were not "
              "graded; rerun once the workers are fixed (only those are graded).", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grade all submissions in parallel with hardened nbgrader.")
    parser.add_argument("--assignment", default=None, help="assignment id (default: the course's first)")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: all cores)")
    parser.add_argument("--db-url", default=None, help="gradebook URL (default: nbgrader_config.py)")
    parser.add_argument("--students", default="", help="comma-separated subset")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--no-summary", action="store_true", help="do not print the score table")
    parser.add_argument("--summary-only", action="store_true",
                        help="print the table for the graded students without grading")
    parser.add_argument("--engine", choices=("local", "dask"), default=os.environ.get("CNN_ENGINE") or "local",
                        help="local worker processes (default), or dask.distributed (docs/scale.md)")
    parser.add_argument("--scheduler", default=os.environ.get("CNN_SCHEDULER") or None,
                        help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster of --jobs workers)")
    parser.add_argument("--force", action="store_true",
                        help="dask: grade again submissions already graded with the same bundle and files")
    parser.add_argument("--allow-no-sandbox", action="store_true",
                        help="dask: let workers without bubblewrap grade (records say SANDBOX OFF)")
    args = parser.parse_args(argv)

    root = paths.course_root()
    os.environ["CNN_COURSE_ROOT"] = str(root)
    args.assignment = args.assignment or paths.default_assignment(root)
    # The workers read it to warm the right hidden data before the first student.
    os.environ["CNN_ASSIGNMENT"] = args.assignment
    assignment = spec.load(args.assignment, root)
    jobs = args.jobs or os.cpu_count() or 1
    db_url = paths.normalise_db_url(args.db_url) if args.db_url else paths.default_db_url(root)

    if args.summary_only:
        graded = sorted(p.stem for p in paths.records_dir(args.assignment, root).glob("*.json"))
        reasons = reasons_for(args.assignment, graded)
        print(summary_table(function_scores(db_url, args.assignment, graded), reasons, assignment))
        return 0

    from cnngrader.core.hidden_data import ensure_current
    from cnngrader.sandbox import cgroups
    from cnngrader.sandbox.bwrap import warn_if_off

    ensure_current(assignment=assignment)
    if args.engine == "dask":
        pass  # the workers grade, and each reports its own sandbox before any work
    elif not warn_if_off():
        print("WARNING: grading WITHOUT the bubblewrap sandbox (see above).", file=sys.stderr)
    if args.engine == "local" and not cgroups.warn_if_off():
        print("WARNING: grading WITHOUT per-submission cgroups (CGROUPS OFF, see above).", file=sys.stderr)
    limits = for_assignment(from_course(root), assignment)
    started = time.monotonic()
    listing = list_submissions(root / "submitted", args.assignment,
                               [s for s in args.students.split(",") if s] or None)
    for note in listing.set_aside:
        print(f"set aside: {note}", file=sys.stderr)
    if not listing.students:
        print(f"no submissions found in {root / 'submitted'}", file=sys.stderr)
        return NEEDS_ATTENTION if listing.set_aside else 1
    students = listing.students
    used = min(jobs, len(students))
    retry: list[str] = []
    refused = False
    if args.engine == "dask":
        refused = not _grade_with_dask(root, args, students, jobs, db_url, limits)
    else:
        outcomes = grade_all(root, args.assignment, students, used, db_url, limits, not args.no_progress)
        annotate(args.assignment, outcomes)
        # A wall-clock timeout with other students running may be the machine's fault: grade those again alone.
        retry = [s for s in students if used > 1 and outcomes[s].ok and _needs_retry(args.assignment, s)]
    if retry:
        print(f"retrying alone after a wall-clock timeout under load: {', '.join(clean(s) for s in retry)}",
              file=sys.stderr)
        again = grade_all(root, args.assignment, retry, 1, db_url, limits, False)
        annotate(args.assignment, again)
        for student in retry:
            record.update(args.assignment, student, retried_alone=True)
        outcomes.update(again)
    scores = function_scores(db_url, args.assignment, students)
    reasons = reasons_for(args.assignment, students)
    if not args.no_summary:
        print(summary_table(scores, reasons, assignment))
    if not args.no_export:
        # The CSV covers every graded student, not only this run's.
        everyone = sorted(p.stem for p in paths.records_dir(args.assignment, root).glob("*.json"))
        export(root, db_url, function_scores(db_url, args.assignment, everyone),
               reasons_for(args.assignment, everyone), assignment)
        print(f"wrote {root / 'grades.csv'} and {root / 'grades_by_function.csv'}")
    elapsed = time.monotonic() - started
    if args.engine == "dask":
        print(f"graded {len(students)} submissions with the Dask engine in {elapsed:.1f} s")
    else:
        print(f"graded {len(students)} submissions with {used} jobs in {elapsed:.1f} s")
    attention = [s for s in students if reasons.get(s)] + listing.set_aside
    if refused:
        return 1
    if attention:
        print(f"{len(attention)} submission(s) need attention (see the notes column)", file=sys.stderr)
        return NEEDS_ATTENTION
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
