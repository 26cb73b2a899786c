"""One submission's grading record: a typed model, written once atomically, read by everyone.

The record lives in ``.grading/records/<assignment>/<student>.json``. The
hardened autograde writes it (:func:`save`), the batch adds what only it
knows (:func:`update`), and the batch table, the report, the feedback pages
and the tests read it (:func:`load`). Nothing else parses that JSON.

Failures are structured: every failed case carries a stable ``code`` from a
fixed vocabulary (``wrong_values``, ``cpu_limit``, ``raised_IndexError``...),
the ``message`` the student read (in their edition's language: English, or
Chinese for a ``*_zh`` assignment), and the case it happened on. The report
groups by code, never by words, so every edition is counted the same.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cnngrader.core import paths

SCHEMA_VERSION = 1
#: A record is a few kB; anything far larger is not one of ours.
MAX_RECORD_BYTES = 8 << 20


#: What each failure code means, in words for the instructor's report (a translated
#: edition supplies its own table; the codes never change).
FAILURE_LABELS: dict[str, str] = {
    "wrong_values": "wrong values",
    "wrong_shape": "wrong shape",
    "wrong_gradient": "gradient check failed",
    "wrong_cache": "wrong cache",
    "wrong_keys": "a dict with the wrong keys",
    "partial_score": "partial credit on the check's scale",
    "below_threshold": "score below the scale's lowest step",
    "too_slow": "not fast enough",
    "timing_protocol": "timed calls tampered with",
    "not_an_array": "returned something that is not an array",
    "not_numeric": "returned an array that does not hold numbers",
    "not_finite": "returned NaN or infinity",
    "not_a_tuple": "did not return a tuple",
    "not_a_number": "returned a bool instead of a number",
    "not_a_scalar": "returned an array instead of a single number",
    "not_boolean": "not True/False values",
    "placeholder": "output does not depend on the input (placeholder)",
    "not_implemented": "not implemented",
    "not_defined": "function not defined",
    "syntax_error": "syntax error in the defining cell",
    "forward_called": "backward pass called a forward pass",
    "unreadable_result": "result could not be read",
    "cpu_limit": "CPU limit",
    "wall_timeout": "wall-clock timeout",
    "memory_limit": "memory limit",
    "result_too_large": "result too large",
    "crashed": "process crashed",
    "exited": "process exited",
    "load_failed": "failed while loading the code",
    "setup_failed": "grading sandbox could not be set up",
    "not_graded": "not graded",
    "grading_gave_up": "grading did not finish",
    "raised_own_exception": "raised an exception of its own class",
}


def failure_label(code: str) -> str:
    """Words for a failure code; ``raised_<Error>`` codes read "raised <Error>"."""
    if code in FAILURE_LABELS:
        return FAILURE_LABELS[code]
    if code.startswith("raised_"):
        return f"raised {code[len('raised_'):]}"
    return code


class RecordError(ValueError):
    """A record file that is missing, unreadable or not of this schema."""


@dataclass(frozen=True)
class Failure:
    """One failed case of one graded cell."""

    code: str
    message: str
    case: str = ""


@dataclass
class CellResult:
    """A graded cell's outcome: passed, or the failures that cost its points."""

    passed: bool
    failures: list[Failure] = field(default_factory=list)
    function: str = ""
    prop: str = ""
    #: Partial credit: the share of the cell's points earned (None when the cell is all or nothing).
    fraction: float | None = None

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.failures]

    def messages(self) -> list[str]:
        """The failures as the student's notebook shows them: ``function - property: message [case: ...]``."""
        return [f"{self.function} - {self.prop}: {f.message}" + (f" [case: {f.case}]" if f.case else "")
                for f in self.failures]


@dataclass
class Record:
    """Everything the grader learned about one submission.

    ``functions`` gives each graded function's process outcome as a code
    (``ok``, ``cpu_limit``, ``memory_limit``...) and ``function_notes`` the
    matching English text; ``limits_hit`` lists the functions that hit a
    resource limit, with the code.
    """

    student: str
    assignment: str
    status: str = "graded"  # "graded", or "failed" when autograde itself did not finish
    failure: str | None = None  # why, when status == "failed"
    attention: list[str] = field(default_factory=list)
    # sandbox state
    sandboxed: bool | None = None
    cgroups: bool | None = None
    kernel: str = "not run"
    submission_memory_peak: int | None = None
    grader_maxrss_kib: int | None = None
    # per graded function
    functions: dict[str, str] = field(default_factory=dict)
    function_notes: dict[str, str] = field(default_factory=dict)
    function_cpu_seconds: dict[str, float] = field(default_factory=dict)
    limits_hit: dict[str, str] = field(default_factory=dict)
    wall_timeouts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # per graded cell
    cells: dict[str, CellResult] = field(default_factory=dict)
    # timings and batch bookkeeping
    verdict_wait_seconds: float | None = None
    autograde_seconds: float | None = None
    grading_seconds: float | None = None
    retried_alone: bool = False
    # where it was graded: "local", or "dask" with the worker and how many workers it took
    engine: str = "local"
    worker: str | None = None
    attempts: int = 1
    bundle: str | None = None
    schema: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """A record from parsed JSON, checking every field's type (unknown keys are ignored)."""
        if not isinstance(data, dict):
            raise RecordError("a grading record must be a JSON object")
        if data.get("schema") != SCHEMA_VERSION:
            raise RecordError(f"grading record of schema {data.get('schema')!r}, expected {SCHEMA_VERSION}")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "cells":
                value = {str(k): _cell(v) for k, v in _typed(value, dict, f.name).items()}
            else:
                _check_type(f.name, value)
            kwargs[f.name] = value
        if not isinstance(kwargs.get("student"), str) or not isinstance(kwargs.get("assignment"), str):
            raise RecordError("a grading record needs a student and an assignment")
        return cls(**kwargs)

    def failures(self) -> list[tuple[str, Failure]]:
        """Every ``(grade_id, failure)`` of the submission, in cell order."""
        return [(gid, f) for gid, cell in self.cells.items() for f in cell.failures]

    def messages(self) -> list[str]:
        """Every failure in the words the student read, in cell order."""
        return [m for cell in self.cells.values() for m in cell.messages()]


_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,), "failure": (str, type(None)), "attention": (list,), "sandboxed": (bool, type(None)),
    "cgroups": (bool, type(None)), "kernel": (str,), "submission_memory_peak": (int, type(None)),
    "grader_maxrss_kib": (int, type(None)), "functions": (dict,), "function_notes": (dict,),
    "function_cpu_seconds": (dict,), "limits_hit": (dict,), "wall_timeouts": (list,), "errors": (list,),
    "verdict_wait_seconds": (int, float, type(None)), "autograde_seconds": (int, float, type(None)),
    "grading_seconds": (int, float, type(None)), "retried_alone": (bool,), "schema": (int,),
    "engine": (str,), "worker": (str, type(None)), "attempts": (int,), "bundle": (str, type(None)),
    "student": (str,), "assignment": (str,),
}


def _typed(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind):
        raise RecordError(f"grading record field {name!r} has the wrong type")
    return value


def _check_type(name: str, value: Any) -> None:
    _typed(value, _TYPES[name], name)


def _cell(value: Any) -> CellResult:
    value = _typed(value, dict, "cells")
    failures = []
    for item in _typed(value.get("failures", []), list, "failures"):
        item = _typed(item, dict, "failures")
        code, message, case = item.get("code"), item.get("message"), item.get("case", "")
        if not all(isinstance(x, str) for x in (code, message, case)):
            raise RecordError("a failure needs a code, a message and a case")
        failures.append(Failure(code, message, case))
    function, prop = value.get("function", ""), value.get("prop", "")
    if not isinstance(function, str) or not isinstance(prop, str):
        raise RecordError("grading record field 'cells' has the wrong type")
    fraction = value.get("fraction")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, int | float)
                                 or not 0.0 <= fraction <= 1.0):
        raise RecordError("grading record field 'fraction' must be a number from 0 to 1")
    return CellResult(bool(_typed(value.get("passed"), bool, "passed")), failures, function, prop,
                      None if fraction is None else float(fraction))


def record_path(assignment: str, student: str, root: Path | None = None) -> Path:
    return paths.records_dir(assignment, root) / f"{student}.json"


def read(path: Path) -> Record:
    """The record at ``path``: a regular file (never a link) of bounded size, of this schema."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise RecordError(f"grading record unreadable ({type(exc).__name__})") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
            raise RecordError("grading record unreadable (not a regular file of sensible size)")
        raw = fh.read(MAX_RECORD_BYTES + 1)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"grading record unreadable ({type(exc).__name__})") from None
    return Record.from_json(data)


def load(assignment: str, student: str, root: Path | None = None) -> Record | None:
    """The student's record, or None when there is none or it cannot be read."""
    try:
        return read(record_path(assignment, student, root))
    except RecordError:
        return None


def load_all(assignment: str, root: Path | None = None) -> tuple[dict[str, Record], dict[str, str]]:
    """Every record of the assignment keyed by student, and the files that could not be read (with why)."""
    folder = paths.records_dir(assignment, root)
    records: dict[str, Record] = {}
    broken: dict[str, str] = {}
    if not folder.is_dir():
        return records, broken
    for path in sorted(folder.glob("*.json")):
        try:
            rec = read(path)
        except RecordError as exc:
            broken[path.stem] = str(exc)
            continue
        # The student field is the nbgrader id even where a file name could not hold it.
        records[rec.student or path.stem] = rec
    return records, broken


def save(record: Record, root: Path | None = None) -> Path:
    """Write the record atomically (a reader sees the old one or the new one, never half)."""
    folder = paths.records_dir(record.assignment, root)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{record.student}.json"
    tmp = folder / f".{record.student}.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record.to_json(), indent=1))
    os.replace(tmp, target)
    return target


def update(assignment: str, student: str, root: Path | None = None, **changes: Any) -> Record:
    """Load (or start) the student's record, apply ``changes`` and save it."""
    record = load(assignment, student, root) or Record(student=student, assignment=assignment)
    for name, value in changes.items():
        if name not in _TYPES and name != "cells":
            raise AttributeError(f"a grading record has no field {name!r}")
        setattr(record, name, value)
    save(record, root)
    return record
