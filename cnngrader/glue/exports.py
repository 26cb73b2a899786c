"""nbgrader export plugins: a spreadsheet-safe ``grades.csv`` and a Canvas gradebook CSV.

``nbgrader_config.py`` makes :class:`SafeCsvExportPlugin` the default of
``nbgrader export`` (same columns as nbgrader's own, written with the csv
module: names with commas stay in their column, and no cell can run as a
formula). ``make export`` also writes ``canvas.csv``::

    nbgrader export --exporter=cnngrader.glue.exports.CanvasExportPlugin --to=canvas.csv

The Canvas file has one row per student, keyed by the student id in the
"SIS User ID" column, and one column per assignment with the total score
(late penalty applied), after Canvas's "Points Possible" row. Import it in
Canvas under Grades > Import; Canvas matches the columns to assignments by
name. Per-function scores stay in ``grades_by_function.csv`` (``make grade``).

Translated editions (``conv_step_by_step_zh``) are one assignment to a
gradebook outside nbgrader: both files give each student one score per
assignment, from the edition they submitted (the better one if they
submitted two), under the English id in Canvas and under the edition's own
id in ``grades.csv``'s ``assignment`` column.
"""

from __future__ import annotations

import csv

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins.export import ExportPlugin

from cnngrader.core.i18n import base_of
from cnngrader.core.textsafe import csv_cell

NBGRADER_COLUMNS = ("assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score")


def _chosen(plugin: ExportPlugin, items: list, key) -> list:
    if key == "assignment":
        # Asking for an assignment means every edition of it.
        wanted = {base_of(str(x)) for x in plugin.assignment}
        return [x for x in items if not wanted or base_of(x.name) in wanted]
    wanted = {str(x) for x in plugin.student}
    return [x for x in items if not wanted or x.id in wanted]


def _by_base(assignments: list) -> list[list]:
    """Assignments grouped with their translated editions, English first, in the given order."""
    groups: dict[str, list] = {}
    for a in assignments:
        groups.setdefault(base_of(a.name), []).append(a)
    return [sorted(g, key=lambda a: a.name != base_of(a.name)) for g in groups.values()]


def _best(gradebook: Gradebook, group: list, student_id: str) -> tuple:
    """``(assignment, submission)`` of the student's best-scoring edition; ``(English, None)`` if none."""
    best = (group[0], None)
    for assignment in group:
        try:
            sub = gradebook.find_submission(assignment.name, student_id)
        except MissingEntry:
            continue
        if best[1] is None or _net(sub) > _net(best[1]):
            best = (assignment, sub)
    return best


def _net(sub) -> float:
    return (sub.score or 0.0) - (sub.late_submission_penalty or 0.0)


class SafeCsvExportPlugin(ExportPlugin):
    """nbgrader's grades.csv columns, written safely (quoted, and formulas defused)."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        self.log.info("Exporting grades to %s", dest)
        with open(dest, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow(NBGRADER_COLUMNS)
            for group in _by_base(_chosen(self, list(gradebook.assignments), "assignment")):
                for student in _chosen(self, list(gradebook.students), "student"):
                    assignment, sub = _best(gradebook, group, student.id)
                    row = {"assignment": assignment.name, "duedate": assignment.duedate or "",
                           "student_id": student.id, "last_name": student.last_name or "",
                           "first_name": student.first_name or "", "email": student.email or "",
                           "max_score": assignment.max_score}
                    if sub is None:
                        row.update(timestamp="", raw_score=0.0, late_submission_penalty=0.0, score=0.0)
                    else:
                        penalty = sub.late_submission_penalty or 0.0
                        row.update(timestamp=sub.timestamp or "", raw_score=sub.score,
                                   late_submission_penalty=penalty, score=sub.score - penalty)
                    writer.writerow([csv_cell(row[k]) for k in NBGRADER_COLUMNS])


class CanvasExportPlugin(ExportPlugin):
    """A CSV Canvas imports into its gradebook: one column per assignment, keyed by student id."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "canvas.csv"
        groups = _by_base(_chosen(self, sorted(gradebook.assignments, key=lambda a: (a.duedate is None, a.duedate,
                                                                                     a.name)), "assignment"))
        students = _chosen(self, sorted(gradebook.students, key=lambda s: s.id), "student")
        self.log.info("Exporting a Canvas gradebook to %s", dest)
        with open(dest, "w", newline="", encoding="utf-8", errors="replace") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                             *(base_of(g[0].name) for g in groups)])
            writer.writerow(["Points Possible", "", "", "", "", *(f"{g[0].max_score:g}" for g in groups)])
            for student in students:
                name = ", ".join(p for p in (student.last_name, student.first_name) if p) or student.id
                scores = []
                for group in groups:
                    sub = _best(gradebook, group, student.id)[1]
                    # No submission: left empty, not a zero Canvas would count.
                    scores.append("" if sub is None else f"{_net(sub):g}")
                writer.writerow([csv_cell(name), "", csv_cell(student.id), csv_cell(student.email or student.id), "",
                                 *scores])
