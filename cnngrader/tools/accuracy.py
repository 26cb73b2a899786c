"""How accurate is the grading? ``make accuracy`` (``python -m cnngrader.tools.accuracy``).

Grades, through the real batch autograde path, one submission per mutant in
the mutant catalogue (``source/<id>/grading/mutants.toml``: the reference with one function replaced by a single-bug
version), one per correct variant in ``grading/variants``, and two credit
isolation submissions, then prints:

* mutants caught per function (a mutant is caught when its own function
  loses points) and any collateral loss on other functions;
* variants given full marks;
* whether credit isolation holds;
* how long the naive reference takes on each function's hidden cases
  (median of 5 runs), against the per-function time limit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnngrader.core import i18n, paths, spec
from cnngrader.tools import mutants, submissions
from cnngrader.tools.workspace import Course, make_course


def isolation(assignment: str | None = None) -> dict[str, dict]:
    """Broken helpers whose callers must still get full marks: the spec's ``[[accuracy.isolation]]``."""
    cases = spec.load(assignment).accuracy.get("isolation", [])
    return {c["name"]: {"mutants": tuple(c["mutants"]), "keeps": tuple(c["keeps"])} for c in cases}


def mutant_files(assignment: str | None = None) -> list[Path]:
    if assignment in (None, paths.default_assignment()):
        return mutants.files()
    return [Path(m.name + ".py") for m in mutants.catalogue(assignment=assignment)]


def variant_files(assignment: str | None = None) -> list[Path]:
    return sorted(submissions.variants_dir(assignment).glob("*.py"))


def target_of(mutant: Path) -> str:
    return mutant.stem.split("__", 1)[0]


def _cells(sources: list[str]) -> dict[str, str]:
    """Solution cells replaced by whole-function sources, by the names each source defines."""
    return {name: src for src in sources for name in submissions.functions_in(src)}


def write_submissions(course: Course) -> None:
    """One submission per mutant, per correct variant and per credit-isolation case, plus the reference."""
    a = course.assignment
    submissions.submit_release(course.root, "reference", a)
    catalogue = {m.name: m.source for m in mutants.catalogue(assignment=a)}
    for name, source in catalogue.items():
        submissions.submit_release(course.root, f"m__{name}", a, _cells([source]))
    for path in variant_files(a):
        submissions.submit_release(course.root, f"v__{path.stem}", a, _cells([path.read_text()]))
    for name, case in isolation(a).items():
        submissions.submit_release(course.root, name, a, _cells([catalogue[m] for m in case["mutants"]]))


@dataclass
class Accuracy:
    caught: dict[str, list[str]] = field(default_factory=dict)
    missed: dict[str, list[str]] = field(default_factory=dict)
    collateral: dict[str, list[str]] = field(default_factory=dict)
    variants_full: list[str] = field(default_factory=list)
    variants_short: dict[str, float] = field(default_factory=dict)
    isolation: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (not any(self.missed.values()) and not self.collateral and not self.variants_short
                and all(self.isolation.values()))


def evaluate(course: Course) -> Accuracy:
    scores = course.scores()
    a = spec.load(course.assignment)
    points, names, full = a.function_points(), a.function_names, a.total_points()
    acc = Accuracy({fn: [] for fn in names}, {fn: [] for fn in names})
    for path in mutant_files(course.assignment):
        fn = target_of(path)
        row = scores.get(f"m__{path.stem}", {})
        (acc.caught if row.get(fn, points[fn]) < points[fn] else acc.missed)[fn].append(path.stem)
        others = [f for f in names if f != fn and row.get(f, 0) < points[f]]
        if others:
            acc.collateral[path.stem] = others
    for path in variant_files(course.assignment):
        total = sum(scores.get(f"v__{path.stem}", {}).values())
        if total == full:
            acc.variants_full.append(path.stem)
        else:
            acc.variants_short[path.stem] = total
    for name, case in isolation(course.assignment).items():
        row = scores.get(name, {})
        acc.isolation[name] = all(row.get(fn, 0) == points[fn] for fn in case["keeps"])
    return acc


def reference_timings(repeats: int = 5, assignment: str | None = None) -> dict[str, float]:
    """Median seconds the reference needs for each function's hidden cases (speed and score checks included)."""
    from cnngrader.core.hidden_data import HiddenData
    from cnngrader.core.reference import reference_namespace
    from cnngrader.sandbox.verdicts import run_in_process

    a = spec.load(assignment)
    data = HiddenData(paths.hidden_data_file(a.name))
    ns = reference_namespace(a.notebook)
    timings = {}
    for fn in a.function_names:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for check in a.checks_for(fn):
                assert run_in_process(ns, check.grade_id, data).passed
            runs.append(time.perf_counter() - started)
        timings[fn] = statistics.median(runs)
    return timings


def render(acc: Accuracy, timings: dict[str, float] | None, wall: float, assignment: str | None = None) -> str:
    lines = ["function                  mutants  caught  missed", "-" * 50]
    for fn in spec.load(assignment).function_names:
        n = len(acc.caught[fn]) + len(acc.missed[fn])
        lines.append(f"{fn:<25} {n:>7} {len(acc.caught[fn]):>7} {len(acc.missed[fn]):>7}")
    total_caught = sum(len(v) for v in acc.caught.values())
    total = total_caught + sum(len(v) for v in acc.missed.values())
    lines.append(f"{'all':<25} {total:>7} {total_caught:>7} {total - total_caught:>7}")
    lines.append("")
    lines.append(f"collateral losses (a mutant costing points elsewhere): {len(acc.collateral)}")
    for name, fns in acc.collateral.items():
        lines.append(f"  {name}: {', '.join(fns)}")
    n_var = len(acc.variants_full) + len(acc.variants_short)
    lines.append(f"correct variants with full marks: {len(acc.variants_full)} / {n_var}")
    for name, total in acc.variants_short.items():
        lines.append(f"  {name}: {total:g} / {spec.load(assignment).total_points()}")
    for name, ok in acc.isolation.items():
        keeps = ", ".join(isolation(assignment)[name]["keeps"])
        lines.append(f"credit isolation {name} ({keeps} with broken helpers): {'holds' if ok else 'BROKEN'}")
    if timings:
        lines.append("")
        lines.append(f"reference on the hidden cases (median), CPU limit {wall:g} s per function:")
        for fn, t in timings.items():
            lines.append(f"  {fn:<25} {t:8.3f} s   headroom {wall / max(t, 1e-9):8.0f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None, help="grade in this directory and keep it")
    parser.add_argument("--assignment", default=None,
                        help="assignment id, or a translated edition's (default: the course's first)")
    parser.add_argument("--editions", action="store_true",
                        help="grade the catalogue in every edition of the assignment and require equal points")
    parser.add_argument("--repeats", type=int, default=5, help="reference timing runs per function (median)")
    args = parser.parse_args(argv)
    from cnngrader.sandbox.limits import for_assignment, from_course

    name = args.assignment or paths.default_assignment()
    a = spec.load(name)
    ids = ([i18n.edition_id(a.name, lang) for lang in (i18n.ENGLISH, *i18n.languages())] if args.editions
           else [name])
    with tempfile.TemporaryDirectory(prefix="cnn-accuracy-") as tmp:
        root = args.keep or Path(tmp) / "course"
        make_course(root, generate=False)
        scores: dict[str, dict] = {}
        for edition in ids:
            from cnngrader.tools.workspace import nbgrader

            nbgrader(root, "generate_assignment", edition, "--force")
            course = Course(root, edition)
            write_submissions(course)
            n = sum(1 for p in course.submitted.iterdir() if (p / edition).is_dir())
            started = time.monotonic()
            proc = course.grade(jobs=args.jobs, extra_args=("--assignment", edition, "--no-summary", "--no-export"))
            if proc.returncode not in (0, 3):
                print(proc.stdout, proc.stderr, file=sys.stderr)
                return 1
            print(f"{edition}: graded {n} submissions in {time.monotonic() - started:.0f} s")
            scores[edition] = course.scores()
            if edition == ids[0]:
                acc = evaluate(course)
    cpu = for_assignment(from_course(paths.course_root()), a).cpu_seconds
    print(render(acc, reference_timings(args.repeats, a.name), cpu, a.name))
    same = True
    for edition in ids[1:]:
        differ = sorted(s for s in scores[ids[0]] if scores[edition].get(s) != scores[ids[0]][s])
        same = same and not differ
        print(f"{edition} against {ids[0]}: {len(scores[ids[0]]) - len(differ)} of {len(scores[ids[0]])} "
              f"submissions earn the same points per function" + (f"; differ: {', '.join(differ)}" if differ else ""))
    return 0 if acc.ok and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
