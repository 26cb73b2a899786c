"""Fast unit tests of the grading-at-scale pieces: bundle checks, ledger, summaries, the bench table,
and the speed-ups that must not change what nbgrader records."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import tarfile
from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cnngrader.glue import pipeline
from cnngrader.glue.preprocessors import SaveAutoGradesOnce
from cnngrader.sandbox import bwrap
from cnngrader.tools import bench, bundle, dask_engine


def _tar(manifest: dict, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _manifest(**changes: object) -> dict:
    manifest = {"format": bundle.FORMAT, "grader_code": bundle.grader_code_hash(), "versions": bundle._versions(),
                "assignment": "a", "files": {"x.txt": hashlib.sha256(b"x").hexdigest()}}
    manifest.update(changes)
    return manifest


def test_bundle_verify_accepts_a_good_bundle_and_extracts_it(tmp_path):
    """A bundle with the announced hash, this format and this grader code is accepted and unpacked."""
    data = _tar(_manifest(), {"x.txt": b"x"})
    manifest = bundle.verify(data, hashlib.sha256(data).hexdigest())
    bundle.extract(data, manifest, tmp_path / "b")
    assert (tmp_path / "b" / "x.txt").read_bytes() == b"x"


@pytest.mark.parametrize("change, match", [
    ({"format": bundle.FORMAT + 1}, "format"),
    ({"grader_code": "0" * 64}, "grader code"),
    ({"versions": {"nbgrader": "0.0", "numpy": "0.0"}}, "versions differ"),
])
def test_bundle_verify_refuses_other_rules(change, match):
    """A bundle made by other grader code, library versions or format is refused."""
    data = _tar(_manifest(**change), {"x.txt": b"x"})
    with pytest.raises(bundle.BundleError, match=match):
        bundle.verify(data, hashlib.sha256(data).hexdigest())


def test_bundle_verify_refuses_a_wrong_hash():
    """Bytes that do not hash to the announced sha256 are refused before anything is read."""
    data = _tar(_manifest(), {"x.txt": b"x"})
    with pytest.raises(bundle.BundleError, match="refused"):
        bundle.verify(data, "0" * 64)


def test_bundle_extract_refuses_files_the_manifest_does_not_vouch_for(tmp_path):
    """An entry missing from the manifest, or with other bytes, stops the extraction."""
    data = _tar(_manifest(), {"x.txt": b"y"})
    with pytest.raises(bundle.BundleError, match="does not match"):
        bundle.extract(data, bundle.verify(data, hashlib.sha256(data).hexdigest()), tmp_path / "b")
    data = _tar(_manifest(), {"x.txt": b"x", "../evil": b""})
    with pytest.raises(bundle.BundleError, match="unexpected"):
        bundle.extract(data, bundle.verify(data, hashlib.sha256(data).hexdigest()), tmp_path / "c")


def test_ledger_ignores_a_line_cut_short(tmp_path):
    """A client killed while appending leaves half a line; the ledger reads the rest."""
    path = dask_engine.ledger_path(tmp_path, "a")
    dask_engine._append_ledger(tmp_path, "a", "alice", "b1", "s1")
    dask_engine._append_ledger(tmp_path, "a", "bob", "b1", "s2")
    with open(path, "a") as fh:
        fh.write('{"student": "carol", "bun')
    assert dask_engine.read_ledger(tmp_path, "a") == {"alice": ("b1", "s1"), "bob": ("b1", "s2")}


def test_summary_names_retried_and_failed_with_names_escaped():
    """The summary says who was retried and who failed, and never prints a control character."""
    report = dask_engine.DaskReport(graded=["alice"], retried={"alice": 2}, failed={"x\x1b[2J": "boom"},
                                    workers={"tcp://w": {"sandbox": True}}, bundle="ab" * 32)
    text = "\n".join(dask_engine.summary_lines(report))
    assert "retried: alice needed 2 workers" in text
    assert "failed: " in text and "\x1b" not in text
    assert "graded 1, already graded and skipped 0, failed 1" in text


def test_bench_report_prints_ratios_memory_and_projection():
    """The bench table has every mode, its ratio to stock, peak memory and the 1,000-submission time."""
    data = {"results": {"stock": [40.0, 42.0], "local": [9.0, 9.5], "dask": [14.0, 15.0]}, "n": 10, "jobs": 2,
            "disagree": [], "peak_kib": {"stock": 300 * 1024, "local": 200 * 1024, "dask": 250 * 1024},
            "per_sub": {"local": 1.7, "dask": 2.1}}
    text = bench.report(data)
    assert "hardened, Dask LocalCluster" in text and "stock nbgrader, serial" in text
    assert "local hardened / stock serial: 0.23 (target <= 0.25: met)" in text
    assert "200 MiB" in text and "1.70 s" in text
    assert "scores agree" in text
    data["results"]["local"] = [20.0]
    assert "NOT met" in bench.report(data)


def test_kernel_launcher_keeps_arguments_and_drops_only_the_module():
    """The kernelspec's command keeps its interpreter and arguments; ipykernel starts without debugpy."""
    argv = ["/venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    out = bwrap.launcher_argv(argv)
    assert out[0] == "/venv/bin/python" and out[1] == "-c" and out[-2:] == ["-f", "{connection_file}"]
    assert "sys.modules['debugpy'] = None" in out[2] and "launch_new_instance" in out[2]
    assert bwrap.launcher_argv(["julia", "kernel.jl"]) == ["julia", "kernel.jl"]


SCHEMA = {"type": "object", "properties": {"grade": {"type": "boolean"}, "points": {"type": "number"}},
          "required": ["grade"]}


@pytest.mark.parametrize("instance", [{"grade": True, "points": 2}, {"grade": "yes"}, {"points": 1}, {}])
def test_compiled_schema_raises_exactly_what_jsonschema_raises(instance):
    """The compiled validator accepts and rejects the same metadata, with the same message."""
    compiled = pipeline._CompiledSchemas()
    try:
        jsonschema.validate(instance, SCHEMA)
        expected = None
    except jsonschema.ValidationError as exc:
        expected = exc.message
    try:
        compiled.validate(instance, SCHEMA)
        got = None
    except jsonschema.ValidationError as exc:
        got = exc.message
    assert got == expected


def _gradebook_with_submission(path: Path) -> str:
    from nbgrader.api import Gradebook

    url = f"sqlite:///{path}"
    with Gradebook(url) as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("t1", "nb", "a", max_score=2, cell_type="code")
        gb.add_grade_cell("t2", "nb", "a", max_score=3, cell_type="code")
        gb.add_solution_cell("s1", "nb", "a")
        gb.add_solution_cell("s2", "nb", "a")
        gb.add_student("ann")
        gb.add_submission("a", "ann")
        grade = gb.find_grade("t2", "nb", "a", "ann")
        grade.manual_score = 1  # a human already looked at this one
        gb.db.commit()
    return url


def _graded_notebook() -> nbformat.NotebookNode:
    from nbgrader.utils import compute_checksum

    def meta(**kw: object) -> dict:
        return {"nbgrader": {"schema_version": 3, "locked": False, "grade": False, "solution": False, **kw}}

    unchanged = new_code_cell("raise NotImplementedError()", metadata=meta(grade_id="s1", solution=True))
    unchanged.metadata.nbgrader["checksum"] = compute_checksum(unchanged)
    answered = new_code_cell("x = 1", metadata=meta(grade_id="s2", solution=True, checksum="stale"))
    passed = new_code_cell("assert True", metadata=meta(grade_id="t1", grade=True, points=2))
    failed = new_code_cell("assert False", metadata=meta(grade_id="t2", grade=True, points=3))
    failed.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=[])]
    return new_notebook(cells=[new_markdown_cell("hi"), unchanged, answered, passed, failed])


def _saved(url: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        nb = gb.find_submission_notebook("nb", "a", "ann")
        return {"grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                "comments": {c.name: c.auto_comment for c in nb.comments}}


@pytest.mark.slow
def test_save_autogrades_once_writes_what_nbgrader_writes(tmp_path, monkeypatch):
    """Scores, review flags and 'No response.' comments equal stock SaveAutoGrades' on the same notebook."""
    import os
    import sys

    from nbgrader.preprocessors import SaveAutoGrades

    # nbgrader runs `alembic` from PATH to stamp a new gradebook.
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    results = []
    for cls in (SaveAutoGrades, SaveAutoGradesOnce):
        url = _gradebook_with_submission(tmp_path / f"{cls.__name__}.db")
        resources = {"nbgrader": {"notebook": "nb", "assignment": "a", "student": "ann", "db_url": url}}
        cls().preprocess(copy.deepcopy(_graded_notebook()), resources)
        results.append(_saved(url))
    stock, once = results
    assert once == stock
    assert stock["grades"]["t1"] == (2.0, False) and stock["grades"]["t2"][1] is True
    assert stock["comments"] == {"s1": "No response.", "s2": None}


def _stage(tmp_path: Path, make: object) -> tuple[Path, list[str]]:
    """Stage a submission folder built by ``make(folder)`` next to a one-notebook release."""
    from nbformat.v4 import new_notebook, writes

    from cnngrader.sandbox.limits import from_config
    from cnngrader.sandbox.staging import stage

    release = tmp_path / "release" / "hw.ipynb"
    release.parent.mkdir(parents=True)
    release.write_text(writes(new_notebook()))
    src = tmp_path / "sub"
    src.mkdir()
    make(src)  # type: ignore[operator]
    result = stage(src, tmp_path / "staged", [release], from_config(None), "ann")
    return tmp_path / "staged", [str(n) for n in result.attention]


def test_a_folder_named_like_the_notebook_is_graded_as_blank(tmp_path):
    """A directory called hw.ipynb does not stop staging: the blank release takes its place, with a note."""
    staged, notes = _stage(tmp_path, lambda d: (d / "hw.ipynb").mkdir())
    assert (staged / "hw.ipynb").is_file()
    assert any("is not a notebook file" in n for n in notes)


@pytest.mark.parametrize("make", [
    lambda d: (d / "timestamp.txt").mkdir(),
    lambda d: (d / "timestamp.txt").write_text("2024-01-01 00:00:00 /proc/self/mem"),
    lambda d: (d / "timestamp.txt").write_text("2024-01-01 00:00:00 ../../gradebook.db"),
], ids=["folder", "zone-path", "relative-zone-path"])
def test_a_strange_timestamp_means_no_time_not_a_crash(tmp_path, make):
    """A folder, or a zone that is a path, leaves the submission without a time and says so."""
    staged, notes = _stage(tmp_path, make)
    assert not (staged / "timestamp.txt").exists()
    assert any("timestamp.txt could not be read" in n for n in notes)


def test_kernel_launcher_keeps_the_standard_library_first(tmp_path):
    """A student's random.py in the kernel's folder cannot shadow the standard library, yet the
    folder's own modules stay importable once IPython sets up the path."""
    import subprocess
    import sys

    (tmp_path / "random.py").write_text("raise SystemExit('shadowed')\n")
    (tmp_path / "own_module.py").write_text("VALUE = 7\n")
    code = bwrap._LAUNCHER.replace(
        "from ipykernel import kernelapp\nkernelapp.launch_new_instance()\n",
        "import tempfile, random\n"
        "from IPython.core.shellapp import InteractiveShellApp\n"
        "InteractiveShellApp().init_path()\n"
        "import own_module\n"
        "print(random.__file__, own_module.VALUE)\n")
    assert code != bwrap._LAUNCHER
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    path, value = proc.stdout.split()
    assert not path.startswith(str(tmp_path)) and value == "7"
