"""Running a term: due dates and the late policy, set in ``nbgrader_config.py``.

Due dates::

    c.CnnTerm.due_dates = {"conv_step_by_step": "2027-02-15 23:59:00 Europe/Berlin"}

They are written into the gradebook whenever an assignment is released or
autograded, so nbgrader computes how late each submission is from its
``timestamp.txt`` (set by ``nbgrader submit``).

The late policy (:class:`LatePenalty`, wired in as nbgrader's late-submission
plugin): after a grace period, a late submission loses a share of the score it
earned for every started day late, up to a maximum share::

    c.CnnTerm.late_grace_minutes = 15
    c.CnnTerm.late_percent_per_day = 10.0
    c.CnnTerm.late_max_percent = 50.0

So 20 minutes late costs 10% of the earned score, 30 hours late 20%, and a
week late 50%. Nothing is ever taken below zero.
"""

from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Dict, Float
from traitlets.config import Config, Configurable

from cnngrader.core.i18n import all_editions, base_of


class CnnTerm(Configurable):
    """Due dates and the late policy for this course."""

    due_dates = Dict({}, help="assignment id -> due date, e.g. '2027-02-15 23:59:00 UTC' (any time zone "
                     "name nbgrader understands)").tag(config=True)
    late_grace_minutes = Float(15.0, help="minutes after the due date that still count as on time").tag(config=True)
    late_percent_per_day = Float(10.0, help="share of the earned score lost per started day late").tag(config=True)
    late_max_percent = Float(50.0, help="largest share of the earned score a late submission can lose")\
        .tag(config=True)


def late_penalty(score: float, seconds_late: float, term: CnnTerm) -> float:
    """Points taken off ``score`` for a submission ``seconds_late`` past its due date."""
    late = seconds_late - term.late_grace_minutes * 60
    if late <= 0 or score <= 0:
        return 0.0
    days = math.ceil(late / 86400)
    share = min(term.late_max_percent, term.late_percent_per_day * days) / 100.0
    return round(score * share, 6)


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin applying :func:`late_penalty` with ``c.CnnTerm``."""

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        penalty = late_penalty(score, total_seconds_late, CnnTerm(config=self.config))
        if penalty:
            self.log.info("%s: %.0f s late, %.2f points off", student_id, total_seconds_late, penalty)
        return penalty


def due_dates(term: CnnTerm) -> dict[str, str]:
    """Every assignment's due date; a translated edition is due when its English base is, unless set."""
    dues = {a: term.due_dates.get(a) or term.due_dates.get(base_of(a)) for a in all_editions()}
    dues.update(term.due_dates)
    return {a: due for a, due in dues.items() if due}


def apply_due_dates(db_url: str, course_id: str, config: Config) -> list[str]:
    """Write the configured due dates into the gradebook; returns the assignments updated."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import parse_utc

    term = CnnTerm(config=config)
    dues = due_dates(term)
    done = []
    with Gradebook(db_url, course_id) as gb:
        for assignment, due in dues.items():
            try:
                gb.find_assignment(assignment)
            except MissingEntry:
                continue  # not generated yet: `make release` records it then
            gb.update_or_create_assignment(assignment, duedate=parse_utc(due))
            done.append(assignment)
    return done


def main() -> int:
    """Record the configured due dates in the course's gradebook (``make release`` runs this)."""
    from traitlets.config.loader import PyFileConfigLoader

    from cnngrader.core import paths

    root = paths.course_root()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    db_url = config.CourseDirectory.get("db_url") or paths.default_db_url(root)
    done = apply_due_dates(paths.normalise_db_url(db_url), config.CourseDirectory.get("course_id", paths.course_id()),
                           config)
    for assignment in done:
        print(f"due date of {assignment}: {due_dates(CnnTerm(config=config))[assignment]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
