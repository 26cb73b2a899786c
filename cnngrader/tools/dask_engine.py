"""Grading on many machines with ``dask.distributed`` (``cnn grade --engine dask``).

The client (the instructor's machine: the course folder and the gradebook)
fans submissions out to Dask workers, one task per submission:

* It builds the grading **bundle** once (:mod:`cnngrader.tools.bundle`) and
  broadcasts it; every task names the bundle's sha256, and a worker refuses
  a bundle that does not hash to it or was made by other grader code.
* It **stages** each submission itself, within the usual caps (never
  following links, regular files only), and ships the staged files and the
  staging notes with the task, reading submissions lazily as the window of
  tasks in flight moves on.
* A **worker** grades the submission with the same hardened nbgrader
  autograde as ``make grade`` (bubblewrap, cgroups, trusted verdicts), in a
  private copy of the course built from the bundle with a private SQLite
  gradebook, and returns the grading record, the autograded notebook folder
  and the scores. It never sees the real gradebook's address.
* The **client alone writes** the gradebook (SQLite or PostgreSQL), the
  record and ``autograded/``, then appends the submission to a ledger. A
  rerun skips submissions the ledger shows graded with the same bundle and
  the same files, so a client stopped mid-batch finishes only what is missing.
* **Faults.** When a worker dies, Dask runs its task again elsewhere; the
  summary names every submission that needed more than one worker. A
  submission whose grading kills its worker (or passes
  ``student_timeout_seconds``, after which the worker ends itself) on
  ``allowed-failures + 1`` workers is recorded as failed with that reason,
  and the batch goes on.
* Before any work, every worker reports whether bubblewrap works there; a
  worker that cannot sandbox stops the batch with its reason, unless
  ``--allow-no-sandbox`` (then every record says ``SANDBOX OFF``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cnngrader.core import paths, record
from cnngrader.core.textsafe import clean
from cnngrader.tools import bundle as bundles

log = logging.getLogger("cnngrader.tools.dask_engine")

#: Extra attempts the local cluster's scheduler allows a task whose workers keep dying.
ALLOWED_FAILURES = 2
#: Largest autograded folder a worker may send back.
MAX_RESULT_BYTES = 64 << 20


class WorkerSetupError(RuntimeError):
    """Workers set up in a way that cannot grade safely: the batch stops before any work."""


class SandboxUnavailable(WorkerSetupError):
    """A worker where bubblewrap cannot run (and the client did not allow grading without it)."""


# ---------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}
#: Bundles this worker process was given, by the sha256 the client announced.
_BUNDLES: dict[str, bytes] = {}


def _plugin_base() -> type:
    try:
        from distributed.diagnostics.plugin import WorkerPlugin
    except ImportError:  # the worker side also runs without Dask installed (unit tests)
        return object
    return WorkerPlugin


class BundlePlugin(_plugin_base()):  # type: ignore[misc]
    """Hands the bundle to every worker, including workers that join (or restart) mid-batch.

    A scattered value is lost for good once every worker holding it has
    died; a registered plugin is given again to each new worker.
    """

    def __init__(self, data: bytes, sha256: str):
        self.data, self.sha256 = data, sha256

    def setup(self, worker: Any = None) -> None:
        # One batch at a time per worker: an older bundle is not kept around.
        _BUNDLES.clear()
        _BUNDLES[self.sha256] = self.data


def worker_status() -> dict[str, Any]:
    """What this worker can do: sandbox, cgroups and grader code (run on every worker first)."""
    from cnngrader.sandbox import cgroups
    from cnngrader.sandbox.bwrap import sandbox_status

    ok, reason = sandbox_status()
    found = cgroups.backend()
    return {"sandbox": ok, "reason": reason, "cgroups": found.enabled, "cgroups_reason": found.reason,
            "grader_code": bundles.grader_code_hash(), "pid": os.getpid()}


def _course(data: bytes, sha256: str) -> dict[str, Any]:
    """This process's private course for the bundle, unpacked and loaded once per bundle."""
    import warnings

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from cnngrader.core import spec
    from cnngrader.glue import pipeline, preprocessors
    from cnngrader.sandbox.limits import for_assignment, from_config

    # nbgrader's gradebook code triggers harmless SQLAlchemy autoflush warnings on every submission.
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session")
    current = _STATE.get("course")
    if current and current["sha256"] == sha256 and current["data"] is data:
        return current  # this very object was verified when the course was built
    manifest = bundles.verify(data, sha256)
    base = Path(tempfile.mkdtemp(prefix=f"cnn-worker-{sha256[:12]}-")) / "course"
    bundles.extract(data, manifest, base)
    # Nothing in this process may reach the class's gradebook or exchange, whatever its environment says.
    for name in ("CNN_DB_URL", "CNN_EXCHANGE", "CNN_HIDDEN_DATA"):
        os.environ.pop(name, None)
    os.environ["CNN_COURSE_ROOT"] = str(base)
    os.environ["CNN_ASSIGNMENT"] = manifest["assignment"]
    os.chdir(base)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(base)).load_config()
    config.CourseDirectory.root = str(base)
    config.CourseDirectory.db_url = f"sqlite:///{base / 'gradebook.db'}?timeout=60"
    # The per-process caches are keyed by assignment name; another bundle may mean other data.
    preprocessors.hidden_data.cache_clear()
    pipeline._DUE_DATES_APPLIED.clear()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    if current:
        shutil.rmtree(current["root"].parent, ignore_errors=True)
    limits = for_assignment(from_config(config), spec.load(manifest["assignment"], base))
    _STATE["course"] = {"sha256": sha256, "data": data, "root": base, "api": api, "manifest": manifest,
                        "db_url": config.CourseDirectory.db_url, "limits": limits}
    return _STATE["course"]


def _write_submission(folder: Path, files: list[tuple[str, bytes]]) -> None:
    for name, blob in files:
        target = (folder / name).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise ValueError(f"a submission file outside its folder: {clean(name)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)


def read_tree(folder: Path, limit: int = MAX_RESULT_BYTES) -> list[tuple[str, bytes]]:
    """Every regular file under ``folder`` (links are not followed), as ``(relative name, bytes)``."""
    out: list[tuple[str, bytes]] = []
    total = 0
    if not folder.is_dir() or folder.is_symlink():
        return out
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            total += path.stat().st_size
            if total > limit:
                raise ValueError(f"more than {limit >> 20} MiB under {folder.name}")
            out.append((path.relative_to(folder).as_posix(), path.read_bytes()))
    return out


def result_cap(limits: Any) -> int:
    """Most bytes a staged or autograded submission folder can hold: files within the caps, the
    release notebooks put back, and the outputs grading adds."""
    return (limits.max_submission_bytes + 4 * limits.max_upload_file_bytes
            + 4 * limits.max_notebook_output_bytes + (16 << 20))


def _scores(db_url: str, assignment: str, student: str) -> dict[str, Any]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {"timestamp": None, "notebooks": {}}
        stamp = submission.timestamp.isoformat() if submission.timestamp else None
        notebooks = {}
        for nb in submission.notebooks:
            notebooks[nb.name] = {
                "late_penalty": nb.late_submission_penalty,
                "grades": {g.name: [g.auto_score, bool(g.needs_manual_grade)] for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments},
            }
        return {"timestamp": stamp, "notebooks": notebooks}


def _end_worker(student: str, seconds: float) -> None:
    """The per-submission deadline passed: end this worker, so Dask tries the task elsewhere."""
    log.error("grading %s passed %g s: ending this worker", clean(student), seconds)
    os._exit(75)


def grade_task(sha256: str, assignment: str, student: str, files: list[tuple[str, bytes]],
               notes: list[str], allow_no_sandbox: bool = False) -> dict[str, Any]:
    """Grade one staged submission in this worker; the record, autograded files and scores come back."""
    from cnngrader.glue import pipeline
    from cnngrader.sandbox.bwrap import sandbox_status
    from cnngrader.sandbox.staging import valid_student_id
    from cnngrader.tools.batch import Outcome, annotate

    if not valid_student_id(student):
        raise ValueError("not a valid student id")
    with _LOCK:  # one submission at a time per process: grading uses the process's cwd and environment
        ok, reason = sandbox_status()
        if not ok and not allow_no_sandbox:
            raise SandboxUnavailable(f"bubblewrap cannot run on this worker: {reason}")
        data = _BUNDLES.get(sha256)
        if data is None:
            raise bundles.BundleError(f"this worker was never given bundle {sha256[:16]}")
        course = _course(data, sha256)
        root: Path = course["root"]
        deadline = course["limits"].student_timeout_seconds
        timer = threading.Timer(deadline, _end_worker, (student, deadline))
        timer.daemon = True
        timer.start()
        folder = root / "submitted" / student
        try:
            shutil.rmtree(folder, ignore_errors=True)
            _write_submission(folder / assignment, files)
            pipeline.CARRIED_NOTES[(assignment, student)] = list(notes)
            started = time.monotonic()
            try:
                result = course["api"].autograde(assignment, student, force=True, create=True)
                ok = bool(result.get("success"))
                error = "" if ok else (result.get("error") or result.get("log") or "")[-2000:]
            except Exception as exc:  # noqa: BLE001 - recorded; the task itself succeeds
                ok, error = False, f"{type(exc).__name__}: {exc}"
            annotate(assignment, {student: Outcome(student, ok, error, time.monotonic() - started)})
            rec = record.load(assignment, student, root) or record.Record(student=student, assignment=assignment,
                                                                           status="failed")
            rec.engine, rec.bundle = "dask", sha256
            rec.worker = _worker_name()
            return {
                "ok": ok,
                "record": rec.to_json(),
                "autograded": read_tree(root / "autograded" / student / assignment, result_cap(course["limits"])),
                "scores": _scores(course["db_url"], assignment, student),
            }
        finally:
            timer.cancel()
            pipeline.CARRIED_NOTES.pop((assignment, student), None)
            for place in ("submitted", "autograded", pipeline.STAGED):
                shutil.rmtree(root / place / student, ignore_errors=True)


def _worker_name() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Client side
# ---------------------------------------------------------------------------

@dataclass
class Packed:
    student: str
    files: list[tuple[str, bytes]]
    notes: list[str]
    sha256: str


@dataclass
class DaskReport:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retried: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    refused: str = ""
    workers: dict[str, dict] = field(default_factory=dict)
    bundle: str = ""
    seconds: float = 0.0


def summary_lines(report: DaskReport) -> list[str]:
    """What a Dask batch did, for the terminal (student names escaped)."""
    lines = [f"dask: bundle {report.bundle[:16]}, {len(report.workers)} worker(s); graded {len(report.graded)}, "
             f"already graded and skipped {len(report.skipped)}, failed {len(report.failed)}"]
    if any(not w.get("sandbox") for w in report.workers.values()):
        lines.append("WARNING: some workers grade WITHOUT the bubblewrap sandbox (--allow-no-sandbox).")
    for student, attempts in sorted(report.retried.items()):
        lines.append(f"retried: {clean(student)} needed {attempts} workers (a worker was lost while grading it)")
    for student, reason in sorted(report.failed.items()):
        lines.append(f"failed: {clean(student)}: {clean(reason, 300)}")
    return lines


def pack(root: Path, assignment: str, student: str, limits: Any) -> Packed:
    """Stage ``student``'s submission (caps, no links, blank notebook if missing) and read it into memory."""
    from cnngrader.sandbox.staging import stage

    releases = sorted((root / "release" / assignment).glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="cnn-pack-") as tmp:
        result = stage(root / "submitted" / student / assignment, Path(tmp) / "s", releases, limits, student)
        files = read_tree(Path(tmp) / "s", result_cap(limits))
    digest = hashlib.sha256()
    for name, blob in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(blob).digest())
    for note in result.attention:
        digest.update(str(note).encode() + b"\0")
    return Packed(student, files, list(result.attention), digest.hexdigest())


def ledger_path(root: Path, assignment: str) -> Path:
    return root / ".grading" / "ledger" / f"{assignment}.jsonl"


def read_ledger(root: Path, assignment: str) -> dict[str, tuple[str, str]]:
    """``student -> (ledger key, submission hash)`` of the last grading the client finished writing."""
    done: dict[str, tuple[str, str]] = {}
    try:
        with open(ledger_path(root, assignment), encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                    done[str(entry["student"])] = (str(entry["key"]), str(entry["submission"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short when the client was stopped
    except FileNotFoundError:
        pass
    return done


def ledger_key(bundle_sha: str, db_url: str) -> str:
    """What a ledger line vouches for: this bundle, written into this gradebook."""
    return hashlib.sha256(f"{bundle_sha}\0{db_url}".encode()).hexdigest()


def _append_ledger(root: Path, assignment: str, student: str, key: str, submission: str) -> None:
    path = ledger_path(root, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"student": student, "key": key, "submission": submission}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _graded_with(root: Path, assignment: str, student: str, bundle_sha: str) -> bool:
    rec = record.load(assignment, student, root)
    return rec is not None and rec.status == "graded" and rec.bundle == bundle_sha


def _write_autograded(root: Path, assignment: str, student: str, files: list[tuple[str, bytes]]) -> None:
    dest = root / "autograded" / student / assignment
    fresh = dest.with_name(f".{assignment}.incoming")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    _write_submission(fresh, files)
    if dest.exists():
        shutil.rmtree(dest)
    fresh.rename(dest)


def _store_scores(gb: Any, assignment: str, student: str, scores: dict[str, Any]) -> None:
    """Write one student's automatic scores: exactly what the worker's private gradebook holds."""
    from nbgrader.api import Comment, Grade, MissingEntry
    from sqlalchemy.orm import selectinload

    try:
        gb.find_student(student)
    except MissingEntry:
        gb.add_student(student)
    stamp = datetime.fromisoformat(scores["timestamp"]) if scores.get("timestamp") else None
    # As nbgrader does: a submission without a time keeps the one the gradebook has.
    submission = gb.update_or_create_submission(assignment, student, **({"timestamp": stamp} if stamp else {}))
    for nb in submission.notebooks:
        got = scores["notebooks"].get(nb.name)
        # One query each for the notebook's grades and comments, with their cells (names) loaded.
        grades = gb.db.query(Grade).options(selectinload(Grade.cell)).filter(Grade.notebook_id == nb.id).all()
        comments = gb.db.query(Comment).options(selectinload(Comment.cell)).filter(Comment.notebook_id == nb.id)
        if got is None:
            for grade in grades:
                grade.auto_score, grade.needs_manual_grade = 0, True
            continue
        for grade in grades:
            auto, manual = got["grades"].get(grade.name, [0, True])
            grade.auto_score = auto
            # A human's score stays, and keeps the cell in the review queue (as nbgrader does).
            grade.needs_manual_grade = bool(manual) or grade.manual_score is not None
        for comment in comments:
            comment.auto_comment = got["comments"].get(comment.name)
    gb.db.commit()


def course_config(root: Path) -> Any:
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def _late_penalties(db_url: str, assignment: str, student: str, notebooks: list[str], config: Any) -> None:
    """nbgrader's own late penalty, on the real gradebook: its extensions and manual scores count."""
    from nbformat.v4 import new_notebook
    from nbgrader.preprocessors import AssignLatePenalties

    for name in notebooks:
        resources = {"nbgrader": {"notebook": name, "assignment": assignment, "student": student, "db_url": db_url}}
        AssignLatePenalties(config=config).preprocess(new_notebook(), resources)


def _store(root: Path, db_url: str, assignment: str, student: str, result: dict[str, Any], attempts: int,
           config: Any) -> None:
    from nbgrader.api import Gradebook

    rec = record.Record.from_json(result["record"])
    if rec.student != student or rec.assignment != assignment:
        raise ValueError("a worker returned another submission's record")
    rec.attempts = attempts
    if attempts > 1:
        rec.attention.append(f"graded on attempt {attempts}: its worker was lost before")
    _write_autograded(root, assignment, student, result["autograded"])
    with Gradebook(db_url, paths.course_id(root)) as gb:
        _store_scores(gb, assignment, student, result["scores"])
    _late_penalties(db_url, assignment, student, sorted(result["scores"]["notebooks"]), config)
    record.save(rec, root)


def _store_failure(root: Path, db_url: str, assignment: str, student: str, reason: str) -> None:
    from nbgrader.api import Gradebook

    from cnngrader.glue.pipeline import mark_failed

    with Gradebook(db_url, paths.course_id(root)) as gb:
        _store_scores(gb, assignment, student, {"timestamp": None, "notebooks": {}})
    mark_failed(db_url, paths.course_id(root), assignment, student, reason, root)
    record.update(assignment, student, root, engine="dask", attention=[reason])


def _suspicious(key: str) -> Callable:
    def count(dask_scheduler: Any) -> int:
        task = dask_scheduler.tasks.get(key)
        return int(task.suspicious) if task is not None else 0
    return count


def task_key(student: str) -> str:
    """The Dask key of a grading task. The random part comes first so that every task joins one
    task group ("cnn-grade"), which the scheduler queues and hands out one per free worker thread."""
    return f"cnn-grade-{uuid.uuid4().hex}-{student}"


def student_of(key: str) -> str:
    return str(key).split("-", 3)[3]


def _retry_alone(client: Any, sha256: str, root: Path, db_url: str, assignment: str,
                 report: DaskReport, allow_no_sandbox: bool, limits: Any, config: Any) -> None:
    from concurrent.futures import CancelledError

    """Grade again, one at a time, anyone whose function hit the wall-clock backstop while others ran.

    As in the local engine: a wall-clock timeout under load may be the
    machine's fault, and load must never cost points.
    """
    for student in list(report.graded):
        rec = record.load(assignment, student, root)
        if rec is None or not rec.wall_timeouts:
            continue
        try:
            packed = pack(root, assignment, student, limits)
            result = client.submit(grade_task, sha256, assignment, student, packed.files, packed.notes,
                                   allow_no_sandbox, key=task_key(student),
                                   pure=False).result(timeout=limits.student_timeout_seconds * 4)
            if not result.get("ok"):
                continue  # the first grading stands
            _store(root, db_url, assignment, student, result, 1, config)
        except (Exception, CancelledError) as exc:  # noqa: BLE001 - the first grading stands
            log.warning("retrying %s alone failed: %s", clean(student), clean(str(exc), 300))
            continue
        record.update(assignment, student, root, retried_alone=True)
        _append_ledger(root, assignment, student, ledger_key(sha256, db_url), packed.sha256)


def start_client(scheduler: str | None, jobs: int) -> tuple[Any, Any]:
    """A client of ``scheduler``, or of a new LocalCluster of ``jobs`` one-thread worker processes."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    # One task per worker process at a time: when a worker dies, only the submission it was
    # grading is suspected, so a killer cannot take an innocent neighbour down with it.
    settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings):
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, worker_class="distributed.Nanny")
    return Client(cluster), cluster


def check_workers(client: Any, allow_no_sandbox: bool) -> dict[str, dict]:
    """Every worker's status; :class:`SandboxUnavailable` when one cannot sandbox (unless allowed)."""
    statuses = client.run(worker_status)
    threads = {addr: n for addr, n in client.nthreads().items() if n != 1}
    if threads:
        # Grading uses the process's working folder and environment, and a worker's death must be
        # blamed on the one submission it was grading.
        raise WorkerSetupError("Dask workers must run one thread each (dask worker --nthreads 1 --nworkers N); "
                               + ", ".join(f"{a} has {n}" for a, n in sorted(threads.items())))
    broken = {addr: s["reason"] for addr, s in statuses.items() if not s["sandbox"]}
    if broken and not allow_no_sandbox:
        lines = "\n".join(f"  {addr}: {reason}" for addr, reason in sorted(broken.items()))
        raise SandboxUnavailable(
            "these Dask workers cannot run bubblewrap, so they cannot grade safely:\n" + lines +
            "\nGive them unprivileged user namespaces (see docs/scale.md, 'Bubblewrap inside containers'), "
            "or pass --allow-no-sandbox to grade with resource limits only (every record will say SANDBOX OFF).")
    return statuses


def grade(root: Path, assignment: str, students: list[str], *, db_url: str, limits: Any,
          scheduler: str | None = None, jobs: int = 2, force: bool = False, allow_no_sandbox: bool = False,
          progress: bool = True, on_start: Callable[[Any], None] | None = None,
          on_result: Callable[[Any, str], None] | None = None) -> DaskReport:
    """Grade ``students`` through Dask; every student ends graded, skipped, failed (with a reason) or refused.

    ``on_start(client)`` and ``on_result(client, student)`` let a caller watch
    (or, in the fault tests, disturb) the cluster.
    """
    from concurrent.futures import CancelledError

    from distributed import as_completed
    from distributed.scheduler import KilledWorker
    from tqdm import tqdm

    from cnngrader.glue.term import CnnTerm, apply_due_dates, due_dates

    if allow_no_sandbox and not scheduler:
        # Unsandboxed student code on this machine could reach the local scheduler, and through it
        # the client that holds the gradebook.
        raise WorkerSetupError("--allow-no-sandbox needs --scheduler: a local cluster never grades unsandboxed")
    started = time.monotonic()
    report = DaskReport()
    db_url = paths.normalise_db_url(db_url)
    config = course_config(root)
    if assignment in due_dates(CnnTerm(config=config)):
        # As the local engine does: the configured due date is the gradebook's (lateness is decided there).
        apply_due_dates(db_url, paths.course_id(root), config)
    made = bundles.build(root, assignment, db_url)
    report.bundle = made.sha256
    client, cluster = start_client(scheduler, jobs)
    try:
        client.wait_for_workers(1, timeout=120)
        report.workers = check_workers(client, allow_no_sandbox)
        if on_start is not None:
            on_start(client)
        threads = sum(client.nthreads().values()) or 1
        window = 2 * threads + 2
        client.register_plugin(BundlePlugin(made.data, made.sha256), name=f"cnn-bundle-{made.sha256[:16]}")
        done = {} if force else read_ledger(root, assignment)
        key = ledger_key(made.sha256, db_url)

        def _fail(student: str, reason: str) -> None:
            report.failed[student] = reason
            try:
                _store_failure(root, db_url, assignment, student, reason)
            except Exception as exc:  # noqa: BLE001 - the summary still says it; the batch goes on
                log.error("could not record the failure of %s: %s", clean(student), clean(str(exc), 300))
        bar = tqdm(total=len(students), unit="sub", desc=f"grading (dask, {threads} workers)",
                   disable=not progress, file=sys.stderr)
        queue: Iterator[str] = iter(students)
        inflight: dict[str, tuple[Any, Packed]] = {}
        stream = as_completed()

        def feed() -> None:
            while len(inflight) < window:
                student = next(queue, None)
                if student is None:
                    return
                try:
                    packed = pack(root, assignment, student, limits)
                except Exception as exc:  # noqa: BLE001 - one student's files must not stop the batch
                    _fail(student, f"not graded: the submission could not be staged ({type(exc).__name__})")
                    bar.update(1)
                    continue
                if done.get(student) == (key, packed.sha256) and _graded_with(root, assignment, student, made.sha256):
                    report.skipped.append(student)
                    bar.update(1)
                    continue
                future = client.submit(grade_task, made.sha256, assignment, student, packed.files,
                                       packed.notes, allow_no_sandbox, key=task_key(student),
                                       pure=False)
                inflight[future.key] = (future, packed)
                stream.add(future)

        feed()
        for future in stream:
            _, packed = inflight.pop(future.key)
            student = packed.student
            # Dask counts the workers that died while running this task.
            lost = client.run_on_scheduler(_suspicious(future.key))
            attempts = lost + 1
            try:
                result = future.result()
            except KilledWorker:
                attempts = lost
                _fail(student, f"not graded: its grading ended {lost} workers in a row (a crash, or more than "
                               f"{limits.student_timeout_seconds:g} s each time)")
            except (SandboxUnavailable, bundles.BundleError) as exc:
                # A machine set up wrongly is not the student's fault: nothing is recorded, the batch stops.
                report.refused = f"{type(exc).__name__}: {exc}"
                client.cancel([f for f, _ in inflight.values()])
                inflight.clear()
                break
            except (Exception, CancelledError) as exc:  # noqa: BLE001 - one failure must not stop the batch
                _fail(student, f"not graded: the worker raised {type(exc).__name__}: {clean(str(exc), 200)}")
            else:
                try:
                    _store(root, db_url, assignment, student, result, attempts, config)
                    if result.get("ok") and result["record"].get("status") == "graded":
                        _append_ledger(root, assignment, student, key, packed.sha256)
                        report.graded.append(student)
                    else:
                        # Recorded as failed by the worker, and graded again on the next run.
                        report.failed[student] = "autograde failed (see the record)"
                except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
                    _fail(student, f"not graded: its result could not be stored "
                                   f"({type(exc).__name__}: {clean(str(exc), 200)})")
            if attempts > 1:
                report.retried[student] = attempts
            future.release()
            bar.update(1)
            if on_result is not None:
                on_result(client, student)
            feed()
        bar.close()
        if not report.refused:
            _retry_alone(client, made.sha256, root, db_url, assignment, report, allow_no_sandbox, limits, config)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    report.seconds = time.monotonic() - started
    return report
