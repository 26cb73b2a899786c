"""Instructor grading report for one assignment, after a batch grade, across its editions.

Reads the nbgrader gradebook (scores, authoritative: it includes any manual
override) and the per-student grading records (:mod:`cnngrader.core.record`: why
things failed, as failure codes), and writes one self-contained HTML page::

    python -m cnngrader.tools.report [--db-url URL] [--out PATH] [--assignment ID]

The page holds headline numbers, a score histogram, the mean score of every
graded function, the most common failure reasons per function, the
submissions that need a human look, and a per-student score table.

Every edition of an assignment (English and each translation, which share
grade ids, points and hidden data) is in the one report: its numbers cover
all students, and the tables name each submission's edition. A student who
submitted in two editions has a row for each and is listed under "Needs
attention". ``--assignment`` takes the base id or any edition's id.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from nbgrader.api import Gradebook, MissingEntry

from cnngrader.core import i18n, paths, spec
from cnngrader.core.record import Record, failure_label, load_all
from cnngrader.core.textsafe import clean

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"
#: How many failure reasons to show per function.
TOP_REASONS = 3
#: Scores within this distance count as 0 or full marks (gradebook scores are floats).
EPS = 1e-9

# Okabe-Ito colours, as in the course figures (source/<id>/grading/figures.py), so the report reads like the course figures.
_BLUE = "#0072B2"
_ORANGE = "#E69F00"
_INK = "#1F1F1F"


def default_out(root: Path | None = None, assignment: str | None = None) -> Path:
    """Where the report goes by default: ``feedback/report.html`` for the course's first assignment,
    ``feedback/report_<assignment>.html`` for the others."""
    root = root or paths.course_root()
    first = paths.default_assignment(root)
    base = i18n.base_of(assignment, root) if assignment else None
    name = "report.html" if base in (None, first) else f"report_{base}.html"
    return root / "feedback" / name


def _read_gradebook(db_url: str, assignment: str) -> tuple[list[str], dict[str, dict], dict[str, str]]:
    """All student ids, per submitting student the total and per-function scores, and roster names."""
    if db_url.startswith("sqlite:///"):
        # nbgrader would silently create an empty gradebook; a typo should fail instead.
        db_file = Path(db_url[len("sqlite:///"):].split("?", 1)[0])
        if not db_file.is_file():
            raise FileNotFoundError(f"no gradebook at {db_file}")
    a = spec.load(assignment)
    registry = a.by_grade_id()
    submissions: dict[str, dict] = {}
    # Passing the course id stops nbgrader from inserting a stray "default_course" row.
    with Gradebook(db_url, course_id=paths.course_id()) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            # Otherwise a mistyped id gives a report in which nobody submitted.
            raise LookupError(f"no assignment {assignment!r} in the gradebook") from None
        students = [s.id for s in gb.students]
        names = {s.id: ", ".join(p for p in (s.last_name, s.first_name) if p) for s in gb.students}
        for sub in gb.assignment_submissions(assignment):
            per_function: dict[str, float] = dict.fromkeys(a.function_names, 0.0)
            for notebook in sub.notebooks:
                for grade in notebook.grades:
                    check = registry.get(grade.name)
                    if check is not None:
                        per_function[check.function] += float(grade.score or 0.0)
            submissions[sub.student_id] = {
                "score": float(sub.score or 0.0),
                "max_score": float(sub.max_score or 0.0),
                "functions": per_function,
            }
    return students, submissions, names


def _attention_reasons(rec: Record | None, broken: str | None,
                       in_gradebook: bool, submitted: bool, functions: tuple[str, ...] = ()) -> list[str]:
    """Why a submission needs a human look; empty when it does not."""
    reasons: list[str] = []
    if broken:
        reasons.append(broken)
    if rec is None and not broken:
        if submitted:
            reasons.append("no grading record: grading failed or did not finish")
        elif in_gradebook:
            reasons.append("no submission and no grading record")
    if rec is not None:
        reasons.extend(str(a) for a in rec.attention)
        if rec.status == "failed":
            reasons.append(rec.failure or "autograde failed")
        if rec.kernel != "ok":
            reasons.append(f"notebook kernel: {rec.kernel}")
        for fn in (*functions, *sorted(set(rec.functions) - set(functions))):
            code = rec.functions.get(fn, "ok")
            if code != "ok":
                reasons.append(f"{fn}: {rec.function_notes.get(fn) or failure_label(code)}")
        if not submitted:
            reasons.append("graded, but no submission in the gradebook")
    return reasons


def _failures(records: list[tuple[str, Record]], assignment: spec.Assignment) -> dict[str, list[dict]]:
    """Top failure reasons per function, grouped by the records' failure codes (never by their words).

    ``records`` are ``(student, record)`` pairs, one per graded submission of any edition.
    """
    registry = assignment.by_grade_id()
    cases_count: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    students: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    props: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for student, rec in records:
        for grade_id, failure in rec.failures():
            check = registry.get(grade_id)
            if check is None:  # a cell of another version of the course
                continue
            fn, code = check.function, failure.code
            cases_count[fn][code] += 1
            students[fn][code].add(student)
            if check.prop not in props[fn][code]:
                props[fn][code].append(check.prop)
    out: dict[str, list[dict]] = {}
    for fn in assignment.function_names:
        rows = [
            {"code": code, "reason": failure_label(code), "count": count, "students": len(students[fn][code]),
             "checks": props[fn][code]}
            for code, count in cases_count[fn].items()
        ]
        # Rank by how many students hit a reason: one student failing many cases
        # the same way matters less to the class than many students failing once.
        rows.sort(key=lambda r: (-r["students"], -r["count"], r["reason"]))
        out[fn] = rows[:TOP_REASONS]
    return out


def collect(db_url: str | None = None, assignment: str | None = None,
            root: Path | None = None) -> dict[str, Any]:
    """Gather every number the report shows, as plain data (reads, never writes files).

    Keys: ``assignment`` (the base id), ``editions`` (submissions per language),
    ``functions`` (name and points, notebook order), ``headline``, ``scores``
    (percentages of graded submissions), ``function_means`` (mean percentage per
    function), ``failures`` (top reasons per function), ``attention`` and
    ``students`` (one row per student and edition submitted).
    """
    root = root or paths.course_root()
    assignment = i18n.base_of(assignment or paths.default_assignment(root), root)
    a = spec.load(assignment, root)
    db_url = paths.normalise_db_url(db_url) if db_url else paths.default_db_url(root)
    roster: set[str] = set()
    names: dict[str, str] = {}
    # Per edition: (language, submissions, records, unreadable records).
    editions: list[tuple[str, dict, dict, dict]] = []
    for lang in [i18n.ENGLISH, *i18n.languages(root)]:
        edition = i18n.edition_id(assignment, lang)
        try:
            gb_students, submissions, edition_names = _read_gradebook(db_url, edition)
        except LookupError:
            if lang == i18n.ENGLISH:
                raise
            continue  # this edition was never released
        roster |= set(gb_students)
        names.update(edition_names)
        records, broken = load_all(edition, root)
        editions.append((lang, submissions, records, broken))

    points = a.function_points()
    everyone = sorted(roster.union(*(set(s) | set(r) | set(b) for _, s, r, b in editions)))

    rows: list[dict] = []
    attention: list[dict] = []
    for student in everyone:
        mine = [(lang, s, r, b) for lang, s, r, b in editions if student in s or student in r or student in b]
        for lang, submissions, records, broken in mine or [(None, {}, {}, {})]:
            sub = submissions.get(student)
            score = sub["score"] if sub else None
            max_score = sub["max_score"] if sub else None
            reasons = _attention_reasons(records.get(student), broken.get(student),
                                         student in roster, sub is not None, a.function_names)
            if len(mine) > 1:
                reasons.append(f"submitted in {len(mine)} editions ({', '.join(m[0] for m in mine)}): "
                               "each is graded; choose the one that counts")
            percent = None
            if sub:
                percent = 100.0 * score / max_score if max_score else 0.0
            row = {
                "student": student,
                "name": names.get(student, ""),
                "edition": lang or "",
                "score": score,
                "max_score": max_score,
                "percent": percent,
                "functions": dict(sub["functions"]) if sub else None,
                "submitted": sub is not None or student in records or student in broken,
                "attention": bool(reasons),
            }
            rows.append(row)
            if reasons:
                attention.append({"student": student, "name": names.get(student, ""), "edition": lang or "",
                                  "score": score, "max_score": max_score, "reasons": reasons})
    records = [pair for _, _, recs, _ in editions for pair in recs.items()]

    # The class's numbers count each student once: a student graded in two editions counts with the better.
    best: dict[str, dict] = {}
    for r in rows:
        if r["score"] is not None and (r["student"] not in best or r["score"] > best[r["student"]]["score"]):
            best[r["student"]] = r
    graded = list(best.values())
    scores = [r["percent"] for r in graded]
    function_means = {
        fn: (statistics.fmean(100.0 * r["functions"][fn] / points[fn] for r in graded)
             if graded and points[fn] else None)
        for fn in a.function_names
    }
    headline = {
        "submissions": sum(1 for r in rows if r["submitted"]),
        "graded": len(graded),
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "full_marks": sum(1 for r in graded if r["max_score"] and r["score"] >= r["max_score"] - EPS),
        "zero": sum(1 for r in graded if abs(r["score"]) <= EPS),
        "attention": len(attention),
        "unsandboxed": sum(1 for _, rec in records if rec.sandboxed is False),
        "no_cgroups": sum(1 for _, rec in records if rec.cgroups is False),
    }
    # Student ids and reasons go into HTML escaped by Jinja; control characters are escaped here.
    for row in rows:
        row["student"] = clean(row["student"], 80)
        row["name"] = clean(row["name"], 80)
    for item in attention:
        item["student"] = clean(item["student"], 80)
        item["name"] = clean(item["name"], 80)
        item["reasons"] = [clean(r, 400) for r in item["reasons"]]
    return {
        "assignment": assignment,
        "editions": {lang: sum(1 for r in rows if r["edition"] == lang and r["submitted"]) for lang, *_ in editions},
        "functions": [{"name": fn, "points": points[fn]} for fn in a.function_names],
        "headline": headline,
        "scores": scores,
        "function_means": function_means,
        "failures": _failures(records, a),
        "attention": attention,
        "students": rows,
    }


def _png_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    # No "Software" entry, so the bytes do not change with the matplotlib version.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def score_histogram(scores: list[float]) -> str:
    """Histogram of total scores (bins of 10 points, 0-100) as a PNG data URI."""
    # A Figure on its own Agg canvas, not pyplot: no global backend state to leak.
    fig = Figure(figsize=(6.4, 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.hist(scores, bins=range(0, 101, 10), range=(0, 100), color=_BLUE, edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 10))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("total score (out of 100; the last bin includes 100)")
    ax.set_ylabel("submissions")
    ax.spines[["top", "right"]].set_visible(False)
    return _png_data_uri(fig)


def function_chart(means: dict[str, float | None]) -> str:
    """Horizontal bars: mean score of each function as a percentage of its points."""
    fig = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    names = list(means)
    values = [means.get(fn) for fn in names]
    bars = ax.barh(names, [v or 0.0 for v in values], color=_ORANGE, edgecolor=_INK, linewidth=0.5)
    # "n/a" rather than a 0% bar when nothing was graded, so no data never reads as all wrong.
    ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.0f}%" for v in values],
                 padding=3, color=_INK, fontsize=9)
    ax.set_xlim(0, 110)  # room for the labels of full bars
    ax.set_xticks(range(0, 101, 20))
    ax.invert_yaxis()  # notebook order, top to bottom
    ax.set_xlabel("mean score (% of the function's points)")
    ax.spines[["top", "right"]].set_visible(False)
    return _png_data_uri(fig)


def _number(value: float | None, digits: int = 1) -> str:
    """Jinja filter: ``None`` as a dash, whole numbers without decimals."""
    if value is None:
        return "\u2014"
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.{digits}f}"


def render(data: dict[str, Any], histogram: str, functions_png: str,
           generated: str | None = None) -> str:
    """The report HTML for ``collect()`` output and the two chart data URIs."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    return env.get_template(TEMPLATE).render(
        data=data, histogram=histogram, functions_png=functions_png,
        generated=generated or datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))


def build_report(db_url: str | None = None, out: Path | None = None,
                 assignment: str | None = None) -> Path:
    """Collect the numbers, draw the charts and write the HTML report; returns its path.

    Raises ``FileNotFoundError`` for a missing SQLite gradebook and ``LookupError``
    for an assignment the gradebook does not know.
    """
    root = paths.course_root()
    data = collect(db_url, assignment, root)
    html = render(data, score_histogram(data["scores"]), function_chart(data["function_means"]))
    out = Path(out) if out else default_out(root, assignment)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a report
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the instructor grading report (one HTML file).")
    parser.add_argument("--db-url", default=None,
                        help="gradebook URL (default: $CNN_DB_URL or sqlite:///<course>/gradebook.db)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output file (default: feedback/report.html; report_<id>.html for later assignments)")
    parser.add_argument("--assignment", default=None, help="assignment id (default: the course's first)")
    args = parser.parse_args(argv)
    try:
        path = build_report(args.db_url, args.out, args.assignment)
    except (FileNotFoundError, LookupError) as exc:
        print(f"report: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
