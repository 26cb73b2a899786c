"""An assignment, as data: what is graded, how, and for how many points.

Every assignment keeps a ``grading/`` folder beside its source notebook
(``source/<assignment>/grading/``, which nbgrader never copies into a
release). It holds:

``spec.toml``
    The declaration: the graded functions (short names, credit-isolation
    helpers, forward passes blocked while a backward pass is graded, the
    placeholder probe), the hidden checks (grade id, points, the property a
    student reads, how results are compared, how expectations are made and
    the inputs), and per-assignment limits.
``cases.py``
    The input makers the checks name: small functions that turn a few
    numbers (a seed, shapes, hyperparameters) into a :class:`Case`. Inputs are
    generated rather than stored so that a reader sees "seed 31, A_prev of
    shape (2, 7, 5, 3), stride 2" in the spec instead of an opaque array.

The grading core reads only these objects; nothing in it knows what a
convolution is. Kinds of comparison (``compare``):

``shape`` / ``array``
    the (selected) output's shape, or its values within a tolerance;
``scalar`` / ``scalar_strict``
    a single number; ``scalar_strict`` also refuses a 1-element array;
``bool_array``
    a boolean array equal to the expectation;
``holds_inputs``
    the selected output is a tuple holding the inputs it was given
    (a cache), item by item;
``gradient``
    named gradients, each compared by relative error; a check may compare a
    subset of what the function returns;
``speedup``
    right on ``repeats`` inputs of the case's shapes with values drawn at
    grading time, and at least ``min_ratio`` times faster than ``baseline``
    (released course code, ``file.py:function`` in the source folder). The
    sandbox's runner times both: the baseline in its own process (the faster
    of two runs), the student's function from outside the student's process,
    from handing over each input to receiving that call's result (the median
    call counts);
``min_score``
    a property graded by the trusted side: the function's result is scored
    by a scorer declared in the spec (for instance the accuracy of returned
    parameters on instructor-only data), and partial credit follows the
    spec's scale.

Expectations (``expect``): ``reference`` calls the reference solution on
the case's inputs; ``numeric_gradient`` differentiates the reference
``gradient_of`` function by central differences, and the reference backward
pass must agree before anything is written; ``none`` stores nothing (the
``min_score`` kind judges against data of its own).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cnngrader.core import i18n, paths

COMPARE_KINDS = frozenset({"shape", "array", "scalar", "scalar_strict", "bool_array", "holds_inputs", "gradient",
                           "min_score", "speedup"})
EXPECT_KINDS = frozenset({"reference", "numeric_gradient", "none"})


class SpecError(ValueError):
    """The spec file is malformed; the message names the file and the entry."""


class UnknownAssignment(SpecError, LookupError):
    """No grading spec for that assignment id (a typo, or an assignment without one)."""


@dataclass(frozen=True)
class GradientSetup:
    """How to differentiate a forward pass for one backward case.

    ``loss = sum(forward(*forward_args, **forward_kwargs)[output] * upstream)``;
    ``wrt`` maps each gradient's name to the forward argument it is taken with
    respect to: its index, or a path such as ``(1, "W1")`` into a dict argument.
    """

    forward_args: tuple
    upstream: Any
    wrt: dict[str, Any]
    forward_kwargs: dict = field(default_factory=dict)
    output: int | None = 0


@dataclass(frozen=True)
class Computed:
    """An argument the reference computes when the hidden data is built (a cache, say).

    Stands for ``reference[function](*args)[output]`` (the whole result when
    ``output`` is None); the stored case holds the value, never this marker.
    """

    function: str
    args: tuple
    output: int | None = None


@dataclass(frozen=True)
class Case:
    """One call of the graded function.

    ``args`` holds NumPy arrays and plain Python values; ``describe`` is what a
    failure message says about the input (shapes and hyperparameters only).
    """

    args: tuple
    describe: str
    gradient: GradientSetup | None = None


@dataclass(frozen=True)
class Check:
    """One graded test cell (or, with 0 points, one function's placeholder probe)."""

    grade_id: str
    function: str
    points: int
    prop: str
    compare: str
    cases: tuple[Case, ...] = field(default=())
    expect: str = "reference"
    #: Index of the returned tuple's item that is compared (None: the whole result; "dict":
    #: for ``gradient``, the result is a dict of the named gradients).
    output: int | str | None = None
    #: What a message calls the compared value.
    what: str = "the output"
    #: ``gradient``: the names of the returned gradients, in order, and the ones this check compares.
    returns: tuple[str, ...] = ()
    gradients: tuple[str, ...] = ()
    #: ``holds_inputs``: (name, index of the argument) for each item of the held tuple.
    holds: tuple[tuple[str, int], ...] = ()
    #: ``min_score``: the scorer's name in the spec, and (score, fraction of the points) steps.
    scorer: str = ""
    scale: tuple[tuple[float, float], ...] = ()
    #: ``speedup``: the course's slow version (``file.py:function`` in the source folder) and the ratio needed.
    baseline: str = ""
    min_ratio: float = 0.0
    #: ``speedup``: calls on fresh inputs; the median one is compared with the baseline.
    repeats: int = 5

    def __post_init__(self) -> None:
        # A gradient check that names no subset compares every gradient it returns.
        if self.returns and not self.gradients:
            object.__setattr__(self, "gradients", self.returns)

    @property
    def kind(self) -> str:
        """The comparison kind (the name older code and messages use)."""
        return self.compare


@dataclass(frozen=True)
class Function:
    """A graded function."""

    name: str
    short: str
    helpers: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    gradient_of: str = ""
    probe: Check | None = None


@dataclass(frozen=True)
class Scorer:
    """A trusted scorer for ``min_score`` checks: ``module:function`` and a data file, both in the grading folder."""

    name: str
    call: str
    data: str = ""


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: loaded once per file version
class Assignment:
    """One assignment's grading spec, loaded from its ``grading/`` folder."""

    name: str
    title: str
    folder: Path
    notebook_name: str
    functions: tuple[Function, ...]
    checks: tuple[Check, ...]
    limits: dict[str, Any] = field(default_factory=dict)
    scorers: dict[str, Scorer] = field(default_factory=dict)
    visible: dict[str, str] = field(default_factory=dict)
    hooks: dict[str, str] = field(default_factory=dict)
    #: Code cells with one of these tags run neither in the grading kernel nor in the workers.
    skip_tags: tuple[str, ...] = ()
    #: Data for the accuracy tool (credit-isolation cases); the grading core does not read it.
    accuracy: dict[str, Any] = field(default_factory=dict)
    #: Translated editions: ``modules`` (files whose ``_()``/``N_()`` strings students read) and
    #: ``drawn`` (folders the figures hook draws once per language); read by ``cnn translate``.
    translation: dict[str, Any] = field(default_factory=dict)

    # -- lookups -------------------------------------------------------------------------
    @property
    def function_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.functions)

    @property
    def short_names(self) -> dict[str, str]:
        return {f.name: f.short for f in self.functions}

    @property
    def helpers(self) -> dict[str, tuple[str, ...]]:
        return {f.name: f.helpers for f in self.functions if f.helpers}

    @property
    def blocked(self) -> dict[str, tuple[str, ...]]:
        return {f.name: f.blocked for f in self.functions if f.blocked}

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)

    def probes(self) -> dict[str, Check]:
        return {f.name: f.probe for f in self.functions if f.probe is not None}

    def by_grade_id(self) -> dict[str, Check]:
        return {c.grade_id: c for c in self.checks}

    def checks_for(self, function: str) -> list[Check]:
        return [c for c in self.checks if c.function == function]

    def function_points(self) -> dict[str, int]:
        """Points of each graded function, in notebook order."""
        points = dict.fromkeys(self.function_names, 0)
        for check in self.checks:
            points[check.function] += check.points
        return points

    def total_points(self) -> int:
        return sum(c.points for c in self.checks)

    # -- files ---------------------------------------------------------------------------
    @property
    def source_folder(self) -> Path:
        """``source/<assignment>/``: the notebook and the files released with it."""
        return self.folder.parent

    @property
    def notebook(self) -> Path:
        return self.source_folder / f"{self.notebook_name}.ipynb"

    def module(self, name: str) -> ModuleType:
        """A Python module of the grading folder (instructor-side code only)."""
        return load_module(self.folder / f"{name}.py", f"_cnn_grading_{self.name}_{name}")

    def resolve(self, dotted: str) -> Callable:
        """``module:function`` inside the grading folder."""
        module, _, attr = dotted.partition(":")
        return getattr(self.module(module), attr)

    def scorer_data(self, scorer: Scorer) -> Path:
        """A scorer's instructor-only data file, in the grading folder (never released)."""
        return self.folder / scorer.data


def load_module(path: Path, name: str) -> ModuleType:
    """Execute a Python file as module ``name`` (instructor-side course files only)."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: cannot load")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


# -- loading -----------------------------------------------------------------------------------
def _tuple(value: Any) -> Any:
    """TOML arrays become tuples (shapes, hyperparameter pairs); tables stay dicts."""
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuple(v) for k, v in value.items()}
    return value


def _cases(where: str, raw: Any, makers: ModuleType) -> tuple[Case, ...]:
    if not isinstance(raw, list):
        raise SpecError(f"{where}: cases must be a list of tables")
    out = []
    for k, entry in enumerate(raw):
        if not isinstance(entry, dict) or "make" not in entry:
            raise SpecError(f"{where}: case {k} needs a 'make' entry naming a function of cases.py")
        args = _tuple({key: v for key, v in entry.items() if key != "make"})
        maker = getattr(makers, f"make_{entry['make']}", None)
        if maker is None:
            raise SpecError(f"{where}: case {k}: cases.py has no make_{entry['make']}")
        case = maker(**args)
        if not isinstance(case, Case):
            raise SpecError(f"{where}: case {k}: make_{entry['make']} must return a Case")
        out.append(case)
    return tuple(out)


_CHECK_KEYS = {"grade_id", "function", "points", "property", "compare", "cases", "expect", "output", "what",
               "returns", "gradients", "holds", "scorer", "scale", "baseline", "min_ratio", "repeats"}


def _check(where: str, raw: dict, makers: ModuleType, function: str | None = None) -> Check:
    unknown = set(raw) - _CHECK_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
    fn = function or raw.get("function")
    if not isinstance(fn, str):
        raise SpecError(f"{where}: 'function' is required")
    compare = raw.get("compare")
    if compare not in COMPARE_KINDS:
        raise SpecError(f"{where}: compare must be one of {sorted(COMPARE_KINDS)}, got {compare!r}")
    expect = raw.get("expect", "none" if compare in ("min_score", "speedup") else "reference")
    if expect not in EXPECT_KINDS:
        raise SpecError(f"{where}: expect must be one of {sorted(EXPECT_KINDS)}, got {expect!r}")
    returns = tuple(raw.get("returns", ()))
    gradients = tuple(raw.get("gradients", returns))
    if compare == "gradient" and (not returns or not set(gradients) <= set(returns)):
        raise SpecError(f"{where}: a gradient check needs 'returns' and 'gradients' among them")
    holds = tuple((str(n), int(i)) for n, i in raw.get("holds", ()))
    if compare == "holds_inputs" and not holds:
        raise SpecError(f"{where}: a holds_inputs check needs 'holds' = [[name, argument index], ...]")
    scale = tuple((float(s), float(f)) for s, f in raw.get("scale", ()))
    if compare == "min_score" and (not raw.get("scorer") or not scale):
        raise SpecError(f"{where}: a min_score check needs 'scorer' and 'scale' = [[score, fraction], ...]")
    if compare == "speedup":
        baseline = raw.get("baseline", "")
        if not isinstance(baseline, str) or ":" not in baseline or not float(raw.get("min_ratio", 0)) > 0:
            raise SpecError(f"{where}: a speedup check needs baseline = \"file.py:function\" and min_ratio > 0")
        if len(raw.get("cases", [])) != 1:
            raise SpecError(f"{where}: a speedup check times exactly one case")
    output = raw.get("output")
    if not (output is None or output == "dict" or (isinstance(output, int) and not isinstance(output, bool))):
        raise SpecError(f"{where}: output must be an index into the returned tuple, or \"dict\"")
    points = raw.get("points", 0)
    if not isinstance(points, int) or points < 0:
        raise SpecError(f"{where}: points must be a non-negative integer")
    grade_id = raw.get("grade_id")
    if not isinstance(grade_id, str) or not grade_id.isidentifier():
        raise SpecError(f"{where}: grade_id must be an identifier")
    return Check(grade_id=grade_id, function=fn, points=points, prop=str(raw.get("property", "")),
                 compare=compare, cases=_cases(f"{where} ({grade_id})", raw.get("cases", []), makers),
                 expect=expect, output=output, what=str(raw.get("what", "the output")),
                 returns=returns, gradients=gradients, holds=holds, scorer=str(raw.get("scorer", "")),
                 scale=scale, baseline=str(raw.get("baseline", "")), min_ratio=float(raw.get("min_ratio", 0.0)),
                 repeats=int(raw.get("repeats", 5)))


def load_file(spec_file: Path) -> Assignment:
    """Read and check one ``spec.toml`` (and its ``cases.py``)."""
    spec_file = Path(spec_file).resolve()
    folder = spec_file.parent
    try:
        raw = tomllib.loads(spec_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{spec_file}: {exc}") from exc
    meta = raw.get("assignment", {})
    name = meta.get("id")
    if not isinstance(name, str) or not name:
        raise SpecError(f"{spec_file}: [assignment] id is required")
    makers = load_module(folder / "cases.py", f"_cnn_grading_{name}_cases") if (folder / "cases.py").exists() \
        else ModuleType("empty")
    functions = []
    for k, f in enumerate(raw.get("functions", [])):
        where = f"{spec_file.name}: functions[{k}]"
        if not isinstance(f.get("name"), str):
            raise SpecError(f"{where}: 'name' is required")
        probe = None
        if "probe" in f:
            probe = _check(f"{where}.probe", {"grade_id": f"probe_{f['name']}", "points": 0,
                                              "property": "depends on its input", **f["probe"]}, makers, f["name"])
        functions.append(Function(f["name"], str(f.get("short", f["name"])), tuple(f.get("helpers", ())),
                                  tuple(f.get("blocked", ())), str(f.get("gradient_of", "")), probe))
    names = {f.name for f in functions}
    checks = tuple(_check(f"{spec_file.name}: checks[{k}]", c, makers) for k, c in enumerate(raw.get("checks", [])))
    for c in checks:
        if c.function not in names:
            raise SpecError(f"{spec_file.name}: check {c.grade_id} grades {c.function}, which is not in [[functions]]")
        if c.expect == "numeric_gradient" and not _gradient_of(functions, c.function):
            raise SpecError(f"{spec_file.name}: {c.function} needs gradient_of for {c.grade_id}")
    ids = [c.grade_id for c in checks]
    if len(ids) != len(set(ids)):
        raise SpecError(f"{spec_file.name}: duplicate grade ids")
    for f in functions:
        for h in (*f.helpers, *f.blocked, *([f.gradient_of] if f.gradient_of else [])):
            if h not in names:
                raise SpecError(f"{spec_file.name}: {f.name} names {h}, which is not a graded function")
    scorers = {n: Scorer(n, str(s["call"]), str(s.get("data", ""))) for n, s in raw.get("scorers", {}).items()}
    for c in checks:
        if c.compare == "min_score" and c.scorer not in scorers:
            raise SpecError(f"{spec_file.name}: {c.grade_id} names scorer {c.scorer!r}, not in [scorers]")
    return Assignment(name=name, title=str(meta.get("title", name)), folder=folder,
                      notebook_name=str(meta.get("notebook", name)), functions=tuple(functions),
                      checks=checks, limits=dict(raw.get("limits", {})), scorers=scorers,
                      visible=dict(raw.get("visible", {})), hooks=dict(raw.get("hooks", {})),
                      skip_tags=tuple(raw.get("notebook", {}).get("skip_tags", ())),
                      accuracy=dict(raw.get("accuracy", {})), translation=dict(raw.get("translation", {})))


def _gradient_of(functions: list[Function], name: str) -> str:
    return next((f.gradient_of for f in functions if f.name == name), "")


def spec_file(assignment: str, root: Path | None = None) -> Path:
    """The grading spec of ``assignment``; a translated edition (``<id>_<lang>``) is graded by its base's."""
    return paths.source_dir(i18n.base_of(assignment, root), root) / "grading" / "spec.toml"


@functools.cache
def _load_cached(path: str, mtime: float) -> Assignment:
    return load_file(Path(path))


def load(assignment: str | None = None, root: Path | None = None) -> Assignment:
    """The spec of ``assignment`` (default: the course's first assignment), cached until the file changes."""
    name = assignment or paths.default_assignment(root)
    path = spec_file(name, root)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise UnknownAssignment(f"no assignment {name!r}: no grading spec at {path}") from exc
    return _load_cached(str(path.resolve()), mtime)


def assignments(root: Path | None = None) -> list[str]:
    """Every assignment of the course that has a grading spec, in the course's order."""
    return paths.assignments(root)


def for_grade_id(grade_id: str, root: Path | None = None) -> Assignment:
    """The assignment whose spec defines ``grade_id`` (grade ids are unique across the course)."""
    for name in assignments(root):
        a = load(name, root)
        if grade_id in a.by_grade_id():
            return a
    raise KeyError(grade_id)
