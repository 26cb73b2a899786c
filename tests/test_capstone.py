"""The capstone, "Train a CNN from your own layers": data, released files, its mutants, and real grading.

The fast tests read the data and the spec; the slow ones judge every mutant of
``source/train_cnn/grading/mutants.toml`` in process (the same judge as the
sandbox), run a student's Validate on a solved release, and grade the
reference, a blank and two buggy submissions with ``cnn grade``, sandbox and
all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nbformat
import pytest

from cnngrader.core import paths, record, reference, spec
from cnngrader.core.hidden_data import HiddenData, ensure_current
from cnngrader.sandbox.verdicts import run_in_process
from cnngrader.tools import mutants, submissions
from cnngrader.tools.workspace import tool_env

A = "train_cnn"
REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "source" / A
#: Checks whose cost is training or timing: mutants of other functions skip them (see below).
EXPENSIVE = {"test_train_accuracy", "test_conv_forward_fast_speed", "test_conv_backward_fast_speed"}


def test_data_records_its_provenance_and_licence():
    """Both HDF5 files name the source, the licence and the split; the notebook tells students too."""
    for path, groups in ((SOURCE / "data" / "digits.h5", {"train", "val"}),
                         (SOURCE / "grading" / "digits_test.h5", {"test"})):
        with h5py.File(path, "r") as h5:
            assert set(h5) == groups
            assert "load_digits" in str(h5.attrs["source"]) and "CC BY 4.0" in str(h5.attrs["licence"])
            for g in groups:
                assert h5[f"{g}/X"].shape[1:] == (8, 8, 1) and h5[f"{g}/X"].shape[0] == h5[f"{g}/y"].shape[0]
    with h5py.File(SOURCE / "data" / "digits.h5", "r") as a, h5py.File(SOURCE / "grading" / "digits_test.h5") as b:
        assert a["train/X"].shape[0] + a["val/X"].shape[0] + b["test/X"].shape[0] == 1797
    intro = nbformat.read(str(SOURCE / f"{A}.ipynb"), as_version=4).cells[0].source
    assert "CC BY 4.0" in intro and "scikit-learn" in intro


def test_the_test_split_is_never_released():
    """The held-out images live in the grading folder, which nbgrader ignores."""
    released = {p.name for p in (REPO / "release" / A).rglob("*")}
    assert "digits_test.h5" not in released and "grading" not in released
    assert "grading" in (REPO / "nbgrader_config.py").read_text()


def test_released_layers_and_check_data_are_fresh():
    """cnn_layers.py is the first notebook's solutions, and the visible checks' data is current."""
    hook = spec.load(A).module("checks_data")
    assert (SOURCE / "cnn_layers.py").read_text() == hook.layers_module(), "run `make checks-data`"
    assert (SOURCE / "train_checks_data.json").read_text() == hook.checks_data(), "run `make checks-data`"


def test_points_and_experiment_cells():
    """100 points; every cell that trains, times or draws is tagged so grading does not repeat it."""
    a = spec.load(A)
    assert a.total_points() == 100 and a.skip_tags == ("experiment",)
    nb = nbformat.read(str(SOURCE / f"{A}.ipynb"), as_version=4)
    tagged = {c.id for c in nb.cells if "experiment" in c.metadata.get("tags", [])}
    assert {"make-it-fast", "train-run", "show-filters", "show-confusion"} <= tagged
    for cell in nb.cells:
        meta = reference.nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            check = a.by_grade_id()[meta["grade_id"]]
            assert cell.source.startswith(f'"""Hidden tests: {check.function}, {check.prop}."""')
            assert meta["points"] == check.points


@pytest.fixture(scope="module")
def hidden() -> HiddenData:
    return HiddenData(ensure_current(assignment=spec.load(A)))


def _namespace(mutant: mutants.Mutant | None = None) -> dict:
    ns = reference.reference_namespace(SOURCE / f"{A}.ipynb")
    if mutant is not None:
        exec(compile(mutant.source, mutant.name, "exec"), ns)  # noqa: S102 - the course's own fixtures
    return ns


CATALOGUE = mutants.catalogue(assignment=A)


@pytest.mark.slow
@pytest.mark.parametrize("mutant", CATALOGUE, ids=[m.name for m in CATALOGUE])
def test_every_mutant_loses_points_in_its_own_function_only(mutant: mutants.Mutant, hidden: HiddenData):
    """Each single bug fails at least one cell of its function, and no cell of any other function.

    Training and timing cells are judged only for mutants of their own
    function: train is graded with the reference layers (credit isolation),
    and the speed cells call only the function they time.
    """
    a = spec.load(A)
    ns = _namespace(mutant)
    failed = set()
    for check in a.checks:
        if check.grade_id in EXPENSIVE and check.function != mutant.function:
            continue
        verdict = run_in_process(ns, check.grade_id, hidden)
        if not verdict.passed:
            failed.add(check.function)
    assert failed == {mutant.function}


VARIANTS = sorted((SOURCE / "grading" / "variants").glob("*.py"))


def test_there_are_variants_for_every_kind_of_rewrite():
    assert len(VARIANTS) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=[p.stem for p in VARIANTS])
def test_every_correct_variant_gets_full_marks(variant: Path, hidden: HiddenData):
    """Correct solutions written differently (where, dot, im2col, add.at, in place, while loops) pass every cell."""
    a = spec.load(A)
    ns = _namespace()
    exec(compile(variant.read_text(), variant.name, "exec"), ns)  # noqa: S102 - the course's own fixtures
    defined = set(submissions.functions_in(variant.read_text()))
    for check in a.checks:
        if check.function in defined:
            verdict = run_in_process(ns, check.grade_id, hidden)
            assert verdict.passed, (check.grade_id, verdict.message)


@pytest.mark.slow
@pytest.mark.parametrize("edition", [A, f"{A}_zh"])
def test_a_students_validate_passes_on_a_solved_release(tmp_path: Path, edition: str):
    """A solved release, in either edition, runs top to bottom: every visible check passes and Validate succeeds."""
    folder = tmp_path / edition
    shutil.copytree(REPO / "release" / edition, folder)
    nb = nbformat.read(str(folder / f"{edition}.ipynb"), as_version=4)
    solutions = reference.solution_cells(SOURCE / f"{A}.ipynb")
    for cell in nb.cells:
        if reference.nbgrader_meta(cell).get("solution"):
            cell.source = solutions[reference.grade_id(cell)]
    nbformat.write(nb, str(folder / f"{edition}.ipynb"))
    run = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "validate", f"{edition}.ipynb"], cwd=folder,
                         capture_output=True, text=True, timeout=600,
                         env=tool_env(REPO, OPENBLAS_NUM_THREADS="1"))
    assert "Success! Your notebook passes all the tests." in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]


BUGS = ("relu_backward__kink_passes", "conv_forward_fast__stride_ignored")


@pytest.mark.slow
@pytest.mark.parametrize("edition", [A, f"{A}_zh"])
def test_cnn_grade_scores_the_capstone(tmp_path: Path, edition: str):
    """The hardened grader, in either edition: reference 100 (training included), blank 0, each bug only its own
    function."""
    from cnngrader.tools.batch import function_scores
    from cnngrader.tools.workspace import make_course, nbgrader

    root = tmp_path / "course"
    make_course(root, generate=False)
    nbgrader(root, "generate_assignment", edition, "--force")
    submissions.submit_release(root, "ref", edition)
    for name in BUGS:
        m = mutants.by_name(name, assignment=edition)
        submissions.submit_release(root, name.replace("__", "-"), edition, {m.function: m.source})
    submissions.submit_release(root, "blank", edition, solve=False)
    run = subprocess.run([sys.executable, "-m", "cnngrader.tools.cli", "grade", "--assignment", edition,
                          "--jobs", "2", "--no-progress"], cwd=root, env=tool_env(root), capture_output=True, text=True)
    assert run.returncode in (0, 3), run.stderr[-3000:]
    students = ["ref", "blank", *(n.replace("__", "-") for n in BUGS)]
    scores = function_scores(paths.default_db_url(root), edition, students)
    points = spec.load(A).function_points()
    assert scores["ref"] == points, _why(root, "ref")
    assert sum(scores["blank"].values()) == 0
    for name in BUGS:
        fn = name.split("__")[0]
        row = scores[name.replace("__", "-")]
        assert row[fn] < points[fn] and {k: v for k, v in row.items() if k != fn} == \
            {k: v for k, v in points.items() if k != fn}, _why(root, name.replace("__", "-"))
    rec = record.load(edition, "ref", root)
    assert rec.cells["test_train_accuracy"].passed and rec.cells["test_conv_forward_fast_speed"].passed
    if edition.endswith("_zh"):
        bug = record.load(edition, BUGS[0].replace("__", "-"), root)
        assert any("\u4e00" <= ch <= "\u9fff" for m in bug.messages() for ch in m), bug.messages()


def _why(root: Path, student: str) -> str:
    path = root / ".grading" / "results" / A / f"{student}.json"
    return path.read_text()[:3000] if path.exists() else "no record"


def test_spec_and_release_agree_on_the_graded_cells():
    """Every graded cell of the release has a check in the spec, with the same points (and no others)."""
    nb = json.loads((REPO / "release" / A / f"{A}.ipynb").read_text())
    graded = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"] for c in nb["cells"]
              if c["metadata"].get("nbgrader", {}).get("grade") and not c["metadata"]["nbgrader"].get("solution")}
    assert graded == {c.grade_id: c.points for c in spec.load(A).checks}
