"""Hidden checks run inside a notebook kernel.

The source notebook's hidden test regions call :func:`run_check`. This is the
path ``nbgrader validate`` and a plain ``nbgrader autograde`` take. With the
hardened configuration the verdict for every graded test cell is replaced by
the trusted, sandboxed one (:mod:`cnngrader.glue.preprocessors`), and inside that
sandbox this package is not even importable.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cnngrader.core import paths, spec
from cnngrader.core.hidden_data import HiddenData
from cnngrader.sandbox.verdicts import run_in_process


@lru_cache(maxsize=8)
def _data(assignment: str) -> HiddenData:
    return HiddenData(paths.hidden_data_file(assignment))


#: The flag the released checks module reads (cnn_checks.HIDDEN_TESTS_JUDGED): once hidden
#: tests judge a cell, the visible require_checks after them in that cell stays quiet, so one
#: bug costs only its own property's cells under plain nbgrader too.
HIDDEN_TESTS_JUDGED = "_cnn_hidden_tests_judged"


def run_check(grade_id: str, namespace: dict[str, Any]) -> None:
    """Run the hidden check ``grade_id`` on the functions in ``namespace``; raise on failure."""
    namespace[HIDDEN_TESTS_JUDGED] = True
    # Grade ids are unique across the course, so the id names its assignment.
    assignment = spec.for_grade_id(grade_id)
    verdict = run_in_process(namespace, grade_id, _data(assignment.name))
    if not verdict.passed:
        raise AssertionError(verdict.message)
    check = assignment.by_grade_id()[grade_id]
    print(f"hidden tests passed: {check.function} - {check.prop}")
