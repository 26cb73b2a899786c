"""The hardened ``nbgrader autograde`` itself, so the CLI, formgrader and ``make grade`` share it.

``nbgrader_config.py`` calls :func:`install`, which makes nbgrader's
autograde app and its API (the one formgrader's Autograde button uses)
build :class:`HardenedAutograde` instead of the stock converter. It adds:

* **staging** (:mod:`cnngrader.sandbox.staging`): every submission folder is copied
  into ``.grading/staged/`` within caps, and a missing, renamed or malformed
  notebook becomes the blank release with a recorded reason, so every
  student who submitted anything gets a recorded submission;
* **failures that cannot look current**: when autograding a student fails,
  that submission's automatic scores are set to 0 and flagged for manual
  grading, and the grading record says why; an earlier score never stays
  behind looking like this run's;
* a memory cap on the grading process when it is the ``nbgrader`` command itself.

This subclasses nbgrader 0.9.6 (pinned in ``requirements.txt``); a test
checks that the stock commands really use it.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import resource
import time
from pathlib import Path
from typing import Any

from nbgrader.converters import Autograde

from cnngrader.core import record
from cnngrader.core.textsafe import clean
from cnngrader.glue import preprocessors
from cnngrader.glue.term import CnnTerm, apply_due_dates, due_dates
from cnngrader.sandbox.limits import from_config
from cnngrader.sandbox.staging import StageResult, stage, valid_student_id

log = logging.getLogger("cnngrader.glue.pipeline")

STAGED = ".grading/staged"
#: Notes from a staging done elsewhere (the Dask engine's client stages before it ships a
#: submission to a worker), by ``(assignment, student)``: they lead the record's attention list.
CARRIED_NOTES: dict[tuple[str, str], list[str]] = {}
_DUE_DATES_APPLIED: set[tuple[str, tuple]] = set()


def cap_own_memory(limit: int) -> None:
    """Lower this process's address-space limit to ``limit`` (never raises it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > limit:
        new_hard = hard if hard != resource.RLIM_INFINITY and hard < limit else limit
        resource.setrlimit(resource.RLIMIT_AS, (min(limit, new_hard), new_hard))


def mark_failed(db_url: str, course_id: str, assignment: str, student: str, reason: str,
                root: Path | None = None) -> None:
    """Record a failed autograde: scores to 0, flagged for a human, and the reason in the record."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(db_url, course_id) as gb:
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                submission = None
            if submission is not None:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        grade.auto_score = 0
                        grade.needs_manual_grade = True
                gb.db.commit()
    except Exception as exc:  # noqa: BLE001 - the record below still says what happened
        log.error("could not mark %s as failed in the gradebook: %s", clean(student), exc)
    record.update(assignment, student, root, status="failed", failure=reason, cells={}, functions={},
                  function_notes={}, limits_hit={})


class HardenedAutograde(Autograde):
    """nbgrader's Autograde with staging, recorded failures and cleanup of sandboxes."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._staged: dict[tuple[str, str], StageResult] = {}
        self._current: tuple[str, str] | None = None

    @property
    def _input_directory(self) -> str:
        return STAGED if self._sanitizing else self.coursedir.autograded_directory

    def start(self) -> None:
        from nbgrader.apps.autogradeapp import AutogradeApp

        if isinstance(self.parent, AutogradeApp):
            # The `nbgrader autograde` command: cap the trusted process too. (Formgrader's
            # server is left alone; `make grade` caps its workers itself.)
            cap_own_memory(from_config(self.config).grader_memory_bytes)
        super().start()

    def init_notebooks(self) -> None:
        """Stage every matching submission, then let nbgrader find the staged notebooks."""
        limits = from_config(self.config)
        cd = self.coursedir
        pattern = cd.format_path(cd.submitted_directory, cd.student_id, cd.assignment_id)
        regexp = re.compile(cd.format_path(cd.submitted_directory, "(?P<student_id>[^/]+)",
                                           "(?P<assignment_id>[^/]+)", escape=True) + "$")
        for folder in sorted(glob.glob(pattern)):
            match = regexp.match(folder)
            if match is None:
                continue
            student, assignment = match.group("student_id"), match.group("assignment_id")
            path = Path(folder)
            if not valid_student_id(student):
                self.log.error("set aside a submission folder whose name is not a valid student id: %s",
                               clean(student))
                continue
            if path.is_symlink() or not path.is_dir():
                continue
            release_dir = Path(cd.format_path(cd.release_directory, ".", assignment))
            notebook = "*" if cd.notebook_id == "*" else cd.notebook_id
            releases = sorted(release_dir.glob(f"{notebook}.ipynb"))
            if not releases:
                continue
            dest = Path(cd.format_path(STAGED, student, assignment))
            result = stage(path, dest, releases, limits, student)
            for note in result.attention:
                self.log.warning("%s: %s", clean(student), note)
            self._staged[(assignment, student)] = result
        super().init_notebooks()

    def init_single_notebook_resources(self, notebook_filename: str) -> dict:
        resources = super().init_single_notebook_resources(notebook_filename)
        key = (resources["nbgrader"]["assignment"], resources["nbgrader"]["student"])
        staged = self._staged.get(key)
        carried = CARRIED_NOTES.get(key, [])
        resources["cnn"] = {"attention": [*carried, *(staged.attention if staged else [])]}
        return resources

    def init_assignment(self, assignment_id: str, student_id: str) -> None:
        self._current = (assignment_id, student_id)
        try:
            # The due date from nbgrader_config.py decides lateness (nbgrader reads it from the gradebook).
            dues = due_dates(CnnTerm(config=self.config))
            applied = (self.coursedir.db_url, tuple(sorted(dues.items())))
            if assignment_id in dues and applied not in _DUE_DATES_APPLIED:
                apply_due_dates(self.coursedir.db_url, self.coursedir.course_id, self.config)
                # Once per grading process and set of dates, not once per student.
                _DUE_DATES_APPLIED.add(applied)
            super().init_assignment(assignment_id, student_id)
        except Exception as exc:
            self._failed(exc)
            raise

    def convert_single_notebook(self, notebook_filename: str) -> None:
        started = time.monotonic()
        try:
            super().convert_single_notebook(notebook_filename)
        except Exception as exc:
            self._failed(exc)
            raise
        finally:
            preprocessors.release_all_groups()
        if self._current:
            assignment, student = self._current
            if record.load(assignment, student) is not None:
                record.update(assignment, student, autograde_seconds=round(time.monotonic() - started, 2))

    def _failed(self, exc: BaseException) -> None:
        if not self._current:
            return
        assignment, student = self._current
        reason = f"autograde failed ({type(exc).__name__})"
        self.log.error("%s: %s", clean(student), reason)
        mark_failed(self.coursedir.db_url, self.coursedir.course_id, assignment, student, reason)


def install() -> None:
    """Make nbgrader's autograde command and API use :class:`HardenedAutograde`."""
    import nbgrader.apps.api as api
    import nbgrader.apps.autogradeapp as app

    api.Autograde = HardenedAutograde
    app.Autograde = HardenedAutograde
    _compile_metadata_schema()
    os.environ.setdefault("CNN_PIPELINE", "hardened")


class _CompiledSchemas:
    """``jsonschema.validate`` for nbgrader's cell metadata, with the schema checked and compiled once.

    nbgrader validates every cell's metadata with ``jsonschema.validate``, which
    checks the schema against its meta-schema and builds a validator on every
    call: 0.2 s of each submission. This does the same checks, raising the same
    (best-matching) error, with one validator per schema.
    """

    def __init__(self) -> None:
        import jsonschema

        self._jsonschema = jsonschema
        self._compiled: dict[str, Any] = {}

    def validate(self, instance: Any, schema: dict) -> None:
        import json

        key = json.dumps(schema, sort_keys=True)
        validator = self._compiled.get(key)
        if validator is None:
            cls = self._jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = self._compiled[key] = cls(schema)
        error = self._jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error


def _compile_metadata_schema() -> None:
    from nbgrader.nbgraderformat import common

    if not isinstance(common.jsonschema, _CompiledSchemas):
        common.jsonschema = _CompiledSchemas()
